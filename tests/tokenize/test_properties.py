"""Property tests (hypothesis): the kernels against brute-force enumeration on random small lattices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.services.tokenize import (
    Vocab,
    boundary_marginals,
    enumerate_segmentations,
    log_partition,
    sample,
    top_segmentations,
    viterbi,
)

pieces = st.dictionaries(
    st.text(alphabet="abc", min_size=2, max_size=4), st.floats(-6.0, 0.0, allow_nan=False), max_size=8
)


@st.composite
def lattices(draw):
    vocab = {"a": draw(st.floats(-3, 0)), "b": draw(st.floats(-3, 0))} | draw(pieces)
    use_unk = draw(st.booleans())
    text = draw(st.text(alphabet="abc" if use_unk else "ab", min_size=1, max_size=10))
    return Vocab(vocab, unk_logprob=-12.0 if use_unk else None), text


@settings(max_examples=60, deadline=None)
@given(lattices(), st.sampled_from([0.0, 0.3, 1.0, 2.0]))
def test_partition_viterbi_and_marginals_match_enumeration(lattice, alpha):
    vocab, text = lattice
    segs = enumerate_segmentations(text, vocab)
    scores = np.array([s for _, s in segs])
    log_z = float(np.logaddexp.reduce(alpha * scores))
    assert log_partition(text, vocab, alpha) == pytest.approx(log_z, abs=1e-9)
    tokens, best = viterbi(text, vocab)
    assert best == pytest.approx(scores.max()) and "".join(tokens) == text
    # expected number of tokens = sum of the boundary marginals over 1..n
    probs = np.exp(alpha * scores - log_z)
    expected_tokens = float(sum(p * len(t) for p, (t, _) in zip(probs, segs, strict=True)))
    assert boundary_marginals(text, vocab, alpha)[1:].sum() == pytest.approx(expected_tokens, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(lattices(), st.floats(0.0, 3.0), st.integers(0, 2**32))
def test_samples_are_segmentations_in_the_support(lattice, alpha, seed):
    vocab, text = lattice
    support = {tuple(t) for t, _ in enumerate_segmentations(text, vocab)}
    for method in ("sample", "ffbs", "legacy-sample"):
        samples, log_z = sample(text, vocab, alpha, seed, n_samples=5, method=method)
        assert all(tuple(s) in support for s in samples)
        assert math.isfinite(log_z)


@settings(max_examples=60, deadline=None)
@given(lattices(), st.integers(1, 12))
def test_top_segmentations_are_the_best_by_enumeration(lattice, k):
    vocab, text = lattice
    segs = enumerate_segmentations(text, vocab)
    top = top_segmentations(text, vocab, k)
    ranked = sorted((s for _, s in segs), reverse=True)[:k]
    assert [s for _, s in top] == pytest.approx(ranked, abs=1e-9)
    by_tokens = {tuple(t): s for t, s in segs}
    assert len({tuple(t) for t, _ in top}) == len(top)  # distinct segmentations
    for tokens, s in top:
        assert by_tokens[tuple(tokens)] == pytest.approx(s, abs=1e-9)
