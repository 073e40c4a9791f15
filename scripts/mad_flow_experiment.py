"""A misspecified learned generator in the three self-consuming loops (issue 18): does the augmentation loop
degrade slowly, as the paper reports for its deep models, and are the flow's artifacts amplified?

Generator: a RealNVP flow (8 affine couplings, hidden 64, 800 Adam steps of batch 256 per generation, from
scratch each generation; the paper's App. B.4 flow setting), against a correctly specified control: a GMM
with K = 8 components fitted by EM. Target: the ring of 8 Gaussians (radius 2, std 0.1). A flow is a smooth
bijection of a Gaussian, so it cannot separate the modes completely: part of its mass sits on bridges between
them, the artifact we track. Loops (paper Sec. 3-5): fully synthetic (2000 synthetic per generation),
synthetic augmentation (the fixed 2000 real points of generation 1 + 2000 synthetic), fresh data (2000 fresh
real + 2000 synthetic). lam in {1, 0.75}: flow latent N(0, lam I) (the paper's flow bias); GMM component
covariances x lam (our mechanism, not the paper's). Chains: independent seeds (own data, initialisation and
minibatch order); chain r starts from the same G_1 in every loop, so loops are compared chain by chain.

Metrics per generation, on 2000 items per chain:
- nll: negative log-likelihood of a fixed held-out real set under G_t (nats/point; the same real points for
  every t and loop, so differences are paired by item), summarised by each chain's median over points,
  averaged over chains (a flow can put a density of e^-30000 on one tail point). The flow's likelihood score.
- off_mode: share of G_t's samples (with bias lam) farther than 3 std from every mode: the bridge artifact.
- precision / recall (k = 5, Kynkaanniemi et al.), modes covered, Frechet distance of the model's moments.
Intervals: 95% paired percentile bootstrap over items (backend/stats.py, 2000 resamples) on (chains, items)
arrays, with the spread across chains (seeds) next to it, per ``shared/specs/statistics.md``. "Late" = mean
over the last 3 generations.

    PYTHONPATH=. .venv/bin/python scripts/mad_flow_experiment.py            # everything (~25 min idle, 1 thread)
    PYTHONPATH=. .venv/bin/python scripts/mad_flow_experiment.py --lam 1    # one lam (the cache keeps the rest)
    PYTHONPATH=. .venv/bin/python scripts/mad_flow_experiment.py --quick    # smoke run (tiny flow, 4 generations)

Writes backend/services/mad/data/flow_experiment_{chains,summary}.csv, docs/figures/mad_flow_*.png, and caches
per-item arrays in backend/services/mad/data/cache/ (not committed; delete it to recompute).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.services.mad import SimConfig, iterate, ring  # noqa: E402
from backend.services.mad import metrics as M  # noqa: E402
from backend.stats import Interval, bootstrap_indices, bootstrap_mean, paired_bootstrap, verdict  # noqa: E402

DATA = ROOT / "backend" / "services" / "mad" / "data"
CACHE = DATA / "cache"
FIGURES = ROOT / "docs" / "figures"
LOOPS = ("fully_synthetic", "synthetic_augmentation", "fresh_data")
LOOP_NAMES = {"fully_synthetic": "fully synthetic", "synthetic_augmentation": "augmentation", "fresh_data": "fresh"}
MODELS = ("flow", "gmm")
ITEM_METRICS = ("nll", "off_mode", "precision", "recall")
PAIRED = {"nll": True, "recall": True, "off_mode": False, "precision": False}  # items shared across t and loops?
LOWER_IS_WORSE = {"precision", "recall", "modes_covered"}
SEED = 18
TARGET = ring(8, radius=2.0, std=0.1)
OFF_MODE_STD = 3.0  # a sample is off-mode beyond 3 std of every mode (real data: 1.1% in 2-D)


def config(model: str, loop: str, lam: float, args) -> SimConfig:
    n = args.n
    return SimConfig(
        target=TARGET, model=model, loop=loop, lam=lam, n_ini=n, n_real=n, n_synth=n,
        generations=args.generations, replicates=args.chains, gmm_components=8, metrics=(),
        flow_layers=args.layers, flow_hidden=args.hidden, flow_steps=args.steps, seed=SEED,
    )


def run_one(model: str, loop: str, lam: float, args, bar) -> dict[str, np.ndarray]:
    """Per-item arrays (T, R, items) and per-chain numbers (T, R) for one (model, loop, lam)."""
    cfg = config(model, loop, lam, args)
    T, R, m = cfg.generations, cfg.replicates, args.n_eval
    real = TARGET.sample(np.random.default_rng([SEED, 2]), (R, m))  # held-out real set, shared by every run
    real_radii = [M.knn_radii(real[j], 5) for j in range(R)]
    out = {k: np.empty((T, R, m), dtype=np.float32 if k == "nll" else bool) for k in ITEM_METRICS}
    out.update({k: np.empty((T, R)) for k in ("fd", "modes_covered")})
    out["seconds"] = np.empty(T)  # CPU time of generation t: its fit (all chains at once) and its evaluation
    samples = np.empty((T, min(R, 1), m, 2), dtype=np.float32)
    start = time.process_time()
    for t, g in iterate(cfg, np.random.default_rng(cfg.seed)):
        i = t - 1
        out["seconds"][i] = time.process_time() - start
        fake = g.sample(np.random.default_rng([SEED, 3, t]), m, lam)
        samples[i] = fake[:1]
        out["nll"][i] = -g.log_prob(real)
        out["fd"][i] = M.frechet_to_target(g, TARGET)
        d2 = ((fake[:, :, None, :] - TARGET.modes[None, None]) ** 2).sum(axis=3).min(axis=2)
        out["off_mode"][i] = d2 > (OFF_MODE_STD * TARGET.std) ** 2
        for j in range(R):
            fake_radii = M.knn_radii(fake[j], 5)
            d2 = M._sq_dists(fake[j], real[j])
            out["precision"][i, j] = np.any(d2 <= real_radii[j][None, :], axis=1)
            out["recall"][i, j] = np.any(d2 <= fake_radii[:, None], axis=0)
            out["modes_covered"][i, j] = M.modes_covered(fake[j], TARGET.modes, TARGET.std, TARGET.weights)[0]
        bar.update()
        start = time.process_time()
    out["samples"] = samples
    return out


def cache_path(model: str, loop: str, lam: float, args) -> Path:
    tag = f"{model}_{loop}_lam{lam:g}_T{args.generations}_R{args.chains}_n{args.n}_s{args.steps}_h{args.hidden}_L{args.layers}"
    return CACHE / f"{tag}.npz"


def load_or_run(model: str, loop: str, lam: float, args, bar) -> dict[str, np.ndarray]:
    path = cache_path(model, loop, lam, args)
    if path.exists():
        bar.update(args.generations)
        with np.load(path) as f:
            return dict(f)
    result = run_one(model, loop, lam, args, bar)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **result)
    return result


def window(arrays: np.ndarray, start: int, k: int = 3) -> np.ndarray:
    """Per-item mean over generations start..start+k-1 (0-based): (R, items)."""
    return arrays[start : start + k].astype(np.float64).mean(axis=0)


def late(arrays: np.ndarray, k: int = 3) -> np.ndarray:
    """Per-item mean over the last k generations: (R, items)."""
    return window(arrays, arrays.shape[0] - k, k)


def mid(arrays: np.ndarray, k: int = 3) -> np.ndarray:
    """Per-item mean over the k generations around the middle of the run: (R, items)."""
    return window(arrays, max(1, arrays.shape[0] // 2 - k // 2 - 1), k)


def first(arrays: np.ndarray) -> np.ndarray:
    return arrays[0].astype(np.float64)


# Half-widths within which an interval that contains 0 reads "about equal" (statistics.md's wording).
NARROW = {"nll": 0.05, "off_mode": 0.02, "precision": 0.02, "recall": 0.02}


# The NLL is summarised by its median over held-out points, per chain: a flow can give a point in a tail a density
# of ~e^-30000 (one chain at t = 1 here), and a mean over points would report that single point.
ROBUST = {"nll"}


def chain_median_bootstrap(diff: np.ndarray, seed: int, n_resamples: int = 2000) -> Interval:
    """Mean over chains of each chain's median over items of ``diff`` (chains, items), with a percentile interval
    from resampling items (backend/stats.py's index draw; the same items for every chain, so chains stay paired).
    Medians are taken per chain first: a median of chain-averaged items would let one chain's heavy tail decide."""
    idx = bootstrap_indices(diff.shape[1], n_resamples, seed)
    boot = np.mean([np.median(row[idx], axis=1) for row in diff], axis=0)
    low, high = np.quantile(boot, [0.025, 0.975])
    return Interval(float(np.median(diff, axis=1).mean()), float(low), float(high), 0.95, diff.shape[1])


def change_interval(a: np.ndarray, b: np.ndarray, metric: str, seed: int) -> Interval:
    """mean over items (NLL: per-chain median, averaged over chains) of a - b, items paired within each chain;
    (chains, items) arrays."""
    if metric in ROBUST:
        return chain_median_bootstrap(a - b, seed)
    return paired_bootstrap(a, b, seed=seed)


def level_interval(a: np.ndarray, metric: str, seed: int) -> Interval:
    if metric in ROBUST:
        return chain_median_bootstrap(a, seed)
    return bootstrap_mean(a, seed=seed)


def per_chain(a: np.ndarray, metric: str) -> np.ndarray:
    """One number per chain (seed): the statistic over its items (nll: median of the per-item changes)."""
    return np.median(a, axis=1) if metric in ROBUST else a.mean(axis=1)


def words(iv: Interval, metric: str) -> str:
    """stats.verdict's words for a change, with what the direction means for this metric."""
    word = verdict(iv, narrow=NARROW[metric])
    if word in ("higher", "lower"):
        worse = (word == "higher") != (metric in LOWER_IS_WORSE)
        return f"{word} ({'worse' if worse else 'better'})"
    return word


def seed_spread(delta_per_chain: np.ndarray) -> str:
    return f"{delta_per_chain.min():+.3f}..{delta_per_chain.max():+.3f}"


def write_chain_csv(results: dict, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "lam", "loop", "t", "chain", "nll_median", "off_mode", "precision", "recall", "modes_covered",
                    "fd", "fit_cpu_s"])
        for (model, lam, loop), res in results.items():
            T, R = res["fd"].shape
            for i in range(T):
                for j in range(R):
                    w.writerow([model, lam, loop, i + 1, j,
                                *(f"{np.median(res[k][i, j]) if k in ROBUST else res[k][i, j].mean():.5g}"
                                  for k in ITEM_METRICS),
                                int(res["modes_covered"][i, j]), f"{res['fd'][i, j]:.5g}",
                                f"{res['seconds'][i]:.3g}"])


