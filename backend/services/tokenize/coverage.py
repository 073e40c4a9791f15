"""Does a vocabulary keep common words whole? The built-in model's acceptance check, on held-out text.

- English: the ``top`` most frequent words of three or more letters in the held-out English lines (maximal
  runs of ASCII letters, counted only where written all in lowercase). An occurrence comes out as one piece
  when the Viterbi segmentation of its line has a token that is exactly the word, or the word with the
  space before it (SentencePiece's "▁word").
- Chinese: jieba's ``top`` most frequent words of two or more characters (by the counts in its dictionary).
  Their occurrences are the tokens of jieba's own segmentation of the held-out Chinese lines (dictionary
  route, HMM off: our Viterbi over jieba's dictionary, which the tests check equals ``jieba.lcut``). An
  occurrence comes out as one piece when the model has a token that is exactly the word there.
- A word counts as one piece when at least half of its occurrences do. A word with no occurrence in the
  held-out text (only possible for the Chinese list) is judged by segmenting the word on its own.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from backend.services.tokenize.core import viterbi
from backend.services.tokenize.vocab import Vocab, read_word_freq

_LETTERS = re.compile(r"[A-Za-z]+")


@dataclass
class Coverage:
    """How many of the ``words`` come out as one piece."""

    words: int
    one_piece: int
    occurrences: int  # held-out occurrences of the listed words
    one_piece_occurrences: int
    standalone: int = 0  # listed words judged on their own (no held-out occurrence)
    missed: list[str] = field(default_factory=list)  # the most frequent words that did not, in list order

    @property
    def fraction(self) -> float:
        return self.one_piece / self.words if self.words else 0.0

    @property
    def occurrence_fraction(self) -> float:
        return self.one_piece_occurrences / self.occurrences if self.occurrences else 0.0

    def line(self, label: str) -> str:
        return (f"{label}: {self.one_piece} of {self.words} words one piece ({self.fraction:.1%}); "
                f"{self.one_piece_occurrences} of {self.occurrences} held-out occurrences ({self.occurrence_fraction:.1%})"
                + (f"; {self.standalone} words judged on their own" if self.standalone else "")
                + (f"; first misses: {' '.join(self.missed[:12])}" if self.missed else ""))


def _boundaries(tokens: list[str]) -> np.ndarray:
    return np.cumsum([0] + [len(t) for t in tokens])


def _single_token(bounds: np.ndarray, start: int, end: int) -> bool:
    """Is [start, end) exactly one token (a boundary at both ends, none inside)?"""
    i = np.searchsorted(bounds, start)
    return i + 1 < len(bounds) and bounds[i] == start and bounds[i + 1] == end


def _verdicts(hits: dict[str, list[bool]], words: list[str], standalone) -> Coverage:
    one = 0
    occ = 0
    occ_one = 0
    alone = 0
    missed = []
    for w in words:
        h = hits.get(w)
        if h:
            occ += len(h)
            occ_one += sum(h)
            ok = 2 * sum(h) >= len(h)
        else:
            alone += 1
            ok = standalone(w)
        one += ok
        if not ok:
            missed.append(w)
    return Coverage(len(words), one, occ, occ_one, alone, missed)


def english_top_words(lines: list[str], top: int = 1000, min_letters: int = 3) -> list[str]:
    """The ``top`` most frequent lowercase words of at least ``min_letters`` letters (ties: alphabetical)."""
    counts = Counter(
        w for line in lines for w in _LETTERS.findall(line) if len(w) >= min_letters and w.islower()
    )
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def english_coverage(vocab: Vocab, lines: list[str], top: int = 1000) -> Coverage:
    """The English half of the check (see the module docstring)."""
    words = english_top_words(lines, top)
    wanted = set(words)
    hits: dict[str, list[bool]] = defaultdict(list)
    for line in lines:
        matches = [m for m in _LETTERS.finditer(line) if m.group() in wanted]
        if not matches:
            continue
        bounds = _boundaries(viterbi(line, vocab)[0])
        for m in matches:
            a, b = m.span()
            hits[m.group()].append(
                _single_token(bounds, a, b) or (a > 0 and line[a - 1] == " " and _single_token(bounds, a - 1, b))
            )
    return _verdicts(hits, words, lambda w: len(viterbi(w, vocab)[0]) == 1)


def jieba_top_words(path, top: int = 1000, min_chars: int = 2) -> list[str]:
    """jieba's ``top`` most frequent dictionary words of at least ``min_chars`` characters (ties: dictionary order)."""
    counts = read_word_freq(path)
    ranked = sorted(((c, i, w) for i, (w, c) in enumerate(counts.items()) if len(w) >= min_chars),
                    key=lambda t: (-t[0], t[1]))
    return [w for _, _, w in ranked[:top]]


def chinese_coverage(vocab: Vocab, lines: list[str], words: list[str], jieba_vocab: Vocab) -> Coverage:
    """The Chinese half of the check: ``words`` found by jieba's segmentation of ``lines``."""
    wanted = set(words)
    hits: dict[str, list[bool]] = defaultdict(list)
    for line in lines:
        gold, _ = viterbi(line, jieba_vocab)
        if not wanted.intersection(gold):
            continue
        bounds = _boundaries(viterbi(line, vocab)[0])
        pos = 0
        for w in gold:
            if w in wanted:
                hits[w].append(_single_token(bounds, pos, pos + len(w)))
            pos += len(w)
    return _verdicts(hits, words, lambda w: len(viterbi(w, vocab)[0]) == 1)
