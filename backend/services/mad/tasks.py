"""Running one simulation request (the loop, then n_e when asked), directly or as the ``mad.simulate`` job."""

from __future__ import annotations

import time
from typing import Any

from backend.jobs import JobContext, task
from backend.services.mad.effective import effective_sample_size
from backend.services.mad.loops import Progress, SimConfig, estimate_work, simulate
from backend.services.mad.schemas import SimulateJobParams, SimulateParams, result_payload, total_work


def run_simulation(params: SimulateParams, cfg: SimConfig, progress: Progress | None = None) -> dict[str, Any]:
    """The answer to one request (``cfg`` = ``params.to_config()``); progress is shared between the loop and
    n_e's reference curve by their estimated work."""
    start = time.perf_counter()
    work = total_work(params, cfg)
    share = estimate_work(cfg) / work

    def part(offset: float, width: float) -> Progress | None:
        return None if progress is None else (lambda f, message: progress(offset + width * f, message))

    result = simulate(cfg, part(0.0, share))
    effective = None
    if params.effective_sample_size:
        effective = effective_sample_size(cfg, run=result, progress=part(share, 1.0 - share))
    return result_payload(result, work, round(time.perf_counter() - start, 3), effective)


@task("mad.simulate", params=SimulateJobParams)
def simulate_job(params: SimulateJobParams, ctx: JobContext) -> dict:
    """Run a self-consuming loop simulation (POST /api/mad/simulate's long runs)."""
    ctx.progress(0.0, "starting")
    # ctx.progress raises JobCancelled after a cancel request: the run stops at the next generation or fit.
    return run_simulation(params, params.to_config(), ctx.progress)
