// The shared vectors (tests/data/resolve.jsonl, copied from shared/vectors) through the JS resolver.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolve, resolveClick, isOneUrl, staysUnder, grammar, Grammar, RULES_DATA } from "../resolver.js";

function readVectors(name) {
  const path = fileURLToPath(new URL(`../../tests/data/${name}`, import.meta.url));
  return readFileSync(path, "utf8").split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}
// resolve.jsonl (redirector.md) and reach.jsonl (redirector-reach.md), both copied from shared/vectors
const vectors = [...readVectors("resolve.jsonl"), ...readVectors("reach.jsonl")];

test("the vector file is not empty", () => {
  assert.ok(vectors.length >= 57, `only ${vectors.length} vectors`);
});

vectors.forEach((v, i) => {
  const label = v.info ? JSON.stringify(v.info) : `${v.context}: ${v.input}`;
  test(`vector ${i + 1}: ${label}`, () => {
    const got = v.info ? resolveClick(v.info) : resolve(v.input, v.context);
    assert.equal(got ? got.target : null, v.target);
    if (got) {
      assert.ok(["arxiv", "venue", "category", "coolpapers", "search"].includes(got.kind));
      assert.ok(Array.isArray(got.ids));
    }
  });
});

test("the module needs no chrome.* (it loads in Node and in the service worker alike)", () => {
  assert.equal(globalThis.chrome, undefined);
  assert.equal(RULES_DATA.version, 2);
});

test("grammar details beyond the vectors", () => {
  // four digits only up to 1412, five only from 1501; month 13 never; number 0 never
  assert.equal(resolve("1412.1234", "link").target, "https://papers.cool/arxiv/1412.1234");
  assert.equal(resolve("1412.12345", "link"), null);
  assert.equal(resolve("1501.1234", "link"), null);
  assert.equal(resolve("2313.12345", "link"), null);
  assert.equal(resolve("2301.00000", "link"), null);
  // old scheme: archive list and date bounds (9107..0703)
  assert.equal(resolve("quant-ph/9107001", "link").target, "https://papers.cool/arxiv/quant-ph/9107001");
  assert.equal(resolve("quant-ph/9106001", "link"), null);
  assert.equal(resolve("quant-ph/0704001", "link"), null);
  assert.equal(resolve("notanarchive/9901001", "link"), null);
  // deduplication ignores versions and the subject class
  assert.deepEqual(resolve("math.GT/0309136v1 math/0309136v2", "link").ids, ["math/0309136"]);
  // base: trailing slashes dropped, a path kept
  assert.equal(resolve("2307.01850", "link", "http://h:1/x//").target, "http://h:1/x/arxiv/2307.01850");
});

test("targets are capped at maxIdsPerTarget, ids are not", () => {
  const ids = Array.from({ length: RULES_DATA.maxIdsPerTarget + 5 }, (_, i) => `2301.${String(i + 1).padStart(5, "0")}`);
  const r = resolve(ids.join(" "), "selection");
  assert.equal(r.ids.length, ids.length);
  assert.equal(r.target.split("/arxiv/")[1].split(",").length, RULES_DATA.maxIdsPerTarget);
});

test("odd input never throws", () => {
  for (const text of [undefined, null, 42, {}, "", "%", "%E4%", "%ZZ%E4%BD", "\u0000", "\ud800", "a".repeat(20000)]) {
    assert.doesNotThrow(() => resolve(text, "selection"));
    assert.doesNotThrow(() => resolveClick({ selectionText: text, linkUrl: text, pageUrl: text }));
  }
  assert.equal(resolveClick(null), null);
  assert.equal(resolveClick({ selectionText: 7, linkUrl: ["https://arxiv.org/abs/2307.01850"] }), null);
  // a lone surrogate inside a papers.cool path is percent-encoded, not thrown on
  assert.equal(resolve("https://papers.cool/a\ud800", "link").target, "https://papers.cool/a%EF%BF%BD");
  assert.throws(() => resolve("2307.01850", "bogus"), RangeError);
});

test("a Grammar can be built from other rule data (tests, future versions)", () => {
  const rules = structuredClone(RULES_DATA);
  rules.arxiv.target = "/paper/{ids}";
  assert.equal(new Grammar(rules).resolve("2307.01850", "link").target, "https://papers.cool/paper/2307.01850");
});

const target = (r) => (r ? r.target.replace("https://papers.cool", "") : null);

