"""Random tokenization: unigram segmentation by Viterbi decoding and exact sampling.

Library use (no Flask needed)::

    import numpy as np
    from backend.services.tokenize import Vocab, get_model, sample_segmentation

    vocab = get_model("default")                 # or Vocab({"a": -0.7, "aa": -1.2}), Vocab.from_sentencepiece(...)
    rng = np.random.default_rng(0)
    tokens = sample_segmentation("Hello world", vocab, alpha=0.1, rng=rng)   # e.g. ["Hello", " ", "world"]
    assert "".join(tokens) == "Hello world"

``sample_segmentation(text, vocab, alpha, rng) -> list[str]`` (``list[bytes]`` for a byte-level vocabulary)
draws one segmentation with P(seg) proportional to exp(alpha * score(seg)), score = sum of the pieces'
log-probs: alpha < 0 gives the deterministic Viterbi segmentation, alpha = 0 is uniform over all
segmentations, larger alpha concentrates on the best ones (SentencePiece's / BytePiece's alpha).
``rng`` is a ``numpy.random.Generator`` (or an int seed, or None); the same generator state gives the same
output. It raises ``SegmentationError`` (a ValueError) when the vocabulary cannot cover the text; the
built-in models score unknown characters ``min - 10`` and cover any text.

Also: ``sample`` (many samples, methods "sample" | "legacy-sample" | "ffbs" | "viterbi"), ``viterbi``,
``log_partition``, ``boundary_marginals`` (exact) and ``boundary_counts`` (sampled), ``count_segmentations``,
``top_segmentations`` (the k most probable), ``score``, ``log_prob``,
``enumerate_segmentations`` (brute force), and the vocabulary loaders ``Vocab.from_sentencepiece``,
``Vocab.from_bytepiece``, ``Vocab.from_word_freq``, ``Vocab.from_counts``.

The kernels are numba-compiled with an on-disk cache; call ``warm_up()`` once to pay the compile
(a few seconds in a fresh checkout, well under a second afterwards) before latency matters.
"""

from backend.services.tokenize.core import (
    METHODS,
    SegmentationError,
    boundary_counts,
    boundary_marginals,
    count_segmentations,
    enumerate_segmentations,
    log_partition,
    log_prob,
    sample,
    sample_segmentation,
    score,
    top_segmentations,
    viterbi,
)
from backend.services.tokenize.models import BUILTIN_MODELS, get_model
from backend.services.tokenize.vocab import Vocab


def warm_up() -> None:
    """Compile (or load from the cache) every kernel by running each method once on a tiny vocabulary."""
    vocab = Vocab({"a": -0.5, "ab": -1.0, "b": -0.7}, unk_logprob=-9.0)
    byte_vocab = Vocab({b"a": -0.5, b"ab": -1.0, b"b": -0.7, b"c": -3.0})
    for method in METHODS:
        sample("abc", vocab, 0.5, 0, n_samples=2, method=method)
        sample(b"abc", byte_vocab, 0.5, 0, n_samples=2, method=method)
        sample("abc", vocab, 0.5, 0, n_samples=2, method=method, edge_order="random")
        sample_segmentation("abc", vocab, 0.5, 0, method=method)
    viterbi("abc", vocab)
    boundary_marginals("abc", vocab, 0.5)
    log_partition("abc", vocab, 0.5)
    top_segmentations("abc", vocab, 3)
    boundary_counts("abc", vocab, 0.5, 0, n_samples=2)


__all__ = [
    "BUILTIN_MODELS",
    "METHODS",
    "SegmentationError",
    "Vocab",
    "boundary_counts",
    "boundary_marginals",
    "count_segmentations",
    "enumerate_segmentations",
    "get_model",
    "log_partition",
    "log_prob",
    "sample",
    "sample_segmentation",
    "score",
    "top_segmentations",
    "viterbi",
    "warm_up",
]
