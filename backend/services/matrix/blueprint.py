"""HTTP for structured matrices: /api/matrix/lowrank, /api/matrix/monarch, /api/matrix/compress and the /matrix page.

Matrices come as JSON (``{"matrix": [[...], ...]}``) or as an uploaded ``.npy`` file (multipart field ``file``,
other fields as form fields). Every cap is a ``MATRIX_*`` setting in ``backend/config.py``.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from flask import current_app, render_template
from werkzeug.datastructures import FileStorage

from backend.services.matrix import tasks  # noqa: F401  (registers the matrix.* job kinds)
from backend.services.matrix.image import BUILTIN_IMAGES, ImageError, builtin_image, compress, load_image, png_data_url
from backend.services.matrix.monarch import block_size_layout, monarch_to_dense, project
from backend.services.matrix.schemas import (
    CompressForm,
    CompressResponse,
    LowRankRequest,
    LowRankResponse,
    MatrixInput,
    MonarchRequest,
    MonarchResponse,
    check_factors,
    check_shape,
)
from backend.services.matrix.service import lowrank_result, matrix_problem, nested
from backend.web import budget, limits
from backend.web.api import ApiBlueprint
from backend.web.caps import fmt
from backend.web.errors import ApiError
from backend.web.pages import register_page

bp = ApiBlueprint("matrix", __name__, template_folder="templates")
register_page("Matrix compression", "matrix.page",
              "compress an image with rank-r SVD and with Monarch matrices at equal parameter counts")

EXACT_RELATIVE_ERROR = 1e-12  # a reconstruction this close is the image up to float64 round-off

MATRIX_ERRORS = {
    400: "unreadable .npy upload",
    413: "upload or matrix over a MATRIX_* size limit",
    422: "not a finite real 2-D matrix, ragged rows, wrong shape, or a parameter out of range",
}


# ---------------------------------------------------------------- input helpers
def _read_upload(upload: FileStorage, limit_name: str, what: str) -> bytes:
    limit = int(current_app.config[limit_name])
    data = upload.read(limit + 1)
    limits.check(limit_name, len(data), noun="bytes", field=what,
                 said=f"the uploaded file ({'over ' if len(data) > limit else ''}{fmt(len(data))} bytes)",
                 fix=f"upload a file of at most {fmt(limit)} bytes")
    return data


def _load_npy(upload: FileStorage) -> np.ndarray:
    data = _read_upload(upload, "MATRIX_UPLOAD_MAX_BYTES", "file")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise ApiError(400, "the uploaded file is not a readable .npy array; save it with numpy.save "
                            "(allow_pickle=False)", field="file") from None
    if not isinstance(arr, np.ndarray):
        raise ApiError(400, "file holds several arrays (.npz); upload a single .npy array", field="file")
    if arr.dtype.kind not in "iuf":
        raise ApiError(422, f"the .npy array must hold real numbers (int or float), not {arr.dtype}", field="file")
    return arr


def _matrix(body: MatrixInput, files: dict[str, FileStorage]) -> np.ndarray:
    """The request's matrix as float64, checked against the MATRIX_* caps."""
    upload = files.get("file")
    if upload is not None and body.matrix is not None:
        raise ApiError(422, "send the matrix either as JSON `matrix` or as a .npy `file`, not both", field="matrix")
    if upload is not None:
        arr = _load_npy(upload)
        field = "file"
    elif body.matrix is not None:  # its shape was checked with the request (MatrixInput.check_caps)
        arr = np.asarray(body.matrix, dtype=np.float64)
        field = "matrix"
    else:
        raise ApiError(422, "send a matrix: JSON field `matrix` (rows of numbers) or a .npy upload in field `file`",
                       field="matrix")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ApiError(422, f"the matrix must be 2-D and non-empty, got shape {list(arr.shape)}", field=field)
    check_shape(arr.shape[0], arr.shape[1], current_app.config, field)
    arr = arr.astype(np.float64, copy=False)
    problem = matrix_problem(arr, max_entries=arr.size, max_dim=max(arr.shape))  # NaN/Inf, overflowing entries
    if problem:
        raise ApiError(422, problem, field=field)
    return arr


