// The service worker against a fake chrome.*: listener wiring, tab fallbacks (saved tab groups),
// notifications, omnibox, command and message routing.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { makeChrome, callsOf } from "./fake_chrome.mjs";
import RULES from "../rules.json" with { type: "json" };

const chrome = makeChrome();
globalThis.chrome = chrome;
const bg = await import("../background.js");

beforeEach(() => {
  chrome.calls.length = 0;
  for (const key of Object.keys(chrome.failures)) delete chrome.failures[key];
  for (const key of Object.keys(chrome.stored)) delete chrome.stored[key];
});

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

test("every listener is registered when the module loads (MV3 wakes the worker by event)", () => {
  assert.equal(chrome.runtime.onInstalled.listeners.length, 1);
  assert.equal(chrome.runtime.onMessage.listeners.length, 1);
  assert.equal(chrome.contextMenus.onClicked.listeners.length, 1);
  assert.equal(chrome.commands.onCommand.listeners.length, 1);
  assert.equal(chrome.omnibox.onInputChanged.listeners.length, 1);
  assert.equal(chrome.omnibox.onInputEntered.listeners.length, 1);
});

test("menus: selection/link everywhere, page/frame on the rules' paper hosts", async () => {
  await bg.createMenus();
  const created = callsOf(chrome, "contextMenus.create").map(([props]) => props);
  assert.equal(created.length, 2);
  const [anywhere, page] = created;
  assert.deepEqual(anywhere.contexts, ["selection", "link"]);
  assert.equal(anywhere.documentUrlPatterns, undefined);
  assert.deepEqual(page.contexts, ["page", "frame"]);
  assert.deepEqual(page.documentUrlPatterns, RULES.pageHosts.patterns);
  assert.equal(anywhere.title, "Redirect to Cool Papers");
});

test("menu creation errors (runtime.lastError) reject instead of vanishing", async () => {
  const original = chrome.contextMenus.create;
  chrome.contextMenus.create = (props, callback) =>
    original({ ...props, documentUrlPatterns: props.documentUrlPatterns ? ["arxiv.org/*"] : undefined }, callback);
  try {
    await assert.rejects(bg.createMenus(), /menu cool-papers-page: Invalid url pattern 'arxiv.org\/\*'/);
  } finally {
    chrome.contextMenus.create = original;
  }
});

test("a click opens a new tab next to the clicked one with the default base", async () => {
  const tab = { id: 5, windowId: 2, index: 4 };
  const result = await bg.handleClick({ linkUrl: "https://arxiv.org/abs/2307.01850v3" }, tab);
  assert.equal(result.ok, true);
  assert.deepEqual(callsOf(chrome, "tabs.create")[0][0], {
    url: "https://papers.cool/arxiv/2307.01850",
    active: true,
    openerTabId: 5,
    windowId: 2,
    index: 5,
  });
});

test("saved tab groups: no tab or TAB_ID_NONE falls back to the active tab", async () => {
  for (const tab of [undefined, { id: -1, windowId: -1 }]) {
    chrome.calls.length = 0;
    const result = await bg.handleClick({ selectionText: "hep-th/9901001" }, tab);
    assert.equal(result.ok, true);
    assert.deepEqual(callsOf(chrome, "tabs.query")[0][0], { active: true, lastFocusedWindow: true });
    assert.equal(callsOf(chrome, "tabs.create")[0][0].openerTabId, 7);
  }
});

test("a tab opened from a tab group joins that group; a closed group is no error", async () => {
  const tab = { id: 5, windowId: 2, index: 4, groupId: 11 };
  let result = await bg.handleClick({ selectionText: "2307.01850" }, tab);
  assert.deepEqual(callsOf(chrome, "tabs.group")[0][0], { groupId: 11, tabIds: [result.tabId] });
  chrome.calls.length = 0;
  chrome.failures["tabs.group"] = () => true;
  result = await bg.handleClick({ selectionText: "2307.01850" }, tab);
  assert.equal(result.ok, true);
  chrome.calls.length = 0;
  await bg.handleClick({ selectionText: "2307.01850" }, { ...tab, groupId: -1 });
  assert.equal(callsOf(chrome, "tabs.group").length, 0);
});

