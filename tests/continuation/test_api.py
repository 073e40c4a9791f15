"""POST /api/continue and the page: success, each kind of bad input, and the response's invariants."""

from __future__ import annotations

import time

import pytest

from backend.services.continuation.service import DEFAULT_METHOD, EXAMPLES


def post(client, **body):
    return client.post("/api/continue", json=body)


def test_backoff_completes_a_partial_word(client):
    r = post(client, prompt="Return the number of by", method="backoff", max_new_tokens=3)
    assert r.status_code == 200, r.get_json()
    data = r.get_json()
    assert data["removed"] == " by"  # " by" is one token; " bytes" is another
    assert data["continuation"].startswith("tes")
    assert data["consistent"] and data["backed_off"] == 1 and data["constrained_steps"] == 1
    assert data["kept"] + data["removed"] == "Return the number of by"
    probs = [p for _, p in data["candidates"]]
    assert sum(probs) + data["candidates_rest"] == pytest.approx(1.0)
    assert all(piece.startswith(" by") for piece, _ in data["candidates"])
    assert data["prompt_tokens"][-1] == " by"
    assert "".join(data["new_tokens"]).startswith(" bytes")


@pytest.mark.parametrize("method", ["naive", "backoff", "backoff-multi", "heal"])
def test_every_method_answers(client, method):
    r = post(client, prompt="广州的白云", method=method, max_new_tokens=4, temperature=0.8, seed=3)
    assert r.status_code == 200
    data = r.get_json()
    assert data["method"] == method
    assert len(data["candidates"]) <= 20
    assert sum(p for _, p in data["candidates"]) + data["candidates_rest"] == pytest.approx(1.0)
    if method == "naive":
        assert data["removed"] == "" and data["candidates_total"] == 8000
    elif method != "heal":
        assert data["removed"] == "白云"


def test_heal_strips_the_prompt_and_says_so(client):
    data = post(client, prompt="Always import numpy ", method="heal", max_new_tokens=2).get_json()
    assert not data["consistent"]  # Hugging Face strips the trailing space before healing
    assert data["kept"] + data["removed"] == "Always import numpy"


def test_sampling_is_reproducible_with_a_seed(client):
    a = post(client, prompt="This function", temperature=1.0, seed=7, max_new_tokens=6).get_json()
    b = post(client, prompt="This function", temperature=1.0, seed=7, max_new_tokens=6).get_json()
    assert a == b


def test_special_tokens_and_zero_new_tokens(client):
    r = post(client, prompt="广州的白云</s>", method="backoff-multi", max_new_tokens=0)
    data = r.get_json()
    assert r.status_code == 200 and data["removed"] == "" and data["backed_off"] == 0
    assert data["prompt_tokens"][-1] == "</s>"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"method": "backoff"}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "method": "guess"}, "method"),
        ({"prompt": "x", "max_new_tokens": -1}, "max_new_tokens"),
        ({"prompt": "x", "temperature": -0.5}, "temperature"),
        ({"prompt": "x", "temperature": 9}, "temperature"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": 5}, "prompt"),
    ],
)
def test_invalid_fields_are_422(client, body, field):
    r = client.post("/api/continue", json=body)
    assert r.status_code == 422
    assert r.get_json()["field"] == field


def test_limits_are_422_in_the_users_words_with_the_setting_beside(client, app):
    r = post(client, prompt="x", max_new_tokens=app.config["CONTINUATION_MAX_NEW_TOKENS"] + 1)
    body = r.get_json()
    assert r.status_code == 422 and (body["limit"], body["field"]) == ("CONTINUATION_MAX_NEW_TOKENS", "max_new_tokens")
    assert body["error"] == "65 new tokens is over the limit of 64 new tokens; use at most 64 new tokens"
    r = post(client, prompt="x" * (app.config["CONTINUATION_MAX_PROMPT_CHARS"] + 1))
    assert r.status_code == 422 and r.get_json()["limit"] == "CONTINUATION_MAX_PROMPT_CHARS"
    assert r.get_json()["field"] == "prompt" and "CONTINUATION_" not in r.get_json()["error"]
    r = post(client, prompt="a\x00b")
    assert r.status_code == 422 and r.get_json()["field"] == "prompt"
    r = client.post("/api/continue", data='{"prompt": "a\\ud800"}', content_type="application/json")
    assert r.status_code == 400 and "lone surrogate" in r.get_json()["error"]


def test_malformed_bodies(client):
    assert client.post("/api/continue", data="{", content_type="application/json").status_code == 400
    assert client.post("/api/continue", data="", content_type="application/json").status_code == 400
    assert client.post("/api/continue", data=b"\xff\xfe", content_type="application/json").status_code == 400
    big = "x" * (client.application.config["MAX_JSON_BYTES"] + 10)
    assert client.post("/api/continue", data=big, content_type="application/json").status_code == 413
    assert client.get("/api/continue").status_code == 405