# ---------------------------------------------------------------- compute estimates (backend.web.budget)
# Seconds per unit of work, measured by scripts/calibrate_costs.py on the 2-core development machine while loaded.
SVD_S_PER_FLOP = 4e-9  # exact SVD: m n min(m, n) (measured 2.7e-9 to 3.5e-9 with one BLAS thread)
SKETCH_S_PER_FLOP = 1.5e-8  # randomized: m n (r + p) (2 q + 2)
MONARCH_S_PER_ENTRY = 4e-6  # the projection: one rank-1 SVD per block
JSON_S_PER_ENTRY = 3e-6  # reading, checking and converting a JSON matrix (an upload is read before its estimate)
IMAGE_S_PER_CUBE = 3e-8  # compress: two SVDs of the n x n image and its blocks


def lowrank_seconds(body: LowRankRequest, shape: tuple[int, int] | None = None) -> float:
    if shape is None:
        if body.matrix is None:
            return 0.0  # an upload: estimated once it is read (lowrank admits it then)
        shape = (len(body.matrix), len(body.matrix[0]))
    m, n = shape
    parse = JSON_S_PER_ENTRY * m * n if body.matrix is not None else 0.0
    if body.method == "exact":
        return 0.05 + parse + SVD_S_PER_FLOP * m * n * min(m, n)
    return 0.05 + parse + SKETCH_S_PER_FLOP * m * n * (body.rank + body.oversample) * (2 * body.power_iters + 2)


def monarch_seconds(body: MonarchRequest) -> float:
    return 0.0 if body.matrix is None else 0.05 + (MONARCH_S_PER_ENTRY + JSON_S_PER_ENTRY) * len(body.matrix) ** 2


def compress_seconds(body: CompressForm) -> float:
    return 0.1 + IMAGE_S_PER_CUBE * body.size ** 3


# ---------------------------------------------------------------- endpoints
@bp.api("POST", "/api/matrix/lowrank", body=LowRankRequest, response=LowRankResponse, files=("file",),
        cost=lowrank_seconds, fix="use method randomized, or a smaller matrix (JSON matrices can also run as a matrix.lowrank job)",
        summary="Optimal (SVD) or randomized rank-r approximation with its errors", errors=MATRIX_ERRORS)
def lowrank(body: LowRankRequest, files: dict[str, FileStorage]) -> dict:
    """Best rank-r approximation by Eckart-Young: Frobenius error sqrt(sum_{i>r} sigma_i^2), spectral sigma_{r+1}.

    `method="randomized"` sketches with r + oversample Gaussian columns and `power_iters` power iterations; its
    Frobenius error is exact (a-posteriori identity) and the spectral one an estimate with an upper bound.
    For large JSON matrices the same computation runs as the job kind `matrix.lowrank` (POST /api/jobs).
    """
    a = _matrix(body, files)
    if body.rank > min(a.shape):
        raise ApiError(422, f"rank must be between 1 and min(rows, columns) = {min(a.shape)}, got {body.rank}",
                       field="rank")
    if body.return_factors:
        check_factors(body.rank, a.shape[0], a.shape[1], current_app.config)
    budget.admit(lowrank_seconds(body, a.shape), fix="use method randomized, or a smaller matrix (JSON matrices can also run as a matrix.lowrank job)")
    return lowrank_result(a, body, lambda *_: budget.check())


@bp.api("POST", "/api/matrix/monarch", body=MonarchRequest, response=MonarchResponse, files=("file",),
        cost=monarch_seconds, fix="send a smaller matrix",
        summary="Optimal Monarch approximation (Frobenius) of an n x n matrix, with its exact error",
        errors=MATRIX_ERRORS)
