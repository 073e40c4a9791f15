"""Built-in vocabularies, loaded lazily once per process (nothing is downloaded).

- ``default``: a 16k-piece SentencePiece unigram model trained by ``scripts/train_tokenizer.py`` on English
  and Chinese text that ships with Python and with packages (``data/default.model``; on held-out text it
  keeps 99.6% of the 1,000 most frequent English words and 87.5% of jieba's 1,000 most frequent words whole);
- ``jieba``: the word-frequency dictionary that ships with jieba (Chinese words, lp = ln count - ln total).

Both score a character they do not know ``min score - 10``, as SentencePiece does, so any text segments.
"""

from __future__ import annotations

import threading
from pathlib import Path

from backend.services.tokenize.vocab import Vocab

DATA_DIR = Path(__file__).resolve().parent / "data"
BUILTIN_MODELS: dict[str, str] = {
    "default": "English and Chinese unigram model, 16k pieces, trained on text shipped with Python and packages",
    "jieba": "jieba's Chinese word-frequency dictionary (349k words)",
}
_cache: dict[str, Vocab] = {}
_lock = threading.Lock()


def jieba_dict_path() -> Path:
    """The ``dict.txt`` shipped inside the jieba package."""
    import jieba

    return Path(jieba.__file__).resolve().parent / "dict.txt"


def _load(name: str) -> Vocab:
    if name == "default":
        return Vocab.from_sentencepiece(DATA_DIR / "default.model", name="default")
    if name == "jieba":
        return Vocab.from_word_freq(jieba_dict_path(), unk_below_min=10.0, name="jieba")
    raise KeyError(f"unknown model {name!r}; built-in models: {', '.join(BUILTIN_MODELS)}")


def get_model(name: str) -> Vocab:
    """The built-in vocabulary ``name`` (KeyError for an unknown name)."""
    with _lock:
        if name not in _cache:
            _cache[name] = _load(name)
        return _cache[name]
