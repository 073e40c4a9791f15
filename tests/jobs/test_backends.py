"""The job layer's behaviour, run against both backends (embedded + SQLite, Celery + Redis).

Every test talks HTTP to the served app and lets a real worker process run the jobs.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.jobs.conftest import wait_until


def token() -> str:
    return uuid.uuid4().hex


def test_submit_reports_progress_then_result(jobs):
    job_id = jobs.submit("jobs.demo_sleep", {"steps": 8, "step_s": 0.15})
    first = jobs.get(job_id)
    assert first["status"] in ("queued", "running")
    assert first["status_url"] == f"/api/jobs/{job_id}?key={jobs.key(job_id)['key']}"

    midway = jobs.wait(job_id, statuses=("running",))
    seen = wait_until(lambda: (j := jobs.get(job_id))["progress"] > 0 and j, 10, "progress above 0")
    assert seen["status"] in ("running", "done")
    if seen["status"] == "running":
        assert 0 < seen["progress"] < 1
        assert seen["message"].startswith("step ") and seen["message"].endswith(" of 8")
    assert midway["started_at"] is not None

    done = jobs.wait(job_id)
    assert done["status"] == "done", done
    assert done["progress"] == 1.0
    assert done["message"] == "finished"
    assert done["result"] == {"steps": 8, "slept_s": 1.2, "payload": ""}
    assert done["result_external"] is False
    assert "error" not in done
    assert jobs.http.get(jobs.url + done["result_url"]).json() == done["result"]


def test_large_result_is_stored_aside_and_linked(jobs):
    job_id = jobs.submit("jobs.demo_sleep", {"steps": 1, "step_s": 0, "payload_kb": 300})
    done = jobs.wait(job_id)
    assert done["status"] == "done", done
    assert done["result"] is None and done["result_external"] is True
    assert done["result_bytes"] > jobs.app.config["JOBS_INLINE_RESULT_BYTES"]
    response = jobs.http.get(jobs.url + done["result_url"])
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert len(response.content) == done["result_bytes"]
    assert response.json()["payload"] == "0123456789abcdef" * 64 * 300
    if jobs.backend == "embedded":  # a file in JOBS_RESULT_DIR, not a row in the database
        assert (jobs.tmp / "jobs_result_dir" / f"{job_id}.json").stat().st_size == done["result_bytes"]


def test_cancel_running_job(jobs):
    job_id = jobs.submit("jobs.demo_sleep", {"steps": 400, "step_s": 0.05})
    jobs.wait(job_id, statuses=("running",))
    response = jobs.cancel(job_id)
    assert response.status_code in (200, 202), response.text
    ended = jobs.wait(job_id, timeout=10)
    assert ended["status"] == "cancelled"
    assert ended["error"] == "cancelled while running"
    assert ended["progress"] < 0.5
    again = jobs.cancel(job_id)
    assert again.status_code == 409 and again.json()["code"] == "job_finished"


def test_cancel_queued_job_never_runs(jobs):
    blockers = [jobs.submit("jobs.demo_sleep", {"steps": 400, "step_s": 0.05}) for _ in range(2)]
    for blocker in blockers:  # both worker slots busy: the next job stays queued
        jobs.wait(blocker, statuses=("running",))
    name = token()
    queued = jobs.submit("tests_jobs.record", {"token": name})
    response = jobs.cancel(queued)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["error"] == "cancelled before it started"
    for blocker in blockers:
        assert jobs.cancel(blocker).status_code in (200, 202)
    for blocker in blockers:
        assert jobs.wait(blocker)["status"] == "cancelled"
    after = jobs.submit("tests_jobs.record", {"token": token()})
    assert jobs.wait(after)["status"] == "done"  # by now the cancelled job would have run
    assert name not in jobs.records()
    assert jobs.get(queued)["status"] == "cancelled"
    assert jobs.get(queued)["started_at"] is None


def test_failure_inside_task_is_reported_and_worker_survives(jobs):
    worker = jobs.worker
    failing = jobs.submit("jobs.demo_sleep", {"steps": 5, "step_s": 0.01, "fail_at": 3})
    failed = jobs.wait(failing)
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: demo failure at step 3, as requested"
    assert "result" not in failed
    assert 0.3 < failed["progress"] < 0.6  # it got as far as step 3 of 5

    bad = jobs.wait(jobs.submit("tests_jobs.not_json"))
    assert bad["status"] == "failed" and "not JSON" in bad["error"]
    result = jobs.http.get(f"{jobs.url}/api/jobs/{failing}/result", params=jobs.key(failing))
    assert result.status_code == 409 and "failed" in result.json()["error"]

    name = token()
    ok = jobs.wait(jobs.submit("tests_jobs.record", {"token": name}))
    assert ok["status"] == "done" and ok["result"]["token"] == name
    assert jobs.worker is worker and worker.poll() is None  # the same worker process, still alive


def test_silent_task_is_kept_alive_by_heartbeats(jobs):
    job_id = jobs.submit("tests_jobs.silent")
    running = jobs.wait(job_id, statuses=("running",))
    assert running["progress"] == 0
    assert jobs.wait(job_id)["status"] == "done"


def test_200_concurrent_submissions_none_lost_none_twice(jobs):
    names = [f"c{i}-{token()}" for i in range(200)]
    sessions: dict[int, requests.Session] = {}

    def submit(name: str) -> str:
        import threading

        session = sessions.setdefault(threading.get_ident(), requests.Session())
        return jobs.submit("tests_jobs.record", {"token": name}, session=session)

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(submit, names))
    for session in sessions.values():
        session.close()
    assert len(set(ids)) == 200

    store = jobs.manager.store
    wait_until(lambda: all(store.get(i).finished for i in ids), 60, "all 200 jobs to finish", interval=0.2)
    records = [store.get(i) for i in ids]
    assert [r.status for r in records] == ["done"] * 200, {r.error for r in records if r.status != "done"}
    assert [r.runs for r in records] == [1] * 200
    assert [r.result["token"] for r in records] == names  # each job ran with its own params
    assert set(names) <= jobs.records()  # each token file created once (O_EXCL: a rerun would fail)
    listed = jobs.http.get(f"{jobs.url}/api/jobs", params={"kind": "tests_jobs.record", "limit": 200}).json()["jobs"]
    assert {j["id"] for j in listed} == set(ids)


def test_restart_with_queued_and_running_jobs(jobs):
    running = [jobs.submit("jobs.demo_sleep", {"steps": 400, "step_s": 0.05}) for _ in range(2)]
    for job_id in running:
        jobs.wait(job_id, statuses=("running",))
    names = [token() for _ in range(3)]
    queued = [jobs.submit("tests_jobs.record", {"token": name}) for name in names]
    assert all(jobs.get(job_id)["status"] == "queued" for job_id in queued)

    jobs.kill_worker()  # the crash: SIGKILL, nothing cleans up
    jobs.start_worker()  # the restart

    for job_id in running:
        ended = jobs.wait(job_id, timeout=15)
        assert ended["status"] == "failed"
        assert ended["error"].startswith("interrupted: the process running it stopped")
    for job_id, name in zip(queued, names, strict=True):
        done = jobs.wait(job_id, timeout=15)
        assert done["status"] == "done" and done["result"]["token"] == name
    assert [jobs.manager.store.get(i).runs for i in queued] == [1, 1, 1]
    assert set(names) <= jobs.records()
