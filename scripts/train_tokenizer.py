"""Train the tokenize service's built-in unigram model from text that ships with Python (no download).

    .venv/bin/python scripts/train_tokenizer.py [--vocab-size 4000] [--out backend/services/tokenize/data]

Writes ``default.model`` (SentencePiece unigram). The model keeps the raw text: identity normalisation, no
dummy prefix, every character of the corpus a piece, so its pieces (with "▁" read as a space) join back to
the input. Single-threaded training on a fixed corpus makes the output deterministic for a Python version.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentencepiece as spm  # noqa: E402
from tqdm import tqdm  # noqa: E402

from backend.services.tokenize.corpus import corpus_lines  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "backend" / "services" / "tokenize" / "data"


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--min-bytes", type=int, default=1_500_000, help="corpus size")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--name", default="default")
    args = ap.parse_args()
    lines = corpus_lines(args.min_bytes)
    print(f"corpus: {len(lines)} lines, {sum(len(x.encode()) + 1 for x in lines)} bytes")
    args.out.mkdir(parents=True, exist_ok=True)
    # the prefix is recorded in the model's trainer spec: keep it relative so the file is reproducible
    prefix = args.name
    cwd = Path.cwd()
    try:
        os.chdir(args.out)
        train(lines, prefix, args.vocab_size)
        Path(prefix + ".vocab").unlink()
    finally:
        os.chdir(cwd)
    target = args.out / f"{args.name}.model"
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
