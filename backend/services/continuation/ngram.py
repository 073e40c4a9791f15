"""A token trigram model with interpolated Kneser-Ney smoothing: the instant second language model.

The continuation problem is a property of the token-level training distribution, so even a trigram shows it:
after the token ``白云`` it has (almost) never seen ``机场`` follow, because that text became ``白云机场``.
Building it from a million tokens takes seconds, so it is rebuilt rather than shipped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np


class NGramLM:
    """Interpolated Kneser-Ney trigram over token ids; ``next_token_logprobs`` returns a full log-distribution."""

    context_size = 2  # the next-token distribution depends on the last two tokens only (the exact reference uses it)

    def __init__(self, vocab_size: int, bos_id: int, discount: float = 0.75):
        self.vocab_size = vocab_size
        self.bos_id = bos_id
        self.discount = discount
        self.forward_passes = 0
        self._uni = np.full(vocab_size, 1.0 / vocab_size)
        self._bi: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        self._tri: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, float]] = {}

    @classmethod
    def train(cls, sequences: Iterable[Sequence[int]], vocab_size: int, bos_id: int, discount: float = 0.75) -> NGramLM:
        """Count trigrams of ``[BOS, BOS] + seq`` for every sequence (each a training sentence incl. EOS)."""
        lm = cls(vocab_size, bos_id, discount)
        tri: Counter = Counter()
        for seq in sequences:
            s = [bos_id, bos_id, *seq]
            tri.update(zip(s, s[1:], s[2:], strict=False))
        # Kneser-Ney lower orders use continuation counts: in how many distinct contexts a word follows.
        bi_cont: Counter = Counter()
        uni_cont = np.zeros(vocab_size)
        tri_ctx: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
        for (u, v, w), c in tri.items():
            tri_ctx[(u, v)][w] = c
            bi_cont[(v, w)] += 1
        bi_ctx: dict[int, dict[int, int]] = defaultdict(dict)
        for (v, w), c in bi_cont.items():
            bi_ctx[v][w] = c
            uni_cont[w] += 1
        # Unigram: continuation counts mixed with a little uniform mass so that every token has p > 0.
        total = uni_cont.sum()
        lm._uni = 0.99 * uni_cont / max(total, 1.0) + 0.01 / vocab_size if total else lm._uni
        lm._bi = {v: lm._pack(d) for v, d in bi_ctx.items()}
        lm._tri = {k: lm._pack(d) for k, d in tri_ctx.items()}
        return lm

    def _pack(self, d: dict[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
        """(next ids, discounted probabilities, backoff weight) of one context."""
        ids = np.fromiter(d.keys(), dtype=np.int64, count=len(d))
        counts = np.fromiter(d.values(), dtype=np.float64, count=len(d))
        order = np.argsort(ids)  # sorted, so that ``token_probs`` can look tokens up by binary search
        ids, counts = ids[order], counts[order]
        total = counts.sum()
        return ids, np.maximum(counts - self.discount, 0.0) / total, self.discount * len(d) / total

    def next_token_probs(self, ids: Sequence[int]) -> np.ndarray:
        """p(. | last two tokens of ``[BOS, BOS] + ids``) as a vector summing to 1."""
        self.forward_passes += 1
        ctx = [self.bos_id, self.bos_id, *ids][-2:]
        p = self._uni.copy()
        for table, key in ((self._bi, ctx[1]), (self._tri, (ctx[0], ctx[1]))):
            if key in table:
                nxt, disc, backoff = table[key]
                p *= backoff
                p[nxt] += disc
        return p

    def token_probs(self, ids: Sequence[int], tokens: np.ndarray) -> np.ndarray:
        """p(t | last two tokens of ``[BOS, BOS] + ids``) for the given tokens only (no forward pass counted)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        ctx = [self.bos_id, self.bos_id, *ids][-2:]
        p = self._uni[tokens]
        for table, key in ((self._bi, ctx[1]), (self._tri, (ctx[0], ctx[1]))):
            if key in table:
                nxt, disc, backoff = table[key]
                p = p * backoff
                pos = np.minimum(np.searchsorted(nxt, tokens), len(nxt) - 1)
                hit = nxt[pos] == tokens
                p[hit] += disc[pos[hit]]
        return p

    def next_token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        return np.log(self.next_token_probs(ids))

    def path_logprobs(self, ids: Sequence[int], path: Sequence[int]) -> np.ndarray:
        """Row i: log p(. | ids + path[:i]) (scoring a whole token path)."""
        return np.stack([self.next_token_logprobs([*ids, *path[:i]]) for i in range(len(path))])