test("reach: CVF papers of the main conferences only, with the _paper suffix", () => {
  const cvf = "https://openaccess.thecvf.com";
  assert.equal(target(resolve(`${cvf}/content_cvpr_2018/html/He_Mask_R-CNN_CVPR_2018_paper.html`, "link")), "/venue/He_Mask_R-CNN@CVPR2018@CVF");
  assert.equal(target(resolve(`${cvf}/content_ICCV_2019/papers/Li_X_ICCV_2019_paper.pdf`, "link")), "/venue/Li_X@ICCV2019@CVF");
  assert.equal(target(resolve(`${cvf}/content/WACV2024/html/Kim_Y_WACV_2024_paper.html`, "link")), "/venue/Kim_Y@WACV2024@CVF");
  for (const bad of [
    `${cvf}/content/CVPR2025W/ABAW/html/Li_X_CVPRW_2025_paper.html`, // a workshop folder
    `${cvf}/content_cvpr_2018_workshops/papers/w1/Li_X_CVPR_2018_paper.pdf`,
    `${cvf}/content/CVPR2025/html/Park_X_CVPR_2025.html`, // no _paper
    `${cvf}/content/CVPR2025/supplemental/Park_X_CVPR_2025_supplemental.pdf`,
    `${cvf}/content/ECCV2018/html/Park_X_ECCV_2018_paper.html`,
  ]) {
    assert.equal(resolve(bad, "link"), null, bad);
  }
});

test("reach: USENIX presentations and PDFs need a conference and a slug; pre-publication files are out", () => {
  assert.equal(target(resolve("https://www.usenix.org/system/files/osdi24-zhang-yuhang.pdf", "link")), "/venue/zhang-yuhang@osdi24@USENIX");
  assert.equal(target(resolve("usenix.org/conference/nsdi24/presentation/li/", "link")), "/venue/li@nsdi24@USENIX");
  for (const bad of [
    "https://www.usenix.org/conference/usenixsecurity24/presentation/",
    "https://www.usenix.org/conference/usenixsecurity24/presentation",
    "https://www.usenix.org/system/files/sec24fall-prepub-123-xu.pdf",
    "https://www.usenix.org/system/files/usenixsecurity24-prepub-123-xu.pdf",
    "https://www.usenix.org/conference/soups2024/presentation/xu",
    "https://www.usenix.org/system/files/usenixsecurity24-.pdf",
  ]) {
    assert.equal(resolve(bad, "link"), null, bad);
  }
});

test("reach: AAAI article pages, galleys and downloads", () => {
  const ojs = "https://ojs.aaai.org/index.php/AAAI/article";
  assert.equal(target(resolve(`${ojs}/view/38818/42780`, "link")), "/venue/38818@AAAI");
  assert.equal(target(resolve(`${ojs}/download/38818/42780`, "link")), "/venue/38818@AAAI");
  assert.equal(resolve(`${ojs}/download/38818`, "link"), null);
  assert.equal(resolve(`${ojs}/view/`, "link"), null);
  assert.equal(resolve("https://ojs.aaai.org/index.php/ICWSM/article/view/31000", "link"), null);
});

test("reach: ADS bibcodes carry an id that obeys the grammar", () => {
  assert.equal(target(resolve("see 2007arXiv0704.0001B", "link")), "/arxiv/0704.0001");
  assert.equal(target(resolve("https://adsabs.harvard.edu/abs/2015arXiv150100001Q", "link")), "/arxiv/1501.00001");
  for (const bad of ["2014arXiv14011234A", "2020arXiv2012.07436Z", "2015arXiv1501.0001A", "2014arXiv141212345A",
    "2020arXiv201207436", "2020arXiv201207436ZZ", "2020arXiv201207436Z1", "x2020arXiv201207436Z", "2020arxiv201207436Z",
    "2020arXiv200007436Z", "2020arXiv201200000Z"]) {
    assert.equal(resolve(bad, "link"), null, bad);
  }
});

test("reach: FTP paths, capitalised archives, underscores", () => {
  assert.equal(target(resolve("https://arxiv.org/ftp/hep-th/papers/9901/9901001.pdf", "link")), "/arxiv/hep-th/9901001");
  assert.equal(resolve("https://arxiv.org/ftp/hep-th/papers/9902/9901001.pdf", "link"), null); // folder is not the id's month
  assert.equal(resolve("https://arxiv.org/ftp/stat/papers/0408/0408502.pdf", "link"), null);
  assert.equal(target(resolve("MATH.GT/0309136", "link")), "/arxiv/math/0309136");
  assert.equal(target(resolve("arXiv:COND-MAT/0612198v2", "link")), "/arxiv/cond-mat/0612198");
  for (const mixed of ["Hep-th/9901001", "hep-TH/9901001", "MATH.gt/0309136", "Math/0309136"]) assert.equal(resolve(mixed, "link"), null, mixed);
  assert.equal(target(resolve("paper_2307.01850", "link")), "/arxiv/2307.01850");
  assert.equal(target(resolve("notes_hep-th/9901001_v2.pdf", "link")), "/arxiv/hep-th/9901001");
  assert.equal(resolve("x2307.01850", "link"), null); // the other boundaries stay
});

