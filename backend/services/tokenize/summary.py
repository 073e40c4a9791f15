"""Empirical against exact for a batch of samples: what the page plots, built so that it cannot mislead.

- The segmentations shown are the ``top`` most probable ones by EXACT probability (the k best scores), not
  the most frequent among the samples: with many distinct segmentations the most frequent ones are picked
  for being lucky, so their frequencies overstate their probability (the winner's curse). Each comes with
  its empirical frequency and a 95% Clopper-Pearson interval, and the rest of the distribution is one more row.
- Per position, the exact probability of a token boundary (forward-backward) against the share of samples
  with a boundary there, with its 95% Clopper-Pearson interval.
- A Pearson chi-square test of the samples against the exact law over those bins.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from backend.services.tokenize.core import (
    Method,
    boundary_marginals,
    log_partition,
    sample,
    top_segmentations,
    viterbi,
)
from backend.services.tokenize.vocab import Vocab
from backend.stats import clopper_pearson


def interval(count: int, n: int) -> tuple[float, float]:
    """95% Clopper-Pearson interval of the proportion count / n (``backend.stats``)."""
    ci = clopper_pearson(int(count), int(n))
    return ci.low, ci.high


@dataclass
class SegmentationStat:
    tokens: list
    count: int
    frequency: float
    interval: tuple[float, float]  # 95% Clopper-Pearson interval of the frequency
    probability: float  # exact P_alpha (for alpha < 0 / Viterbi: 1 for the best segmentation, else 0)
    score: float


@dataclass
class Boundaries:
    """Per position 0..n (characters, or bytes for a byte-level vocabulary)."""

    exact: list[float]
    frequency: list[float]
    lower: list[float]
    upper: list[float]


@dataclass
class Summary:
    log_partition: float
    log_segmentations: float  # log of how many segmentations the text has (the count overflows floats)
    samples: int
    distinct: int
    top: list[SegmentationStat]  # by exact probability, best first
    rest: SegmentationStat  # every other segmentation together (tokens empty)
    best: SegmentationStat
    boundaries: Boundaries
    chi_square: dict | None = field(default=None)  # Pearson test of the samples against the exact law


def summarize(
    text: str,
    vocab: Vocab,
    alpha: float,
    *,
    n_samples: int,
    method: Method = "sample",
    top: int = 10,
    seed: int | None = None,
) -> Summary:
    """Draw ``n_samples`` segmentations and set them against the exact law (see the module docstring)."""
    samples, log_z = sample(text, vocab, alpha, seed, n_samples=n_samples, method=method)
    best_tokens, best_score = viterbi(text, vocab)
    deterministic = alpha < 0 or method == "viterbi"
    # for every sampler (the legacy one too) ``sample`` returns the exact log partition
    exact_log_z = log_z if not deterministic else math.nan

    def probability(tokens: list, s: float) -> float:
        if deterministic:
            return 1.0 if tokens == best_tokens else 0.0
        return math.exp(alpha * s - exact_log_z)

    counts = Counter(tuple(s) for s in samples)

    def stat(tokens: list, s: float) -> SegmentationStat:
        c = counts.get(tuple(tokens), 0)
        return SegmentationStat(list(tokens), c, c / n_samples, interval(c, n_samples), probability(tokens, s), s)

    shown = [stat(tokens, s) for tokens, s in top_segmentations(text, vocab, 1 if deterministic else top)]
    rest_count = n_samples - sum(st.count for st in shown)
    rest_p = max(0.0, 1.0 - sum(st.probability for st in shown))
    rest = SegmentationStat([], rest_count, rest_count / n_samples, interval(rest_count, n_samples), rest_p, math.nan)

    n = len(text)
    hits = np.zeros(n + 1)
    for tokens in samples:
        hits[np.cumsum([0] + [len(t) for t in tokens])] += 1
    exact = boundary_marginals(text, vocab, -1.0 if deterministic else alpha)
    by_count = {k: interval(k, n_samples) for k in set(hits.astype(int).tolist())}  # few distinct counts
    intervals = [by_count[k] for k in hits.astype(int).tolist()]
    boundaries = Boundaries(
        exact=np.clip(exact, 0.0, 1.0).tolist(),
        frequency=(hits / n_samples).tolist(),
        lower=[lo for lo, _ in intervals],
        upper=[hi for _, hi in intervals],
    )
    return Summary(
        log_partition=log_z,
        log_segmentations=log_partition(text, vocab, 0.0),
        samples=n_samples,
        distinct=len(counts),
        top=shown,
        rest=rest,
        best=stat(best_tokens, best_score),
        boundaries=boundaries,
        chi_square=None if deterministic else _chi_square(shown, n_samples),
    )


def _chi_square(shown: list[SegmentationStat], n: int) -> dict | None:
    """Bins: each shown segmentation expected at least 5 times, and one for all the others."""
    observed, expected = [], []
    rest_o, rest_e = float(n), float(n)
    for st in shown:
        e = st.probability * n
        if e >= 5:
            observed.append(st.count)
            expected.append(e)
            rest_o -= st.count
            rest_e -= e
    if rest_e > 1e-9 * n:
        observed.append(rest_o)
        expected.append(rest_e)
    if len(observed) < 2:
        return None
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    df = len(observed) - 1
    return {"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df))}
