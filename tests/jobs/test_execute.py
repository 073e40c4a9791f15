"""Running one job: every way a task can end, the caps, and progress throttling."""

from __future__ import annotations

import threading
import uuid

import pytest
from pydantic import BaseModel

from backend.jobs import JobCancelled, LocalContext, task
from backend.jobs.demo import DemoSleepParams, demo_sleep
from backend.jobs.execute import RunLimits, encode_result, run_claimed
from backend.jobs.store_sqlite import SqliteStore


class Empty(BaseModel):
    pass


@task("tests_exec.bad_type", params=Empty)
def bad_type(params: Empty, ctx) -> dict:
    return ["not", "a", "dict"]  # type: ignore[return-value]


@task("tests_exec.model_result", params=Empty)
def model_result(params: Empty, ctx) -> dict:
    return DemoSleepParams(steps=3)  # type: ignore[return-value]


@task("tests_exec.chatty", params=Empty)
def chatty(params: Empty, ctx) -> dict:
    for i in range(5000):
        ctx.progress(i / 5000, "tick")
    return {"ticks": 5000}


@task("tests_exec.exits", params=Empty)
def exits(params: Empty, ctx) -> dict:
    raise SystemExit(3)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "jobs.sqlite3", tmp_path / "results", inline_limit=1000)
    yield s
    s.close()


def run(store, kind: str, params: dict | None = None, limits: RunLimits | None = None, stop=None):
    job_id = uuid.uuid4().hex
    store.create(job_id, kind, params or {})
    job = store.claim(job_id, "tester:1:x")
    status = run_claimed(store, job, "tester:1:x", limits or RunLimits(heartbeat_s=0.05), stop)
    record = store.get(job_id)
    assert record.status == status
    return record


def test_done(store):
    job = run(store, "jobs.demo_sleep", {"steps": 3, "step_s": 0})
    assert job.result == {"steps": 3, "slept_s": 0.0, "payload": ""}
    assert (job.progress, job.message) == (1.0, "finished")


def test_task_exception_fails_with_message(store):
    job = run(store, "jobs.demo_sleep", {"steps": 3, "step_s": 0, "fail_at": 2})
    assert (job.status, job.error) == ("failed", "RuntimeError: demo failure at step 2, as requested")


def test_system_exit_in_task_does_not_stop_the_worker(store):
    job = run(store, "tests_exec.exits")
    assert (job.status, job.error) == ("failed", "SystemExit: 3")


def test_bad_results(store):
    assert run(store, "tests_exec.bad_type").error == "the task returned list, expected a dict"
    assert run(store, "tests_exec.model_result").result["steps"] == 3  # a pydantic model is fine
    limits = RunLimits(max_result_bytes=100)
    too_big = run(store, "jobs.demo_sleep", {"steps": 1, "step_s": 0, "payload_kb": 1}, limits)
    assert too_big.status == "failed" and "over the limit JOBS_MAX_RESULT_BYTES=100" in too_big.error


def test_unknown_kind_or_stale_params_fail_cleanly(store):
    assert "no task 'gone.kind' is registered" in run(store, "gone.kind").error
    job = run(store, "jobs.demo_sleep", {"steps": "lots"})
    assert job.status == "failed" and job.error.startswith("invalid params:")


def test_runtime_cap(store):
    job = run(store, "jobs.demo_sleep", {"steps": 100, "step_s": 0.01}, RunLimits(max_runtime_s=0.05))
    assert job.status == "failed"
    assert job.error == "the job ran longer than the limit JOBS_MAX_RUNTIME_S=0.05"


def test_shutdown_interrupts_running_task(store):
    stop = threading.Event()
    stop.set()
    job = run(store, "jobs.demo_sleep", {"steps": 5, "step_s": 0}, stop=stop)
    assert (job.status, job.error) == ("failed", "interrupted: the worker pool was shut down")


def test_progress_writes_are_throttled(store):
    writes = []
    original = store.report

    def counting(*args):
        writes.append(args)
        return original(*args)

    store.report = counting
    job = run(store, "tests_exec.chatty", limits=RunLimits(progress_interval_s=10, heartbeat_s=60))
    assert job.result == {"ticks": 5000}
    assert len(writes) <= 3  # the first call, maybe one more, never 5000


def test_a_failed_job_shows_the_progress_the_throttle_held_back(store):
    # with a 60 s write interval only the first report (step 1 of 5) would reach the store on its own
    job = run(store, "jobs.demo_sleep", {"steps": 5, "step_s": 0, "fail_at": 3},
              limits=RunLimits(progress_interval_s=60, heartbeat_s=60))
    assert job.status == "failed" and "step 3" in job.error
    assert job.progress == pytest.approx(0.4) and job.message == "step 3 of 5"


def test_encode_result_rejects_non_json():
    with pytest.raises(ValueError, match="not JSON"):
        encode_result({"x": float("nan")}, 1000)
    with pytest.raises(ValueError, match="not JSON"):
        encode_result({"x": object()}, 1000)
    with pytest.raises(ValueError, match="not JSON"):
        encode_result({"x": "\ud800"}, 1000)  # a lone surrogate cannot be UTF-8
    assert encode_result({"x": [1, "é"]}, 1000) == '{"x":[1,"é"]}'.encode()


def test_local_context_runs_a_task_directly():
    ctx = LocalContext()
    result = demo_sleep(DemoSleepParams(steps=4, step_s=0), ctx)
    assert result["steps"] == 4
    assert [f for f, _ in ctx.updates] == [0.0, 0.25, 0.5, 0.75, 1.0]
    ctx.cancelled = True
    with pytest.raises(JobCancelled):
        demo_sleep(DemoSleepParams(steps=2, step_s=0), ctx)


def test_registering_a_kind_twice_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        task("jobs.demo_sleep", params=Empty)(lambda params, ctx: {})


def test_result_that_cannot_be_stored_fails_the_job(store, tmp_path):
    store.inline_limit = 10
    (tmp_path / "results").rmdir()
    (tmp_path / "results").write_text("not a folder")  # writing result files now fails
    job = run(store, "jobs.demo_sleep", {"steps": 1, "step_s": 0})
    assert job.status == "failed" and job.error.startswith("the result could not be stored:")
