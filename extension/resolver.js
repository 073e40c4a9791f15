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

/** Re-encode a papers.cool path so that it stays a path on the base (no scheme, no host, no quotes). */
function safePath(path) {
  let out = `/${path.replace(/^\/+/, "")}`;
  out = out.split("#", 1)[0];
  return out.replace(UNSAFE_PATH, quoteChar);
}

function resolution(kind, ids, target) {
  return { kind, ids, target };
}

/** The compiled rules. One per rules object; immutable. */
export class Grammar {
  constructor(rules) {
    this.rules = rules;
    const { arxiv } = rules;
    this.newId = new Rule(arxiv.new);
    this.newFirst = Number(arxiv.new.firstYymm);
    this.fourDigitLast = Number(arxiv.new.fourDigitLastYymm);
    this.fiveDigitFirst = Number(arxiv.new.fiveDigitFirstYymm);
    this.oldId = new Rule(arxiv.old);
    this.oldFirst = oldMonthIndex(arxiv.old.firstYymm);
    this.oldLast = oldMonthIndex(arxiv.old.lastYymm);
    this.oldArchives = new Set(arxiv.old.archives);
    this.arxivTarget = arxiv.target;
    this.venues = rules.venues.map((v) => [new Rule(v), v.id]);
    this.venueTarget = rules.venueTarget;
    this.category = new Rule(rules.category);
    this.categoryArchives = new Set(rules.category.archives);
    this.categoryTarget = rules.category.target;
    this.coolpapers = new Rule(rules.coolpapers);
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
    for (const m of this.newId.matchAll(text)) {
      const yymm = Number(m[1] + m[2]);
      if (this.validNew(yymm, Number(m[2]), m[3])) found.push([m.index, `${m[1]}${m[2]}.${m[3]}`]);
    }
    for (const m of this.oldId.matchAll(text)) {
      const [archive, yy, mm, number] = [m[1], m[3], m[4], m[5]];
      if (this.oldArchives.has(archive) && this.validOld(Number(yy), Number(mm), number)) {
        found.push([m.index, `${archive}/${yy}${mm}${number}`]);
      }
    }
    found.sort((a, b) => a[0] - b[0]); // stable, like Python's sort
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

  // --- resolution -------------------------------------------------------------------------------
  /** Resolve one input; the keyword fallback runs only for a selection. */
  resolve(text, context = "selection", base = DEFAULT_BASE) {
    if (!CONTEXTS.includes(context)) throw new RangeError(`context must be one of ${CONTEXTS.join(", ")}`);
    if (typeof text !== "string" || !text.trim()) return null;
    let found = this.scan(text, base);
    if (found === null && context === "selection") found = this.search(text, base);
    return found;
  }

  /** A right-click: selection, link, page, frame in that order; the first that yields decides. */
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
    if (typeof selection === "string" && selection.trim()) return this.search(selection, base);
    return null;
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
    if (path !== null) return resolution("coolpapers", [], base + path);
    return null;
  }

  search(text, base) {
    const words = this.searchWords(text);
    if (!words.length) return null;
    const query = encodeURIComponent(words.join(" "));
    return resolution("search", [], trimSlashes(base) + format(this.searchTarget, { query }));
  }
}

export const RULES_DATA = RULES;
export const grammar = new Grammar(RULES);

/** Resolve `text` met in `context` ("selection", "link", "page" or "frame"). */
export function resolve(text, context = "selection", base = DEFAULT_BASE) {
  return grammar.resolve(text, context, base);
}

/** Resolve a right-click {selectionText, linkUrl, pageUrl, frameUrl} (any subset). */
export function resolveClick(info, base = DEFAULT_BASE) {
  return grammar.resolveClick(info, base);
}
