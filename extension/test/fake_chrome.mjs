// A recording stand-in for the chrome.* APIs the service worker uses, for Node tests.
import { readFileSync } from "node:fs";

const messages = JSON.parse(readFileSync(new URL("../_locales/en/messages.json", import.meta.url), "utf8"));

function event() {
  const listeners = [];
  return { listeners, addListener: (fn) => listeners.push(fn), fire: (...args) => listeners.map((fn) => fn(...args)) };
}

export function makeChrome({ activeTab = { id: 7, windowId: 3, index: 2, url: "https://example.com/" } } = {}) {
  const calls = [];
  const stored = {};
  const record = (name, args) => calls.push({ name, args });
  const failures = {}; // api name -> predicate(args) that says "throw"
  const maybeFail = (name, args) => {
    if (failures[name]?.(args)) throw new Error(`${name} failed (test)`);
  };
  let nextTab = 100;
  const chrome = {
    calls,
    failures,
    stored,
    i18n: {
      getMessage: (key, subs) => {
        const text = messages[key]?.message ?? "";
        const list = subs === undefined ? [] : [].concat(subs);
        return text.replace(/\$(\d)/g, (_, n) => list[Number(n) - 1] ?? "");
      },
      getUILanguage: () => "en",
    },
    runtime: {
      id: "testextensionid",
      getURL: (path) => `chrome-extension://testextensionid/${path}`,
      onInstalled: event(),
      onMessage: event(),
    },
    contextMenus: {
      onClicked: event(),
      removeAll: async () => record("contextMenus.removeAll", []),
      create: (props, callback) => {
        record("contextMenus.create", [props]);
        const bad = (props.documentUrlPatterns ?? []).find((p) => !/^(\*|https?|file|ftp):\/\/[^/]*\//.test(p));
        chrome.runtime.lastError = bad ? { message: `Invalid url pattern '${bad}'` } : undefined;
        callback?.();
        chrome.runtime.lastError = undefined;
      },
    },
    commands: { onCommand: event() },
    omnibox: {
      onInputChanged: event(),
      onInputEntered: event(),
      setDefaultSuggestion: (s) => record("omnibox.setDefaultSuggestion", [s]),
    },
    storage: {
      sync: {
        get: async (keys) => Object.fromEntries(keys.filter((k) => k in stored).map((k) => [k, stored[k]])),
        set: async (values) => Object.assign(stored, values),
      },
    },
    notifications: {
      create: async (id, options) => {
        record("notifications.create", [id, options]);
        return id;
      },
    },
    tabs: {
      query: async (q) => {
        record("tabs.query", [q]);
        return activeTab ? [activeTab] : [];
      },
      get: async (id) => {
        record("tabs.get", [id]);
        if (activeTab && id === activeTab.id) return activeTab;
        throw new Error("no tab");
      },
      update: async (id, props) => {
        record("tabs.update", [id, props]);
        maybeFail("tabs.update", [id, props]);
        return { id, ...props };
      },
      create: async (props) => {
        record("tabs.create", [props]);
        maybeFail("tabs.create", [props]);
        nextTab += 1;
        return { id: nextTab, windowId: props.windowId ?? activeTab?.windowId ?? 1, ...props };
      },
      group: async (options) => {
        record("tabs.group", [options]);
        maybeFail("tabs.group", [options]);
        return options.groupId;
      },
      sendMessage: async (id, message) => {
        record("tabs.sendMessage", [id, message]);
        maybeFail("tabs.sendMessage", [id, message]);
        return { pageUrl: "https://arxiv.org/abs/2204.00595", items: [] };
      },
    },
    windows: {
      create: async (props) => {
        record("windows.create", [props]);
        return { id: 9, tabs: [{ id: 900, url: props.url }] };
      },
    },
  };
  return chrome;
}

export function callsOf(chrome, name) {
  return chrome.calls.filter((c) => c.name === name).map((c) => c.args);
}
