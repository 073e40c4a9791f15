// MV3 service worker (an ES module). Every way to redirect (context menu, popup, omnibox, keyboard
// command, test message) goes through handleClick(), so the e2e tests exercise the menu's own path.
// Listeners are registered synchronously at the top level, as MV3 requires for a worker that
// may be woken by the event itself.
import { resolve, resolveClick, isOneUrl } from "./resolver.js";
import { loadSettings } from "./settings.js";
import { PAGE_MENU_PATTERNS } from "./hosts.js";
import { describe, joinList } from "./labels.js";

export const MENU_ANYWHERE = "cool-papers-selection-link";
export const MENU_PAGE = "cool-papers-page";
export const COMMAND_REDIRECT = "redirect-current-tab";
const TAB_ID_NONE = -1;

function msg(key, substitutions) {
  return chrome.i18n.getMessage(key, substitutions) || key;
}

// contextMenus.create reports problems (e.g. an invalid documentUrlPattern) only through
// runtime.lastError in its callback; turn that into a rejection so it gets logged, not lost.
function createMenu(props) {
  return new Promise((resolve, reject) => {
    chrome.contextMenus.create(props, () => {
      const error = chrome.runtime.lastError;
      if (error) reject(new Error(`menu ${props.id}: ${error.message}`));
      else resolve(props.id);
    });
  });
}

export async function createMenus() {
  await chrome.contextMenus.removeAll();
  return Promise.all([
    // Selections and links can carry an id on any page, so this item has no URL restriction.
    createMenu({ id: MENU_ANYWHERE, title: msg("menuRedirect"), contexts: ["selection", "link"] }),
    // The page/frame item only where the page URL itself can name a paper: paper hosts, mirrors,
    // PDFs and PDF viewer frames (the "frame" context covers PDFs embedded in a viewer page).
    createMenu({ id: MENU_PAGE, title: msg("menuRedirect"), contexts: ["page", "frame"], documentUrlPatterns: PAGE_MENU_PATTERNS }),
  ]);
}

function usableTab(tab) {
  return Boolean(tab) && Number.isInteger(tab.id) && tab.id !== TAB_ID_NONE && tab.id >= 0;
}

// Tabs in saved tab groups (issue #33 of the reference) and some special pages hand the
// listener no tab, or one with id TAB_ID_NONE; fall back to the active tab of the last
// focused window rather than doing nothing.
async function effectiveTab(tab) {
  if (usableTab(tab)) return tab;
  try {
    const [active] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
    if (usableTab(active)) return active;
  } catch {
    // no window at all: the caller opens one
  }
  return null;
}

// A result opened from a tab in a (saved) tab group joins that group, as the user would expect of
// "open next to it". Best effort: the group may have been closed or saved away meanwhile.
async function keepInGroup(created, source) {
  const groupId = source?.groupId;
  if (!created || !Number.isInteger(groupId) || groupId < 0 || created.windowId !== source.windowId) return;
  try {
    await chrome.tabs.group({ groupId, tabIds: [created.id] });
  } catch {
    // the tab stays ungrouped
  }
}

/** Open `url` in the current tab or a new one next to it; every failure falls back to a plainer call. */
export async function openTarget(url, tab, mode, { active = true } = {}) {
  const here = await effectiveTab(tab);
  if (mode === "currentTab" && here) {
    try {
      return await chrome.tabs.update(here.id, { url });
    } catch {
      // e.g. the tab closed meanwhile: open a new one instead
    }
  }
  const attempts = [];
  if (here) {
    const near = { url, active, openerTabId: here.id };
    if (Number.isInteger(here.windowId) && here.windowId >= 0) near.windowId = here.windowId;
    if (Number.isInteger(here.index) && here.index >= 0) near.index = here.index + 1;
    attempts.push(near);
    if (Number.isInteger(here.windowId) && here.windowId >= 0) attempts.push({ url, active, windowId: here.windowId });
  }
  attempts.push({ url, active });
  for (const props of attempts) {
    let created;
    try {
      created = await chrome.tabs.create(props);
    } catch {
      continue; // try the next, less specific placement
    }
    await keepInGroup(created, here);
    return created;
  }
  const win = await chrome.windows.create({ url, focused: active });
  return win.tabs?.[0] ?? null;
}

