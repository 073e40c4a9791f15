"""The JS resolver (extension/resolver.js, in Node) against the Python one on generated inputs.

Both read extension/rules.json; this checks that the two interpreters of it agree beyond the shared
vectors: random mixes of ids, hosts, separators, percent-escapes and non-ASCII text.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.redirector.resolver import resolve, resolve_click

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(__file__).with_name("resolve_cli.mjs")

FRAGMENTS = [
    "2307.01850",
    "2307.01850v3",
    "0704.0001",
    "1412.9999",
    "1501.00001",
    "1501.0001",
    "1413.12345",
    "0703.1234",
    "2413.12345",
    "2300.12345",
    "12345.678901",
    "arXiv:",
    "arxiv.",
    "ARXIV:",
    "10.48550/arXiv.",
    "hep-th/9901001",
    "math.GT/0309136v2",
    "cond-mat/0612198",
    "solv-int/9912001",
    "cs/0703999",
    "cs/0704001",
    "foo-bar/9901001",
    "q-bio/0309001",
    "astro-ph/9107001",
    "astro-ph/9106001",
    "https://arxiv.org/abs/",
    "https://arxiv.org/pdf/",
    "https://export.arxiv.org/list/",
    "arxiv.org/list/",
    "cs.CL",
    "cs.cl",
    "math",
    "econ.GN",
    "stat.ML/new",
    "CS.LG",
    "https://openreview.net/forum?id=",
    "openreview.net/pdf?noteId=x&id=",
    "B18WgG-CZ",
    "ab_c-D",
    "https://aclanthology.org/",
    "2024.naacl-long.431",
    "P19-1001",
    ".pdf",
    "/",
    "aclweb.org/anthology/",
    "https://www.ijcai.org/proceedings/2023/",
    "0012",
    "ijcai.org/proceedings/2019/0001.pdf",
    "https://proceedings.mlr.press/",
    "v202/",
    "smith23a",
    ".html",
    "/smith23a.pdf",
    "https://papers.cool",
    "/arxiv/2307.01850",
    "/venue/ICML.2025",
    "?sort=1",
    "#x",
    "papers.cool/arxiv/cs.AI",
    "%2F",
    "%3A",
    "%252F",
    "%E4%BD%8E",
    "%ZZ",
    "%",
    "%E4",
    "%C3%A9",
    "%00",
    " ",
    "  ",
    "\n",
    "\t",
    ",",
    ";",
    ".",
    "-",
    "_",
    "(",
    ")",
    "[1]",
    '"',
    "'",
    "<",
    ">",
    "&",
    "=",
    "?",
    "self",
    "consuming",
    "models",
    "低秩",
    "近似",
    "ß",
    "é",
    "Ünïcødé",
    "x2",
    "a",
    "7",
    "ſ",
    "K",
    "İ",
    "ı",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\ufeff",
    "\u0085",
    "\u001c",
    "😀",
    "١٢٣",
    # whitespace on which Python's and JS's \s disagree, inside the classes that use it
    "\ud800",  # lone surrogates (JSON allows them): encoded, never raised on
    "https://papers.cool/x\ud800y",
    "papers.cool/arxiv/x\u0085y",
    "papers.cool/a\ufeffb",
    "openreview.net/forum?a=b\x1cc&id=abc",
    "https://www.google.com/url?sa=t&url=",
    "https%3A%2F%2Farxiv.org%2Fabs%2F2305.17493v2",
    "&usg=x",
]


def _cases(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    bases = ["https://papers.cool", "http://127.0.0.1:5000/", "https://example.org/prefix//"]
    cases: list[dict] = []
    for i in range(count):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 9)))
        base = rng.choice(bases)
        if i % 5 == 4:
            keys = ["selectionText", "linkUrl", "pageUrl", "frameUrl"]
            info = {
                k: "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 5))) for k in keys if rng.random() < 0.5
            }
            cases.append({"info": info, "base": base})
        else:
            cases.append({"text": text, "context": rng.choice(["selection", "link", "page", "frame"]), "base": base})
    return cases


def _python(case: dict):
    found = (
        resolve_click(case["info"], case["base"])
        if "info" in case
        else resolve(case["text"], case["context"], case["base"])
    )
    return None if found is None else found.to_dict()


def test_js_and_python_resolvers_agree_on_generated_inputs():
    node = shutil.which("node") or "/usr/bin/node"
    assert Path(node).exists(), "Node 20 is required for the extension tests"
    cases = _cases(seed=20240201, count=4000)
    run = subprocess.run(
        [node, str(CLI)], input=json.dumps(cases), capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    js = json.loads(run.stdout)
    mismatches = [(c, _python(c), j) for c, j in zip(cases, js, strict=True) if _python(c) != j]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {json.dumps(mismatches[:3], ensure_ascii=False)}"
    # The generator must reach every kind, or the comparison proves little.
    kinds = {r["kind"] for r in js if r}
    assert kinds == {"arxiv", "venue", "category", "coolpapers", "search"}


@pytest.mark.parametrize("context", ["bogus", ""])
def test_both_reject_an_unknown_context(context):
    with pytest.raises(ValueError):
        resolve("2307.01850", context)
    run = subprocess.run(
        ["node", str(CLI)],
        input=json.dumps([{"text": "2307.01850", "context": context}]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "context must be one of" in json.loads(run.stdout)[0]["error"]
