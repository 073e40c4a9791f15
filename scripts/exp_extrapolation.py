"""Length-extrapolation experiment: small byte-level LMs trained at N = 128, evaluated at 1x .. 8x N.

Trains five models (baseline RoPE, baseline RoPE with log-n scaling, HWFA, HWFA2 with one and with two full
layers) for each of three seeds, on the Python standard library's sources mixed with repeated chunks
(``corpus.mixed_batch``, so that the models learn to copy); within a seed every model sees the same batches.
Evaluates every model and its inference-only variants (PI, ReRoPE, Leaky ReRoPE, post-hoc log n) on the same
128 held-out windows per test set and length: 'non-rep' (held-out text) and 'rep' (a held-out chunk of T/2
repeated twice). Scores are per-token accuracy (Su's metric) and loss per window, so every comparison is paired
(same windows, same seeds); intervals are paired bootstraps over windows within seeds (``backend.stats``).

Steps (each resumable; a full run is ``all``):
    train     one or more (model, seed) runs -> RUNS/ckpt_<model>_s<seed>.pt, RUNS/log_<model>_s<seed>.csv
    evaluate  every variant of the given seeds' checkpoints -> RUNS/windows_s<seed>.csv.gz
    report    -> OUT/exp_windows.csv.gz (per window), exp_results.csv (means, intervals, seed spread),
              exp_claims.csv (the README's sentences with paired intervals), exp_train_log.csv,
              exp_summary.json, exp_extrapolation.png; prints the README's tables
Seed 0's checkpoints are copied to OUT/ckpt_<model>.pt: the service scores texts with them.

    nice -n 10 .venv/bin/python scripts/exp_extrapolation.py all                 # everything, one process
    nice -n 10 .venv/bin/python scripts/exp_extrapolation.py train --models hwfa --seeds 1   # one run
    .venv/bin/python scripts/exp_extrapolation.py report                         # tables from stored runs
    .venv/bin/python scripts/exp_extrapolation.py all --steps 20 --eval-count 4 --out /tmp/x --runs /tmp/x/runs
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.services.attention.corpus import eval_windows, load_corpus, mixed_batch, repeated_windows  # noqa: E402
from backend.services.attention.evaluate import token_stats  # noqa: E402
from backend.services.attention.experiment import (  # noqa: E402
    CLAIMS,
    EVAL_LENGTHS,
    HWFA2_WINDOW,
    HWFA_WINDOW,
    MODEL_LABELS,
    MODELS,
    N_LAYERS,
    N_TRAIN,
    RE_W,
    SEEDS,
    SU_TABLE,
    VARIANTS,
    VARIANTS_BY_NAME,
)
from backend.services.attention.model import (  # noqa: E402
    LM,
    InferencePos,
    ModelConfig,
    load_checkpoint,
    round_weights,
    save_checkpoint,
)
from backend.stats import bootstrap_mean, paired_bootstrap, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "backend" / "services" / "attention" / "data"
RUNS_DIR = ROOT / "instance" / "attention_runs"
RESAMPLES = 2000
NARROW = 0.5  # accuracy points: an interval containing 0 and inside +/- this is "about equal"


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


# ------------------------------------------------------------------------------------------------ train

@torch.no_grad()
def copy_probe(model: LM, probe: torch.Tensor) -> tuple[float, float]:
    """Accuracy on the first and the second copy of held-out rep windows at T = N: copying shows as second > first."""
    model.eval()
    _, hit = token_stats(model, probe)
    model.train()
    half = probe.shape[1] // 2
    return hit[:, :half].mean().item(), hit[:, half:].mean().item()


def train_one(name: str, seed: int, train: torch.Tensor, probe: torch.Tensor, args: argparse.Namespace) -> None:
    torch.manual_seed(1000 + seed)
    model = LM(ModelConfig(MODELS[name], train_len=N_TRAIN, d_model=args.d_model, n_heads=args.heads))
    model.to(args.device)  # initialised on the CPU first: every device starts from the same weights
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(2000 + seed)  # identical batches for every model of this seed
    log, start, smooth = [], time.perf_counter(), None
    bar = tqdm(range(args.steps), desc=f"train {name} seed {seed}", mininterval=10)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        x, y = mixed_batch(train, args.batch, N_TRAIN, gen, repeat_fraction=args.repeat_fraction)  # on the CPU
        loss = F.cross_entropy(model(x.to(args.device)).transpose(1, 2), y.to(args.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % 25 == 0 or step == args.steps - 1:
            row = {"model": name, "seed": seed, "step": step, "loss": round(loss.item(), 5),
                   "smooth_loss": round(smooth, 5), "copy_first": "", "copy_second": ""}
            if step % args.probe_every == 0 or step == args.steps - 1:
                first, second = copy_probe(model, probe)
                row.update(copy_first=round(first, 4), copy_second=round(second, 4))
                bar.set_postfix(loss=f"{smooth:.3f}", copy=f"{first:.2f}->{second:.2f}")
            log.append(row)
    seconds = time.perf_counter() - start
    model.eval()
    round_weights(model.cpu())  # evaluate exactly what the float16 checkpoint holds
    extra = {"train_seconds": round(seconds, 1), "steps": args.steps, "seed": seed, "batch": args.batch,
             "repeat_fraction": args.repeat_fraction, "lr": args.lr, "device": args.device}
    args.runs.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, str(args.runs / f"ckpt_{name}_s{seed}.pt"), extra)
    write_csv(args.runs / f"log_{name}_s{seed}.csv", log)
    if seed == SEEDS[0]:
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.runs / f"ckpt_{name}_s{seed}.pt", args.out / f"ckpt_{name}.pt")
    print(f"{name} seed {seed}: {seconds:.0f} s, final smoothed loss {smooth:.3f}", flush=True)


def cmd_train(args: argparse.Namespace) -> None:
    train, test = load_corpus()
    probe = repeated_windows(test, 32, N_TRAIN)
    for seed in args.seeds:
        for name in args.models:
            if args.skip_existing and (args.runs / f"ckpt_{name}_s{seed}.pt").exists():
                continue
            train_one(name, seed, train, probe, args)


# --------------------------------------------------------------------------------------------- evaluate

def test_sets(test: torch.Tensor, count: int, lengths: list[int]) -> dict[tuple[str, int], torch.Tensor]:
    sets = {}
    for T in lengths:
        sets[("non-rep", T)] = eval_windows(test, count, T)
        sets[("rep", T)] = repeated_windows(test, count, T)
    return sets


def cmd_evaluate(args: argparse.Namespace) -> None:
    _, test = load_corpus()
    sets = test_sets(test, args.eval_count, args.lengths)
    for seed in args.seeds:
        models = {}
        for name in MODELS:
            path = args.runs / f"ckpt_{name}_s{seed}.pt"
            if path.exists():
                models[name], _ = load_checkpoint(str(path), args.device)
        variants = [v for v in VARIANTS if v.model in models]
        rows = []
        jobs = [(v, key) for v in variants for key in sets]
        for variant, (set_name, T) in tqdm(jobs, desc=f"evaluate seed {seed}", mininterval=10):
            model = models[variant.model].set_inference(variant.pos)
            loss, hit = token_stats(model, sets[(set_name, T)])
            model.set_inference(InferencePos())
            for w in range(hit.shape[0]):
                rows.append({"variant": variant.name, "seed": seed, "set": set_name, "T": T, "window": w,
                             "acc": f"{hit[w].mean().item():.6f}", "loss": f"{loss[w].mean().item():.6f}",
                             "acc_second_half": f"{hit[w, T // 2:].mean().item():.6f}"})
        with gzip.open(args.runs / f"windows_s{seed}.csv.gz", "wt", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"seed {seed}: {len(variants)} variants x {len(sets)} sets evaluated", flush=True)


# ----------------------------------------------------------------------------------------------- report

def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def load_windows(paths: list[Path]) -> dict[tuple[str, str, int, str], tuple[tuple[int, ...], np.ndarray]]:
    """(variant, set, T, metric) -> (its seeds in ascending order, array (seeds, windows))."""
    raw: dict[tuple, dict[int, dict[int, float]]] = {}
    for path in paths:
        with gzip.open(path, "rt", newline="") as f:
            for r in csv.DictReader(f):
                for metric in ("acc", "loss", "acc_second_half"):
                    key = (r["variant"], r["set"], int(r["T"]), metric)
                    raw.setdefault(key, {}).setdefault(int(r["seed"]), {})[int(r["window"])] = float(r[metric])
    out = {}
    for key, by_seed in raw.items():
        seeds = sorted(by_seed)
        out[key] = (tuple(seeds), np.array([[by_seed[s][w] for w in sorted(by_seed[s])] for s in seeds]))
    return out


def aggregate(windows: dict, lengths: list[int]) -> list[dict]:
    rows = []
    for v in VARIANTS:
        for set_name in ("non-rep", "rep"):
            for T in lengths:
                if (v.name, set_name, T, "acc") not in windows:
                    continue
                row = {"variant": v.name, "label": v.label, "model": v.model, "set": set_name, "T": T}
                for metric in ("acc", "loss", "acc_second_half"):
                    _, values = windows[(v.name, set_name, T, metric)]
                    ci = bootstrap_mean(values, n_resamples=RESAMPLES, seed=0)
                    row[metric] = round(ci.estimate, 5)
                    row[f"{metric}_low"], row[f"{metric}_high"] = round(ci.low, 5), round(ci.high, 5)
                    row[f"{metric}_seeds"] = " ".join(f"{m:.5f}" for m in values.mean(axis=1))
                row["seeds"] = values.shape[0]
                row["windows"] = values.shape[1]
                rows.append(row)
    return rows


def judge(estimate_interval, su: float | None, su_tie: bool) -> tuple[str, str]:
    """(the words the interval allows, how it stands against Su's difference).

    A direction reproduces only when our interval excludes 0 on Su's side; Su's ties (his words) reproduce
    when ours is "about equal" (contains 0, within +/- NARROW points)."""
    words = verdict(estimate_interval, narrow=NARROW)
    if su is None:
        return words, "no published pair"
    if su_tie:
        return words, {"about equal": "reproduces (a tie)", "not resolved": "not resolved at this n"}.get(
            words, "differs (Su: a tie)")
    if words == "not resolved":
        return words, "not resolved at this n"
    if words == "about equal":
        return words, f"a tie here (Su: {su:+.2f})"
    same = (words == "higher") == (su > 0)
    return words, "reproduces" if same else "opposite"


def claims(windows: dict) -> list[dict]:
    rows = []
    for c in CLAIMS:
        a, b = windows.get((c.a, c.set, c.T, c.metric)), windows.get((c.b, c.set, c.T, c.metric))
        if a is None or b is None:
            continue
        # pair on the seeds both sides have (a model may have fewer finished seeds than another)
        common = sorted(set(a[0]) & set(b[0]))
        if not common:
            continue
        a, b = (side[1][[side[0].index(s) for s in common]] for side in (a, b))
        ci = paired_bootstrap(a * 100, b * 100, n_resamples=RESAMPLES, seed=0)
        words, against = judge(ci, c.su, c.su_tie)
        per_seed = (a - b).mean(axis=1) * 100
        rows.append({
            "claim": c.key, "text": c.text, "a": c.a, "b": c.b, "set": c.set, "T": c.T, "metric": c.metric,
            "seeds": a.shape[0], "windows": a.shape[1],
            "difference": round(ci.estimate, 3), "low": round(ci.low, 3), "high": round(ci.high, 3),
            "per_seed": " ".join(f"{d:+.2f}" for d in per_seed), "words": words,
            "su": "" if c.su is None else round(c.su, 2), "su_rows": c.su_rows, "against_su": against,
        })
    return rows


def fmt_ci(row: dict, metric: str) -> str:
    return f"{100 * row[metric]:.2f} [{100 * row[metric + '_low']:.2f}, {100 * row[metric + '_high']:.2f}]"


def results_table(results: list[dict], t_max: int) -> str:
    by = {(r["variant"], r["set"], r["T"]): r for r in results}
    lines = [f"| variant | train {N_TRAIN} (non-rep) | {t_max} rep | {t_max} rep, 2nd half | {t_max} non-rep "
             "| Su's row | train | rep | non-rep |", "|---|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        if (v.name, "non-rep", N_TRAIN) not in by:
            continue
        su = SU_TABLE.get(v.name)
        su_cells = f"{su[0]} | {su[1]} | {su[2]} | {su[3]}" if su else "— | | |"
        rep = by[(v.name, "rep", t_max)]
        lines.append(f"| {v.label} | {fmt_ci(by[(v.name, 'non-rep', N_TRAIN)], 'acc')} | {fmt_ci(rep, 'acc')} "
                     f"| {fmt_ci(rep, 'acc_second_half')} | {fmt_ci(by[(v.name, 'non-rep', t_max)], 'acc')} "
                     f"| {su_cells} |")
    return "\n".join(lines)


def claims_table(rows: list[dict]) -> str:
    lines = ["| claim | where | ours: a - b, points [95% CI] | per seed | words | Su: a - b | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        where = f"{r['set']} T={r['T']}" + (", 2nd half" if r["metric"] == "acc_second_half" else "")
        su = f"{r['su']:+.2f} ({r['su_rows']})" if r["su"] != "" else "—"
        lines.append(f"| {r['text']} | {where} | {r['difference']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] "
                     f"| {r['per_seed']} | {r['words']} | {su} | {r['against_su']} |")
    return "\n".join(lines)


def plot(results: list[dict], train_log: list[dict], lengths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ["rope", "pi_k8", "rerope_w64", "rerope_w64_logn_dagger", "leaky_w32_k32", "hwfa", "hwfa2_f1",
             "hwfa2_f2"]
    fig, axes = plt.subplots(1, 4, figsize=(20, 5.2))
    for name in MODELS:
        rows = [r for r in train_log if r["model"] == name]
        if not rows:  # a model not trained in this run: no empty legend entry
            continue
        steps = sorted({r["step"] for r in rows})
        mean = [np.mean([r["smooth_loss"] for r in rows if r["step"] == step]) for step in steps]
        axes[0].plot(steps, mean, label=MODEL_LABELS[name])
        probes = sorted({r["step"] for r in rows if r.get("copy_second") not in (None, "")})
        copy = [100 * np.mean([float(r["copy_second"]) for r in rows if r["step"] == step and r["copy_second"] != ""])
                for step in probes]
        axes[1].plot(probes, copy, marker="o", ms=3, label=MODEL_LABELS[name])
    n_seeds = len({r["seed"] for r in train_log})
    seeds_text = f"mean of {n_seeds} seeds" if n_seeds > 1 else "1 seed"
    axes[0].set(title=f"training loss (EMA, {seeds_text}), N = {N_TRAIN}", xlabel="step",
                ylabel="nats / byte", ylim=(None, 3))
    axes[0].legend(fontsize=8, loc="upper right")  # the curves fall from the top left: that corner stays free
    axes[1].set(title="copy probe: accuracy on the second copy (T = N)", xlabel="step", ylabel="accuracy %")
    by = {(r["variant"], r["set"], r["T"]): r for r in results}
    for ax, (set_name, metric, title) in zip(axes[2:], [("non-rep", "acc", "non-rep: accuracy"),
                                                         ("rep", "acc_second_half", "rep: accuracy on the copy")],
                                             strict=True):
        for name in shown:
            rows = [by[(name, set_name, T)] for T in lengths if (name, set_name, T) in by]
            if not rows:
                continue
            y = np.array([100 * r[metric] for r in rows])
            err = np.array([[100 * (r[metric] - r[metric + "_low"]) for r in rows],
                            [100 * (r[metric + "_high"] - r[metric]) for r in rows]])
            style = "--" if name.startswith(("rope", "pi")) else "-"  # plain RoPE and PI dashed, as on the page
            ax.errorbar([r["T"] for r in rows], y, yerr=err, fmt=style, marker="o", ms=3, capsize=2,
                        label=VARIANTS_BY_NAME[name].label)
        ax.axvline(N_TRAIN, color="grey", ls=":", lw=1)
        ax.text(N_TRAIN * 1.04, ax.get_ylim()[0], " training length", color="grey", fontsize=8, va="bottom")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.set(title=f"{title} vs length (95% CI)", xlabel="evaluation length T (bytes)", ylabel="accuracy %")
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=80)


def cmd_report(args: argparse.Namespace) -> None:
    paths = sorted(args.runs.glob("windows_s*.csv.gz"))
    if not paths:
        sys.exit(f"no evaluated runs in {args.runs}: run the train and evaluate steps first")
    windows = load_windows(paths)
    seeds = sorted({int(p.name[len("windows_s"):-len(".csv.gz")]) for p in paths})
    args.out.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out / "exp_windows.csv.gz", "wt", newline="") as out:
        out.write("variant,seed,set,T,window,acc,loss,acc_second_half\n")
        for path in paths:
            with gzip.open(path, "rt", newline="") as f:
                next(f)
                shutil.copyfileobj(f, out)
    lengths = sorted({key[2] for key in windows})
    results = aggregate(windows, lengths)
    write_csv(args.out / "exp_results.csv", results)
    claim_rows = claims(windows)
    if claim_rows:
        write_csv(args.out / "exp_claims.csv", claim_rows)
    train_log, timings = [], {}
    for path in sorted(args.runs.glob("log_*_s*.csv")):
        with path.open(newline="") as f:
            train_log += [{"model": r["model"], "seed": int(r["seed"]), "step": int(r["step"]),
                           "loss": float(r["loss"]), "smooth_loss": float(r["smooth_loss"]),
                           "copy_first": r.get("copy_first", ""), "copy_second": r.get("copy_second", "")}
                          for r in csv.DictReader(f)]
    extras = {}
    for path in sorted(args.runs.glob("ckpt_*_s*.pt")):
        extra = torch.load(path, map_location="cpu", weights_only=True).get("extra", {})
        timings[path.stem[len("ckpt_"):]] = extra.get("train_seconds")
        extras = extra
    write_csv(args.out / "exp_train_log.csv", train_log)
    plot(results, train_log, lengths, args.out / "exp_extrapolation.png")
    _, test = load_corpus()
    summary = {
        "train_len": N_TRAIN, "layers": N_LAYERS, "d_model": args.d_model, "heads": args.heads,
        "steps": extras.get("steps"), "batch": extras.get("batch"), "lr": extras.get("lr"),
        "repeat_fraction": extras.get("repeat_fraction"), "seeds": seeds, "threads": 1,
        "device": extras.get("device", "cpu"),
        "eval_count": int(results[0]["windows"]), "lengths": lengths, "train_seconds": timings,
        "hwfa_window": HWFA_WINDOW, "hwfa2_window": HWFA2_WINDOW, "hwfa2_rerope_window": RE_W,
        "bootstrap_resamples": RESAMPLES, "narrow_points": NARROW,
        "variants": [{"name": v.name, "label": v.label, "model": v.model} for v in VARIANTS],
        "model_labels": MODEL_LABELS,
        "corpus": {"test_bytes": len(test), "python": sys.version.split()[0]},
    }
    (args.out / "exp_summary.json").write_text(json.dumps(summary, indent=1))
    t_max = max(lengths)
    print(f"seeds {seeds}, {results[0]['windows']} windows per set and length; accuracy % [95% CI]\n")
    print(results_table(results, t_max))
    print()
    print(claims_table(claim_rows))


# ------------------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["train", "evaluate", "report", "all"])
    ap.add_argument("--out", type=Path, default=DATA_DIR, help="where the shipped results go")
    ap.add_argument("--runs", type=Path, default=RUNS_DIR, help="checkpoints, logs and per-seed evaluations")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--probe-every", type=int, default=250, help="steps between copy probes in the training log")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--repeat-fraction", type=float, default=0.75)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is at hand (say so in the README)")
    ap.add_argument("--eval-count", type=int, default=128, help="windows per test set and length")
    ap.add_argument("--lengths", type=int, nargs="+", default=list(EVAL_LENGTHS), help="evaluation lengths T")
    ap.add_argument("--skip-existing", action="store_true", help="train: keep checkpoints already in --runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.step in ("train", "all"):
        cmd_train(args)
    if args.step in ("evaluate", "all"):
        cmd_evaluate(args)
    if args.step in ("report", "all"):
        cmd_report(args)


if __name__ == "__main__":
    main()
