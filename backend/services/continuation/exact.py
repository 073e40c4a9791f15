"""The exact answer for a model with a short context (the n-gram): P(gold | prompt text), marginalised over every
token sequence that spells the text, by dynamic programming.

A language model over tokens generates text. For a byte string y,

    P(y) = P(the generated text starts with y)
         = sum over minimal token sequences t_1..t_m whose text starts with y of p(t_1..t_m),

where "minimal" means that t_1..t_{m-1} spell a proper prefix of y (the last token may run past the end of y).
These sequences are disjoint events and cover every generation that starts with y, so

    P(gold | prompt) = P(prompt + gold) / P(prompt)

is the probability that the model continues the *text* of the prompt with the gold text, whatever tokens either is
spelled with: no tokenization of the prompt is assumed. This is the quantity every decoding method approximates.
Only ordinary tokens are counted (special tokens spell no text; a generation that emits one inside the text is not
counted); EOS ends the text.

The DP runs over byte positions i of y with states = the last ``lm.context_size`` tokens (the n-gram's context):
``alpha[i][state]`` = probability of the token sequences that spell exactly y[:i] and end in ``state``. Extending y
only adds positions, so greedy character-by-character decoding and the next-character distribution are cheap.
Masses are kept with a log scale per position (sentences reach e^-600).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from backend.services.continuation.tokenizer import PieceIndex

END = "</s>"  # the next-character bucket of "the text ends here" (EOS)
PARTIAL = "\ufffd"  # bucket of tokens that stop inside a UTF-8 character (byte-fallback tokens)


class ShortContextLM(Protocol):
    context_size: int  # the next-token distribution depends on the last ``context_size`` tokens only
    vocab_size: int

    def token_probs(self, ids: Sequence[int], tokens: np.ndarray) -> np.ndarray:
        """p(t | ids) for the given tokens t."""

    def next_token_probs(self, ids: Sequence[int]) -> np.ndarray:
        """p(. | ids) over the whole vocabulary."""


def first_char(b: bytes) -> str:
    """The first character of the UTF-8 bytes ``b``; ``PARTIAL`` when ``b`` stops inside it or is not UTF-8."""
    if not b:
        return PARTIAL
    lead = b[0]
    need = 1 if lead < 0x80 else 2 if lead >= 0xC0 and lead < 0xE0 else 3 if lead >= 0xE0 and lead < 0xF0 else 4
    if lead >= 0x80 and lead < 0xC0 or len(b) < need:
        return PARTIAL
    try:
        return b[:need].decode("utf-8")
    except UnicodeDecodeError:
        return PARTIAL


class PrefixDP:
    """Exact prefix probabilities P(y) of a short-context LM over the tokens ``pieces`` (bytes; b"" = never text).

    ``eos_id``: the token that ends a text (its probability after y is the ``END`` bucket of the next character).
    """

    def __init__(self, lm: ShortContextLM, pieces: Sequence[bytes], eos_id: int | None = None):
        self.lm = lm
        self.pieces = list(pieces)
        self.eos_id = eos_id
        self.index = PieceIndex(self.pieces, exclude=())
        self.maxlen = max(len(b) for b in self.pieces)
        self.k = lm.context_size
        # the first character of every token (for the next-character distribution after a state)
        keys = [first_char(b) if b else None for b in self.pieces]
        self._char_keys = sorted({c for c in keys if c is not None})
        code = {c: i for i, c in enumerate(self._char_keys)}
        self._token_char = np.array([code[c] if c is not None else -1 for c in keys])
        self.reset(b"")

    # ------------------------------------------------------------------------------------------ forward
    def reset(self, y: bytes) -> None:
        """Start over with the text ``y``."""
        self.y = b""
        self.scale = [0.0]  # alpha[i] holds masses / exp(scale[i])
        self.alpha: list[dict[tuple, float]] = [{(): 1.0}]
        self.extend(y)

    def extend(self, more: bytes) -> None:
        """Append bytes to the text, computing the DP for the new positions only."""
        for byte in more:
            self.y += bytes([byte])
            self._pull(len(self.y))

    def _pull(self, j: int) -> None:
        contributions: list[tuple[float, tuple, float]] = []  # (scale of the source, new state, relative mass)
        for length in range(1, min(self.maxlen, j) + 1):
            i = j - length
            tokens = self.index.exact(self.y[i:j])
            if not tokens or not self.alpha[i]:
                continue
            toks = np.asarray(tokens)
            for state, mass in self.alpha[i].items():
                probs = self.lm.token_probs(list(state), toks)
                for t, p in zip(tokens, probs.tolist(), strict=True):
                    if p > 0:
                        contributions.append((self.scale[i], (*state, t)[-self.k :] if self.k else (), mass * p))
        new: dict[tuple, float] = {}
        if not contributions:
            self.alpha.append(new)
            self.scale.append(-math.inf)
            return
        top = max(c[0] for c in contributions)
        for sc, state, m in contributions:
            new[state] = new.get(state, 0.0) + m * math.exp(sc - top)
        total = sum(new.values())
        self.alpha.append({s: v / total for s, v in new.items()})
        self.scale.append(top + math.log(total))

    # ------------------------------------------------------------------------------------------ queries
    def _overrun_terms(self) -> list[tuple[int, tuple, float, list[int], np.ndarray]]:
        """(i, state, relative mass, tokens, their probs) for tokens from position i that run past the end."""
        n = len(self.y)
        out = []
        for i in range(max(0, n - self.maxlen + 1), n):
            if not self.alpha[i]:
                continue
            rest = self.y[i:]
            tokens = [t for t in self.index.extensions(rest) if len(self.pieces[t]) > len(rest)]
            if not tokens:
                continue
            toks = np.asarray(tokens)
            for state, mass in self.alpha[i].items():
                out.append((i, state, mass, tokens, self.lm.token_probs(list(state), toks)))
        return out

    def log_prob(self) -> float:
        """log P(generated text starts with y) for the current y."""
        n = len(self.y)
        terms = []
        if self.alpha[n]:
            terms.append(self.scale[n] + math.log(sum(self.alpha[n].values())))
        for i, _, mass, _, probs in self._overrun_terms():
            s = float(probs.sum()) * mass
            if s > 0:
                terms.append(self.scale[i] + math.log(s))
        return float(np.logaddexp.reduce(terms)) if terms else -math.inf

    def next_char_distribution(self) -> dict[str, float]:
        """P(next character = c | y) for every character c a token can produce next (``END``: the text ends;
        ``PARTIAL``: a byte token that stops inside a character). Sums to 1 up to special tokens."""
        n = len(self.y)
        parts: list[tuple[float, dict[str, float]]] = []  # (log scale, relative masses by character)
        if self.alpha[n]:
            acc = np.zeros(len(self._char_keys))
            end = 0.0
            valid = self._token_char >= 0
            for state, mass in self.alpha[n].items():
                p = self.lm.next_token_probs(list(state))
                acc += mass * np.bincount(self._token_char[valid], weights=p[valid], minlength=len(self._char_keys))
                if self.eos_id is not None:
                    end += mass * float(p[self.eos_id])
            d = {c: float(v) for c, v in zip(self._char_keys, acc, strict=True) if v > 0}
            if end > 0:
                d[END] = end
            parts.append((self.scale[n], d))
        for i, _, mass, tokens, probs in self._overrun_terms():
            d: dict[str, float] = {}
            skip = n - i
            for t, p in zip(tokens, probs.tolist(), strict=True):
                c = first_char(self.pieces[t][skip:])
                d[c] = d.get(c, 0.0) + mass * p
            parts.append((self.scale[i], d))
        if not parts:
            return {}
        top = max(sc for sc, _ in parts)
        out: dict[str, float] = {}
        for sc, d in parts:
            f = math.exp(sc - top)
            for c, v in d.items():
                out[c] = out.get(c, 0.0) + v * f
        total = math.exp(self.log_prob() - top)
        return {c: v / total for c, v in out.items()}


def conditional_logprob(dp: PrefixDP, prompt: bytes, gold: bytes) -> tuple[float, float]:
    """(log P(prompt), log P(gold | prompt)) exactly; leaves ``dp`` at the text prompt + gold."""
    dp.reset(prompt)
    base = dp.log_prob()
    dp.extend(gold)
    return base, dp.log_prob() - base


def greedy_chars(dp: PrefixDP, prompt: bytes, m: int) -> str:
    """The m most likely next characters, one at a time (exact character-level greedy decoding)."""
    dp.reset(prompt)
    out = []
    for _ in range(m):
        dist = {c: p for c, p in dp.next_char_distribution().items() if c != PARTIAL}
        if not dist:
            break
        c = max(sorted(dist), key=lambda k: dist[k])
        if c == END:
            break
        out.append(c)
        dp.extend(c.encode("utf-8"))
    return "".join(out)
