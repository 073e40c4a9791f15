// People's words for resolutions (labels.js) and the way back from a Cool Papers page (sources.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, joinList, venueParts } from "../labels.js";
import { sourcesOf } from "../sources.js";
import { resolve } from "../resolver.js";

const locale = (name) => JSON.parse(readFileSync(new URL(`../_locales/${name}/messages.json`, import.meta.url), "utf8"));
const lookup = (messages) => (key, subs) => {
  const list = subs === undefined ? [] : [].concat(subs);
  return (messages[key]?.message ?? "").replace(/\$(\d)/g, (_, n) => list[Number(n) - 1] ?? "");
};
const en = lookup(locale("en"));
const zh = lookup(locale("zh_CN"));

test("lists join as each language does: 'or' in English, 、 and 或 in Chinese", () => {
  const items = ["the selected text", "the link", "the page address"];
  assert.equal(joinList(items, en), "the selected text, the link or the page address");
  assert.equal(joinList(["选中的文字", "链接", "页面地址"], zh), "选中的文字、链接或页面地址");
  assert.equal(joinList(["链接", "页面地址"], zh), "链接或页面地址");
  assert.equal(joinList(["a"], en), "a");
  assert.equal(joinList([], en), "");
});

test("venue keys become venue names and the venue's own spelling of the paper", () => {
  const cases = [
    ["B18WgG-CZ@OpenReview", "OpenReview", "B18WgG-CZ"],
    ["2024.naacl-long.431@ACL", "ACL Anthology", "2024.naacl-long.431"],
    ["12@2023@IJCAI", "IJCAI 2023", "#12"],
    ["smith23a@v202@PMLR", "PMLR v202", "smith23a"],
    ["Park_SplineGS_3D@CVPR2025@CVF", "CVPR 2025", "Park SplineGS 3D"],
    ["xu-haichuan@usenixsecurity24@USENIX", "USENIX usenixsecurity24", "xu-haichuan"],
    ["38818@AAAI", "AAAI", "#38818"],
    ["thing@Newvenue", "Newvenue", "thing"],
  ];
  for (const [id, venue, paper] of cases) {
    const parts = venueParts(id);
    assert.equal(parts.venue, venue, id);
    assert.equal(parts.paper, paper, id);
  }
});

test("describe: never the internal kind 'venue' nor a raw key", () => {
  for (const [input, kind, text] of [
    ["https://openreview.net/forum?id=B18WgG-CZ", "OpenReview", "B18WgG-CZ"],
    ["arXiv:2307.01850 and 2204.00595", "arXiv", "2307.01850, 2204.00595"],
    ["https://arxiv.org/list/cs.CL/new", "arXiv listing", "cs.CL"],
    ["self-consuming models", "Search", "self consuming models"],
  ]) {
    assert.deepEqual(describe(resolve(input, "selection"), en), { kind, text }, input);
  }
  const mixed = describe(resolve("https://openreview.net/forum?id=a1 https://ojs.aaai.org/index.php/AAAI/article/view/5", "link"), zh);
  assert.deepEqual(mixed, { kind: "会议论文", text: "OpenReview a1、AAAI #5" });
});

test("the way back from a Cool Papers page: arXiv abstract and PDF, OpenReview forum, ACL page", () => {
  const base = "http://127.0.0.1:5000";
  const arxiv = sourcesOf(`${base}/arxiv/2307.01850,hep-th/9901001v2,cs.CL`, base);
  assert.deepEqual(arxiv.map((e) => e.id), ["2307.01850", "hep-th/9901001"]);
  assert.deepEqual(arxiv[0].links, [
    { label: "sourceAbstract", url: "https://arxiv.org/abs/2307.01850" },
    { label: "sourcePdf", url: "https://arxiv.org/pdf/2307.01850" },
  ]);
  const venues = sourcesOf("https://papers.cool/venue/B18WgG-CZ@OpenReview,2024.naacl-long.431@ACL,12@2023@IJCAI", base);
  assert.deepEqual(venues.map((e) => e.links.map((l) => l.url)), [
    ["https://openreview.net/forum?id=B18WgG-CZ"],
    ["https://aclanthology.org/2024.naacl-long.431/"],
  ]); // IJCAI: no reverse defined, nothing extra
  assert.deepEqual(venues[0].links[0].label, { venue: "OpenReview" });
  // base with a path; other pages and other sites give nothing
  assert.equal(sourcesOf("https://example.org/cool/arxiv/2307.01850", "https://example.org/cool").length, 1);
  for (const url of ["https://arxiv.org/abs/2307.01850", `${base}/papers`, `${base}/arxiv/search?query=x`, "https://papers.cool/arxiv/cs.AI",
    "https://papers.cool.evil.example/arxiv/2307.01850", "not a url", `${base}/venue/whatever`]) {
    assert.deepEqual(sourcesOf(url, base), [], url);
  }
});