def monarch(body: MonarchRequest, files: dict[str, FileStorage]) -> dict:
    """M* = argmin ||A - M||_F over Monarch M = P L P R: one rank-1 SVD per block (Dao et al. 2022, Thm. 1).

    n must be a perfect square, unless `block_size` b (a divisor of n) picks the family M^(b,n).
    """
    a = _matrix(body, files)
    rows, cols = a.shape
    field = "file" if "file" in files else "matrix"
    if rows != cols:
        raise ApiError(422, f"the matrix must be square (n x n), got {rows} x {cols}", field=field)
    n = rows
    if body.block_size is None:
        b = math.isqrt(n)
        if b * b != n:
            raise ApiError(422, f"n = {n} is not a perfect square; send an n x n matrix with n = m^2 (e.g. 16, 64, "
                                f"256) or choose a block_size that divides n", field=field)
    else:
        b = body.block_size
        if n % b:
            raise ApiError(422, f"block_size {b} must divide n = {n}", field="block_size")
    w1_shape, w2_shape = block_size_layout(n, b)
    proj = project(a, w1_shape, w2_shape)
    params = int(np.prod(w1_shape) + np.prod(w2_shape))
    numbers = params + (n * n if body.return_dense else 0)
    limits.check("MATRIX_MAX_RETURN_ENTRIES", numbers, noun="returned numbers", field="return_dense",
                 said=f"the Monarch factors{' and the dense approximation' if body.return_dense else ''} of a "
                      f"{fmt(n)} x {fmt(n)} matrix ({fmt(numbers)} numbers)",
                 fix="leave return_dense off" if body.return_dense else "send a smaller matrix")
    budget.admit(0.05 + MONARCH_S_PER_ENTRY * n * n, fix="send a smaller matrix")
    out: dict[str, Any] = {
        "n": n, "block_size": b, "error_fro": proj.error_fro, "relative_error": proj.relative_error,
        "norm_fro": proj.norm_fro, "params": params, "dense_params": n * n,
        "R": nested(proj.w1), "L": nested(proj.w2),
        "layout": (f"M = P_({b},{n // b}) L P_({n // b},{b}) R; entry M[s*{b} + j, k*{b} + i] = L[j, s, k] * R[k, j, i] "
                   f"(R: {n // b} blocks {b} x {b}, L: {b} blocks {n // b} x {n // b})"),
    }
    if body.return_dense:
        out["dense"] = nested(monarch_to_dense(proj.w1, proj.w2))
    return out


@bp.api("POST", "/api/matrix/compress", body=CompressForm, response=CompressResponse, files=("image",),
        cost=compress_seconds, fix="use a smaller size",
        summary="Compress an image with rank-r SVD and with Monarch at equal parameter counts",
        errors={400: "unreadable image", 413: "image over MATRIX_IMAGE_UPLOAD_MAX_BYTES",
                422: "size not a perfect square, over MATRIX_IMAGE_MAX_SIZE, or block_rank not in 1..sqrt(size)"})
def compress_image(body: CompressForm, files: dict[str, FileStorage]) -> dict:
    """The image (uploaded as `image`, or the built-in `builtin`, default hopper) as an n x n grayscale matrix, n = m^2.

    Block-rank-c Monarch keeps 2 c n^1.5 numbers, exactly as many as the rank-(c m) SVD; both error-versus-parameter
    curves come from one SVD each.
    """
    upload = files.get("image")
    if upload is not None and upload.filename:
        if body.builtin is not None:
            raise ApiError(422, f"choose one image: the built-in {body.builtin!r} or the upload {upload.filename!r}, "
                                "not both", field="image")
        data = _read_upload(upload, "MATRIX_IMAGE_UPLOAD_MAX_BYTES", "image")
        try:
            img = load_image(data, body.size, max_pixels=int(current_app.config["MATRIX_IMAGE_MAX_PIXELS"]))
        except ImageError as exc:
            raise ApiError(400, str(exc), field="image") from None
        source = f"upload: {upload.filename}"
    else:
        name = body.builtin or BUILTIN_IMAGES[0]
        img = builtin_image(name, body.size)
        source = f"built-in: {name}"
    res = compress(img, body.block_rank)
    return {
        "n": res.n, "source": source, "block_rank": res.block_rank, "svd_rank": res.svd_rank, "params": res.params,
        "dense_params": res.dense_params, "svd_error": res.svd_error, "monarch_error": res.monarch_error,
        "svd_exact": res.svd_error <= EXACT_RELATIVE_ERROR, "monarch_exact": res.monarch_error <= EXACT_RELATIVE_ERROR,
        "original": png_data_url(img), "svd_image": png_data_url(res.svd_image),
        "monarch_image": png_data_url(res.monarch_image),
        "curve_svd": [{"params": p, "relative_error": e} for p, e in res.curve_svd],
        "curve_monarch": [{"params": p, "relative_error": e} for p, e in res.curve_monarch],
    }


@bp.route("/matrix")
def page() -> str:
    return render_template("matrix/index.html", builtins=BUILTIN_IMAGES,
                           max_size=int(current_app.config["MATRIX_IMAGE_MAX_SIZE"]))
