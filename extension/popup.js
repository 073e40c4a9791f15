// Popup: the papers detected on the active tab (from its URL and, on arXiv/OpenReview/ACL pages,
// from the content script's scan of the page), each opened through the background's handleClick,
// and a box for any pasted text or URL. popup.html?tab=<id> shows a given tab (keyboard use, tests).
import { resolve, resolveClick } from "./resolver.js";
import { loadSettings } from "./settings.js";
import { localize, t } from "./i18n.js";

const list = document.getElementById("papers");
const openAll = document.getElementById("open-all");

async function targetTab() {
  const wanted = Number(new URLSearchParams(location.search).get("tab"));
  if (Number.isInteger(wanted) && wanted > 0) {
    try {
      return await chrome.tabs.get(wanted);
    } catch {
      return null;
    }
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

function addItem(label, kind, info, tab) {
  const li = document.createElement("li");
  const text = document.createElement("span");
  text.className = "ids";
  const kindEl = document.createElement("span");
  kindEl.className = "kind";
  kindEl.textContent = t(`kind_${kind}`);
  text.append(kindEl, document.createTextNode(label));
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = t("popupOpen");
  button.addEventListener("click", () => redirect(info, tab).then(() => window.close()));
  li.append(text, button);
  list.append(li);
}

/** Collect unique resolutions: the tab's own URL first, then each link the content script found. */
export function collect(tab, scan, base) {
  const found = [];
  const seen = new Set();
  const push = (resolution, label, info) => {
    if (!resolution || seen.has(resolution.target)) return;
    seen.add(resolution.target);
    found.push({ resolution, label, info });
  };
  const pageUrl = scan?.pageUrl || tab?.url;
  if (pageUrl) {
    const info = { pageUrl };
    const r = resolveClick(info, base);
    push(r, r ? r.ids.join(", ") || r.target : "", info);
  }
  for (const item of scan?.items ?? []) {
    const url = String(item?.url ?? "");
    const r = resolve(url, "link", base);
    if (r) push(r, item.title ? `${item.title} (${r.ids.join(", ")})` : r.ids.join(", "), { linkUrl: url });
  }
  return found;
}

async function main() {
  localize();
  const [{ base }, tab] = await Promise.all([loadSettings(chrome.storage.sync), targetTab()]);
  const scan = tab ? await scanPage(tab) : null;
  const found = collect(tab, scan, base);
  for (const entry of found) addItem(entry.label, entry.resolution.kind, entry.info, tab);
  document.getElementById("none").hidden = found.length > 0;

  // Several papers of one kind (arXiv, or venue) open together as one comma-list page.
  const urls = (scan?.items ?? []).map((item) => String(item?.url ?? "")).filter(Boolean);
  const together = urls.length > 1 ? resolve(urls.join("\n"), "selection", base) : null;
  if (together && together.ids.length > 1) {
    openAll.hidden = false;
    openAll.textContent = t("popupOpenAll", [String(together.ids.length)]);
    openAll.addEventListener("click", () => redirect({ selectionText: urls.join("\n") }, tab).then(() => window.close()));
  }

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
