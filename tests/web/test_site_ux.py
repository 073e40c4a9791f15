"""The home page's box, /go?where=local, the favicon, the API viewer's page and the search page's messages."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_favicon_is_the_extension_icons_in_one_ico(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    data = response.data
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind, count) == (0, 1, 2)
    images = []
    for index in range(count):
        width, height, *_rest, size, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * index)
        images.append(((width, height), data[offset:offset + size]))
    assert images == [((size, size), (ROOT / "extension" / "icons" / f"icon{size}.png").read_bytes())
                      for size in (16, 32)]
    assert b'rel="icon"' in client.get("/").data


def test_home_box_offers_the_cool_papers_page_and_the_local_copy(client):
    page = client.get("/").get_data(as_text=True)
    assert 'id="go-cool"' in page and "Open on papers.cool" in page
    assert 'id="go-local"' in page and "Local copy" in page
    assert "https://papers.cool" in page and "development build of the extension" in page


def test_home_box_has_one_button_when_the_base_is_this_backend(app):
    app.config["COOLPAPERS_BASE"] = "http://localhost"
    page = app.test_client().get("/").get_data(as_text=True)
    assert 'id="go-local"' not in page and ">Go</button>" in page
    assert "Opens the paper's page on this backend" in page


@pytest.mark.parametrize("q, location", [
    ("arXiv:2307.01850v2", "/arxiv/2307.01850"),
    ("https://openreview.net/forum?id=B18WgG-CZ", "/venue/B18WgG-CZ@OpenReview"),
    ("https://papers.cool/arxiv/2204.00595", "/arxiv/2204.00595"),
    ("monarch matrices", "/arxiv/search?highlight=1&query=monarch%20matrices"),
])
def test_go_local_redirects_to_this_backends_page(client, q, location):
    response = client.get("/go", query_string={"q": q, "where": "local"})
    assert response.status_code == 302
    assert response.headers["Location"] == location  # a path: it cannot leave this backend


def test_go_default_is_the_cool_papers_page(client):
    response = client.get("/go", query_string={"q": "2307.01850"})
    assert response.headers["Location"] == "https://papers.cool/arxiv/2307.01850"
    assert client.get("/go", query_string={"q": "2307.01850", "where": "cool"}).headers["Location"] == \
        "https://papers.cool/arxiv/2307.01850"


@pytest.mark.parametrize("query, status, said", [
    ({"q": "2307.01850", "where": "elsewhere"}, 400, "where is"),
    ({"q": "https://example.com/about", "where": "local"}, 404, "No paper found in that URL"),
    ({"q": " ", "where": "local"}, 400, "Type an arXiv id"),
])
def test_go_bad_input(client, query, status, said):
    response = client.get("/go", query_string=query, headers={"Accept": "text/html"})
    assert response.status_code == status
    assert said in response.get_data(as_text=True)


def test_docs_page_loads_the_viewer_from_this_backend(client):
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page and "/static/docs.js" in page
    assert "<script>" not in page  # no inline script: it runs under a CSP without 'unsafe-inline'
    bundle = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.data


@pytest.mark.parametrize("query, status, said", [
    ("", 200, "Type some words of a title"),
    ("?!", 200, "no words to search for"),
    ("a" * 70_000, 413, "over"),
])
def test_search_page_says_bad_queries_next_to_the_box(client, query, status, said):
    response = client.get("/arxiv/search", query_string={"query": query})
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert 'id="query-error"' in page and said in page and 'class="paper"' not in page
    assert 'aria-invalid="true"' in page
