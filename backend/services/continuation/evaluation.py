"""Evaluation of the continuation methods on held-out sentences cut at three kinds of places.

- (a) ``inside``: strictly inside a token of the sentence's canonical tokenization, not at a word boundary
  (the partial-token set);
- (b) ``word``: at a word boundary (English: before a space; Chinese: the corpus's gold segmentation) that
  falls inside a token, e.g. "... of" + " the ..." when " of the" is one piece;
- (c) ``token``: exactly at a token boundary (the control: a fix must not hurt here).

For each (model, method): exact match of the first m characters of the greedy continuation, log-likelihood of
the gold continuation per character (``decoding.score_gold``), the rank of the gold path's first token, forward
passes spent generating m characters, and the size of the first-step candidate set.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backend.services.continuation.corpus import Sentence
from backend.services.continuation.decoding import LanguageModel, continue_prompt, score_gold
from backend.services.continuation.tokenizer import Tokenizer

KINDS = {"inside": "(a) inside a token", "word": "(b) word boundary inside a token", "token": "(c) token boundary"}


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
class Row:
    model: str
    system: str
    kind: str
    n: int
    exact: float  # % of prompts whose first m new characters match the gold
    nats_per_char: float  # mean log-likelihood of the gold continuation per character
    unreachable: int  # gold paths the method cannot produce at all (probability 0)
    median_rank: float
    passes: float  # forward passes to produce m characters (greedy)
    cands: float  # mean first-step candidate-set size (constrained methods)


def evaluate(
    tok: Tokenizer,
    model_name: str,
    systems: Sequence[System],
    cuts: Sequence[Cut],
    m: int,
    gold_chars: int = 20,
    progress: Callable[[int], None] | None = None,
) -> list[Row]:
    rows = []
    for system in systems:
        for kind in KINDS:
            sel = [c for c in cuts if c.kind == kind]
            exact, ll, ranks, passes, cands, unreachable = [], [], [], [], [], 0
            for c in sel:
                out = continue_prompt(system.lm, tok, c.prompt, system.method, max_new_tokens=2 * m, temperature=0.0,
                                      min_chars=m, multi_rule=system.multi_rule)
                exact.append(out.consistent and out.continuation[:m] == c.gold[:m])
                passes.append(out.forward_passes)
                if out.constrained_steps:
                    cands.append(out.extra["candidate_set"])
                gold = c.gold[:gold_chars]
                sc = score_gold(system.lm, tok, c.prompt, gold, system.method, multi_rule=system.multi_rule)
                if np.isfinite(sc.logprob):
                    ll.append(sc.logprob / max(1, sc.chars))
                else:
                    unreachable += 1
                ranks.append(sc.first_rank)
                if progress:
                    progress(1)
            rows.append(Row(
                model=model_name, system=system.name, kind=kind, n=len(sel),
                exact=100.0 * float(np.mean(exact)) if sel else float("nan"),
                nats_per_char=float(np.mean(ll)) if ll else float("nan"),
                unreachable=unreachable,
                median_rank=float(np.median(ranks)) if ranks else float("nan"),
                passes=float(np.mean(passes)) if passes else float("nan"),
                cands=float(np.mean(cands)) if cands else 0.0,
            ))
    return rows


def format_table(rows: Sequence[Row], m: int) -> str:
    head = f"| model | cut | system | n | exact@{m} | nats/char | unreachable | median rank | passes | mean C |"
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    order = list(KINDS)
    for r in sorted(rows, key=lambda r: (r.model, order.index(r.kind))):
        lines.append(
            f"| {r.model} | {KINDS[r.kind]} | {r.system} | {r.n} | {r.exact:.1f}% | {r.nats_per_char:.3f} | "
            f"{r.unreachable} | {r.median_rank:g} | {r.passes:.2f} | {r.cands:.1f} |"
        )
    return "\n".join(lines)
