"""Request and response models of the matrix service (they are its OpenAPI document); no Flask imports."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.web.caps import capped_by, fmt, refuse

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MatrixRows = Annotated[list[Annotated[list[Number], Field(min_length=1)]], Field(min_length=1)]
MAX_ABS_ENTRY = 1e150  # norms and SVDs square the entries: beyond this float64 overflows to inf


def check_shape(rows: int, cols: int, settings: Mapping[str, Any], field: str) -> None:
    """MATRIX_MAX_DIM and MATRIX_MAX_ENTRIES for a rows x cols matrix, sent as JSON or uploaded."""
    side = max(rows, cols)
    refuse("MATRIX_MAX_DIM", side, settings, noun="rows or columns", field=field,
           said=f"a {fmt(rows)} x {fmt(cols)} matrix ({fmt(side)} {'rows' if rows >= cols else 'columns'})",
           fix=f"use at most {fmt(settings['MATRIX_MAX_DIM'])} rows and columns")
    refuse("MATRIX_MAX_ENTRIES", rows * cols, settings, noun="entries", field=field,
           said=f"a {fmt(rows)} x {fmt(cols)} matrix ({fmt(rows * cols)} entries)",
           fix=f"send at most {fmt(settings['MATRIX_MAX_ENTRIES'])} entries")


def check_factors(rank: int, rows: int, cols: int, settings: Mapping[str, Any]) -> None:
    """U, s and Vt of a rank-r result must fit MATRIX_MAX_RETURN_ENTRIES."""
    numbers = rank * (rows + cols + 1)
    most = max(1, settings["MATRIX_MAX_RETURN_ENTRIES"] // (rows + cols + 1))
    refuse("MATRIX_MAX_RETURN_ENTRIES", numbers, settings, noun="returned numbers", field="return_factors",
           said=f"the rank-{fmt(rank)} factors of a {fmt(rows)} x {fmt(cols)} matrix ({fmt(numbers)} numbers)",
           fix=f"leave return_factors off, or use rank at most {fmt(most)}")


class MatrixInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matrix: MatrixRows | None = Field(
        None, description="the matrix as rows of finite numbers; omit it when uploading a .npy file as `file`")

    @model_validator(mode="after")
    def _rectangular(self) -> MatrixInput:
        if self.matrix is not None:
            width = len(self.matrix[0])
            for i, row in enumerate(self.matrix):
                if len(row) != width:
                    raise ValueError(f"matrix rows must all have the same length: row 0 has {width}, row {i} has {len(row)}")
        return self

    def check_caps(self, settings: Mapping[str, Any]) -> None:
        if self.matrix is not None:
            check_shape(len(self.matrix), len(self.matrix[0]), settings, "matrix")


class LowRankRequest(MatrixInput):
    rank: int = Field(ge=1, description="target rank r, 1 <= r <= min(rows, columns)")
    method: Literal["exact", "randomized"] = Field("exact", description="full SVD, or randomized SVD (HMT 2011)")
    oversample: int = Field(
        10, ge=0, description="randomized: extra sketch columns p", json_schema_extra=capped_by("MATRIX_MAX_OVERSAMPLE", "extra sketch columns")
    )
    power_iters: int = Field(
        2, ge=0, description="randomized: power iterations q", json_schema_extra=capped_by("MATRIX_MAX_POWER_ITERS", "power iterations")
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="randomized: seed of the Gaussian test matrix")
    return_factors: bool = Field(False, description="also return U (m x r), s and Vt (r x n)")

    def check_caps(self, settings: Mapping[str, Any]) -> None:
        super().check_caps(settings)
        if self.matrix is not None and self.return_factors:
            check_factors(self.rank, len(self.matrix), len(self.matrix[0]), settings)


class LowRankResponse(BaseModel):
    shape: list[int]
    rank: int
    method: str
    singular_values: list[float] = Field(description="exact: all, descending; randomized: the sketch's top r")
    error_fro: float = Field(description="||A - A_r||_F: exact (SVD tail; or the randomized identity)")
    error_spectral: float = Field(description="||A - A_r||_2: exact sigma_{r+1}, or a power-iteration estimate")
    error_spectral_bound: float | None = Field(description="randomized: probabilistic upper bound (HMT 4.3)")
    relative_error_fro: float
    norm_fro: float
    error_kind: Literal["exact", "a-posteriori"]
    params: int = Field(description="numbers in the factors: r (m + n)")
    dense_params: int
    u: list[list[float]] | None = None
    s: list[float] | None = None
    vt: list[list[float]] | None = None


class MonarchRequest(MatrixInput):
    block_size: int | None = Field(
        None, ge=1, description="b for M^(b,n): R has n/b blocks b x b, L b blocks (n/b) x (n/b); default sqrt(n)")
    return_dense: bool = Field(False, description="also return the n x n approximation")


class MonarchResponse(BaseModel):
    n: int
    block_size: int
    error_fro: float = Field(description="||A - M*||_F of the optimal Monarch approximation M*")
    relative_error: float
    norm_fro: float
    params: int
    dense_params: int
    R: list[list[list[float]]] = Field(description="applied first: n/b blocks, R[block, row, col]")
    L: list[list[list[float]]] = Field(description="b blocks, L[block, row, col]; M = P L P R (spec Sec. 1)")
    layout: str
    dense: list[list[float]] | None = None


class CompressForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    builtin: Literal["hopper", "pattern"] | None = Field(
        None, description="built-in image (default hopper when no `image` is uploaded); send it or an `image`, not both")
    size: int = Field(
        256, ge=4, description="side n of the square grayscale image; a perfect square (64, 256, 1024)",
        json_schema_extra=capped_by("MATRIX_IMAGE_MAX_SIZE", "pixels a side"),
    )
    block_rank: int = Field(
        1, ge=1, description="Monarch block rank c, 1 <= c <= sqrt(size); SVD rank r = c sqrt(n) at equal parameters; "
        "c = sqrt(n)/2 stores as many numbers as the image, only c = sqrt(n) (twice the storage) is exact")

    @model_validator(mode="after")
    def _square_side(self) -> CompressForm:
        m = math.isqrt(self.size)
        if m * m != self.size:
            raise ValueError(f"size must be a perfect square (e.g. 64, 256, 1024), got {self.size}")
        if self.block_rank > m:
            raise ValueError(f"block_rank must be at most sqrt(size) = {m} for a {self.size} x {self.size} image")
        return self


class CurvePoint(BaseModel):
    params: int
    relative_error: float


class CompressResponse(BaseModel):
    n: int
    source: str
    block_rank: int
    svd_rank: int
    params: int
    dense_params: int
    svd_error: float = Field(description="relative Frobenius error of the rank-r SVD approximation")
    monarch_error: float = Field(description="relative Frobenius error of the block-rank-c Monarch approximation")
    svd_exact: bool = Field(description="the SVD approximation equals the image up to round-off (error <= 1e-12)")
    monarch_exact: bool = Field(description="the Monarch approximation equals the image up to round-off")
    original: str = Field(description="data: URL of the grayscale PNG")
    svd_image: str
    monarch_image: str
    curve_svd: list[CurvePoint]
    curve_monarch: list[CurvePoint]


class LowRankJobParams(LowRankRequest):
    """``matrix.lowrank`` job parameters: the JSON request, the matrix required (jobs take no uploads)."""

    matrix: MatrixRows = Field(description="the matrix as rows of finite numbers")
