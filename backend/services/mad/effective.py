"""Effective sample size n_e of the fresh-data loop (paper Eq. 4).

n_e solves E[FD(G(n_e), P_r)] = lim_t E[FD(G_t, P_r)], where G(n) is the same model fitted on n real
samples only. n_e / n_r >= 1 means the synthetic data is "admissible" (it helps rather than hurts).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from backend.services.mad.loops import Progress, SimConfig, SimResult, estimate_work, simulate

REFERENCE_REPLICATES = 64  # chains per point of the real-only curve E FD(n)
REFERENCE_CHUNK_ELEMENTS = 2_000_000  # numbers per training array of one reference fit (16 MB in float64)


def reference_sizes(cfg: SimConfig) -> np.ndarray:
    """The grid of real-only sample sizes n on which E FD(n) is measured (wide enough to bracket n_e)."""
    # From a size every model can fit (a mixture needs a sample per component) over at least a factor of 4.
    low = max(cfg.dim + 2, cfg.n_real // 8, 4, cfg.components if cfg.model == "gmm" else 0)
    high = max(8 * (cfg.n_real + cfg.n_synth), 4 * low)
    return np.unique(np.geomspace(low, high, 28).astype(int))


def _reference_configs(
    cfg: SimConfig, sizes: np.ndarray, replicates: int, seed: int
) -> list[tuple[int, SimConfig]]:
    """(index into sizes, configuration) of every real-only fit, in order.

    The chains of one size are split into chunks of at most ``REFERENCE_CHUNK_ELEMENTS`` numbers per
    training array (at least one chain), so the curve's memory stays bounded however large n_real + n_synth
    and d are (the Fig. 10 setting reaches 64 x 8000 x 100 = 5.1e7 numbers in one piece).
    """
    out = []
    for i, n in enumerate(sizes):
        per_chain = int(n) * cfg.dim
        chunk = int(min(replicates, max(1, REFERENCE_CHUNK_ELEMENTS // per_chain)))
        for j, start in enumerate(range(0, replicates, chunk)):
            out.append((i, replace(
                cfg, loop="fully_synthetic", n_ini=int(n), generations=1, replicates=min(chunk, replicates - start),
                metrics=(), scatter_points=0, seed=seed * 100003 + i + 1000 * j,
            )))
    return out


def reference_peak_elements(cfg: SimConfig, replicates: int = REFERENCE_REPLICATES) -> int:
    """The largest training array (chains x n x d) the real-only curve holds at once."""
    return max(c.replicates * c.n_ini * c.dim for _, c in _reference_configs(cfg, reference_sizes(cfg), replicates, 0))


def reference_work(cfg: SimConfig, replicates: int = REFERENCE_REPLICATES) -> float:
    """Estimated work of the real-only curve that n_e needs (same units as ``estimate_work``)."""
    return sum(estimate_work(c) for _, c in _reference_configs(cfg, reference_sizes(cfg), replicates, 0))


def real_only_fd_curve(
    cfg: SimConfig, sizes: np.ndarray, *, replicates: int = REFERENCE_REPLICATES, seed: int = 1,
    progress: Progress | None = None,
) -> np.ndarray:
    """E FD of ``cfg.model`` fitted on n real samples, for each n in ``sizes`` (Monte-Carlo, mean over replicates)."""
    sizes = np.asarray(sizes)
    runs = _reference_configs(cfg, sizes, replicates, seed)
    fds: list[list[np.ndarray]] = [[] for _ in sizes]
    for k, (i, one) in enumerate(runs):
        fds[i].append(simulate(one).per_replicate["fd"][0])
        if progress:
            progress((k + 1) / len(runs), f"real-only reference fit {k + 1}/{len(runs)}")
    return np.asarray([np.concatenate(parts).mean() for parts in fds])


def invert_curve(sizes: np.ndarray, curve: np.ndarray, level: float) -> float:
    """n with curve(n) = level by log-log interpolation of a decreasing curve (clamped to the grid)."""
    # Monte-Carlo noise can make the curve wiggle; force it non-increasing before inverting.
    mono = np.minimum.accumulate(curve)
    logn, logc = np.log(sizes), np.log(np.maximum(mono, 1e-300))
    if level >= mono[0]:
        return float(sizes[0])
    if level <= mono[-1]:
        return float(sizes[-1])
    # np.interp needs increasing x: interpolate log n as a function of -log curve.
    return float(np.exp(np.interp(-np.log(level), -logc, logn)))


def effective_sample_size(
    cfg: SimConfig,
    *,
    sizes: np.ndarray | None = None,
    ref_replicates: int = REFERENCE_REPLICATES,
    burn_in: float = 0.5,
    curve: np.ndarray | None = None,
    run: SimResult | None = None,
    progress: Progress | None = None,
) -> dict:
    """n_e and n_e / n_r for a fresh-data configuration.

    The limit is the FD averaged over the generations after ``burn_in`` (fraction of T) and all replicates;
    the reference curve (real-only fits on ``sizes``) can be passed in to share it between configurations,
    and so can a finished ``run`` of ``cfg`` (the API's own simulation), which is then not repeated.
    """
    if cfg.loop != "fresh_data":
        raise ValueError("n_e is defined for the fresh-data loop")
    sizes = reference_sizes(cfg) if sizes is None else np.asarray(sizes)
    if run is None:
        run = simulate(replace(cfg, metrics=(), scatter_points=0))
    start = min(int(burn_in * cfg.generations), cfg.generations - 1)
    per_chain = run.per_replicate["fd"][start:].mean(axis=0)
    limit = float(per_chain.mean())
    limit_se = float(per_chain.std(ddof=1) / np.sqrt(len(per_chain))) if len(per_chain) > 1 else float("nan")
    if curve is None:
        curve = real_only_fd_curve(cfg, sizes, replicates=ref_replicates, seed=cfg.seed + 7, progress=progress)
    n_e = invert_curve(sizes, curve, limit)
    return {
        "limit": limit,
        "limit_se": limit_se,
        "n_e": n_e,
        "ratio": n_e / cfg.n_real,
        "clamped": bool(n_e <= sizes[0] or n_e >= sizes[-1]),
        "sizes": sizes.tolist(),
        "curve": np.asarray(curve).tolist(),
    }
