"""Random segmentations of training text, for the "trained on random segmentations" baseline.

The sampler is the tokenization service's (``backend.services.tokenize.core.sample_segmentation``: exact
Subword Regularization, P(seg) proportional to exp(alpha * score)); this module only adapts our tokenizer to
it: the vocabulary goes in as surface strings with their Unigram log-probabilities, and the sampled pieces come
back as our token ids (a character outside the vocabulary becomes its byte-fallback tokens, as in ``encode``).
"""

from __future__ import annotations

import numpy as np

from backend.services.continuation.tokenizer import Tokenizer
from backend.services.tokenize.core import sample_segmentation
from backend.services.tokenize.vocab import Vocab


class SegmentationSampler:
    def __init__(self, tok: Tokenizer, alpha: float):
        self.tok = tok
        self.alpha = alpha
        scores = tok.surface_scores()
        self.vocab = Vocab(scores, level="char", unk_logprob=min(scores.values()) - 10.0, name="continuation")
        self._ids = {piece: tok.id_of_surface(piece) for piece in scores}

    def sample_ids(self, text: str, rng: np.random.Generator) -> list[int]:
        """Token ids of one random segmentation of ``text`` (which must not contain special-token spellings)."""
        ids: list[int] = []
        for piece in sample_segmentation(text, self.vocab, self.alpha, rng):
            i = self._ids.get(piece)
            ids.extend([i] if i is not None else self.tok.sp.encode(piece, out_type=int))
        return ids
