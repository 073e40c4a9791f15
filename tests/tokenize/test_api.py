"""POST /api/tokenize, POST /api/tokenize/distribution, GET /api/tokenize/models and the /tokenize page."""

from __future__ import annotations

import math

import pytest

from backend import create_app
from backend.services.tokenize import Vocab, enumerate_segmentations, get_model, log_partition, viterbi
from tests.conftest import config_for_tests as _config

URL = "/api/tokenize"
DIST = "/api/tokenize/distribution"
VOCAB = {"a": math.log(0.5), "aa": math.log(0.3), "aaa": math.log(0.2)}


def _error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["status"] == status and body["error"]
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.fixture
def small_app(tmp_path):
    return create_app(_config(tmp_path, TOKENIZE_MAX_TEXT_CHARS=20, TOKENIZE_MAX_VOCAB_PIECES=3,
                                     TOKENIZE_MAX_PIECE_CHARS=4, TOKENIZE_MAX_SAMPLE_CHARS=100,
                                     TOKENIZE_MAX_PAGE_SAMPLES=50, MAX_JSON_BYTES=2000))


# ---------------------------------------------------------------- success
def test_default_model_sampling_is_lossless_and_seeded(client):
    text = "Random tokenization, exactly."
    body = {"text": text, "samples": 20, "seed": 7, "alpha": 0.2}
    r = client.post(URL, json=body)
    assert r.status_code == 200
    data = r.get_json()
    assert len(data["samples"]) == 20 and all("".join(s) == text for s in data["samples"])
    assert len({tuple(s) for s in data["samples"]}) > 1
    assert data["log_partition"] == pytest.approx(log_partition(text, get_model("default"), 0.2))
    assert client.post(URL, json=body).get_json() == data
    assert client.post(URL, json=body | {"seed": 8}).get_json() != data


@pytest.mark.parametrize("method", ["sample", "legacy-sample", "ffbs", "viterbi"])
def test_custom_vocab_every_method(client, method):
    r = client.post(URL, json={"text": "aaaa", "vocab": VOCAB, "method": method, "alpha": 1.0, "samples": 50,
                               "seed": 1})
    assert r.status_code == 200
    data = r.get_json()
    assert all("".join(s) == "aaaa" for s in data["samples"])
    if method == "viterbi":
        tokens, best = viterbi("aaaa", Vocab(VOCAB))
        assert data["samples"] == [tokens] * 50 and data["log_partition"] == pytest.approx(best)
    else:
        assert data["log_partition"] == pytest.approx(
            math.log(sum(math.exp(s) for s in _scores_of_aaaa())), abs=1e-9)


def _scores_of_aaaa() -> list[float]:
    return [s for _, s in enumerate_segmentations("aaaa", Vocab(VOCAB))]


def test_negative_alpha_is_deterministic_and_defaults(client):
    r = client.post(URL, json={"text": "aaaaa", "vocab": VOCAB, "alpha": -1, "samples": 5})
    data = r.get_json()
    assert r.status_code == 200 and len({tuple(s) for s in data["samples"]}) == 1
    one = client.post(URL, json={"text": "hello"}).get_json()
    assert len(one["samples"]) == 1 and "".join(one["samples"][0]) == "hello"


def test_jieba_model(client):
    r = client.post(URL, json={"text": "我来到北京清华大学", "model": "jieba", "alpha": -1})
    assert r.status_code == 200 and r.get_json()["samples"] == [["我", "来到", "北京", "清华大学"]]


def test_distribution_endpoint(client):
    r = client.post(DIST, json={"text": "aaaa", "vocab": VOCAB, "alpha": 1.0, "samples": 4000, "seed": 3, "top": 5})
    assert r.status_code == 200
    data = r.get_json()
    assert data["samples"] == 4000 and data["distinct"] == 7 and len(data["top"]) == 5
    assert data["log_segmentations"] == pytest.approx(math.log(7))
    assert sum(s["count"] for s in data["top"]) <= 4000
    for s in data["top"]:
        assert abs(s["frequency"] - s["probability"]) < 0.03
    assert data["chi_square"]["p_value"] > 1e-3
    legacy = client.post(DIST, json={"text": "aaaaaa", "vocab": VOCAB, "alpha": 1.0, "samples": 20000, "seed": 3,
                                     "method": "legacy-sample"}).get_json()
    assert legacy["chi_square"]["p_value"] < 1e-3
    det = client.post(DIST, json={"text": "aaaa", "vocab": VOCAB, "alpha": -1.0, "samples": 10}).get_json()
    assert det["chi_square"] is None and det["top"][0]["probability"] == 1.0 and det["best"]["count"] == 10
    assert det["boundaries"]["exact"] == det["boundaries"]["frequency"]


