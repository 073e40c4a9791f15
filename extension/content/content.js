// Content script (classic script: content scripts cannot be ES modules) for the paper pages of arXiv
// (abstracts, listings), OpenReview (forums, groups), the ACL Anthology (papers, volumes), CVF open
// access, USENIX, AAAI (OJS) and ADS. It finds the page's paper (and the paper links on listings),
// asks the background to resolve them (one resolver, the user's base), and adds "Cool Papers" links.
// OpenReview and ADS render client-side and ADS navigates with pushState: the script follows both.
// Page layouts change without notice, so every step tolerates missing elements: a failure only
// means fewer links, or one floating link, never an exception on the host page.
(() => {
  "use strict";

  const LINK_CLASS = "cool-papers-link";
  const FLOAT_ID = "cool-papers-float";
  const MAX_ITEMS = 2000;
  const ACL_PAPER_PATH = /^\/(?:\d{4}\.[a-z0-9-]+\.\d+|[A-Z]\d{2}-\d{4})\/?$/;
  const CVF_PAPER_PATH = /^\/content(?:\/(?:CVPR|ICCV|WACV)\d{4}|_(?:cvpr|iccv|wacv|CVPR|ICCV|WACV)_\d{4})\/html\/[^/]+_paper\.html$/;
  const USENIX_PAPER_PATH = /^\/conference\/[a-z]+\d{2}\/presentation\/[A-Za-z0-9][A-Za-z0-9_-]*\/?$/;
  const AAAI_PAPER_PATH = /^\/(?:ojs\/)?index\.php\/AAAI\/article\/view\/\d+(?:\/\d+)?\/?$/;
  const ADS_ABS_PATH = /^\/abs\/[^/]+/;

  // Where a paper page's title is, per kind: the link goes right after it (or inside it, for headings
  // that hold only text), and the popup shows its text.
  const TITLES = {
    "arxiv-abs": "h1.title",
    "openreview-forum": ".forum-title h2, .note_content_title, h2.citation_title",
    "acl-paper": "#title",
    "cvf-paper": "#papertitle",
    "usenix-paper": "h1#page-title, h1.page-title, #content h1, h1",
    "aaai-paper": "h1.page_title, .obj_article_details h1, h1",
    "ads-abs": "h2.s-abstract-title, article h2, h2",
  };

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
    const path = location.pathname;
    if (host === "arxiv.org" || host.endsWith(".arxiv.org")) {
      if (path.startsWith("/abs/")) return "arxiv-abs";
      if (path.startsWith("/list/")) return "arxiv-list";
    }
    if (host === "openreview.net") {
      if (path.startsWith("/forum")) return "openreview-forum";
      if (path.startsWith("/group")) return "openreview-group";
    }
    if (host === "aclanthology.org") return ACL_PAPER_PATH.test(path) ? "acl-paper" : "acl-other";
    if (host === "openaccess.thecvf.com" && CVF_PAPER_PATH.test(path)) return "cvf-paper";
    if (host === "usenix.org" && USENIX_PAPER_PATH.test(path)) return "usenix-paper";
    if (host === "ojs.aaai.org" && AAAI_PAPER_PATH.test(path)) return "aaai-paper";
    if (host === "ui.adsabs.harvard.edu") return ADS_ABS_PATH.test(path) ? "ads-abs" : "ads-other";
    return "other";
  }

  /** The title of the page's own paper, where the page shows one. */
  function pageTitle(kind) {
    const selector = TITLES[kind];
    if (!selector) return "";
    return text(document.querySelector(selector)).replace(/^Title:\s*/, "").replace(new RegExp(`\\s*${label()}$`), "");
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
      // volume and event pages: one row per paper, its title a link to the paper's page
      for (const link of document.querySelectorAll("a[href]")) {
        if (link.classList.contains(LINK_CLASS)) continue;
        const url = absolute(link.getAttribute("href"));
        try {
          const parsed = new URL(url);
          if (parsed.hostname === location.hostname && ACL_PAPER_PATH.test(parsed.pathname)) {
            add(url, text(link), link.closest("p, li, tr") ?? link.parentElement);
          }
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
    let a = document.getElementById(FLOAT_ID);
    if (!a) {
      a = makeLink(target, openIn, "cool-papers-float");
      a.id = FLOAT_ID;
      (document.body ?? document.documentElement).append(a);
    }
    a.href = target;
    a.title = target;
    return a;
  }

  function removeLinks() {
    for (const a of document.querySelectorAll(`a.${LINK_CLASS}`)) a.remove();
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

  /** Inline next to the paper's title; false while the page has not rendered it yet. */
  function placeByTitle(kind, target, openIn) {
    const title = document.querySelector(TITLES[kind]);
    if (!title) return false;
    const existing = document.querySelector(`a.${LINK_CLASS}.inline`);
    if (existing && existing.href === target && existing.isConnected) return true;
    existing?.remove();
    const link = makeLink(target, openIn, "inline");
    // A heading that holds only text takes the link inside; one with other content gets it right after.
    if (title.children.length === 0 || kind === "openreview-forum") title.append(" ", link);
    else title.after(link);
    document.getElementById(FLOAT_ID)?.remove();
    return true;
  }

  /** The per-paper link on an ACL volume row: in its button row (pdf, bib, abs) when there is one. */
  function placeOnAclRow(item, target, openIn) {
    const row = item.anchor;
    if (!row || row.querySelector(`.${LINK_CLASS}`)) return;
    const buttons = row.querySelector(".list-button-row");
    if (buttons) {
      const link = makeLink(target, openIn, "badge badge-light align-middle mr-1 acl-row-link");
      buttons.querySelector("br") ? buttons.querySelector("br").before(link) : buttons.append(link);
      return;
    }
    const strong = row.querySelector("strong") ?? row;
    strong.after(" ", makeLink(target, openIn, "inline acl-row-link"));
  }

  /** On ADS abstracts of journal papers, the arXiv e-print link names the paper. */
  function adsEprint() {
    const link = document.querySelector('a[href*="arxiv.org/abs/"], a[href*="arxiv.org/pdf/"]');
    return link ? absolute(link.getAttribute("href")) : null;
  }

  let decorated = null; // {href, target} of the last decoration of a single-paper page

  async function decoratePage(kind) {
    const href = location.href;
    const items = findItems(kind);
    const texts = [href, ...items.map((item) => item.url)];
    // OpenReview group pages: the whole group as one comma list (one request resolves all).
    const groupText = kind === "openreview-group" && items.length ? items.map((item) => item.url).join("\n") : null;
    if (groupText) texts.push(groupText);
    const eprint = kind === "ads-abs" ? adsEprint() : null;
    if (eprint) texts.push(eprint);
    const answer = await ask(texts);
    if (!answer || !Array.isArray(answer.results) || href !== location.href) return; // navigated meanwhile
    const [own, ...rest] = answer.results;
    const perItem = rest.slice(0, items.length);
    const group = groupText ? rest[items.length] : null;
    const self = own ?? (eprint ? rest[rest.length - 1] : null);

    if (kind === "arxiv-list") {
      items.forEach((item, i) => {
        const r = perItem[i];
        if (!r || !item.anchor || item.anchor.querySelector(`.${LINK_CLASS}`)) return;
        item.anchor.append(" [", makeLink(r.target, answer.openIn, "list-link"), "]");
      });
      if (self) {
        const heading = document.querySelector("#dlpage h1, #dlpage h3, h1");
        if (heading && !heading.querySelector(`.${LINK_CLASS}`)) heading.append(" ", makeLink(self.target, answer.openIn, "inline listing-link"));
      }
      return;
    }
    if (kind === "acl-other") {
      items.forEach((item, i) => perItem[i] && placeOnAclRow(item, perItem[i].target, answer.openIn));
      return;
    }
    if (kind === "openreview-group") {
      if (group) floating(group.target, answer.openIn);
      return;
    }
    if (!self) return;
    decorated = { href, target: self.target };
    if (kind === "arxiv-abs") return placeOnAbs(self.target, answer.openIn);
    if (kind === "acl-paper") return placeOnAclPaper(self.target, answer.openIn);
    if (TITLES[kind] && !placeByTitle(kind, self.target, answer.openIn)) floating(self.target, answer.openIn);
  }

  function safely(fn) {
    try {
      const result = fn();
      if (result && typeof result.catch === "function") result.catch(() => {});
    } catch {
      // never break the host page
    }
  }

  let kind = site();

  safely(() => {
    chrome.runtime.onMessage.addListener((message, _sender, reply) => {
      if (message?.type !== "detectPapers") return false;
      try {
        const items = findItems(kind).map(({ url, title }) => ({ url, title }));
        reply({ pageUrl: location.href, kind, title: pageTitle(kind), items });
      } catch {
        reply({ pageUrl: location.href, kind, title: "", items: [] });
      }
      return false;
    });
  });

  safely(() => decoratePage(kind));

  const host = location.hostname;
  const spa = host === "openreview.net" || host === "ui.adsabs.harvard.edu";
  if (!spa) return;

  // A single-page application: after a pushState the old links name the old paper. Start over.
  let lastHref = location.href;
  function followNavigation() {
    if (location.href === lastHref) return false;
    lastHref = location.href;
    kind = site();
    decorated = null;
    removeLinks();
    safely(() => decoratePage(kind));
    return true;
  }

  // The content arrives after the first paint, and the app may re-render away what we added: place the
  // link again when the title shows up or our link is gone.
  function needsDecoration() {
    if (kind === "openreview-group") return true;
    if (!TITLES[kind] || !decorated || decorated.href !== location.href) return Boolean(TITLES[kind]);
    const inline = document.querySelector(`a.${LINK_CLASS}.inline`);
    return !inline || !inline.isConnected || (!!document.querySelector(TITLES[kind]) && !!document.getElementById(FLOAT_ID));
  }

  let timer = null;
  let runs = 0;
  const maxRuns = host === "openreview.net" ? 20 : Infinity;
  safely(() => {
    const observer = new MutationObserver(() => {
      if (timer || runs >= maxRuns) return;
      timer = setTimeout(() => {
        timer = null;
        if (followNavigation()) return;
        if (!needsDecoration()) return;
        runs += 1;
        safely(() => decoratePage(kind));
      }, 300);
    });
    observer.observe(document.documentElement, { childList: true, subtree: true });
    if (host === "openreview.net") setTimeout(() => observer.disconnect(), 30000);
  });
  // History changes that come without DOM changes: back/forward, the Navigation API where there is one,
  // and a slow poll as the last resort (content scripts cannot see the page's own pushState calls).
  safely(() => window.addEventListener("popstate", () => safely(followNavigation)));
  safely(() => globalThis.navigation?.addEventListener?.("navigatesuccess", () => safely(followNavigation)));
  if (host === "ui.adsabs.harvard.edu") safely(() => setInterval(() => safely(followNavigation), 1000));
})();
