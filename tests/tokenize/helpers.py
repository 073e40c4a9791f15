"""Statistics for the sampler tests: exact targets by enumeration and Pearson chi-square at p = 1e-3."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from scipy import stats

from backend.services.tokenize import enumerate_segmentations, sample

P_REJECT = 1e-3


def key(tokens) -> tuple:
    return tuple(tokens)


def exact_distribution(text, vocab, alpha: float) -> dict[tuple, float]:
    """P_alpha of every segmentation, by brute-force enumeration."""
    segs = enumerate_segmentations(text, vocab)
    logw = np.array([alpha * s for _, s in segs])
    logz = np.logaddexp.reduce(logw)
    return {key(t): float(math.exp(w - logz)) for (t, _), w in zip(segs, logw, strict=True)}


def chi_square(counts: Counter, probs: dict[tuple, float]) -> tuple[float, int, float]:
    """Pearson chi-square of ``counts`` against ``probs``; bins with expectation < 5 are pooled.

    Returns (statistic, degrees of freedom, p-value). A sample outside ``probs`` gets p-value 0.
    """
    if set(counts) - set(probs):
        return math.inf, 0, 0.0
    n = sum(counts.values())
    observed, expected = [], []
    pool_o, pool_e = 0.0, 0.0
    for k, p in sorted(probs.items(), key=lambda kv: -kv[1]):
        if n * p >= 5:
            observed.append(counts.get(k, 0))
            expected.append(n * p)
        else:
            pool_o += counts.get(k, 0)
            pool_e += n * p
    if pool_e > 0:
        observed.append(pool_o)
        expected.append(pool_e)
    o, e = np.array(observed, float), np.array(expected, float)
    stat = float(((o - e) ** 2 / e).sum())
    df = len(o) - 1
    return stat, df, float(stats.chi2.sf(stat, df)) if df > 0 else 1.0


def draw_counts(text, vocab, alpha, n, seed, method="sample", **kwargs) -> Counter:
    samples, _ = sample(text, vocab, alpha, np.random.default_rng(seed), n_samples=n, method=method, **kwargs)
    return Counter(key(s) for s in samples)


def two_sample_p(c1: Counter, c2: Counter) -> float:
    """p-value of a chi-square homogeneity test between two count tables (rare bins pooled)."""
    keys = sorted(set(c1) | set(c2), key=lambda k: -(c1.get(k, 0) + c2.get(k, 0)))
    rows, pool = [], [0, 0]
    for k in keys:
        a, b = c1.get(k, 0), c2.get(k, 0)
        if a + b >= 20:
            rows.append([a, b])
        else:
            pool[0] += a
            pool[1] += b
    if sum(pool):
        rows.append(pool)
    if len(rows) < 2:
        return 1.0
    return float(stats.chi2_contingency(np.array(rows))[1])
