// Content script (classic script: content scripts cannot be ES modules) for arXiv abstract and
// listing pages, OpenReview forum and group pages, and ACL Anthology pages. It finds paper links in
// the page, asks the background to resolve them (one resolver, the user's base), and adds
// "Cool Papers" links. Page layouts change without notice, so every step tolerates missing
// elements: a failure only means fewer links, never an exception on the host page.
(() => {
  "use strict";

  const LINK_CLASS = "cool-papers-link";
  const MAX_ITEMS = 2000;
  const ACL_PAPER_PATH = /^\/(?:\d{4}\.[a-z0-9-]+\.\d+|[A-Z]\d{2}-\d{4})\/?$/;

  function label() {
    try {
      return chrome.i18n.getMessage("contentLink") || "Cool Papers";
    } catch {
      return "Cool Papers";
    }
  }

  function absolute(href) {
    try {
      return new URL(href, location.href).href;
    } catch {
      return "";
    }
  }

  function text(el) {
    return (el?.textContent ?? "").replace(/\s+/g, " ").trim();
  }

  function site() {
    const host = location.hostname.replace(/^www\./, "");
    if (host === "arxiv.org" || host.endsWith(".arxiv.org")) {
      if (location.pathname.startsWith("/abs/")) return "arxiv-abs";
      if (location.pathname.startsWith("/list/")) return "arxiv-list";
    }
    if (host === "openreview.net") {
      if (location.pathname.startsWith("/forum")) return "openreview-forum";
      if (location.pathname.startsWith("/group")) return "openreview-group";
    }
    if (host === "aclanthology.org") return ACL_PAPER_PATH.test(location.pathname) ? "acl-paper" : "acl-other";
    return "other";
  }

  /** Paper links on this page: [{url, title, anchor}] (anchor: where a per-paper link goes). */
  function findItems(kind) {
    const items = [];
    const seen = new Set();
    const add = (url, title, anchor) => {
      if (!url || seen.has(url) || items.length >= MAX_ITEMS) return;
      seen.add(url);
      items.push({ url, title, anchor });
    };
    if (kind === "arxiv-list") {
      for (const dt of document.querySelectorAll("dl dt")) {
        const link = dt.querySelector('a[href*="/abs/"]');
        if (!link) continue;
        // The title sits in the <dd> that follows the <dt>.
        const dd = dt.nextElementSibling;
        const title = text(dd?.querySelector(".list-title")).replace(/^Title:\s*/, "");
        add(absolute(link.getAttribute("href")), title, dt);
      }
    } else if (kind === "openreview-group" || kind === "openreview-forum") {
      for (const link of document.querySelectorAll('a[href*="forum?id="]')) {
        if (link.classList.contains(LINK_CLASS)) continue;
        const url = absolute(link.getAttribute("href"));
        if (kind === "openreview-forum" && url.split("#")[0] === location.href.split("#")[0]) continue;
        add(url, text(link), null);
      }
    } else if (kind === "acl-other") {
      for (const link of document.querySelectorAll("a[href]")) {
        const url = absolute(link.getAttribute("href"));
        try {
          const parsed = new URL(url);
          if (parsed.hostname === location.hostname && ACL_PAPER_PATH.test(parsed.pathname)) add(url, text(link), null);
        } catch {
          // ignore malformed hrefs
        }
      }
    }
    return items;
  }

  function makeLink(target, openIn, extraClass) {
    const a = document.createElement("a");
    a.className = `${LINK_CLASS}${extraClass ? ` ${extraClass}` : ""}`;
    a.href = target;
    a.textContent = label();
    a.title = target;
    if (openIn !== "currentTab") {
      a.target = "_blank";
      a.rel = "noopener";
    }
    return a;
  }

  function ask(texts) {
    return chrome.runtime.sendMessage({
      type: "resolveMany",
      items: texts.map((t) => ({ text: t, context: "link" })),
    });
  }

  // One floating link, the place of last resort when a page's layout is not the one we know.
  function floating(target, openIn) {
    let a = document.getElementById("cool-papers-float");
    if (!a) {
      a = makeLink(target, openIn, "cool-papers-float");
      a.id = "cool-papers-float";
      (document.body ?? document.documentElement).append(a);
    }
    a.href = target;
    a.title = target;
    return a;
  }

  function placeOnAbs(target, openIn) {
    // "Access Paper" box on arXiv abstract pages.
    const list = document.querySelector(".extra-services .full-text ul");
    if (list) {
      const li = document.createElement("li");
      li.append(makeLink(target, openIn, "abs-button"));
      list.append(li);
      return;
    }
    const title = document.querySelector("h1.title");
    if (title) {
      title.after(makeLink(target, openIn, "inline"));
      return;
    }
    floating(target, openIn);
  }

  function placeOnAclPaper(target, openIn) {
    const block = document.querySelector(".acl-paper-link-block");
    if (block) {
      block.append(makeLink(target, openIn, "btn btn-secondary acl-button"));
      return;
    }
    const title = document.querySelector("#title, h2");
    if (title) {
      title.after(makeLink(target, openIn, "inline"));
      return;
    }
    floating(target, openIn);
  }

  function placeOnForum(target, openIn) {
    const title = document.querySelector(".forum-title h2, .note_content_title, h2.citation_title");
    if (!title) return false;
    if (!title.querySelector(`.${LINK_CLASS}`)) title.append(makeLink(target, openIn, "inline"));
    document.getElementById("cool-papers-float")?.remove();
    return true;
  }

  async function decoratePage(kind) {
    const items = findItems(kind);
    const texts = [location.href, ...items.map((item) => item.url)];
    // OpenReview group pages: the whole group as one comma list (one request resolves all).
    const groupText = kind === "openreview-group" && items.length ? items.map((item) => item.url).join("\n") : null;
    if (groupText) texts.push(groupText);
    const answer = await ask(texts);
    if (!answer || !Array.isArray(answer.results)) return;
    const [self, ...rest] = answer.results;
    const perItem = rest.slice(0, items.length);
    const group = groupText ? rest[items.length] : null;

    if (kind === "arxiv-list") {
      items.forEach((item, i) => {
        const r = perItem[i];
        if (!r || !item.anchor || item.anchor.querySelector(`.${LINK_CLASS}`)) return;
        item.anchor.append(" [", makeLink(r.target, answer.openIn, "list-link"), "]");
      });
      if (self) {
        const heading = document.querySelector("#dlpage h1, #dlpage h3, h1");
        if (heading) heading.append(" ", makeLink(self.target, answer.openIn, "inline listing-link"));
      }
      return;
    }
    if (kind === "arxiv-abs" && self) return placeOnAbs(self.target, answer.openIn);
    if (kind === "acl-paper" && self) return placeOnAclPaper(self.target, answer.openIn);
    if (kind === "openreview-forum" && self) {
      if (!placeOnForum(self.target, answer.openIn)) floating(self.target, answer.openIn);
      return;
    }
    if (kind === "openreview-group" && group) floating(group.target, answer.openIn);
  }

  function safely(fn) {
    try {
      const result = fn();
      if (result && typeof result.catch === "function") result.catch(() => {});
    } catch {
      // never break the host page
    }
  }

  const kind = site();

  safely(() => {
    chrome.runtime.onMessage.addListener((message, _sender, reply) => {
      if (message?.type !== "detectPapers") return false;
      try {
        const items = findItems(kind).map(({ url, title }) => ({ url, title }));
        reply({ pageUrl: location.href, kind, items });
      } catch {
        reply({ pageUrl: location.href, kind, items: [] });
      }
      return false;
    });
  });

  safely(() => decoratePage(kind));

  // OpenReview renders client-side: redo the page once its content (titles, note lists) arrives.
  if (kind === "openreview-forum" || kind === "openreview-group") {
    let timer = null;
    let runs = 0;
    safely(() => {
      const observer = new MutationObserver(() => {
        if (timer || runs >= 20) return;
        timer = setTimeout(() => {
          timer = null;
          runs += 1;
          if (kind === "openreview-forum" && document.querySelector(`h2 .${LINK_CLASS}, .note_content_title .${LINK_CLASS}`)) {
            observer.disconnect();
            return;
          }
          safely(() => decoratePage(kind));
        }, 400);
      });
      observer.observe(document.documentElement, { childList: true, subtree: true });
      setTimeout(() => observer.disconnect(), 30000);
    });
  }
})();