test("reach: a selection that is one URL is never a keyword search", () => {
  for (const url of ["https://dl.acm.org/doi/10.1145/3292500.3330701", "  http://example.com/a  ", " www.example.com/x\n",
    "dl.acm.org/doi/10.1145/3292500.3330701", "ftp://example.org/file"]) {
    assert.equal(isOneUrl(url), true, url);
    assert.equal(resolve(url, "selection"), null, url);
  }
  for (const text of ["two urls https://a.com https://b.com", "http://example.com/a b", "scaling laws", "e.g.", "Re:Zero", "MATH.GT/0313136"]) {
    assert.equal(isOneUrl(text), false, text);
  }
  assert.equal(target(resolve("see https://a.com/x and https://b.com", "selection")), "/arxiv/search?highlight=1&query=see%20https%20com%20and%20https%20com");
});

test("reach: titles of publishers' paper pages, cleaned; bad titles give nothing", () => {
  const title = (pageUrl, pageTitle, extra = {}) => target(resolveClick({ pageUrl, pageTitle, ...extra }));
  const ieee = "https://ieeexplore.ieee.org/document/7780459";
  assert.equal(title(ieee, "Deep Residual Learning for Image Recognition | IEEE Conference Publication | IEEE Xplore"),
    "/arxiv/search?highlight=1&query=Deep%20Residual%20Learning%20for%20Image%20Recognition");
  assert.equal(title("https://www.sciencedirect.com/science/article/pii/S0004370221000862", "Reward is enough - ScienceDirect"),
    "/arxiv/search?highlight=1&query=Reward%20is%20enough");
  assert.equal(title("https://link.springer.com/chapter/10.1007/978-3-319-10602-1_48", "Microsoft COCO: Common Objects in Context | SpringerLink"),
    "/arxiv/search?highlight=1&query=Microsoft%20COCO%20Common%20Objects%20in%20Context");
  assert.equal(title("https://dl.acm.org/doi/10.1145/2939672.2939785", "XGBoost | Proceedings of the 22nd ACM SIGKDD International Conference"),
    "/arxiv/search?highlight=1&query=XGBoost");
  assert.equal(title("https://jmlr.org/papers/v21/20-074.html", "Exploring the Limits of Transfer Learning"),
    "/arxiv/search?highlight=1&query=Exploring%20the%20Limits%20of%20Transfer%20Learning");
  for (const bad of ["", "   ", "x".repeat(1001), "<script>alert(1)</script>", "A\u0000B", "\u0007\u0007", "| IEEE Xplore"]) {
    assert.equal(title(ieee, bad), null, JSON.stringify(bad));
  }
  assert.equal(title(ieee, "x".repeat(1000)), `/arxiv/search?highlight=1&query=${"x".repeat(1000)}`);
  for (const wrong of [null, 42, ["Deep"], { a: 1 }, undefined]) assert.equal(title(ieee, wrong), null);
  // a listing, not a paper page; a site not in the list
  assert.equal(title("https://ieeexplore.ieee.org/search/searchresult.jsp?q=x", "Search"), null);
  assert.equal(title("https://example.com/ieeexplore.ieee.org/document/1", "Deep"), null);
  // a selection of words wins; a selection that is a URL lets the title through
  assert.equal(title(ieee, "Deep", { selectionText: "token healing" }), "/arxiv/search?highlight=1&query=token%20healing");
  assert.equal(title(ieee, "Deep", { selectionText: "https://github.com/bojone/rerope" }), "/arxiv/search?highlight=1&query=Deep");
  assert.equal(grammar.titleSite(ieee), "IEEE Xplore");
});

test("a base with a path is never left: dot segments are removed, also percent-encoded ones", () => {
  const base = "https://example.org/cool";
  for (const [input, expected] of [
    ["https://papers.cool/../../evil.com", `${base}/evil.com`],
    ["https://papers.cool/%2e%2e/%2E%2e/evil.com", `${base}/evil.com`],
    ["https://papers.cool/.%2e/.%2E/evil.com", `${base}/evil.com`],
    ["https://papers.cool/arxiv/../../..", `${base}/`],
    ["https://papers.cool/a/./b/../c?x=/../y", `${base}/a/c?x=/../y`],
    ["https://papers.cool/%252e%252e/evil.com", `${base}/evil.com`],
  ]) {
    const r = resolve(input, "link", base);
    assert.equal(r.target, expected, input);
    assert.ok(staysUnder(base, r.target));
    assert.ok(new URL(r.target).pathname.startsWith("/cool/"), r.target);
  }
  assert.equal(staysUnder(base, `${base}/../evil.com`), false);
  assert.equal(staysUnder(base, `${base}/%2E%2e/evil.com`), false);
  assert.equal(staysUnder(base, "https://example.org/coolx/a"), false);
});
