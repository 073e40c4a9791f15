"""The exact reference P(gold | prompt text) against brute-force enumeration of token sequences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from backend.services.continuation.exact import END, PARTIAL, PrefixDP, conditional_logprob, first_char, greedy_chars
from backend.services.continuation.ngram import NGramLM

# A tiny vocabulary: 0 = BOS and 7 = EOS spell nothing; several ways to spell every string of a and b.
TINY = [b"", b"a", b"b", b"ab", b"ba", b"aab", b"bb", b""]
BOS, EOS = 0, 7


def tiny_lm(seed: int) -> NGramLM:
    rng = np.random.default_rng(seed)
    seqs = [list(rng.integers(1, 7, size=rng.integers(1, 6))) + [EOS] for _ in range(40)]
    return NGramLM.train(seqs, len(TINY), BOS)


def brute_prefix_prob(lm, pieces, y: bytes) -> float:
    """Sum of p over every minimal token sequence whose text starts with y (enumerated one by one)."""
    total = 0.0

    def walk(ctx: list[int], pos: int, prob: float) -> None:
        nonlocal total
        p = lm.next_token_probs(ctx)
        rest = y[pos:]
        for t, b in enumerate(pieces):
            if not b:
                continue
            if b.startswith(rest):  # covers the rest of y: a minimal sequence ends here
                total += prob * p[t]
            elif rest.startswith(b):
                walk([*ctx, t], pos + len(b), prob * p[t])

    walk([], 0, 1.0)
    return total


def brute_ends_exactly(lm, pieces, y: bytes, eos: int) -> float:
    """P(the text is exactly y): sequences spelling y, then EOS."""
    total = 0.0

    def walk(ctx: list[int], pos: int, prob: float) -> None:
        nonlocal total
        if pos == len(y):
            total += prob * lm.next_token_probs(ctx)[eos]
            return
        p = lm.next_token_probs(ctx)
        for t, b in enumerate(pieces):
            if b and y[pos:].startswith(b):
                walk([*ctx, t], pos + len(b), prob * p[t])

    walk([], 0, 1.0)
    return total


@pytest.mark.parametrize("seed", range(3))
def test_prefix_probability_equals_brute_force_on_every_short_string(seed):
    lm = tiny_lm(seed)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    for n in range(1, 6):
        for letters in itertools.product(b"ab", repeat=n):
            y = bytes(letters)
            dp.reset(y)
            assert dp.log_prob() == pytest.approx(math.log(brute_prefix_prob(lm, TINY, y)), abs=1e-10)


def test_the_empty_prefix_has_probability_one_and_its_next_characters_sum_to_one_up_to_specials():
    lm = tiny_lm(0)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    p0 = lm.next_token_probs([])
    assert dp.log_prob() == 0.0
    dist = dp.next_char_distribution()
    assert dist[END] == pytest.approx(p0[EOS])
    assert sum(dist.values()) == pytest.approx(1 - p0[BOS])


@pytest.mark.parametrize("y", [b"a", b"ab", b"bab", b"aaba"])
def test_next_character_distribution_is_the_ratio_of_prefix_probabilities(y):
    lm = tiny_lm(1)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    dp.reset(y)
    dist = dp.next_char_distribution()
    base = brute_prefix_prob(lm, TINY, y)
    for c in "ab":
        assert dist[c] == pytest.approx(brute_prefix_prob(lm, TINY, y + c.encode()) / base, rel=1e-9)
    assert dist[END] == pytest.approx(brute_ends_exactly(lm, TINY, y, EOS) / base, rel=1e-9)
    # everything else is a special token emitted in the middle of the text (BOS here)
    assert 0.99 < sum(dist.values()) <= 1 + 1e-12


def test_extending_equals_starting_over():
    lm = tiny_lm(2)
    a, b = PrefixDP(lm, TINY, eos_id=EOS), PrefixDP(lm, TINY, eos_id=EOS)
    a.reset(b"ab")
    a.extend(b"ba")
    b.reset(b"abba")
    assert a.log_prob() == pytest.approx(b.log_prob(), abs=1e-12)
    base, cond = conditional_logprob(a, b"ab", b"ba")
    assert base + cond == pytest.approx(b.log_prob(), abs=1e-12)


def test_long_texts_do_not_underflow():
    lm = tiny_lm(0)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    dp.reset(b"ab" * 400)
    lp = dp.log_prob()
    assert math.isfinite(lp) and lp < -300


def test_greedy_characters_follow_the_distribution():
    lm = tiny_lm(3)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    out = greedy_chars(dp, b"a", 3)
    text = b"a"
    for c in out:
        dp.reset(text)
        dist = {k: v for k, v in dp.next_char_distribution().items() if k != PARTIAL}
        assert dist[c] == max(dist.values())
        text += c.encode()


def test_real_tokenizer_against_brute_force(tok, ngram):
    # Chinese and English with multi-byte characters and long pieces (白云, 白云机场, ...)
    pieces = [b if i not in tok.special_ids else b"" for i, b in enumerate(tok.piece_bytes)]
    dp = PrefixDP(ngram, pieces, eos_id=tok.eos_id)
    for y in ["白云", "从白云机", "import n"]:
        dp.reset(y.encode())
        assert dp.log_prob() == pytest.approx(math.log(brute_prefix_prob(ngram, pieces, y.encode())), rel=1e-9)


def test_first_char():
    assert first_char("白云".encode()) == "白"
    assert first_char("白".encode()[:2]) == PARTIAL
    assert first_char(b"\x80") == PARTIAL and first_char(b"") == PARTIAL
    assert first_char(b"ab") == "a"
