// The way back from a Cool Papers page: for the arXiv ids on it, their abstract and PDF; for venue
// papers whose rules.json entry spells the venue's own page (display.source: OpenReview forum, ACL
// Anthology page, PMLR, USENIX, AAAI), that page. Where no reverse is defined, nothing. Pure ES module.
import RULES from "./rules.json" with { type: "json" };
import { grammar, DEFAULT_BASE } from "./resolver.js";
import { venueParts } from "./labels.js";

function fillId(template, id) {
  return template.replace(/\{id\}/g, id);
}

function fillGroups(template, match) {
  return template.replace(/\{(\d+)\}/g, (_, n) => encodeURIComponent(match[Number(n)] ?? ""));
}

/** The path of `url` below one of the bases ("/arxiv/2307.01850"), or null when it is not a Cool Papers page. */
function pathUnder(url, bases) {
  let page;
  try {
    page = new URL(url);
  } catch {
    return null;
  }
  for (const base of bases) {
    let root;
    try {
      root = new URL(base);
    } catch {
      continue;
    }
    const prefix = root.pathname.replace(/\/+$/, "");
    const hosts = root.hostname === "papers.cool" ? ["papers.cool", "www.papers.cool"] : [root.hostname];
    const sameSite = page.protocol === root.protocol || root.hostname === "papers.cool";
    if (sameSite && hosts.includes(page.hostname) && page.port === root.port && page.pathname.startsWith(`${prefix}/`)) {
      return page.pathname.slice(prefix.length);
    }
  }
  return null;
}

function decoded(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Links back from a Cool Papers page on `base` (or papers.cool itself):
 * [{id, venue, paper, links: [{label, url}]}] where label is an i18n key (sourceAbstract, sourcePdf)
 * or, for a venue, {venue: "OpenReview"}. Empty for other pages.
 */
export function sourcesOf(url, base = DEFAULT_BASE) {
  const path = pathUnder(url, [base, DEFAULT_BASE]);
  if (path === null) return [];
  const [, section, spec = ""] = /^\/(arxiv|venue)\/(.*)$/.exec(path) ?? [];
  if (!section || !spec) return [];
  const out = [];
  const seen = new Set();
  for (const item of decoded(spec).split(",").slice(0, RULES.maxIdsPerTarget)) {
    const key = item.trim();
    if (!key || seen.has(key)) continue;
    seen.add(key);
    if (section === "arxiv") {
      const ids = grammar.arxivIds(key);
      // the whole item must be the id (a version or subject class aside), not a category or a longer string
      if (ids.length !== 1 || !key.replace(/v[0-9]+$/, "").replace(/^([a-z-]+)\.[A-Z]{2}\//, "$1/").endsWith(ids[0])) continue;
      out.push({ id: ids[0], venue: "arXiv", paper: ids[0], links: RULES.arxiv.sources.map((s) => ({ label: s.label, url: fillId(s.url, ids[0]) })) });
    } else {
      const parts = venueParts(key);
      if (!parts.match || !parts.display.source) continue;
      out.push({ id: key, venue: parts.venue, paper: parts.paper, links: [{ label: { venue: parts.venue }, url: fillGroups(parts.display.source, parts.match) }] });
    }
  }
  return out;
}
