"""Optimal and randomized low-rank approximation, and least squares with one factor given.

Eckart-Young-Mirsky: the truncated SVD M_r minimises ||M - X|| over rank(X) <= r, with
``||M - M_r||_F = sqrt(sum_{i>r} sigma_i^2)`` and ``||M - M_r||_2 = sigma_{r+1}`` (Su, kexue.fm/archives/10407).
Randomized SVD: Halko, Martinsson & Tropp (SIAM Review 2011), Alg. 4.4 (power iterations, re-orthonormalised).
Pseudo-inverse and "one factor given" least squares: Su, kexue.fm/archives/10366.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class LowRank:
    """A rank-r factorisation A ~ U diag(s) Vt with its errors."""

    u: np.ndarray  # (m, r)
    s: np.ndarray  # (r,)
    vt: np.ndarray  # (r, n)
    error_fro: float  # ||A - U S Vt||_F (exact for the SVD; exact identity for the randomized one, see below)
    error_spectral: float | None  # ||A - U S Vt||_2: exact for the SVD, an estimate for the randomized one (or None)
    norm_fro: float
    singular_values: np.ndarray  # all singular values (exact SVD) or the sketch's (randomized)
    extra: dict = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return int(self.s.shape[0])

    @property
    def nparams(self) -> int:
        """Parameters of the factors U S and Vt: r * (m + n)."""
        return self.rank * (self.u.shape[0] + self.vt.shape[1])

    def reconstruct(self) -> np.ndarray:
        return (self.u * self.s) @ self.vt


def _check_matrix(a: np.ndarray, *, finite: bool = True) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"expected a non-empty 2-D matrix, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError("matrix entries must be real numbers")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError("matrix contains NaN or Inf")
    return arr


def _check_rank(rank: int, shape: tuple[int, int]) -> None:
    if not 1 <= rank <= min(shape):
        raise ValueError(f"rank must be between 1 and min(shape) = {min(shape)}, got {rank}")


def tail_errors(singular_values: np.ndarray, rank: int) -> tuple[float, float]:
    """Eckart-Young errors of the best rank-r approximation: (Frobenius, spectral)."""
    tail = np.asarray(singular_values, dtype=np.float64)[rank:]
    return float(math.sqrt(np.sum(tail**2))), float(tail[0]) if tail.size else 0.0


def svd_lowrank(a: np.ndarray, rank: int) -> LowRank:
    """Optimal rank-r approximation by a full SVD (LAPACK gesdd), with exact Frobenius and spectral errors."""
    arr = _check_matrix(a).astype(np.float64, copy=False)
    _check_rank(rank, arr.shape)
    u, s, vt = np.linalg.svd(arr, full_matrices=False)
    fro, spec = tail_errors(s, rank)
    return LowRank(
        u=u[:, :rank], s=s[:rank], vt=vt[:rank], error_fro=fro, error_spectral=spec,
        norm_fro=float(math.sqrt(np.sum(s**2))), singular_values=s,
    )


def _householder_q(y: torch.Tensor) -> torch.Tensor:
    return torch.linalg.qr(y, mode="reduced").Q


def _orthonormalise(y: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of range(y) (m x l, m >= l): Householder QR, exact to round-off."""
    return _householder_q(y)


def _well_conditioned_basis(y: torch.Tensor) -> torch.Tensor:
    """A basis of range(y) for the intermediate power-iteration steps, by one pass of Cholesky QR.

    Those steps only have to keep the columns from collapsing onto the top singular vector; the next product is
    re-orthonormalised anyway, and the final basis is Householder's. One Gram matrix, an l x l Cholesky and a
    triangular solve: 3 BLAS-3 calls instead of LAPACK's Householder panels. An ill-conditioned y (an exactly
    low-rank A) makes the Cholesky fail, and Householder QR takes over.
    """
    if y.shape[0] < y.shape[1]:
        return _householder_q(y)
    r, info = torch.linalg.cholesky_ex(y.T @ y, upper=True)
    diag = r.diagonal().abs()
    # Cholesky QR loses ~cond(y)^2 eps of orthogonality; the diagonal of R bounds cond(y) from below, so refuse
    # anything within a factor 10 of eps^-1/2 (float32: ~290, float64: ~7e6)
    limit = 0.1 / math.sqrt(float(torch.finfo(y.dtype).eps))
    if int(info) != 0 or not bool(torch.isfinite(r).all()) or float(diag.max()) > limit * float(diag.min()):
        return _householder_q(y)
    return torch.linalg.solve_triangular(r, y, upper=True, left=False)


