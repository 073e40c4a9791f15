"""The job layer: long work runs as jobs with progress, results and cancellation.

Services register tasks with ``@task("service.name", params=Model)``; views start them with
``submit(kind, params)`` and read them with ``get(job_id)``; pages follow them with
``static/jobs.js`` (``watchJob``). The backend, embedded (threads + SQLite) or Celery (Redis +
workers anywhere), comes from config ``JOBS_BACKEND``; see ``backend/jobs/README.md``.
"""

from __future__ import annotations

import atexit
import importlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from backend.jobs import demo  # noqa: F401 - registers jobs.demo_sleep
from backend.jobs.manager import JobError, JobManager, JobNotFound
from backend.jobs.records import JobRecord
from backend.jobs.registry import TASKS, JobCancelled, JobContext, LocalContext, TaskSpec, task

if TYPE_CHECKING:
    from flask import Flask

# Flask is imported inside the functions below: a service's pure core may import ``task`` from here
# without pulling in the web framework.

__all__ = [
    "TASKS",
    "JobCancelled",
    "JobContext",
    "LocalContext",
    "TaskSpec",
    "task",
    "init_app",
    "manager",
    "submit",
    "submit_job",
    "get",
    "cancel",
    "result",
    "public",
]


def init_app(app: Flask) -> JobManager:
    """Create the app's job manager: fail interrupted jobs, resume queued ones (create_app calls this)."""
    existing = app.extensions.get("jobs")
    if existing is not None:
        return existing
    for module in app.config.get("JOBS_TASK_MODULES") or []:
        importlib.import_module(module)
    jobs = JobManager(app.config)
    app.extensions["jobs"] = jobs
    app.extensions.setdefault("shutdown_hooks", []).append(jobs.close)
    atexit.register(jobs.close)  # a clean exit marks its running jobs interrupted right away
    jobs.start()
    return jobs


def manager(app: Flask | None = None) -> JobManager:
    """The job manager of ``app`` (default: the current app), created on first use."""
    from flask import current_app

    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions.get("jobs") or init_app(app)


def _api_error(exc: JobError) -> Exception:
    from backend.web.errors import ApiError

    return ApiError(exc.status, exc.message, code=exc.code, field=exc.field, details=exc.details, limit=exc.limit,
                    limit_value=exc.limit_value)


def public(job: JobRecord, key: str | None = None) -> dict[str, Any]:
    """A job as the API shows it (``GET /api/jobs/<id>``); with its ``key``, the URLs carry ``?key=`` and the key is
    shown (only to whoever already holds it, or owns the job)."""
    from flask import has_request_context, url_for

    query = {"key": key} if key else {}
    if has_request_context():
        result_url = url_for("jobs.job_result", job_id=job.id, **query)
        status_url = url_for("jobs.get_job", job_id=job.id, **query)
    else:
        suffix = f"?key={key}" if key else ""
        result_url, status_url = f"/api/jobs/{job.id}/result{suffix}", f"/api/jobs/{job.id}{suffix}"
    out = job.public(result_url if job.status == "done" else None)
    out["status_url"] = status_url
    if key:
        out["job_key"] = key
    return out


def _client() -> str:
    from backend.web import access

    return access.require()


def submit_job(kind: str, params: Mapping[str, Any] | BaseModel | None = None) -> dict[str, Any]:
    """Validate ``params`` for ``kind`` and queue the job for the current caller (inside a request).

    Returns its public view with ``job_key`` and the keyed ``status_url``/``result_url`` to hand to the client.
    Raises ApiError (422 bad params or a cap; 429 the caller's or the server's pending cap; 503 store down).
    """
    jobs = manager()
    try:
        job = jobs.submit(kind, params, client=_client())
    except JobError as exc:
        raise _api_error(exc) from None
    view = public(job, jobs.key_for(job.id))
    view["result_url"] = view["status_url"].replace(f"/api/jobs/{job.id}", f"/api/jobs/{job.id}/result", 1)
    return view


def submit(kind: str, params: Mapping[str, Any] | BaseModel | None = None) -> str:
    """``submit_job`` returning only the id (the key: ``manager().key_for(id)``)."""
    return submit_job(kind, params)["id"]


def get(job_id: str) -> dict[str, Any] | None:
    """The job's public state (status, progress, message, result or error), or None if unknown."""
    try:
        return public(manager().get(job_id))
    except JobNotFound:
        return None
    except JobError as exc:
        raise _api_error(exc) from None


def cancel(job_id: str) -> dict[str, Any]:
    """Cancel a queued or running job; raises ApiError 404 (unknown) or 409 (already finished)."""
    try:
        return public(manager().cancel(job_id))
    except JobError as exc:
        raise _api_error(exc) from None


def result(job_id: str) -> dict[str, Any]:
    """The full result of a done job, inline or stored aside; ApiError 404 (unknown) or 409 (not done)."""
    try:
        return json.loads(manager().result(job_id))
    except JobError as exc:
        raise _api_error(exc) from None