def test_missing_checkpoints_are_503(client, app, tmp_path):
    app.config["CONTINUATION_CHECKPOINTS"] = str(tmp_path / "nowhere")
    r = post(client, prompt="x")
    assert r.status_code == 503 and "train_continuation.py" in r.get_json()["error"]
    r = client.post("/api/continue/jobs", json={"prompt": "x"})
    assert r.status_code == 503 and "train_continuation.py" in r.get_json()["error"]


def test_the_default_method_is_the_evaluations_best_on_partial_tokens(client):
    data = post(client, prompt="Always import numpy", max_new_tokens=3).get_json()
    assert data["method"] == DEFAULT_METHOD == "backoff-multi"
    assert data["continuation"].startswith(" as np")


@pytest.mark.parametrize("prompt, expected", EXAMPLES)
def test_every_example_on_the_page_shows_the_fix_working(client, prompt, expected):
    # the shipped GPT, greedy, as the page runs it: the default fix finishes the word, naive decoding does not
    fixed = post(client, prompt=prompt, max_new_tokens=12).get_json()
    naive = post(client, prompt=prompt, method="naive", max_new_tokens=12).get_json()
    assert fixed["continuation"].startswith(expected), fixed["continuation"]
    assert not naive["continuation"].startswith(expected), naive["continuation"]
    assert fixed["removed"] and prompt.endswith(fixed["removed"])


def test_the_compare_job_runs_naive_and_the_fix_with_progress(client):
    from backend.jobs import LocalContext
    from backend.services.continuation.schemas import ContinueRequest
    from backend.services.continuation.tasks import compare_job

    ctx = LocalContext()
    out = compare_job(ContinueRequest(prompt="Return the number of by", max_new_tokens=4), ctx)
    seen = ctx.updates
    assert out["naive"]["method"] == "naive" and out["fixed"]["method"] == DEFAULT_METHOD
    assert out["fixed"]["continuation"].startswith("tes") and not out["naive"]["continuation"].startswith("tes")
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 8
    assert any("naive: token" in m for _, m in seen) and any("backoff-multi: token" in m for _, m in seen)


def test_the_compare_job_kind_checks_its_caps_at_submission(client):
    r = client.post("/api/jobs", json={"kind": "continuation.compare",
                                       "params": {"prompt": "x", "max_new_tokens": 10**6}})
    assert r.status_code == 422 and r.get_json()["limit"] == "CONTINUATION_MAX_NEW_TOKENS"


def test_a_cancelled_compare_job_stops_at_the_next_token():
    from backend.jobs import JobCancelled, LocalContext
    from backend.services.continuation.schemas import ContinueRequest
    from backend.services.continuation.tasks import compare_job

    ctx = LocalContext(cancelled=True)
    with pytest.raises(JobCancelled):
        compare_job(ContinueRequest(prompt="x", max_new_tokens=4), ctx)


def test_job_endpoint_starts_a_job_that_finishes(client):
    r = client.post("/api/continue/jobs", json={"prompt": "我们明天从白云", "max_new_tokens": 3})
    assert r.status_code == 202, r.get_json()
    job = r.get_json()
    assert job["kind"] == "continuation.compare" and job["job_key"] and "key=" in job["status_url"]
    assert r.headers["Location"] == job["status_url"]
    for _ in range(600):
        state = client.get(job["status_url"]).get_json()
        if state["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert state["status"] == "done", state
    assert state["result"]["fixed"]["continuation"].startswith("机场")


@pytest.mark.parametrize(
    "body, field",
    [({"prompt": ""}, "prompt"), ({"prompt": "x", "max_new_tokens": 10**6}, "max_new_tokens"),
     ({"prompt": "x", "temperature": -1}, "temperature"), ({"prompt": "x", "method": "guess"}, "method"),
     ({"prompt": "a\x00b"}, "prompt")],
)
def test_job_endpoint_bad_fields_are_422_before_any_job(client, body, field):
    r = client.post("/api/continue/jobs", json=body)
    assert r.status_code == 422 and r.get_json()["field"] == field


def test_page_renders_and_escapes(client):
    r = client.get("/continuation")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Prompt continuation" in html and 'id="cont-prompt"' in html and "drawBarChart" in html
    assert "<script>alert" not in html


def test_openapi_lists_the_endpoints(client):
    doc = client.get("/api/openapi.json").get_json()
    assert "/api/continue" in doc["paths"] and "/api/continue/jobs" in doc["paths"]
