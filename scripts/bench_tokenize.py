"""Throughput of the tokenize service against SentencePiece and BytePiece, in one run, on the same text.

    nice -n 10 .venv/bin/python scripts/bench_tokenize.py [--alphas 0.1 0.2 0.5 1] [--repeats 5]

One text (>= 1 MB of English that ships with Python), one vocabulary: a SentencePiece unigram model trained
on that text, converted for this project (character level, the same lattice as SentencePiece's) and written
as a BytePiece model (byte level; this project also runs on it at byte level, the same lattice as BytePiece's).
Everything runs single-threaded, one line per call, text pre-loaded; each figure is the median of
``--repeats`` passes after a warm-up. Before timing, short strings are sampled by each library and checked
(chi-square, p = 1e-3) against the exact law P ~ exp(alpha * score) computed by enumeration.

BytePiece is a benchmark-only dependency; without it its rows are reported as missing.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
from scipy import stats  # noqa: E402
from tqdm import tqdm  # noqa: E402

from backend.services.tokenize import Vocab, enumerate_segmentations, sample_segmentation, warm_up  # noqa: E402
from backend.services.tokenize.corpus import corpus_lines  # noqa: E402

SPACE = "\u2581"
CHECK_STRINGS = [" the list", "tokens"]


def train_sentencepiece(lines: list[str], folder: Path, vocab_size: int) -> Path:
    prefix = str(folder / "bench")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=prefix, model_type="unigram", vocab_size=vocab_size,
        character_coverage=1.0, normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, num_threads=1, input_sentence_size=0, shuffle_input_sentence=False,
        max_sentence_length=1 << 16, minloglevel=2,
    )
    return Path(prefix + ".model")


def p_value(counts: Counter, text, vocab: Vocab, alpha: float) -> float:
    """Pearson chi-square p-value of ``counts`` against the exact law (bins with expectation < 5 pooled)."""
    segs = enumerate_segmentations(text, vocab)
    logw = np.array([alpha * s for _, s in segs])
    probs = np.exp(logw - np.logaddexp.reduce(logw))
    n = sum(counts.values())
    if set(counts) - {tuple(t) for t, _ in segs}:
        return 0.0
    obs, exp, pool_o, pool_e = [], [], 0.0, 0.0
    for (tokens, _), p in zip(segs, probs, strict=True):
        c = counts.get(tuple(tokens), 0)
        if n * p >= 5:
            obs.append(c)
            exp.append(n * p)
        else:
            pool_o += c
            pool_e += n * p
    if pool_e:
        obs.append(pool_o)
        exp.append(pool_e)
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True))
    return float(stats.chi2.sf(stat, len(obs) - 1))


def time_all(configs: list[tuple[str, str, Callable[[str], object]]], lines: list[str], repeats: int) -> dict:
    """Median (CPU seconds, wall seconds) of one pass over ``lines`` per config, after a warm-up on a slice.

    The configs take turns within every repeat, so a change in machine load hits them all alike. CPU time
    of this (single-threaded) process is the figure that does not depend on what else the machine runs.
    """
    for _, _, fn in configs:
        for line in lines[:500]:
            fn(line)
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {(name, col): [] for name, col, _ in configs}
    for _ in tqdm(range(repeats), desc="timing passes", file=sys.stderr):
        for name, col, fn in configs:
            c0, t0 = time.process_time(), time.perf_counter()
            for line in lines:
                fn(line)
            runs[(name, col)].append((time.process_time() - c0, time.perf_counter() - t0))
    return {
        k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in runs.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.1])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-bytes", type=int, default=1_500_000)
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--check-samples", type=int, default=20_000)
    args = ap.parse_args()

    lines = corpus_lines(args.min_bytes)
    mb = sum(len(x.encode("utf-8")) for x in lines) / 1e6
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        model = train_sentencepiece(lines, Path(tmp), args.vocab_size)
        sp = spm.SentencePieceProcessor(model_file=str(model))
        ours = Vocab.from_sentencepiece(model, name="bench")
        bp_json = Path(tmp) / "bench.bytepiece.json"
        ours.to_bytepiece_json(bp_json, scale=1e9)
        ours_bytes = Vocab.from_bytepiece(bp_json, name="bench-bytes")
        try:
            from bytepiece import Tokenizer as BytePiece

            bp = BytePiece(str(bp_json))
        except ImportError:
            bp = None
    print(f"text: {mb:.2f} MB in {len(lines)} lines (Python's own documentation); one call per line, 1 thread")
    print(f"vocabulary: {len(ours)} pieces, SentencePiece unigram trained on this text; BytePiece and byte-level "
          f"runs use it as a BytePiece model (lp shifted by ln sum exp(score) = "
          f"{math.log(np.exp(ours.logprobs).sum()):+.4f} per token)")
    if bp is None:
        print("BytePiece: not installed (benchmark-only: AHOCORASICK_BYTES=1 pip install --no-build-isolation "
              "--no-binary pyahocorasick pyahocorasick bytepiece); its rows are missing")

    def sp_pieces(text: str, alpha: float) -> tuple:
        out = sp.encode(text, out_type=str, enable_sampling=True, alpha=alpha, nbest_size=-1)
        return tuple(p.replace(SPACE, " ") for p in out)

    # ---- same distribution before timing
    alpha0 = args.alphas[0]
    n = args.check_samples
    spm.set_random_generator_seed(1)
    rng = np.random.default_rng(1)
    for text in CHECK_STRINGS:
        k = len(enumerate_segmentations(text, ours))
        ours_c = Counter(tuple(sample_segmentation(text, ours, alpha0, rng)) for _ in range(n))
        sp_c = Counter(sp_pieces(text, alpha0) for _ in range(n))
        row = (f"check {text!r} ({k} segmentations, alpha={alpha0}, N={n}): chi-square p vs exact law: "
               f"ours {p_value(ours_c, text, ours, alpha0):.3f}, SentencePiece {p_value(sp_c, text, ours, alpha0):.3f}")
        if bp is not None:
            bp.set_seed(1)
            raw = text.encode()
            bp_c = Counter(tuple(bp.tokenize(text, alpha=alpha0)) for _ in range(n))
            ours_b = Counter(tuple(sample_segmentation(raw, ours_bytes, alpha0, rng)) for _ in range(n))
            row += (f", ours byte-level {p_value(ours_b, raw, ours_bytes, alpha0):.3f}, "
                    f"BytePiece {p_value(bp_c, raw, ours_bytes, alpha0):.3f}")
        print(row + "  (> 0.001 = consistent)")

    # ---- throughput
    rng = np.random.default_rng(0)

    def ours_fn(vocab: Vocab, a: float) -> Callable[[str], object]:
        return lambda t: sample_segmentation(t, vocab, a, rng)

    def sp_fn(a: float, nbest: int) -> Callable[[str], object]:
        return lambda t: sp.encode(t, out_type=str, enable_sampling=True, alpha=a, nbest_size=nbest)

    def bp_fn(a: float) -> Callable[[str], object]:
        return lambda t: bp.tokenize(t, alpha=a)

    configs: list[tuple[str, str, Callable[[str], object]]] = [
        ("ours (char)", "det", ours_fn(ours, -1.0)),
        ("ours (byte)", "det", ours_fn(ours_bytes, -1.0)),
        ("SentencePiece", "det", lambda t: sp.encode(t, out_type=str)),
    ]
    if bp is not None:
        configs.append(("BytePiece", "det", bp_fn(-1.0)))
    for a in args.alphas:
        key = f"a={a}"
        configs += [
            ("ours (char)", key, ours_fn(ours, a)),
            ("ours (byte)", key, ours_fn(ours_bytes, a)),
            ("SentencePiece", key, sp_fn(a, -1)),
            ("SentencePiece nbest=64", key, sp_fn(a, 64)),
        ]
        if bp is not None:
            configs.append(("BytePiece", key, bp_fn(a)))
    timings = time_all(configs, lines, args.repeats)
    cols = ["det"] + [f"a={a}" for a in args.alphas]
    names = ["ours (char)", "ours (byte)", "SentencePiece", "SentencePiece nbest=64", "BytePiece"]
    for label, which in (("MB per CPU-second", 0), ("MB per wall-second (shared machine: noisy)", 1)):
        results = {k: mb / v[which] for k, v in timings.items()}
        print(f"{label}, median of {args.repeats}:")
        print(f"{'':<26}" + "".join(f"{c:>12}" for c in cols))
        for name in names:
            if not any((name, c) in results for c in cols):
                continue
            cells = "".join(f"{results[(name, c)]:12.2f}" if (name, c) in results else f"{'-':>12}" for c in cols)
            print(f"{name:<26}{cells}")
        for c in cols:
            parts = []
            for base in ("SentencePiece", "BytePiece"):
                if (base, c) in results:
                    parts.append(f"ours(char)/{base} = {results[('ours (char)', c)] / results[(base, c)]:.2f}, "
                                 f"ours(byte)/{base} = {results[('ours (byte)', c)] / results[(base, c)]:.2f}")
            print(f"  ratios {c}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
