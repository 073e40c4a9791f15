"""The ``mad.simulate`` job: a simulation run with progress and cancellation through the job layer."""

from __future__ import annotations

import time

from backend.jobs import JobContext, task
from backend.services.mad.loops import simulate
from backend.services.mad.schemas import SimulateJobParams, result_payload


@task("mad.simulate", params=SimulateJobParams)
def simulate_job(params: SimulateJobParams, ctx: JobContext) -> dict:
    """Run a self-consuming loop simulation (POST /api/mad/simulate's long runs)."""
    start = time.perf_counter()
    ctx.progress(0.0, "starting")
    # ctx.progress raises JobCancelled after a cancel request: the loop stops at the next generation.
    result = simulate(params.to_config(), ctx.progress)
    return result_payload(result, round(time.perf_counter() - start, 3))
