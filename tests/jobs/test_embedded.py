"""The embedded backend's own life cycle: restart through create_app, idle threads, shutdown."""

from __future__ import annotations

import sqlite3
import uuid

from backend import create_app
from backend.jobs.embedded import EmbeddedPool
from backend.jobs.execute import RunLimits
from backend.jobs.store_sqlite import SqliteStore
from tests.jobs.conftest import Harness, wait_until


def test_backend_restart_fails_running_and_resumes_queued(tmp_path):
    """A backend process dies mid-work; the next create_app on the same database picks up."""
    h = Harness("embedded", tmp_path)
    try:
        h.start_worker()
        running = [h.submit("jobs.demo_sleep", {"steps": 400, "step_s": 0.05}) for _ in range(2)]
        for job_id in running:
            h.wait(job_id, statuses=("running",))
        names = [uuid.uuid4().hex for _ in range(3)]
        queued = [h.submit("tests_jobs.record", {"token": name}) for name in names]
        done_before = h.submit("jobs.demo_sleep", {"steps": 1, "step_s": 0})  # queued behind the others
        h.kill_worker()

        restarted = create_app({**h.config, "JOBS_EMBEDDED_POOL": True})  # the backend starts again
        manager = restarted.extensions["jobs"]
        try:
            for job_id in running:  # failed at start-up, before any request
                job = manager.store.get(job_id)
                assert job.status == "failed"
                assert job.error == "interrupted: the process running it stopped (backend restart or crash)"
            wait_until(lambda: all(manager.store.get(i).status == "done" for i in [*queued, done_before]), 15,
                       "the queued jobs to run after the restart")
            assert [manager.store.get(i).result["token"] for i in queued] == names
            assert [manager.store.get(i).runs for i in queued] == [1, 1, 1]
        finally:
            for hook in restarted.extensions["shutdown_hooks"]:
                hook()
    finally:
        h.close()


def _pool(tmp_path, **kwargs) -> tuple[SqliteStore, EmbeddedPool]:
    store = SqliteStore(tmp_path / "jobs.sqlite3", tmp_path / "results", inline_limit=1000)
    pool = EmbeddedPool(SqliteStore(tmp_path / "jobs.sqlite3", tmp_path / "results", inline_limit=1000),
                        workers=2, limits=RunLimits(heartbeat_s=0.1), poll_s=0.05, stale_s=5, **kwargs)
    return store, pool


def _queue(store, **params) -> str:
    job_id = uuid.uuid4().hex
    store.create(job_id, "jobs.demo_sleep", params)
    return job_id


def test_idle_threads_exit_and_come_back(tmp_path):
    store, pool = _pool(tmp_path, idle_exit_s=0.2)
    try:
        pool.start()
        assert pool.alive == 2
        wait_until(lambda: pool.alive == 0, 5, "idle threads to exit")
        job_id = _queue(store, steps=1, step_s=0)
        pool.notify()
        pool.start()
        wait_until(lambda: store.get(job_id).status == "done", 5, "the job to run on revived threads")
    finally:
        pool.stop()
        store.close()


def test_stop_interrupts_running_jobs_and_leaves_queued_ones(tmp_path):
    store, pool = _pool(tmp_path)
    running = [_queue(store, steps=400, step_s=0.02) for _ in range(2)]
    waiting = _queue(store, steps=1, step_s=0)
    pool.start()
    wait_until(lambda: all(store.get(i).status == "running" for i in running), 5, "both running")
    pool.stop()
    assert [store.get(i).status for i in running] == ["failed", "failed"]
    assert store.get(running[0]).error == "interrupted: the worker pool was shut down"
    assert store.get(waiting).status == "queued"  # the next start runs it
    store.close()


def test_two_pools_share_one_database(tmp_path):
    store, first = _pool(tmp_path)
    _, second = _pool(tmp_path)
    ids = [_queue(store, steps=1, step_s=0) for _ in range(40)]
    first.start()
    second.start()
    try:
        wait_until(lambda: all(store.get(i).status == "done" for i in ids), 20, "all jobs done")
        owners = {store.get(i).owner for i in ids}
        assert [store.get(i).runs for i in ids] == [1] * 40
        assert owners <= {first.owner, second.owner}
    finally:
        first.stop()
        second.stop()
        store.close()


def test_store_errors_do_not_kill_the_pool(tmp_path, caplog):
    store, pool = _pool(tmp_path)
    real_claim = pool.store.claim
    calls = {"n": 0}

    def flaky_claim(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 4:
            raise sqlite3.OperationalError("database is locked")
        return real_claim(*args, **kwargs)

    pool.store.claim = flaky_claim
    job_id = _queue(store, steps=1, step_s=0)
    pool.start()
    try:
        wait_until(lambda: store.get(job_id).status == "done", 10, "the job to run once the store recovers")
        assert pool.alive == 2
        assert "store error (retrying)" in caplog.text
    finally:
        pool.stop()
        store.close()


def test_worker_sigterm_stops_cleanly_and_fails_its_running_job(tmp_path):
    h = Harness("embedded", tmp_path)
    try:
        h.start_worker()
        job_id = h.submit("jobs.demo_sleep", {"steps": 400, "step_s": 0.05})
        h.wait(job_id, statuses=("running",))
        h.stop_worker()  # SIGTERM: a deployment stopping the worker
        assert h.worker.returncode == 0
        ended = h.get(job_id)
        assert (ended["status"], ended["error"]) == ("failed", "interrupted: the worker pool was shut down")
    finally:
        h.close()
