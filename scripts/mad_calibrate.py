"""Calibrate the MAD cost model (backend/services/mad/cost.py): measure, fit, and check predicted vs measured time.

For every model (Gaussian, diagonal Gaussian, KDE, GMM, flow) and every metric group, a design of
configurations spanning the ranges the caps allow is timed (CPU time of ``simulate``, one BLAS thread, torch
with one thread). The machine is shared and its load changes by the minute, so every timing is taken as a
ratio to an anchor (a fixed small ``simulate`` run) timed right before and after it; the median ratio over
``--repeats`` is kept, and ratios become seconds through the fastest anchor seen (the closest this machine
came to an idle core during the run). The cost per unit of every term in ``cost.features`` is fitted by
non-negative least squares on relative error. Then a separate validation set of realistic requests (the API's defaults, the paper's settings, the
request of issue 15 item 2, the Fig. 10 setting with n_e) is timed and printed with the new estimate, the
previous estimate (the formula before calibration) and their ratios to the measurement.

    PYTHONPATH=. .venv/bin/python scripts/mad_calibrate.py            # measure and report (~10 min idle)
    PYTHONPATH=. .venv/bin/python scripts/mad_calibrate.py --write    # ... and rewrite cost_model.json and
                                                                      # cost_measurements.json
    PYTHONPATH=. .venv/bin/python scripts/mad_calibrate.py --check    # only the validation set, current model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import nnls  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.services.mad import SimConfig, cost, gaussian, grid25, iterate, ring, simulate  # noqa: E402
from backend.services.mad.effective import _reference_configs, real_only_fd_curve, reference_sizes  # noqa: E402

MEASUREMENTS_FILE = ROOT / "backend" / "services" / "mad" / "cost_measurements.json"
NONE = ()


def cfg(model="gaussian", d=2, n=100, reps=8, T=5, loop="fully_synthetic", target=None, metrics=NONE, **kw):
    """A configuration with n_ini = n_real = n_synth = n unless given."""
    tgt = target if target is not None else gaussian(d)
    base = {"n_ini": n, "n_real": n, "n_synth": n}
    base.update(kw)
    return SimConfig(target=tgt, model=model, loop=loop, generations=T, replicates=reps, metrics=metrics, seed=1,
                     **base)


def design() -> list[tuple[str, SimConfig]]:
    """The calibration configurations, grouped by what they measure."""
    L, A, F = "fully_synthetic", "synthetic_augmentation", "fresh_data"
    out = []
    gauss = [
        (1, 10, 10000, L), (1, 1000, 1000, A), (2, 100, 1000, F), (2, 20, 50000, L), (10, 100, 100, A),
        (10, 1000, 100, F), (10, 15, 10000, L), (50, 500, 20, F), (100, 200, 8, L), (100, 1000, 8, F),
        (200, 2000, 4, A), (200, 300, 20, L), (20, 5000, 50, L), (3, 50, 1, L),
    ]
    for d, n, r, loop in gauss:
        out.append(("gaussian", cfg("gaussian", d, n, r, loop=loop)))
    out.append(("gaussian", cfg("gaussian", 3, 50, 1, T=200)))
    out.append(("gaussian", cfg("gaussian", 2, 20, 1, T=400)))
    out.append(("gaussian", cfg("gaussian", 30, 60, 2, T=100, loop=F)))
    out.append(("gaussian", cfg("gaussian", 3, 15, 40000, T=2, target=gaussian(3, np.diag([2.0, 1.0, 0.5])))))
    out.append(("gaussian", cfg("gaussian", 5, 30, 20000, T=3, loop=A)))
    out.append(("gaussian", cfg("gaussian", 100, 100, 8, T=20, loop=F, n_ini=100, n_synth=900)))
    for d, n, r, loop in gauss[::2]:
        out.append(("gaussian-diag", cfg("gaussian-diag", d, n, r, loop=loop)))
    out.append(("gaussian-diag", cfg("gaussian-diag", 2, 50, 50000, T=3)))
    out.append(("gaussian-diag", cfg("gaussian-diag", 50, 300, 1000, T=4, loop=F)))
    kde = [
        (2, 1000, 1000, F), (2, 100, 10000, L), (10, 500, 100, A), (50, 1000, 10, L), (100, 2000, 4, F),
        (2, 5000, 200, A), (1, 50, 20000, L), (20, 200, 500, F),
    ]
    for d, n, r, loop in kde:
        out.append(("kde", cfg("kde", d, n, r, loop=loop)))
    out.append(("kde", cfg("kde", 2, 1000, 2000, loop=F, target=grid25(), n_real=100)))
    out.append(("kde", cfg("kde", 2, 300, 500, target=ring(), source="accumulate", T=6)))
    out.append(("kde", cfg("kde", 2, 1000, 5000, loop=F, target=ring(), n_real=200, T=3)))  # 1.2e7 numbers: memory-bound
    gmm = [
        (grid25(), 25, 1000, 2, 60, L), (ring(), 8, 1000, 4, 60, A), (ring(), 8, 300, 32, 20, F),
        (None, 1, 500, 16, 30, L), (None, 3, 2000, 4, 60, F), (None, 10, 1000, 2, 40, A),
        (grid25(), 25, 3000, 1, 30, L), (None, 5, 200, 64, 10, L),
    ]
    for target, k, n, r, iters, loop in gmm:
        d = 2 if target is not None else (5 if k > 1 else 3)
        out.append(("gmm", cfg("gmm", d, n, r, loop=loop, target=target, gmm_components=k, em_iters=iters)))
    out.append(("gmm", cfg("gmm", 10, 800, 4, target=None, gmm_components=6, em_iters=30)))
    out.append(("gmm", cfg("gmm", 2, 100, 1, T=20, target=ring(), gmm_components=8, em_iters=60)))
    flows = [
        (2, 300, 1, 40, 2, 16, ring()), (2, 2000, 5, 40, 8, 64, ring()), (2, 1000, 32, 20, 4, 32, ring()),
        (6, 500, 4, 30, 8, 128, None), (2, 2000, 5, 30, 8, 64, grid25()), (4, 400, 16, 30, 6, 64, None),
        (2, 100, 2, 60, 2, 8, None),
    ]
    for d, n, r, steps, layers, hidden, target in flows:
        out.append(("flow", cfg("flow", d, n, r, T=2, target=target, flow_steps=steps, flow_layers=layers,
                                flow_hidden=hidden)))
    # Metric groups on a cheap model (diagonal Gaussian) or a mixture target.
    for n_eval, reps, d in ((200, 16, 2), (1000, 4, 2), (2000, 2, 2), (500, 16, 20), (1000, 1, 50), (1000, 8, 5)):
        out.append(("pr", cfg("gaussian-diag", d, 100, reps, metrics=("pr",), n_eval=n_eval)))
    for n_eval, target in ((1000, grid25()), (2000, ring()), (500, grid25())):
        out.append(("modes", cfg("gaussian-diag", 2, 100, 8, target=target, metrics=("modes",), n_eval=n_eval)))
    for n_eval, reps in ((100, 16), (300, 4), (500, 2)):
        out.append(("w2", cfg("gaussian-diag", 2, 100, reps, metrics=("w2",), n_eval=n_eval)))
    for model, d, extra in (("gaussian", 10, {}), ("gaussian", 50, {}), ("gaussian-diag", 20, {}),
                            ("gmm", 2, {"target": ring()}), ("flow", 2, {"flow_steps": 5})):
        out.append(("nll", cfg(model, d, 200, 8, metrics=("nll",), n_eval=2000, **extra)))
    return out


def validation() -> list[tuple[str, SimConfig, bool]]:
    """Realistic requests, timed once each: (name, config, with n_e)."""
    F = "fresh_data"
    return [
        ("API defaults (gaussian, d=2, 20 gen., 8 chains, pr)", cfg(n=100, reps=8, T=20, metrics=None, n_eval=1000), False),
        ("issue 15: kde grid25 fresh, 10,000 chains", cfg("kde", 2, 1000, 10000, T=5, loop=F, target=grid25(),
                                                          n_real=100), False),
        ("spec oracle 1: d=3, n=15, 40,000 chains", cfg("gaussian", 3, 15, 40000, T=6, target=gaussian(3)), False),
        ("Fig. 10 + n_e (d=100, 50 gen., 4 chains)", cfg("gaussian", 100, 100, 4, T=50, loop=F, n_synth=900), True),
        ("Fig. 10, 8 chains, no n_e", cfg("gaussian", 100, 100, 8, T=50, loop=F, n_synth=900, n_ini=1000), False),
        ("grid25 GMM, 20 gen., 2 chains, pr+modes", cfg("gmm", 2, 1000, 2, T=20, target=grid25(), metrics=None,
                                                       n_eval=1000), False),
        ("ring GMM fresh + n_e, 16 chains", cfg("gmm", 2, 200, 16, T=10, loop=F, target=ring(), n_real=200), True),
        ("diag d=50, 1000 chains, 30 gen.", cfg("gaussian-diag", 50, 200, 1000, T=30), False),
        ("KDE ring, accumulate, pr+modes", cfg("kde", 2, 500, 8, T=10, target=ring(), source="accumulate",
                                               metrics=None, n_eval=500), False),
        ("flow ring augmentation (page preset)", cfg("flow", 2, 1000, 3, T=8, loop="synthetic_augmentation",
                                                     target=ring(), metrics=None, n_eval=500, flow_steps=400), False),
        ("flow d=4 gaussian, 2 chains, 3 gen.", cfg("flow", 4, 1000, 2, T=3, flow_steps=300, metrics=None,
                                                    n_eval=500), False),
        ("w2 d=2, 500 points, 8 chains", cfg("gaussian", 2, 200, 8, T=10, metrics=("pr", "w2"), n_eval=500), False),
    ]


def previous_estimate_seconds(c: SimConfig) -> float:
    """The uncalibrated formula used before (work units / 5e9), for the report's comparison."""
    d = c.dim
    n = max(c.n_ini, c.training_size)
    if c.model == "gaussian":
        fit = 20_000 + n * (d * d + 40 * d) + 10 * d**3
    elif c.model == "gmm":
        fit = 20_000 + c.em_iters * n * c.components * (1700 + 40 * d * d)
    else:
        fit = 2_000 + 40 * n * d
    extra = 0.0
    if "pr" in c.extra_metrics:
        extra += c.n_eval**2 * (650 + 6 * d)
    if "modes" in c.extra_metrics:
        extra += 40 * c.n_eval * d * (1 if c.target.modes is None else c.target.modes.shape[0])
    if "w2" in c.extra_metrics:
        extra += 5 * min(c.n_eval, 500) ** 3
    return float(c.generations) * (c.replicates * fit + c.eval_chains * extra) / 5e9


