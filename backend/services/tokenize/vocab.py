"""Unigram vocabularies: pieces with log-probabilities, compiled into tries for the lattice kernels.

A ``Vocab`` is either character-level (pieces are ``str``, the lattice runs over code points) or byte-level
(pieces are ``bytes``, the lattice runs over the UTF-8 bytes of the text). Loaders:

- ``Vocab.from_sentencepiece(path)``: a SentencePiece unigram ``.model`` (scores are its EM log-probs);
- ``Vocab.from_bytepiece(path)``: a BytePiece model JSON (byte-level; lp = ln count - ln total);
- ``Vocab.from_word_freq(path)``: a ``word count [tag]`` dictionary such as jieba's ``dict.txt``;
- ``Vocab.from_counts`` / ``Vocab(pieces_to_logprob)`` for in-memory data.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from backend.services.tokenize import datrie, kernels

Level = Literal["char", "byte"]
SPACE_MARKER = "\u2581"  # SentencePiece's "▁"
_RADIX = {"char": 0x110000, "byte": 256}


def encode_units(text: str | bytes, level: Level) -> np.ndarray:
    """The lattice positions of ``text``: code points (char level) or UTF-8 bytes (byte level), as int32."""
    if level == "char":
        if not isinstance(text, str):
            raise TypeError("a character-level vocabulary segments str, not bytes")
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.int32)
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)


def _piece_units(pieces: list, level: Level) -> tuple[np.ndarray, np.ndarray]:
    """All pieces' units concatenated (int32) and the offsets where each piece starts."""
    if level == "char":
        joined = "".join(pieces)
        units = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.int32)
    else:
        units = np.frombuffer(b"".join(pieces), dtype=np.uint8).astype(np.int32)
    starts = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pieces], out=starts[1:])
    return units, starts


class DoubleArray:
    """The pieces in a double-array trie over a dense alphabet (``datrie``): the per-line hot path.

    ``cmap[unit]`` is the unit's alphabet id (1.. by decreasing frequency in the pieces; 0 for a unit no
    piece uses); ``da``/``lp`` are the trie (see ``datrie.build_double_array``); ``unk`` the unknown score
    (nan: none).
    """

    def __init__(self, pieces: list, lps: np.ndarray, level: Level, unk: float) -> None:
        units, starts = _piece_units(pieces, level)
        alphabet, counts = np.unique(units, return_counts=True)
        # frequent units get small labels: their transitions cluster near each node's base
        by_frequency = alphabet[np.lexsort((alphabet, -counts))]
        cmap = np.zeros(int(alphabet.max()) + 1, dtype=np.int32)
        cmap[by_frequency] = np.arange(1, len(by_frequency) + 1, dtype=np.int32)
        self.cmap = cmap
        self.alphabet_size = len(by_frequency)
        self.da, self.lp = datrie.build_double_array(
            cmap[units], starts, np.ascontiguousarray(lps, dtype=np.float64), self.alphabet_size
        )
        self.unk = unk

    def ids(self, units: np.ndarray) -> np.ndarray:
        """Alphabet ids of a unit array (0 outside the alphabet)."""
        return datrie.units_to_ids(units, self.cmap)

    @cached_property
    def segment_str(self):
        """``datrie.segment_str`` with this vocabulary bound: ``(text, alpha, method, seed, n_samples)``."""
        return functools.partial(datrie.fast_segment_str.entry(), self.da, self.lp, self.cmap, self.unk)

    @cached_property
    def segment_units(self):
        """``datrie.segment_units`` with this vocabulary bound: ``(units, alpha, method, seed, n_samples)``."""
        return functools.partial(datrie.fast_segment_units.entry(), self.da, self.lp, self.cmap, self.unk)


