"""How biased is the original Viterbi Sampling on real text? Boundary marginals against forward-backward.

    nice -n 10 .venv/bin/python scripts/legacy_bias.py [--lines 150] [--samples 4000] [--seed 0]

For held-out lines of English and Chinese text (``corpus.split_heldout``; English from the first two
English sources, Python's help topics and standard-library docstrings, whose held-out lines are the same
as in the model's training split) and the built-in model, at each alpha:

- the exact boundary marginals P(boundary at i), i = 1..n-1, from forward-backward (``boundary_marginals``);
- ``--samples`` draws from the legacy sampler and as many from the exact one-pass sampler (the control:
  it differs from the exact marginals by sampling noise alone); the empirical boundary frequencies;
- per line, the mean and the max over positions of |empirical - exact|.

Table: the mean over lines of the per-line mean |dev| and of the per-line max |dev|, each with a 95%
bootstrap interval over lines (2,000 resamples), and the paired difference legacy - exact of the mean
|dev| with its paired-bootstrap interval. "Largest" is the most biased position: chosen on the first half
of the legacy draws and measured on the second half (so the choice does not inflate it), with a 95%
Clopper-Pearson interval for the legacy frequency there and the exact marginal beside it. n = lines (the unit); seeds fixed.
Writes the plot to ``docs/figures/tokenize_legacy_bias.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from backend.services.tokenize import boundary_counts, boundary_marginals, get_model, warm_up  # noqa: E402
from backend.services.tokenize.corpus import chinese_lines, english_lines, split_heldout  # noqa: E402
from backend.stats import bootstrap_mean, clopper_pearson, paired_bootstrap  # noqa: E402

ALPHAS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "tokenize_legacy_bias.png"


def pick_lines(lines: list[str], count: int, rng: np.random.Generator, lo: int = 30, hi: int = 160) -> list[str]:
    """``count`` held-out lines of lo..hi characters, drawn without replacement."""
    pool = [x for x in lines if lo <= len(x) <= hi]
    idx = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[i] for i in sorted(idx)]


def measure(lines: list[str], vocab, alpha: float, n: int, seed: int) -> dict:
    """Per-line deviations of both samplers, and the held-out check of the most biased position."""
    legacy_mean, legacy_max, exact_mean, exact_max = [], [], [], []
    best = None  # (selection deviation, line, position)
    halves = []
    for i, line in enumerate(lines):
        exact = boundary_marginals(line, vocab, alpha)[1:-1]
        a = boundary_counts(line, vocab, alpha, seed * 1_000_003 + 2 * i, n_samples=n // 2, method="legacy-sample")
        b = boundary_counts(line, vocab, alpha, seed * 1_000_003 + 2 * i + 1, n_samples=n - n // 2,
                            method="legacy-sample")
        legacy = (a + b)[1:-1] / n
        control = boundary_counts(line, vocab, alpha, seed * 7_000_003 + i, n_samples=n, method="sample")[1:-1] / n
        dev = np.abs(legacy - exact)
        legacy_mean.append(dev.mean())
        legacy_max.append(dev.max())
        cdev = np.abs(control - exact)
        exact_mean.append(cdev.mean())
        exact_max.append(cdev.max())
        first = np.abs(a[1:-1] / (n // 2) - exact)
        j = int(first.argmax())
        if best is None or first[j] > best[0]:
            best = (first[j], i, j)
        halves.append(b[1:-1])
    _, i, j = best
    k2 = halves[i][j]
    n2 = n - n // 2
    exact_p = float(boundary_marginals(lines[i], vocab, alpha)[1:-1][j])
    return {
        "legacy_mean": np.array(legacy_mean), "legacy_max": np.array(legacy_max),
        "exact_mean": np.array(exact_mean), "exact_max": np.array(exact_max),
        "largest": {"line": lines[i], "position": j + 1, "exact": exact_p, "legacy": k2 / n2,
                    "interval": clopper_pearson(int(k2), n2), "n": n2},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=150, help="held-out lines per language")
    ap.add_argument("--samples", type=int, default=4000, help="draws per line, alpha and sampler")
    ap.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", type=Path, default=FIGURE)
    args = ap.parse_args()
    warm_up()
    vocab = get_model("default")
    rng = np.random.default_rng(args.seed)
    texts = {
        "English": pick_lines(split_heldout(english_lines(packages=()))[1], args.lines, rng),
        "Chinese": pick_lines(split_heldout(chinese_lines())[1], args.lines, rng),
    }
    print(f"model: built-in 'default' ({len(vocab)} pieces); n = {args.lines} held-out lines per language "
          f"(30-160 characters), {args.samples} draws per line, alpha and sampler; seed {args.seed}")
    print("|dev| = |empirical boundary frequency - exact marginal| over the inner positions of a line; "
          "[95% bootstrap interval over lines]")
    print()
    print("| language | alpha | legacy mean abs dev | exact mean abs dev | legacy - exact (paired) | legacy max abs dev "
          "| exact max abs dev | largest legacy bias (held-out half): legacy vs exact |")
    print("|---|---:|---|---|---|---|---|---|")
    results: dict[str, list] = {lang: [] for lang in texts}
    for lang, lines in texts.items():
        for alpha in tqdm(args.alphas, desc=f"{lang} alphas", file=sys.stderr):
            r = measure(lines, vocab, alpha, args.samples, args.seed)
            seed = args.seed + 1
            row = {
                "alpha": alpha,
                "legacy_mean": bootstrap_mean(r["legacy_mean"], seed=seed),
                "exact_mean": bootstrap_mean(r["exact_mean"], seed=seed),
                "diff": paired_bootstrap(r["legacy_mean"], r["exact_mean"], seed=seed),
                "legacy_max": bootstrap_mean(r["legacy_max"], seed=seed),
                "exact_max": bootstrap_mean(r["exact_max"], seed=seed),
                "largest": r["largest"],
            }
            results[lang].append(row)
            big = r["largest"]

            def cell(t) -> str:
                return f"{t.estimate:.4f} [{t.low:.4f}, {t.high:.4f}]"

            print(f"| {lang} | {alpha:g} | {cell(row['legacy_mean'])} | {cell(row['exact_mean'])} | "
                  f"{cell(row['diff'])} | {cell(row['legacy_max'])} | {cell(row['exact_max'])} | "
                  f"{big['legacy']:.3f} [{big['interval'].low:.3f}, {big['interval'].high:.3f}] vs {big['exact']:.3f} "
                  f"(|dev| {abs(big['legacy'] - big['exact']):.3f}) |", flush=True)
    plot(results, args)
    print()
    print(f"figure: {args.figure.relative_to(Path.cwd()) if args.figure.is_relative_to(Path.cwd()) else args.figure}")
    for lang, rows in results.items():
        biased = [r["alpha"] for r in rows if r["diff"].low > 0]
        print(f"{lang}: legacy - exact mean |dev| interval excludes 0 at alpha = {', '.join(f'{a:g}' for a in biased)}"
              if biased else f"{lang}: no alpha where the legacy - exact interval excludes 0")


def plot(results: dict, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    styles = {"English": "-", "Chinese": "--"}
    for lang, rows in results.items():
        alphas = [r["alpha"] for r in rows]
        for ax, key in zip(axes, ("mean", "max"), strict=True):
            for sampler, colour in (("legacy", "#c0392b"), ("exact", "#2471a3")):
                vals = np.array([(r[f"{sampler}_{key}"].estimate, r[f"{sampler}_{key}"].low, r[f"{sampler}_{key}"].high)
                                 for r in rows])
                ax.errorbar(alphas, vals[:, 0], yerr=[vals[:, 0] - vals[:, 1], vals[:, 2] - vals[:, 0]],
                            color=colour, linestyle=styles[lang], marker="o", capsize=3,
                            label=f"{sampler} sampler, {lang}")
    for ax, title in zip(axes, ("mean over positions", "max over positions"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("alpha (inverse temperature)")
        ax.set_ylabel("|empirical - exact| boundary probability")
        ax.set_title(f"{title} (per line, mean over {args.lines} lines, 95% CI)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Legacy Viterbi Sampling vs exact marginals (forward-backward); {args.samples} draws per line")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)


if __name__ == "__main__":
    main()
