"""Segmenting a text with a unigram vocabulary: decoding, sampling, partition function, marginals.

Target distribution of every sampler (Subword Regularization with l = inf):
    P_alpha(seg) = exp(alpha * score(seg)) / Z_alpha,   score(seg) = sum of the pieces' log-probs.
alpha < 0 means deterministic Viterbi (BytePiece's convention), alpha = 0 uniform over segmentations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from backend.services.tokenize import kernels
from backend.services.tokenize.vocab import Vocab, encode_units

Method = Literal["viterbi", "sample", "legacy-sample", "ffbs"]
METHODS: tuple[str, ...] = ("viterbi", "sample", "legacy-sample", "ffbs")
_FORWARD_CODE = {"sample": 0, "legacy-sample": 1, "viterbi": 2}
EdgeOrder = Literal["longest-first", "shortest-first", "random"]
_ORDER_CODE = {"longest-first": 0, "shortest-first": 1, "random": 2}
RngLike = np.random.Generator | int | None
# the state handed to kernels that draw nothing (Viterbi); never written, so shared safely
_NO_RANDOMNESS = np.ones(4, dtype=np.uint64)


class SegmentationError(ValueError):
    """The vocabulary cannot cover the text; ``position`` is where every segmentation gets stuck."""

    def __init__(self, text: str | bytes, position: int) -> None:
        self.position = position
        unit = text[position : position + 1]
        super().__init__(
            f"the text cannot be segmented with this vocabulary: no piece sequence gets past "
            f"{'character' if isinstance(text, str) else 'byte'} {position} ({unit!r})"
        )


def _rng_state(rng: RngLike) -> np.ndarray:
    """A xoshiro256** state drawn from ``rng`` (a Generator, a seed, or None for fresh entropy)."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    # raw words straight from the bit generator: ten times cheaper than Generator.integers per call
    return gen.bit_generator.random_raw(4)  # the kernels fix the (2^-256) all-zero state


def _as_text(text: str | bytes, vocab: Vocab) -> str | bytes:
    """The sequence the tokens are cut from (str for char level, UTF-8 bytes for byte level)."""
    if vocab.level == "byte" and isinstance(text, str):
        return text.encode("utf-8")
    if vocab.level == "char" and not isinstance(text, str):
        raise TypeError("a character-level vocabulary segments str, not bytes")
    return text


def _stuck_at(logz: np.ndarray) -> int:
    """The last reachable position before the end: every segmentation attempt dies there."""
    reachable = np.flatnonzero(np.isfinite(logz[:-1]))
    return int(reachable[-1]) if reachable.size else 0