def test_distribution_shows_the_most_probable_not_the_most_frequent(client):
    """The rows are the top segmentations by exact probability, each with its sampled share and interval."""
    text = "aaaaaaaa"
    r = client.post(DIST, json={"text": text, "vocab": VOCAB, "alpha": 0.5, "samples": 300, "seed": 4, "top": 6})
    data = r.get_json()
    exact = sorted(((s * 0.5, t) for t, s in enumerate_segmentations(text, Vocab(VOCAB))), key=lambda x: -x[0])
    log_z = math.log(sum(math.exp(w) for w, _ in exact))
    probs = [s["probability"] for s in data["top"]]
    assert probs == sorted(probs, reverse=True)
    assert probs == pytest.approx([math.exp(w - log_z) for w, _ in exact[:6]])
    for s in data["top"]:
        lo, hi = s["interval"]
        assert 0 <= lo <= s["frequency"] <= hi <= 1 and s["frequency"] == s["count"] / 300
    rest = data["rest"]
    assert rest["tokens"] == [] and rest["score"] is None
    assert rest["count"] + sum(s["count"] for s in data["top"]) == 300
    assert rest["probability"] == pytest.approx(1 - sum(probs))
    b = data["boundaries"]
    assert len(b["exact"]) == len(text) + 1 == len(b["frequency"]) == len(b["lower"]) == len(b["upper"])
    assert b["exact"][0] == b["exact"][-1] == 1.0 and b["frequency"][0] == b["frequency"][-1] == 1.0
    brute = [0.0] * (len(text) + 1)
    for w, tokens in exact:
        pos = 0
        for t in tokens:
            pos += len(t)
            brute[pos] += math.exp(w - log_z)
    assert b["exact"][1:] == pytest.approx(brute[1:])
    assert all(lo <= f <= hi for f, lo, hi in zip(b["frequency"], b["lower"], b["upper"], strict=True))
    # the exact sampler's frequencies cover the exact marginals (95% intervals; seeded)
    covered = sum(lo <= p <= hi for p, lo, hi in zip(b["exact"], b["lower"], b["upper"], strict=True))
    assert covered >= len(text)


def test_models_endpoint(client):
    data = client.get("/api/tokenize/models").get_json()
    assert {m["name"] for m in data["models"]} == {"default", "jieba"}


def test_page_renders(client):
    r = client.get("/tokenize")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="tok-chart"' in html and "drawBarChart" in html and "/api/tokenize/distribution" in html
    assert 'id="tok-boundaries"' in html and 'id="tok-alpha-error"' in html


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/tokenize", "/api/tokenize/distribution", "/api/tokenize/models"} <= set(paths)


# ---------------------------------------------------------------- bad input
def test_not_json_and_wrong_type(client):
    _error(client.post(URL, data="{not json", content_type="application/json"), 400)
    _error(client.post(URL, data="", content_type="application/json"), 400)
    _error(client.post(URL, data="text=a", content_type="application/x-www-form-urlencoded"), 415)
    _error(client.post(URL, json=["a"]), 422)


@pytest.mark.parametrize("url", [URL, DIST])
def test_body_too_large(small_app, url):
    r = small_app.test_client().post(url, json={"text": "a", "vocab": {f"p{i}": -1.0 for i in range(300)}})
    body = _error(r, 413)
    assert body["limit"] == "MAX_JSON_BYTES" and "bytes is over the limit of" in body["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": 5}, "text"),
        ({"text": "a", "samples": 0}, "samples"),
        ({"text": "a", "samples": 1001}, "samples"),
        ({"text": "a", "samples": 2.5}, "samples"),
        ({"text": "a", "samples": True}, "samples"),
        ({"text": "a", "alpha": 1001}, "alpha"),
        ({"text": "a", "alpha": -1001}, "alpha"),
        ({"text": "a", "alpha": "0.1"}, "alpha"),
        ({"text": "a", "method": "greedy"}, "method"),
        ({"text": "a", "model": "gpt"}, "model"),
        ({"text": "a", "seed": -1}, "seed"),
        ({"text": "a", "seed": "x"}, "seed"),
        ({"text": "a", "vocab": {"a": "high"}}, "vocab.a"),
        ({"text": "a", "vocab": ["a"]}, "vocab"),
        ({"text": "a", "vocab": {"a": 1e300}}, "vocab.a"),
        ({"text": "a", "colour": "red"}, "colour"),
    ],
)
def test_invalid_fields(client, body, field):
    _error(client.post(URL, json=body), 422, field)