/** Why nothing was found, in words the notification (and the popup, and the omnibox) can show. */
export function explainNothing(info) {
  const selection = typeof info?.selectionText === "string" && info.selectionText.trim() ? info.selectionText : "";
  // Text typed or pasted (or selected) that is one URL: it names no paper, and it is not searched for.
  if (selection && isOneUrl(selection) && !info?.linkUrl && !info?.pageUrl) return msg("notifyNoPaperInUrl");
  const checked = [];
  if (selection) checked.push(msg("inputSelection"));
  if (info?.linkUrl) checked.push(msg("inputLink"));
  if (info?.pageUrl) checked.push(msg("inputPage"));
  if (info?.frameUrl && info.frameUrl !== info.pageUrl) checked.push(msg("inputFrame"));
  if (!checked.length) return msg("notifyNoInput");
  return msg("notifyNothingFound", [joinList(checked, msg)]);
}

/** The tab's title goes with its address: the title fallback on publishers' pages reads it (activeTab grants it). */
function withTitle(info, tab) {
  if (!info || typeof info !== "object" || typeof info.pageTitle === "string") return info;
  if (typeof tab?.title !== "string" || !info.pageUrl || (tab.url && tab.url !== info.pageUrl)) return info;
  return { ...info, pageTitle: tab.title };
}

async function notifyNothing(info) {
  const message = explainNothing(info);
  const id = await chrome.notifications.create(`cool-papers-${Date.now()}`, {
    type: "basic",
    iconUrl: chrome.runtime.getURL("icons/icon128.png"),
    title: msg("notifyTitle"),
    message,
    priority: 0,
  });
  return { id, message };
}

/**
 * The one redirect path. `info` has the shape of contextMenus.OnClickData (selectionText, linkUrl,
 * pageUrl, frameUrl); `tab` may be missing. `options.mode` overrides the stored tab mode.
 * Returns what happened so callers (popup, tests) can show or check it.
 */
export async function handleClick(info, tab, options = {}) {
  const settings = await loadSettings(chrome.storage.sync);
  const clean = info && typeof info === "object" ? withTitle(info, tab) : {};
  const resolution = resolveClick(clean, settings.base);
  if (!resolution) {
    const note = await notifyNothing(clean);
    return { ok: false, notificationId: note.id, message: note.message };
  }
  const mode = options.mode ?? settings.openIn;
  const opened = await openTarget(resolution.target, tab, mode, { active: options.active ?? true });
  return { ok: true, resolution, mode, tabId: opened?.id ?? null };
}

/** Text typed or pasted by the user is a selection: one URL yields its paper or nothing, never a search. */
export function infoFromText(text) {
  return { selectionText: String(text ?? "") };
}

function escapeXml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]);
}

/** The omnibox line: what Enter opens, in people's words ("open OpenReview B18WgG-CZ", "search for ..."). */
export function describeResolution(resolution, text = "") {
  if (!resolution) return msg(isOneUrl(text) ? "omniboxNoPaperInUrl" : "omniboxNothing");
  const { kind, text: what } = describe(resolution, msg);
  if (resolution.kind === "search") return msg("omniboxSearch", [what]);
  return msg("omniboxOpen", [kind, what]);
}

chrome.runtime.onInstalled.addListener(() => {
  createMenus().catch((err) => console.error("Cool Papers: menus not created", err));
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId !== MENU_ANYWHERE && info.menuItemId !== MENU_PAGE) return;
  handleClick(withTitle(info, tab), tab).catch(logFailure("redirect"));
});

/**
 * A tab's address. The command grants activeTab, so tab.url is normally there; where it is not
 * (no grant), our content script, present on the paper hosts, can still tell its page's address.
 */
async function tabUrl(tab) {
  if (!tab) return undefined;
  if (tab.url || tab.pendingUrl) return tab.url || tab.pendingUrl;
  try {
    const answer = await chrome.tabs.sendMessage(tab.id, { type: "detectPapers" });
    return typeof answer?.pageUrl === "string" ? answer.pageUrl : undefined;
  } catch {
    return undefined; // no content script in that tab
  }
}

/** Keyboard command: redirect the current tab's page, in that tab. */
export async function onCommand(command, tab) {
  if (command !== COMMAND_REDIRECT) return { ok: false, error: `unknown command ${command}` };
  const here = await effectiveTab(tab);
  return handleClick(withTitle({ pageUrl: await tabUrl(here) }, here), here, { mode: "currentTab" });
}

