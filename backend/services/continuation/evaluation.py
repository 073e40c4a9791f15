"""Evaluation of the continuation methods on held-out sentences cut at three kinds of places.

- (a) ``inside``: strictly inside a token of the sentence's canonical tokenization, not at a word boundary
  (the partial-token set);
- (b) ``word``: at a word boundary (English: before a space; Chinese: the corpus's gold segmentation) that
  falls inside a token, e.g. "... of" + " the ..." when " of the" is one piece;
- (c) ``token``: exactly at a token boundary (the control: a fix must not hurt here).

Per (system, cut) it records: exact match of the first m characters of the greedy continuation; the
log-likelihood of the gold continuation per character under the method (``decoding.score_gold``: one token path,
the method's renormalised steps); the next character's rank and top-1 accuracy under the method's own
next-character distribution (``decoding.next_char_distribution``: every method ranks the same candidates, the
characters); forward passes spent generating m characters; and the first-step candidate-set size.

References per model and cut (not per method): for the n-gram, the exact P(gold | prompt text) and the exact
next-character distribution (``exact.PrefixDP``); for the GPT, the importance-sampling estimate of
P(gold | prompt text) with its standard error (``marginal``). Tables with paired statistics (``backend.stats``)
are built from these records by ``scripts/eval_continuation.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from backend.services.continuation.corpus import Sentence
from backend.services.continuation.decoding import (
    LanguageModel,
    char_rank,
    continue_prompt,
    next_char_distribution,
    score_gold,
)
from backend.services.continuation.exact import END, PARTIAL, PrefixDP, conditional_logprob, greedy_chars
from backend.services.continuation.tokenizer import Tokenizer

KINDS = {"inside": "(a) inside a token", "word": "(b) word boundary inside a token", "token": "(c) token boundary"}
LANGS = {"en": "English", "zh": "Chinese"}


@dataclass
class Cut:
    prompt: str
    gold: str
    kind: str
    lang: str


def token_boundaries(tok: Tokenizer, text: str) -> set[int]:
    """Character offsets between the canonical tokens of ``text`` (byte tokens inside a character excluded)."""
    out, pos = {0}, 0
    for i in tok.encode(text):
        pos += len(tok.piece_bytes[i])
        out.add(pos)
    data = text.encode("utf-8")
    # byte offsets -> character offsets (only offsets on a character boundary count)
    char_at = {len(text[:j].encode("utf-8")): j for j in range(len(text) + 1)}
    return {char_at[b] for b in out if b in char_at and b <= len(data)}


def make_cuts(tok: Tokenizer, sentences: Sequence[Sentence], m: int, seed: int = 0, min_prefix: int = 4) -> list[Cut]:
    """At most one cut of each kind per sentence, positions drawn with a seeded RNG."""
    rng = random.Random(seed)
    cuts = []
    for s in sentences:
        bounds = token_boundaries(tok, s.text)
        words = set(s.word_ends)
        usable = range(min_prefix, len(s.text) - m + 1)
        groups = {
            "inside": [p for p in usable if p not in bounds and p not in words],
            "word": [p for p in usable if p not in bounds and p in words],
            "token": [p for p in usable if p in bounds],
        }
        for kind, positions in groups.items():
            if positions:
                p = rng.choice(positions)
                cuts.append(Cut(s.text[:p], s.text[p:], kind, s.lang))
    return cuts


@dataclass
class System:
    name: str
    lm: LanguageModel
    method: str  # decoding method used with this model
    multi_rule: str = "original"  # backoff-multi's later-step candidates (decoding.Constraint)


@dataclass
class Records:
    """Per-cut outcomes of one system (lists aligned with the cuts)."""

    exact: list[bool]  # first m new characters equal the gold
    ll: list[float]  # log-likelihood of the gold continuation per character (-inf: unreachable)
    top1: list[bool]  # the gold next character is the method's most likely next character
    rank: list[int]  # rank of the gold next character among the characters
    passes: list[int]  # forward passes to produce m characters (greedy)
    cands: list[int]  # first-step candidate-set size (0 when unconstrained)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_system(
    tok: Tokenizer,
    system: System,
    cuts: Sequence[Cut],
    m: int,
    gold_chars: int = 20,
    progress: Callable[[int], None] | None = None,
) -> Records:
    rec = Records([], [], [], [], [], [])
    for c in cuts:
        out = continue_prompt(system.lm, tok, c.prompt, system.method, max_new_tokens=2 * m, temperature=0.0,
                              min_chars=m, multi_rule=system.multi_rule)
        rec.exact.append(bool(out.consistent and out.continuation[:m] == c.gold[:m]))
        rec.passes.append(out.forward_passes)
        rec.cands.append(out.extra["candidate_set"] if out.constrained_steps else 0)
        gold = c.gold[:gold_chars]
        sc = score_gold(system.lm, tok, c.prompt, gold, system.method, multi_rule=system.multi_rule)
        rec.ll.append(sc.logprob / max(1, sc.chars) if np.isfinite(sc.logprob) else -math.inf)
        dist = next_char_distribution(system.lm, tok, c.prompt, system.method, multi_rule=system.multi_rule)
        r = char_rank(dist, c.gold[0])
        rec.rank.append(r)
        rec.top1.append(r == 1)
        if progress:
            progress(1)
    return rec


def ordinary_pieces(tok: Tokenizer) -> list[bytes]:
    """Token bytes with special tokens spelling nothing (the exact reference counts ordinary text only)."""
    return [b"" if i in tok.special_ids else b for i, b in enumerate(tok.piece_bytes)]


def exact_references(
    tok: Tokenizer, lm, cuts: Sequence[Cut], m: int, gold_chars: int = 20,
    progress: Callable[[int], None] | None = None, greedy: bool = True,
) -> dict[str, list]:
    """For a short-context LM (the n-gram): per cut the exact log P(gold | prompt text) per character, the exact
    next-character rank/top-1 of the gold, and (``greedy``) whether exact character-level greedy decoding gets the
    first m characters right (False everywhere when not computed)."""
    dp = PrefixDP(lm, ordinary_pieces(tok), eos_id=tok.eos_id)
    out: dict[str, list] = {"ll": [], "rank": [], "top1": [], "exact": []}
    for c in cuts:
        gold = c.gold[:gold_chars]
        dp.reset(c.prompt.encode())
        dist = dp.next_char_distribution()
        dist.pop(PARTIAL, None)
        r = char_rank(dist, c.gold[0])
        out["rank"].append(r)
        out["top1"].append(r == 1)
        _, cond = conditional_logprob(dp, c.prompt.encode(), gold.encode())
        out["ll"].append(cond / max(1, len(gold)))
        out["exact"].append(greedy and greedy_chars(dp, c.prompt.encode(), m) == c.gold[:m])
        if progress:
            progress(1)
    return out


__all__ = ["END", "KINDS", "LANGS", "Cut", "Records", "System", "evaluate_system", "exact_references",
           "make_cuts", "ordinary_pieces", "token_boundaries"]
