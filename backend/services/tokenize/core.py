"""Segmenting a text with a unigram vocabulary: decoding, sampling, partition function, marginals.

Target distribution of every sampler (Subword Regularization with l = inf):
    P_alpha(seg) = exp(alpha * score(seg)) / Z_alpha,   score(seg) = sum of the pieces' log-probs.
alpha < 0 means deterministic Viterbi (BytePiece's convention), alpha = 0 uniform over segmentations.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal

import numpy as np

from backend.services.tokenize import datrie, kernels
from backend.services.tokenize.vocab import Vocab, encode_units

Method = Literal["viterbi", "sample", "legacy-sample", "ffbs"]
METHODS: tuple[str, ...] = ("viterbi", "sample", "legacy-sample", "ffbs")
# the one-pass methods of the double-array kernels (``datrie``); FFBS has its own kernel
_ONE_PASS = {"viterbi": datrie.VITERBI, "sample": datrie.SAMPLE, "legacy-sample": datrie.LEGACY}
# the same methods as coded by the hash-trie kernels (``kernels.sample_many``)
_HASH_CODE = {"sample": 0, "legacy-sample": 1, "viterbi": 2}
EdgeOrder = Literal["longest-first", "shortest-first", "random"]
_ORDER_CODE = {"longest-first": 0, "shortest-first": 1, "random": 2}
RngLike = np.random.Generator | int | None
_SEPARATORS = tuple(chr(c) for c in range(64))
_METHOD_SET = frozenset(METHODS)
_VITERBI, _SAMPLE = datrie.VITERBI, datrie.SAMPLE
_INF = math.inf
_GENERATOR = np.random.Generator
_fresh: np.random.Generator | None = None


def _reset_fresh() -> None:
    global _fresh
    _fresh = None


# a forked worker must not repeat its parent's "fresh" randomness (BytePiece's global rand() does)
os.register_at_fork(after_in_child=_reset_fresh)


class SegmentationError(ValueError):
    """The vocabulary cannot cover the text; ``position`` is where every segmentation gets stuck."""

    def __init__(self, text: str | bytes, position: int) -> None:
        self.position = position
        unit = text[position : position + 1]
        super().__init__(
            f"the text cannot be segmented with this vocabulary: no piece sequence gets past "
            f"{'character' if isinstance(text, str) else 'byte'} {position} ({unit!r})"
        )


def _seed_word(rng: RngLike) -> int:
    """The 64-bit word the kernels seed their xoshiro256** from (splitmix64).

    A Generator gives one raw draw (so the same generator state gives the same output and the generator
    advances); an int in [0, 2^64) is used as it is (no Generator is built per call); None draws from one
    process-wide generator seeded from fresh entropy (re-seeded in a forked child). Anything else numpy's
    ``default_rng`` accepts (a SeedSequence, a larger int) goes through ``default_rng`` once.
    """
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.random_raw()
    if isinstance(rng, (int, np.integer)) and 0 <= rng < 1 << 64:
        return int(rng)
    if rng is None:
        global _fresh
        gen = _fresh
        if gen is None:
            gen = _fresh = np.random.default_rng()
        return gen.bit_generator.random_raw()
    if isinstance(rng, (int, np.integer)) and rng < 0:
        raise ValueError(f"a seed must be non-negative, not {rng}")
    return np.random.default_rng(rng).bit_generator.random_raw()


def _as_text(text: str | bytes, vocab: Vocab) -> str | bytes:
    """The sequence the tokens are cut from (str for char level, UTF-8 bytes for byte level)."""
    if vocab.level == "byte" and isinstance(text, str):
        return text.encode("utf-8")
    if vocab.level == "char" and not isinstance(text, str):
        raise TypeError("a character-level vocabulary segments str, not bytes")
    if type(text) not in (str, bytes):
        # a subclass (or a bytearray): the kernels take the plain type
        return str(text) if isinstance(text, str) else bytes(text)
    return text


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise ValueError("alpha must be finite")
    return alpha


def _stuck_at(logz: np.ndarray) -> int:
    """The last reachable position before the end: every segmentation attempt dies there."""
    reachable = np.flatnonzero(np.isfinite(logz[:-1]))
    return int(reachable[-1]) if reachable.size else 0


def _cut(seq: str | bytes, bounds: Sequence[int]) -> list:
    return [seq[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


def _ids(seq: str | bytes, vocab: Vocab) -> np.ndarray:
    return vocab.fast.ids(encode_units(seq, vocab.level))


def _forward(seq: str | bytes, vocab: Vocab, alpha: float) -> np.ndarray:
    f = vocab.fast
    return datrie.forward_pass(_ids(seq, vocab), f.da, f.lp, f.unk, alpha)


def _unsegmentable(seq: str | bytes, vocab: Vocab) -> SegmentationError:
    return SegmentationError(seq, _stuck_at(_forward(seq, vocab, 0.0)))


def _one_pass(seq: str | bytes, vocab: Vocab, alpha: float, code: int, seed: int, n_samples: int
              ) -> tuple[list[list], float]:
    """``n_samples`` draws of a one-pass method over the double array: (samples, logZ or best score)."""
    f = vocab.fast
    if isinstance(seq, str):
        status, sample_sep, joined, log_z = f.segment_str(seq, alpha, code, seed, n_samples)
        if status >= 0:
            sep = _SEPARATORS[status]
            if n_samples == 1:
                return [joined.split(sep)], log_z
            return [part.split(sep) for part in joined.split(_SEPARATORS[sample_sep])], log_z
        if status == datrie.UNSEGMENTABLE:
            raise _unsegmentable(seq, vocab)
        # every candidate separator occurs in the text: cut it by boundaries below
    log_z, flat, offsets = f.segment_units(encode_units(seq, vocab.level), alpha, code, seed, n_samples)
    if log_z == -math.inf:
        raise _unsegmentable(seq, vocab)
    flat_list = flat.tolist()
    off = offsets.tolist()
    return [_cut(seq, flat_list[off[i] : off[i + 1]]) for i in range(n_samples)], log_z


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
    if (n_samples == 1 and method == "sample" and edge_order == "longest-first" and type(text) is str
            and vocab.level == "char" and text):
        # the per-line hot path, as in sample_segmentation
        alpha = float(alpha)
        if 0.0 <= alpha < _INF:
            seed = rng.bit_generator.random_raw() if type(rng) is _GENERATOR else _seed_word(rng)
            status, _, joined, log_z = vocab.fast.segment_str(text, alpha, _SAMPLE, seed, 1)
            if status >= 0:
                return [joined.split(_SEPARATORS[status])], log_z
            return _one_pass(text, vocab, alpha, _SAMPLE, seed, 1)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if edge_order not in _ORDER_CODE:
        raise ValueError(f"edge_order must be one of {tuple(_ORDER_CODE)}, not {edge_order!r}")
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    alpha = _check_alpha(alpha)
    seq = _as_text(text, vocab)
    if alpha < 0:
        method = "viterbi"
    if not seq:
        return [[] for _ in range(n_samples)], 0.0
    # Viterbi draws nothing: leave the caller's generator untouched
    seed = 0 if method == "viterbi" else _seed_word(rng)
    if method != "ffbs" and (edge_order == "longest-first" or method == "viterbi"):
        samples, log_z = _one_pass(seq, vocab, alpha, _ONE_PASS[method], seed, n_samples)
        if method == "legacy-sample":
            # its running scores are those of one sampled path, not the partition function
            log_z = float(_forward(seq, vocab, alpha)[len(encode_units(seq, vocab.level))])
        return samples, log_z
    # FFBS and the by-end edge orders: the hash-table tries (independent reference kernels)
    units = encode_units(seq, vocab.level)
    state = datrie.seed_state(np.uint64(seed))
    t = vocab.trie
    r = vocab.reverse_trie
    if method == "ffbs":
        logz, flat, offsets = kernels.ffbs(
            units, r.keys, r.vals, r.node_lp, t.keys, t.vals, t.node_lp, t.radix, vocab.unk, alpha, state,
            n_samples,
        )
    else:
        logz, flat, offsets = kernels.sample_many(
            units, r.keys, r.vals, r.node_lp, t.keys, t.vals, t.node_lp, t.radix, vocab.unk, alpha, state,
            n_samples, _HASH_CODE[method], _ORDER_CODE[edge_order],
        )
    n = len(units)
    if not np.isfinite(logz[n]):
        raise SegmentationError(seq, _stuck_at(logz))
    if method == "legacy-sample":
        logz = _forward(seq, vocab, alpha)
    flat_list = flat.tolist()
    off = offsets.tolist()
    samples = [_cut(seq, flat_list[off[i] : off[i + 1]]) for i in range(n_samples)]
    return samples, float(logz[n])


def sample_segmentation(
    text: str | bytes, vocab: Vocab, alpha: float, rng: RngLike = None, *, method: Method = "sample"
) -> list:
    """One segmentation drawn with P proportional to exp(alpha * score) (Viterbi for alpha < 0).

    The fast path for training on random segmentations: tokens are ``str`` for a character-level vocabulary
    and ``bytes`` for a byte-level one, and always join back to the text. ``method`` picks the sampler as in
    ``sample`` ("legacy-sample" draws from the original, biased Viterbi Sampling, for comparisons).
    """
    # the per-line hot path: checks ordered so that the common calls pay for the fewest of them
    alpha = float(alpha)
    if method == "sample" and 0.0 <= alpha < _INF:
        code = _SAMPLE
        seed = rng.bit_generator.random_raw() if type(rng) is _GENERATOR else _seed_word(rng)
    elif -_INF < alpha < 0.0 and method in _METHOD_SET:
        code = _VITERBI
        seed = 0  # Viterbi draws nothing: the caller's generator is left untouched
    else:
        return _sample_segmentation_checked(text, vocab, alpha, rng, method)
    if type(text) is str and vocab.level == "char":
        if not text:
            return []
        status, _, joined, _ = vocab.fast.segment_str(text, alpha, code, seed, 1)
        if status >= 0:
            return joined.split(_SEPARATORS[status])
        if status == datrie.UNSEGMENTABLE:
            raise _unsegmentable(text, vocab)
    seq = _as_text(text, vocab)
    return _one_pass(seq, vocab, alpha, code, seed, 1)[0][0] if seq else []


def _sample_segmentation_checked(text: str | bytes, vocab: Vocab, alpha: float, rng: RngLike, method: str) -> list:
    """``sample_segmentation`` for the other methods, and its errors."""
    alpha = _check_alpha(alpha)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "ffbs":
        return sample(text, vocab, alpha, rng, method="ffbs")[0][0]
    seq = _as_text(text, vocab)
    if not seq:
        return []
    code = _ONE_PASS[method]
    return _one_pass(seq, vocab, alpha, code, 0 if code == _VITERBI else _seed_word(rng), 1)[0][0]


def viterbi(text: str | bytes, vocab: Vocab) -> tuple[list, float]:
    """The best segmentation and its score (ties: the edge with the smallest start wins)."""
    if type(text) is str and vocab.level == "char" and text:
        status, _, joined, best = vocab.fast.segment_str(text, -1.0, _VITERBI, 0, 1)
        if status >= 0:
            return joined.split(_SEPARATORS[status]), best
    samples, best = sample(text, vocab, -1.0, method="viterbi")
    return samples[0], best


def log_partition(text: str | bytes, vocab: Vocab, alpha: float) -> float:
    """log sum over segmentations of exp(alpha * score); -inf when there is none."""
    return float(_forward(_as_text(text, vocab), vocab, float(alpha))[-1])


def count_segmentations(text: str | bytes, vocab: Vocab) -> float:
    """How many segmentations the text has (exp of the alpha = 0 partition; a float, it can be huge)."""
    return math.exp(log_partition(text, vocab, 0.0))


def boundary_marginals(text: str | bytes, vocab: Vocab, alpha: float) -> np.ndarray:
    """P(a token boundary at position i) for i = 0..n under P_alpha (1 at both ends).

    exp(logZ_fwd(i) + logZ_bwd(i) - logZ(n)); for alpha < 0, the indicator of the Viterbi boundaries.
    """
    seq = _as_text(text, vocab)
    alpha = _check_alpha(alpha)
    ids = _ids(seq, vocab)
    n = len(ids)
    if alpha < 0:
        tokens, _ = viterbi(seq, vocab)
        out = np.zeros(n + 1)
        out[np.cumsum([0] + [len(t) for t in tokens])] = 1.0
        return out
    f = vocab.fast
    fwd = datrie.forward_pass(ids, f.da, f.lp, f.unk, alpha)
    if not np.isfinite(fwd[n]):
        raise SegmentationError(seq, _stuck_at(fwd))
    bwd = datrie.backward_pass(ids, f.da, f.lp, f.unk, alpha)
    with np.errstate(invalid="ignore"):
        return np.exp(fwd + bwd - fwd[n])


def boundary_counts(
    text: str | bytes,
    vocab: Vocab,
    alpha: float,
    rng: RngLike = None,
    *,
    n_samples: int,
    method: Method = "sample",
) -> np.ndarray:
    """How many of ``n_samples`` draws put a token boundary at each position 0..n (the empirical side of
    ``boundary_marginals``); the draws are those ``sample`` makes with the same arguments and edge order."""
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    alpha = _check_alpha(alpha)
    seq = _as_text(text, vocab)
    units = encode_units(seq, vocab.level)
    n = len(units)
    if alpha < 0:
        method = "viterbi"
    if method == "ffbs" or n == 0:
        out = np.zeros(n + 1, dtype=np.int64)
        for tokens in sample(seq, vocab, alpha, rng, n_samples=n_samples, method=method)[0]:
            out[np.cumsum([0] + [len(t) for t in tokens])] += 1
        return out
    seed = 0 if method == "viterbi" else _seed_word(rng)
    log_z, flat, _ = vocab.fast.segment_units(units, alpha, _ONE_PASS[method], seed, n_samples)
    if log_z == -math.inf:
        raise _unsegmentable(seq, vocab)
    return np.bincount(flat, minlength=n + 1)


def top_segmentations(text: str | bytes, vocab: Vocab, k: int) -> list[tuple[list, float]]:
    """The ``k`` segmentations of highest score, best first, with their scores (fewer if the text has fewer).

    For every alpha > 0 this is also the order of exact probability, P_alpha = exp(alpha * score) / Z_alpha
    (ties: the segmentation whose first differing token starts earlier comes first).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    seq = _as_text(text, vocab)
    f = vocab.fast
    scores, flat, offsets = datrie.kbest(_ids(seq, vocab), f.da, f.lp, f.unk, int(k))
    if len(scores) == 0:
        raise _unsegmentable(seq, vocab)
    flat_list = flat.tolist()
    off = offsets.tolist()
    return [(_cut(seq, flat_list[off[i] : off[i + 1]]), float(scores[i])) for i in range(len(scores))]


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
