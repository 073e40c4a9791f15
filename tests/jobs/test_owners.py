"""Jobs with owners and budgets: keys, owners' tokens, per-client pending caps, the disk budget, demo caps."""

from __future__ import annotations

from pathlib import Path

from tests.jobs.conftest import wait_until

ANN = {"Authorization": "Bearer ann-secret-0123456789"}
BOB = {"Authorization": "Bearer bob-secret-0123456789"}
TOKENS = {"ann": "ann-secret-0123456789", "bob": "bob-secret-0123456789"}


def submit(client, headers=None, **params):
    r = client.post("/api/jobs", json={"kind": "jobs.demo_sleep", "params": params}, headers=headers or {})
    assert r.status_code == 202, r.json
    return r.json


def test_a_job_is_read_and_cancelled_with_its_key_or_by_its_owners_token(make_app):
    client = make_app(API_TOKENS=TOKENS, JOBS_EMBEDDED_POOL=False).test_client()
    job = submit(client, ANN)
    bare = f"/api/jobs/{job['id']}"
    # Someone else's token opens nothing without the key, and learns nothing from the list.
    r = client.get(bare, headers=BOB)
    assert r.status_code == 403 and r.json["field"] == "key" and "key" in r.json["error"]
    assert client.get(bare + "?key=" + "f" * 32, headers=BOB).status_code == 403
    assert client.get("/api/jobs", headers=BOB).json["jobs"] == []
    assert client.delete(bare, headers=BOB).status_code == 403
    assert client.get(bare + "/result", headers=BOB).status_code == 403
    # The key opens it for anyone with API access (the URLs handed out carry it) ...
    assert client.get(job["status_url"], headers=BOB).json["status"] == "queued"
    # ... and the owner's token opens it without the key; the owner's list shows it with its key.
    assert client.get(bare, headers=ANN).json["id"] == job["id"]
    (listed,) = client.get("/api/jobs", headers=ANN).json["jobs"]
    assert listed["job_key"] == job["job_key"] and listed["status_url"] == job["status_url"]
    assert client.delete(bare, headers=ANN).json["status"] == "cancelled"


def test_without_tokens_the_key_is_needed_even_on_this_machine(make_app):
    client = make_app(JOBS_EMBEDDED_POOL=False).test_client()
    job = submit(client)
    assert client.get(f"/api/jobs/{job['id']}").status_code == 403
    assert client.get(job["status_url"]).status_code == 200


def test_pending_jobs_are_capped_per_client(make_app):
    client = make_app(API_TOKENS=TOKENS, JOBS_EMBEDDED_POOL=False, JOBS_MAX_PENDING_PER_CLIENT=2).test_client()
    submit(client, ANN)
    second = submit(client, ANN)
    r = client.post("/api/jobs", json={"kind": "jobs.demo_sleep"}, headers=ANN)
    assert r.status_code == 429 and (r.json["limit"], r.json["limit_value"]) == ("JOBS_MAX_PENDING_PER_CLIENT", 2)
    assert r.json["error"] == ("you have 2 jobs queued or running, the most one client may have at once (2); "
                               "wait for one to finish, or cancel one")
    submit(client, BOB)  # another client is not held up by ann's queue
    client.delete(second["status_url"], headers=ANN)
    submit(client, ANN)  # a cancelled job no longer counts


def test_stored_results_keep_to_the_disk_budget_oldest_first(make_app):
    app = make_app(JOBS_INLINE_RESULT_BYTES=100, JOBS_MAX_STORED_BYTES=5000)
    client = app.test_client()
    done = []
    for _ in range(4):  # each result is ~2.1 KB, stored aside as a file
        job = submit(client, steps=1, step_s=0, payload_kb=2)
        wait_until(lambda job=job: client.get(job["status_url"]).json["status"] == "done", 20, "done")
        done.append(job)
    result_dir = Path(app.config["JOBS_RESULT_DIR"])
    files = sorted(p.name for p in result_dir.glob("*.json"))
    assert files == sorted(f"{job['id']}.json" for job in done[-2:])  # 2 x 2.1 KB fit in 5,000 bytes; 3 do not
    assert client.get(done[0]["status_url"]).status_code == 404  # evicted with its row
    assert client.get(done[-1]["result_url"]).status_code == 200


def test_demo_jobs_cannot_fill_a_disk_or_hold_a_worker(make_app):
    client = make_app(JOBS_EMBEDDED_POOL=False).test_client()
    r = client.post("/api/jobs", json={"kind": "jobs.demo_sleep", "params": {"steps": 1000, "step_s": 5}})
    assert r.status_code == 422 and r.json["limit"] == "JOBS_DEMO_MAX_SECONDS" and r.json["field"] == "params.steps"
    r = client.post("/api/jobs", json={"kind": "jobs.demo_sleep", "params": {"payload_kb": 4096}})
    assert r.status_code == 422 and r.json["limit"] == "JOBS_DEMO_MAX_PAYLOAD_KB"
    assert r.json["field"] == "params.payload_kb"
    submit(client, steps=600, step_s=0.1)  # exactly 60 s: allowed


def test_services_hand_out_keyed_urls_too(make_app):
    client = make_app(JOBS_EMBEDDED_POOL=False).test_client()
    r = client.post("/api/mad/simulate", json={"mode": "job", "generations": 2, "replicates": 2})
    assert r.status_code == 202
    body = r.json
    assert body["status_url"] == f"/api/jobs/{body['job_id']}?key={body['job_key']}" == r.headers["Location"]
    assert client.get(body["status_url"]).json["kind"] == "mad.simulate"
    assert client.get(f"/api/jobs/{body['job_id']}").status_code == 403
