"""The job layer's front: submit, inspect, cancel; the backend (embedded or Celery) comes from config.

Flask-free (plain config mapping in, exceptions out) so scripts and workers can use it too; the
blueprint and ``backend.jobs.submit`` turn ``JobError`` into the shared API error shape.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from pydantic import BaseModel, ValidationError

from backend.jobs.execute import RunLimits, Store, recover
from backend.jobs.records import JobRecord
from backend.jobs.registry import TASKS
from backend.web import caps

log = logging.getLogger(__name__)

BACKENDS = ("embedded", "celery")


class JobError(Exception):
    """An expected failure of a job request, with the HTTP status it maps to."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, *, field: str | None = None, details: list[dict] | None = None,
                 limit: str | None = None, limit_value: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        self.limit = limit  # the setting that refused it, for the error shape's ``limit``
        self.limit_value = limit_value


class UnknownKind(JobError):
    status = 422
    code = "unknown_kind"


class InvalidParams(JobError):
    status = 422
    code = "validation_error"


class QueueFull(JobError):
    status = 429
    code = "limit_exceeded"


class JobNotFound(JobError):
    status = 404
    code = "not_found"


class JobForbidden(JobError):
    status = 403
    code = "forbidden"


class JobFinished(JobError):
    status = 409
    code = "job_finished"


class NoResult(JobError):
    status = 409
    code = "no_result"


class BackendUnavailable(JobError):
    status = 503
    code = "jobs_unavailable"


_STORE_ERRORS = (OSError, sqlite3.Error, redis.RedisError)


def _guard(method):
    """Store failures (Redis down, disk full) become a clear 503, not a 500 with a traceback."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except _STORE_ERRORS as exc:
            log.exception("job store error")
            raise BackendUnavailable(f"the job store is unavailable: {type(exc).__name__}: {exc}") from None

    return wrapper


def validate_params(kind: str, params: Mapping[str, Any] | BaseModel | None,
                    settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The params of a job of ``kind`` as validated, normalised JSON (defaults filled in).

    With ``settings`` (the app's config), the task's caps are checked by the same ``caps.validate`` that checks
    requests; without (a worker re-reading params it was given), only the model's own rules apply.
    """
    spec = TASKS.get(kind)
    if spec is None:
        known = ", ".join(sorted(TASKS)) or "none"
        raise UnknownKind(f"there is no job kind {kind!r}; choose one of {known}", field="kind")
    if isinstance(params, BaseModel):
        params = params.model_dump(mode="json")
    try:
        if settings is None:
            model = spec.params.model_validate(dict(params or {}))
        else:
            model = caps.validate(spec.params, dict(params or {}), settings, strict=True)  # JSON: no true for 1
    except ValidationError as exc:
        from backend.web.api import validation_error  # the same wording as request fields

        error = validation_error(exc, "params", prefix=("params",))
        raise InvalidParams(error.message, field=error.field, details=error.details) from None
    except caps.CapExceeded as exc:
        over = exc.over
        raise InvalidParams(over.message, field=f"params.{over.field}" if over.field else "params",
                            limit=over.setting, limit_value=over.limit) from None
    return model.model_dump(mode="json")


