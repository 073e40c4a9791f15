"""Random segmentations of training text, for the "trained on random segmentations" baseline.

The samplers are the tokenization service's: ``exact`` is ``backend.services.tokenize.core.sample_segmentation``
(exact Subword Regularization, P(seg) proportional to exp(alpha * score)); ``legacy`` is the original, biased
Viterbi Sampling of BytePiece 0.4 (``core.sample(..., method="legacy-sample")``), kept to measure whether its bias
matters downstream. This module only adapts our tokenizer to them: the vocabulary goes in as surface strings with
their Unigram log-probabilities, and the sampled pieces come back as our token ids (a character outside the
vocabulary becomes its byte-fallback tokens, as in ``encode``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from backend.services.continuation.tokenizer import Tokenizer
from backend.services.tokenize.core import sample, sample_segmentation
from backend.services.tokenize.vocab import Vocab

Sampler = Literal["exact", "legacy"]
SAMPLERS: tuple[str, ...] = ("exact", "legacy")


class SegmentationSampler:
    def __init__(self, tok: Tokenizer, alpha: float, sampler: Sampler = "exact"):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
        self.tok = tok
        self.alpha = alpha
        self.sampler = sampler
        scores = tok.surface_scores()
        self.vocab = Vocab(scores, level="char", unk_logprob=min(scores.values()) - 10.0, name="continuation")
        self._ids = {piece: tok.id_of_surface(piece) for piece in scores}

    def sample_pieces(self, text: str, rng: np.random.Generator) -> list[str]:
        """One random segmentation of ``text`` as surface pieces (an unknown character is a piece of its own)."""
        if self.sampler == "exact":
            return sample_segmentation(text, self.vocab, self.alpha, rng)
        if not text:
            return []
        samples, _ = sample(text, self.vocab, self.alpha, rng, method="legacy-sample")
        return samples[0]

    def sample_ids(self, text: str, rng: np.random.Generator) -> list[int]:
        """Token ids of one random segmentation of ``text`` (which must not contain special-token spellings)."""
        ids: list[int] = []
        for piece in self.sample_pieces(text, rng):
            i = self._ids.get(piece)
            ids.extend([i] if i is not None else self.tok.sp.encode(piece, out_type=int))
        return ids
