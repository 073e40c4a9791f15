"""Importance sampling of P(gold | prompt text) for a model whose context is too long for the exact DP (the GPT).

The target is the same as ``exact``'s: P(y) = P(the generated text starts with y), summed over every token
sequence, and P(gold | prompt) = P(prompt + gold) / P(prompt).

Decomposition. Every minimal token sequence that covers y has a last boundary j < |y|: a segmentation s of y[:j]
(ordinary tokens) followed by one token f whose text starts with y[j:]. So, with F(s, j) = sum_{f in ext(y[j:])}
p(f | s), the probability of the final token summed exactly from one next-token distribution,

    P(y) = sum_{j, s} p(s) F(s, j).

Estimator. Draw (j_i, s_i), i = 1..N, from a proposal q and average the weights w_i = p(s_i) F(s_i, j_i) / q(j_i, s_i):
P^(y) = mean(w) is unbiased, with standard error sd(w) / sqrt(N); on the log scale se(log P^) = sd(w) /
(sqrt(N) mean(w)) (delta method). The conditional is the difference of two independent estimates,

    log P^(gold | prompt) = log P^(prompt + gold) - log P^(prompt),  se = sqrt(se_1^2 + se_2^2),

each from the lattice of its own text (only the lattice of prompt + gold knows which tokens cross the prompt's end;
sharing the prompt's samples between both, a ratio estimator, missed those tokens and was biased in tests). The
log of an unbiased estimate is biased low by about se^2 / 2; ``ess`` = (sum w)^2 / sum w^2 flags weight
degeneracy. How well the stated standard error covers the truth is measured against the exact n-gram answer by
``scripts/eval_continuation.py`` (a heavy-tailed weight distribution can make it too small).

Proposal. A unigram lattice over the tokenizer's ordinary pieces (scores: the SentencePiece log-probabilities;
byte tokens get the unknown-character score min - 10): q(j, s) proportional to exp(alpha * score(s)) * G_j, with
G_j the alpha-weighted mass of the tokens that can finish the text from j, sampled exactly by forward filtering
and backward sampling. It is an equal mixture over ``alphas`` (default 0.1, 1 and 4: diffuse enough for a model
trained on random segmentations, peaked enough for a canonical one); every token sequence that spells the text
has positive probability under it, so the estimator is unbiased for any model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backend.services.continuation.tokenizer import PieceIndex, Tokenizer


@dataclass
class Estimate:
    log_prob: float  # log P^(gold | prompt)
    se: float  # its standard error (delta method, both estimates)
    log_prompt: float  # log P^(prompt)
    se_prompt: float
    ess: float  # the smaller effective sample size of the two estimates
    n: int  # samples per estimate


class _Tables:
    """Forward sums of one text for every proposal alpha."""

    def __init__(self, text: bytes, edges: list[list[tuple[int, int]]], finals: dict[int, list[int]],
                 log_z: np.ndarray, log_g: dict[int, np.ndarray], log_total: np.ndarray):
        self.text, self.edges, self.finals = text, edges, finals
        self.log_z, self.log_g, self.log_total = log_z, log_g, log_total
        # no token sequence spells the text (impossible with byte tokens in the vocabulary)
        self.empty = not finals or not np.isfinite(log_total).any()


class LatticeProposal:
    """Mixture over ``alphas`` of unigram-lattice distributions over (last boundary j, segmentation of text[:j])."""

    def __init__(self, pieces: Sequence[bytes], scores: Sequence[float], alphas: Sequence[float] = (0.1, 1.0, 4.0)):
        self.pieces = list(pieces)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.alphas = np.asarray(alphas, dtype=np.float64)
        self.index = PieceIndex(self.pieces, exclude=())
        self.maxlen = max(len(b) for b in self.pieces)

    @classmethod
    def for_tokenizer(cls, tok: Tokenizer, alphas: Sequence[float] = (0.1, 1.0, 4.0)) -> LatticeProposal:
        pieces = [b"" if i in tok.special_ids else b for i, b in enumerate(tok.piece_bytes)]
        raw = np.array([tok.sp.get_score(i) for i in range(tok.vocab_size)], dtype=np.float64)
        ordinary = [i for i in range(tok.vocab_size) if pieces[i] and not tok.is_byte_token[i]]
        floor = float(raw[ordinary].min()) - 10.0  # SentencePiece's score of an unknown character
        scores = np.where(np.array(tok.is_byte_token), floor, raw)
        return cls(pieces, scores, alphas)

    def tables(self, text: bytes) -> _Tables:
        """Lattice of ``text``: the segmentations of text[:j] for every last boundary j < len(text)."""
        n = len(text)
        edges: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # edges[e] = [(start, token)]
        for i in range(n - 1):
            chunk = text[i : i + self.maxlen]
            for t in self.index.proper_prefixes(chunk) + self.index.exact(chunk):
                e = i + len(self.pieces[t])
                if e <= n - 1:
                    edges[e].append((i, t))
        finals = {}
        for j in range(max(0, n - self.maxlen), n):
            toks = self.index.extensions(text[j:])
            if toks:
                finals[j] = toks
        k = len(self.alphas)
        log_z = np.full((k, max(n, 1)), -np.inf)
        log_z[:, 0] = 0.0
        for e in range(1, n):
            if edges[e]:
                starts = np.array([i for i, _ in edges[e]])
                sc = self.scores[[t for _, t in edges[e]]]
                log_z[:, e] = np.logaddexp.reduce(log_z[:, starts] + self.alphas[:, None] * sc[None, :], axis=1)
        log_g = {j: np.logaddexp.reduce(self.alphas[:, None] * self.scores[toks][None, :], axis=1)
                 for j, toks in finals.items()}
        js = sorted(finals)
        if js:
            log_total = np.logaddexp.reduce(np.stack([log_z[:, j] + log_g[j] for j in js], axis=1), axis=1)
        else:
            log_total = np.full(k, -np.inf)
        return _Tables(text, edges, finals, log_z, log_g, log_total)

    def sample(self, tab: _Tables, rng: np.random.Generator) -> tuple[int, list[int]]:
        """(j, tokens of a segmentation of text[:j]) from one mixture component chosen at random."""
        if tab.empty:
            raise ValueError("nothing to sample: no token sequence spells this text")
        comp = int(rng.integers(len(self.alphas)))
        js = sorted(tab.finals)
        w = np.array([tab.log_z[comp, j] + tab.log_g[j][comp] for j in js])
        j = js[_draw(w, rng)]
        tokens: list[int] = []
        e = j
        while e > 0:
            cands = tab.edges[e]
            w = np.array([tab.log_z[comp, i] + self.alphas[comp] * self.scores[t] for i, t in cands])
            i, t = cands[_draw(w, rng)]
            tokens.append(t)
            e = i
        return j, tokens[::-1]

    def log_q(self, tab: _Tables, j: int, tokens: Sequence[int]) -> float:
        """log of the mixture probability of (j, tokens)."""
        score = float(self.scores[list(tokens)].sum()) if tokens else 0.0
        per = self.alphas * score + tab.log_g[j] - tab.log_total
        return float(np.logaddexp.reduce(per) - math.log(len(self.alphas)))


def _draw(log_w: np.ndarray, rng: np.random.Generator) -> int:
    p = np.exp(log_w - log_w.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def _scores(lm, seqs: list[list[int]], at: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sequence: log p of each token, and the next-token log-distributions after the prefixes in ``at``."""
    if hasattr(lm, "score_sequences"):
        return lm.score_sequences(seqs, at)
    out = []
    for seq, positions in zip(seqs, at, strict=True):
        rows = lm.path_logprobs([], seq) if seq else np.zeros((0, lm.vocab_size))
        token_lp = rows[np.arange(len(seq)), seq] if seq else np.zeros(0)
        last = None
        dists = []
        for k in positions:
            if k < len(seq):
                dists.append(rows[k])
            else:
                last = lm.next_token_logprobs(seq) if last is None else last
                dists.append(last)
        out.append((token_lp, np.stack(dists)))
    return out


