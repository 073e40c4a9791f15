"""Real-data distributions P_r for the self-consuming loops.

Every target samples batches shaped ``(R, n, d)`` (R replicate chains at once) and exposes the first two
moments, which the Frechet distance compares against (as FID does with feature Gaussians).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (eigenvalues clipped at 0; works for singular matrices)."""
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


@dataclass(frozen=True)
class GaussianTarget:
    """P_r = N(mean, cov)."""

    mean: np.ndarray
    cov: np.ndarray
    name: str = "gaussian"
    _root: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=float).reshape(-1)
        cov = np.asarray(self.cov, dtype=float)
        if cov.shape != (mean.size, mean.size):
            raise ValueError(f"covariance must be {mean.size}x{mean.size}, got {cov.shape}")
        if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, np.abs(cov).max())):
            raise ValueError("covariance must be symmetric")
        w = np.linalg.eigvalsh(cov)
        if w.min() < -1e-10 * max(1.0, w.max()):
            raise ValueError("covariance must be positive semi-definite")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "_root", psd_sqrt(cov))

    @property
    def dim(self) -> int:
        return self.mean.size

    @property
    def modes(self) -> np.ndarray | None:
        return None

    @property
    def mode_std(self) -> float | None:
        return None

    @property
    def root(self) -> np.ndarray:
        """Sigma0^(1/2), used by the Frechet distance."""
        return self._root

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        z = rng.standard_normal((*shape, self.dim))
        return self.mean + z @ self._root


@dataclass(frozen=True)
class MixtureTarget:
    """Equal-or-weighted mixture of isotropic Gaussians N(m_k, std^2 I)."""

    means: np.ndarray
    std: float
    weights: np.ndarray | None = None
    name: str = "mixture"

    def __post_init__(self) -> None:
        means = np.atleast_2d(np.asarray(self.means, dtype=float))
        k = means.shape[0]
        weights = np.full(k, 1.0 / k) if self.weights is None else np.asarray(self.weights, dtype=float)
        if weights.shape != (k,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError("weights must be a probability vector, one per mode")
        if not self.std > 0:
            raise ValueError("std must be positive")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "weights", weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    @property
    def cov(self) -> np.ndarray:
        centred = self.means - self.mean
        between = (centred * self.weights[:, None]).T @ centred
        return between + self.std**2 * np.eye(self.dim)

    @property
    def root(self) -> np.ndarray:
        return psd_sqrt(self.cov)

    @property
    def modes(self) -> np.ndarray:
        return self.means

    @property
    def mode_std(self) -> float:
        return float(self.std)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        comp = rng.choice(self.means.shape[0], size=shape, p=self.weights)
        return self.means[comp] + self.std * rng.standard_normal((*shape, self.dim))


Target = GaussianTarget | MixtureTarget


def gaussian(dim: int, cov: np.ndarray | None = None, mean: np.ndarray | None = None) -> GaussianTarget:
    """N(mean, cov); defaults N(0, I_dim)."""
    return GaussianTarget(
        np.zeros(dim) if mean is None else np.asarray(mean, float),
        np.eye(dim) if cov is None else np.asarray(cov, float),
    )


def grid25(spacing: float = 2.0, std: float = 0.05) -> MixtureTarget:
    """The 5x5 grid of Che et al. (2020) used in the paper's App. B.2: means {-4,-2,0,2,4}^2, std 0.05."""
    axis = spacing * (np.arange(5) - 2)
    means = np.array([(x, y) for x in axis for y in axis])
    return MixtureTarget(means, std, name="grid25")


def ring(n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> MixtureTarget:
    """n_modes Gaussians equally spaced on a circle (the usual 'ring of 8' toy)."""
    angle = 2 * np.pi * np.arange(n_modes) / n_modes
    return MixtureTarget(radius * np.stack([np.cos(angle), np.sin(angle)], axis=1), std, name="ring")