test("a failing placement is retried less specifically, then in a new window", async () => {
  chrome.failures["tabs.create"] = ([props]) => "windowId" in props;
  let result = await bg.handleClick({ selectionText: "2307.01850" }, { id: 5, windowId: 2, index: 1 });
  assert.equal(result.ok, true);
  const attempts = callsOf(chrome, "tabs.create").map(([p]) => p);
  assert.equal(attempts.length, 3);
  assert.deepEqual(attempts[2], { url: "https://papers.cool/arxiv/2307.01850", active: true });

  chrome.calls.length = 0;
  chrome.failures["tabs.create"] = () => true;
  result = await bg.handleClick({ selectionText: "2307.01850" }, { id: 5, windowId: 2, index: 1 });
  assert.equal(result.ok, true);
  assert.equal(result.tabId, 900);
  assert.equal(callsOf(chrome, "windows.create").length, 1);
});

test("current-tab mode updates the tab, and falls back to a new tab if that fails", async () => {
  chrome.stored.openIn = "currentTab";
  chrome.stored.base = "http://127.0.0.1:5000/";
  let result = await bg.handleClick({ pageUrl: "https://openreview.net/forum?id=B18WgG-CZ" }, { id: 5, windowId: 2, index: 1 });
  assert.equal(result.mode, "currentTab");
  assert.deepEqual(callsOf(chrome, "tabs.update")[0], [5, { url: "http://127.0.0.1:5000/venue/B18WgG-CZ@OpenReview" }]);
  chrome.calls.length = 0;
  chrome.failures["tabs.update"] = () => true;
  result = await bg.handleClick({ pageUrl: "https://arxiv.org/list/cs.CL/new" }, { id: 5, windowId: 2, index: 1 });
  assert.equal(result.ok, true);
  assert.equal(callsOf(chrome, "tabs.create")[0][0].url, "http://127.0.0.1:5000/arxiv/cs.CL");
});

test("nothing found: a notification names what was checked, and nothing opens", async () => {
  const result = await bg.handleClick({ linkUrl: "https://example.com/x", pageUrl: "https://example.com/" }, { id: 5 });
  assert.equal(result.ok, false);
  const [[id, options]] = callsOf(chrome, "notifications.create");
  assert.equal(id, result.notificationId);
  assert.equal(options.type, "basic");
  assert.match(options.message, /in the link or the page address\./);
  assert.equal(options.iconUrl, "chrome-extension://testextensionid/icons/icon128.png");
  assert.equal(callsOf(chrome, "tabs.create").length, 0);
});

test("a menu click without selectionText never throws (the reference's TypeError)", async () => {
  for (const info of [{ menuItemId: bg.MENU_PAGE, pageUrl: "https://arxiv.org/a/su_j_1" }, { menuItemId: bg.MENU_ANYWHERE }]) {
    chrome.calls.length = 0;
    chrome.contextMenus.onClicked.fire(info, undefined);
    await flush();
    await flush();
    assert.equal(callsOf(chrome, "notifications.create").length, 1);
  }
  const none = await bg.handleClick(undefined, undefined);
  assert.equal(none.ok, false);
  assert.match(none.message, /nothing to look at/);
});

