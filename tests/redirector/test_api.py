"""The resolve API, /go, the prefix form and the local pages, through Flask's test client."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parents[1] / "data"
VECTORS = [json.loads(line) for line in (DATA / "resolve.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", VECTORS, ids=[json.dumps(c)[:80] for c in VECTORS])
def test_vectors_through_both_http_forms(client, case):
    if "info" in case:
        response = client.post("/api/resolve", json=case["info"])
    else:
        response = client.get("/api/resolve", query_string={"q": case["input"], "context": case["context"]})
        if case["input"].strip():
            post_key = {"selection": "selectionText", "link": "linkUrl", "page": "pageUrl"}[case["context"]]
            posted = client.post("/api/resolve", json={post_key: case["input"]})
            assert posted.status_code == response.status_code
            assert posted.status_code != 200 or posted.json == response.json
    if case["target"] is None:
        assert response.status_code in (400, 404)
        assert response.json["error"]
    else:
        assert response.status_code == 200, response.json
        assert response.json["target"] == case["target"]


def test_resolution_shape(client):
    body = client.get("/api/resolve?q=arXiv:2307.01850v2%20and%20hep-th/9901001").json
    assert body == {
        "kind": "arxiv",
        "ids": ["2307.01850", "hep-th/9901001"],
        "target": "https://papers.cool/arxiv/2307.01850,hep-th/9901001",
    }


def test_base_from_config(app, client):
    app.config["COOLPAPERS_BASE"] = "http://127.0.0.1:8765"
    assert client.get("/api/resolve?q=2307.01850").json["target"] == "http://127.0.0.1:8765/arxiv/2307.01850"


@pytest.mark.parametrize(
    "url, status, code",
    [
        ("/api/resolve", 400, "bad_request"),
        ("/api/resolve?q=", 400, "bad_request"),
        ("/api/resolve?q=%20%09", 400, "bad_request"),
        ("/api/resolve?q=2307.01850&context=tab", 422, "validation_error"),
        ("/api/resolve?q=https://example.com/about&context=link", 404, "not_resolved"),
        ("/api/resolve?q=%00%00", 404, "not_resolved"),
        ("/api/resolve?q=%E0%A4%A&context=link", 404, "not_resolved"),
        ("/api/resolve?q=javascript:alert(1)&context=link", 404, "not_resolved"),
    ],
)
def test_get_errors(client, url, status, code):
    response = client.get(url)
    assert response.status_code == status
    assert response.is_json
    assert response.json["code"] == code
    assert response.json["error"]


def test_query_over_64_kib_is_413(client):
    response = client.get("/api/resolve", query_string={"q": "a" * (64 * 1024 + 1)})
    assert response.status_code == 413
    assert response.json["limit"] == "RESOLVE_MAX_QUERY_BYTES" and response.json["limit_value"] == 64 * 1024
    assert response.json["error"] == ("a q of 65,537 bytes is over the limit of 65,536 bytes; send a single URL, id "
                                      "or a short selection")
    assert client.get("/api/resolve", query_string={"q": "2307.01850 " + "a" * (64 * 1024 - 11)}).status_code == 200


@pytest.mark.parametrize(
    "kwargs, status, field",
    [
        ({"json": {"linkUrl": 5}}, 422, "linkUrl"),
        ({"json": {"pageUrl": ["https://arxiv.org/abs/2307.01850"]}}, 422, "pageUrl"),
        ({"json": {"tabUrl": "https://arxiv.org/abs/2307.01850"}}, 422, "tabUrl"),
        ({"json": ["https://arxiv.org/abs/2307.01850"]}, 422, None),
        ({"json": "2307.01850"}, 422, None),
        ({"json": {}}, 400, None),
        ({"json": {"selectionText": "   "}}, 400, None),
        ({"json": {"selectionText": None}}, 400, None),
        ({"data": "{not json", "content_type": "application/json"}, 400, None),
        ({"data": b"\xff\xfe{}", "content_type": "application/json"}, 400, None),
        ({"data": "", "content_type": "application/json"}, 400, None),
        ({"data": '{"linkUrl": NaN}', "content_type": "application/json"}, 400, None),
        ({"data": "q=2307.01850", "content_type": "application/x-www-form-urlencoded"}, 415, None),
        ({"json": {"selectionText": "x" * (64 * 1024 + 1)}}, 413, "selectionText"),
    ],
)
def test_post_errors(client, kwargs, status, field):
    response = client.post("/api/resolve", **kwargs)
    assert response.status_code == status, response.json
    assert response.json["status"] == status
    assert response.json["field"] == field
    assert response.json["error"]


def test_ten_megabyte_body_is_413_not_500(client):
    body = json.dumps({"selectionText": "2307.01850 " * (10 * 1024 * 1024 // 11)})
    response = client.post("/api/resolve", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json["limit"] == "MAX_JSON_BYTES"


def test_nested_encodings_and_nul_bytes(client):
    twice = quote(quote("https://arxiv.org/abs/2305.17493", safe=""), safe="")
    assert client.get("/api/resolve", query_string={"q": f"https://www.google.com/url?url={twice}"}).json["ids"] == ["2305.17493"]
    assert client.post("/api/resolve", json={"selectionText": "2305.17493\x00\x00"}).json["ids"] == ["2305.17493"]


def test_go_redirects_to_base(client):
    response = client.get("/go", query_string={"q": "https://arxiv.org/pdf/2204.00595v2.pdf"})
    assert response.status_code == 302
    assert response.headers["Location"] == "https://papers.cool/arxiv/2204.00595"


def test_go_friendly_pages(client):
    missing = client.get("/go?q=https://example.com/about", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert b"No paper found" in missing.data and b"<html" in missing.data
    blank = client.get("/go?q=%20")
    assert blank.status_code == 400
    assert client.get("/go?q=zzz", headers={"Accept": "application/json"}).status_code == 302  # keyword search


@pytest.mark.parametrize(
    "path, target",
    [
        ("/https://arxiv.org/abs/2307.01850", "https://papers.cool/arxiv/2307.01850"),
        ("/https:/arxiv.org/abs/2307.01850", "https://papers.cool/arxiv/2307.01850"),
        ("/http:/arxiv.org/abs/hep-th/9901001v1", "https://papers.cool/arxiv/hep-th/9901001"),
        ("/arxiv.org/abs/2307.01850", "https://papers.cool/arxiv/2307.01850"),
        ("/https://openreview.net/forum?id=B18WgG-CZ", "https://papers.cool/venue/B18WgG-CZ@OpenReview"),
        ("/https://proceedings.mlr.press/v202/smith23a/smith23a.pdf", "https://papers.cool/venue/smith23a@v202@PMLR"),
    ],
)
def test_prefix_form(client, path, target):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == target


def test_prefix_form_with_raw_uri_keeps_the_query(client):
    # the query string belongs to the appended URL: it must survive even if the server splits it off
    response = client.get("/https://openreview.net/forum", environ_overrides={"RAW_URI": "/https://openreview.net/forum?id=Ab_c-1"})
    assert response.headers["Location"] == "https://papers.cool/venue/Ab_c-1@OpenReview"


@pytest.mark.parametrize("path", ["/https://example.com/", "/favicon.ico", "/javascript:alert(1)", "/data:text/html,x"])
def test_prefix_form_not_found(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert b"<html" in response.data


PIECES = list("/:@.%?#&=\\ abc2307.01850-_\x00\n") + ["//", "%2F", "%2f", "evil.com", "javascript:", "https:", "papers.cool"]
HOSTILE = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HOSTILE)
def test_go_and_prefix_never_redirect_off_base(client, text):
    raw = "/" + quote(text, safe="/:@?&=%")
    prefix = client.get("/", environ_overrides={"PATH_INFO": "/" + text.replace("\x00", ""), "RAW_URI": raw})
    for response in (client.get("/go", query_string={"q": text}), prefix):
        assert response.status_code < 500
        if response.status_code in (301, 302, 303, 307, 308):
            location = urlsplit(response.headers["Location"])
            assert (location.scheme, location.netloc) == ("https", "papers.cool"), response.headers["Location"]
            assert location.path.startswith(("/arxiv/", "/venue/"))


@pytest.mark.parametrize(
    "url, needle",
    [
        ("/arxiv/2307.01850", b"Self-Consuming Generative Models Go MAD"),
        ("/arxiv/2307.01850,hep-th/9901001", b'data-id="hep-th/9901001"'),
        ("/arxiv/math.GT/0309136v2", b'data-id="math/0309136"'),
        ("/arxiv/cs.CL", b'data-id="1706.03762"'),
        ("/arxiv/cs.LG+cs.CL-cs.CV", b'data-id="2106.09685"'),
        ("/venue/B18WgG-CZ@OpenReview,2024.naacl-long.431@ACL", b"https://aclanthology.org/2024.naacl-long.431/"),
        ("/venue/12@2023@IJCAI", b"https://www.ijcai.org/proceedings/2023/0012.pdf"),
        ("/venue/smith23a@v202@PMLR", b"https://proceedings.mlr.press/v202/smith23a.html"),
        ("/arxiv/search?highlight=1&query=low%20rank", b"<mark>"),
        ("/papers", b"2204.00595"),
        ("/", b"/api/resolve"),
    ],
)
def test_local_pages(client, url, needle):
    response = client.get(url)
    assert response.status_code == 200
    assert needle in response.data


def test_category_exclusion(client):
    assert b'data-id="1512.03385"' not in client.get("/arxiv/cs.LG+cs.CV-cs.CV").data


@pytest.mark.parametrize("url", ["/arxiv/notanid", "/arxiv/2313.12345", "/venue/whatever", "/venue/x@Nowhere"])
def test_local_pages_not_found(client, url):
    response = client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert b"<html" in response.data


def test_pages_escape_everything_echoed(client):
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    page = client.get("/arxiv/search", query_string={"query": attack, "highlight": "1"}).data
    assert b"<script>alert" not in page and b"<img src=x" not in page
    assert b"&lt;script&gt;" in page
    missing = client.get("/arxiv/" + quote(attack), headers={"Accept": "text/html"}).data
    assert b"<script>alert" not in missing and b"<img src=x" not in missing
    go = client.get("/go", query_string={"q": "https://example.com/" + attack}, headers={"Accept": "text/html"}).data
    assert b"<script>alert" not in go


def test_lone_surrogates_are_not_a_500(client):
    response = client.post("/api/resolve", json={"linkUrl": "https://papers.cool/a\ud800b"})
    assert response.status_code == 400 and "lone surrogate" in response.json["error"]
    assert client.get("/api/resolve?q=2307.01850%20%ED%A0%80").json["ids"] == ["2307.01850"]