/** Omnibox "cool <text>": the suggestion line says what Enter will open. */
export async function omniboxDescription(text) {
  const settings = await loadSettings(chrome.storage.sync);
  return escapeXml(describeResolution(resolveClick(infoFromText(text), settings.base), text));
}

/** Omnibox Enter: the disposition decides the tab, whatever the stored tab mode. */
export function onOmniboxEntered(text, disposition) {
  const mode = disposition === "currentTab" ? "currentTab" : "newTab";
  return handleClick(infoFromText(text), undefined, { mode, active: disposition !== "newBackgroundTab" });
}

function logFailure(what) {
  return (err) => console.error(`Cool Papers: ${what} failed`, err);
}

chrome.commands.onCommand.addListener((command, tab) => {
  onCommand(command, tab).catch(logFailure("command"));
});

chrome.omnibox.setDefaultSuggestion({ description: escapeXml(msg("omniboxDefault")) });

chrome.omnibox.onInputChanged.addListener((text, suggest) => {
  omniboxDescription(text)
    .then((description) => {
      chrome.omnibox.setDefaultSuggestion({ description });
      suggest([]);
    })
    .catch(logFailure("omnibox suggestion"));
});

chrome.omnibox.onInputEntered.addListener((text, disposition) => {
  onOmniboxEntered(text, disposition).catch(logFailure("omnibox redirect"));
});

// The popup is no tab: it names the tab it shows, so "current tab" means that page, not the popup.
async function messageTab(message, sender) {
  if (Number.isInteger(message.tabId) && message.tabId >= 0) {
    try {
      return await chrome.tabs.get(message.tabId);
    } catch {
      // closed meanwhile
    }
  }
  return sender.tab;
}

const MODES = new Set(["newTab", "currentTab"]);
// Messages that open tabs: only from the extension's own pages, never from content scripts
// (which live inside third-party pages).
const PAGE_ONLY = new Set(["redirect", "redirectText", "omnibox", "omniboxSuggest", "command", "createMenus"]);

function resolveSafely(text, context, base) {
  try {
    return resolve(text, context, base);
  } catch {
    return null; // an unknown context
  }
}

async function onMessage(message, sender) {
  const mode = MODES.has(message?.mode) ? message.mode : undefined;
  const fromPage = typeof sender.url === "string" && sender.url.startsWith(chrome.runtime.getURL(""));
  if (PAGE_ONLY.has(message?.type) && !fromPage) return { ok: false, error: "not allowed from a content script" };
  switch (message?.type) {
    case "redirect":
      return handleClick(message.info, await messageTab(message, sender), { mode });
    case "redirectText":
      return handleClick(infoFromText(message.text), await messageTab(message, sender), { mode });
    // The omnibox and the keyboard command cannot be driven by WebDriver; extension pages (the e2e
    // tests) reach the very functions their listeners call.
    case "omnibox":
      return onOmniboxEntered(String(message.text ?? ""), String(message.disposition ?? "newForegroundTab"));
    case "omniboxSuggest":
      return { description: await omniboxDescription(String(message.text ?? "")) };
    case "command":
      return onCommand(String(message.command ?? ""), await messageTab(message, sender));
    // Re-create the menus and say whether Chrome accepted them (it is the judge of the patterns).
    case "createMenus":
      return createMenus().then((ids) => ({ ok: true, ids }), (err) => ({ ok: false, error: err.message }));
    case "resolveMany": {
      // Content scripts resolve with the user's base and tab mode without reading storage themselves.
      const { base, openIn } = await loadSettings(chrome.storage.sync);
      const items = Array.isArray(message.items) ? message.items.slice(0, 2000) : [];
      const results = items.map((item) => resolveSafely(String(item?.text ?? ""), String(item?.context ?? "link"), base));
      return { base, openIn, results };
    }
    default:
      return { ok: false, error: `unknown message type ${String(message?.type)}` };
  }
}

chrome.runtime.onMessage.addListener((message, sender, reply) => {
  // Only this extension's own pages and content scripts may drive it.
  if (sender.id !== chrome.runtime.id) return false;
  onMessage(message, sender).then(reply, (err) => reply({ ok: false, error: String(err?.message ?? err) }));
  return true;
});