test("the omnibox: suggestion text is escaped XML, Enter follows the disposition", async () => {
  chrome.calls.length = 0;
  chrome.omnibox.onInputChanged.fire("Q&A <models>", (list) => chrome.calls.push({ name: "suggest", args: [list] }));
  await flush();
  await flush();
  const [[suggestion]] = callsOf(chrome, "omnibox.setDefaultSuggestion");
  // the words searched for, in words (not the search URL); the user's "&" and "<" escaped for the omnibox
  assert.equal(suggestion.description, "Cool Papers: search for models");
  assert.equal(await bg.omniboxDescription("https://papers.cool/venue/a&b<c"), "Cool Papers: open Cool Papers page /venue/a&amp;b");
  chrome.calls.length = 0;
  assert.equal(await bg.omniboxDescription("R&D <b>x2</b>"), "Cool Papers: search for x2");
  assert.equal(await bg.omniboxDescription("a&b <i>"), "Cool Papers: no paper or words found yet");

  chrome.calls.length = 0;
  chrome.omnibox.onInputEntered.fire("2307.01850", "currentTab");
  await flush();
  await flush();
  assert.deepEqual(callsOf(chrome, "tabs.update")[0], [7, { url: "https://papers.cool/arxiv/2307.01850" }]);

  chrome.calls.length = 0;
  const result = await bg.onOmniboxEntered("self-consuming models", "newBackgroundTab");
  assert.equal(result.resolution.kind, "search");
  assert.equal(callsOf(chrome, "tabs.create")[0][0].active, false);
});

test("the keyboard command redirects the tab in place, asking the content script when the URL is hidden", async () => {
  let result = await bg.onCommand("redirect-current-tab", { id: 7, windowId: 3, index: 2, url: "https://arxiv.org/abs/2307.01850" });
  assert.equal(result.mode, "currentTab");
  assert.deepEqual(callsOf(chrome, "tabs.update")[0], [7, { url: "https://papers.cool/arxiv/2307.01850" }]);
  chrome.calls.length = 0;
  result = await bg.onCommand("redirect-current-tab", { id: 7, windowId: 3, index: 2 });
  assert.equal(callsOf(chrome, "tabs.sendMessage").length, 1);
  assert.equal(result.resolution.target, "https://papers.cool/arxiv/2204.00595");
  const other = await bg.onCommand("something-else", { id: 7 });
  assert.equal(other.ok, false);
});

async function send(message, sender) {
  let answer;
  const done = new Promise((resolve) => {
    const keepOpen = chrome.runtime.onMessage.listeners[0](message, sender, (value) => {
      answer = value;
      resolve();
    });
    if (keepOpen !== true) resolve();
  });
  await done;
  return answer;
}

const PAGE = { id: "testextensionid", url: "chrome-extension://testextensionid/options.html" };
const CONTENT = { id: "testextensionid", url: "https://arxiv.org/abs/2307.01850", tab: { id: 7 } };

test("messages: redirect from extension pages, resolveMany from content scripts, nothing from others", async () => {
  const redirected = await send({ type: "redirect", info: { selectionText: "2204.00595" } }, PAGE);
  assert.equal(redirected.ok, true);
  assert.equal(redirected.resolution.target, "https://papers.cool/arxiv/2204.00595");

  const refused = await send({ type: "redirect", info: { selectionText: "2204.00595" } }, CONTENT);
  assert.equal(refused.ok, false);
  assert.match(refused.error, /not allowed/);

  const resolved = await send({ type: "resolveMany", items: [{ text: "https://arxiv.org/abs/hep-th/9901001", context: "link" }, { text: "x", context: "bogus" }] }, CONTENT);
  assert.equal(resolved.results[0].target, "https://papers.cool/arxiv/hep-th/9901001");
  assert.equal(resolved.results[1], null);
  assert.equal(resolved.openIn, "newTab");

  assert.equal(await send({ type: "redirect" }, { id: "another-extension", url: "chrome-extension://x/" }), undefined);
  assert.deepEqual(await send({ type: "createMenus" }, PAGE), { ok: true, ids: [bg.MENU_ANYWHERE, bg.MENU_PAGE] });
  assert.equal((await send({ type: "createMenus" }, CONTENT)).ok, false);
  const unknown = await send({ type: "nope" }, PAGE);
  assert.match(unknown.error, /unknown message type/);
});

