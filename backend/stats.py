"""Statistics for reporting results (``../shared/specs/statistics.md``): paired bootstrap intervals, McNemar's
exact test with a Clopper-Pearson interval on b/(b+c), and bootstrap/exact intervals for a single sample.

Pure numpy/scipy (no Flask): usable from scripts, tests and services alike. Every resampling function is seeded,
so a table printed twice is the same table.

Paired designs: two methods scored on the same items. ``paired_bootstrap(a, b)`` resamples items (with
replacement) and reports mean(a) - mean(b) with a percentile interval. With several training seeds, pass arrays of
shape (seeds, items): the same resampled items are used for every seed and the statistic is the mean over seeds
and items (the spec's "bootstrap over items within each seed"). For yes/no outcomes, ``mcnemar(a, b)`` counts the
discordant pairs b (a right, b wrong) and c (a wrong, b right), gives the exact two-sided p-value (binomial test of
b out of b+c at 1/2) and the Clopper-Pearson interval of b/(b+c): an interval that excludes 0.5 means one method
wins more of the pairs on which they disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

ArrayLike = np.ndarray | list | tuple


@dataclass(frozen=True)
class Interval:
    """A point estimate with a (two-sided) confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float = 0.95
    n: int = 0  # items (the resampled unit)

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside the interval."""
        return not (self.low <= value <= self.high)

    def format(self, digits: int = 3, scale: float = 1.0) -> str:
        """``estimate [low, high]`` (``scale`` 100 prints percentage points)."""
        f = f"{{:+.{digits}f}}"
        return f"{f.format(self.estimate * scale)} [{f.format(self.low * scale)}, {f.format(self.high * scale)}]"


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired yes/no outcomes of methods A and B."""

    b: int  # pairs where A is right and B is wrong
    c: int  # pairs where A is wrong and B is right
    n: int  # all pairs
    p_value: float  # exact two-sided p-value (binomial test of b in b + c at 1/2); 1.0 when b + c = 0
    share: Interval  # b / (b + c) with its Clopper-Pearson interval (nan when b + c = 0)
    difference: Interval  # accuracy(A) - accuracy(B) = (b - c) / n, with a paired bootstrap interval

    def format(self) -> str:
        s = self.share
        share = "n/a" if not np.isfinite(s.estimate) else f"{s.estimate:.2f} [{s.low:.2f}, {s.high:.2f}]"
        return f"b={self.b} c={self.c} p={self.p_value:.2g} b/(b+c)={share}"


def _as_items(x: ArrayLike) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError("expected an array of shape (items,) or (seeds, items)")
    if arr.shape[1] == 0:
        raise ValueError("no items")
    return arr


def _percentile(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_indices(n_items: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_items) item indices drawn with replacement, from a seeded generator."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_items, size=(n_resamples, n_items))


def bootstrap_mean(
    x: ArrayLike, *, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """Mean of ``x`` (shape (items,) or (seeds, items)) with a percentile bootstrap interval over items."""
    arr = _as_items(x)
    idx = bootstrap_indices(arr.shape[1], n_resamples, seed)
    per_item = arr.mean(axis=0)  # resampling items keeps every seed's value of an item together
    boot = per_item[idx].mean(axis=1)
    low, high = _percentile(boot, confidence)
    return Interval(float(per_item.mean()), low, high, confidence, arr.shape[1])


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Interval:
    """mean(a) - mean(b) over paired items, with a percentile interval from resampling items.

    ``a`` and ``b`` have the same shape, (items,) or (seeds, items); item j of ``a`` and of ``b`` were scored on the
    same input. ``statistic`` maps a (resamples, items) array of per-item differences to one value per resample
    (default: the mean over items); it is also applied to the observed differences for the estimate.
    """
    da, db = _as_items(a), _as_items(b)
    if da.shape != db.shape:
        raise ValueError(f"paired samples must have the same shape, not {da.shape} and {db.shape}")
    diff = (da - db).mean(axis=0)
    if not np.all(np.isfinite(diff)):
        raise ValueError("paired samples must be finite")
    stat = statistic or (lambda d: d.mean(axis=-1))
    idx = bootstrap_indices(diff.shape[0], n_resamples, seed)
    boot = np.asarray(stat(diff[idx]), dtype=np.float64)
    low, high = _percentile(boot, confidence)
    return Interval(float(stat(diff[None, :])[0]), low, high, confidence, diff.shape[0])


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson) interval for a binomial proportion k / n; nan estimate when n = 0."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Interval(float("nan"), 0.0, 1.0, confidence, 0)
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if k == 0 else float(_st.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(_st.beta.ppf(1.0 - tail, k + 1, n - k))
    return Interval(k / n, low, high, confidence, n)


def mcnemar_counts(b: int, c: int, n: int | None = None, confidence: float = 0.95) -> tuple[float, Interval]:
    """Exact two-sided p-value and Clopper-Pearson interval on b / (b + c) from the discordant counts."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    m = b + c
    p = 1.0 if m == 0 else float(min(1.0, 2.0 * _st.binom.cdf(min(b, c), m, 0.5)))
    return p, clopper_pearson(b, m, confidence)


def mcnemar(
    a: ArrayLike, b: ArrayLike, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> McNemar:
    """McNemar's exact test for paired yes/no outcomes (``a``, ``b``: booleans of shape (items,) or (seeds, items)).

    With several seeds the discordant pairs are counted over all (seed, item) pairs, and the accuracy difference's
    interval resamples items (all seeds of an item together).
    """
    xa, xb = _as_items(a), _as_items(b)
    if xa.shape != xb.shape:
        raise ValueError(f"paired samples must have the same shape, not {xa.shape} and {xb.shape}")
    if not (np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all()):
        raise ValueError("McNemar's test takes yes/no outcomes (0/1 or booleans)")
    ya, yb = xa.astype(bool), xb.astype(bool)
    n_b = int((ya & ~yb).sum())
    n_c = int((~ya & yb).sum())
    p, share = mcnemar_counts(n_b, n_c, confidence=confidence)
    diff = paired_bootstrap(xa, xb, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return McNemar(n_b, n_c, int(ya.size), p, share, diff)


def verdict(interval: Interval, *, null: float = 0.0, narrow: float | None = None) -> str:
    """The words the statistics spec allows for a difference: "higher", "lower", "about equal", "not resolved".

    "about equal" needs the interval to contain ``null`` and to lie within ``null`` +/- ``narrow``.
    """
    if interval.low > null:
        return "higher"
    if interval.high < null:
        return "lower"
    if narrow is not None and interval.low >= null - narrow and interval.high <= null + narrow:
        return "about equal"
    return "not resolved"
