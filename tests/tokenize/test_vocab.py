"""Vocabularies: loaders (SentencePiece, BytePiece, word frequency, jieba), byte-level lattices, built-ins."""

from __future__ import annotations

import base64
import json
import math
from collections import Counter

import numpy as np
import pytest
import sentencepiece as spm

from backend.services.tokenize import (
    SegmentationError,
    Vocab,
    enumerate_segmentations,
    get_model,
    log_partition,
    sample,
    sample_segmentation,
    viterbi,
)
from backend.services.tokenize.models import DATA_DIR, jieba_dict_path
from backend.services.tokenize.vocab import read_word_freq
from tests.tokenize.helpers import P_REJECT, chi_square, exact_distribution

DEFAULT_MODEL = DATA_DIR / "default.model"


def test_vocab_validation():
    with pytest.raises(ValueError):
        Vocab({})
    with pytest.raises(ValueError):
        Vocab({"": -1.0})
    with pytest.raises(ValueError):
        Vocab({"a": math.inf})
    with pytest.raises(ValueError):
        Vocab({"a": -1.0}, level="word")
    with pytest.raises(ValueError):
        Vocab({b"a": -1.0}, level="char")
    with pytest.raises(ValueError):
        Vocab({"a": -1.0, b"a": -2.0}, level="byte")  # the same piece twice
    with pytest.raises(ValueError):
        Vocab.from_counts({"a": 0.0, "b": 1.0})
    v = Vocab.from_counts({"a": 3, "b": 1})
    assert v.logprob("a") == pytest.approx(math.log(0.75)) and "b" in v and "c" not in v
    with pytest.raises(KeyError):
        v.logprob("ab")


