"""The HTTP API of the job layer: every endpoint, its success and each kind of bad input.

These use the default embedded backend with its in-process pool (the ``app``/``client`` fixtures).
"""

from __future__ import annotations

import time

import pytest

import backend.jobs as jobs
from backend import create_app
from backend.web.errors import ApiError
from tests.conftest import config_for_tests as make_config
from tests.jobs.conftest import free_port, wait_until


def wait_done(client, job: dict, timeout: float = 15) -> dict:
    def finished():
        body = client.get(job["status_url"]).get_json()
        return body if body["status"] in ("done", "failed", "cancelled") else None

    return wait_until(finished, timeout, f"job {job['id']} to finish")


@pytest.fixture
def queue_only(tmp_path):
    """An app that queues but runs nothing (no pool): jobs stay queued."""
    app = create_app(make_config(tmp_path, JOBS_EMBEDDED_POOL=False, JOBS_MAX_PENDING=3))
    yield app
    for hook in app.extensions["shutdown_hooks"]:
        hook()


def demo(client, **params) -> dict:
    """Submit a demo job; its submission answer (id, job_key, status_url and result_url with ?key=)."""
    response = client.post("/api/jobs", json={"kind": "jobs.demo_sleep", "params": params})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


# --- POST /api/jobs -------------------------------------------------------------------------------


def test_submit_returns_202_with_status_url_and_runs(client):
    response = client.post("/api/jobs", json={"kind": "jobs.demo_sleep", "params": {"steps": 2, "step_s": 0.01}})
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"id", "job_key", "kind", "status", "status_url", "result_url"}
    assert len(body["job_key"]) == 32 and body["job_key"] != body["id"]
    assert body["status_url"] == f"/api/jobs/{body['id']}?key={body['job_key']}" == response.headers["Location"]
    assert body["result_url"] == f"/api/jobs/{body['id']}/result?key={body['job_key']}"
    done = wait_done(client, body)
    assert done["status"] == "done"
    assert done["params"] == {"steps": 2, "step_s": 0.01, "fail_at": None, "payload_kb": 0}  # defaults filled
    assert done["result"]["steps"] == 2


def test_submit_params_default_to_empty(client):
    response = client.post("/api/jobs", json={"kind": "jobs.demo_sleep"})
    assert response.status_code == 202
    assert client.delete(response.get_json()["status_url"]).status_code in (200, 202, 409)


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"kind": "nope.nothing"}, "kind", "there is no job kind 'nope.nothing'; choose one of "),
        ({"kind": ""}, "kind", "kind must not be empty"),
        ({"params": {}}, "kind", "kind is required"),
        ({"kind": "jobs.demo_sleep", "params": {"steps": 0}}, "params.steps", "steps must be at least 1, not 0"),
        ({"kind": "jobs.demo_sleep", "params": {"steps": "many"}}, "params.steps",
         "steps must be a whole number, not the text 'many'"),
        ({"kind": "jobs.demo_sleep", "params": {"step_s": 99}}, "params.step_s", "step_s must be at most 5, not 99"),
        ({"kind": "jobs.demo_sleep", "params": {"bogus": 1}}, "params.bogus",
         "bogus is not a field of this request; remove it"),
        ({"kind": "jobs.demo_sleep", "params": [1, 2]}, "params", "params must be an object, not a list"),
        ({"kind": "jobs.demo_sleep", "extra": 1}, "extra", "extra is not a field of this request; remove it"),
        ({"kind": "jobs.demo_sleep", "params": {"steps": True}}, "params.steps", "steps must be a whole number, not true"),
    ],
)
def test_submit_rejects_invalid_requests_with_422_naming_the_field(client, payload, field, fragment):
    response = client.post("/api/jobs", json=payload)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["status"] == 422 and body["field"] == field
    assert fragment in body["error"]
    listed = client.get("/api/jobs").get_json()["jobs"]
    assert listed == []  # nothing was queued


def test_submit_rejects_bad_bodies(app, client):
    assert client.post("/api/jobs", data="{not json", content_type="application/json").status_code == 400
    assert client.post("/api/jobs", data="", content_type="application/json").status_code == 400
    assert client.post("/api/jobs", data="kind=x", content_type="text/plain").status_code == 415
    assert client.post("/api/jobs", data='{"kind": "jobs.demo_sleep"}').status_code == 415  # no Content-Type
    app.config["MAX_JSON_BYTES"] = 200
    big = client.post("/api/jobs", json={"kind": "jobs.demo_sleep", "params": {"x": "y" * 500}})
    assert big.status_code == 413 and (big.get_json()["limit"], big.get_json()["limit_value"]) == ("MAX_JSON_BYTES", 200)


