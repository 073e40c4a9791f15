// The shared vectors (tests/data/resolve.jsonl, copied from shared/vectors) through the JS resolver.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolve, resolveClick, Grammar, RULES_DATA } from "../resolver.js";

const vectorsPath = fileURLToPath(new URL("../../tests/data/resolve.jsonl", import.meta.url));
const vectors = readFileSync(vectorsPath, "utf8").split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));

test("the vector file is not empty", () => {
  assert.ok(vectors.length >= 40, `only ${vectors.length} vectors`);
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
  assert.equal(RULES_DATA.version, 1);
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