def test_sentencepiece_loader_matches_the_processor():
    sp = spm.SentencePieceProcessor(model_file=str(DEFAULT_MODEL))
    vocab = Vocab.from_sentencepiece(DEFAULT_MODEL)
    normal = [i for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    assert len(vocab) == len(normal)
    for i in normal[:: max(1, len(normal) // 200)]:
        assert vocab.logprob(sp.id_to_piece(i).replace("\u2581", " ")) == pytest.approx(sp.get_score(i))
    assert vocab.unk_logprob == pytest.approx(min(sp.get_score(i) for i in normal) - 10)
    kept = Vocab.from_sentencepiece(DEFAULT_MODEL, space=None, unk=False)
    assert "\u2581the" in kept and kept.unk_logprob is None


def test_sentencepiece_viterbi_and_sampling_agree_with_ours():
    """Cross-implementation (O6): same model, same lattice, SentencePiece's own FFBS against our exact law."""
    sp = spm.SentencePieceProcessor(model_file=str(DEFAULT_MODEL))
    vocab = Vocab.from_sentencepiece(DEFAULT_MODEL)
    text = "The lists are returned in order."
    ours, _ = viterbi(text, vocab)
    theirs = [p.replace("\u2581", " ") for p in sp.encode(text, out_type=str)]
    assert ours == theirs
    short = " the list"
    alpha = 0.3
    exact = exact_distribution(short, vocab, alpha)
    spm.set_random_generator_seed(1234)
    n = 20_000
    sp_counts = Counter(
        tuple(p.replace("\u2581", " ") for p in sp.encode(short, out_type=str, enable_sampling=True, alpha=alpha,
                                                         nbest_size=-1))
        for _ in range(n)
    )
    assert chi_square(sp_counts, exact)[2] > P_REJECT
    ours_counts = Counter(tuple(s) for s in sample(short, vocab, alpha, 3, n_samples=n)[0])
    assert chi_square(ours_counts, exact)[2] > P_REJECT


def _write_bytepiece(path, counts: dict[bytes, float]) -> None:
    data = {
        base64.b64encode(k).decode(): [i + 3, k.decode(errors="ignore"), c] for i, (k, c) in enumerate(counts.items())
    }
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_bytepiece_loader_and_byte_level_lattice(tmp_path):
    counts = {bytes([b]): 1.0 for b in range(256)}
    counts.update({"天".encode(): 50.0, "天气".encode(): 30.0, b"ab": 20.0, "气".encode()[:2]: 5.0})
    path = tmp_path / "model.json"
    _write_bytepiece(path, counts)
    vocab = Vocab.from_bytepiece(path)
    total = sum(counts.values())
    assert vocab.level == "byte" and len(vocab) == len(counts)
    assert vocab.logprob("天气".encode()) == pytest.approx(math.log(30 / total))
    text = "天气ab"
    tokens, _ = viterbi(text, vocab)
    assert tokens == ["天气".encode(), b"ab"]
    # byte-level sampling may cut a character; the bytes still join back
    rng = np.random.default_rng(0)
    cut = False
    for _ in range(200):
        s = sample_segmentation(text, vocab, 0.0, rng)
        assert b"".join(s) == text.encode()
        cut |= any(_is_partial(t) for t in s)
    assert cut
    exact = exact_distribution(text, vocab, 0.4)
    samples, logz = sample(text, vocab, 0.4, 5, n_samples=30_000)
    assert chi_square(Counter(tuple(s) for s in samples), exact)[2] > P_REJECT
    assert logz == pytest.approx(log_partition(text.encode(), vocab, 0.4))


def _is_partial(token: bytes) -> bool:
    try:
        token.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_byte_and_char_level_lattices_differ_as_expected():
    pieces = {"é": -1.0, "a": -1.0, "aé": -1.5}
    char = Vocab(pieces)
    byte = Vocab({k.encode(): v for k, v in pieces.items()} | {b"\xc3": -4.0, b"\xa9": -4.0})
    assert len(enumerate_segmentations("aé", char)) == 2
    # bytes add the split of "é" into its two UTF-8 bytes
    assert len(enumerate_segmentations("aé", byte)) == 3
    assert viterbi("aé", byte) == ([b"a\xc3\xa9"], -1.5)


def test_word_freq_loader(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("北京 30 ns\n大学 20\n北京大学 5 nt\n\n北 5\n京 5\n大 5\n学 5\n零 0\n北京 10\n", encoding="utf-8")
    vocab = Vocab.from_word_freq(path)
    assert vocab.name == "dict" and "零" not in vocab
    assert vocab.logprob("北京") == pytest.approx(math.log(40 / 85))
    assert viterbi("北京大学", vocab)[0] == ["北京", "大学"]
    with pytest.raises(ValueError, match="line 1"):
        read_word_freq(["北京"])
    with pytest.raises(ValueError, match="not a number"):
        read_word_freq(["北京 many"])
    unk = Vocab.from_word_freq(path, unk_below_min=10.0)
    assert unk.unk_logprob == pytest.approx(math.log(5 / 85) - 10)
    assert viterbi("北京人", unk)[0] == ["北京", "人"]
    with pytest.raises(SegmentationError):
        viterbi("北京人", vocab)


def test_jieba_dictionary_viterbi_is_jiebas_route():
    """jieba's dictionary route (HMM off) is the same max-product path over the same log-probs."""
    import jieba

    vocab = get_model("jieba")
    assert len(read_word_freq(jieba_dict_path())) == len(vocab)
    jieba.setLogLevel(60)
    texts = ["我来到北京清华大学", "他来到了网易杭研大厦",
             "小明硕士毕业于中国科学院计算所", "今天天气很好我们去公园散步"]
    for text in texts:
        assert viterbi(text, vocab)[0] == jieba.lcut(text, HMM=False)
    samples, _ = sample("我来到北京清华大学，今天天气很好。", vocab, 0.5, 0, n_samples=20)
    assert all("".join(s) == "我来到北京清华大学，今天天气很好。" for s in samples)


def test_default_model_segments_any_text():
    vocab = get_model("default")
    assert get_model("default") is vocab
    text = "Unicode: naïve café — 東京 🙂 and tabs\tand\nnewlines"
    for alpha in (-1, 0.0, 0.1, 1.0):
        assert "".join(sample_segmentation(text, vocab, alpha, 1)) == text
    with pytest.raises(KeyError):
        get_model("nope")


def test_to_bytepiece_json_roundtrip(tmp_path):
    vocab = Vocab({"ab": math.log(0.25), "a": math.log(0.5), "b": math.log(0.25)})
    vocab.to_bytepiece_json(tmp_path / "m.json", scale=1000.0)
    back = Vocab.from_bytepiece(tmp_path / "m.json")
    assert back.level == "byte"
    assert back.logprob(b"ab") == pytest.approx(math.log(0.25))
