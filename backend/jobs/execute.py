"""Running one claimed job: the same code in the embedded pool and in a Celery worker.

A job ends in exactly one final state written by the worker that claimed it: done (result),
failed (error message; the traceback goes to the log, not to clients), or cancelled. Nothing a
task does, short of killing the process, takes the worker down with it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from backend.jobs.records import CANCELLED, DONE, FAILED, JobRecord, owner_is_dead
from backend.jobs.registry import TASKS, JobCancelled

log = logging.getLogger(__name__)


class Store(Protocol):
    """What the job layer needs from a store (``SqliteStore``, ``RedisStore``)."""

    inline_limit: int

    def create(self, job_id: str, kind: str, params: dict[str, Any], *, client: str = "") -> JobRecord: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def list(self, *, limit: int, status: str | None = None, kind: str | None = None,
             client: str | None = None) -> list[JobRecord]: ...
    def count_pending(self, *, client: str | None = None) -> int: ...
    def running(self) -> list[JobRecord]: ...
    def queued_ids(self) -> list[str]: ...
    def claim(self, job_id: str | None, owner: str, kinds: Collection[str] | None = None) -> JobRecord | None: ...
    def report(self, job_id: str, owner: str, progress: float | None, message: str | None) -> bool: ...
    def finish(
        self, job_id: str, owner: str, status: str, *, result_json: bytes | None = None, error: str | None = None
    ) -> bool: ...
    def request_cancel(self, job_id: str, reason: str = ...) -> JobRecord | None: ...
    def fail_interrupted(self, job_id: str, owner: str | None, reason: str) -> bool: ...
    def read_result(self, job_id: str) -> bytes | None: ...
    def prune(self, keep: int, max_bytes: int | None = None) -> int: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class RunLimits:
    """Per-job caps and cadences (from config: JOBS_MAX_RUNTIME_S, JOBS_MAX_RESULT_BYTES, ...)."""

    max_runtime_s: float = 3600.0
    max_result_bytes: int = 64 * 1024 * 1024
    progress_interval_s: float = 0.1  # progress is written at most this often (the last one always)
    heartbeat_s: float = 2.0
    keep_finished: int | None = None  # after a job finishes: keep this many finished jobs (JOBS_KEEP_FINISHED)
    max_stored_bytes: int | None = None  # ... and at most this many result bytes (JOBS_MAX_STORED_BYTES), oldest out


class StoreContext:
    """The ``ctx`` a task receives: writes progress to the store, raises JobCancelled to stop it."""

    def __init__(self, store: Store, job: JobRecord, owner: str, limits: RunLimits,
                 stop_event: threading.Event | None = None) -> None:
        self.store = store
        self.job_id = job.id
        self.kind = job.kind
        self.owner = owner
        self.limits = limits
        self.stop_event = stop_event or threading.Event()  # set by shutdown of the embedded pool
        self.started = time.monotonic()
        self.stop_reason: str | None = None  # None: cancelled by a user; else why the job failed
        self._last_write = 0.0
        self._pending: tuple[float, str] | None = None
        self._stop = False

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; raises JobCancelled once the job was cancelled or must stop."""
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        if now - self.started > self.limits.max_runtime_s:
            self.stop_reason = f"the job ran longer than the limit JOBS_MAX_RUNTIME_S={self.limits.max_runtime_s:g}"
            raise JobCancelled(self.stop_reason)
        if self.stop_event.is_set():
            self.stop_reason = self.stop_reason or "interrupted: the worker pool was shut down"
            raise JobCancelled(self.stop_reason)
        # Write at most every progress_interval_s so tight loops can call this freely; the flag read
        # from the store rides along with the write, so cancellation is seen within that interval.
        if now - self._last_write >= self.limits.progress_interval_s or fraction >= 1.0:
            self._last_write = now
            self._pending = None
            self._stop = self.store.report(self.job_id, self.owner, fraction, str(message)[:500])
        else:
            self._pending = (fraction, str(message)[:500])
        if self._stop:
            raise JobCancelled("cancelled")

    def flush(self) -> None:
        """Write the last progress a throttle held back, so a job that fails or stops shows how far it got."""
        if self._pending is not None:
            fraction, message = self._pending
            self._pending = None
            self.store.report(self.job_id, self.owner, fraction, message)

    def heartbeat(self) -> None:
        if self.store.report(self.job_id, self.owner, None, None):
            self._stop = True


