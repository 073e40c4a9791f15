"""HTTP for the job layer: submit, inspect, cancel, fetch results; the jobs page; jobs.js for pages."""

from __future__ import annotations

import re
from typing import Any, Literal

from flask import Response, current_app, render_template
from pydantic import BaseModel, ConfigDict, Field

from backend.jobs import init_app, manager, public
from backend.jobs import submit_job as submit
from backend.jobs.manager import JobError
from backend.jobs.records import STATUSES
from backend.jobs.registry import TASKS
from backend.web import access
from backend.web.api import ApiBlueprint
from backend.web.caps import capped_by
from backend.web.errors import ApiError
from backend.web.pages import register_page

__all__ = ["bp", "init_app"]

bp = ApiBlueprint(
    "jobs", __name__, template_folder="templates", static_folder="static", static_url_path="/static/jobs"
)
register_page("Jobs", "jobs.jobs_page", "long-running work: live progress, results, cancel")

Status = Literal["queued", "running", "done", "failed", "cancelled"]
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class SubmitJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        min_length=1, max_length=100, description='"<service>.<task>" (GET /api/jobs/kinds has their params)',
        # the kinds registered when the document is built (services register theirs at import)
        json_schema_extra=lambda schema: schema.update(enum=sorted(TASKS)),
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the task's parameters, validated before queueing")


class Submitted(BaseModel):
    id: str
    job_key: str = Field(description="the job's secret: reading or cancelling the job needs it (?key=)")
    kind: str
    status: Status
    status_url: str = Field(description="poll this for progress and the result (it carries ?key=)")
    result_url: str = Field(description="the result once done (it carries ?key=)")


class KeyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, max_length=64,
                            description="the job_key from the submission (not needed by the owner's API token)")


class JobView(BaseModel):
    id: str
    kind: str
    status: Status
    progress: float = Field(ge=0, le=1)
    message: str
    params: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    status_url: str
    job_key: str | None = Field(default=None, description="shown to whoever sent it, and to the owner's token")
    result: dict[str, Any] | None = Field(default=None, description="when done, unless stored aside")
    result_bytes: int | None = Field(default=None, description="size of the JSON result")
    result_external: bool | None = Field(default=None, description="true: too large to inline, fetch result_url")
    result_url: str | None = Field(default=None, description="the result as a JSON document (when done)")
    error: str | None = Field(default=None, description="why it failed or was cancelled")
    cancel_requested: bool | None = None


class JobList(BaseModel):
    jobs: list[JobView]


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=50, ge=1, description="at most JOBS_LIST_MAX", json_schema_extra=capped_by("JOBS_LIST_MAX", "jobs")
    )
    status: Status | None = None
    kind: str | None = Field(default=None, max_length=100)


class KindView(BaseModel):
    kind: str
    summary: str
    params_schema: dict[str, Any]


class KindList(BaseModel):
    kinds: list[KindView]


def _call(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except JobError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code, field=exc.field, details=exc.details, limit=exc.limit,
                       limit_value=exc.limit_value) from None


def _job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise ApiError(404, f"there is no job {job_id[:40]!r} (job ids are 32 hex digits)", code="not_found")
    return job_id


def _opened(job_id: str, key: str | None):
    """The job, if the caller holds its key or owns it by token; 403 otherwise (as for a job that does not exist,
    no detail: ids alone open nothing)."""
    jobs = manager()
    job = _call(jobs.get, _job_id(job_id))
    caller = access.require()
    if not jobs.may_access(job, key, caller):
        missing = "" if key else "; add the ?key= you were given (status_url carries it)"
        raise ApiError(403, f"this job's key is {'wrong' if key else 'missing'}{missing}", code="forbidden",
                       field="key")
    return job, jobs.key_for(job.id) if key or caller.startswith("token:") else None


