"""A tokenizer with long pieces (SentencePiece Unigram, multi-word pieces allowed) and a byte-level view of it.

The continuation algorithms never look at SentencePiece's raw piece strings: every token is mapped once to the
exact bytes it contributes to the text (``▁`` -> space, ``<0xE5>`` -> one byte, control tokens -> nothing), and
prefix searches run on those bytes. That keeps byte-fallback tokens (which can split a UTF-8 character) and
multi-word pieces (``▁import▁numpy▁as▁np``) uniform.

Training settings that matter for continuation:
- ``split_by_whitespace=False`` so pieces may span words ("of the", "import numpy as np");
- ``add_dummy_prefix=False``, identity normalisation, no whitespace cleanup: decode(encode(x)) == x, so the
  removed text and the emitted text are exact substrings of what the user typed;
- ``byte_fallback=True``: characters outside the vocabulary become UTF-8 byte tokens instead of <unk>.
"""

from __future__ import annotations

import bisect
import io
import re
from collections.abc import Iterable, Sequence

import sentencepiece as spm

BOS, EOS = "<s>", "</s>"
# Control tokens a prompt may contain literally (document separator, fill-in-the-middle markers).
CONTROL_TOKENS = ["<sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
_BYTE_PIECE = re.compile(r"^<0x([0-9A-F]{2})>$")


def train_sentencepiece(sentences: Iterable[str], vocab_size: int = 8000, max_piece_chars: int = 16) -> bytes:
    """Train the Unigram model on ``sentences`` (single-threaded, hence deterministic); returns the model bytes."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        max_sentencepiece_length=max_piece_chars,
        split_by_whitespace=False,
        split_digits=False,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        byte_fallback=True,
        character_coverage=0.9995,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        control_symbols=CONTROL_TOKENS,
        num_threads=1,
        max_sentence_length=8192,
        minloglevel=2,
    )
    return buf.getvalue()


class Tokenizer:
    """Deterministic encoder plus the byte string of every token and a prefix index over them."""

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        n = self.sp.get_piece_size()
        self.vocab_size = n
        self.bos_id = self.sp.bos_id()
        self.eos_id = self.sp.eos_id()
        self.piece_str: list[str] = [self.sp.id_to_piece(i) for i in range(n)]
        self.piece_bytes: list[bytes] = []
        special = set()
        for i, p in enumerate(self.piece_str):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                special.add(i)
                self.piece_bytes.append(b"")
            elif self.sp.is_byte(i):
                self.piece_bytes.append(bytes([int(_BYTE_PIECE.match(p).group(1), 16)]))
            else:
                self.piece_bytes.append(p.replace("\u2581", " ").encode("utf-8"))
        self.special_ids: frozenset[int] = frozenset(special)
        self.is_byte_token = [self.sp.is_byte(i) for i in range(n)]
        # Literal spellings of special tokens that a prompt may contain.
        self.special_by_text = {self.piece_str[i]: i for i in special if self.piece_str[i] != "<unk>"}
        spellings = sorted(self.special_by_text, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in spellings) + ")")
        # SentencePiece reads a literal "▁" in the input as a space; spell it with byte tokens instead.
        self._meta_space_ids = [self.sp.piece_to_id(f"<0x{b:02X}>") for b in "\u2581".encode()]
        self.index = PieceIndex(self.piece_bytes, self.special_ids)
        self.max_piece_bytes = max(len(b) for b in self.piece_bytes)

    @classmethod
    def from_file(cls, path: str) -> Tokenizer:
        with open(path, "rb") as f:
            return cls(f.read())

    def encode(self, text: str) -> list[int]:
        """Canonical (Viterbi) token ids of ``text``; literal special-token spellings become those tokens."""
        ids: list[int] = []
        for part in self._special_re.split(text):
            if not part:
                continue
            if part in self.special_by_text:
                ids.append(self.special_by_text[part])
                continue
            for j, chunk in enumerate(part.split("\u2581")):
                if j:
                    ids.extend(self._meta_space_ids)
                if chunk:
                    ids.extend(self.sp.encode(chunk, out_type=int))
        return ids

    def encode_pieces_sampled(self, text: str, alpha: float, seed: int) -> list[int]:
        """SentencePiece's own subword-regularisation sampler (kept only to cross-check the shared sampler)."""
        self.sp.set_random_generator_seed(seed)
        return self.sp.encode(text, out_type=int, enable_sampling=True, alpha=alpha, nbest_size=-1)

    def token_bytes(self, ids: Sequence[int]) -> bytes:
        return b"".join(self.piece_bytes[i] for i in ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special tokens spelled out, a trailing incomplete UTF-8 character dropped)."""
        out, run = [], []
        for i in ids:
            if i in self.special_ids:
                out.append(utf8_complete_prefix(b"".join(run)).decode("utf-8", errors="replace"))
                out.append(self.piece_str[i])
                run = []
            else:
                run.append(self.piece_bytes[i])
        out.append(utf8_complete_prefix(b"".join(run)).decode("utf-8", errors="replace"))
        return "".join(out)

    def display(self, i: int) -> str:
        """A readable label for token ``i`` (for candidate lists and charts)."""
        if i in self.special_ids:
            return self.piece_str[i]
        if self.is_byte_token[i]:
            return self.piece_str[i]
        return self.piece_bytes[i].decode("utf-8", errors="replace")

    def surface_scores(self) -> dict[str, float]:
        """Ordinary pieces as text -> unigram log-probability (the input of a segmentation sampler)."""
        out = {}
        for i in range(self.vocab_size):
            if i in self.special_ids or self.is_byte_token[i]:
                continue
            out[self.piece_bytes[i].decode("utf-8")] = float(self.sp.get_score(i))
        return out

    def id_of_surface(self, piece: str) -> int | None:
        """Token id of an ordinary piece given as text, or None."""
        i = self.sp.piece_to_id(piece.replace(" ", "\u2581"))
        return None if i == self.sp.unk_id() and piece != "<unk>" else i


class PieceIndex:
    """Token bytes sorted once: all tokens that start with a prefix form one contiguous run (a flat trie)."""

    def __init__(self, piece_bytes: Sequence[bytes], exclude: Iterable[int]):
        excluded = set(exclude)
        pairs = sorted((b, i) for i, b in enumerate(piece_bytes) if b and i not in excluded)
        self._keys = [b for b, _ in pairs]
        self._ids = [i for _, i in pairs]
        self._by_bytes: dict[bytes, list[int]] = {}
        for b, i in pairs:
            self._by_bytes.setdefault(b, []).append(i)

    def extensions(self, prefix: bytes) -> list[int]:
        """Ids of the tokens whose bytes start with ``prefix`` (``prefix`` itself included)."""
        lo = bisect.bisect_left(self._keys, prefix)
        hi = lo
        while hi < len(self._keys) and self._keys[hi].startswith(prefix):
            hi += 1
        return self._ids[lo:hi]

    def proper_prefixes(self, text: bytes) -> list[int]:
        """Ids of the tokens whose bytes are a non-empty proper prefix of ``text``."""
        out = []
        for n in range(1, len(text)):
            out.extend(self._by_bytes.get(text[:n], ()))
        return out

    def exact(self, text: bytes) -> list[int]:
        return list(self._by_bytes.get(text, ()))


def utf8_complete_prefix(b: bytes) -> bytes:
    """``b`` without a trailing incomplete UTF-8 sequence (a generated byte token may stop mid-character)."""
    for back in range(1, min(4, len(b)) + 1):
        c = b[-back]
        if c < 0x80:
            return b  # ASCII: complete
        if c >= 0xC0:  # lead byte: does the sequence it starts fit in what remains?
            need = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            return b if back >= need else b[:-back]
    return b


def is_char_boundary(b: bytes, pos: int) -> bool:
    """True when byte offset ``pos`` of the UTF-8 string ``b`` is not inside a character."""
    return pos <= 0 or pos >= len(b) or (b[pos] & 0xC0) != 0x80
