"""The Python resolver: every public vector, the grammar's edges, and properties on arbitrary text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.redirector.resolver import load_grammar, resolve, resolve_click

DATA = Path(__file__).parents[1] / "data"
VECTORS = [json.loads(line) for line in (DATA / "resolve.jsonl").read_text().splitlines() if line.strip()]
SHARED = Path(__file__).parents[3] / "shared" / "vectors" / "resolve.jsonl"


def target_of(case: dict) -> str | None:
    found = resolve_click(case["info"]) if "info" in case else resolve(case["input"], case["context"])
    return found.target if found else None


@pytest.mark.parametrize("case", VECTORS, ids=[json.dumps(c)[:80] for c in VECTORS])
def test_public_vectors(case):
    assert target_of(case) == case["target"]


def test_vectors_in_sync_with_shared_copy():
    if not SHARED.exists():
        pytest.skip("no ../shared checkout beside this repo (the copy in tests/data is used)")
    assert SHARED.read_text() == (DATA / "resolve.jsonl").read_text()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0704.0001", ["0704.0001"]),  # first new-scheme id
        ("0703.0001", []),  # before the new scheme
        ("1412.9999", ["1412.9999"]),  # last four-digit month
        ("1412.09999", []),  # five digits not yet
        ("1501.00001", ["1501.00001"]),
        ("1501.0001", []),  # four digits no longer
        ("2300.12345", []),  # month 00
        ("2313.12345", []),  # month 13
        ("2301.00000", []),  # numbers start at 1
        ("x2301.12345", []),  # glued to a letter
        ("1.2301.12345", []),  # glued to a dot
        ("2301.123456", []),  # followed by a digit
        ("2301.12345v12", ["2301.12345"]),
        ("ARXIV:2301.12345", ["2301.12345"]),
        ("10.48550/ARXIV.2301.12345", ["2301.12345"]),
        ("10.48550/arXiv.hep-th/9901001", ["hep-th/9901001"]),
        ("10.1145/3292500.3330701", []),
        ("hep-th/9107001", ["hep-th/9107001"]),  # first old-scheme month
        ("hep-th/9106001", []),
        ("cond-mat/0703999", ["cond-mat/0703999"]),  # last old-scheme month
        ("cond-mat/0704001", []),
        ("math.GT/0309136", ["math/0309136"]),
        ("stat/0309136", []),  # stat started after the switch
        ("notanarchive/0309136", []),
        ("hep-th/9913001", []),
        ("hep-th/9901000", []),
        ("solv-int/9901001v3", ["solv-int/9901001"]),
        ("2307.01850 hep-th/9901001 2307.01850v2", ["2307.01850", "hep-th/9901001"]),
        ("hep-th/9901001 then 2307.01850", ["hep-th/9901001", "2307.01850"]),
    ],
)
def test_arxiv_grammar(text, expected):
    assert load_grammar().arxiv_ids(text) == expected


@pytest.mark.parametrize(
    "url, target",
    [
        ("https://openreview.net/forum?id=a_b-C&noteId=xyz", "/venue/a_b-C@OpenReview"),
        ("https://openreview.net/forum?noteId=x&id=Q1w2_E3-r", "/venue/Q1w2_E3-r@OpenReview"),
        ("https://openreview.net/group?id=ICLR.cc/2024/Conference", None),
        ("https://aclanthology.org/P19-1001.pdf", "/venue/P19-1001@ACL"),
        ("https://aclanthology.org/2020.findings-emnlp.1/", "/venue/2020.findings-emnlp.1@ACL"),
        ("https://aclanthology.org/volumes/2024.naacl-long/", None),
        ("https://www.ijcai.org/proceedings/2019/0100", "/venue/100@2019@IJCAI"),
        ("http://proceedings.mlr.press/v97/kim19a/kim19a.pdf", "/venue/kim19a@v97@PMLR"),
        ("https://arxiv.org/list/hep-th/new", "/arxiv/hep-th"),
        ("https://export.arxiv.org/list/cond-mat.mtrl-sci/recent", "/arxiv/cond-mat.mtrl-sci"),
        ("https://arxiv.org/list/notreal/new", None),
        ("https://papers.cool/venue/ICML.2025", "/venue/ICML.2025"),
        ("https://papers.cool/arxiv/cs.AI+cs.LG-cs.CY", "/arxiv/cs.AI+cs.LG-cs.CY"),
        ("https://papers.cool.evil.example/arxiv/cs.AI", None),
        ("https://scholar.google.com/scholar?q=x&url=https%253A%252F%252Farxiv.org%252Fabs%252F2106.09685", "/arxiv/2106.09685"),
        ("https://arxiv.org/abs/2106.09685%zz", "/arxiv/2106.09685"),
        ("javascript:alert(document.cookie)", None),
        ("data:text/html,<script>alert(1)</script>", None),
    ],
)
def test_links(url, target):
    found = resolve(url, "link")
    assert (found.target.removeprefix("https://papers.cool") if found else None) == target


def test_several_venues_join_in_order_and_dedupe():
    text = "https://openreview.net/forum?id=AAA https://aclanthology.org/P19-1001/ https://openreview.net/pdf?id=AAA"
    found = resolve(text, "selection")
    assert found.kind == "venue"
    assert found.ids == ["AAA@OpenReview", "P19-1001@ACL"]
    assert found.target == "https://papers.cool/venue/AAA@OpenReview,P19-1001@ACL"


def test_arxiv_wins_over_venue_within_one_input():
    found = resolve("https://openreview.net/forum?id=AAA and arXiv:2106.09685", "selection")
    assert (found.kind, found.ids) == ("arxiv", ["2106.09685"])


def test_base_is_configurable_and_coolpapers_urls_are_rebased():
    assert resolve("2106.09685", "selection", "http://127.0.0.1:5000/").target == "http://127.0.0.1:5000/arxiv/2106.09685"
    found = resolve("https://papers.cool/arxiv/search?query={x}|y\"<b>", "link", "http://127.0.0.1:5000")
    assert found.target == "http://127.0.0.1:5000/arxiv/search?query=%7Bx%7D%7Cy"


def test_search_fallback_only_for_selections_and_encoded():
    assert resolve("graph neural nets", "link") is None
    found = resolve("a & b? C++ #tag Über größe", "selection")
    assert found.target == "https://papers.cool/arxiv/search?highlight=1&query=tag%20%C3%9Cber%20gr%C3%B6%C3%9Fe"
    assert resolve("a b ! ?", "selection") is None


def test_search_words_are_capped():
    found = resolve(" ".join(f"word{i}" for i in range(100)), "selection")
    assert found.target.count("%20") == load_grammar().search_max_words - 1


def test_many_ids_cap_the_target_but_not_the_ids():
    text = " ".join(f"2301.{i:05d}" for i in range(1, 301))
    found = resolve(text, "selection")
    assert len(found.ids) == 300
    assert found.target.count(",") == load_grammar().max_ids - 1


def test_click_without_selection_does_not_crash():
    assert resolve_click({"linkUrl": "https://example.com/x"}) is None
    assert resolve_click({}) is None
    assert resolve_click({"selectionText": None, "pageUrl": "https://arxiv.org/abs/hep-th/9901001"}).ids == ["hep-th/9901001"]


def test_unknown_context_is_rejected():
    with pytest.raises(ValueError):
        resolve("2106.09685", "tab")


def test_reference_list_of_one_megabyte_resolves_every_id():
    lines = [f"[{i}] A. Author, B. Author and C. Author. A rather long title of paper number {i}. In Proc. arXiv:2{i % 5}0{1 + i % 9}.{10000 + i:05d}v2, 2023." for i in range(12000)]
    text = "\n".join(lines)
    assert len(text) > 1_000_000
    found = resolve(text, "selection")
    assert len(found.ids) == len(set(found.ids)) == 12000


CANONICAL = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)?/\d{7})$")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["selection", "link", "page", "frame"]))
def test_never_raises_and_ids_are_canonical(text, context):
    found = resolve(text, context)
    if found is not None and found.kind == "arxiv":
        assert all(CANONICAL.match(i) for i in found.ids)
        assert found.target.startswith("https://papers.cool/arxiv/")


ID_PARTS = st.tuples(
    st.sampled_from(["", "arXiv:", "https://arxiv.org/abs/", "https://arxiv.org/pdf/", "see "]),
    st.integers(7, 30),
    st.integers(1, 12),
    st.integers(1, 99999),
    st.one_of(st.just(""), st.integers(1, 20).map(lambda v: f"v{v}")),
)


@settings(max_examples=300, deadline=None)
@given(ID_PARTS)
def test_valid_ids_come_out_without_version(parts):
    prefix, yy, mm, number, version = parts
    yymm = yy * 100 + mm
    if yymm < 704:
        return
    digits = 4 if yymm <= 1412 else 5
    if number >= 10**digits:
        return
    paper = f"{yy:02d}{mm:02d}.{number:0{digits}d}"
    found = resolve(prefix + paper + version, "link")
    assert found is not None and found.ids == [paper]
