"""The ``matrix.lowrank`` job: POST /api/matrix/lowrank's computation through the job layer.

An exact SVD of the largest matrix the caps allow takes ~10 s on two busy cores; clients that would rather not hold
a request open submit ``{"kind": "matrix.lowrank", "params": {...}}`` to POST /api/jobs and poll it.
Caps come from ``backend.config`` (defaults, then environment), as workers have no Flask app.
"""

from __future__ import annotations

import numpy as np

from backend.config import load_config
from backend.jobs import JobContext, task
from backend.services.matrix.schemas import LowRankJobParams
from backend.services.matrix.service import lowrank_result, matrix_problem
from backend.web.caps import first_over, over_message


@task("matrix.lowrank", params=LowRankJobParams)
def lowrank_job(params: LowRankJobParams, ctx: JobContext) -> dict:
    """Optimal (SVD) or randomized rank-r approximation of a JSON matrix, with its errors."""
    config = load_config()
    ctx.progress(0.0, "checking the matrix")
    a = np.asarray(params.matrix, dtype=np.float64)
    problem = matrix_problem(a, int(config["MATRIX_MAX_ENTRIES"]), int(config["MATRIX_MAX_DIM"]))
    if problem:
        raise ValueError(problem)
    if params.rank > min(a.shape):
        raise ValueError(f"rank must be between 1 and min(rows, columns) = {min(a.shape)}, got {params.rank}")
    over = first_over(params, config)  # the caps its fields declare, as POST /api/matrix/lowrank checks them
    if over is not None:
        name, value, field = over
        raise ValueError(over_message(name, value, config[name], field))
    if params.return_factors and params.rank * (sum(a.shape) + 1) > config["MATRIX_MAX_RETURN_ENTRIES"]:
        raise ValueError(f"the factors would exceed MATRIX_MAX_RETURN_ENTRIES={config['MATRIX_MAX_RETURN_ENTRIES']}")
    result = lowrank_result(a, params, ctx.progress)
    ctx.progress(1.0, "done")
    return result