class _Heartbeat:
    """Keeps ``heartbeat_at`` fresh while a task runs, even one that never reports progress."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"job-heartbeat-{ctx.job_id[:8]}", daemon=True)

    def _run(self) -> None:
        while not self.done.wait(self.ctx.limits.heartbeat_s):
            try:
                self.ctx.heartbeat()
            except Exception:  # a store hiccup must not kill the job; the next beat retries
                log.warning("heartbeat for job %s failed", self.ctx.job_id, exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.done.set()
        self.thread.join(timeout=5)


def encode_result(result: Any, max_bytes: int) -> bytes:
    """The task's result as compact JSON bytes; ValueError with a clear reason when it cannot be."""
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if not isinstance(result, dict):
        raise ValueError(f"the task returned {type(result).__name__}, expected a dict")
    try:
        data = json.dumps(result, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the task's result is not JSON: {exc}") from None
    if len(data) > max_bytes:
        raise ValueError(f"the result is {len(data)} bytes, over the limit JOBS_MAX_RESULT_BYTES={max_bytes}")
    return data


def run_claimed(store: Store, job: JobRecord, owner: str, limits: RunLimits,
                stop_event: threading.Event | None = None) -> str:
    """Run a job this worker has claimed to its final state; returns that state."""
    spec = TASKS.get(job.kind)
    if spec is None:
        error = f"no task {job.kind!r} is registered in this worker (is its module imported?)"
        store.finish(job.id, owner, FAILED, error=error)
        return FAILED
    try:
        params = spec.params.model_validate(job.params)
    except ValidationError as exc:
        store.finish(job.id, owner, FAILED, error=f"invalid params: {exc.errors(include_url=False)[0]['msg']}")
        return FAILED
    ctx = StoreContext(store, job, owner, limits, stop_event)
    status, result_json, error = DONE, None, None
    with _Heartbeat(ctx):
        try:
            result = spec.fn(params, ctx)
        except JobCancelled:
            status = FAILED if ctx.stop_reason else CANCELLED
            error = ctx.stop_reason or "cancelled while running"
        except (Exception, SystemExit) as exc:  # any failure becomes the job's error; the worker goes on
            log.exception("job %s (%s) failed", job.id, job.kind)
            status, error = FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        else:
            try:
                result_json = encode_result(result, limits.max_result_bytes)
            except ValueError as exc:
                status, error = FAILED, str(exc)
    if status != DONE:
        try:
            ctx.flush()
        except Exception:  # the final state below matters more than the progress figure
            log.warning("job %s: its last progress could not be written", job.id, exc_info=True)
    try:
        finished = store.finish(job.id, owner, status, result_json=result_json, error=error)
    except Exception as exc:  # disk full, result too big for Redis...: the job fails, clearly
        log.exception("job %s: storing its result failed", job.id)
        status = FAILED
        finished = store.finish(job.id, owner, FAILED, error=f"the result could not be stored: {exc}")
    if not finished:
        log.warning("job %s finished as %s but was no longer owned by this worker", job.id, status)
    elif result_json is not None and limits.keep_finished is not None:
        try:  # the disk budget holds after every stored result, not only at the next submission
            store.prune(limits.keep_finished, limits.max_stored_bytes)
        except Exception:
            log.warning("pruning old job results failed", exc_info=True)
    return status


def recover(store: Store, stale_s: float) -> list[str]:
    """Fail running jobs whose worker is gone: a dead process on this host, or a stale heartbeat."""
    failed: list[str] = []
    now = time.time()
    for job in store.running():
        if owner_is_dead(job.owner):
            reason = "interrupted: the process running it stopped (backend restart or crash)"
        elif job.heartbeat_at is not None and now - job.heartbeat_at > stale_s:
            reason = f"interrupted: no heartbeat from its worker for over {stale_s:g} s (worker lost)"
        else:
            continue
        if store.fail_interrupted(job.id, job.owner, reason):
            log.warning("job %s (%s): %s", job.id, job.kind, reason)
            failed.append(job.id)
    return failed