def summarize(results: dict, lams: list[float], args, path: Path) -> list[str]:
    """The tables (printed and written to CSV): levels, changes and the loop contrasts, with 95% intervals.

    Intervals: backend/stats.py's paired bootstrap over items (2000 resamples) on (chains, items) arrays, items
    paired within a chain by index (the same held-out real point for nll and recall; the i-th generated sample of
    each generation for off_mode and precision: independent draws, for which pairing is valid but does not
    narrow the interval). Resampling items keeps every chain's value of an item together (nll: the same item
    draw through stats.bootstrap_indices, per-chain medians averaged); the spread of the change across chains
    (seeds) is printed next to it, per statistics.md. Changes: late (last 3 generations) -
    generation 1, and late - mid (3 generations around the middle of the run): does the loop still drift?
    """
    lines = []
    rows = []
    T = args.generations
    m0 = max(1, T // 2 - 2)
    for model in MODELS:
        for lam in lams:
            runs = {loop: results.get((model, lam, loop)) for loop in LOOPS}
            if any(r is None for r in runs.values()):
                continue
            R = runs[LOOPS[0]]["fd"].shape[1]
            lines.append(f"\n{model}, lam = {lam:g}: {R} chains (seeds) x {args.n_eval} items, generations 1..{T}; "
                         f"late = t {T - 2}..{T}, mid = t {m0 + 1}..{m0 + 3}; nll: each chain's median over held-out "
                         f"points, averaged over chains; 95% paired bootstrap over items; 'chains': the change's range over the {R} chains")
            lines.append(f"{'metric':<10} {'loop':<15} {'t = 1':>21} {'late':>21} {'late - t1':>26} "
                         f"{'chains':>15}  {'words':<15} {'late - mid':>26}  words")
            for metric in ITEM_METRICS:
                for loop in LOOPS:
                    res = runs[loop]
                    t1, tm, tl = first(res[metric]), mid(res[metric]), late(res[metric])
                    lvl1, lvl_late = level_interval(t1, metric, 1), level_interval(tl, metric, 2)
                    delta = change_interval(tl, t1, metric, 3)
                    drift = change_interval(tl, tm, metric, 5)
                    spread = seed_spread(per_chain(tl - t1, metric))
                    lines.append(f"{metric:<10} {LOOP_NAMES[loop]:<15} {_fmt(lvl1):>21} {_fmt(lvl_late):>21} "
                                 f"{delta.format():>26} {spread:>15}  {words(delta, metric):<15} "
                                 f"{drift.format():>26}  {words(drift, metric)}")
                    rows.append([model, lam, metric, loop, "level_t1", lvl1])
                    rows.append([model, lam, metric, loop, "level_late", lvl_late])
                    rows.append([model, lam, metric, loop, "late_minus_t1", delta])
                    rows.append([model, lam, metric, loop, "late_minus_mid", drift])
            lines.append("contrasts of the change (late - t1) between loops, chain by chain (same G_1, same items):")
            for metric in ITEM_METRICS:
                for a, b in (("synthetic_augmentation", "fully_synthetic"), ("synthetic_augmentation", "fresh_data")):
                    da = late(runs[a][metric]) - first(runs[a][metric])
                    db = late(runs[b][metric]) - first(runs[b][metric])
                    iv = change_interval(da, db, metric, 4)
                    spread = seed_spread(per_chain(da - db, metric))
                    lines.append(f"  {metric:<10} {LOOP_NAMES[a]} - {LOOP_NAMES[b]:<16} {iv.format():>26} "
                                 f"{spread:>15}  {words(iv, metric)}")
                    rows.append([model, lam, metric, f"{a} - {b}", "change_difference", iv])
            fd = {loop: runs[loop]["fd"] for loop in LOOPS}
            lines.append("Frechet distance (mean over chains, t = 1 -> T): " + "; ".join(
                f"{LOOP_NAMES[k]} {v[0].mean():.3f} -> {v[-1].mean():.3f}" for k, v in fd.items()))
            modes = {loop: runs[loop]["modes_covered"] for loop in LOOPS}
            lines.append("modes covered of 8 (mean over chains, t = 1 -> T): " + "; ".join(
                f"{LOOP_NAMES[k]} {v[0].mean():.1f} -> {v[-1].mean():.1f}" for k, v in modes.items()))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "lam", "metric", "loop", "quantity", "estimate", "ci_low", "ci_high"])
        for *head, iv in rows:
            w.writerow([*head, *(f"{v:.5g}" for v in (iv.estimate, iv.low, iv.high))])
    return lines