def describe(c: SimConfig) -> str:
    parts = [c.model, c.loop.split("_")[0], f"d={c.dim}", f"n={c.n_ini}/{c.n_real}/{c.n_synth}", f"R={c.replicates}",
             f"T={c.generations}"]
    if c.model == "gmm":
        parts.append(f"K={c.components} it={c.em_iters}")
    if c.model == "flow":
        parts.append(f"L={c.flow_layers} H={c.flow_hidden} S={c.flow_steps}")
    if c.extra_metrics:
        parts.append(f"{'+'.join(c.extra_metrics)}@{c.n_eval}x{c.eval_chains}")
    return " ".join(parts)


ANCHOR = SimConfig(target=gaussian(10), n_ini=200, n_synth=200, generations=10, replicates=64, metrics=("pr",),
                   n_eval=300, eval_replicates=4, seed=0)


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


class Clock:
    """Timings in anchor units (each divided by the mean of the anchor runs just before and after it)."""

    def __init__(self) -> None:
        self.anchors: list[float] = []

    def anchor(self) -> float:
        seconds = cpu_seconds(lambda: simulate(ANCHOR))
        self.anchors.append(seconds)
        return seconds

    @property
    def anchor_seconds(self) -> float:
        """The fastest anchor run: the closest to an idle core this session saw."""
        return min(self.anchors)

    def measure(self, fn, repeats: int) -> float:
        ratios = []
        before = self.anchor()
        for _ in range(repeats):
            seconds = cpu_seconds(fn)
            after = self.anchor()
            ratios.append(seconds / ((before + after) / 2))
            before = after
        return float(np.median(ratios))


