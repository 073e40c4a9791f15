// Popup: the papers detected on the active tab (from its URL and title and, on the paper hosts, from
// the content script's scan of the page), each opened through the background's handleClick; on a
// Cool Papers tab, the way back to the papers' own pages; and a box for any pasted text or URL.
// popup.html?tab=<id> shows a given tab (keyboard use, tests); there the browser hides the tab's address and
// title unless activeTab was granted by a click on the toolbar button, so the opener may pass them as
// &url= and &title= (extension pages are not web-accessible: only the extension itself can open it so).
import { resolve, resolveClick } from "./resolver.js";
import { loadSettings } from "./settings.js";
import { localize, t } from "./i18n.js";
import { describe } from "./labels.js";
import { sourcesOf } from "./sources.js";

const list = document.getElementById("papers");
const openAll = document.getElementById("open-all");

async function targetTab() {
  const params = new URLSearchParams(location.search);
  const wanted = Number(params.get("tab"));
  if (Number.isInteger(wanted) && wanted > 0) {
    let tab;
    try {
      tab = await chrome.tabs.get(wanted);
    } catch {
      return null;
    }
    if (!tab.url && params.get("url")) return { ...tab, url: params.get("url"), title: params.get("title") ?? tab.title };
    return tab;
  }
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab ?? null;
}

async function scanPage(tab) {
  // Only pages with our content script answer; everywhere else this rejects, which is fine.
  try {
    const answer = await chrome.tabs.sendMessage(tab.id, { type: "detectPapers" });
    return answer && Array.isArray(answer.items) ? answer : null;
  } catch {
    return null;
  }
}

function redirect(info, tab) {
  return chrome.runtime.sendMessage({ type: "redirect", info, tabId: tab?.id });
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

/** One entry, the same shape everywhere: "kind · ids" above the title when there is one. */
function addItem(entry, tab) {
  const { kind, text } = describe(entry.resolution, t);
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.className = "ids";
  label.append(span("kind", text ? `${kind} · ${text}` : kind));
  if (entry.title) label.append(span("title", entry.title));
  else label.append(span("title", text || kind));
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = t("popupOpen");
  button.title = entry.resolution.target;
  button.addEventListener("click", () => redirect(entry.info, tab).then(() => window.close()));
  li.append(label, button);
  list.append(li);
}

/** Collect unique resolutions: the tab's own URL (with its title) first, then each link the content script found. */
export function collect(tab, scan, base) {
  const found = [];
  const seen = new Set();
  const push = (resolution, title, info) => {
    if (!resolution || seen.has(resolution.target)) return;
    seen.add(resolution.target);
    found.push({ resolution, title, info });
  };
  const pageUrl = scan?.pageUrl || tab?.url;
  if (pageUrl) {
    const info = { pageUrl };
    if (typeof tab?.title === "string") info.pageTitle = tab.title;
    const r = resolveClick(info, base);
    // the paper's own title where the content script read it, else the tab's (not for a title search: it is the query)
    const title = scan?.title || (r && r.kind !== "search" && r.kind !== "coolpapers" ? tab?.title : "") || "";
    push(r, title, info);
  }
  for (const item of scan?.items ?? []) {
    const url = String(item?.url ?? "");
    push(resolve(url, "link", base), String(item?.title ?? ""), { linkUrl: url });
  }
  return found;
}

function showSources(tab, base) {
  const entries = tab?.url ? sourcesOf(tab.url, base) : [];
  const section = document.getElementById("sources");
  section.hidden = entries.length === 0;
  const ul = document.getElementById("source-list");
  for (const entry of entries) {
    const li = document.createElement("li");
    li.append(span("kind", `${entry.venue} · ${entry.paper}`));
    const links = document.createElement("span");
    links.className = "links";
    for (const link of entry.links) {
      const a = document.createElement("a");
      a.href = link.url;
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = typeof link.label === "string" ? t(link.label) : t("sourceVenue", [link.label.venue]);
      links.append(a);
    }
    li.append(links);
    ul.append(li);
  }
  return entries.length;
}

async function main() {
  localize();
  const [{ base }, tab] = await Promise.all([loadSettings(chrome.storage.sync), targetTab()]);
  const scan = tab ? await scanPage(tab) : null;
  const found = collect(tab, scan, base);
  for (const entry of found) addItem(entry, tab);
  const back = showSources(tab, base);
  document.getElementById("none").hidden = found.length > 0 || back > 0;

  // Several papers of one kind (arXiv, or venue) open together as one comma-list page.
  const urls = (scan?.items ?? []).map((item) => String(item?.url ?? "")).filter(Boolean);
  const together = urls.length > 1 ? resolve(urls.join("\n"), "selection", base) : null;
  if (together && together.ids.length > 1) {
    openAll.hidden = false;
    openAll.textContent = t("popupOpenAll", [String(together.ids.length)]);
    openAll.addEventListener("click", () => redirect({ selectionText: urls.join("\n") }, tab).then(() => window.close()));
  }
  document.body.dataset.ready = "1";

  document.getElementById("paste-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("paste-status");
    const text = document.getElementById("paste").value;
    const result = await chrome.runtime.sendMessage({ type: "redirectText", text, tabId: tab?.id });
    out.textContent = result?.ok ? t("popupOpened", [result.resolution.target]) : (result?.message ?? t("notifyTitle"));
    out.className = `status ${result?.ok ? "ok" : "bad"}`;
  });
}

main().catch((err) => {
  document.getElementById("none").hidden = false;
  console.error("Cool Papers popup", err);
});