def _fmt(iv: Interval) -> str:
    return f"{iv.estimate:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


def plot_curves(results: dict, lams: list[float], path: Path) -> None:
    metrics = ("nll", "off_mode", "precision", "recall")
    titles = {"nll": "held-out real NLL (median, nats)", "off_mode": "off-mode share (bridge artifacts)",
              "precision": "precision (k = 5)", "recall": "recall (k = 5)"}
    colors = {"fully_synthetic": "#b0413e", "synthetic_augmentation": "#2f6690", "fresh_data": "#3a7d44"}
    fig, axes = plt.subplots(len(MODELS), len(metrics), figsize=(17, 7.5), squeeze=False)
    for row, model in enumerate(MODELS):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            for lam in lams:
                for loop in LOOPS:
                    res = results.get((model, lam, loop))
                    if res is None:
                        continue
                    values = res[metric].astype(np.float64)
                    per_chain = np.median(values, axis=2) if metric in ROBUST else values.mean(axis=2)  # (T, R)
                    t = np.arange(1, per_chain.shape[0] + 1)
                    mean = per_chain.mean(axis=1)
                    boot = np.random.default_rng(0).integers(per_chain.shape[1], size=(2000, per_chain.shape[1]))
                    lo, hi = np.quantile(per_chain[:, boot].mean(axis=2), [0.025, 0.975], axis=1)
                    style = "-" if lam == 1 else "--"
                    ax.plot(t, mean, style, color=colors[loop], label=f"{LOOP_NAMES[loop]}, λ = {lam:g}")
                    ax.fill_between(t, lo, hi, color=colors[loop], alpha=0.12 if lam == 1 else 0.06, lw=0)
            ax.set_title(f"{model.upper() if model == 'gmm' else 'flow'}: {titles[metric]}", fontsize=10)
            ax.set_xlabel("generation t")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Ring of 8 (std 0.1): a misspecified RealNVP flow (top) vs a correctly specified GMM (bottom) in the "
                 "three loops; mean over chains, band = 95% bootstrap over chains")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(results: dict, lam: float, path: Path) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(15, 7.5))
    ref = results.get(("flow", lam, "fully_synthetic"))
    if ref is None:
        plt.close(fig)
        return
    panels = [("generation 1", ref["samples"][0, 0])]
    for loop in LOOPS:
        res = results.get(("flow", lam, loop))
        if res is not None:
            panels.append((f"{LOOP_NAMES[loop]}, generation {res['samples'].shape[0]}", res["samples"][-1, 0]))
    gmm = results.get(("gmm", lam, "fully_synthetic"))
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (title, pts) in zip(axes[0], panels, strict=False):
        _scatter(ax, pts, f"flow: {title}")
    if gmm is not None:
        gpanels = [("generation 1", gmm["samples"][0, 0])] + [
            (f"{LOOP_NAMES[loop]}, generation {results[('gmm', lam, loop)]['samples'].shape[0]}",
             results[("gmm", lam, loop)]["samples"][-1, 0]) for loop in LOOPS if ("gmm", lam, loop) in results]
        for ax, (title, pts) in zip(axes[1], gpanels, strict=False):
            _scatter(ax, pts, f"GMM: {title}")
    fig.suptitle(f"Samples of chain 1 (λ = {lam:g}); red: the 8 true modes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _scatter(ax, pts, title):
    ax.set_visible(True)
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color="#2f6690")
    ax.scatter(TARGET.modes[:, 0], TARGET.modes[:, 1], s=18, color="#b0413e", marker="x")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lam", type=float, action="append", help="lam values (default 1 and 0.75)")
    parser.add_argument("--generations", type=int, default=16)
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000, help="n_ini = n_real = n_synth")
    parser.add_argument("--n-eval", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny flow, 4 generations, 3 chains (smoke run)")
    parser.add_argument("--no-report", action="store_true", help="only run (fill the cache)")
    args = parser.parse_args()
    if args.quick:
        args.generations, args.chains, args.n, args.n_eval, args.steps, args.hidden, args.layers = 4, 3, 500, 500, 60, 16, 4
    lams = args.lam or [1.0, 0.75]
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads 1")
    jobs = [(model, lam, loop) for lam in lams for model in MODELS for loop in LOOPS]
    results = {}
    wall = time.perf_counter()
    with threadpool_limits(1), tqdm(total=len(jobs) * args.generations, desc="generations") as bar:
        for model, lam, loop in jobs:
            bar.set_postfix_str(f"{model} {loop} lam={lam:g}")
            results[(model, lam, loop)] = load_or_run(model, loop, lam, args, bar)
    print(f"wall time {time.perf_counter() - wall:.0f} s")
    for model in MODELS:
        fits = [results[(model, lam, loop)]["seconds"].sum() for lam in lams for loop in LOOPS]
        print(f"{model}: CPU time of fits + evaluation {sum(fits):.0f} s")
    if args.no_report:
        return
    data, figures = (CACHE, CACHE) if args.quick else (DATA, FIGURES)  # a smoke run never overwrites the results
    data.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    write_chain_csv(results, data / "flow_experiment_chains.csv")
    for line in summarize(results, lams, args, data / "flow_experiment_summary.csv"):
        print(line)
    plot_curves(results, lams, figures / "mad_flow_loops.png")
    plot_samples(results, lams[0], figures / "mad_flow_samples.png")


if __name__ == "__main__":
    main()