def run_with_ne(c: SimConfig, with_ne: bool) -> None:
    simulate(c)
    if with_ne:
        real_only_fd_curve(c, reference_sizes(c), seed=c.seed + 7)


def predicted(c: SimConfig, with_ne: bool, coefs: dict | None) -> float:
    total = cost.estimate_seconds(c, coefs)
    if with_ne:
        total += sum(cost.estimate_seconds(one, coefs) for _, one in _reference_configs(c, reference_sizes(c), 64, 0))
    return total


def previous(c: SimConfig, with_ne: bool) -> float:
    total = previous_estimate_seconds(c)
    if with_ne:
        total += sum(previous_estimate_seconds(one) for _, one in _reference_configs(c, reference_sizes(c), 64, 0))
    return total


def em_iterations(c: SimConfig) -> float:
    """Mean EM iterations per generation that a GMM run really does (EM stops early once it settles)."""
    return float(np.mean([g.iterations for _, g in iterate(c)]))


def fit_features(c: SimConfig) -> dict[str, float]:
    """cost.features of a calibration run, with the EM iterations it really did (the estimate itself uses
    em_iters, an upper bound): the per-iteration costs are then measured, not blurred by early stopping."""
    if c.model == "gmm":
        c = replace(c, em_iters=max(1, round(em_iterations(c))))
    return cost.features(c)


