"""Benchmark: the paper's Fig. 10 Gaussian setting through the MAD simulator vs a straightforward reproduction.

Setting: fresh-data loop, P_r = N(0, I_100), n_r = 100, n_s = 900, n_ini in {100, 1000}, lam in {1, 0.8},
50 generations, 8 replicates (4 configurations). The bar: the simulator finishes it in <= 30 s on 2 cores.
The anchor, measured in the same run, is the obvious loop: one chain at a time, ``multivariate_normal``
sampling, ``np.cov``, and the FID-style Frechet distance with ``scipy.linalg.sqrtm``.

    .venv/bin/python scripts/bench_mad.py                 # full anchor (about 85 s on an idle machine)
    .venv/bin/python scripts/bench_mad.py --anchor-replicates 2   # anchor on 2 chains, time scaled x4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from scipy.linalg import sqrtm
from threadpoolctl import threadpool_limits
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.services.mad import SimConfig, gaussian, simulate  # noqa: E402

D, N_REAL, N_SYNTH, T, R = 100, 100, 900, 50, 8
CONFIGS = [(n_ini, lam) for lam in (1.0, 0.8) for n_ini in (100, 1000)]
BAR_S = 30.0


def anchor_chain(n_ini: int, lam: float, seed: int) -> np.ndarray:
    """One replicate, written the obvious way. Returns FD per generation."""
    rng = np.random.default_rng(seed)
    mu0, cov0 = np.zeros(D), np.eye(D)
    fds = np.empty(T)
    data = rng.multivariate_normal(mu0, cov0, size=n_ini)
    mu, cov = mu0, cov0
    for t in range(T):
        if t > 0:
            synth = rng.multivariate_normal(mu, lam * cov, size=N_SYNTH)
            data = np.vstack([rng.multivariate_normal(mu0, cov0, size=N_REAL), synth])
        mu, cov = data.mean(axis=0), np.cov(data, rowvar=False)
        covmean = sqrtm(cov @ cov0).real
        fds[t] = np.sum((mu - mu0) ** 2) + np.trace(cov + cov0 - 2 * covmean)
    return fds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--anchor-replicates", type=int, default=R, help="chains for the anchor (time scaled to 8)")
    parser.add_argument("--anchor-threads", type=int, default=1,
                        help="BLAS threads for the anchor (1, like the simulator: on a busy 2-core machine more "
                        "threads make these small matrices 10x slower; 0 = library default)")
    parser.add_argument("--skip-anchor", action="store_true")
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    start = time.perf_counter()
    ours = {}
    for n_ini, lam in tqdm(CONFIGS, desc="simulator"):
        cfg = SimConfig(target=gaussian(D), loop="fresh_data", n_ini=n_ini, n_real=N_REAL, n_synth=N_SYNTH,
                        lam=lam, generations=T, replicates=R, metrics=(), seed=1)
        ours[(n_ini, lam)] = simulate(cfg).per_replicate["fd"].mean(axis=1)
    ours_s = time.perf_counter() - start

    anchor = {}
    anchor_s = float("nan")
    if not args.skip_anchor:
        reps = args.anchor_replicates
        limit = threadpool_limits(args.anchor_threads) if args.anchor_threads > 0 else nullcontext()
        start = time.perf_counter()
        with limit, tqdm(total=len(CONFIGS) * reps, desc="anchor") as bar:
            for n_ini, lam in CONFIGS:
                chains = []
                for r in range(reps):
                    chains.append(anchor_chain(n_ini, lam, 1000 + r))
                    bar.update()
                anchor[(n_ini, lam)] = np.mean(chains, axis=0)
        anchor_s = (time.perf_counter() - start) * R / reps

    print()
    print("Fig. 10 setting: d=100, n_r=100, n_s=900, 50 generations, 8 replicates, 4 configurations")
    print(f"{'config':>22} {'FD t=1':>8} {'t=10':>8} {'t=50':>8}   (anchor t=50)")
    for key in CONFIGS:
        fd = ours[key]
        ref = f"{anchor[key][-1]:8.2f}" if key in anchor else "       -"
        print(f"n_ini={key[0]:>4} lam={key[1]:<4}    {fd[0]:8.2f} {fd[9]:8.2f} {fd[-1]:8.2f}   ({ref})")
    print(f"simulator: {ours_s:.2f} s  (bar: <= {BAR_S:.0f} s: {'met' if ours_s <= BAR_S else 'MISSED'})")
    if args.skip_anchor:
        return
    scaled = "" if args.anchor_replicates == R else f", measured on {args.anchor_replicates} chains and scaled"
    print(f"anchor (straightforward reproduction): {anchor_s:.2f} s{scaled}")
    print(f"speed-up vs anchor: {anchor_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
