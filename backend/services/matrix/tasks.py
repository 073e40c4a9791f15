"""The ``matrix.lowrank`` job: POST /api/matrix/lowrank's computation through the job layer.

An exact SVD of the largest matrix the caps allow takes ~10 s on two busy cores; clients that would rather not hold
a request open submit ``{"kind": "matrix.lowrank", "params": {...}}`` to POST /api/jobs and poll it.
Its caps are the request's (``LowRankRequest.check_caps``), checked at submission against the app's settings.
"""

from __future__ import annotations

import numpy as np

from backend.jobs import JobContext, task
from backend.services.matrix.schemas import LowRankJobParams
from backend.services.matrix.service import lowrank_result, matrix_problem


@task("matrix.lowrank", params=LowRankJobParams)
def lowrank_job(params: LowRankJobParams, ctx: JobContext) -> dict:
    """Optimal (SVD) or randomized rank-r approximation of a JSON matrix, with its errors."""
    ctx.progress(0.0, "checking the matrix")
    a = np.asarray(params.matrix, dtype=np.float64)
    problem = matrix_problem(a, max_entries=a.size, max_dim=max(a.shape))  # overflowing entries
    if problem:
        raise ValueError(problem)
    if params.rank > min(a.shape):
        raise ValueError(f"rank must be between 1 and min(rows, columns) = {min(a.shape)}, got {params.rank}")
    result = lowrank_result(a, params, ctx.progress)
    ctx.progress(1.0, "done")
    return result
