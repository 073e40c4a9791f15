"""HTTP layer of the MAD simulator: POST /api/mad/simulate and the /mad page.

Small runs (estimated work <= MAD_SYNC_MAX_WORK) are answered directly (200 with the rows); larger ones
are queued as a ``mad.simulate`` job and answered with 202 + the job's id and status URL, so a long run
reports progress and can be cancelled. ``mode`` forces one path ("sync" refuses runs over the sync cap).
"""

from __future__ import annotations

import numpy as np
from flask import current_app, render_template

from backend import jobs
from backend.services.mad import tasks  # also registers the mad.simulate job kind
from backend.services.mad.schemas import SimulateParams, SimulateResponse, total_work
from backend.web import access, budget
from backend.web.api import ApiBlueprint
from backend.web.caps import fmt
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
    gated=True,
)
def simulate_endpoint(body: SimulateParams):
    # Every cap, joint ones included, was checked with the request (SimulateParams.check_caps).
    caps = current_app.config
    cfg = body.to_config()
    work = total_work(body, cfg)
    sync_cap = caps["MAD_SYNC_MAX_WORK"]
    if body.mode == "sync" and work > sync_cap:
        raise ApiError(
            422,
            f"this run's estimated work ({fmt(work)} units) is over the limit of {fmt(sync_cap)} units for a direct "
            "answer; choose mode auto or job to run it as a job",
            code="limit_exceeded", field="mode", limit="MAD_SYNC_MAX_WORK", limit_value=sync_cap,
        )
    if body.mode == "job" or (body.mode == "auto" and work > sync_cap):
        job = jobs.submit_job("mad.simulate", body.model_dump(mode="json"))
        payload = {"status": "queued", "job_id": job["id"], "job_key": job["job_key"],
                   "status_url": job["status_url"], "work": work}
        return payload, 202, {"Location": job["status_url"]}
    access.require()
    with budget.compute(work / caps["MAD_WORK_PER_SECOND"], fix="choose mode auto or job to run it as a job"):
        try:
            return tasks.run_simulation(body, cfg, lambda *_: budget.check())
        except np.linalg.LinAlgError as exc:  # safety net: inputs are bounded so that this should not happen
            raise ApiError(422, f"the simulation became numerically degenerate ({exc}); try another seed or "
                                "fewer generations", code="degenerate") from None


@bp.get("/mad")
def page() -> str:
    caps = {k: current_app.config[k] for k in current_app.config if k.startswith("MAD_")}
    return render_template("mad/simulate.html", caps=caps, work_per_second=caps["MAD_WORK_PER_SECOND"])
