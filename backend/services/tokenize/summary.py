"""Empirical frequency against exact probability for a batch of samples (what the page plots)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from scipy import stats

from backend.services.tokenize.core import Method, log_partition, sample, score, viterbi
from backend.services.tokenize.vocab import Vocab


@dataclass
class SegmentationStat:
    tokens: list
    count: int
    frequency: float
    probability: float  # exact P_alpha (for alpha < 0 / Viterbi: 1 for the best segmentation, else 0)
    score: float


@dataclass
class Summary:
    log_partition: float
    log_segmentations: float  # log of how many segmentations the text has (the count overflows floats)
    samples: int
    distinct: int
    top: list[SegmentationStat]
    best: SegmentationStat
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
    """Draw ``n_samples`` segmentations and compare the ``top`` most frequent with their exact probability.

    The chi-square test has one bin per shown segmentation with expectation >= 5 and one bin for the rest.
    """
    samples, log_z = sample(text, vocab, alpha, seed, n_samples=n_samples, method=method)
    best_tokens, best_score = viterbi(text, vocab)
    deterministic = alpha < 0 or method == "viterbi"
    exact_log_z = log_z if not deterministic else math.nan

    def probability(tokens: list, s: float) -> float:
        if deterministic:
            return 1.0 if tokens == best_tokens else 0.0
        return math.exp(alpha * s - exact_log_z)

    counts = Counter(tuple(s) for s in samples)
    stats_list = []
    for tokens, c in counts.most_common(top):
        s = score(tokens, vocab)
        stats_list.append(SegmentationStat(list(tokens), c, c / n_samples, probability(list(tokens), s), s))
    best_count = counts.get(tuple(best_tokens), 0)
    best = SegmentationStat(best_tokens, best_count, best_count / n_samples, probability(best_tokens, best_score),
                            best_score)
    return Summary(
        log_partition=log_z,
        log_segmentations=log_partition(text, vocab, 0.0),
        samples=n_samples,
        distinct=len(counts),
        top=stats_list,
        best=best,
        chi_square=None if deterministic else _chi_square(stats_list, n_samples),
    )


def _chi_square(shown: list[SegmentationStat], n: int) -> dict | None:
    observed, expected = [], []
    rest_o, rest_e = float(n), float(n)
    for st in shown:
        e = st.probability * n
        rest_o -= st.count
        rest_e -= e
        if e >= 5:
            observed.append(st.count)
            expected.append(e)
        else:
            # too rare for its own bin: goes with the rest
            rest_o += st.count
            rest_e += e
    if rest_e > 1e-9 * n:
        observed.append(rest_o)
        expected.append(rest_e)
    if len(observed) < 2:
        return None
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    df = len(observed) - 1
    return {"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df))}
