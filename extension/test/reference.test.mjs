// The benchmark's baseline must behave like the reference v0.2.0 extension, gaps included
// (shared/specs/redirector-background.md, A3), or the throughput ratio compares the wrong thing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { referenceClick } from "./reference_v020.mjs";

test("the baseline reproduces the reference's documented behaviour and gaps", () => {
  assert.equal(referenceClick({ linkUrl: "https://arxiv.org/abs/2307.01850v3" }), "https://papers.cool/arxiv/2307.01850");
  assert.equal(referenceClick({ linkUrl: "https://dl.acm.org/doi/10.1145/3292500.3330701" }), "https://papers.cool/arxiv/2500.33307");
  assert.equal(referenceClick({ linkUrl: "https://openreview.net/forum?id=B18WgG-CZ" }), "https://papers.cool/venue/B18WgG@OpenReview");
  assert.equal(referenceClick({ linkUrl: "https://www.ijcai.org/proceedings/2023/0012.pdf" }), "https://papers.cool/venue/12@2023@IJCAI");
  assert.equal(referenceClick({ linkUrl: "https://proceedings.mlr.press/v202/smith23a/smith23a.pdf" }), null);
  assert.equal(referenceClick({ linkUrl: "https://arxiv.org/abs/hep-th/9901001" }), null); // crashes: no selection
  assert.equal(referenceClick({ selectionText: "低秩 近似" }), "https://papers.cool/arxiv/search?highlight=1&query=低秩 近似");
  assert.equal(referenceClick({ selectionText: "[1] 2307.01850 [2] 2307.01850v2" }), "https://papers.cool/arxiv/2307.01850,2307.01850");
});
