"""Request-level computations shared by the HTTP views and the job tasks (plain arguments, no Flask)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backend.services.matrix.lowrank import randomized_svd, svd_lowrank
from backend.services.matrix.schemas import LowRankRequest

MAX_ABS_ENTRY = 1e150  # norms and SVDs square the entries: beyond this float64 overflows to inf


def nested(a: np.ndarray) -> Any:
    return np.asarray(a, dtype=np.float64).tolist()


def matrix_problem(arr: np.ndarray, max_entries: int, max_dim: int) -> str | None:
    """Why ``arr`` cannot be processed (a message saying what to fix), or None."""
    if arr.ndim != 2 or 0 in arr.shape:
        return f"the matrix must be 2-D and non-empty, got shape {list(arr.shape)}"
    if arr.size > max_entries:
        return f"matrix has {arr.size} entries, over the limit MATRIX_MAX_ENTRIES={max_entries}"
    if max(arr.shape) > max_dim:
        return f"matrix side {max(arr.shape)} is over the limit MATRIX_MAX_DIM={max_dim}"
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        return f"the matrix contains NaN or Inf (first at row {bad[0]}, column {bad[1]}); send finite numbers"
    biggest = float(np.abs(arr).max())
    if biggest > MAX_ABS_ENTRY:
        return (f"matrix entries must be at most {MAX_ABS_ENTRY:g} in magnitude (got {biggest:.3g}): their squares "
                f"would overflow float64; rescale the matrix")
    return None


def lowrank_result(
    a: np.ndarray, req: LowRankRequest, progress: Callable[[float, str], None] | None = None
) -> dict[str, Any]:
    """The /api/matrix/lowrank answer for a checked float64 matrix (rank already within 1..min(shape))."""
    rows, cols = a.shape
    if progress:
        progress(0.05, "exact SVD" if req.method == "exact" else "randomized SVD")
    if req.method == "exact":
        result = svd_lowrank(a, req.rank)
        bound = None
    else:
        result = randomized_svd(a, req.rank, oversample=req.oversample, power_iters=req.power_iters, seed=req.seed)
        bound = result.extra["error_spectral_bound"]
    if progress:
        progress(0.95, "formatting")
    out: dict[str, Any] = {
        "shape": [rows, cols], "rank": req.rank, "method": req.method,
        "singular_values": result.singular_values[: None if req.method == "exact" else req.rank].tolist(),
        "error_fro": result.error_fro, "error_spectral": result.error_spectral, "error_spectral_bound": bound,
        "relative_error_fro": result.error_fro / result.norm_fro if result.norm_fro > 0 else 0.0,
        "norm_fro": result.norm_fro, "error_kind": "exact" if req.method == "exact" else "a-posteriori",
        "params": result.nparams, "dense_params": rows * cols,
    }
    if req.return_factors:
        out.update(u=nested(result.u), s=result.s.tolist(), vt=nested(result.vt))
    return out
