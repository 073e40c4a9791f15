"""95% intervals for experiments with a few independent chains (seeds) and many items per chain.

A hierarchical (two-stage) percentile bootstrap, as ``shared/specs/statistics.md`` asks for training runs: each
resample draws the chains with replacement, then the items within every drawn chain with replacement, and
recomputes the statistic. The statistic is a linear contrast of per-array means, sum_k coef_k * mean(array_k),
which covers one metric (coef 1), a change over time (later - earlier) and a difference of changes between
two loops ((a_T - a_1) - (b_T - b_1)).

``paired_items``: the arrays score the same items (e.g. the same held-out real points, whose negative
log-likelihood is measured under several models): one item draw is shared by all arrays. Otherwise (e.g.
each generation's own generated samples) every array draws its items independently. Chains are always shared:
chain r of every array belongs to the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    chains: int
    items: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def contrast(arrays: Sequence[np.ndarray], coefs: Sequence[float]) -> float:
    """sum_k coef_k * mean over chains of the per-chain item means."""
    return float(sum(c * np.asarray(a, dtype=float).mean() for a, c in zip(arrays, coefs, strict=True)))


def hierarchical_bootstrap(
    arrays: Sequence[np.ndarray],
    coefs: Sequence[float] | None = None,
    *,
    paired_items: bool,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    block: int = 100,
) -> Interval:
    """Percentile interval of the contrast for arrays shaped (chains, items) (same shape for paired items)."""
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    coefs = [1.0] * len(arrays) if coefs is None else list(coefs)
    if len(coefs) != len(arrays) or not arrays:
        raise ValueError("one coefficient per array")
    chains = arrays[0].shape[0]
    if any(a.ndim != 2 or a.shape[0] != chains for a in arrays):
        raise ValueError("every array must be (chains, items) with the same number of chains")
    if paired_items and any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("paired items need arrays of the same shape")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("values must be finite")
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        pick = rng.integers(chains, size=(b, chains))  # (b, chains): the chains of each resample
        total = np.zeros(b)
        shared = None
        for a, c in zip(arrays, coefs, strict=True):
            items = a.shape[1]
            if paired_items:
                if shared is None:
                    shared = rng.integers(items, size=(b, chains, items))
                idx = shared
            else:
                idx = rng.integers(items, size=(b, chains, items))
            values = a[pick[..., None], idx]  # (b, chains, items)
            total += c * values.mean(axis=(1, 2))
        stats[done : done + b] = total
        done += b
    tail = (1 - level) / 2
    low, high = np.quantile(stats, [tail, 1 - tail])
    return Interval(contrast(arrays, coefs), float(low), float(high), chains, int(arrays[0].shape[1]))


def chain_interval(values: np.ndarray, *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap over chains of a per-chain number (no items: e.g. a Frechet distance): (chains,)."""
    values = np.asarray(values, dtype=float)
    return hierarchical_bootstrap([values[:, None]], paired_items=True, resamples=resamples, level=level, seed=seed)
