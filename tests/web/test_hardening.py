"""Hardened for a network: strict requests on every endpoint, security headers, trusted hosts, who may compute,
the compute budget, and errors in the user's words with the setting in ``limit``."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from pydantic import BaseModel

from backend import create_app
from backend.web import budget
from backend.web.api import ApiBlueprint
from tests.conftest import config_for_tests

STOVE_TOKEN = "stove-test-token"
REMOTE = {"REMOTE_ADDR": "10.0.0.5"}


@pytest.fixture
def strict_app(tmp_path):
    app = create_app(config_for_tests(tmp_path, STOVE_API_TOKEN=STOVE_TOKEN, JOBS_EMBEDDED_POOL=False))
    yield app
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()


def _operations(app):
    spec = app.test_client().get("/api/openapi.json").json
    for path, operations in spec["paths"].items():
        url = path.replace("{burner_id}", "left").replace("{job_id}", "0" * 32)
        for method, op in operations.items():
            yield method.upper(), url, op, spec


def _json_body_operations(app):
    return [(m, u, op, spec) for m, u, op, spec in _operations(app)
            if "application/json" in op.get("requestBody", {}).get("content", {})]


def _send(client, method, url, **kwargs):
    headers = {"Authorization": f"Bearer {STOVE_TOKEN}", **kwargs.pop("headers", {})}
    return client.open(url, method=method, headers=headers, **kwargs)


def test_every_json_endpoint_refuses_bodies_that_are_not_sent_as_json(strict_app):
    client = strict_app.test_client()
    operations = _json_body_operations(strict_app)
    assert len(operations) >= 12
    for method, url, _, _ in operations:
        for kwargs in ({"data": b'{"text": "x"}'}, {"data": b'{"text": "x"}', "content_type": "text/plain"},
                       {"data": b"text=x", "content_type": "application/x-www-form-urlencoded"}):
            r = _send(client, method, url, **kwargs)
            assert r.status_code == 415, (method, url, kwargs, r.json)
            assert r.json["code"] == "unsupported_media_type" and "Content-Type: application/json" in r.json["error"]


@pytest.mark.parametrize("raw, status, words", [
    (b"[" * 500 + b"]" * 500, 400, "500 levels deep, over the limit of 64 levels"),
    (b'{"a": NaN}', 400, "NaN is not a JSON number"),
    (b'{"a": -Infinity}', 400, "-Infinity is not a JSON number"),
    (b'{"a": "\\ud800"}', 400, "lone surrogate"),
    (b'{"a": "\xff"}', 400, "not valid UTF-8"),
    (b'{"a": ', 400, "not valid JSON"),
    (b"   ", 400, "empty"),
])
def test_every_json_endpoint_refuses_malformed_json_with_a_400(strict_app, raw, status, words):
    client = strict_app.test_client()
    for method, url, _, _ in _json_body_operations(strict_app):
        r = _send(client, method, url, data=raw, content_type="application/json")
        assert r.status_code == status, (method, url, r.json)
        assert words in r.json["error"] and set(r.json) >= {"error", "status", "code", "field", "limit", "limit_value"}


def test_nesting_deep_enough_to_crash_a_recursive_parser_is_a_400_not_a_500(strict_app):
    client = strict_app.test_client()
    r = client.post("/api/resolve", data=b"[" * 100_000, content_type="application/json")
    assert r.status_code == 400 and (r.json["limit"], r.json["limit_value"]) == ("MAX_JSON_DEPTH", 64)
    ok = client.post("/api/resolve", data=json.dumps({"selectionText": "[[[[" * 100 + " 2307.01850"}),
                     content_type="application/json")
    assert ok.status_code == 200  # brackets inside strings do not count


def test_a_ten_megabyte_body_is_a_413_on_every_json_endpoint(strict_app):
    client = strict_app.test_client()
    raw = b'{"text": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    for method, url, _, _ in _json_body_operations(strict_app):
        r = _send(client, method, url, data=raw, content_type="application/json")
        assert r.status_code == 413, (method, url)
        assert r.json["limit"] == "MAX_JSON_BYTES" and "MAX_JSON_BYTES" not in r.json["error"]


def _body_schema(op, spec):
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    return spec["components"]["schemas"][ref]


def test_every_request_model_forbids_unknown_fields(strict_app):
    client = strict_app.test_client()
    for method, url, op, spec in _json_body_operations(strict_app):
        assert _body_schema(op, spec).get("additionalProperties") is False, url
        r = _send(client, method, url, json={"__unknown__": 1})
        assert r.status_code == 422, (url, r.json)
        assert any(d["field"] == "__unknown__" and d["type"] == "extra_forbidden" for d in r.json["details"]), url
    for method, url, op, _ in _operations(strict_app):
        if op.get("parameters") and any(p["in"] == "query" for p in op["parameters"]):
            r = _send(client, method, url + "?__unknown__=1")
            assert r.status_code in (422, 404), (url, r.json)


def _integer_fields(schema):
    for name, prop in schema.get("properties", {}).items():
        types = {prop.get("type")} | {alt.get("type") for alt in prop.get("anyOf", [])}
        if "integer" in types:
            yield name


def test_no_endpoint_takes_true_for_a_number_or_text_for_a_number(strict_app):
    client = strict_app.test_client()
    checked = 0
    for method, url, op, spec in _json_body_operations(strict_app):
        for name in _integer_fields(_body_schema(op, spec)):
            for wrong, said in ((True, "not true"), ("3", "not the text '3'"), (2.5, "not the number 2.5")):
                r = _send(client, method, url, json={name: wrong})
                detail = [d for d in r.json.get("details") or [] if d["field"] == name]
                assert r.status_code == 422 and detail, (url, name, wrong, r.json)
                assert detail[0]["message"] == f"{name} must be a whole number, {said}", detail
                checked += 1
    assert checked >= 30  # n, rank, generations, samples, ...


def test_body_less_endpoints_refuse_a_body(strict_app):
    client = strict_app.test_client()
    for url in ("/api/stove/burners/left/shutoff", "/api/stove/burners/left/restore"):
        r = _send(client, "POST", url, data=b'{"minutes": 1}', content_type="application/json")
        assert r.status_code == 400 and r.json["code"] == "unexpected_body", r.json
        r = _send(client, "POST", url, data=b"x", content_type="text/plain")  # a cross-site form post
        assert r.status_code == 400 and r.json["code"] == "unexpected_body"
    r = _send(client, "DELETE", "/api/stove/burners/left/timer", data=b"x", content_type="text/plain")
    assert r.status_code == 400


# ---------------------------------------------------------------- headers and hosts
def _nonce(header: str) -> str:
    return re.search(r"'nonce-([^']+)'", header).group(1)


@pytest.mark.parametrize("path", ["/", "/stove", "/jobs", "/tokenize", "/mad", "/matrix", "/continuation",
                                  "/attention", "/api/docs", "/api/health", "/api/openapi.json", "/nothing-here"])
def test_security_headers_on_every_response(client, path):
    r = client.get(path)
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    if r.mimetype == "text/html":
        html = r.get_data(as_text=True)
        inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)([^>]*)>", html)
        for attributes in inline:  # every inline script carries this response's nonce
            assert f'nonce="{_nonce(csp)}"' in attributes, (path, attributes)


def test_untrusted_host_headers_are_refused(make_app):
    app = make_app()
    client = app.test_client()
    r = client.get("/api/health", headers={"Host": "evil.example:5000"})
    assert r.status_code == 400 and r.json["code"] == "untrusted_host" and r.json["limit"] == "TRUSTED_HOSTS"
    r = client.get("/stove", headers={"Host": "rebind.attacker.test"})  # a page too: JSON, never a 500
    assert r.status_code == 400 and r.json["code"] == "untrusted_host"
    for host in ("localhost:5000", "127.0.0.1:5000", "localhost"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    lan = make_app(TRUSTED_HOSTS=["stove.lan"], HOST="192.168.1.20")
    assert lan.test_client().get("/api/health", headers={"Host": "stove.lan:5000"}).status_code == 200
    assert lan.test_client().get("/api/health", headers={"Host": "192.168.1.20:5000"}).status_code == 200
    assert lan.test_client().get("/api/health", headers={"Host": "localhost"}).status_code == 400


# ---------------------------------------------------------------- who may compute
def test_without_a_token_compute_and_jobs_answer_this_machine_only(client):
    tokenize = {"text": "abc", "samples": 1}
    assert client.post("/api/tokenize", json=tokenize).status_code == 200
    r = client.post("/api/tokenize", json=tokenize, environ_base=REMOTE)
    assert r.status_code == 403 and r.json["limit"] == "API_TOKEN" and "API_TOKEN" not in r.json["error"]
    assert client.post("/api/jobs", json={"kind": "jobs.demo_sleep"}, environ_base=REMOTE).status_code == 403
    assert client.get("/api/jobs", environ_base=REMOTE).status_code == 403
    # Not compute: the resolver, the stove's reads and health answer everyone.
    assert client.get("/api/resolve?q=2307.01850", environ_base=REMOTE).status_code == 200
    assert client.get("/api/health", environ_base=REMOTE).status_code == 200


def test_with_tokens_every_caller_needs_one(make_app):
    app = make_app(API_TOKENS={"ann": "ann-secret-0123456789"}, API_TOKEN="shared-secret-0123456789")
    client = app.test_client()
    body = {"text": "abc"}
    r = client.post("/api/tokenize", json=body)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = client.post("/api/tokenize", json=body, headers={"Authorization": "Bearer nope"}, environ_base=REMOTE)
    assert r.status_code == 403 and r.json["limit"] == "API_TOKEN"
    for token in ("ann-secret-0123456789", "shared-secret-0123456789"):
        r = client.post("/api/tokenize", json=body, headers={"Authorization": f"Bearer {token}"}, environ_base=REMOTE)
        assert r.status_code == 200
    # The stove keeps its own token: an API token does not open it.
    r = client.post("/api/stove/burners/left/shutoff", headers={"Authorization": "Bearer ann-secret-0123456789"})
    assert r.status_code == 403


# ---------------------------------------------------------------- the compute budget
def test_a_full_compute_budget_is_a_503_with_retry_after_and_control_still_answers(make_app):
    app = make_app(COMPUTE_CONCURRENCY=1, COMPUTE_RETRY_AFTER_S=3)
    client = app.test_client()
    slots = budget._state(app)["slots"]
    assert slots.acquire(blocking=False)  # another request holds the only slot
    try:
        started = time.monotonic()
        r = client.post("/api/tokenize", json={"text": "abc"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "3" and r.json["limit"] == "COMPUTE_CONCURRENCY"
        assert time.monotonic() - started < 2  # refused at once, never queued
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/stove/burners").status_code == 200
    finally:
        slots.release()
    assert client.post("/api/tokenize", json={"text": "abc"}).status_code == 200
    assert budget.running(app) == 0


def test_a_run_estimated_over_sync_max_seconds_is_a_422_saying_what_to_do(make_app):
    app = make_app(SYNC_MAX_SECONDS=0.01)
    r = app.test_client().post("/api/tokenize", json={"text": "abc" * 1000, "samples": 300})
    assert r.status_code == 422 and (r.json["limit"], r.json["limit_value"]) == ("SYNC_MAX_SECONDS", 0.01)
    assert r.json["error"].startswith("this would take about ") and r.json["error"].endswith(
        "for a direct answer; ask for fewer samples or send a shorter text")


class _Spin(BaseModel):
    cooperative: bool = False


@pytest.fixture
def spinning_app(tmp_path):
    bp = ApiBlueprint("spin_test", __name__)
    state = {"finished": 0}

    @bp.api("POST", "/api/spin-test", body=_Spin, cost=0.01, summary="runs until stopped")
    def spin(body: _Spin):
        try:
            count = 0
            while True:  # pure Python: only the watchdog's Overrun (or the cooperative check) ends it
                count += 1
                if body.cooperative and count % 1000 == 0:
                    budget.check()
        finally:
            state["finished"] += 1  # the stack unwinds: finally blocks (and locks) run

    app = create_app(config_for_tests(tmp_path, SYNC_MAX_SECONDS=0.3, SYNC_OVERRUN_FACTOR=1.0))
    app.register_blueprint(bp)
    app.spin_state = state
    yield app
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()


@pytest.mark.parametrize("cooperative", [False, True])
def test_an_overrunning_computation_is_stopped_cleanly(spinning_app, cooperative):
    client = spinning_app.test_client()
    started = time.monotonic()
    r = client.post("/api/spin-test", json={"cooperative": cooperative})
    elapsed = time.monotonic() - started
    assert r.status_code == 503 and r.json["code"] == "overrun" and r.json["limit"] == "SYNC_MAX_SECONDS"
    assert elapsed < 5
    assert spinning_app.spin_state["finished"] == 1
    assert budget.running(spinning_app) == 0  # the slot was given back
    assert client.get("/api/health").status_code == 200


def test_overrun_stops_only_the_request_that_overran(spinning_app):
    results = {}

    def spin():
        results["spin"] = spinning_app.test_client().post("/api/spin-test", json={}).status_code

    thread = threading.Thread(target=spin)
    thread.start()
    for _ in range(20):
        assert spinning_app.test_client().get("/api/health").status_code == 200
        time.sleep(0.02)
    thread.join(10)
    assert results == {"spin": 503}


# ---------------------------------------------------------------- one error vocabulary
CAPPED = [
    # (method, url, body, setting, words in the message)
    ("POST", "/api/tokenize", {"text": "a" * 10_001}, "TOKENIZE_MAX_TEXT_CHARS", "10,001 characters"),
    ("POST", "/api/tokenize", {"text": "a" * 1140, "samples": 900}, "TOKENIZE_MAX_SAMPLE_CHARS",
     "900 samples x 1,140 characters is over the budget of 1,000,000 sampled characters; use at most 877 samples"),
    ("POST", "/api/tokenize/distribution", {"text": "a", "samples": 20_001}, "TOKENIZE_MAX_PAGE_SAMPLES",
     "20,001 samples"),
    ("POST", "/api/tokenize", {"text": "a", "vocab": {"a" * 65: -1.0}}, "TOKENIZE_MAX_PIECE_CHARS",
     "a vocabulary piece of 65 characters"),
    ("POST", "/api/continue", {"prompt": "x", "max_new_tokens": 1000}, "CONTINUATION_MAX_NEW_TOKENS",
     "1,000 new tokens is over the limit of 64 new tokens"),
    ("POST", "/api/continue", {"prompt": "x" * 2001}, "CONTINUATION_MAX_PROMPT_CHARS", "2,001 characters"),
    ("POST", "/api/attention/score", {"text": "x" * 5000}, "ATTENTION_MAX_SCORE_LENGTH",
     "a text of 5,000 bytes (UTF-8) is over the limit of 1,024 bytes"),
    ("POST", "/api/attention/relpos", {"mode": "rope", "n": 600}, "ATTENTION_RELPOS_MAX_N", "600 positions"),
    ("POST", "/api/matrix/lowrank", {"matrix": [[1.0]], "rank": 1, "oversample": 201}, "MATRIX_MAX_OVERSAMPLE",
     "201 extra sketch columns"),
    ("POST", "/api/matrix/lowrank", {"matrix": [[1.0] * 16_385], "rank": 1}, "MATRIX_MAX_DIM",
     "a 1 x 16,385 matrix (16,385 columns)"),
    ("POST", "/api/mad/simulate", {"replicates": 2_000_000_000}, "MAD_MAX_REPLICATES", "2,000,000,000 replicates"),
    ("POST", "/api/mad/simulate", {"dim": 200, "n_synth": 20000, "replicates": 10000}, "MAD_MAX_ARRAY_ELEMENTS",
     "10,000 replicates x 20,000 samples x 200 dimensions is over the budget of 40,000,000 numbers held at once; "
     "use at most 10 replicates"),
    ("GET", "/api/resolve?q=" + "a" * 70_000, None, "RESOLVE_MAX_QUERY_BYTES", "a q of 70,000 bytes"),
    ("GET", "/api/jobs?limit=201", None, "JOBS_LIST_MAX", "201 jobs"),
    ("POST", "/api/jobs", {"kind": "jobs.demo_sleep", "params": {"steps": 1000, "step_s": 5}}, "JOBS_DEMO_MAX_SECONDS",
     "1,000 steps x 5 s (5,000 seconds) is over the limit of 60 seconds; use at most 12 steps of 5 s"),
    ("POST", "/api/jobs", {"kind": "jobs.demo_sleep", "params": {"payload_kb": 4096}}, "JOBS_DEMO_MAX_PAYLOAD_KB",
     "4,096 KiB of filler"),
    ("POST", "/api/stove/burners/left/timer", {"minutes": 1000}, "STOVE_TIMER_MAX_MIN", "1,000 minutes"),
]


@pytest.mark.parametrize("method, url, body, setting, words", CAPPED, ids=[c[3] for c in CAPPED])
def test_every_cap_speaks_in_the_users_words_and_names_the_setting_apart(strict_app, method, url, body, setting,
                                                                        words):
    r = _send(strict_app.test_client(), method, url, **({"json": body} if body is not None else {}))
    assert r.status_code in (413, 422), r.json
    assert (r.json["limit"], r.json["limit_value"]) == (setting, strict_app.config[setting])
    assert words in r.json["error"], r.json["error"]
    assert not re.search(r"\b[A-Z]+_[A-Z_]+\b", r.json["error"]), r.json["error"]  # no setting names in sentences
    assert "; " in r.json["error"]  # and what to do


def test_validation_messages_are_plain_sentences(strict_app):
    client = strict_app.test_client()
    r = client.post("/api/mad/simulate", json={"target_cov": [[1, 2], [2, 1]]})
    assert r.status_code == 422 and r.json["error"] == "target_cov must be positive semi-definite"
    r = client.post("/api/tokenize", json={"text": "a", "method": "best"})
    assert r.json["error"] == "method must be 'viterbi', 'sample', 'legacy-sample' or 'ffbs'"


def test_the_error_shape_in_the_document_has_limit_fields(client):
    schema = client.get("/api/openapi.json").json["components"]["schemas"]["ErrorResponse"]["properties"]
    assert {"limit", "limit_value"} <= set(schema)


def test_an_overrun_that_escapes_the_deadline_block_is_still_a_503(app):
    # The watchdog's asynchronous Overrun can land while the deadline's context manager is exiting (after the
    # cooperative check already raised one): the app-level handler still answers in the error shape.
    def escaped():
        raise budget.Overrun()

    app.add_url_rule("/api/escaped-overrun", "escaped_overrun", escaped)
    r = app.test_client().get("/api/escaped-overrun")
    assert r.status_code == 503 and r.json["code"] == "overrun" and r.json["limit"] == "SYNC_MAX_SECONDS"
    assert r.headers["Retry-After"]
