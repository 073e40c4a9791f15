// User settings (chrome.storage.sync) and their validation. The pure helpers take no chrome.*
// so Node tests can import them; the storage wrappers receive the storage area explicitly.
import { BUILD } from "./build-config.js";

export const OPEN_MODES = Object.freeze(["newTab", "currentTab"]);

export const DEFAULT_SETTINGS = Object.freeze({
  base: BUILD.defaultBase,
  openIn: "newTab",
});

/**
 * Check and normalise a target base URL. Returns the base without trailing slashes, or throws
 * an Error whose message is an i18n key (so the options page can show it in the user's language).
 */
export function normalizeBase(raw) {
  const text = String(raw ?? "").trim();
  if (!text) throw new Error("errorBaseEmpty");
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new Error("errorBaseInvalid");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("errorBaseScheme");
  if (url.search || url.hash || url.username || url.password) throw new Error("errorBaseExtra");
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