def test_submit_beyond_max_pending_is_429(queue_only):
    client = queue_only.test_client()
    for _ in range(3):
        demo(client)
    response = client.post("/api/jobs", json={"kind": "jobs.demo_sleep"})
    assert response.status_code == 429
    assert response.get_json()["limit"] == "JOBS_MAX_PENDING" and response.get_json()["limit_value"] == 3
    assert response.get_json()["error"] == ("3 jobs are queued or running, as many as this server takes at once (3); "
                                            "try again later")


def test_unreachable_celery_broker_is_503_not_500(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_config(tmp_path, JOBS_BACKEND="celery", CELERY_BROKER_URL=dead))
    client = app.test_client()
    response = client.post("/api/jobs", json={"kind": "jobs.demo_sleep"})
    assert response.status_code == 503 and response.get_json()["code"] == "jobs_unavailable"
    assert client.get("/api/jobs").status_code == 503
    assert client.get(f"/api/jobs/{'0' * 32}").status_code == 503
    for hook in app.extensions["shutdown_hooks"]:
        hook()


def test_unreachable_broker_with_live_store_cancels_the_job_and_is_503(tmp_path, redis_server):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_config(tmp_path, JOBS_BACKEND="celery", CELERY_BROKER_URL=dead,
                                 JOBS_REDIS_URL=redis_server.url, JOBS_REDIS_PREFIX=f"t-{free_port()}"))
    client = app.test_client()
    response = client.post("/api/jobs", json={"kind": "jobs.demo_sleep"})
    assert response.status_code == 503 and "broker" in response.get_json()["error"]
    (job,) = client.get("/api/jobs").get_json()["jobs"]  # not left queued for a later surprise run
    assert job["status"] == "cancelled" and job["error"].startswith("the task queue is unreachable")
    for hook in app.extensions["shutdown_hooks"]:
        hook()


def test_unknown_backend_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="JOBS_BACKEND must be one of"):
        create_app(make_config(tmp_path, JOBS_BACKEND="cron"))


# --- GET /api/jobs/<id>, /result ------------------------------------------------------------------


def test_get_unknown_or_malformed_id_is_404(client):
    missing = client.get(f"/api/jobs/{'a' * 32}")
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"
    malformed = client.get("/api/jobs/../../etc")
    assert malformed.status_code == 404
    assert client.get("/api/jobs/NOT-AN-ID").status_code == 404


def test_failed_job_shows_error_and_no_result(client):
    job = demo(client, steps=3, step_s=0, fail_at=1)
    done = wait_done(client, job)
    assert done["status"] == "failed"
    assert done["error"] == "RuntimeError: demo failure at step 1, as requested"
    assert "result" not in done and "result_url" not in done
    response = client.get(job["result_url"])
    assert response.status_code == 409 and response.get_json()["code"] == "no_result"


def test_result_endpoint_serves_inline_results(client):
    small = wait_done(client, demo(client, steps=1, step_s=0))
    assert small["result_external"] is False
    assert client.get(small["result_url"]).get_json() == small["result"]
    assert client.get(f"/api/jobs/{'b' * 32}/result").status_code == 404
    assert client.get(f"/api/jobs/{small['id']}/result").status_code == 403  # no key


def test_result_stored_aside_over_threshold(tmp_path):
    app = create_app(make_config(tmp_path, JOBS_INLINE_RESULT_BYTES=1000))
    client = app.test_client()
    big = wait_done(client, demo(client, steps=1, step_s=0, payload_kb=2))
    assert big["result_external"] is True and big["result"] is None
    assert big["result_bytes"] > 1000
    assert (tmp_path / "jobs_result_dir" / f"{big['id']}.json").exists()
    fetched = client.get(big["result_url"])
    assert fetched.status_code == 200 and fetched.mimetype == "application/json"
    assert len(fetched.get_json()["payload"]) == 2048
    for hook in app.extensions["shutdown_hooks"]:
        hook()


def test_result_of_unfinished_job_is_409(queue_only):
    client = queue_only.test_client()
    job = demo(client)
    response = client.get(job["result_url"])
    assert response.status_code == 409 and "queued" in response.get_json()["error"]


# --- DELETE /api/jobs/<id> ------------------------------------------------------------------------


def test_cancel_queued_job_is_200_and_final(queue_only):
    client = queue_only.test_client()
    job = demo(client)
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 403  # cancelling needs the key too
    assert client.delete(f"/api/jobs/{job['id']}?key={'0' * 32}").status_code == 403
    response = client.delete(job["status_url"])
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    again = client.delete(job["status_url"])  # idempotent while it never ran
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"


