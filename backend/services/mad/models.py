"""Generative models of the loops, each vectorised over R replicate chains.

Data batches are arrays ``(R, n, d)``. A fitted model exposes its moments (``mean()``, ``cov(lam)``), can
sample with sampling bias ``lam`` (Gaussian: N(mu, lam*Sigma); GMM: lam*C_k per component; KDE: kernel
noise lam*h^2), and reports its log-determinant. ``lam`` only acts when sampling: the fitted model itself
stays the unbiased fit (paper Sec. 2.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Relative eigenvalue floor below which a covariance counts as singular (log det = -inf).
_SINGULAR_RTOL = 1e-12


def _logdet_from_eigs(w: np.ndarray) -> np.ndarray:
    top = np.max(w, axis=-1, keepdims=True)
    singular = np.any(w <= _SINGULAR_RTOL * np.maximum(top, 0.0), axis=-1) | (top[..., 0] <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sum(np.log(np.clip(w, 1e-300, None)), axis=-1)
    return np.where(singular, -np.inf, out)


@dataclass
class GaussianFull:
    """N(mu_r, Sigma_r) for each replicate r; mu (R, d), sigma (R, d, d)."""

    mu: np.ndarray
    sigma: np.ndarray
    _eig: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def eig(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigen-decomposition of Sigma (computed once; shared by sampling, log det and the FD)."""
        if self._eig is None:
            self._eig = np.linalg.eigh(self.sigma)
        return self._eig

    def mean(self) -> np.ndarray:
        return self.mu

    def cov(self, lam: float = 1.0) -> np.ndarray:
        return lam * self.sigma

    def trace(self) -> np.ndarray:
        return np.trace(self.sigma, axis1=1, axis2=2)

    def logdet(self) -> np.ndarray:
        return _logdet_from_eigs(self.eig[0])

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log N(x; mu_r, Sigma_r) for points x (R, n, d): (R, n); -inf for a singular Sigma."""
        w, v = self.eig
        singular = _logdet_from_eigs(w) == -np.inf
        safe = np.where(singular[:, None], 1.0, np.clip(w, 1e-300, None))
        z = ((x - self.mu[:, None, :]) @ v) / np.sqrt(safe)[:, None, :]
        out = -0.5 * ((z**2).sum(axis=2) + np.log(safe).sum(axis=1)[:, None] + x.shape[2] * np.log(2 * np.pi))
        return np.where(singular[:, None], -np.inf, out)

    def sample(self, rng: np.random.Generator, n: int, lam: float = 1.0) -> np.ndarray:
        # Eigen square root, not Cholesky: Sigma is singular when n <= d and numerically 0 after collapse.
        w, v = self.eig
        root = v * np.sqrt(lam * np.clip(w, 0.0, None))[:, None, :]
        z = rng.standard_normal((self.mu.shape[0], n, self.mu.shape[1]))
        return self.mu[:, None, :] + z @ np.swapaxes(root, 1, 2)


@dataclass
class GaussianDiag:
    """N(mu_r, diag(var_r)); mu and var (R, d)."""

    mu: np.ndarray
    var: np.ndarray

    def mean(self) -> np.ndarray:
        return self.mu

    def cov(self, lam: float = 1.0) -> np.ndarray:
        eye = np.eye(self.var.shape[1])
        return lam * self.var[:, :, None] * eye

    def trace(self) -> np.ndarray:
        return self.var.sum(axis=1)

    def logdet(self) -> np.ndarray:
        return _logdet_from_eigs(self.var)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log density of points x (R, n, d): (R, n); -inf for a zero variance."""
        singular = _logdet_from_eigs(self.var) == -np.inf
        var = np.where(singular[:, None], 1.0, self.var)[:, None, :]
        out = -0.5 * (((x - self.mu[:, None, :]) ** 2 / var).sum(axis=2) + np.log(var).sum(axis=2)
                      + x.shape[2] * np.log(2 * np.pi))
        return np.where(singular[:, None], -np.inf, out)

    def sample(self, rng: np.random.Generator, n: int, lam: float = 1.0) -> np.ndarray:
        z = rng.standard_normal((self.mu.shape[0], n, self.mu.shape[1]))
        return self.mu[:, None, :] + z * np.sqrt(lam * np.clip(self.var, 0.0, None))[:, None, :]


def fit_gaussian(x: np.ndarray, *, ddof: int = 1, diag: bool = False) -> GaussianFull | GaussianDiag:
    """Moment fit on x (R, n, d): sample mean and covariance with ``ddof`` (1 = unbiased, 0 = MLE)."""
    n = x.shape[1]
    mu = x.mean(axis=1)
    xc = x - mu[:, None, :]
    if diag:
        return GaussianDiag(mu, np.einsum("rnd,rnd->rd", xc, xc) / (n - ddof))
    return GaussianFull(mu, (np.swapaxes(xc, 1, 2) @ xc) / (n - ddof))


