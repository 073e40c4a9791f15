"""Distances between a generation's model and the real distribution.

- Frechet distance (= W2^2 between Gaussians, what FID computes), in the stable symmetric form
  tr (A S1 A)^(1/2) with A = S2^(1/2), whose eigenvalues equal those of S1 S2 but come from ``eigvalsh``.
- Improved precision / recall of Kynkaenniemi et al. (2019) with k nearest neighbours (k = 5).
- Modes covered (mixture targets), empirical W2 by optimal assignment.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from backend.services.mad.models import GaussianDiag, GaussianFull
from backend.services.mad.targets import psd_sqrt


def _sqrt_trace(eigs: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(eigs, 0.0, None)).sum(axis=-1)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """FD(N(mu1, s1), N(mu2, s2)) = |mu1-mu2|^2 + tr(s1 + s2 - 2 (s2^1/2 s1 s2^1/2)^1/2).

    Broadcasts over leading axes (mu: (..., d), s: (..., d, d)).
    """
    mu1, mu2, s1, s2 = (np.asarray(a, dtype=float) for a in (mu1, mu2, s1, s2))
    root = psd_sqrt(s2)
    cross = _sqrt_trace(np.linalg.eigvalsh(root @ s1 @ root))
    delta = mu1 - mu2
    value = (delta**2).sum(axis=-1) + np.trace(s1, axis1=-2, axis2=-1) + np.trace(s2, axis1=-2, axis2=-1) - 2 * cross
    return np.maximum(value, 0.0)


def frechet_to_target(model, target, lam: float = 1.0) -> np.ndarray:
    """FD between each replicate's model (moments, sampler bias ``lam``) and the target's moments: (R,)."""
    mu = model.mean()
    delta = ((mu - target.mean) ** 2).sum(axis=1)
    cov0 = target.cov
    tr0 = np.trace(cov0)
    diag0 = np.diag(cov0)
    diagonal_target = np.allclose(cov0, np.diag(diag0))
    if isinstance(model, GaussianDiag) and diagonal_target:
        var = lam * model.var
        return np.maximum(delta + ((np.sqrt(np.clip(var, 0, None)) - np.sqrt(diag0)) ** 2).sum(axis=1), 0.0)
    if isinstance(model, GaussianFull) and diagonal_target and np.allclose(diag0, diag0[0]):
        # Isotropic target c*I: eig(c*Sigma) = c*eig(Sigma); reuse the sampler's eigen-decomposition.
        eigs = lam * model.eig[0]
        cross = np.sqrt(diag0[0]) * _sqrt_trace(eigs)
        return np.maximum(delta + eigs.sum(axis=1) + tr0 - 2 * cross, 0.0)
    s1 = model.cov(lam)
    root = target.root
    cross = _sqrt_trace(np.linalg.eigvalsh(root @ s1 @ root))
    return np.maximum(delta + np.trace(s1, axis1=1, axis2=2) + tr0 - 2 * cross, 0.0)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T
    return np.maximum(d2, 0.0)


def knn_radii(x: np.ndarray, k: int = 5) -> np.ndarray:
    """Squared distance of each point to its k-th nearest neighbour in its own set (self excluded)."""
    if x.shape[0] <= k:
        raise ValueError(f"need more than k={k} points, got {x.shape[0]}")
    d2 = _sq_dists(x, x)
    # Position 0 after partition is the point itself (distance 0), so the k-th neighbour sits at index k.
    return np.partition(d2, k, axis=1)[:, k]


def precision_recall(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    *,
    real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
    """Improved precision (share of fake inside the real k-NN manifold) and recall (vice versa)."""
    r_real = knn_radii(real, k) if real_radii is None else real_radii
    r_fake = knn_radii(fake, k)
    d2 = _sq_dists(fake, real)  # (n_fake, n_real)
    precision = float(np.mean(np.any(d2 <= r_real[None, :], axis=1)))
    recall = float(np.mean(np.any(d2 <= r_fake[:, None], axis=0)))
    return precision, recall


def modes_covered(
    samples: np.ndarray,
    modes: np.ndarray,
    std: float,
    weights: np.ndarray | None = None,
    *,
    radius_std: float = 3.0,
    min_share: float = 0.2,
) -> tuple[int, float]:
    """(modes covered, share of high-quality samples) for one sample set (n, d).

    A sample is high quality when it lies within ``radius_std`` standard deviations of its nearest mode;
    a mode is covered when it receives at least ``min_share`` of its expected count n*w_k of such samples
    (at least one), which ignores a few stragglers wandering between modes.
    """
    n = samples.shape[0]
    k = modes.shape[0]
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights)
    d2 = _sq_dists(samples, modes)
    nearest = d2.argmin(axis=1)
    good = d2[np.arange(n), nearest] <= (radius_std * std) ** 2
    counts = np.bincount(nearest[good], minlength=k)
    need = np.maximum(1.0, min_share * n * w)
    return int(np.sum(counts >= need)), float(good.mean())


def empirical_w2(x: np.ndarray, y: np.ndarray) -> float:
    """W2 between two equal-size point clouds by optimal assignment on squared distances (n <= ~1000)."""
    if x.shape != y.shape:
        raise ValueError("empirical W2 needs two point sets of the same shape")
    cost = _sq_dists(x, y)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def _cross_gaussian_overlap(wa, ma, ca, wb, mb, cb) -> np.ndarray:
    """sum_ij a_i b_j N(m_i; m'_j, C_i + C'_j), batched over leading replicate axis: (R,)."""
    cov = ca[:, :, None] + cb[:, None, :]  # (R, Ka, Kb, d, d)
    diff = ma[:, :, None, :] - mb[:, None, :, :]  # (R, Ka, Kb, d)
    d = diff.shape[-1]
    sign, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("rabi,rabi->rab", diff, np.linalg.solve(cov, diff[..., None])[..., 0])
    dens = np.exp(-0.5 * (maha + logdet + d * np.log(2 * np.pi)))
    return np.einsum("ra,rb,rab->r", wa, wb, dens)


def gmm_l2(wa, ma, ca, wb, mb, cb) -> np.ndarray:
    """Closed-form squared L2 distance between Gaussian mixtures (Shumailov et al.'s GMM metric).

    |p - q|^2 = sum_ij a_i a_j N(m_i; m_j, C_i + C_j) + (same for q) - 2 sum_ij a_i b_j N(m_i; m'_j, C_i + C'_j).
    Arguments are batched over replicates: weights (R, K), means (R, K, d), covariances (R, K, d, d).
    """
    pp = _cross_gaussian_overlap(wa, ma, ca, wa, ma, ca)
    qq = _cross_gaussian_overlap(wb, mb, cb, wb, mb, cb)
    pq = _cross_gaussian_overlap(wa, ma, ca, wb, mb, cb)
    return np.maximum(pp + qq - 2 * pq, 0.0)