def test_cancel_running_job_is_202_then_cancelled(client):
    job = demo(client, steps=300, step_s=0.02)
    wait_until(lambda: client.get(job["status_url"]).get_json()["status"] == "running", 10, "running")
    response = client.delete(job["status_url"])
    assert response.status_code == 202
    assert response.get_json()["cancel_requested"] is True
    done = wait_done(client, job)
    assert done["status"] == "cancelled" and done["error"] == "cancelled while running"


def test_cancel_finished_or_unknown_job(client):
    job = demo(client, steps=1, step_s=0)
    wait_done(client, job)
    finished = client.delete(job["status_url"])
    assert finished.status_code == 409 and finished.get_json()["code"] == "job_finished"
    assert client.delete(f"/api/jobs/{'c' * 32}").status_code == 404
    assert client.delete("/api/jobs/xyz").status_code == 404


# --- GET /api/jobs, /api/jobs/kinds, the page -----------------------------------------------------


def test_list_newest_first_with_filters(queue_only):
    client = queue_only.test_client()
    first, second, third = (demo(client)["id"] for _ in range(3))
    client.delete(f"/api/jobs/{second}?key={jobs.manager(queue_only).key_for(second)}")
    listed = client.get("/api/jobs").get_json()["jobs"]
    assert [j["id"] for j in listed] == [third, second, first]
    assert [j["id"] for j in client.get("/api/jobs?limit=1").get_json()["jobs"]] == [third]
    assert [j["id"] for j in client.get("/api/jobs?status=cancelled").get_json()["jobs"]] == [second]
    assert client.get("/api/jobs?kind=other.kind").get_json()["jobs"] == []


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [("limit=0", 422, "limit"), ("limit=201", 422, "limit"), ("limit=ten", 422, "limit"),
     ("status=lost", 422, "status"), ("colour=red", 422, "colour")],
)
def test_list_rejects_bad_queries(client, query, status, field):
    response = client.get(f"/api/jobs?{query}")
    assert response.status_code == status
    assert response.get_json()["field"] == field


def test_kinds_lists_registered_tasks_with_schemas(client):
    kinds = {k["kind"]: k for k in client.get("/api/jobs/kinds").get_json()["kinds"]}
    demo_kind = kinds["jobs.demo_sleep"]
    assert demo_kind["summary"].startswith("Sleep in steps")
    assert demo_kind["params_schema"]["properties"]["steps"]["maximum"] == 1000


def test_jobs_page_and_openapi(client):
    page = client.get("/jobs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'value="jobs.demo_sleep"' in html and "jobs.js" in html
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result", "/api/jobs/kinds"} <= set(paths)
    assert client.get("/static/jobs/jobs.js").status_code == 200
    # The document lists the kinds this backend runs, the same as GET /api/jobs/kinds.
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    listed = [k["kind"] for k in client.get("/api/jobs/kinds").get_json()["kinds"]]
    assert schemas["SubmitJob"]["properties"]["kind"]["enum"] == sorted(listed)
    assert {"jobs.demo_sleep", "mad.simulate", "matrix.lowrank"} <= set(listed)


# --- the Python helpers views use -----------------------------------------------------------------


def test_helpers_submit_get_cancel(app):
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        job_id = jobs.submit("jobs.demo_sleep", {"steps": 1, "step_s": 0})
        assert len(job_id) == 32
        wait_until(lambda: jobs.get(job_id)["status"] == "done", 10, "done")
        assert jobs.get(job_id)["result"]["steps"] == 1
        assert jobs.get("f" * 32) is None
        with pytest.raises(ApiError) as bad:
            jobs.submit("jobs.demo_sleep", {"steps": -1})
        assert bad.value.status == 422 and bad.value.field == "params.steps"
        with pytest.raises(ApiError) as finished:
            jobs.cancel(job_id)
        assert finished.value.status == 409
        assert jobs.result(job_id)["steps"] == 1
        with pytest.raises(ApiError) as missing:
            jobs.result("e" * 32)
        assert missing.value.status == 404


def test_helpers_accept_a_params_model(app):
    from backend.jobs.demo import DemoSleepParams

    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        job_id = jobs.submit("jobs.demo_sleep", DemoSleepParams(steps=2, step_s=0))
        wait_until(lambda: jobs.get(job_id)["status"] == "done", 10, "done")
        assert jobs.get(job_id)["result_url"] == f"/api/jobs/{job_id}/result"  # the server's own view: no key


def test_pool_starts_lazily(app):
    manager = jobs.manager(app)
    assert manager.pool is not None and manager.pool.alive == 0  # nothing submitted: no threads
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        job_id = jobs.submit("jobs.demo_sleep", {"steps": 1, "step_s": 0})
    assert manager.pool.alive == app.config["JOBS_WORKERS"]
    deadline = time.monotonic() + 10
    while manager.get(job_id).status != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert manager.get(job_id).status == "done"
