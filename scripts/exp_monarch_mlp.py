"""Dense-to-sparse Monarch experiment on a byte-level MLP language model (the analogue of Dao et al. 2022, Table 8).

Protocol, per seed (0, 1, 2): train a dense next-byte MLP (16 bytes of context, embedded and concatenated into 256
features, then 256 -> 1024 -> 1024 -> 256 with a residual GELU layer; 1.6 M parameters) on the standard
library's Python sources; replace every linear layer by (a) the optimal Monarch approximation (MonarchLinear,
nblocks = 4, inside the paper's 2-4 blocks) and (b) the optimal low-rank approximation with the same number of
weights (truncated SVD); fine-tune all three (dense included: the matched control) for the same steps on the same
batches; score every model on the same held-out windows (bits per byte, next-byte accuracy).
Intervals: paired bootstrap over (seed, window) pairs, 2,000 resamples (shared/specs/statistics.md).
Speed: the fine-tuning step and inference time of the three models, and single square layers at widths 1024, 2048
and 4096 (forward, and forward + backward, 4096 rows), interleaved repeats, 95% bootstrap intervals of the ratio
of median times.

    nice -n 10 .venv/bin/python scripts/exp_monarch_mlp.py                 # train + report + speed (shipped run)
    .venv/bin/python scripts/exp_monarch_mlp.py --stage report             # tables and plot from stored scores
    .venv/bin/python scripts/exp_monarch_mlp.py --stage speed              # only the timings
    .venv/bin/python scripts/exp_monarch_mlp.py --steps 20 --finetune-steps 5 --eval-count 16 --seeds 0 \\
        --work /tmp/mx --out /tmp/mx                                       # smoke run

Checkpoints and per-window scores go to --work (default instance/matrix_exp, git-ignored); the CSVs, the JSON
summary and the PNG go to --out (default backend/services/matrix/data). One thread, fixed seeds: reruns repeat.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.services.matrix.experiment import (  # noqa: E402
    ByteMLP,
    LowRankLinear,
    MLPConfig,
    convert,
    count_parameters,
    eval_windows,
    load_corpus,
    matched_rank,
    random_batch,
    train,
    window_scores,
)
from backend.services.matrix.layers import MonarchLinear  # noqa: E402
from backend.stats import Interval, paired_bootstrap, verdict  # noqa: E402

KINDS = ("dense", "monarch", "lowrank")
LABELS = {"dense": "dense (fine-tuned as well)", "monarch": "Monarch (projected, nblocks 4)",
          "lowrank": "low rank (SVD, same weights)"}
NBLOCKS = 4
DEFAULT_FINETUNE_STEPS = 200


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("all", "train", "report", "speed"), default="all")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=2000, help="dense pre-training steps")
    p.add_argument("--finetune-steps", type=int, default=DEFAULT_FINETUNE_STEPS,
                   help="fine-tuning steps after the projection (default 10%% of pre-training)")
    p.add_argument("--batch", type=int, default=256, help="(context, next byte) pairs per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--finetune-lr", type=float, default=5e-4)
    p.add_argument("--eval-count", type=int, default=512, help="held-out windows of 128 predictions")
    p.add_argument("--speed-repeats", type=int, default=15)
    p.add_argument("--work", type=Path, default=ROOT / "instance" / "matrix_exp")
    p.add_argument("--out", type=Path, default=ROOT / "backend" / "services" / "matrix" / "data")
    return p.parse_args()


def suffix(args: argparse.Namespace) -> str:
    """Output files of a run with non-default fine-tuning carry its length: exp_mlp_ft1000_results.csv."""
    return "" if args.finetune_steps == DEFAULT_FINETUNE_STEPS else f"_ft{args.finetune_steps}"


# ------------------------------------------------------------------------------------------------------ training
def run_seed(seed: int, train_data: torch.Tensor, windows: tuple[torch.Tensor, torch.Tensor],
             args: argparse.Namespace) -> None:
    """Pre-train (or load) the dense model of this seed, then convert, score, fine-tune and score each kind."""
    cfg = MLPConfig()
    ckpt = args.work / f"dense_seed{seed}.pt"
    if ckpt.exists():
        model = ByteMLP(cfg)
        model.load_state_dict(torch.load(ckpt))
    else:
        torch.manual_seed(seed)
        model = ByteMLP(cfg)
        bar = tqdm(total=args.steps, desc=f"dense pre-training, seed {seed}", file=sys.stderr)
        t0 = time.perf_counter()
        losses = train(model, train_data, steps=args.steps, batch=args.batch, lr=args.lr, warmup=args.steps // 20,
                       seed=1000 + seed, progress=lambda s, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
        bar.close()
        torch.save(model.state_dict(), ckpt)
        np.save(args.work / f"pretrain_loss_seed{seed}.npy", np.array(losses))
        (args.work / f"pretrain_seconds_seed{seed}.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    for kind in KINDS:
        scores_path = args.work / f"scores_{kind}_seed{seed}_ft{args.finetune_steps}.npz"
        if scores_path.exists():
            continue
        converted, info = convert(model, kind, nblocks=NBLOCKS)
        before = window_scores(converted, *windows)
        bar = tqdm(total=args.finetune_steps, desc=f"fine-tune {kind}, seed {seed}", file=sys.stderr)
        t0 = time.perf_counter()
        losses = train(converted, train_data, steps=args.finetune_steps, batch=args.batch, lr=args.finetune_lr,
                       warmup=max(1, args.finetune_steps // 10), seed=2000 + seed,
                       progress=lambda s, loss, bar=bar: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
        seconds = time.perf_counter() - t0
        bar.close()
        after = window_scores(converted, *windows)
        np.savez(scores_path, bits_before=before[0], acc_before=before[1], bits=after[0], acc=after[1],
                 finetune_loss=np.array(losses), finetune_seconds=seconds, params=count_parameters(converted),
                 projection_error=np.array([row["relative_error"] for row in info]),
                 block_weights=sum(row["weights"] for row in info))


# ------------------------------------------------------------------------------------------------------- report
def load_scores(seeds: list[int], work: Path, finetune_steps: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {k: [] for k in KINDS}
    for kind in KINDS:
        for seed in seeds:
            with np.load(work / f"scores_{kind}_seed{seed}_ft{finetune_steps}.npz") as z:
                out[kind].append({key: z[key] for key in z.files})
    return out


def report(seeds: list[int], args: argparse.Namespace) -> dict:
    scores = load_scores(seeds, args.work, args.finetune_steps)
    rows, summary = [], {"seeds": seeds, "windows": int(len(scores["dense"][0]["bits"])), "window_predictions": 128,
                         "pretrain_steps": args.steps, "finetune_steps": args.finetune_steps, "models": {}}
    for kind in KINDS:
        runs = scores[kind]
        per_seed_bits = [float(r["bits"].mean()) for r in runs]
        per_seed_acc = [float(r["acc"].mean()) for r in runs]
        d_bits = paired_difference(runs, scores["dense"], "bits", "bits")
        d_acc = paired_difference(runs, scores["dense"], "acc", "acc")
        d_before = paired_difference(runs, scores["dense"], "bits_before", "bits")
        entry = {
            "params": int(runs[0]["params"]), "block_weights": int(runs[0]["block_weights"]),
            "projection_error_mean": float(np.mean([r["projection_error"].mean() for r in runs])),
            "bits_before_mean": float(np.mean([r["bits_before"].mean() for r in runs])),
            "bits_mean": float(np.mean(per_seed_bits)), "bits_seed_min": min(per_seed_bits),
            "bits_seed_max": max(per_seed_bits), "acc_mean": float(np.mean(per_seed_acc)),
            "acc_seed_min": min(per_seed_acc), "acc_seed_max": max(per_seed_acc),
            "bits_minus_dense": d_bits, "acc_minus_dense": d_acc, "bits_before_minus_dense": d_before,
            "finetune_seconds_per_step": float(np.mean([float(r["finetune_seconds"]) for r in runs]))
            / args.finetune_steps,
        }
        summary["models"][kind] = entry
        for seed, r in zip(seeds, runs, strict=True):
            rows.append({"kind": kind, "seed": seed, "params": int(r["params"]),
                         "bits_before_finetune": float(r["bits_before"].mean()), "bits": float(r["bits"].mean()),
                         "accuracy": float(r["acc"].mean()),
                         "projection_error": float(r["projection_error"].mean()),
                         "finetune_seconds": float(r["finetune_seconds"])})
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"exp_mlp{suffix(args)}_results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(quality_table(summary))
    plot_quality(scores, seeds, args)
    return summary


def paired_difference(runs: list[dict], dense: list[dict], key: str, dense_key: str) -> tuple[float, float, float]:
    """Mean of (model - dense) over (seed, window) with backend.stats' paired bootstrap: the same held-out windows
    are resampled for every seed (arrays of shape (seeds, windows))."""
    iv = paired_bootstrap(np.stack([r[key] for r in runs]), np.stack([r[dense_key] for r in dense]))
    return iv.estimate, iv.low, iv.high


def fmt_ci(triple: tuple[float, float, float], scale: float = 1.0, digits: int = 3) -> str:
    p, lo, hi = (scale * v for v in triple)
    return f"{p:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def quality_table(summary: dict) -> str:
    n_seeds, n_win = len(summary["seeds"]), summary["windows"]
    dense_params = summary["models"]["dense"]["params"]
    lines = [
        f"Held-out quality: {n_seeds} seeds x {n_win} windows of 128 next-byte predictions; after {summary['pretrain_steps']} dense "
        f"steps, then {summary['finetune_steps']} fine-tuning steps for every model. "
        "Differences to dense: mean [95% paired bootstrap over windows, the same windows for every seed (backend.stats)].",
        "",
        "| model | parameters | layer rel. error | bits/byte before FT | bits/byte (seed range) | "
        "Δ bits vs dense | accuracy % (seed range) | Δ accuracy (points) | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind in KINDS:
        e = summary["models"][kind]
        if kind == "dense":
            delta_bits = delta_acc = "—"
            word = "reference"
        else:
            delta_bits, delta_acc = fmt_ci(e["bits_minus_dense"]), fmt_ci(e["acc_minus_dense"], 100, 2)
            word = "bits " + verdict(Interval(*e["bits_minus_dense"]), narrow=0.02)
        lines.append(
            f"| {LABELS[kind]} | {e['params'] / 1e6:.2f} M ({100 * e['params'] / dense_params:.0f}%) | "
            f"{e['projection_error_mean']:.3f} | {e['bits_before_mean']:.3f} | {e['bits_mean']:.3f} "
            f"({e['bits_seed_min']:.3f}–{e['bits_seed_max']:.3f}) | {delta_bits} | {100 * e['acc_mean']:.2f} "
            f"({100 * e['acc_seed_min']:.2f}–{100 * e['acc_seed_max']:.2f}) | {delta_acc} | {word} |")
    lines.append("")
    lines.append("'about equal' = the interval contains 0 and lies within ±0.02 bits/byte; 'not resolved' otherwise.")
    return "\n".join(lines)


def plot_quality(scores: dict[str, list[dict]], seeds: list[int], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"dense": "#333333", "monarch": "#b0413e", "lowrank": "#2f6690"}
    for kind in KINDS:
        for i, r in enumerate(scores[kind]):
            loss = np.asarray(r["finetune_loss"]) / math.log(2)
            smooth = np.convolve(loss, np.ones(10) / 10, mode="valid")
            ax1.plot(smooth, color=colors[kind], alpha=0.8, label=LABELS[kind] if i == 0 else None)
        before = [float(r["bits_before"].mean()) for r in scores[kind]]
        after = [float(r["bits"].mean()) for r in scores[kind]]
        x = KINDS.index(kind)
        ax2.scatter([x - 0.1] * len(before), before, color=colors[kind], marker="x")
        ax2.scatter([x + 0.1] * len(after), after, color=colors[kind], marker="o")
    ax1.set_xlabel(f"fine-tuning step (of {args.finetune_steps})")
    ax1.set_ylabel("training loss, bits/byte (10-step mean)")
    ax1.legend()
    ax2.set_xticks(range(len(KINDS)), [k for k in KINDS])
    ax2.set_ylabel("held-out bits/byte")
    ax2.set_title(f"{len(seeds)} seeds; x: right after the projection, o: after fine-tuning", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out / f"exp_mlp{suffix(args)}.png", dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------------------------------------- speed
def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, np.ndarray]:
    """Interleaved timings (one warm-up each): load spikes hit every candidate alike. Process CPU time: the runs are
    single-threaded, and on a shared machine CPU time does not count the time other processes hold the core."""
    for fn in fns.values():
        fn()
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            out[k].append(time.process_time() - t0)
    return {k: np.array(v) for k, v in out.items()}


def ratio_ci(num: np.ndarray, den: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of median times num/den with a 95% bootstrap interval (repeats resampled independently)."""
    rng = np.random.default_rng(seed)
    boot = [np.median(num[rng.integers(0, len(num), len(num))]) / np.median(den[rng.integers(0, len(den), len(den))])
            for _ in range(resamples)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(np.median(num) / np.median(den)), float(lo), float(hi)


def layer_speed(args: argparse.Namespace) -> list[dict]:
    rows = []
    tokens = 4096
    for width in tqdm((1024, 2048, 4096), desc="layer speed", file=sys.stderr):
        torch.manual_seed(0)
        rank = matched_rank(width, width, NBLOCKS)
        layers = {"dense": torch.nn.Linear(width, width), "monarch": MonarchLinear(width, width, NBLOCKS),
                  "lowrank": LowRankLinear(width, width, rank)}
        x = torch.randn(tokens, width)
        xg = x.clone().requires_grad_(True)

        def fwd(layer, x=x):
            def run():
                with torch.no_grad():
                    return layer(x)
            return run

        def fwd_bwd(layer, xg=xg):
            def run():
                layer.zero_grad(set_to_none=True)
                layer(xg).sum().backward()
            return run

        repeats = max(5, args.speed_repeats // (width // 1024))
        t_f = timed({k: fwd(v) for k, v in layers.items()}, repeats)
        t_fb = timed({k: fwd_bwd(v) for k, v in layers.items()}, repeats)
        for kind in ("monarch", "lowrank"):
            rows.append({"width": width, "kind": kind, "weights_fraction": sum(
                p.numel() for n, p in layers[kind].named_parameters() if n != "bias") / width**2,
                "forward_speedup": ratio_ci(t_f["dense"], t_f[kind]),
                "train_step_speedup": ratio_ci(t_fb["dense"], t_fb[kind]),
                "dense_forward_ms": 1e3 * float(np.median(t_f["dense"])),
                "forward_ms": 1e3 * float(np.median(t_f[kind]))})
    return rows


def model_speed(seeds: list[int], args: argparse.Namespace) -> list[dict]:
    cfg = MLPConfig()
    model = ByteMLP(cfg)
    ckpt = args.work / f"dense_seed{seeds[0]}.pt"
    if ckpt.exists():
        model.load_state_dict(torch.load(ckpt))
    models = {kind: convert(model, kind, nblocks=NBLOCKS)[0] for kind in KINDS}
    gen = torch.Generator().manual_seed(0)
    x, y = random_batch(torch.randint(0, 256, (100_000,), dtype=torch.uint8), args.batch, cfg.context, gen)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(kind):
        def run():
            m = models[kind]
            loss = F.cross_entropy(m(x), y)
            opts[kind].zero_grad(set_to_none=True)
            loss.backward()
            opts[kind].step()
        return run

    def infer(kind):
        def run():
            with torch.no_grad():
                models[kind](x)
        return run

    t_step = timed({k: step(k) for k in KINDS}, args.speed_repeats)
    t_inf = timed({k: infer(k) for k in KINDS}, args.speed_repeats)
    return [{"kind": k, "train_step_speedup": ratio_ci(t_step["dense"], t_step[k]),
             "inference_speedup": ratio_ci(t_inf["dense"], t_inf[k]),
             "train_step_ms": 1e3 * float(np.median(t_step[k])), "inference_ms": 1e3 * float(np.median(t_inf[k]))}
            for k in ("monarch", "lowrank")]


def cfg_width() -> int:
    return MLPConfig().width


def speed(seeds: list[int], args: argparse.Namespace) -> dict:
    layers = layer_speed(args)
    models = model_speed(seeds, args)
    lines = [f"Speed, 1 thread, process CPU time, {args.speed_repeats} interleaved repeats; speed-up = dense median time / "
             "model median time [95% bootstrap]:", "",
             "| width | layer | weights vs dense | forward speed-up | forward + backward speed-up | dense fwd ms |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in layers:
        lines.append(f"| {r['width']} | {r['kind']} | {100 * r['weights_fraction']:.1f}% | "
                     f"{fmt_ci(r['forward_speedup'], digits=2).replace('+', '')} | "
                     f"{fmt_ci(r['train_step_speedup'], digits=2).replace('+', '')} | {r['dense_forward_ms']:.1f} |")
    lines += ["", f"| whole model (width {cfg_width()}, batch {args.batch}) | training step speed-up | inference speed-up |",
              "|---|---:|---:|"]
    for r in models:
        lines.append(f"| {LABELS[r['kind']]} | {fmt_ci(r['train_step_speedup'], digits=2).replace('+', '')} | "
                     f"{fmt_ci(r['inference_speedup'], digits=2).replace('+', '')} |")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "exp_mlp_speed.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["scope", "width", "kind", "metric", "speedup", "ci_low", "ci_high"])
        for r in layers:
            for metric in ("forward_speedup", "train_step_speedup"):
                writer.writerow(["layer", r["width"], r["kind"], metric, *r[metric]])
        for r in models:
            for metric in ("train_step_speedup", "inference_speedup"):
                writer.writerow(["model", cfg_width(), r["kind"], metric, *r[metric]])
    return {"layers": layers, "models": models}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / f"exp_mlp{suffix(args)}_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if args.stage in ("all", "train"):
        train_data, test_data = load_corpus()
        windows = eval_windows(test_data, args.eval_count, 128, MLPConfig().context)
        for seed in seeds:
            run_seed(seed, train_data, windows, args)
    if args.stage in ("all", "train", "report"):
        summary["quality"] = report(seeds, args)
    if args.stage in ("all", "speed"):
        summary["speed"] = speed(seeds, args)
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
