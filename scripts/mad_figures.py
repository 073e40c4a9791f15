"""Figures for the MAD simulator (analogues of the paper's), written to docs/figures/mad_*.png.

    .venv/bin/python scripts/mad_figures.py            # all figures (a few minutes on 2 busy cores)
    .venv/bin/python scripts/mad_figures.py --only fresh --quick

- mad_gaussian_theory.png: fully synthetic Gaussian loop, simulation (mean +- 2 SE) vs the closed forms.
- mad_fully_synthetic.png: 25-mode grid + GMM, fully synthetic with lam in {1, 0.8}: Frechet distance,
  precision, recall, modes covered against generation (analogues of paper Figs. 4, 6, 14-15; lam on a GMM,
  component covariances x lam, is OUR mechanism: the paper's GMM runs are unbiased).
- mad_fresh_limit.png: Fig. 10 setting (d = 100, n_r = 100, n_s = 900, n_ini in {100, 1000}, lam in {1, 0.8}):
  the fresh-data limit does not depend on n_ini; variance against its closed form.
- mad_ne_map.png: n_e / n_r over (n_r, n_s) for lam in {0.7, 0.85, 1} (d = 10), with OUR heuristic
  n_s* = (d+5)/(1-lam)^2 (spec Sec. 2.2; not in the paper).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.services.mad import SimConfig, gaussian, grid25, simulate  # noqa: E402
from backend.services.mad import theory as th  # noqa: E402
from backend.services.mad.effective import effective_sample_size, real_only_fd_curve  # noqa: E402

OUT = ROOT / "docs" / "figures"
COLORS = {1.0: "#b0413e", 0.8: "#2f6690"}


def band(ax, t, values, color, label, style="-"):
    """Mean over replicates (axis 1) with a +-2 SE band."""
    mean = values.mean(axis=1)
    se = values.std(axis=1, ddof=1) / np.sqrt(values.shape[1]) if values.shape[1] > 1 else np.zeros_like(mean)
    ax.plot(t, mean, style, color=color, label=label)
    ax.fill_between(t, mean - 2 * se, mean + 2 * se, color=color, alpha=0.2, lw=0)


def fig_gaussian_theory(quick: bool) -> None:
    cov0 = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    cfg = SimConfig(target=gaussian(3, cov0), n_ini=15, n_synth=15, lam=0.8, generations=12,
                    replicates=2000 if quick else 20000, metrics=(), seed=1)
    res = simulate(cfg)
    t = np.arange(1, cfg.generations + 1)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, name, title in zip(
        axes, ("trace_cov", "mean_err2", "logdet"), ("tr Σ_t", "|μ_t − μ0|²", "log det Σ_t"), strict=True
    ):
        band(ax, t, res.per_replicate[name], "#b0413e", "simulation")
        ax.plot(t, res.theory[name + "_theory"], "--", color="#1d2330", label="closed form")
        ax.set_title(title)
        ax.set_xlabel("generation t")
    axes[0].legend()
    fig.suptitle(f"Fully synthetic Gaussian loop, d = 3, n = 15, λ = 0.8, {cfg.replicates} chains "
                 "(E Σ_t = λ^(t−1) Σ0, yet log det drifts by −1.135/generation)")
    fig.tight_layout()
    fig.savefig(OUT / "mad_gaussian_theory.png", dpi=110)
    plt.close(fig)


def fig_fully_synthetic(quick: bool) -> None:
    gens = 12 if quick else 40
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    runs = {}
    for lam in tqdm((1.0, 0.8), desc="grid25 GMM"):
        cfg = SimConfig(target=grid25(), model="gmm", n_ini=1000, n_synth=1000, lam=lam, generations=gens,
                        replicates=2, n_eval=1000, metrics=("pr", "modes"), seed=2)
        runs[lam] = simulate(cfg)
    t = np.arange(1, gens + 1)
    for ax, name, title in zip(
        axes,
        ("fd", "precision", "recall", "modes_covered"),
        ("Fréchet distance", "precision (k = 5)", "recall (k = 5)", "modes covered (of 25)"),
        strict=True,
    ):
        for lam, res in runs.items():
            band(ax, t, res.per_replicate[name], COLORS[lam], f"λ = {lam:g}")
        ax.set_title(title)
        ax.set_xlabel("generation t")
    axes[0].legend()
    fig.suptitle("Fully synthetic loop: GMM (EM from scratch, K = 25) on the 25-mode grid, n = 1000 per generation; "
                 "λ < 1 scales each component's covariance (our mechanism, not the paper's)")
    fig.tight_layout()
    fig.savefig(OUT / "mad_fully_synthetic.png", dpi=110)
    plt.close(fig)


def fig_fresh_limit(quick: bool) -> None:
    gens, reps = (20, 2) if quick else (50, 8)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    t = np.arange(1, gens + 1)
    styles = {100: "-", 1000: ":"}
    for lam in (1.0, 0.8):
        for n_ini in tqdm((100, 1000), desc=f"fresh lam={lam:g}"):
            cfg = SimConfig(target=gaussian(100), loop="fresh_data", n_ini=n_ini, n_real=100, n_synth=900,
                            lam=lam, generations=gens, replicates=reps, metrics=(), seed=3)
            res = simulate(cfg)
            label = f"λ = {lam:g}, n_ini = {n_ini}"
            band(axes[0], t, res.per_replicate["fd"], COLORS[lam], label, styles[n_ini])
            band(axes[1], t, res.per_replicate["trace_cov"] / 100, COLORS[lam], label, styles[n_ini])
            axes[1].plot(t, res.theory["trace_cov_theory"] / 100, "--", color="#1d2330", lw=0.8)
        s_star, _ = th.fresh_fixed_point(100, 900, lam)
        axes[1].axhline(s_star, color=COLORS[lam], lw=0.6, alpha=0.6)
    axes[0].set_title("Fréchet distance to P_r (limit independent of n_ini)")
    axes[1].set_title("tr Σ_t / d (dashed: closed form; thin: fixed point s*)")
    for ax in axes:
        ax.set_xlabel("generation t")
    axes[0].legend(fontsize=8)
    fig.suptitle("Fresh-data loop, Fig. 10 setting: N(0, I_100), n_r = 100 fresh + n_s = 900 synthetic")
    fig.tight_layout()
    fig.savefig(OUT / "mad_fresh_limit.png", dpi=110)
    plt.close(fig)


def fig_ne_map(quick: bool) -> None:
    d = 10
    lams = (0.7, 0.85, 1.0)
    n_reals = (100, 300, 1000) if not quick else (100, 300)
    n_synths = np.unique(np.geomspace(20, 4000, 5 if quick else 9).astype(int))
    reps, gens = (8, 20) if quick else (16, 40)
    base = SimConfig(target=gaussian(d), loop="fresh_data", metrics=(), replicates=reps, generations=gens, seed=4)
    sizes = np.unique(np.geomspace(d + 2, 12 * (max(n_reals) + max(n_synths)), 36).astype(int))
    # Real-only reference E FD(n), shared by every cell; fewer chains for the large n (FD is tiny and stable there).
    curve = np.array([
        real_only_fd_curve(replace(base, replicates=reps), [n], replicates=int(np.clip(4e6 / (n * d), 16, 400)),
                           seed=5 + i)[0]
        for i, n in enumerate(tqdm(sizes, desc="real-only curve"))
    ])
    fig, axes = plt.subplots(1, len(lams), figsize=(5 * len(lams), 4), sharey=True)
    cells = [(i, j, k) for i in range(len(lams)) for j in range(len(n_reals)) for k in range(len(n_synths))]
    ratio = np.empty((len(lams), len(n_reals), len(n_synths)))
    for i, j, k in tqdm(cells, desc="n_e cells"):
        n_r, n_s, lam = n_reals[j], int(n_synths[k]), lams[i]
        # Start near the fixed point (n_ini ~ n_r (1 + a)): the limit does not depend on n_ini.
        n_ini = int(n_r * (1 + n_s / (n_r + n_s)))
        cfg = replace(base, n_real=n_r, n_synth=n_s, lam=lam, n_ini=n_ini)
        ratio[i, j, k] = effective_sample_size(cfg, sizes=sizes, curve=curve)["ratio"]
    vmax = np.abs(np.log2(ratio)).max()
    for i, ax in enumerate(axes):
        im = ax.imshow(np.log2(ratio[i]), origin="lower", aspect="auto", cmap="RdBu", vmin=-vmax, vmax=vmax)
        ax.contour(np.log2(ratio[i]), levels=[0], colors="k", linewidths=1)
        ax.set_xticks(range(len(n_synths)), [str(n) for n in n_synths], rotation=45)
        ax.set_yticks(range(len(n_reals)), [str(n) for n in n_reals])
        ax.set_xlabel("n_s (synthetic per generation)")
        star = th.admissible_threshold(d, lams[i])
        title = f"λ = {lams[i]:g}" + (f", our n_s* ≈ {star:.0f}" if np.isfinite(star) else "")
        ax.set_title(title)
        if np.isfinite(star) and n_synths[0] <= star <= n_synths[-1]:
            ax.axvline(np.interp(np.log(star), np.log(n_synths), np.arange(len(n_synths))), color="k", ls="--")
        for j in range(len(n_reals)):
            for k in range(len(n_synths)):
                ax.text(k, j, f"{ratio[i, j, k]:.2g}", ha="center", va="center", fontsize=7)
    axes[0].set_ylabel("n_r (fresh real per generation)")
    fig.colorbar(im, ax=axes, label="log2(n_e / n_r)  (> 0: synthetic data helps)")
    fig.suptitle(f"Effective sample size of the fresh-data loop, Gaussian d = {d} (black line: n_e = n_r; "
                 "dashed: our heuristic n_s* = (d+5)/(1−λ)², not the paper's)")
    fig.savefig(OUT / "mad_ne_map.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


FIGURES = {
    "theory": fig_gaussian_theory,
    "fully": fig_fully_synthetic,
    "fresh": fig_fresh_limit,
    "ne": fig_ne_map,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(FIGURES), action="append", help="make only these figures")
    parser.add_argument("--quick", action="store_true", help="smaller runs (for a smoke test)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(FIGURES):
        FIGURES[name](args.quick)
        print(f"wrote {OUT / ('mad_' + {'theory': 'gaussian_theory', 'fully': 'fully_synthetic', 'fresh': 'fresh_limit', 'ne': 'ne_map'}[name] + '.png')}")


if __name__ == "__main__":
    main()
