"""The double-array kernels (``datrie``) against float64 oracles: the hash-trie kernels and brute force."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from backend.services.tokenize import (
    SegmentationError,
    Vocab,
    boundary_counts,
    core,
    datrie,
    enumerate_segmentations,
    get_model,
    kernels,
    log_partition,
    sample,
    sample_segmentation,
    viterbi,
)
from backend.services.tokenize.summary import summarize
from backend.services.tokenize.vocab import encode_units
from tests.tokenize.helpers import P_REJECT, chi_square, exact_distribution

VOCAB_A = Vocab({"w": -1.0, "atching": -2.0, "wat": -1.5, "ching": -1.5, "watch": -2.0, "ing": -1.0})


def _random_vocab(seed: int, alphabet: str = "abc", size: int = 14, unk: float | None = -15.0) -> Vocab:
    rng = np.random.default_rng(seed)
    pieces = set(alphabet[: max(1, len(alphabet) - 1)])  # the last unit has no one-unit piece
    while len(pieces) < size:
        pieces.add("".join(rng.choice(list(alphabet), size=int(rng.integers(2, 6)))))
    return Vocab({p: float(-rng.uniform(0.2, 6.0)) for p in sorted(pieces)}, unk_logprob=unk)


def _walk(vocab: Vocab, piece: str) -> float:
    """The score the double array stores for ``piece`` (-inf when it is not a piece)."""
    f = vocab.fast
    node = 0
    for unit in f.ids(encode_units(piece, vocab.level)):
        t = f.da[node, 0] + unit
        if unit == 0 or f.da[t, 1] != node:
            return -math.inf
        node = t
    return float(f.lp[node])


def _hash_args(units, vocab):
    t = vocab.trie
    return (units, t.keys, t.vals, t.node_lp, t.radix, vocab.unk)


def _fast_args(vocab, text):
    f = vocab.fast
    return (f.ids(encode_units(text, vocab.level)), f.da, f.lp, f.unk)


# ---------------------------------------------------------------- the double array itself
@pytest.mark.parametrize("seed", range(5))
def test_double_array_holds_exactly_the_pieces(seed):
    vocab = _random_vocab(seed, "abcd", size=40)
    for piece, lp in vocab.to_dict().items():
        assert _walk(vocab, piece) == lp
    rng = np.random.default_rng(seed)
    for _ in range(300):
        s = "".join(rng.choice(list("abcdz"), size=int(rng.integers(1, 7))))
        assert _walk(vocab, s) == (vocab.to_dict()[s] if s in vocab else -math.inf)


def test_double_array_of_the_built_in_models():
    for name in ("default", "jieba"):
        vocab = get_model(name)
        pieces = vocab.pieces[:: max(1, len(vocab) // 3000)]
        for piece in pieces:
            assert _walk(vocab, piece) == vocab.logprob(piece)
        # label 0 (a unit outside the alphabet) never matches, and every base + label stays inside the array
        f = vocab.fast
        assert f.da[:, 0].max() + f.alphabet_size < f.da.shape[0]
        assert _walk(vocab, "\U0010fffd") == -math.inf


# ---------------------------------------------------------------- float64 passes against the hash-trie kernels
@pytest.mark.parametrize("seed", range(8))
def test_passes_match_hash_kernels_and_brute_force(seed):
    vocab = _random_vocab(seed, unk=None if seed % 2 else -15.0)
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(list("abc"), size=int(rng.integers(1, 13))))
    units = encode_units(text, "char")
    segs = enumerate_segmentations(text, vocab)
    for alpha in (0.0, 0.35, 1.0, 4.0):
        fwd = datrie.forward_pass(*_fast_args(vocab, text), alpha)
        ref = kernels.forward_logz(*_hash_args(units, vocab), alpha)
        np.testing.assert_allclose(fwd, ref, rtol=0, atol=1e-12)
        bwd = datrie.backward_pass(*_fast_args(vocab, text), alpha)
        np.testing.assert_allclose(bwd, kernels.backward_logz(*_hash_args(units, vocab), alpha), rtol=0, atol=1e-12)
        if segs:
            brute = float(np.logaddexp.reduce([alpha * s for _, s in segs]))
            assert fwd[-1] == pytest.approx(brute, abs=1e-10)
            assert bwd[0] == pytest.approx(brute, abs=1e-10)
        else:
            assert fwd[-1] == -math.inf
    score = np.empty(len(text) + 1)
    back = np.empty(len(text) + 1, dtype=np.int64)
    datrie.viterbi_pass(*_fast_args(vocab, text), score, back)
    ref_score, ref_back = kernels.viterbi(*_hash_args(units, vocab))
    np.testing.assert_array_equal(score, ref_score)  # the same additions in the same order: bit for bit
    np.testing.assert_array_equal(back[np.isfinite(score)], ref_back[np.isfinite(score)])
    if segs:
        assert score[-1] == max(s for _, s in segs)


@pytest.mark.parametrize("seed", range(4))
def test_reservoir_log_partition_is_the_forward_pass(seed):
    vocab = _random_vocab(seed)
    text = "".join(np.random.default_rng(seed).choice(list("abc"), size=200))
    ids, da, lp, unk = _fast_args(vocab, text)
    logz = np.empty(201)
    back = np.empty(201, dtype=np.int64)
    for alpha in (0.0, 0.1, 1.0, 30.0):
        datrie.reservoir_pass(ids, da, lp, unk, alpha, datrie.seed_state(np.uint64(seed)), logz, back)
        np.testing.assert_allclose(logz, datrie.forward_pass(ids, da, lp, unk, alpha), rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["sample", "legacy-sample"])
def test_sample_segmentation_methods_follow_their_laws(method):
    rng = np.random.default_rng(3)
    counts = Counter(tuple(sample_segmentation("watching", VOCAB_A, 1.0, rng, method=method)) for _ in range(30_000))
    exact = exact_distribution("watching", VOCAB_A, 1.0)
    if method == "sample":
        assert chi_square(counts, exact)[2] > P_REJECT
    else:
        # the original sampler dilutes the candidates that arrive first (spec example A)
        assert chi_square(counts, exact)[2] < P_REJECT
        diluted = {("w", "atching"): 0.25, ("wat", "ching"): 0.25, ("watch", "ing"): 0.5}
        assert chi_square(counts, diluted)[2] > P_REJECT


# ---------------------------------------------------------------- the str-in / str-out path
def test_joined_output_equals_the_boundary_path():
    """The kernel that writes one separated string and the one that returns boundaries draw the same samples."""
    vocab = get_model("default")
    text = "Naïve café — 東京 🙂 tabs\tand newlines\nend, plus ASCII."
    f = vocab.fast
    units = encode_units(text, "char")
    for method in (datrie.VITERBI, datrie.SAMPLE, datrie.LEGACY):
        for n_samples in (1, 7):
            status, sample_sep, joined, log_z = f.segment_str(text, 0.3, method, 12345, n_samples)
            log_z2, flat, offsets = f.segment_units(units, 0.3, method, 12345, n_samples)
            got = [part.split(chr(status)) for part in (joined.split(chr(sample_sep)) if n_samples > 1 else [joined])]
            want = [core._cut(text, flat[offsets[i]:offsets[i + 1]].tolist()) for i in range(n_samples)]
            assert got == want and log_z == log_z2


@pytest.mark.parametrize(
    "text",
    ["plain ascii", "latin-1 é ñ", "中文文本 and 英文", "astral 🙂🙃 𝔘𝔫𝔦", "a\x00b\x01c", "".join(map(chr, range(64))) + "xyz"],
)
def test_every_string_kind_and_separator_clash(text):
    vocab = Vocab({"a": -1.0, "b": -1.2, "ab": -1.5, "as": -2.0, "文本": -3.0, "🙂": -2.0}, unk_logprob=-9.0)
    reference = core._cut(text, kernels._backtrack(
        kernels.viterbi(*_hash_args(encode_units(text, "char"), vocab))[1], len(text)).tolist())
    assert viterbi(text, vocab)[0] == reference
    assert sample_segmentation(text, vocab, -1.0) == reference
    for alpha in (0.0, 0.7):
        for tokens in sample(text, vocab, alpha, 5, n_samples=4)[0] + [sample_segmentation(text, vocab, alpha, 9)]:
            assert "".join(tokens) == text and all(t in vocab or len(t) == 1 for t in tokens)


def test_str_subclass_and_unsegmentable_text():
    class Text(str):
        pass

    vocab = Vocab({"a": -1.0, "aa": -1.5})
    assert sample_segmentation(Text("aaa"), vocab, 0.5, 1) in (["a", "a", "a"], ["a", "aa"], ["aa", "a"])
    with pytest.raises(SegmentationError) as info:
        sample_segmentation("aaba", vocab, 0.5, 1)
    assert info.value.position == 2
    with pytest.raises(SegmentationError):
        sample("aab", vocab, 0.5, 1)
    with pytest.raises(SegmentationError):
        viterbi("b", vocab)
    assert log_partition("ab", vocab, 1.0) == -math.inf


# ---------------------------------------------------------------- seeds
def test_int_seed_builds_no_generator(monkeypatch):
    vocab = get_model("default")
    text = "an integer seed is used as it is"
    expected = sample_segmentation(text, vocab, 0.3, 2**63 + 5)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("a Generator was built for an integer seed")

    monkeypatch.setattr(np.random, "default_rng", forbidden)
    assert sample_segmentation(text, vocab, 0.3, 2**63 + 5) == expected
    assert sample(text, vocab, 0.3, 2**63 + 5)[0][0] == expected
    draws = {tuple(sample_segmentation(text, vocab, 0.3, seed)) for seed in range(40)}
    assert len(draws) > 5


def test_seed_kinds():
    vocab = VOCAB_A
    gen_a, gen_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [sample_segmentation("watching", vocab, 1.0, gen_a) for _ in range(20)] == [
        sample_segmentation("watching", vocab, 1.0, gen_b) for _ in range(20)]
    # a generator advances; Viterbi leaves it untouched
    state = gen_a.bit_generator.state
    sample_segmentation("watching", vocab, -1.0, gen_a)
    assert gen_a.bit_generator.state == state
    with pytest.raises(ValueError):
        sample_segmentation("watching", vocab, 1.0, -3)
    # seeds numpy accepts beyond 64 bits still work, deterministically
    assert sample("watching", vocab, 1.0, 2**70, n_samples=5) == sample("watching", vocab, 1.0, 2**70, n_samples=5)
    fresh = {tuple(sample_segmentation("watching", vocab, 1.0)) for _ in range(60)}
    assert len(fresh) == 3


def test_bad_alpha_and_method():
    for alpha in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            sample_segmentation("aa", VOCAB_A, alpha)
    with pytest.raises(ValueError):
        sample_segmentation("aa", VOCAB_A, 0.5, method="greedy")
    with pytest.raises(ValueError):
        sample_segmentation("aa", VOCAB_A, -0.5, method="greedy")
    assert sample_segmentation("watching", VOCAB_A, 0.5, 3, method="ffbs") in (
        ["w", "atching"], ["wat", "ching"], ["watch", "ing"])


# ---------------------------------------------------------------- counts and the page's summary
def test_boundary_counts_are_the_samples_boundaries():
    vocab = get_model("default")
    text = "Boundary counts come from the same draws as sample()."
    for method in ("sample", "legacy-sample", "ffbs", "viterbi"):
        samples, _ = sample(text, vocab, 0.4, 77, n_samples=300, method=method)
        expected = np.zeros(len(text) + 1, dtype=np.int64)
        for tokens in samples:
            expected[np.cumsum([0] + [len(t) for t in tokens])] += 1
        np.testing.assert_array_equal(boundary_counts(text, vocab, 0.4, 77, n_samples=300, method=method), expected)


def test_summary_rows_are_the_most_probable_with_the_rest():
    vocab = Vocab({"a": math.log(0.5), "aa": math.log(0.3), "aaa": math.log(0.2)})
    text = "aaaaaaa"
    s = summarize(text, vocab, 0.7, n_samples=5000, top=5, seed=1)
    exact = exact_distribution(text, vocab, 0.7)
    best5 = sorted(exact.values(), reverse=True)[:5]
    assert [st.probability for st in s.top] == pytest.approx(best5)
    assert s.rest.probability == pytest.approx(1 - sum(best5))
    assert s.rest.count + sum(st.count for st in s.top) == 5000
    for st in s.top + [s.rest]:
        assert st.interval[0] <= st.frequency <= st.interval[1]
    assert s.chi_square is not None and s.chi_square["p_value"] > P_REJECT
    brute = np.zeros(len(text) + 1)
    for tokens, p in exact.items():
        brute[np.cumsum([0] + [len(t) for t in tokens])] += p
    np.testing.assert_allclose(s.boundaries.exact, brute, atol=1e-12)
    legacy = summarize(text, vocab, 0.7, n_samples=20_000, top=5, seed=1, method="legacy-sample")
    assert legacy.chi_square["p_value"] < P_REJECT
    assert [st.probability for st in legacy.top] == pytest.approx(best5)