def _cut(seq: str | bytes, bounds: Sequence[int]) -> list:
    return [seq[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


def _args(units: np.ndarray, vocab: Vocab) -> tuple:
    t = vocab.trie
    return (units, t.keys, t.vals, t.node_lp, t.radix, vocab.unk)


def sample(
    text: str | bytes,
    vocab: Vocab,
    alpha: float,
    rng: RngLike = None,
    *,
    n_samples: int = 1,
    method: Method = "sample",
    edge_order: EdgeOrder = "longest-first",
) -> tuple[list[list], float]:
    """Draw ``n_samples`` segmentations of ``text``; returns (samples, log_partition).

    method: "sample" (corrected one-pass sampler), "legacy-sample" (original Viterbi Sampling, biased),
    "ffbs" (forward-filtering backward-sampling), "viterbi" (best segmentation).
    log_partition is log sum_seg exp(alpha * score(seg)); for "viterbi" and for alpha < 0 (deterministic
    for every method) it is the best score instead.
    edge_order: the order in which the one-pass samplers see the edges that end at one position
    ("longest-first" as BytePiece's automaton, "shortest-first", "random"); it must not matter to
    "sample" and it does matter to "legacy-sample" (a test of the bias). FFBS and Viterbi ignore it.
    Raises SegmentationError when no segmentation exists.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if edge_order not in _ORDER_CODE:
        raise ValueError(f"edge_order must be one of {tuple(_ORDER_CODE)}, not {edge_order!r}")
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise ValueError("alpha must be finite")
    seq = _as_text(text, vocab)
    units = encode_units(seq, vocab.level)
    if alpha < 0:
        method = "viterbi"
    state = _NO_RANDOMNESS if method == "viterbi" else _rng_state(rng)
    t = vocab.trie
    # the reverse trie (edges by end) is built on first use: only FFBS and the by-end orders need it
    r = vocab.reverse_trie if (method == "ffbs" or edge_order != "longest-first") else t
    if method == "ffbs":
        logz, flat, offsets = kernels.ffbs(
            units, r.keys, r.vals, r.node_lp, t.keys, t.vals, t.node_lp, t.radix, vocab.unk, alpha, state,
            n_samples,
        )
    else:
        logz, flat, offsets = kernels.sample_many(
            units, r.keys, r.vals, r.node_lp, t.keys, t.vals, t.node_lp, t.radix, vocab.unk, alpha, state,
            n_samples, _FORWARD_CODE[method], _ORDER_CODE[edge_order],
        )
    n = len(units)
    if not np.isfinite(logz[n]):
        raise SegmentationError(seq, _stuck_at(logz))
    if method == "legacy-sample":
        # its running scores are those of one sampled path, not the partition function
        logz = kernels.forward_logz(*_args(units, vocab), alpha)
    flat_list = flat.tolist()
    off = offsets.tolist()
    samples = [_cut(seq, flat_list[off[i] : off[i + 1]]) for i in range(n_samples)]
    return samples, float(logz[n])


def sample_segmentation(text: str | bytes, vocab: Vocab, alpha: float, rng: RngLike = None) -> list:
    """One segmentation drawn with P proportional to exp(alpha * score) (Viterbi for alpha < 0).

    The fast path for training on random segmentations: tokens are ``str`` for a character-level vocabulary
    and ``bytes`` for a byte-level one, and always join back to the text.
    """
    seq = _as_text(text, vocab)
    units = encode_units(seq, vocab.level)
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise ValueError("alpha must be finite")
    # Viterbi draws nothing: leave the caller's generator untouched
    state = _NO_RANDOMNESS if alpha < 0 else _rng_state(rng)
    bounds = kernels.sample_one(*_args(units, vocab), alpha, state)
    if bounds.shape[0] == 0:
        if len(units) == 0:
            return []
        raise SegmentationError(seq, _stuck_at(kernels.forward_logz(*_args(units, vocab), 0.0)))
    return _cut(seq, bounds.tolist())


def viterbi(text: str | bytes, vocab: Vocab) -> tuple[list, float]:
    """The best segmentation and its score (ties: the edge with the smallest start wins)."""
    samples, best = sample(text, vocab, -1.0, method="viterbi")
    return samples[0], best


def log_partition(text: str | bytes, vocab: Vocab, alpha: float) -> float:
    """log sum over segmentations of exp(alpha * score); -inf when there is none."""
    units = encode_units(_as_text(text, vocab), vocab.level)
    return float(kernels.forward_logz(*_args(units, vocab), float(alpha))[len(units)])


def count_segmentations(text: str | bytes, vocab: Vocab) -> float:
    """How many segmentations the text has (exp of the alpha = 0 partition; a float, it can be huge)."""
    return math.exp(log_partition(text, vocab, 0.0))


def boundary_marginals(text: str | bytes, vocab: Vocab, alpha: float) -> np.ndarray:
    """P(a token boundary at position i) for i = 0..n under P_alpha (1 at both ends).

    exp(logZ_fwd(i) + logZ_bwd(i) - logZ(n)); for alpha < 0, the indicator of the Viterbi boundaries.
    """
    seq = _as_text(text, vocab)
    units = encode_units(seq, vocab.level)
    n = len(units)
    if alpha < 0:
        tokens, _ = viterbi(seq, vocab)
        out = np.zeros(n + 1)
        out[np.cumsum([0] + [len(t) for t in tokens])] = 1.0
        return out
    fwd = kernels.forward_logz(*_args(units, vocab), float(alpha))
    if not np.isfinite(fwd[n]):
        raise SegmentationError(seq, _stuck_at(fwd))
    bwd = kernels.backward_logz(*_args(units, vocab), float(alpha))
    with np.errstate(invalid="ignore"):
        return np.exp(fwd + bwd - fwd[n])


def score(tokens: Sequence[str] | Sequence[bytes], vocab: Vocab) -> float:
    """Sum of the tokens' log-probs (KeyError for a token outside the vocabulary)."""
    return float(sum(vocab.logprob(t) for t in tokens))


def log_prob(tokens: Sequence, vocab: Vocab, alpha: float, log_z: float | None = None) -> float:
    """log P_alpha(tokens) = alpha * score - log Z_alpha (alpha >= 0)."""
    if log_z is None:
        log_z = log_partition(type(tokens[0])().join(tokens) if tokens else "", vocab, alpha)
    return alpha * score(tokens, vocab) - log_z


def enumerate_segmentations(text: str | bytes, vocab: Vocab, limit: int = 100_000) -> list[tuple[list, float]]:
    """Every segmentation with its score, by brute force (an oracle for tests; ValueError past ``limit``)."""
    seq = _as_text(text, vocab)
    n = len(seq)
    unk = vocab.unk_logprob
    out: list[tuple[list, float]] = []

    def edges_from(s: int) -> list[tuple[int, float]]:
        found = []
        for e in range(s + 1, min(n, s + vocab.max_len) + 1):
            piece = seq[s:e]
            if piece in vocab:
                found.append((e, vocab.logprob(piece)))
        if unk is not None and seq[s : s + 1] not in vocab:
            found.append((s + 1, unk))
        return found

    def walk(s: int, tokens: list, total: float) -> None:
        if s == n:
            if len(out) >= limit:
                raise ValueError(f"more than {limit} segmentations")
            out.append((list(tokens), total))
            return
        for e, lp in edges_from(s):
            tokens.append(seq[s:e])
            walk(e, tokens, total + lp)
            tokens.pop()

    walk(0, [], 0.0)
    return out
