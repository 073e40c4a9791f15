"""The samplers against exact oracles (spec §5): chi-square at p = 1e-3, partition, limits, invariants."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from backend.services.tokenize import (
    SegmentationError,
    Vocab,
    boundary_marginals,
    count_segmentations,
    enumerate_segmentations,
    log_partition,
    log_prob,
    sample,
    sample_segmentation,
    viterbi,
)
from tests.tokenize.helpers import P_REJECT, chi_square, draw_counts, exact_distribution, two_sample_p

N = 40_000
EXACT = ("sample", "ffbs")

VOCAB_B = Vocab({"a": math.log(0.5), "aa": math.log(0.3), "aaa": math.log(0.2)})
# SentencePiece's LatticeTest lattice, scores used as they are (spec example C)
VOCAB_C = Vocab({"A": 1.0, "B": 1.2, "C": 1.5, "AB": 1.6, "BC": 1.7, "ABC": 1.8})
# spec example A: three equal-weight splits of "watching"
VOCAB_A = Vocab({"w": -1.0, "atching": -2.0, "wat": -1.5, "ching": -1.5, "watch": -2.0, "ing": -1.0})


def test_worked_example_b_log_partition():
    for alpha, expected in [(0, 1.386294), (0.5, 0.454486), (1, -0.470004), (3, -4.092159)]:
        assert log_partition("aaa", VOCAB_B, alpha) == pytest.approx(expected, abs=1e-6)


def test_worked_example_b_target_table():
    table = {0.5: [0.2244, 0.2458, 0.2458, 0.2839], 1: [0.2, 0.24, 0.24, 0.32], 3: [0.1169, 0.2021, 0.2021, 0.4790]}
    order = [("a", "a", "a"), ("a", "aa"), ("aa", "a"), ("aaa",)]
    for alpha, probs in table.items():
        exact = exact_distribution("aaa", VOCAB_B, alpha)
        assert [exact[k] for k in order] == pytest.approx(probs, abs=1e-4)


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 3.0])
def test_example_b_matches_target(method, alpha):
    counts = draw_counts("aaa", VOCAB_B, alpha, N, seed=11, method=method)
    stat, df, p = chi_square(counts, exact_distribution("aaa", VOCAB_B, alpha))
    assert df == 3 and p > P_REJECT, (stat, counts)


def test_example_b_legacy_is_biased_and_matches_its_own_law():
    counts = draw_counts("aaa", VOCAB_B, 1.0, N, seed=3, method="legacy-sample")
    _, _, p_target = chi_square(counts, exact_distribution("aaa", VOCAB_B, 1.0))
    assert p_target < P_REJECT
    # the spec's exact law of the old sampler (enumerated coin flips)
    legacy = {("a", "a", "a"): 0.1884, ("a", "aa"): 0.2231, ("aa", "a"): 0.2505, ("aaa",): 0.3379}
    total = sum(legacy.values())
    _, _, p_legacy = chi_square(counts, {k: v / total for k, v in legacy.items()})
    assert p_legacy > P_REJECT


@pytest.mark.parametrize("method", EXACT)
def test_example_c_matches_target(method):
    target = {("A", "B", "C"): 0.4840, ("AB", "C"): 0.2656, ("A", "BC"): 0.1780, ("ABC",): 0.0724}
    exact = exact_distribution("ABC", VOCAB_C, 1.0)
    assert [exact[k] for k in target] == pytest.approx(list(target.values()), abs=1e-4)
    assert log_partition("ABC", VOCAB_C, 1.0) == pytest.approx(4.425740, abs=1e-6)
    counts = draw_counts("ABC", VOCAB_C, 1.0, N, seed=5, method=method)
    assert chi_square(counts, exact)[2] > P_REJECT


def test_example_c_legacy_biased():
    counts = draw_counts("ABC", VOCAB_C, 1.0, N, seed=5, method="legacy-sample")
    assert chi_square(counts, exact_distribution("ABC", VOCAB_C, 1.0))[2] < P_REJECT
    legacy = {("A", "B", "C"): 0.4979, ("AB", "C"): 0.2313, ("A", "BC"): 0.2246, ("ABC",): 0.0462}
    assert chi_square(counts, legacy)[2] > P_REJECT


def test_example_a_watching():
    exact = exact_distribution("watching", VOCAB_A, 1.0)
    assert sorted(exact.values()) == pytest.approx([1 / 3] * 3)
    for method in EXACT:
        assert chi_square(draw_counts("watching", VOCAB_A, 1.0, N, 2, method), exact)[2] > P_REJECT
    # old sampler, longest match first: 1/4, 1/4, 1/2 (dilution of the early candidates)
    legacy = draw_counts("watching", VOCAB_A, 1.0, N, 2, "legacy-sample")
    assert chi_square(legacy, exact)[2] < P_REJECT
    diluted = {("w", "atching"): 0.25, ("wat", "ching"): 0.25, ("watch", "ing"): 0.5}
    assert chi_square(legacy, diluted)[2] > P_REJECT


def _random_vocab(rng: np.random.Generator, alphabet: str = "ab") -> Vocab:
    pieces = set(alphabet)
    while len(pieces) < 9:
        length = int(rng.integers(2, 5))
        pieces.add("".join(rng.choice(list(alphabet), size=length)))
    return Vocab({p: float(-rng.uniform(0.3, 4.0)) for p in sorted(pieces)})


@pytest.mark.parametrize("case", range(4))
def test_random_vocabularies_all_alphas(case):
    rng = np.random.default_rng(100 + case)
    vocab = _random_vocab(rng)
    text = "".join(rng.choice(["a", "b"], size=7))
    for alpha in (0.0, 0.3, 1.0, 2.5):
        exact = exact_distribution(text, vocab, alpha)
        for method in EXACT:
            counts = draw_counts(text, vocab, alpha, 20_000, seed=case * 10 + int(alpha * 10), method=method)
            stat, df, p = chi_square(counts, exact)
            assert p > P_REJECT, (method, alpha, stat, df)


def test_sampler_and_ffbs_agree_two_sample():
    vocab = _random_vocab(np.random.default_rng(7))
    text = "abbabaabab"
    a = draw_counts(text, vocab, 0.7, 30_000, seed=1, method="sample")
    b = draw_counts(text, vocab, 0.7, 30_000, seed=2, method="ffbs")
    assert two_sample_p(a, b) > P_REJECT


@pytest.mark.parametrize("order", ["shortest-first", "random"])
def test_order_invariance(order):
    exact = exact_distribution("watching", VOCAB_A, 1.0)
    counts = draw_counts("watching", VOCAB_A, 1.0, N, 4, "sample", edge_order=order)
    assert chi_square(counts, exact)[2] > P_REJECT
    exact_b = exact_distribution("aaaa", VOCAB_B, 0.8)
    counts_b = draw_counts("aaaa", VOCAB_B, 0.8, N, 5, "sample", edge_order=order)
    assert chi_square(counts_b, exact_b)[2] > P_REJECT


def test_legacy_depends_on_order():
    first = draw_counts("watching", VOCAB_A, 1.0, N, 4, "legacy-sample", edge_order="longest-first")
    last = draw_counts("watching", VOCAB_A, 1.0, N, 4, "legacy-sample", edge_order="shortest-first")
    assert two_sample_p(first, last) < P_REJECT
    # shortest first: "ing" arrives first and is the one diluted
    assert chi_square(last, {("watch", "ing"): 0.25, ("wat", "ching"): 0.25, ("w", "atching"): 0.5})[2] > P_REJECT


@pytest.mark.parametrize("seed", range(6))
def test_log_partition_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    vocab = _random_vocab(rng, "abc")
    text = "".join(rng.choice(list("abc"), size=int(rng.integers(1, 12))))
    segs = enumerate_segmentations(text, Vocab(vocab.to_dict()))
    for alpha in (-0.7, 0.0, 0.4, 1.0, 5.0):
        if not segs:
            assert log_partition(text, vocab, alpha) == -math.inf
            continue
        brute = float(np.logaddexp.reduce([alpha * s for _, s in segs]))
        assert log_partition(text, vocab, alpha) == pytest.approx(brute, abs=1e-9)
    if segs:
        assert count_segmentations(text, vocab) == pytest.approx(len(segs))
        _, logz = sample(text, vocab, 0.4, 0, method="ffbs")
        assert logz == pytest.approx(log_partition(text, vocab, 0.4), abs=1e-9)


def test_alpha_zero_uniform_fibonacci():
    vocab = Vocab({"a": -0.1, "aa": -3.0})
    exact = {k: 0.2 for k in exact_distribution("aaaa", vocab, 0.0)}
    assert len(exact) == 5
    for method in EXACT:
        assert chi_square(draw_counts("aaaa", vocab, 0.0, N, 8, method), exact)[2] > P_REJECT


def test_large_alpha_is_viterbi_and_negative_alpha_deterministic():
    vocab = Vocab({"a": -1.0, "b": -1.3, "ab": -1.7, "ba": -2.9, "aba": -2.2, "bb": -2.05})
    text = "ababbaab"
    best, best_score = viterbi(text, vocab)
    assert best_score == pytest.approx(max(s for _, s in enumerate_segmentations(text, vocab)))
    for method in ("sample", "ffbs", "legacy-sample", "viterbi"):
        samples, logz = sample(text, vocab, -1.0, 3, n_samples=50, method=method)
        assert all(s == best for s in samples)
        assert logz == pytest.approx(best_score)
    # no ties here and every gap * alpha > 40: the samplers are Viterbi
    for method in EXACT:
        samples, _ = sample(text, vocab, 1000.0, 9, n_samples=200, method=method)
        assert all(s == best for s in samples)
    assert sample_segmentation(text, vocab, -0.5, 1) == best


def test_same_seed_same_output_and_seeds_differ():
    vocab = _random_vocab(np.random.default_rng(3))
    text = "abababbbaabababbab" * 3
    for method in ("sample", "legacy-sample", "ffbs"):
        a = sample(text, vocab, 0.5, np.random.default_rng(42), n_samples=20, method=method)
        b = sample(text, vocab, 0.5, np.random.default_rng(42), n_samples=20, method=method)
        c = sample(text, vocab, 0.5, np.random.default_rng(43), n_samples=20, method=method)
        assert a == b and a[0] != c[0]
    assert sample_segmentation(text, vocab, 0.5, 7) == sample_segmentation(text, vocab, 0.5, 7)
    rng = np.random.default_rng(1)
    assert sample_segmentation(text, vocab, 0.5, rng) != sample_segmentation(text, vocab, 0.5, rng)


def test_lossless_and_in_vocabulary():
    vocab = _random_vocab(np.random.default_rng(5))
    rng = np.random.default_rng(0)
    for _ in range(30):
        text = "".join(rng.choice(["a", "b"], size=int(rng.integers(1, 60))))
        for method in ("sample", "legacy-sample", "ffbs", "viterbi"):
            samples, _ = sample(text, vocab, 0.3, rng, n_samples=3, method=method)
            for s in samples:
                assert "".join(s) == text and all(t in vocab for t in s)


def test_empty_text():
    assert sample("", VOCAB_B, 1.0, 0, n_samples=2) == ([[], []], 0.0)
    assert sample_segmentation("", VOCAB_B, 1.0, 0) == []


def test_boundary_marginals_exact_and_empirical():
    vocab = _random_vocab(np.random.default_rng(2))
    text = "abbaabab"
    alpha = 0.8
    exact = exact_distribution(text, vocab, alpha)
    brute = np.zeros(len(text) + 1)
    for tokens, p in exact.items():
        brute[np.cumsum([0] + [len(t) for t in tokens])] += p
    assert boundary_marginals(text, vocab, alpha) == pytest.approx(brute, abs=1e-12)
    # a long string: empirical boundary frequencies inside binomial confidence intervals (O5)
    long_text = "".join(np.random.default_rng(9).choice(["a", "b"], size=300))
    marg = boundary_marginals(long_text, vocab, alpha)
    n = 4000
    for method in EXACT:
        samples, _ = sample(long_text, vocab, alpha, 21, n_samples=n, method=method)
        hits = np.zeros(len(long_text) + 1)
        for s in samples:
            hits[np.cumsum([0] + [len(t) for t in s])] += 1
        inner = slice(1, len(long_text))
        p = marg[inner]
        z = (hits[inner] / n - p) / np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
        # 299 positions: a Bonferroni bound keeps the family-wise false alarm rate under 1e-3
        assert np.abs(z).max() < 5.0, method


def test_log_prob_and_score():
    assert log_prob(["a", "aa"], VOCAB_B, 1.0) == pytest.approx(math.log(0.24))
    assert log_prob(["aaa"], VOCAB_B, 3.0, log_z=log_partition("aaa", VOCAB_B, 3.0)) == pytest.approx(
        math.log(0.4790), abs=1e-4
    )


def test_unsegmentable_text_names_the_position():
    with pytest.raises(SegmentationError) as info:
        sample("aaxaa", VOCAB_B, 1.0, 0)
    assert info.value.position == 2 and "'x'" in str(info.value)
    with pytest.raises(SegmentationError):
        sample_segmentation("aab", VOCAB_B, 0.2, 0)
    with pytest.raises(SegmentationError):
        viterbi("b", VOCAB_B)
    with pytest.raises(SegmentationError):
        boundary_marginals("ab", VOCAB_B, 1.0)


def test_unknown_characters_with_unk_score():
    vocab = Vocab({"a": math.log(0.5), "aa": math.log(0.5)}, unk_logprob=-20.0)
    tokens, best = viterbi("aaxa", vocab)
    assert tokens == ["aa", "x", "a"] and best == pytest.approx(2 * math.log(0.5) - 20)
    exact = exact_distribution("axaa", vocab, 1.0)
    assert len(exact) == 2
    for method in (*EXACT, "legacy-sample"):
        samples, _ = sample("axaa", vocab, 1.0, 0, n_samples=100, method=method)
        assert all("".join(s) == "axaa" for s in samples)
    assert log_partition("axaa", vocab, 1.0) == pytest.approx(
        math.log(sum(math.exp(s) for _, s in enumerate_segmentations("axaa", vocab)))
    )


def test_bad_arguments():
    with pytest.raises(ValueError):
        sample("aa", VOCAB_B, 1.0, method="nope")
    with pytest.raises(ValueError):
        sample("aa", VOCAB_B, math.nan)
    with pytest.raises(ValueError):
        sample("aa", VOCAB_B, 1.0, n_samples=0)
    with pytest.raises(ValueError):
        sample("aa", VOCAB_B, 1.0, edge_order="sideways")
    with pytest.raises(TypeError):
        sample(b"aa", VOCAB_B, 1.0)


def test_counter_sanity_of_helpers():
    # the chi-square helper must reject a clearly wrong law and samples outside the support
    wrong = {("a",): 0.5, ("b",): 0.5}
    assert chi_square(Counter({("a",): 900, ("b",): 100}), wrong)[2] < P_REJECT
    assert chi_square(Counter({("c",): 1}), wrong)[2] == 0.0


def test_large_alpha_with_ties_is_uniform_over_the_optima():
    vocab = Vocab({"a": -1.0, "b": -1.0, "ab": -2.0, "ba": -2.5})
    exact = {("a", "b"): 0.5, ("ab",): 0.5}
    for method in EXACT:
        assert chi_square(draw_counts("ab", vocab, 500.0, 20_000, 6, method), exact)[2] > P_REJECT
    # deterministic Viterbi keeps the first optimum found (the edge with the smallest start)
    assert viterbi("ab", vocab)[0] == ["ab"]