def _logsumexp_at(dist: np.ndarray, tokens: list[int]) -> float:
    return float(np.logaddexp.reduce(dist[tokens]))


def prefix_estimate(
    lm, proposal: LatticeProposal, text: bytes, n_samples: int, rng: np.random.Generator, batch: int = 32,
) -> tuple[float, float, float]:
    """(log P^(text), its standard error, effective sample size): P(text) = P(generation starts with text)."""
    tab = proposal.tables(text)
    draws = [proposal.sample(tab, rng) for _ in range(n_samples)]
    log_w = np.empty(n_samples)
    for start in range(0, n_samples, batch):
        chunk = draws[start : start + batch]
        scored = _scores(lm, [s for _, s in chunk], [[len(s)] for _, s in chunk])
        for k, ((j, s), (token_lp, dists)) in enumerate(zip(chunk, scored, strict=True)):
            log_w[start + k] = float(token_lp.sum()) + _logsumexp_at(dists[0], tab.finals[j]) - proposal.log_q(tab, j, s)
    w = np.exp(log_w - log_w.max())
    n = n_samples
    se = float(np.std(w, ddof=1) / math.sqrt(n) / w.mean()) if n > 1 else math.inf
    return float(np.logaddexp.reduce(log_w) - math.log(n)), se, float(w.sum() ** 2 / (w**2).sum())


def conditional_estimate(
    lm, proposal: LatticeProposal, prompt: bytes, gold: bytes, n_samples: int, rng: np.random.Generator,
    batch: int = 32,
) -> Estimate:
    """Importance-sampling estimate of log P(gold | prompt) (texts as bytes) with its standard error.

    Two independent estimates, log P^(prompt + gold) - log P^(prompt), each from its own lattice (the lattice of
    prompt + gold knows which tokens cross the prompt's end, that of the prompt alone cannot)."""
    if not prompt or not gold:
        raise ValueError("prompt and gold must be non-empty")
    log_x, se_x, ess_x = prefix_estimate(lm, proposal, prompt, n_samples, rng, batch)
    log_xg, se_xg, ess_xg = prefix_estimate(lm, proposal, prompt + gold, n_samples, rng, batch)
    return Estimate(
        log_prob=log_xg - log_x,
        se=math.sqrt(se_x**2 + se_xg**2),
        log_prompt=log_x,
        se_prompt=se_x,
        ess=min(ess_x, ess_xg),
        n=n_samples,
    )
