"""backend.stats: exact values where they exist (binomial tails, beta quantiles), coverage by simulation otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from backend.stats import (
    bootstrap_mean,
    clopper_pearson,
    mcnemar,
    mcnemar_counts,
    paired_bootstrap,
    verdict,
)


def test_mcnemar_counts_the_discordant_pairs_and_gives_the_exact_p_value():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 1], dtype=bool)  # A right on 8
    b = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 1], dtype=bool)  # B right on 2, both on 2
    res = mcnemar(a, b)
    assert (res.b, res.c, res.n) == (6, 0, 10)
    assert res.p_value == pytest.approx(2 * 0.5**6)  # two-sided binomial tail at 1/2
    assert res.share.estimate == 1.0 and res.share.high == 1.0
    assert res.share.low == pytest.approx(0.025 ** (1 / 6))  # Clopper-Pearson lower bound for 6 of 6
    assert res.difference.estimate == pytest.approx(0.6)
    assert "b=6 c=0" in res.format()


@pytest.mark.parametrize("b, c", [(0, 0), (3, 3), (7, 1), (1, 7), (40, 25), (0, 12)])
def test_mcnemar_p_value_matches_scipys_binomial_test(b, c):
    p, share = mcnemar_counts(b, c)
    if b + c == 0:
        assert p == 1.0 and np.isnan(share.estimate)
        return
    assert p == pytest.approx(st.binomtest(b, b + c, 0.5).pvalue)
    ci = st.binomtest(b, b + c).proportion_ci(confidence_level=0.95, method="exact")
    assert (share.low, share.high) == pytest.approx((ci.low, ci.high))
    assert share.estimate == pytest.approx(b / (b + c))


def test_mcnemar_is_antisymmetric_and_multi_seed_counts_every_pair():
    rng = np.random.default_rng(1)
    a = rng.random((3, 50)) < 0.6
    b = rng.random((3, 50)) < 0.4
    ab, ba = mcnemar(a, b), mcnemar(b, a)
    assert (ab.b, ab.c) == (ba.c, ba.b) and ab.p_value == pytest.approx(ba.p_value)
    assert ab.n == 150 and ab.b == int((a & ~b).sum())
    assert ab.difference.estimate == pytest.approx(a.mean() - b.mean())


def test_mcnemar_rejects_non_binary_and_mismatched_input():
    with pytest.raises(ValueError):
        mcnemar([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError):
        mcnemar([0, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        mcnemar_counts(-1, 2)


def test_clopper_pearson_edges_and_values():
    assert clopper_pearson(0, 10).low == 0.0
    assert clopper_pearson(10, 10).high == 1.0
    ci = clopper_pearson(3, 20)
    assert ci.low == pytest.approx(st.beta.ppf(0.025, 3, 18)) and ci.high == pytest.approx(st.beta.ppf(0.975, 4, 17))
    assert np.isnan(clopper_pearson(0, 0).estimate)
    with pytest.raises(ValueError):
        clopper_pearson(5, 3)


def test_paired_bootstrap_is_seeded_and_centred_on_the_mean_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 200)
    b = a - 0.3 + rng.normal(0, 0.1, 200)
    one, two = paired_bootstrap(a, b, seed=5), paired_bootstrap(a, b, seed=5)
    assert one == two
    assert one.estimate == pytest.approx(np.mean(a - b))
    assert one.low < one.estimate < one.high and one.excludes(0.0) and one.n == 200
    # pairing matters: the paired interval is far narrower than the spread of either sample
    assert one.high - one.low < 0.1
    assert "[" in one.format()


def test_paired_bootstrap_with_seeds_resamples_items_jointly():
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.zeros((2, 3))
    res = paired_bootstrap(a, b, n_resamples=500)
    assert res.estimate == pytest.approx(2.0)
    assert res.low == res.high == pytest.approx(2.0)  # per-item means over seeds are all 2: no item variance


def test_paired_bootstrap_coverage_is_about_95_percent():
    # 300 simulated studies with a known mean difference of 0.2: the interval should cover it ~95% of the time.
    rng = np.random.default_rng(42)
    covered = 0
    for i in range(300):
        d = rng.normal(0.2, 1.0, 80)
        res = paired_bootstrap(d, np.zeros_like(d), n_resamples=1000, seed=i)
        covered += res.low <= 0.2 <= res.high
    assert 0.90 <= covered / 300 <= 0.985


def test_paired_bootstrap_custom_statistic_and_errors():
    a, b = np.arange(10.0), np.zeros(10)
    med = paired_bootstrap(a, b, statistic=lambda d: np.median(d, axis=-1))
    assert med.estimate == pytest.approx(4.5)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, np.nan], [0.0, 0.0])
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [0.0, 1.0])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])


def test_bootstrap_mean_and_verdicts():
    x = np.r_[np.ones(30), np.zeros(70)]
    res = bootstrap_mean(x)
    assert res.estimate == pytest.approx(0.3) and res.low < 0.3 < res.high
    assert verdict(res) == "higher" and verdict(res, null=0.9) == "lower"
    tight = paired_bootstrap(np.full(50, 0.01), np.zeros(50))
    assert verdict(tight, null=0.01, narrow=0.05) == "about equal"
    wide = paired_bootstrap(np.r_[np.ones(5), -np.ones(5)], np.zeros(10))
    assert verdict(wide) == "not resolved"