@pytest.mark.parametrize(
    "body",
    [
        {"text": "a", "vocab": {"a": -1.0}, "model": "default"},
        {"text": "a", "vocab": {}},
        {"text": "a", "vocab": {"": -1.0, "a": -1.0}},
    ],
)
def test_bad_vocabulary_choice(client, body):
    assert "vocab" in _error(client.post(URL, json=body), 422)["error"]


def test_unsegmentable_text(client):
    body = _error(client.post(URL, json={"text": "aab", "vocab": VOCAB}), 422, "text")
    assert body["code"] == "unsegmentable" and "character 2" in body["error"]
    _error(client.post(DIST, json={"text": "ba", "vocab": VOCAB}), 422, "text")


def test_caps_from_config(small_app):
    c = small_app.test_client()
    def refused(body: dict, setting: str, value: float, message: str) -> None:
        assert (body["limit"], body["limit_value"], body["error"]) == (setting, value, message)

    body = _error(c.post(URL, json={"text": "a" * 21}), 422, "text")
    refused(body, "TOKENIZE_MAX_TEXT_CHARS", 20,
            "21 characters is over the limit of 20 characters; use at most 20 characters")
    body = _error(c.post(URL, json={"text": "a", "vocab": {"a": -1.0, "b": -1.0, "c": -1.0, "d": -1.0}}), 422, "vocab")
    refused(body, "TOKENIZE_MAX_VOCAB_PIECES", 3,
            "4 vocabulary pieces is over the limit of 3 vocabulary pieces; use at most 3 vocabulary pieces")
    body = _error(c.post(URL, json={"text": "a", "vocab": {"a": -1.0, "abcde": -1.0}}), 422, "vocab")
    refused(body, "TOKENIZE_MAX_PIECE_CHARS", 4, "a vocabulary piece of 5 characters is over the limit of 4 "
            "characters; split pieces longer than 4 characters")
    body = _error(c.post(URL, json={"text": "a" * 20, "samples": 6}), 422, "samples")
    refused(body, "TOKENIZE_MAX_SAMPLE_CHARS", 100, "6 samples x 20 characters is over the budget of 100 sampled "
            "characters; use at most 5 samples, or a shorter text")
    body = _error(c.post(DIST, json={"text": "a", "samples": 51}), 422, "samples")
    refused(body, "TOKENIZE_MAX_PAGE_SAMPLES", 50, "51 samples is over the limit of 50 samples; use at most 50 samples")
    for body in (c.post(URL, json={"text": "a" * 21}).json, c.post(DIST, json={"text": "a", "samples": 51}).json):
        assert "TOKENIZE_" not in body["error"]  # the setting is in `limit`, never in the sentence
    assert c.post(URL, json={"text": "a" * 20, "samples": 5}).status_code == 200


def test_distribution_bad_input(client):
    _error(client.post(DIST, json={"text": "a", "top": 0}), 422, "top")
    _error(client.post(DIST, json={"text": "a", "top": 51}), 422, "top")
    _error(client.post(DIST, json={"text": "a", "samples": 0}), 422, "samples")
    _error(client.post(DIST, data="nope", content_type="application/json"), 400)
    _error(client.post(DIST, data="text=a", content_type="text/plain"), 415)
    _error(client.post(DIST, json={"text": "a", "alpha": 2000}), 422, "alpha")


def test_wrong_method_and_unknown_path(client):
    # the wrong method is a 405, an unknown path a 404: both JSON errors
    assert _error(client.get(URL), 405)["code"] == "method_not_allowed"
    assert _error(client.post("/api/tokenize/nope", json={}), 404)["code"] == "not_found"
