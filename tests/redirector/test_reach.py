"""redirector-reach.md in Python: the reach vectors through the resolver and both HTTP forms, the new id forms'
edges and bad input, the title fallback and pageTitle in the API, and bases with a path that must not be left."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from backend import create_app
from backend.config import ConfigError
from backend.redirector import catalog
from backend.redirector.resolver import load_grammar, resolve, resolve_click, stays_under
from tests.conftest import config_for_tests

DATA = Path(__file__).parents[1] / "data"
REACH = [json.loads(line) for line in (DATA / "reach.jsonl").read_text().splitlines() if line.strip()]
SHARED = Path(__file__).parents[3] / "shared" / "vectors" / "reach.jsonl"
CONTEXT_KEY = {"selection": "selectionText", "link": "linkUrl", "page": "pageUrl", "frame": "frameUrl"}
IEEE = "https://ieeexplore.ieee.org/document/7780459"


def target_of(found) -> str | None:
    return found.target.removeprefix("https://papers.cool") if found else None


@pytest.mark.parametrize("case", REACH, ids=[json.dumps(c)[:80] for c in REACH])
def test_reach_vectors(case):
    found = resolve_click(case["info"]) if "info" in case else resolve(case["input"], case["context"])
    assert (found.target if found else None) == case["target"]


@pytest.mark.parametrize("case", REACH, ids=[json.dumps(c)[:80] for c in REACH])
def test_reach_vectors_through_the_api(client, case):
    if "info" in case:
        response = client.post("/api/resolve", json=case["info"])
    else:
        response = client.get("/api/resolve", query_string={"q": case["input"], "context": case["context"]})
        posted = client.post("/api/resolve", json={CONTEXT_KEY[case["context"]]: case["input"]})
        assert posted.status_code == response.status_code
        assert posted.status_code != 200 or posted.json == response.json
    if case["target"] is None:
        assert response.status_code == 404, response.json
        assert response.json["code"] == "not_resolved"
    else:
        assert response.status_code == 200, response.json
        assert response.json["target"] == case["target"]


def test_reach_vectors_in_sync_with_shared_copy():
    if not SHARED.exists():
        pytest.skip("no ../shared checkout beside this repo (the copy in tests/data is used)")
    assert SHARED.read_text() == (DATA / "reach.jsonl").read_text()


@pytest.mark.parametrize(
    "url, target",
    [
        ("https://openaccess.thecvf.com/content_cvpr_2018/html/He_Mask_R-CNN_CVPR_2018_paper.html", "/venue/He_Mask_R-CNN@CVPR2018@CVF"),
        ("http://openaccess.thecvf.com/content_ICCV_2019/papers/Li_X_ICCV_2019_paper.pdf", "/venue/Li_X@ICCV2019@CVF"),
        ("openaccess.thecvf.com/content/WACV2024/html/Kim_Y_WACV_2024_paper.html?x=1", "/venue/Kim_Y@WACV2024@CVF"),
        ("https://openaccess.thecvf.com/content/CVPR2025W/ABAW/html/Li_X_CVPRW_2025_paper.html", None),
        ("https://openaccess.thecvf.com/content_cvpr_2018_workshops/papers/w1/Li_X_CVPR_2018_paper.pdf", None),
        ("https://openaccess.thecvf.com/content/CVPR2025/html/Park_X_CVPR_2025.html", None),
        ("https://openaccess.thecvf.com/content/CVPR2025/supplemental/Park_X_CVPR_2025_supplemental.pdf", None),
        ("https://openaccess.thecvf.com/content/CVPR2025/html/_CVPR_2025_paper.html", None),
        ("https://www.usenix.org/system/files/osdi24-zhang-yuhang.pdf", "/venue/zhang-yuhang@osdi24@USENIX"),
        ("usenix.org/conference/nsdi24/presentation/li/", "/venue/li@nsdi24@USENIX"),
        ("https://www.usenix.org/conference/usenixsecurity24/presentation/", None),
        ("https://www.usenix.org/conference/usenixsecurity24/presentation", None),
        ("https://www.usenix.org/conference/usenixsecurity24", None),
        ("https://www.usenix.org/system/files/sec24fall-prepub-123-xu.pdf", None),
        ("https://www.usenix.org/system/files/usenixsecurity24-prepub-123-xu.pdf", None),
        ("https://www.usenix.org/conference/soups2024/presentation/xu", None),
        ("https://ojs.aaai.org/index.php/AAAI/article/view/38818/42780", "/venue/38818@AAAI"),
        ("https://ojs.aaai.org/index.php/AAAI/article/download/38818/42780", "/venue/38818@AAAI"),
        ("https://ojs.aaai.org/index.php/AAAI/article/download/38818", None),
        ("https://ojs.aaai.org/index.php/AAAI/article/view/", None),
        ("https://ojs.aaai.org/index.php/ICWSM/article/view/31000", None),
        ("https://adsabs.harvard.edu/abs/2015arXiv150100001Q", "/arxiv/1501.00001"),
        ("https://ui.adsabs.harvard.edu/abs/2007arXiv0704.0001B/abstract", "/arxiv/0704.0001"),
        ("https://ui.adsabs.harvard.edu/abs/2020arXiv201207436Z%2Fabstract", "/arxiv/2012.07436"),
        ("https://ui.adsabs.harvard.edu/abs/2021ApJ...908..123S/abstract", None),
        ("https://arxiv.org/ftp/hep-th/papers/9901/9901001.pdf", "/arxiv/hep-th/9901001"),
        ("https://arxiv.org/ftp/hep-th/papers/9902/9901001.pdf", None),
        ("https://arxiv.org/ftp/stat/papers/0408/0408502.pdf", None),
        ("https://arxiv.org/ftp/arxiv/papers/1001/1001.0001.pdf", "/arxiv/1001.0001"),
        # an explicit port is still the same site
        ("https://openreview.net:443/forum?id=B18WgG-CZ", "/venue/B18WgG-CZ@OpenReview"),
        ("https://ojs.aaai.org:8443/index.php/AAAI/article/view/38818", "/venue/38818@AAAI"),
        ("https://arxiv.org:443/list/cs.CL/new", "/arxiv/cs.CL"),
        ("https://arxiv.org:443/ftp/hep-th/papers/9901/9901001.pdf", "/arxiv/hep-th/9901001"),
        ("https://openreview.net:/forum?id=x", None),
    ],
)
def test_new_venue_and_arxiv_forms(url, target):
    assert target_of(resolve(url, "link")) == target


@pytest.mark.parametrize(
    "text",
    [
        "2014arXiv14011234A",  # four-digit era needs the dot
        "2020arXiv2012.07436Z",  # five-digit era has none
        "2015arXiv1501.0001A",  # four digits no longer in 1501
        "2014arXiv141212345A",  # five digits not yet
        "2020arXiv201207436",  # no letter
        "2020arXiv201207436ZZ",
        "2020arXiv201207436Z1",
        "x2020arXiv201207436Z",
        "2020arxiv201207436Z",
        "2020arXiv200007436Z",  # month 00
        "2020arXiv201200000Z",  # number 0
        "2013arXiv131312345Q",
    ],
)
def test_malformed_bibcodes_name_nothing(text):
    assert resolve(text, "link") is None
    assert load_grammar().arxiv_ids(text) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("HEP-TH/9901001", ["hep-th/9901001"]),
        ("MATH.GT/0309136", ["math/0309136"]),
        ("arXiv:COND-MAT/0612198v2", ["cond-mat/0612198"]),
        ("Hep-th/9901001", []),
        ("hep-TH/9901001", []),
        ("MATH.gt/0309136", []),
        ("Math/0309136", []),
        ("STAT/0309136", []),
        ("arXiv_2307.01850v1.pdf", ["2307.01850"]),
        ("paper_2307.01850", ["2307.01850"]),
        ("notes_hep-th/9901001_v2.pdf", ["hep-th/9901001"]),
        ("x2307.01850", []),
        ("a.2307.01850", []),
        ("xarXiv.2307.01850", []),
        ("10.48550/arXiv.2307.01850", ["2307.01850"]),
    ],
)
def test_capitals_and_underscores(text, expected):
    assert load_grammar().arxiv_ids(text) == expected


@pytest.mark.parametrize(
    "text, one_url",
    [
        ("https://dl.acm.org/doi/10.1145/3292500.3330701", True),
        ("  http://example.com/a  ", True),
        (" www.example.com/x\n", True),
        ("dl.acm.org/doi/10.1145/3292500.3330701", True),
        ("ftp://example.org/file", True),
        ("http://example.com/a b", False),
        ("two https://a.com https://b.com", False),
        ("scaling laws", False),
        ("Re:Zero", False),
        ("e.g.", False),
    ],
)
def test_a_selection_that_is_one_url_is_never_a_keyword_search(text, one_url):
    assert load_grammar().is_one_url(text) is one_url
    if one_url:
        assert resolve(text, "selection") is None
        assert resolve_click({"selectionText": text}) is None


@pytest.mark.parametrize(
    "page, title, query",
    [
        (IEEE, "Deep Residual Learning for Image Recognition | IEEE Conference Publication | IEEE Xplore", "Deep%20Residual%20Learning%20for%20Image%20Recognition"),
        ("https://www.sciencedirect.com/science/article/pii/S0004370221000862", "Reward is enough - ScienceDirect", "Reward%20is%20enough"),
        ("https://link.springer.com/chapter/10.1007/978-3-319-10602-1_48", "Microsoft COCO: Common Objects in Context | SpringerLink", "Microsoft%20COCO%20Common%20Objects%20in%20Context"),
        ("https://link.springer.com/article/10.1007/s11263-015-0816-y", "ImageNet Challenge | International Journal of Computer Vision", "ImageNet%20Challenge"),
        ("https://dl.acm.org/doi/10.1145/2939672.2939785", "XGBoost | Proceedings of the 22nd ACM SIGKDD International Conference", "XGBoost"),
        ("https://papers.nips.cc/paper/7181-attention-is-all-you-need", "Attention is All you Need - NeurIPS", "Attention%20is%20All%20you%20Need"),
        ("https://jmlr.org/papers/v21/20-074.html", "Exploring the Limits of Transfer Learning", "Exploring%20the%20Limits%20of%20Transfer%20Learning"),
        (IEEE, "Research &amp; Development", "Research%20Development"),
        (IEEE, "x" * 1000, "x" * 1000),
    ],
)
def test_title_fallback_on_publishers_pages(page, title, query):
    found = resolve_click({"pageUrl": page, "pageTitle": title})
    assert target_of(found) == f"/arxiv/search?highlight=1&query={query}"


@pytest.mark.parametrize(
    "info",
    [
        {"pageUrl": IEEE, "pageTitle": ""},
        {"pageUrl": IEEE, "pageTitle": "   "},
        {"pageUrl": IEEE, "pageTitle": "x" * 1001},
        {"pageUrl": IEEE, "pageTitle": "é" * 1001},
        {"pageUrl": IEEE, "pageTitle": "<script>alert(1)</script>"},
        {"pageUrl": IEEE, "pageTitle": "<b>Deep</b> learning"},
        {"pageUrl": IEEE, "pageTitle": "Deep\x00learning"},
        {"pageUrl": IEEE, "pageTitle": "\x07\x07"},
        {"pageUrl": IEEE, "pageTitle": "| IEEE Xplore"},
        {"pageUrl": IEEE, "pageTitle": 42},
        {"pageUrl": IEEE, "pageTitle": None},
        {"pageUrl": IEEE, "pageTitle": ["Deep"]},
        {"pageUrl": "https://ieeexplore.ieee.org/search/searchresult.jsp?q=x", "pageTitle": "Search results"},
        {"pageUrl": "https://example.com/ieeexplore.ieee.org/document/1", "pageTitle": "Deep learning"},
        {"pageUrl": "https://example.com/blog/post", "pageTitle": "My notes on attention"},
        {"pageTitle": "Deep learning"},
        {"pageUrl": IEEE, "pageTitle": "Deep", "selectionText": "!!!"},  # a selection's search applied (no words)
    ],
)
def test_bad_titles_and_other_pages_give_nothing(info):
    assert resolve_click(info) is None


def test_a_selection_comes_first_and_a_url_selection_lets_the_title_through():
    info = {"pageUrl": IEEE, "pageTitle": "Deep learning"}
    assert target_of(resolve_click({**info, "selectionText": "token healing"})).endswith("query=token%20healing")
    assert target_of(resolve_click({**info, "selectionText": " https://github.com/x "})).endswith("query=Deep%20learning")
    assert target_of(resolve_click({**info, "linkUrl": "https://arxiv.org/abs/2307.01850"})) == "/arxiv/2307.01850"
    assert load_grammar().title_site(IEEE) == "IEEE Xplore"
    assert load_grammar().title_site("https://example.com/") is None


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"pageUrl": IEEE, "pageTitle": 5}, 422, "pageTitle"),
        ({"pageUrl": IEEE, "pageTitle": ["Deep"]}, 422, "pageTitle"),
        ({"pageUrl": IEEE, "pageTitle": {"a": 1}}, 422, "pageTitle"),
        ({"pageUrl": IEEE, "pageTitle": True}, 422, "pageTitle"),
        ({"pageTitle": "Deep learning"}, 400, None),
        ({"pageUrl": IEEE, "pageTitle": "x" * (64 * 1024 + 1)}, 413, "pageTitle"),
        ({"pageUrl": IEEE, "pageTitle": "x" * 5000}, 404, None),
        ({"pageUrl": IEEE, "pageTitle": "<script>alert(1)</script>"}, 404, None),
        ({"pageUrl": IEEE, "pageTitle": "A\u0000B\u0007"}, 404, None),
        ({"pageUrl": IEEE, "pageTitle": "\ud800 lone"}, 400, None),  # not Unicode text: refused before parsing
    ],
)
def test_page_title_in_the_api(client, body, status, field):
    response = client.post("/api/resolve", json=body)
    assert response.status_code == status, response.json
    if status != 200:
        assert response.json["status"] == status
        assert response.json["field"] == field
        assert response.json["error"]


def test_page_title_is_in_the_openapi_document(client):
    schema = client.get("/api/openapi.json").json
    assert "pageTitle" in json.dumps(schema)


# --- a base with a path (issue 15, item 6) -------------------------------------------------------
BASE = "https://example.org/cool"
ESCAPES = [
    "https://papers.cool/../../evil.com",
    "https://papers.cool/%2e%2e/%2e%2e/evil.com",
    "https://papers.cool/%2E%2E/evil.com",
    "https://papers.cool/.%2e/.%2E/evil.com",
    "https://papers.cool/%2e./evil.com",
    "https://papers.cool/%252e%252e/%252e%252e/evil.com",
    "https://papers.cool/arxiv/../../../evil.com",
    "https://papers.cool/./../evil.com?x=/../..",
    "https://papers.cool/..",
]


def _stays_in_base(location: str) -> bool:
    parts = urlsplit(location)
    # resolve the path as a browser does, then compare
    segments: list[str] = []
    for segment in parts.path.split("/")[1:]:
        plain = segment.lower().replace("%2e", ".")
        if plain == "..":
            segments = segments[:-1]
        elif plain != ".":
            segments.append(segment)
    return (parts.scheme, parts.netloc) == ("https", "example.org") and ("/" + "/".join(segments)).startswith("/cool/")


@pytest.mark.parametrize("text", ESCAPES)
def test_resolver_keeps_targets_under_a_base_with_a_path(text):
    found = resolve(text, "link", BASE)
    assert found is not None and found.kind == "coolpapers"
    assert found.target.startswith(BASE + "/") and stays_under(BASE, found.target)
    assert _stays_in_base(found.target), found.target


@pytest.fixture
def based_client(tmp_path):
    app = create_app(config_for_tests(tmp_path, COOLPAPERS_BASE=BASE))
    yield app.test_client()
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()


@pytest.mark.parametrize("text", ESCAPES)
def test_go_and_prefix_form_never_leave_a_base_with_a_path(based_client, text):
    go = based_client.get("/go", query_string={"q": text})
    raw = "/" + text
    prefix = based_client.get("/", environ_overrides={"PATH_INFO": raw, "RAW_URI": raw})
    api = based_client.get("/api/resolve", query_string={"q": text, "context": "link"})
    for response in (go, prefix):
        assert response.status_code == 302, (text, response.status_code)
        assert _stays_in_base(response.headers["Location"]), response.headers["Location"]
    assert _stays_in_base(api.json["target"])


def test_stays_under():
    assert stays_under(BASE, f"{BASE}/arxiv/2307.01850")
    assert stays_under(BASE + "/", f"{BASE}/x?q=/../..")
    for target in (f"{BASE}/../evil.com", f"{BASE}/%2E%2e/evil.com", f"{BASE}/a/./b", "https://example.org/coolx/a", "https://evil.com/cool/"):
        assert not stays_under(BASE, target), target


@pytest.mark.parametrize(
    "base", ["https://example.org/a/../b", "https://example.org/%2e%2e/b", "https://example.org/.%2E", "https://example.org/x?y=1", "https://example.org/#f"]
)
def test_a_base_with_dot_segments_stops_the_start(tmp_path, base):
    with pytest.raises(ConfigError, match="^COOLPAPERS_BASE must be an http\\(s\\) URL without query"):
        create_app(config_for_tests(tmp_path, COOLPAPERS_BASE=base))


# --- local pages for the new venues, and search highlights -------------------------------------
@pytest.mark.parametrize(
    "url, needle",
    [
        ("/venue/Park_SplineGS@CVPR2025@CVF", b'data-id="Park_SplineGS@CVPR2025@CVF"'),
        ("/venue/xu-haichuan@usenixsecurity24@USENIX", b"https://www.usenix.org/conference/usenixsecurity24/presentation/xu-haichuan"),
        ("/venue/38818@AAAI", b"https://ojs.aaai.org/index.php/AAAI/article/view/38818"),
    ],
)
def test_local_pages_of_the_new_venues(client, url, needle):
    response = client.get(url)
    assert response.status_code == 200
    assert needle in response.data


@pytest.mark.parametrize("url", ["/venue/x@CVPR25@CVF", "/venue/x@soups2024@USENIX", "/venue/0@AAAI"])
def test_local_pages_refuse_malformed_venue_ids(client, url):
    assert client.get(url, headers={"Accept": "text/html"}).status_code == 404


def test_search_highlights_content_words_only(client):
    page = client.get("/arxiv/search", query_string={"query": "low rank is the of", "highlight": "1"}).data.decode()
    marked = {chunk.lower() for chunk in re.findall(r"<mark>(.*?)</mark>", page)}
    assert marked and marked <= {"low", "rank"}
    assert catalog.highlight("This is it", ["is", "it"]) == [("This is it", False)]
    assert catalog.highlight("crank ranking", ["rank"]) == [("crank ", False), ("rank", True), ("ing", False)]
    assert catalog.search(["the"])  # a query of stop words only still searches on them
    assert catalog.search(["low", "the"]) == catalog.search(["low"])  # otherwise they do not count
