"""Structured matrices: Monarch (sparse, M = P L P R) and optimal / randomized low rank.

Library use (numpy arrays or torch tensors; no Flask)::

    from backend.services.matrix import Monarch, square_layout, project, svd_lowrank, randomized_svd, MonarchLinear
    mon, proj = Monarch.from_dense(a)            # optimal Frobenius projection, proj.error_fro exact
    y = mon.matmul(x)                            # x @ M^T, batched, fp32/fp64, autograd
    monarch_matmul(x, w1, w2, out=buf)           # into a preallocated (B, n_out) buffer (no autograd)
    lr = randomized_svd(a, 50, power_iters=2)    # lr.error_fro exact a-posteriori, lr.error_spectral estimate

The HTTP layer is ``blueprint.py``; the benchmark is ``scripts/bench_matrix.py``; the model-level experiment is
``experiment.py`` with ``scripts/exp_monarch_mlp.py``; ``README.md`` has the API, the results and the caveats.
"""

from backend.services.matrix.layers import MonarchLinear
from backend.services.matrix.lowrank import (
    LowRank,
    als_lowrank,
    pinv,
    randomized_svd,
    solve_left_factor,
    solve_right_factor,
    svd_lowrank,
)
from backend.services.matrix.monarch import (
    Monarch,
    Projection,
    block_size_layout,
    linear_layout,
    monarch_matmul,
    monarch_matmul_transposed,
    monarch_to_dense,
    param_count,
    project,
    rectangular_layout,
    square_layout,
)

__all__ = [
    "LowRank", "Monarch", "MonarchLinear", "Projection", "als_lowrank", "block_size_layout", "linear_layout",
    "monarch_matmul", "monarch_matmul_transposed", "monarch_to_dense", "param_count", "pinv", "project",
    "randomized_svd", "rectangular_layout", "solve_left_factor", "solve_right_factor", "square_layout", "svd_lowrank",
]