def _times(a: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """A @ Q with Q made row-major first: MKL runs this orientation ~1.8x faster than A @ (column-major Q), the
    layout LAPACK returns (n = 2000, 60 columns, fp64: 9.6 ms against 17 ms)."""
    return a @ q.contiguous()


def _t_times(a: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """A^T Q computed as (Q^T A)^T: A stays the untransposed right operand, ~2.3x faster than passing A^T to BLAS
    (n = 2000, fp64: 7.0 ms against 15.8 ms, and 25 ms with a column-major Q)."""
    return (q.T.contiguous() @ a).T


def _gaussian(rows: int, cols: int, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal test matrix in the working dtype, drawn in float32 (torch's float32 sampler is ~7x faster
    than its float64 one here; a test matrix needs Gaussian directions, not 53-bit normals)."""
    return torch.randn(rows, cols, generator=gen, dtype=torch.float32).to(dtype)


def _squared_norm(a: torch.Tensor) -> float:
    """||A||_F^2 accumulated in float64: per-row norms in A's dtype (float32 rows of a few thousand entries lose
    ~1e-7 relative), their squares summed in float64. A float64 reduction over a float32 A converts every entry
    on the way and was measured 8x slower."""
    if a.dtype == torch.float64:
        return float(torch.linalg.vector_norm(a) ** 2)
    return float((torch.linalg.vector_norm(a, dim=1).double() ** 2).sum())


def randomized_range(a: torch.Tensor, size: int, power_iters: int, gen: torch.Generator) -> torch.Tensor:
    """Q (m, size) with orthonormal columns approximating range(A): HMT Alg. 4.4 (a well-conditioned basis after every
    product; without it the columns collapse onto the top singular vector in floating point).

    Every product keeps A untransposed (``_times`` / ``_t_times``): the 2q + 1 passes over A are the whole cost, and
    the orientation alone halves them.
    """
    y = a @ _gaussian(a.shape[1], size, gen, a.dtype)
    for _ in range(power_iters):
        q = _well_conditioned_basis(y)
        q = _well_conditioned_basis(_t_times(a, q))
        y = _times(a, q)
    return _orthonormalise(y)


def _small_svd(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD of a wide l x n matrix as QR of B^T then the SVD of the l x l factor: B = R^T Q^T = U S (Q V)^T.

    Same result as torch.linalg.svd(B, full_matrices=False), ~1.7x faster for 60 x 2000 here.
    """
    if b.shape[0] > b.shape[1]:
        return torch.linalg.svd(b, full_matrices=False)
    qb, rb = torch.linalg.qr(b.T, mode="reduced")
    u, s, vt = torch.linalg.svd(rb.T)
    return u, s, vt @ qb.T


def randomized_svd(
    a: np.ndarray,
    rank: int,
    *,
    oversample: int = 10,
    power_iters: int = 2,
    seed: int = 0,
    estimate_spectral: bool = True,
    spectral_probes: int = 10,
    spectral_iters: int = 4,
) -> LowRank:
    """Randomized rank-r SVD (HMT 2011) with a-posteriori error estimates; cost 2q + 2 passes over A, O(mn(r+p)).

    float32 input is computed in float32 (as torch and scikit-learn do), anything else in float64; the errors are
    always accumulated in float64.

    * ``error_fro`` is exact (not a bound): with B = Q^T A and (QB)_r the truncation,
      ||A - (QB)_r||_F^2 = ||A - QQ^T A||_F^2 + ||B - B_r||_F^2 = ||A||_F^2 - sum_{i<=r} s_i(B)^2
      (the two residuals are orthogonal). It needs ||A||_F, one extra cheap pass; when the error is below 1e-3 ||A||_F
      (float32: 0.1 ||A||_F) the subtraction would cancel, so the residual is measured directly (one more pass).
    * ``error_spectral`` (when ``estimate_spectral``; 2 * spectral_iters + 1 thin passes) is a power-iteration
      estimate of ||A - (QB)_r||_2 (a lower estimate that converges fast), and ``extra["error_spectral_bound"]`` the
      HMT Sec. 4.3 probabilistic upper bound 10 sqrt(2/pi) max_i ||(A - (QB)_r) w_i|| over ``spectral_probes``
      Gaussian w_i (fails w.p. <= 10^-probes).
    """
    arr = _check_matrix(a, finite=False)  # finiteness follows from ||A||_F below, without a pass of its own
    _check_rank(rank, arr.shape)
    if oversample < 0 or power_iters < 0:
        raise ValueError("oversample and power_iters must be >= 0")
    work = np.float32 if arr.dtype == np.float32 else np.float64
    # MKL through torch on a zero-copy view of the array: no transposed copy of A is ever made.
    at = torch.from_numpy(np.ascontiguousarray(arr, dtype=work))
    norm2 = _squared_norm(at)  # NaN or Inf anywhere in A make it non-finite
    if not math.isfinite(norm2):
        _check_matrix(arr)  # names NaN / Inf
        raise ValueError("matrix entries are too large: the sum of their squares overflows float64; rescale it")
    gen = torch.Generator().manual_seed(seed)
    size = min(rank + oversample, min(arr.shape))
    q = randomized_range(at, size, power_iters, gen)
    b = q.T.contiguous() @ at  # (size, n); A as the untransposed right operand, see _t_times
    ub, sb, vtb = _small_svd(b)
    u = (q @ ub[:, :rank]).numpy()
    s, vt = sb[:rank].numpy(), vtb[:rank].contiguous().numpy()
    fro2 = norm2 - float(np.sum(s.astype(np.float64) ** 2))
    # The subtraction keeps ~ -log10(eps * norm2 / fro2) digits of fro2: in float64 it is trusted down to an error of
    # 1e-3 ||A||_F (~10 digits), in float32 down to 0.1 ||A||_F (~5 digits); below that the residual is measured.
    if fro2 < (1e-6 if work == np.float64 else 1e-2) * norm2:
        fro2 = 0.0
        us = torch.from_numpy(u * s)
        vtt = torch.from_numpy(vt)
        for start in range(0, arr.shape[0], 1024):
            block = at[start : start + 1024] - us[start : start + 1024] @ vtt
            fro2 += _squared_norm(block)
    fro = math.sqrt(max(fro2, 0.0))

    def residual(w: torch.Tensor) -> torch.Tensor:  # (A - U S Vt) w without forming the residual
        return _times(at, w) - torch.from_numpy(u) @ (torch.from_numpy(s)[:, None] * (torch.from_numpy(vt) @ w))

    def residual_t(w: torch.Tensor) -> torch.Tensor:
        return _t_times(at, w) - torch.from_numpy(vt).T @ (torch.from_numpy(s)[:, None] * (torch.from_numpy(u).T @ w))

    extra = {"oversample": oversample, "power_iters": power_iters, "sketch_size": size, "seed": seed}
    est = None
    if estimate_spectral:
        probes = _gaussian(arr.shape[1], max(spectral_probes, 1), gen, at.dtype)
        rp = residual(probes)
        extra["error_spectral_bound"] = 10.0 * math.sqrt(2.0 / math.pi) * float(torch.linalg.vector_norm(rp, dim=0).max())
        # block power iteration on the residual, started from the probes' images (already tilted to its top direction)
        v = _householder_q(residual_t(rp))
        est = 0.0
        for _ in range(max(spectral_iters, 1)):
            w = residual(v)
            est = float(torch.linalg.matrix_norm(w, ord=2))
            v = _householder_q(residual_t(w))
    return LowRank(
        u=u, s=s, vt=vt, error_fro=fro, error_spectral=est, norm_fro=math.sqrt(norm2), singular_values=sb.numpy(),
        extra=extra,
    )


# ---------------------------------------------------------------------------------------------------------------
# Least squares with one factor given, and the pseudo-inverse
# ---------------------------------------------------------------------------------------------------------------


def pinv(a: np.ndarray, rcond: float | None = None) -> np.ndarray:
    """Moore-Penrose pseudo-inverse A^+ = V Sigma^+ U^T (singular values below rcond * sigma_1 treated as 0).

    This is the ridge limit lim_{eps->0+} (A^T A + eps I)^{-1} A^T, computed without squaring the condition number.
    """
    arr = _check_matrix(a).astype(np.float64, copy=False)
    u, s, vt = np.linalg.svd(arr, full_matrices=False)
    cutoff = (max(arr.shape) * np.finfo(np.float64).eps if rcond is None else rcond) * (s[0] if s.size else 0.0)
    inv = np.where(s > cutoff, 1.0 / np.where(s > cutoff, s, 1.0), 0.0)
    return (vt.T * inv) @ u.T


def solve_right_factor(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """B* = argmin_B ||A B - M||_F = A^+ M (minimum-norm solution when A is rank deficient)."""
    aa, mm = _check_matrix(a), _check_matrix(m)
    if aa.shape[0] != mm.shape[0]:
        raise ValueError(f"A has {aa.shape[0]} rows but M has {mm.shape[0]}")
    return np.linalg.lstsq(aa.astype(np.float64), mm.astype(np.float64), rcond=None)[0]


def solve_left_factor(b: np.ndarray, m: np.ndarray) -> np.ndarray:
    """A* = argmin_A ||A B - M||_F = M B^+ (by transposing: B^T A^T ~ M^T)."""
    bb, mm = _check_matrix(b), _check_matrix(m)
    if bb.shape[1] != mm.shape[1]:
        raise ValueError(f"B has {bb.shape[1]} columns but M has {mm.shape[1]}")
    return np.linalg.lstsq(bb.T.astype(np.float64), mm.T.astype(np.float64), rcond=None)[0].T


def als_lowrank(m: np.ndarray, rank: int, *, iters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Alternating least squares for min ||A B - M||_F with A (m, r), B (r, n), each step a one-factor-given solve.

    Every step is an exact minimisation over one factor, so the error never increases; for generic M it converges
    to the Eckart-Young value. Returns (A, B, Frobenius error after each sweep).
    """
    mm = _check_matrix(m).astype(np.float64, copy=False)
    _check_rank(rank, mm.shape)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((mm.shape[0], rank))
    history = []
    for _ in range(iters):
        b = solve_right_factor(a, mm)
        a = solve_left_factor(b, mm)
        history.append(float(np.linalg.norm(a @ b - mm)))
    return a, b, history