@bp.api(
    "POST",
    "/api/jobs",
    body=SubmitJob,
    response=Submitted,
    status=202,
    summary="Start a job",
    description="Validates params against the task's model (422 naming the field), then queues the job.",
    errors={422: "unknown kind or invalid params", 429: "too many pending jobs (JOBS_MAX_PENDING, or this "
            "client's JOBS_MAX_PENDING_PER_CLIENT)", 503: "the job store or task queue is unreachable"},
    gated=True,
)
def submit_job(body: SubmitJob):
    view = submit(body.kind, body.params)
    return Submitted(id=view["id"], job_key=view["job_key"], kind=view["kind"], status=view["status"],
                     status_url=view["status_url"], result_url=view["result_url"]), 202, {
        "Location": view["status_url"]
    }


@bp.api("GET", "/api/jobs", query=ListQuery, response=JobList, gated=True,
        summary="The caller's recent jobs, newest first",
        description="Jobs submitted by this caller: this API token's owner, or (without tokens) this machine.")
def list_jobs(query: ListQuery) -> dict:
    jobs = manager()
    caller = access.require()
    found = _call(jobs.list, limit=query.limit, status=query.status, kind=query.kind, client=caller)
    return {"jobs": [public(job, jobs.key_for(job.id)) for job in found]}


@bp.api("GET", "/api/jobs/kinds", response=KindList, summary="The job kinds this backend can run")
def list_kinds() -> KindList:
    return KindList(
        kinds=[
            KindView(kind=spec.kind, summary=spec.summary, params_schema=spec.params.model_json_schema())
            for spec in sorted(TASKS.values(), key=lambda s: s.kind)
        ]
    )


@bp.api("GET", "/api/jobs/<job_id>", query=KeyQuery, response=JobView, gated=True,
        summary="A job's status, progress and result or error", errors={403: "the job's key is missing or wrong",
                                                                         404: "no such job"})
def get_job(job_id: str, query: KeyQuery) -> dict:
    # A dict, not the model: keys that do not apply (result of a failed job...) are left out.
    return public(*_opened(job_id, query.key))


@bp.api(
    "DELETE",
    "/api/jobs/<job_id>",
    response=JobView,
    summary="Cancel a job",
    description="A queued job is cancelled at once (200); a running one stops at its next progress report "
    "(202, then status becomes cancelled).",
    errors={403: "the job's key is missing or wrong", 404: "no such job", 409: "the job already finished"},
    query=KeyQuery,
    gated=True,
    extra_responses={
        202: {
            "description": "cancel requested: the running job stops at its next progress report",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobView"}}},
        }
    },
)
def cancel_job(job_id: str, query: KeyQuery):
    _, key = _opened(job_id, query.key)
    job = _call(manager().cancel, job_id)
    return public(job, key), 202 if job.status == "running" else 200


@bp.api(
    "GET",
    "/api/jobs/<job_id>/result",
    summary="A finished job's result as a JSON document",
    description="Large results are stored aside (over JOBS_INLINE_RESULT_BYTES) and only served here.",
    errors={403: "the job's key is missing or wrong", 404: "no such job", 409: "the job is not done"},
    query=KeyQuery,
    gated=True,
)
def job_result(job_id: str, query: KeyQuery) -> Response:
    _opened(job_id, query.key)
    data = _call(manager().result, job_id)
    response = Response(data, mimetype="application/json")
    response.headers["Content-Disposition"] = f'inline; filename="job-{job_id}.json"'
    return response


# A quick demo on the page: a few seconds of visible progress.
_PAGE_EXAMPLES = {"jobs.demo_sleep": {"steps": 20, "step_s": 0.2}}


def _example_params(kind: str) -> dict[str, Any]:
    """Params to prefill the form with: the page's example, else the model's defaults."""
    if kind in _PAGE_EXAMPLES:
        return _PAGE_EXAMPLES[kind]
    properties = TASKS[kind].params.model_json_schema().get("properties", {})
    return {name: prop["default"] for name, prop in properties.items() if "default" in prop}


@bp.get("/jobs")
def jobs_page() -> str:
    kinds = sorted(TASKS.values(), key=lambda s: s.kind)
    return render_template(
        "jobs/index.html",
        kinds=kinds,
        examples={spec.kind: _example_params(spec.kind) for spec in kinds},
        statuses=STATUSES,
        backend=current_app.config["JOBS_BACKEND"],
        list_max=current_app.config["JOBS_LIST_MAX"],
    )