class Trie:
    """A hash-table trie over unit sequences (see ``kernels``): FFBS and the by-end edge orders use it."""

    def __init__(self, pieces: list, lps: np.ndarray, level: Level, reverse: bool) -> None:
        units, starts = _piece_units(pieces, level)
        self.keys, self.vals, self.node_lp = kernels.build_trie(
            units, starts, np.ascontiguousarray(lps, dtype=np.float64), _RADIX[level], reverse
        )
        self.radix = _RADIX[level]


class Vocab:
    """A unigram vocabulary: ``piece -> log-probability`` (any finite score works; higher is likelier).

    ``unk_logprob``: when set, a unit (character or byte) with no one-unit piece may still form a one-unit
    token with this score (SentencePiece gives unknown characters ``min score - 10``); when None such a
    text cannot be segmented.
    """

    def __init__(
        self,
        pieces: Mapping[str, float] | Mapping[bytes, float],
        *,
        level: Level | None = None,
        unk_logprob: float | None = None,
        name: str = "custom",
    ) -> None:
        if not pieces:
            raise ValueError("a vocabulary needs at least one piece")
        items = list(pieces.items())
        is_bytes = isinstance(items[0][0], (bytes, bytearray))
        if level is None:
            level = "byte" if is_bytes else "char"
        if level not in _RADIX:
            raise ValueError(f"level must be 'char' or 'byte', not {level!r}")
        keys: list = []
        lps = np.empty(len(items), dtype=np.float64)
        for i, (piece, lp) in enumerate(items):
            if level == "byte" and isinstance(piece, str):
                piece = piece.encode("utf-8")
            if level == "char" and not isinstance(piece, str):
                raise ValueError(f"piece {piece!r}: a character-level vocabulary takes str pieces")
            if len(piece) == 0:
                raise ValueError("the empty string cannot be a piece")
            lp = float(lp)
            if not math.isfinite(lp):
                raise ValueError(f"piece {piece!r} has a non-finite log-probability {lp}")
            keys.append(bytes(piece) if level == "byte" else piece)
            lps[i] = lp
        if len(set(keys)) != len(keys):
            raise ValueError("a piece appears twice")
        if unk_logprob is not None and not math.isfinite(unk_logprob):
            raise ValueError("unk_logprob must be finite")
        self.level: Level = level
        self.pieces: list = keys
        self.logprobs = lps
        self.unk_logprob = unk_logprob
        self.name = name
        self.max_len = max(len(p) for p in keys)
        self.fast = DoubleArray(keys, lps, level, self.unk)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.pieces)

    def __repr__(self) -> str:
        return f"Vocab({self.name!r}, {len(self)} {self.level}-level pieces)"

    @cached_property
    def _index(self) -> dict:
        return {p: i for i, p in enumerate(self.pieces)}

    def __contains__(self, piece: object) -> bool:
        return piece in self._index

    def logprob(self, piece: str | bytes) -> float:
        """The score of ``piece``; the unknown score for a lone unit outside the vocabulary (if enabled)."""
        i = self._index.get(piece)
        if i is not None:
            return float(self.logprobs[i])
        if self.unk_logprob is not None and len(piece) == 1:
            return float(self.unk_logprob)
        raise KeyError(f"{piece!r} is not a piece of this vocabulary")

    def to_dict(self) -> dict:
        return dict(zip(self.pieces, self.logprobs.tolist(), strict=True))

    @cached_property
    def trie(self) -> Trie:
        """The hash-table trie of the pieces (built on first use: FFBS and the by-end orders need it)."""
        return Trie(self.pieces, self.logprobs, self.level, reverse=False)

    @cached_property
    def reverse_trie(self) -> Trie:
        """The trie of reversed pieces (lists the edges that end at a position; FFBS uses it)."""
        return Trie(self.pieces, self.logprobs, self.level, reverse=True)

    @property
    def unk(self) -> float:
        """``unk_logprob`` as the kernels take it (nan: no unknown edges)."""
        return math.nan if self.unk_logprob is None else float(self.unk_logprob)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_counts(
        cls, counts: Mapping[str, float] | Mapping[bytes, float], **kwargs
    ) -> Vocab:
        """lp(w) = ln count(w) - ln sum(counts); counts must be positive."""
        total = float(sum(counts.values()))
        if total <= 0:
            raise ValueError("counts must add up to a positive number")
        log_total = math.log(total)
        out = {}
        for piece, c in counts.items():
            if not c > 0:
                raise ValueError(f"piece {piece!r} has a non-positive count {c}")
            out[piece] = math.log(c) - log_total
        return cls(out, **kwargs)

    @classmethod
    def from_sentencepiece(
        cls, path: str | Path, *, space: str | None = " ", unk: bool = True, name: str | None = None
    ) -> Vocab:
        """Load a SentencePiece unigram ``.model``: normal and user-defined pieces with their scores.

        ``space`` replaces SentencePiece's "▁" in the pieces (None keeps it), so the pieces join back to the
        raw text. Control pieces (<s>, </s>) and byte-fallback pieces are left out; with ``unk`` an unknown
        character scores ``min score - 10`` as in SentencePiece.
        """
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(path))
        pieces: dict[str, float] = {}
        for i in range(sp.get_piece_size()):
            if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i) or sp.is_byte(i):
                continue
            piece = sp.id_to_piece(i)
            if space is not None:
                piece = piece.replace(SPACE_MARKER, space)
            pieces[piece] = float(sp.get_score(i))
        min_score = min(pieces.values())
        return cls(
            pieces,
            level="char",
            unk_logprob=min_score - 10.0 if unk else None,
            name=name or Path(path).stem,
        )

    @classmethod
    def from_bytepiece(cls, path: str | Path, *, name: str | None = None) -> Vocab:
        """Load a BytePiece model JSON ``{base64(piece): [id, text, count]}`` as a byte-level vocabulary."""
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        counts = {base64.b64decode(k): float(v[-1]) for k, v in raw.items()}
        return cls.from_counts(counts, level="byte", name=name or Path(path).stem)

    @classmethod
    def from_word_freq(
        cls,
        source: str | Path | Iterable[str],
        *,
        unk_logprob: float | None = None,
        unk_below_min: float | None = None,
        name: str | None = None,
    ) -> Vocab:
        """Load a ``word count [tag]`` dictionary (one entry a line, jieba's format); counts of 0 are skipped.

        ``unk_below_min`` sets ``unk_logprob`` to the smallest log-prob minus that margin.
        """
        if isinstance(source, (str, Path)):
            name = name or Path(source).stem
        counts = read_word_freq(source)
        if unk_below_min is not None:
            unk_logprob = math.log(min(counts.values()) / sum(counts.values())) - unk_below_min
        return cls.from_counts(counts, level="char", unk_logprob=unk_logprob, name=name or "word-freq")

    def to_bytepiece_json(self, path: str | Path, *, scale: float = 1.0) -> None:
        """Write this vocabulary as a BytePiece model whose counts are ``scale * exp(lp)``."""
        data = {}
        for i, (piece, lp) in enumerate(zip(self.pieces, self.logprobs.tolist(), strict=True)):
            raw = piece.encode("utf-8") if isinstance(piece, str) else piece
            data[base64.b64encode(raw).decode()] = [i + 3, raw.decode(errors="ignore"), scale * math.exp(lp)]
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def read_word_freq(source: str | Path | Iterable[str]) -> dict[str, float]:
    """``{word: count}`` from ``word count [tag]`` lines (duplicates add up; counts <= 0 are dropped)."""
    lines: Iterable[str]
    if isinstance(source, (str, Path)):
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    else:
        lines = source
    counts: dict[str, float] = {}
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise ValueError(f"line {lineno}: expected 'word count [tag]', got {line!r}")
        try:
            c = float(parts[1])
        except ValueError:
            raise ValueError(f"line {lineno}: count {parts[1]!r} is not a number") from None
        if c > 0:
            counts[parts[0]] = counts.get(parts[0], 0.0) + c
    return counts
