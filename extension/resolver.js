// From any paper-bearing text or URL to a Cool Papers target: the JS twin of
// backend/redirector/resolver.py. Both interpret the same rules.json (the only place the grammar
// is written); this file holds the algorithm, ported line for line. Pure ES module: no chrome.*,
// no DOM, so it runs in the service worker, extension pages and Node alike.
import RULES from "./rules.json" with { type: "json" };

export const DEFAULT_BASE = "https://papers.cool";
export const CONTEXTS = Object.freeze(["selection", "link", "page", "frame"]);

function compile(rule) {
  // Every rule is scanned with matchAll, which needs the global flag.
  return new RegExp(rule.pattern, `g${rule.flags ?? ""}`);
}

/** An input being scanned, with its lower-cased copy made once and only if a hint needs it. */
class Text {
  constructor(text) {
    this.text = text;
    this._lower = null;
  }

  get lower() {
    if (this._lower === null) this._lower = this.text.toLowerCase();
    return this._lower;
  }
}

const NO_MATCHES = Object.freeze([]);

/** A compiled pattern and its hints: the pattern runs only where every match could be. */
class Rule {
  constructor(rule) {
    this.pattern = compile(rule);
    this.hintRegex = "hintRegex" in rule ? new RegExp(rule.hintRegex) : null;
    this.hintSubstrings = Object.freeze([...(rule.hintSubstrings ?? [])]);
  }

  matchAll(text) {
    if (this.hintRegex !== null && !this.hintRegex.test(text.text)) return NO_MATCHES;
    if (this.hintSubstrings.length && !this.hintSubstrings.some((hint) => text.lower.includes(hint))) return NO_MATCHES;
    return text.text.matchAll(this.pattern);
  }
}

function asText(text) {
  return text instanceof Text ? text : new Text(text);
}

function fill(template, match) {
  return template.replace(/\{(\d+)\}/g, (_, n) => match[Number(n)] ?? "");
}

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? values[key] : whole));
}

function unique(items) {
  return [...new Set(items)];
}

function trimSlashes(base) {
  return String(base).replace(/\/+$/, "");
}

/** Months since 1900 for an old-scheme YYMM (91..99 are the 1990s, 00..07 the 2000s). */
function oldMonthIndex(yymm) {
  const yy = Number(yymm.slice(0, 2));
  const mm = Number(yymm.slice(2));
  const year = yy >= 91 ? 1900 + yy : 2000 + yy;
  return year * 12 + mm;
}

const utf8 = new TextDecoder("utf-8");
const encoder = new TextEncoder();

/** Python's urllib.parse.unquote(errors="replace"): runs of %XX are UTF-8, bad bytes become U+FFFD. */
function unquote(text) {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(run.slice(3 * i + 1, 3 * i + 3), 16);
    return utf8.decode(bytes);
  });
}

