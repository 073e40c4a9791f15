"""Length-extrapolation experiment: small byte-level LMs trained at N = 128, evaluated at 1x .. 8x N.

Trains (fixed seeds, same batches for every model): baseline RoPE, baseline RoPE with log-n scaling, HWFA
(window RoPE layers + full NoPE log-n layer) and HWFA2 with one and two full layers. Evaluates those and
their inference-only variants (PI, ReRoPE, Leaky ReRoPE, post-hoc log n) on 'non-rep' (held-out text) and
'rep' (a held-out chunk repeated twice) sets: per-token accuracy (Su's metric) and loss, overall and per
N-sized position bucket. Writes checkpoints (float16), a long-format CSV, a training log, a JSON summary and
a PNG plot into backend/services/attention/data/ (or --out).

    nice -n 10 .venv/bin/python scripts/exp_extrapolation.py            # the shipped run
    .venv/bin/python scripts/exp_extrapolation.py --reuse               # re-evaluate stored checkpoints
    .venv/bin/python scripts/exp_extrapolation.py --steps 20 --out /tmp/x --eval-count 4   # smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.services.attention.corpus import eval_windows, load_corpus, random_batch, repeated_windows  # noqa: E402
from backend.services.attention.evaluate import bucket_means, token_stats  # noqa: E402
from backend.services.attention.experiment import (  # noqa: E402
    HWFA2_WINDOW,
    HWFA_WINDOW,
    MODELS,
    N_LAYERS,
    N_TRAIN,
    RE_W,
    VARIANTS,
)
from backend.services.attention.model import (  # noqa: E402
    LM,
    InferencePos,
    ModelConfig,
    load_checkpoint,
    round_weights,
    save_checkpoint,
)

DATA_DIR = Path(__file__).resolve().parents[1] / "backend" / "services" / "attention" / "data"

def pick_threads(requested: str, train: torch.Tensor) -> int:
    """'auto': time a few training steps with 1 and 2 threads and keep the faster."""
    if requested != "auto":
        return int(requested)
    timings = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = LM(ModelConfig(MODELS["baseline"]))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        for i in range(8):
            if i == 3:
                start = time.perf_counter()
            x, y = random_batch(train, 16, N_TRAIN, gen)
            loss = F.cross_entropy(model(x).transpose(1, 2), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        timings[threads] = (time.perf_counter() - start) / 5
    best = min(timings, key=timings.get)
    print(f"threads: s/step {timings} -> {best}")
    return best


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train_model(name: str, train: torch.Tensor, args: argparse.Namespace) -> tuple[LM, list[dict], float]:
    torch.manual_seed(args.seed)
    model = LM(ModelConfig(MODELS[name], train_len=N_TRAIN, d_model=args.d_model, n_heads=args.heads))
    model.to(args.device)  # initialised on the CPU first, so every device starts from the same weights
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed + 1)  # identical batches for every model
    log, start, smooth = [], time.perf_counter(), None
    bar = tqdm(range(args.steps), desc=f"train {name}", mininterval=5)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        x, y = random_batch(train, args.batch, N_TRAIN, gen)  # drawn on the CPU: same batches everywhere
        loss = F.cross_entropy(model(x.to(args.device)).transpose(1, 2), y.to(args.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % 25 == 0 or step == args.steps - 1:
            log.append({"model": name, "step": step, "loss": round(loss.item(), 5), "smooth_loss": round(smooth, 5)})
            bar.set_postfix(loss=f"{smooth:.3f}")
    model.eval()
    return round_weights(model.cpu()).to(args.device), log, time.perf_counter() - start


def evaluate(models: dict[str, LM], variants: list, test: torch.Tensor, args: argparse.Namespace) -> list[dict]:
    rows = []
    lengths = [N_TRAIN * m for m in args.multiples]
    sets = {}
    for T in lengths:
        sets[("non-rep", T)] = eval_windows(test, args.eval_count, T)
        sets[("rep", T)] = repeated_windows(test, args.eval_count, T)
    jobs = [(v, key) for v in variants for key in sets]
    for variant, (set_name, T) in tqdm(jobs, desc="evaluate", mininterval=5):
        model = models[variant.model].set_inference(variant.pos)
        loss, hit = token_stats(model, sets[(set_name, T)])
        row = {
            "variant": variant.name,
            "label": variant.label,
            "model": variant.model,
            "set": set_name,
            "T": T,
            "acc": round(hit.mean().item(), 5),
            "loss": round(loss.mean().item(), 5),
            # rep: the second copy is where global retrieval shows
            "acc_second_half": round(hit[:, T // 2 :].mean().item(), 5),
            "acc_buckets": " ".join(f"{a:.4f}" for a in bucket_means(hit, N_TRAIN)),
            "loss_buckets": " ".join(f"{a:.4f}" for a in bucket_means(loss, N_TRAIN)),
        }
        rows.append(row)
    for model in models.values():
        model.set_inference(InferencePos())
    return rows


def plot(results: list[dict], variants: list, train_log: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for name in MODELS:
        pts = [r for r in train_log if r["model"] == name]
        axes[0].plot([p["step"] for p in pts], [p["smooth_loss"] for p in pts], label=name)
    axes[0].set(title="training loss (EMA), N = 128", xlabel="step", ylabel="nats / byte")
    axes[0].legend(fontsize=7)
    for ax, set_name in zip(axes[1:], ["non-rep", "rep"], strict=True):
        for variant in variants:
            pts = sorted((r["T"], r["acc"]) for r in results if r["variant"] == variant.name and r["set"] == set_name)
            style = "--" if variant.model.startswith("baseline") else "-"
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], style, marker="o", ms=3, label=variant.name)
        ax.set_xscale("log", base=2)
        ax.set(title=f"{set_name}: per-token accuracy vs eval length", xlabel="eval length T", ylabel="accuracy %")
    axes[2].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def summary_table(results: list[dict], variants: list, t_max: int) -> str:
    acc = {(r["variant"], r["set"], r["T"]): 100 * r["acc"] for r in results}
    lines = [f"| method | train {N_TRAIN} (non-rep) | {t_max} rep | {t_max} non-rep |", "|---|---|---|---|"]
    for v in variants:
        lines.append(
            f"| {v.label} | {acc[(v.name, 'non-rep', N_TRAIN)]:.2f} | {acc[(v.name, 'rep', t_max)]:.2f} "
            f"| {acc[(v.name, 'non-rep', t_max)]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DATA_DIR)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", default="auto", help="'auto' measures 1 vs 2 threads")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the shipped run: see exp_summary.json)")
    ap.add_argument("--eval-count", type=int, default=32, help="sequences per test set and length")
    ap.add_argument("--multiples", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--reuse", action="store_true", help="load existing checkpoints instead of training")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    train, test = load_corpus()
    print(f"corpus: {len(train):,} train bytes, {len(test):,} held-out bytes")
    threads = pick_threads(args.threads if args.device == "cpu" else "1", train)
    torch.set_num_threads(threads)

    models, train_log, timings = {}, [], {}
    log_path = args.out / "exp_train_log.csv"
    old_log = list(csv.DictReader(log_path.open())) if args.reuse and log_path.exists() else []
    for name in args.models:
        ckpt = args.out / f"ckpt_{name}.pt"
        if args.reuse and ckpt.exists():
            models[name], extra = load_checkpoint(str(ckpt), args.device)
            timings[name] = extra.get("train_seconds")
            train_log += [
                {"model": r["model"], "step": int(r["step"]), "loss": float(r["loss"]), "smooth_loss": float(r["smooth_loss"])}
                for r in old_log
                if r["model"] == name
            ]
            continue
        model, log, seconds = train_model(name, train, args)
        save_checkpoint(model, str(ckpt), {"train_seconds": round(seconds, 1), "steps": args.steps, "seed": args.seed,
                                           "device": args.device})
        models[name], timings[name] = model, round(seconds, 1)
        train_log += log
        print(f"{name}: {seconds:.0f} s, final smoothed loss {log[-1]['smooth_loss']:.3f}")

    with log_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["model", "step", "loss", "smooth_loss"])
        writer.writeheader()
        writer.writerows(train_log)

    variants = [v for v in VARIANTS if v.model in models]
    results = evaluate(models, variants, test, args)
    with (args.out / "exp_results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    plot(results, variants, train_log, args.out / "exp_extrapolation.png")
    t_max = N_TRAIN * max(args.multiples)
    table = summary_table(results, variants, t_max)
    meta = {
        "train_len": N_TRAIN,
        "layers": N_LAYERS,
        "d_model": args.d_model,
        "heads": args.heads,
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "threads": threads,
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(args.device),
        "eval_count": args.eval_count,
        "lengths": [N_TRAIN * m for m in args.multiples],
        "train_seconds": timings,
        "hwfa_window": HWFA_WINDOW,
        "hwfa2_window": HWFA2_WINDOW,
        "hwfa2_rerope_window": RE_W,
        "variants": [{"name": v.name, "label": v.label, "model": v.model} for v in variants],
        "corpus": {"train_bytes": len(train), "test_bytes": len(test), "python": sys.version.split()[0]},
    }
    (args.out / "exp_summary.json").write_text(json.dumps(meta, indent=1))
    print(table)


if __name__ == "__main__":
    main()
