// User settings (chrome.storage.sync) and their validation. The pure helpers take no chrome.*
// so Node tests can import them; the storage wrappers receive the storage area explicitly.
import { BUILD } from "./build-config.js";

export const OPEN_MODES = Object.freeze(["newTab", "currentTab"]);

export const DEFAULT_SETTINGS = Object.freeze({
  base: BUILD.defaultBase,
  openIn: "newTab",
});

// A host name with an optional port and path, typed without a scheme ("127.0.0.1:5602", "papers.cool/x").
const BARE_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?(?:\/[^\s?#]*)?$/;
// Loopback, private and single-label hosts are served over http (a local backend); the rest over https.
const PLAIN_HTTP_HOST = /^(?:localhost|\[::1\]|127(?:\.[0-9]{1,3}){3}|0\.0\.0\.0|10(?:\.[0-9]{1,3}){3}|192\.168(?:\.[0-9]{1,3}){2}|172\.(?:1[6-9]|2[0-9]|3[01])(?:\.[0-9]{1,3}){2}|[A-Za-z0-9-]+|.*\.(?:local|lan|internal|home\.arpa))$/i;

/** An error whose message is an i18n key; `suggestion` (when set) is a base the user probably meant. */
export class BaseError extends Error {
  constructor(key, suggestion = null) {
    super(key);
    this.suggestion = suggestion;
  }
}

/** The URL meant by a base typed without a scheme: http:// for a local backend, https:// otherwise. */
export function suggestBase(text) {
  if (!BARE_HOST.test(text)) return null;
  const host = text.replace(/(?::[0-9]+)?(?:\/.*)?$/, "");
  return `${PLAIN_HTTP_HOST.test(host) ? "http" : "https"}://${text}`;
}

/**
 * Check and normalise a target base URL. Returns the base without trailing slashes, or throws a
 * BaseError whose message is an i18n key (so the options page can show it in the user's language).
 */
export function normalizeBase(raw) {
  const text = String(raw ?? "").trim();
  if (!text) throw new BaseError("errorBaseEmpty");
  // "127.0.0.1:5602" is no URL, and "localhost:5602" would parse with the scheme "localhost:"
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) {
    const suggestion = suggestBase(text);
    if (suggestion) throw new BaseError("errorBaseNoScheme", suggestion);
  }
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new BaseError("errorBaseInvalid");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new BaseError("errorBaseScheme");
  if (url.search || url.hash || url.username || url.password) throw new BaseError("errorBaseExtra");
  // Targets are built as base + "/arxiv/..." so the base must not end with a slash.
  return (url.origin + url.pathname).replace(/\/+$/, "");
}

/** Merge stored values over the defaults, dropping anything invalid (old or hand-edited data). */
export function sanitizeSettings(stored) {
  const out = { ...DEFAULT_SETTINGS };
  if (stored && typeof stored === "object") {
    try {
      if (stored.base !== undefined) out.base = normalizeBase(stored.base);
    } catch {
      // keep the default base
    }
    if (OPEN_MODES.includes(stored.openIn)) out.openIn = stored.openIn;
  }
  return out;
}

/** Read settings from a chrome.storage area (storage.sync in the extension). */
export async function loadSettings(area) {
  const stored = await area.get(Object.keys(DEFAULT_SETTINGS));
  return sanitizeSettings(stored);
}

/** Validate then store settings; returns what was stored. Throws like normalizeBase. */
export async function saveSettings(area, values) {
  const base = normalizeBase(values.base);
  const openIn = OPEN_MODES.includes(values.openIn) ? values.openIn : DEFAULT_SETTINGS.openIn;
  const clean = { base, openIn };
  await area.set(clean);
  return clean;
}