/** Python's urllib.parse.quote(char, safe=""): UTF-8 bytes as upper-case %XX. */
function quoteChar(char) {
  let out = "";
  for (const byte of encoder.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

const UNSAFE_PATH = /[^A-Za-z0-9\-._~/,@+=&?%:]/gu;
const ENCODED_DOT = /%2e/gi;

/** 1 for ".", 2 for "..", else 0; "%2e" counts as a dot, as browsers resolve it. */
function dotSegment(segment) {
  if (segment.length > 6 || !segment) return 0;
  const plain = segment.replace(ENCODED_DOT, ".");
  return plain === "." ? 1 : plain === ".." ? 2 : 0;
}

/** RFC 3986 remove_dot_segments for an absolute path: ".." never climbs above "/". */
function removeDotSegments(path) {
  const segments = path.split("/").slice(1);
  const out = [];
  segments.forEach((segment, i) => {
    const kind = dotSegment(segment);
    if (kind === 0) {
      out.push(segment);
      return;
    }
    if (kind === 2 && out.length) out.pop();
    if (i === segments.length - 1) out.push(""); // "/a/.." is the folder "/", not "/a"
  });
  return `/${out.join("/")}`;
}

/** Re-encode a papers.cool path so that it stays a path on the base (no scheme, no host, no quotes, no ..). */
function safePath(path) {
  let out = `/${path.replace(/^\/+/, "")}`;
  out = out.split("#", 1)[0];
  const at = out.indexOf("?");
  out = at < 0 ? removeDotSegments(out) : removeDotSegments(out.slice(0, at)) + out.slice(at);
  return out.replace(UNSAFE_PATH, quoteChar);
}

/** Whether a browser following `target` stays under `base`: same prefix, no dot segment in the path. */
export function staysUnder(base, target) {
  const root = trimSlashes(base);
  if (!target.startsWith(`${root}/`)) return false;
  const path = target.slice(root.length).split("?", 1)[0].split("#", 1)[0];
  return !path.split("/").some((segment) => dotSegment(segment) !== 0);
}

// What browsers trim from titles; String.prototype.trim would also take Unicode spaces, Python's strip others.
const HTML_SPACE_EDGES = /^[ \t\n\r\f]+|[ \t\n\r\f]+$/g;

function trimHtmlSpace(text) {
  return text.replace(HTML_SPACE_EDGES, "");
}

/** Code points, as Python's len() counts them; stops counting past `limit`. */
function codePointsOver(text, limit) {
  if (text.length <= limit) return false;
  if (text.length > 2 * limit) return true;
  let count = 0;
  for (const _ of text) if (++count > limit) return true; // eslint-disable-line no-unused-vars
  return false;
}

/** One arXiv id form (new id, ADS bibcode, old id, FTP path) and where its groups are. */
class ArxivForm {
  constructor(form) {
    this.rule = new Rule(form);
    const names = form.groups;
    this.yy = names.indexOf("yy") + 1;
    this.mm = names.indexOf("mm") + 1;
    this.numbers = names.flatMap((name, i) => (name === "number" ? [i + 1] : []));
    this.archive = form.scheme === "old" ? names.indexOf("archive") + 1 : 0;
    Object.freeze(this);
  }

  number(m) {
    for (const i of this.numbers) if (m[i]) return m[i];
    return "";
  }
}

/** The title fallback: which pages are publishers' paper pages, and how their titles are cleaned. */
class TitleSearch {
  constructor(rules) {
    const flags = rules.flags ?? "";
    const compileOne = (pattern) => new RegExp(pattern, flags);
    this.maxChars = Number(rules.maxChars);
    this.reject = compileOne(rules.reject);
    this.clean = rules.clean.map((c) => [new RegExp(c.pattern, `g${flags}`), c.replace]);
    this.sites = rules.sites.map((site) => [site.name, compileOne(site.page), site.strip.map(compileOne)]);
    Object.freeze(this);
  }

  siteOf(pageUrl) {
    const url = trimHtmlSpace(pageUrl);
    return this.sites.find(([, page]) => page.test(url))?.[0] ?? null;
  }

  words(pageUrl, rawTitle, split) {
    const url = trimHtmlSpace(pageUrl);
    const site = this.sites.find(([, page]) => page.test(url));
    if (!site) return [];
    let title = trimHtmlSpace(rawTitle);
    if (!title || codePointsOver(title, this.maxChars) || this.reject.test(title)) return [];
    for (const [pattern, replacement] of this.clean) title = title.replace(pattern, replacement);
    for (const pattern of site[2]) title = title.replace(pattern, "");
    return split(title);
  }
}

function resolution(kind, ids, target) {
  return { kind, ids, target };
}

/** The compiled rules. One per rules object; immutable. */
export class Grammar {
  constructor(rules) {
    this.rules = rules;
    const { arxiv } = rules;
    const { newScheme, oldScheme } = arxiv;
    this.newFirst = Number(newScheme.firstYymm);
    this.fourDigitLast = Number(newScheme.fourDigitLastYymm);
    this.fiveDigitFirst = Number(newScheme.fiveDigitFirstYymm);
    this.oldFirst = oldMonthIndex(oldScheme.firstYymm);
    this.oldLast = oldMonthIndex(oldScheme.lastYymm);
    this.oldArchives = new Set(oldScheme.archives);
    this.arxivForms = arxiv.forms.map((form) => new ArxivForm(form));
    this.arxivTarget = arxiv.target;
    this.venues = rules.venues.map((v) => [new Rule(v), v.id]);
    this.venueTarget = rules.venueTarget;
    this.category = new Rule(rules.category);
    this.categoryArchives = new Set(rules.category.archives);
    this.categoryTarget = rules.category.target;
    this.coolpapers = new Rule(rules.coolpapers);
    this.oneUrl = new RegExp(rules.oneUrl.pattern, rules.oneUrl.flags ?? ""); // not global: test() keeps no state
    this.titleSearch = new TitleSearch(rules.titleSearch);
    // The word class needs Unicode property escapes, hence the "u" flag (JS-only spelling in rules.json).
    this.searchWord = new RegExp(rules.search.wordPattern.javascript, "gu");
    this.searchMaxWords = Number(rules.search.maxWords);
    this.searchTarget = rules.search.target;
    this.maxIds = Number(rules.maxIdsPerTarget);
    this.decodeRounds = Number(rules.decode.rounds);
    this.clickOrder = rules.clickOrder.map((pair) => [pair[0], pair[1]]);
    Object.freeze(this);
  }

  // --- scanning ---------------------------------------------------------------------------------
  /** Percent-decode repeatedly (redirect links nest encodings); broken escapes stay as they are. */
  decode(text) {
    for (let i = 0; i < this.decodeRounds; i += 1) {
      if (!text.includes("%")) break;
      const decoded = unquote(text);
      if (decoded === text) break;
      text = decoded;
    }
    return text.replaceAll("\u0000", " ");
  }

  /** Canonical arXiv ids (no version, no subject class), deduplicated in order of appearance. */
  arxivIds(input) {
    const text = asText(input);
    const found = [];
    let scanned = 0;
    for (const form of this.arxivForms) {
      const matches = form.rule.matchAll(text);
      if (matches === NO_MATCHES) continue;
      scanned += 1;
      for (const m of matches) {
        const [yy, mm, number] = [m[form.yy], m[form.mm], form.number(m)];
        if (!form.archive) {
          if (this.validNew(Number(yy + mm), Number(mm), number)) found.push([m.index, `${yy}${mm}.${number}`]);
        } else {
          const archive = m[form.archive].toLowerCase();
          if (this.oldArchives.has(archive) && this.validOld(Number(yy), Number(mm), number)) {
            found.push([m.index, `${archive}/${yy}${mm}${number}`]);
          }
        }
      }
    }
    if (scanned > 1) found.sort((a, b) => a[0] - b[0]); // stable, like Python's sort of (position, id)
    return unique(found.map((item) => item[1]));
  }

  validNew(yymm, month, number) {
    if (month < 1 || month > 12 || yymm < this.newFirst || Number(number) === 0) return false;
    if (number.length === 4) return yymm <= this.fourDigitLast;
    return yymm >= this.fiveDigitFirst;
  }

  validOld(yy, month, number) {
    if (month < 1 || month > 12 || Number(number) === 0) return false;
    const index = oldMonthIndex(`${String(yy).padStart(2, "0")}${String(month).padStart(2, "0")}`);
    return this.oldFirst <= index && index <= this.oldLast;
  }

  venueIds(input) {
    const text = asText(input);
    const found = [];
    for (const [rule, template] of this.venues) {
      for (const m of rule.matchAll(text)) found.push([m.index, fill(template, m)]);
    }
    found.sort((a, b) => a[0] - b[0]);
    return unique(found.map((item) => item[1]));
  }

  categoryOf(input) {
    for (const m of this.category.matchAll(asText(input))) {
      const category = m[1];
      if (this.categoryArchives.has(category.split(".")[0])) return category;
    }
    return null;
  }

  coolpapersPath(input) {
    for (const m of this.coolpapers.matchAll(asText(input))) return safePath(m[1] || "/");
    return null;
  }

  searchWords(text) {
    return (text.match(this.searchWord) ?? []).slice(0, this.searchMaxWords);
  }

  // --- resolution ---------------------------------------------------------------------------------
  /** Resolve one input; the keyword fallback runs only for a selection that is not one URL. */
  resolve(text, context = "selection", base = DEFAULT_BASE) {
    if (!CONTEXTS.includes(context)) throw new RangeError(`context must be one of ${CONTEXTS.join(", ")}`);
    if (typeof text !== "string" || !text.trim()) return null;
    let found = this.scan(text, base);
    if (found === null && context === "selection") found = this.search(text, base);
    return found;
  }

  /**
   * A right-click: selection, link, page, frame in that order; the first that yields decides.
   * Then the selection's keyword search (unless it is one URL), else the title of a publisher's paper page.
   */
  resolveClick(info, base = DEFAULT_BASE) {
    const data = info && typeof info === "object" ? info : {};
    for (const [key] of this.clickOrder) {
      const value = data[key];
      if (typeof value === "string" && value.trim()) {
        const found = this.scan(value, base);
        if (found !== null) return found;
      }
    }
    const selection = data.selectionText;
    if (typeof selection === "string" && selection.trim() && !this.isOneUrl(selection)) return this.search(selection, base);
    const { pageUrl, pageTitle } = data;
    if (typeof pageUrl === "string" && typeof pageTitle === "string") {
      const words = this.titleSearch.words(pageUrl, pageTitle, (title) => this.searchWords(title));
      if (words.length) return this.searchResolution(words, base);
    }
    return null;
  }

  /** Whether `text` is one URL (after trimming spaces): such a selection never becomes a keyword search. */
  isOneUrl(text) {
    return typeof text === "string" && this.oneUrl.test(text);
  }

  /** The name of the publisher whose paper page `pageUrl` is (title fallback), or null. */
  titleSite(pageUrl) {
    return typeof pageUrl === "string" ? this.titleSearch.siteOf(pageUrl) : null;
  }

  scan(raw, base) {
    const text = new Text(this.decode(raw));
    base = trimSlashes(base);
    let ids = this.arxivIds(text);
    if (ids.length) {
      return resolution("arxiv", ids, base + format(this.arxivTarget, { ids: ids.slice(0, this.maxIds).join(",") }));
    }
    ids = this.venueIds(text);
    if (ids.length) {
      return resolution("venue", ids, base + format(this.venueTarget, { ids: ids.slice(0, this.maxIds).join(",") }));
    }
    const category = this.categoryOf(text);
    if (category) return resolution("category", [category], base + format(this.categoryTarget, { category }));
    const path = this.coolpapersPath(text);
    if (path !== null && staysUnder(base, base + path)) return resolution("coolpapers", [], base + path);
    return null;
  }

  search(text, base) {
    if (this.isOneUrl(text)) return null;
    const words = this.searchWords(text);
    return words.length ? this.searchResolution(words, base) : null;
  }

  searchResolution(words, base) {
    const query = encodeURIComponent(words.join(" "));
    return resolution("search", [], trimSlashes(base) + format(this.searchTarget, { query }));
  }
}

export const RULES_DATA = RULES;
export const grammar = new Grammar(RULES);

/** Whether `text` is one URL (a pasted URL without a paper: "no paper in this URL", not a search). */
export function isOneUrl(text) {
  return grammar.isOneUrl(text);
}

/** Resolve `text` met in `context` ("selection", "link", "page" or "frame"). */
export function resolve(text, context = "selection", base = DEFAULT_BASE) {
  return grammar.resolve(text, context, base);
}

/** Resolve a right-click {selectionText, linkUrl, pageUrl, frameUrl} (any subset). */
export function resolveClick(info, base = DEFAULT_BASE) {
  return grammar.resolveClick(info, base);
}