test("pasted text is a selection: a URL yields its paper or 'no paper in this URL', never a search", async () => {
  assert.deepEqual(bg.infoFromText(" https://openreview.net/forum?id=x "), { selectionText: " https://openreview.net/forum?id=x " });
  assert.deepEqual(bg.infoFromText(undefined), { selectionText: "" });
  const found = await bg.handleClick(bg.infoFromText(" https://openreview.net/forum?id=x "), { id: 5 });
  assert.equal(found.resolution.target, "https://papers.cool/venue/x@OpenReview");
  for (const url of ["https://dl.acm.org/doi/10.1145/3292500.3330701", "https://github.com/bojone/rerope"]) {
    chrome.calls.length = 0;
    const result = await send({ type: "redirectText", text: url }, PAGE);
    assert.equal(result.ok, false);
    assert.match(result.message, /^No paper in this URL/);
    assert.equal(callsOf(chrome, "tabs.create").length, 0);
    assert.equal(await bg.omniboxDescription(url), "Cool Papers: no paper in this URL");
    const entered = await bg.onOmniboxEntered(url, "currentTab");
    assert.equal(entered.ok, false);
    assert.match(entered.message, /^No paper in this URL/);
  }
  // words still search; two URLs are not one URL
  assert.equal((await send({ type: "redirectText", text: "token healing" }, PAGE)).resolution.kind, "search");
});

test("omnibox and notifications name kinds and venues as people do", async () => {
  assert.equal(await bg.omniboxDescription("https://openreview.net/forum?id=B18WgG-CZ"), "Cool Papers: open OpenReview B18WgG-CZ");
  assert.equal(await bg.omniboxDescription("https://www.ijcai.org/proceedings/2023/0012"), "Cool Papers: open IJCAI 2023 #12");
  assert.equal(await bg.omniboxDescription("2307.01850 hep-th/9901001"), "Cool Papers: open arXiv 2307.01850, hep-th/9901001");
  assert.equal(
    await bg.omniboxDescription("https://openaccess.thecvf.com/content/CVPR2025/html/Park_SplineGS_CVPR_2025_paper.html"),
    "Cool Papers: open CVPR 2025 Park SplineGS",
  );
  assert.equal(
    await bg.omniboxDescription("https://openreview.net/forum?id=a1 https://aclanthology.org/P19-1001/"),
    "Cool Papers: open Conference papers OpenReview a1, ACL Anthology P19-1001",
  );
  for (const description of [await bg.omniboxDescription("https://ojs.aaai.org/index.php/AAAI/article/view/38818")]) {
    assert.ok(!description.includes("@") && !/\bvenue\b/.test(description), description);
  }
});

test("a context-menu click passes the clicked tab's title: publishers' paper pages search for it", async () => {
  const tab = { id: 9, windowId: 1, index: 0, url: "https://ieeexplore.ieee.org/document/7780459",
    title: "Deep Residual Learning for Image Recognition | IEEE Conference Publication | IEEE Xplore" };
  chrome.contextMenus.onClicked.fire({ menuItemId: bg.MENU_PAGE, pageUrl: tab.url }, tab);
  await flush();
  await flush();
  assert.equal(callsOf(chrome, "tabs.create")[0][0].url,
    "https://papers.cool/arxiv/search?highlight=1&query=Deep%20Residual%20Learning%20for%20Image%20Recognition");
  // the keyboard command too; a title of another page (tab moved on) is not used
  chrome.calls.length = 0;
  const result = await bg.onCommand("redirect-current-tab", tab);
  assert.equal(result.resolution.kind, "search");
  chrome.calls.length = 0;
  const moved = await bg.handleClick({ pageUrl: tab.url }, { ...tab, url: "https://example.com/" });
  assert.equal(moved.ok, false);
  // the tab's title never overrides one given with the click, nor a selection of words
  const given = await bg.handleClick({ pageUrl: tab.url, pageTitle: "Given title" }, tab);
  assert.match(given.resolution.target, /query=Given%20title$/);
  const words = await bg.handleClick({ pageUrl: tab.url, selectionText: "token healing" }, tab);
  assert.match(words.resolution.target, /query=token%20healing$/);
});
