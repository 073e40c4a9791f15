"""Evaluate naive continuation, Su's back-off fix (k=1 and dynamic multi-token), HF-style token healing, and a
model trained on random segmentations, on held-out sentences cut (a) inside a token, (b) at word boundaries that
split a token, (c) at token boundaries.

    .venv/bin/python scripts/eval_continuation.py [--sentences 300] [--models gpt,ngram] [--threads 1]

Prints a markdown table, then as its last line:
    partial-token exact match: naive X% fix Y%
(the tiny GPT on set (a); "fix" is Su's one-token back-off with argmax). Deterministic: seeded cuts, greedy decoding.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[1] / "backend" / "services" / "continuation" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=300, help="held-out sentences (half English, half Chinese)")
    p.add_argument("--m", type=int, default=5, help="characters compared for exact match")
    p.add_argument("--models", default="gpt,ngram")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch
    from tqdm import tqdm

    from backend.services.continuation.corpus import build_corpus
    from backend.services.continuation.evaluation import KINDS, System, evaluate, format_table, make_cuts
    from backend.services.continuation.gpt import GPTLM, load_checkpoint
    from backend.services.continuation.segsample import SegmentationSampler
    from backend.services.continuation.tokenizer import Tokenizer
    from backend.services.continuation.training import encode_sentences, train_ngram

    torch.set_num_threads(args.threads)
    t0 = time.time()
    tok = Tokenizer.from_file(str(Path(args.data) / "tokenizer.model"))
    corpus = build_corpus()
    half = args.sentences // 2
    held = [s for s in corpus.heldout if s.lang == "en"][:half] + [s for s in corpus.heldout if s.lang == "zh"][:half]
    cuts = make_cuts(tok, held, args.m, seed=args.seed)
    print(f"{len(held)} held-out sentences -> " + ", ".join(
        f"{KINDS[k]}: {sum(c.kind == k for c in cuts)}" for k in KINDS), flush=True)

    models = {}
    alpha = 0.1  # the random-segmentation sharpness (the GPT checkpoint records the one it was trained with)
    wanted = args.models.split(",")
    if "gpt" in wanted:
        gpt, meta = load_checkpoint(str(Path(args.data) / "gpt.pt"))
        rs, _ = load_checkpoint(str(Path(args.data) / "gpt_randseg.pt"))
        models["gpt"] = (GPTLM(gpt, tok.bos_id), GPTLM(rs, tok.bos_id))
        alpha = meta["randseg_alpha"]
        print(f"gpt: {sum(p.numel() for p in gpt.parameters())} parameters, held-out loss {meta['heldout_loss']}")
    if "ngram" in wanted:
        texts = [s.text for s in corpus.train]
        ngram = train_ngram(tok, encode_sentences(tok, tqdm(texts, desc="n-gram: encode", mininterval=1)))
        sampler = SegmentationSampler(tok, alpha)
        rng = np.random.default_rng(1000)
        rs_seqs = encode_sentences(tok, tqdm(texts, desc="n-gram: random segmentations", mininterval=1),
                                   lambda s: sampler.sample_ids(s, rng))
        models["ngram"] = (ngram, train_ngram(tok, rs_seqs))

    rows = []
    for name, (lm, lm_rs) in models.items():
        systems = [System("naive", lm, "naive"), System("backoff (Su, k=1)", lm, "backoff"),
                   System("backoff-multi (dynamic k)", lm, "backoff-multi"),
                   System("backoff-multi, llama.cpp prefix rule", lm, "backoff-multi", "prefixes"),
                   System("heal (HF soft bias)", lm, "heal"),
                   System("random-segmentation model, naive", lm_rs, "naive")]
        with tqdm(total=len(systems) * len(cuts), desc=f"evaluate {name}", mininterval=1) as bar:
            rows += evaluate(tok, name, systems, cuts, args.m, progress=bar.update)

    print()
    print(format_table(rows, args.m))
    print(f"\n({time.time() - t0:.0f} s; exact@{args.m}: greedy continuation's first {args.m} characters equal the "
          f"gold; nats/char: mean log-likelihood of the gold continuation (first 20 characters) per character)")
    by = {(r.model, r.system.split(" ")[0], r.kind): r for r in rows}
    for name in models:  # per model: the bars of the issue, (a) fix >= 3x naive and (c) within 1 point
        a, c = (by[(name, "naive", "inside")], by[(name, "backoff", "inside")]), (by[(name, "naive", "token")],
                                                                                    by[(name, "backoff", "token")])
        print(f"{name}: (a) naive {a[0].exact:.1f}% fix {a[1].exact:.1f}%; (c) naive {c[0].exact:.1f}% "
              f"fix {c[1].exact:.1f}%")
    main_model = "gpt" if "gpt" in models else next(iter(models))
    naive, fix = by[(main_model, "naive", "inside")], by[(main_model, "backoff", "inside")]
    print(f"partial-token exact match: naive {naive.exact:.1f}% fix {fix.exact:.1f}%")


if __name__ == "__main__":
    main()
