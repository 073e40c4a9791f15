"""HTTP layer of the MAD simulator: POST /api/mad/simulate and the /mad page.

Small runs (estimated work <= MAD_SYNC_MAX_WORK) are answered directly (200 with the rows); larger ones
are queued as a ``mad.simulate`` job and answered with 202 + the job's id and status URL, so a long run
reports progress and can be cancelled. ``mode`` forces one path ("sync" refuses runs over the sync cap).
"""

from __future__ import annotations

import numpy as np
from flask import current_app, render_template, url_for

from backend import jobs
from backend.services.mad import tasks  # also registers the mad.simulate job kind
from backend.services.mad.cost import WORK_PER_SECOND
from backend.services.mad.schemas import (
    SimulateParams,
    SimulateResponse,
    cap_violation,
    describe,
    total_work,
    work_violation,
)
from backend.web import limits
from backend.web.api import ApiBlueprint
from backend.web.errors import ApiError
from backend.web.pages import register_page

bp = ApiBlueprint("mad", __name__, template_folder="templates")
QUEUED = {
    202: {
        "description": "queued as a mad.simulate job (status 'queued', job_id, status_url); poll the job",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SimulateResponse"}}},
    }
}
register_page(
    "Self-consuming loops",
    "mad.page",
    "MAD: generative models trained on their own samples; Gaussian theory vs simulation",
)


@bp.api(
    "POST",
    "/api/mad/simulate",
    body=SimulateParams,
    response=SimulateResponse,
    summary="Simulate a self-consuming (autophagous) loop",
    description=(
        "Runs `replicates` independent chains of the chosen loop for `generations` generations and returns "
        "one row per generation (replicate means, standard errors `<metric>_se`, closed-form `*_theory` "
        "columns where they exist). Runs over MAD_SYNC_MAX_WORK (or mode=job) are queued as a `mad.simulate` "
        "job: 202 with `job_id` and `status_url`; the job's result has the same shape."
    ),
    errors={
        422: "invalid field, or a cap exceeded (the message names the MAD_* limit)",
        429: "too many pending jobs",
        503: "the job store or task queue is unreachable",
    },
    extra_responses=QUEUED,
)
def simulate_endpoint(body: SimulateParams):
    caps = current_app.config
    found = cap_violation(body, caps)
    if found is not None:
        limits.check(found[0], found[1], field=found[2])
    try:
        cfg = body.to_config()
        found = work_violation(body, cfg, caps)  # also builds the n_e reference fits' configurations
    except ValueError as exc:
        raise ApiError(422, f"invalid simulation: {exc}", code="invalid") from None
    if found is not None:
        raise ApiError(422, describe(found, caps), code="limit_exceeded", field=found[2])
    work = total_work(body, cfg)
    sync_cap = caps["MAD_SYNC_MAX_WORK"]
    if body.mode == "sync" and work > sync_cap:
        raise ApiError(
            422,
            f"estimated work is {work:g}, over the limit MAD_SYNC_MAX_WORK={sync_cap:g}; use mode=auto or job",
            code="limit_exceeded",
            field="mode",
        )
    if body.mode == "job" or (body.mode == "auto" and work > sync_cap):
        job_id = jobs.submit("mad.simulate", body.model_dump(mode="json"))
        status_url = url_for("jobs.get_job", job_id=job_id)
        payload = {"status": "queued", "job_id": job_id, "status_url": status_url, "work": work}
        return payload, 202, {"Location": status_url}
    try:
        return tasks.run_simulation(body, cfg)
    except np.linalg.LinAlgError as exc:  # safety net: inputs are bounded so that this should not happen
        raise ApiError(422, f"the simulation became numerically degenerate: {exc}", code="degenerate") from None


@bp.get("/mad")
def page() -> str:
    caps = {k: current_app.config[k] for k in current_app.config if k.startswith("MAD_")}
    return render_template("mad/simulate.html", caps=caps, work_per_second=WORK_PER_SECOND)
