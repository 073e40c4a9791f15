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


def _check_matrix(a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"expected a non-empty 2-D matrix, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError("matrix entries must be real numbers")
    if not np.all(np.isfinite(arr)):
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


def _orthonormalise(y: torch.Tensor) -> torch.Tensor:
    return torch.linalg.qr(y, mode="reduced").Q


def randomized_range(a: torch.Tensor, size: int, power_iters: int, gen: torch.Generator) -> torch.Tensor:
    """Q (m, size) with orthonormal columns approximating range(A): HMT Alg. 4.4 (QR after every product)."""
    omega = torch.randn(a.shape[1], size, generator=gen, dtype=a.dtype)
    q = _orthonormalise(a @ omega)
    for _ in range(power_iters):
        # without re-orthonormalisation the columns collapse onto the top singular vector in floating point
        q = _orthonormalise(a.T @ q)
        q = _orthonormalise(a @ q)
    return q


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

    * ``error_fro`` is exact (not a bound): with B = Q^T A and (QB)_r the truncation,
      ||A - (QB)_r||_F^2 = ||A - QQ^T A||_F^2 + ||B - B_r||_F^2 = ||A||_F^2 - sum_{i<=r} s_i(B)^2
      (the two residuals are orthogonal). It needs ||A||_F, one extra cheap pass; when the error is below 1e-3 ||A||_F
      the subtraction would cancel, so the residual is then measured directly (one more pass, O(mnr)).
    * ``error_spectral`` (when ``estimate_spectral``; 2 * spectral_iters + 1 thin passes) is a power-iteration estimate of ||A - (QB)_r||_2 (a lower estimate that converges fast),
      and ``extra["error_spectral_bound"]`` the HMT Sec. 4.3 probabilistic upper bound
      10 sqrt(2/pi) max_i ||(A - (QB)_r) w_i|| over ``spectral_probes`` Gaussian w_i (fails w.p. <= 10^-probes).
    """
    arr = _check_matrix(a)
    _check_rank(rank, arr.shape)
    if oversample < 0 or power_iters < 0:
        raise ValueError("oversample and power_iters must be >= 0")
    # MKL through torch on a zero-copy view of the array: no transposed copy of A is ever made (A.T is a view).
    at = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
    gen = torch.Generator().manual_seed(seed)
    size = min(rank + oversample, min(arr.shape))
    q = randomized_range(at, size, power_iters, gen)
    b = q.T @ at  # (size, n)
    ub, sb, vtb = torch.linalg.svd(b, full_matrices=False)
    u = (q @ ub[:, :rank]).numpy()
    s, vt = sb[:rank].numpy(), vtb[:rank].numpy()
    norm2 = float(torch.linalg.vector_norm(at) ** 2)
    fro2 = norm2 - float(np.sum(s.astype(np.float64) ** 2))
    if fro2 < 1e-6 * norm2:
        # the identity loses ~all digits to cancellation when the error is tiny: measure it directly, in row chunks
        fro2 = 0.0
        us = torch.from_numpy(u * s)
        vtt = torch.from_numpy(vt)
        for start in range(0, arr.shape[0], 1024):
            fro2 += float(torch.linalg.vector_norm(at[start : start + 1024] - us[start : start + 1024] @ vtt) ** 2)
    fro = math.sqrt(max(fro2, 0.0))

    def residual(w: torch.Tensor) -> torch.Tensor:  # (A - U S Vt) w without forming the residual
        return at @ w - torch.from_numpy(u) @ (torch.from_numpy(s)[:, None] * (torch.from_numpy(vt) @ w))

    def residual_t(w: torch.Tensor) -> torch.Tensor:
        return at.T @ w - torch.from_numpy(vt).T @ (torch.from_numpy(s)[:, None] * (torch.from_numpy(u).T @ w))

    extra = {"oversample": oversample, "power_iters": power_iters, "sketch_size": size, "seed": seed}
    est = None
    if estimate_spectral:
        probes = torch.randn(arr.shape[1], max(spectral_probes, 1), generator=gen, dtype=torch.float64)
        rp = residual(probes)
        extra["error_spectral_bound"] = 10.0 * math.sqrt(2.0 / math.pi) * float(torch.linalg.vector_norm(rp, dim=0).max())
        # block power iteration on the residual, started from the probes' images (already tilted to its top direction)
        v = _orthonormalise(residual_t(rp))
        est = 0.0
        for _ in range(max(spectral_iters, 1)):
            w = residual(v)
            est = float(torch.linalg.matrix_norm(w, ord=2))
            v = _orthonormalise(residual_t(w))
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