class JobManager:
    """One per app (``app.extensions["jobs"]``); thread-safe."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.backend = config["JOBS_BACKEND"]
        if self.backend not in BACKENDS:
            raise ValueError(f"JOBS_BACKEND must be one of {BACKENDS}, not {self.backend!r}")
        self.settings = config  # the app's settings: job params are capped by the same ones as requests
        self.max_pending = int(config["JOBS_MAX_PENDING"])
        self.max_pending_per_client = int(config["JOBS_MAX_PENDING_PER_CLIENT"])
        self.keep_finished = int(config["JOBS_KEEP_FINISHED"])
        self.max_stored_bytes = int(config["JOBS_MAX_STORED_BYTES"])
        self.stale_s = float(config["JOBS_STALE_S"])
        self.limits = RunLimits(
            max_runtime_s=float(config["JOBS_MAX_RUNTIME_S"]),
            max_result_bytes=int(config["JOBS_MAX_RESULT_BYTES"]),
            progress_interval_s=float(config["JOBS_PROGRESS_INTERVAL_S"]),
            heartbeat_s=float(config["JOBS_HEARTBEAT_S"]),
            keep_finished=self.keep_finished,
            max_stored_bytes=self.max_stored_bytes,
        )
        self._key_secret = job_key_secret(config)
        self._last_recover = 0.0
        self._closed = False
        self._submits = 0
        self._lock = threading.Lock()
        self.pool = None
        self.store: Store
        if self.backend == "embedded":
            from backend.jobs.embedded import EmbeddedPool
            from backend.jobs.store_sqlite import SqliteStore

            instance = Path(config.get("INSTANCE_DIR") or ".")
            db = config["JOBS_DB"] or instance / "jobs.sqlite3"
            result_dir = config["JOBS_RESULT_DIR"] or instance / "job_results"
            self.store = SqliteStore(db, result_dir, inline_limit=int(config["JOBS_INLINE_RESULT_BYTES"]))
            if config["JOBS_EMBEDDED_POOL"]:
                idle = float(config["JOBS_IDLE_EXIT_S"])
                self.pool = EmbeddedPool(
                    SqliteStore(db, result_dir, inline_limit=int(config["JOBS_INLINE_RESULT_BYTES"])),
                    workers=int(config["JOBS_WORKERS"]),
                    limits=self.limits,
                    poll_s=float(config["JOBS_POLL_S"]),
                    stale_s=self.stale_s,
                    idle_exit_s=idle if idle > 0 else None,
                )
        else:
            from backend.jobs import celery_app

            self._queue = config["JOBS_CELERY_QUEUE"]
            self._run_task = celery_app.RUN_TASK
            self._celery = celery_app.make_client(config)
            self.store = celery_app.make_store(config)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """At backend start: fail interrupted jobs, prune old ones, and run jobs left queued."""
        try:
            recover(self.store, self.stale_s)
            self.store.prune(self.keep_finished, self.max_stored_bytes)
            if self.pool is not None and self.store.queued_ids():
                self.pool.start()
        except Exception:  # an unreachable Redis must not stop the web app from starting
            log.exception("job layer: start-up recovery failed")

    def close(self) -> None:
        """Stop the pool (running jobs fail as interrupted) and release connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.pool is not None:
            self.pool.stop()
        if self.backend == "celery":
            self._celery.close()
        self.store.close()

    # -- operations -------------------------------------------------------------------------------

    # -- keys: a job's id is listed to its owner; its key is the secret that lets anyone holding it read it

    def key_for(self, job_id: str) -> str:
        """The job's key: unguessable without the server's secret, and derived, so no store keeps it."""
        return hmac.new(self._key_secret, job_id.encode(), hashlib.sha256).hexdigest()[:32]

    def may_access(self, job: JobRecord, key: str | None, client: str | None) -> bool:
        """The key opens any job; a token owner (``token:<name>``) also opens the jobs it submitted."""
        if key and hmac.compare_digest(key.encode(), self.key_for(job.id).encode()):
            return True
        return bool(client and client.startswith("token:") and job.client == client)

    @_guard
    def submit(self, kind: str, params: Mapping[str, Any] | BaseModel | None = None, *, client: str = "") -> JobRecord:
        """Validate and queue a job for ``client``; raises UnknownKind / InvalidParams / QueueFull / BackendUnavailable."""
        clean = validate_params(kind, params, self.settings)
        if client:
            mine = self.store.count_pending(client=client)
            if mine >= self.max_pending_per_client:
                raise QueueFull(
                    f"you have {mine} jobs queued or running, the most one client may have at once "
                    f"({self.max_pending_per_client}); wait for one to finish, or cancel one",
                    limit="JOBS_MAX_PENDING_PER_CLIENT", limit_value=self.max_pending_per_client,
                )
        pending = self.store.count_pending()
        if pending >= self.max_pending:
            raise QueueFull(
                f"{pending} jobs are queued or running, as many as this server takes at once ({self.max_pending}); "
                "try again later", limit="JOBS_MAX_PENDING", limit_value=self.max_pending,
            )
        job = self.store.create(uuid.uuid4().hex, kind, clean, client=client)
        if self.pool is not None:
            self.pool.notify()  # before start(): see EmbeddedPool._loop on idle exit
            self.pool.start()
        elif self.backend == "celery":
            try:
                self._celery.send_task(self._run_task, args=[job.id], queue=self._queue)
            except Exception as exc:
                self.store.request_cancel(job.id, reason=f"the task queue is unreachable: {exc}")
                raise BackendUnavailable(f"the task queue (Celery broker) is unreachable: {exc}") from None
        with self._lock:
            self._submits += 1
            prune = self._submits % 200 == 0
        if prune:
            self.store.prune(self.keep_finished, self.max_stored_bytes)
        return job

    def _maybe_recover(self) -> None:
        # Celery workers on other machines cannot be watched; a reader notices their silence instead.
        now = time.monotonic()
        with self._lock:
            if now - self._last_recover < min(1.0, self.stale_s / 4):
                return
            self._last_recover = now
        recover(self.store, self.stale_s)

    @_guard
    def get(self, job_id: str) -> JobRecord:
        self._maybe_recover()
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    @_guard
    def list(self, *, limit: int, status: str | None = None, kind: str | None = None,
             client: str | None = None) -> list[JobRecord]:
        self._maybe_recover()
        return self.store.list(limit=limit, status=status, kind=kind, client=client)

    @_guard
    def cancel(self, job_id: str) -> JobRecord:
        job = self.store.request_cancel(job_id, reason="cancelled before it started")
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        if job.finished and not (job.status == "cancelled" and job.started_at is None):
            raise JobFinished(f"job {job_id} already finished ({job.status}); nothing to cancel")
        return job

    @_guard
    def result(self, job_id: str) -> bytes:
        job = self.get(job_id)
        if job.status != "done":
            raise NoResult(f"job {job_id} has no result: it is {job.status}")
        data = self.store.read_result(job_id)
        if data is None:
            raise JobNotFound(f"the result of job {job_id} is no longer stored")
        return data


def job_key_secret(config: Mapping[str, Any]) -> bytes:
    """JOBS_KEY_SECRET, or one generated once into ``<INSTANCE_DIR>/jobs_key_secret`` (mode 0600) and shared by
    every process on this machine; web servers on several machines need the setting."""
    if config.get("JOBS_KEY_SECRET"):
        return str(config["JOBS_KEY_SECRET"]).encode()
    path = Path(config.get("INSTANCE_DIR") or ".") / "jobs_key_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(50):  # another process may be between creating and writing it
        text = path.read_text().strip()
        if text:
            return text.encode()
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it and start again")
