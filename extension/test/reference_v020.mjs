// The detection logic of the reference "Cool Papers Redirector" v0.2.0 (bojone/papers.cool,
// Chrome/background.js at 853de14) as described in shared/specs/redirector-background.md, A3:
// per input, the first of five regexes that matches decides; no boundaries, no dedup, unencoded
// search. Used only as the baseline of scripts/bench_extension.py (and to count its misses).
const BASE = "https://papers.cool";

const PATTERNS = [
  [/[0-9]{4}\.[0-9]{4,5}/g, (m) => m[0], (ids) => `${BASE}/arxiv/${ids.join(",")}`],
  [/(?<=openreview\.net\/.*?id=)([A-Za-z0-9]+)/g, (m) => `${m[1]}@OpenReview`, (ids) => `${BASE}/venue/${ids.join(",")}`],
  [/(?<=ijcai\.org\/proceedings\/)(\d+)\/(\d+)/g, (m) => `${parseInt(m[2], 10)}@${m[1]}@IJCAI`, (ids) => `${BASE}/venue/${ids.join(",")}`],
  [/(?<=aclanthology.org\/)([A-Za-z0-9\-\.]+)(?=(\/|\.pdf))/g, (m) => `${m[1]}@ACL`, (ids) => `${BASE}/venue/${ids.join(",")}`],
  [/(?<=proceedings\.mlr\.press\/)(v\d+)\/([A-Za-z0-9\-]+)(?=\.html)/g, (m) => `${m[2]}@${m[1]}@PMLR`, (ids) => `${BASE}/venue/${ids.join(",")}`],
];

/** The reference click handler's decision, as a target URL or null (its crash is reported as null). */
export function referenceClick(info) {
  try {
    for (const input of [info.selectionText, info.linkUrl, info.pageUrl, info.frameUrl]) {
      if (!input) continue;
      for (const [pattern, id, target] of PATTERNS) {
        const ids = [...input.matchAll(pattern)].map(id);
        if (ids.length) return target(ids);
      }
    }
    // v0.2.0 reads info.selectionText.match(...) here, which throws when nothing is selected.
    const words = info.selectionText.match(/[\p{L}\p{N}]{2,}/gu);
    return words ? `${BASE}/arxiv/search?highlight=1&query=${words.join(" ")}` : null;
  } catch {
    return null;
  }
}