@dataclass
class GMM:
    """Gaussian mixtures: weights (R, K), means (R, K, d), covs (R, K, d, d)."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    iterations: int = 0

    def mean(self) -> np.ndarray:
        return np.einsum("rk,rkd->rd", self.weights, self.means)

    def cov(self, lam: float = 1.0) -> np.ndarray:
        mu = self.mean()
        second = np.einsum("rk,rkij->rij", self.weights, lam * self.covs) + np.einsum(
            "rk,rki,rkj->rij", self.weights, self.means, self.means
        )
        return second - mu[:, :, None] * mu[:, None, :]

    def trace(self) -> np.ndarray:
        return np.trace(self.cov(), axis1=1, axis2=2)

    def logdet(self) -> np.ndarray:
        return _logdet_from_eigs(np.linalg.eigvalsh(self.cov()))

    def modal_variance(self) -> np.ndarray:
        """Average per-coordinate variance of the components (weighted), App. B.2's 'average modal variance'."""
        d = self.means.shape[2]
        return np.einsum("rk,rk->r", self.weights, np.trace(self.covs, axis1=2, axis2=3)) / d

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log density of points x (R, n, d) under each replicate's mixture: (R, n)."""
        return _log_resp(x, self)[1]

    def sample(self, rng: np.random.Generator, n: int, lam: float = 1.0) -> np.ndarray:
        # Sampling bias for a mixture: every component's covariance times lam, weights unchanged. This is OUR
        # choice (spec Sec. 6 [design]); the paper's GMM runs (App. B.2) are unbiased and it gives no GMM lam.
        r, k, d = self.means.shape
        u = rng.random((r, n, 1))
        comp = np.minimum((u > np.cumsum(self.weights, axis=1)[:, None, :]).sum(axis=2), k - 1)
        rows = np.arange(r)[:, None]
        chol = np.linalg.cholesky(self.covs)[rows, comp]  # (R, n, d, d)
        z = rng.standard_normal((r, n, d, 1))
        return self.means[rows, comp] + np.sqrt(lam) * (chol @ z)[..., 0]