def fit(rows: list[tuple[str, SimConfig, float]]) -> dict[str, float]:
    feats = [fit_features(c) for _, c, _ in rows]
    names = sorted({k for f in feats for k in f})
    X = np.array([[f.get(k, 0.0) for k in names] for f in feats])
    y = np.array([s for _, _, s in rows])
    scale = X.max(axis=0)
    scale[scale == 0] = 1.0
    # Relative error, each row divided by its measurement (floored at 20 ms: the sub-20-ms runs, where timer and
    # interpreter noise dominate, must not steer the costs of the runs that matter for the caps).
    A = X / scale / np.maximum(y, 0.02)[:, None]
    coef, _ = nnls(A, y / np.maximum(y, 0.02), maxiter=50 * len(names))
    return {k: float(v / s) for k, v, s in zip(names, coef, scale, strict=True)}


def measured_line(args, clock: Clock) -> str:
    return (f"{date.today().isoformat()}, {platform.machine()} {platform.processor() or ''}".strip()
            + f", {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, numpy {np.__version__}, "
            f"torch {torch.__version__}, median of {args.repeats} CPU-time ratios to an adjacent anchor, "
            f"anchor {clock.anchor_seconds:.4f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timings per calibration config (median kept)")
    parser.add_argument("--write", action="store_true", help="rewrite backend/services/mad/cost_model.json")
    parser.add_argument("--check", action="store_true", help="only time the validation set with the current model")
    parser.add_argument("--verbose", action="store_true", help="print every calibration configuration")
    args = parser.parse_args()
    if args.write and args.check:
        parser.error("--write needs the calibration run: drop --check")
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU time, 1 thread", flush=True)
    clock = Clock()
    for _ in range(3):
        clock.anchor()  # warm up (imports, allocator)
    coefs = None
    if not args.check:
        units = []
        for group, c in tqdm(design(), desc="calibration configs"):
            units.append((group, c, clock.measure(lambda c=c: simulate(c), args.repeats)))
        # Anchor units -> seconds on the least loaded core seen.
        rows = [(g, c, u * clock.anchor_seconds) for g, c, u in units]
        print(f"anchor: fastest {clock.anchor_seconds:.3f} s, median {np.median(clock.anchors):.3f} s over "
              f"{len(clock.anchors)} runs")
        coefs = fit(rows)
        print(f"\ncalibration set: {len(rows)} configurations; predicted / measured per group")
        print(f"{'group':<14} {'n':>3} {'median':>7} {'min':>6} {'max':>6}   {'measured s':>22}")
        for group in dict.fromkeys(g for g, _, _ in rows):
            ratios = np.array([cost.estimate_seconds(c, coefs) / s for g, c, s in rows if g == group])
            secs = [s for g, _, s in rows if g == group]
            print(f"{group:<14} {len(ratios):>3} {np.median(ratios):7.2f} {ratios.min():6.2f} {ratios.max():6.2f}"
                  f"   {min(secs):9.3f} .. {max(secs):8.3f}")
        if args.verbose:
            print("  every configuration: measured s, predicted s (the estimate), ratio; GMM also with the EM "
                  "iterations it really did")
            for group, c, s in rows:
                p = cost.estimate_seconds(c, coefs)
                extra = ""
                if c.model == "gmm":
                    it = max(1, round(em_iterations(c)))
                    extra = f"  ({it} EM it.: {cost.estimate_seconds(replace(c, em_iters=it), coefs) / s:4.2f})"
                print(f"  {group:<13} {describe(c):<70} {s:8.3f} {p:8.3f} {p / s:5.2f}{extra}")
        if args.write:
            payload = {
                "measured": measured_line(args, clock),
                "seconds_per_unit": {k: float(f"{v:.4g}") for k, v in sorted(coefs.items())},
            }
            cost.COST_FILE.write_text(json.dumps(payload, indent=1) + "\n")
            cost.coefficients.cache_clear()
            print(f"wrote {cost.COST_FILE.relative_to(ROOT)}")
    print("\nvalidation (one timing each, as anchor ratios): predicted / measured, new cost model and the previous "
          "formula", flush=True)
    print(f"{'request':<52} {'measured s':>10} {'new s':>8} {'ratio':>6} {'old s':>8} {'ratio':>7}")
    ratios, checked = [], []
    for name, c, with_ne in tqdm(validation(), desc="validation", leave=False):
        anchor_units = clock.measure(lambda c=c, w=with_ne: run_with_ne(c, w), 1)
        seconds = anchor_units * clock.anchor_seconds
        new, old = predicted(c, with_ne, coefs), previous(c, with_ne)
        ratios.append(new / seconds)
        checked.append({"name": name, "config": describe(c), "with_ne": with_ne,
                        "anchor_units": round(anchor_units, 4)})
        print(f"{name:<52} {seconds:10.2f} {new:8.2f} {new / seconds:6.2f} {old:8.2f} {old / seconds:7.2f}",
              flush=True)
    ratios = np.array(ratios)
    print(f"new model: ratio median {np.median(ratios):.2f}, range {ratios.min():.2f} .. {ratios.max():.2f} "
          f"({np.mean((ratios >= 0.5) & (ratios <= 2)) * 100:.0f}% within 2x)")
    if args.write:
        # The measurements themselves, in anchor units (work measured as multiples of the anchor run's CPU time,
        # not wall time), for tests/mad/test_cost.py: the committed model must keep predicting them.
        payload = {
            "measured": measured_line(args, clock),
            "anchor_seconds": round(clock.anchor_seconds, 5),
            "calibration": [{"group": g, "config": describe(c), "anchor_units": round(u, 4)} for g, c, u in units],
            "validation": checked,
        }
        MEASUREMENTS_FILE.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {MEASUREMENTS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