def _sq_to_centres(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distances (R, n, K) between points (R, n, d) and centres (R, K, d)."""
    d2 = (x**2).sum(axis=2)[:, :, None] + (centres**2).sum(axis=2)[:, None, :] - 2 * x @ np.swapaxes(centres, 1, 2)
    return np.maximum(d2, 0.0)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (2 + log k candidates per step, as scikit-learn) for all replicates: (R, k, d)."""
    r, n, _ = x.shape
    rows = np.arange(r)
    trials = 2 + int(np.log(k))
    centres = np.empty((r, k, x.shape[2]))
    centres[:, 0] = x[rows, rng.integers(n, size=r)]
    d2 = _sq_to_centres(x, centres[:, :1])[:, :, 0]
    for j in range(1, k):
        total = d2.sum(axis=1, keepdims=True)
        # All points on existing centres (collapsed data): fall back to a uniform choice.
        p = np.where(total > 0, d2 / np.where(total > 0, total, 1.0), 1.0 / n)
        cand = np.minimum((np.cumsum(p, axis=1)[:, None, :] < rng.random((r, trials, 1))).sum(axis=2), n - 1)
        # Keep the candidate that lowers the potential sum(min d2) the most.
        cand_d2 = np.minimum(d2[:, None, :], np.swapaxes(_sq_to_centres(x, x[rows[:, None], cand]), 1, 2))
        best = cand_d2.sum(axis=2).argmin(axis=1)
        centres[:, j] = x[rows, cand[rows, best]]
        d2 = cand_d2[rows, best]
    return centres


def _lloyd(x: np.ndarray, centres: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """A few k-means (Lloyd) steps; returns centres and one-hot assignments (R, n, K)."""
    k = centres.shape[1]
    for _ in range(iters + 1):
        onehot = np.eye(k)[_sq_to_centres(x, centres).argmin(axis=2)]
        counts = onehot.sum(axis=1)
        sums = np.swapaxes(onehot, 1, 2) @ x
        centres = np.where(counts[..., None] > 0, sums / np.maximum(counts, 1)[..., None], centres)
    return centres, onehot


def _m_step(x: np.ndarray, resp: np.ndarray, prev_means: np.ndarray, ridge: float) -> GMM:
    r, n, d = x.shape
    nk = resp.sum(axis=1)  # (R, K)
    alive = nk > 1e-8
    safe = np.where(alive, nk, 1.0)
    resp_t = np.swapaxes(resp, 1, 2)  # (R, K, n)
    means = np.where(alive[..., None], (resp_t @ x) / safe[..., None], prev_means)
    diff = x[:, None, :, :] - means[:, :, None, :]  # (R, K, n, d)
    covs = np.swapaxes(diff * resp_t[..., None], 2, 3) @ diff / safe[..., None, None]
    # A dead component keeps the pooled covariance so it stays a valid (weight-0) Gaussian.
    xc = x - x.mean(axis=1, keepdims=True)
    pooled = np.swapaxes(xc, 1, 2) @ xc / n
    covs = np.where(alive[..., None, None], covs, pooled[:, None])
    covs = covs + ridge * np.eye(d)
    return GMM(nk / n, means, covs)


def _log_resp(x: np.ndarray, gmm: GMM) -> tuple[np.ndarray, np.ndarray]:
    """Log responsibilities (R, n, K) and per-point log-likelihood (R, n), with log-sum-exp."""
    d = x.shape[2]
    chol = np.linalg.cholesky(gmm.covs)
    inv_chol = np.linalg.inv(chol)
    logdet = 2 * np.log(np.diagonal(chol, axis1=2, axis2=3)).sum(axis=2)  # (R, K)
    diff = x[:, None, :, :] - gmm.means[:, :, None, :]
    maha = ((diff @ np.swapaxes(inv_chol, 2, 3)) ** 2).sum(axis=3)  # |L^-1 (x - m)|^2, (R, K, n)
    with np.errstate(divide="ignore"):
        logw = np.log(gmm.weights)
    logp = logw[:, None, :] - 0.5 * (np.swapaxes(maha, 1, 2) + logdet[:, None, :] + d * np.log(2 * np.pi))
    top = logp.max(axis=2, keepdims=True)
    ll = top[..., 0] + np.log(np.exp(logp - top).sum(axis=2))
    return logp - ll[..., None], ll


def fit_gmm(
    x: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    iters: int = 60,
    kmeans_iters: int = 10,
    ridge: float = 1e-6,
    tol: float = 1e-7,
) -> GMM:
    """EM from scratch on x (R, n, d): k-means++ seeding, a few Lloyd steps, then EM with full
    covariances + ridge*I. Stops early once every replicate's mean log-likelihood changes by < ``tol``.
    """
    r = x.shape[0]
    centres, onehot = _lloyd(x, _kmeans_pp(x, k, rng), kmeans_iters)
    gmm = _m_step(x, onehot, centres, ridge)
    previous = np.full(r, -np.inf)
    for step in range(1, iters + 1):
        log_resp, ll = _log_resp(x, gmm)
        gmm = _m_step(x, np.exp(log_resp), gmm.means, ridge)
        gmm.iterations = step
        current = ll.mean(axis=1)
        if np.all(np.abs(current - previous) < tol * np.maximum(1.0, np.abs(current))):
            break
        previous = current
    return gmm


@dataclass
class KDE:
    """Gaussian kernel density estimate: points (R, m, d), bandwidth h (R,).

    Sampling = resample a point + N(0, lam*h^2 I): a misspecified model whose variance grows by about
    lam*h^2 per generation (the contrast case to the collapsing Gaussian).
    """

    points: np.ndarray
    h: np.ndarray
    _point_moments: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and MLE covariance of the points, computed once (trace, log det and both FDs reuse them)."""
        if self._point_moments is None:
            mu = self.points.mean(axis=1)
            pc = self.points - mu[:, None, :]
            self._point_moments = (mu, np.swapaxes(pc, 1, 2) @ pc / self.points.shape[1])
        return self._point_moments

    def mean(self) -> np.ndarray:
        return self._moments()[0]

    def cov(self, lam: float = 1.0) -> np.ndarray:
        d = self.points.shape[2]
        return self._moments()[1] + (lam * self.h**2)[:, None, None] * np.eye(d)

    def trace(self) -> np.ndarray:
        return np.trace(self.cov(), axis1=1, axis2=2)

    def logdet(self) -> np.ndarray:
        return _logdet_from_eigs(np.linalg.eigvalsh(self.cov()))

    def sample(self, rng: np.random.Generator, n: int, lam: float = 1.0) -> np.ndarray:
        r, m, d = self.points.shape
        idx = rng.integers(m, size=(r, n))
        noise = rng.standard_normal((r, n, d)) * (np.sqrt(lam) * self.h)[:, None, None]
        return self.points[np.arange(r)[:, None], idx] + noise


def scott_bandwidth(x: np.ndarray) -> np.ndarray:
    """Scott's rule h = sigma * n^(-1/(d+4)) per replicate (sigma = root mean coordinate variance)."""
    _, n, d = x.shape
    return np.sqrt(x.var(axis=1, ddof=1).mean(axis=1)) * n ** (-1.0 / (d + 4))


Model = GaussianFull | GaussianDiag | GMM | KDE  # and flow.Flow (torch), kept in its own module
