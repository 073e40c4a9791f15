"""How long a simulation takes: a per-model cost model, calibrated by measurement (scripts/mad_calibrate.py).

``estimate_seconds(cfg)`` predicts the run's time on one idle core (numpy with one BLAS thread, as
``simulate`` runs; torch with one thread for the flow). It is a sum of terms, each a count that the work
scales with (chains x generations, training points x d, EM iterations x points x components x d^2, flow steps
x layers x minibatch x hidden^2, pairs of evaluation points, ...) times a cost per unit. The costs per unit
live in ``cost_model.json`` next to this file; ``scripts/mad_calibrate.py --write`` measures them on the
current machine (non-negative least squares on relative error) and rewrites the file, and its report shows
predicted against measured times for every model.

``estimate_work(cfg)`` is the same in the API's historical work units, ``WORK_PER_SECOND`` per predicted
second, so MAD_SYNC_MAX_WORK = 5e9 means ~1 s and MAD_MAX_WORK = 2.5e12 means ~500 s.

The configuration is read by attribute only (no import of ``loops``), so this module has no dependencies.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

WORK_PER_SECOND = 5e9  # API work units per predicted second on one idle core
W2_POINTS = 500  # empirical W2 uses at most this many points per side (O(n^3) assignment)
MOMENT_SAMPLES = 4096  # the flow's Monte-Carlo moment sample per chain (flow.FlowSettings.moment_samples)
COST_FILE = Path(__file__).with_name("cost_model.json")
CACHE_ELEMENTS = 1_000_000  # float64 numbers (8 MB) in a training array beyond which passes are memory-bound


@lru_cache(maxsize=1)
def coefficients() -> dict[str, float]:
    """Seconds per unit of each cost term (from cost_model.json)."""
    return dict(json.loads(COST_FILE.read_text())["seconds_per_unit"])


def _training_points(cfg: Any) -> float:
    """Sum over generations of the training-set size (the accumulating pool grows by n_synth each time)."""
    total = float(cfg.n_ini)
    for t in range(2, cfg.generations + 1):
        synth = cfg.n_synth * (t - 1 if cfg.source == "accumulate" else 1)
        total += cfg.real_size + synth
    return total


def _sampled_points(cfg: Any) -> float:
    """Points drawn from the models per chain: synthetic data of generations 2..T (sources last, accumulate:
    n_synth per generation; last_k: the same n_synth split over the models)."""
    return float(cfg.n_synth * (cfg.generations - 1))


def _real_points(cfg: Any) -> float:
    """Points drawn from the target per chain: the first real set plus the fresh ones."""
    fresh = cfg.n_real * (cfg.generations - 1) if cfg.loop == "fresh_data" else 0
    return float(cfg.n_ini + fresh)


def features(cfg: Any) -> dict[str, float]:
    """The run's counts, one per cost term (the names of cost_model.json)."""
    d = cfg.dim
    T, R = cfg.generations, cfg.replicates
    chains = float(T * R)
    train = R * _training_points(cfg)
    extras = set(cfg.extra_metrics)
    need_samples = bool(extras & {"pr", "modes", "w2"}) or cfg.scatter_points > 0
    eval_points = cfg.eval_chains * T * max(cfg.n_eval, cfg.scatter_points) if need_samples else 0
    sampled = R * _sampled_points(cfg) + eval_points
    mixture = cfg.target.modes is not None
    # Fixed costs: per call, per generation (Python and numpy call overhead, whatever R), per chain-generation.
    f: dict[str, float] = {"run": 1.0, "generation": float(T), "chain_generation": chains}
    if need_samples or "nll" in extras:
        f["eval_chain_generation"] = float(T * cfg.eval_chains)
    real = R * _real_points(cfg)
    if R * max(cfg.n_ini, cfg.training_size) * d > CACHE_ELEMENTS:
        # Arrays past the caches: every pass over the data waits on memory (about 2-3x the per-number cost).
        f["memory_bound"] = (train + sampled) * d
    f["mixture_points" if mixture else "gaussian_points"] = real * (1 if mixture else d * d)
    if cfg.model == "gaussian":
        f["gauss_nd"] = (train + sampled) * d
        f["gauss_nd2"] = (train + sampled) * d * d
        f["gauss_d3"] = chains * d**3
        f["gauss_chain_d2"] = chains * d * d  # batched small eigh/matmul: per-matrix cost at small d
    elif cfg.model == "gaussian-diag":
        f["diag_nd"] = (train + sampled) * d
    elif cfg.model == "kde":
        f["kde_nd"] = (train + sampled) * d
        f["kde_nd2"] = train * d * d
        f["kde_d3"] = chains * d**3
    elif cfg.model == "gmm":
        # EM iterations: em_iters is an upper bound (EM stops once every chain's log-likelihood settles, which on
        # well-separated mixtures happens after a fraction of it), so this estimate is an upper bound for the GMM.
        k = cfg.components
        f["gmm_chain"] = chains * k
        f["gmm_iter"] = float(cfg.em_iters * T)  # Python overhead of an EM iteration, whatever R
        f["gmm_init"] = train * k * d * (2 + math.log(k) + 11)  # k-means++ (2 + log k trials) and 11 Lloyd passes
        f["gmm_em"] = cfg.em_iters * train * k * (d * d + d + 1)
        f["gmm_em_small"] = cfg.em_iters * chains * k * d**3
        f["gmm_sample"] = sampled * d * d
    elif cfg.model == "flow":
        s, layers, h = cfg.flow_steps, cfg.flow_layers, cfg.flow_hidden
        width = h * h + h * d
        batch = min(cfg.flow_batch, max(2, cfg.n_ini))
        f["flow_steps"] = T * s * layers
        f["flow_step_flops"] = T * s * layers * R * batch * width
        f["flow_step_params"] = T * s * layers * R * width
        moments = MOMENT_SAMPLES * (1 if cfg.lam == 1 else 2)
        f["flow_sample"] = (sampled + chains * moments) * layers * width
    if "pr" in extras:
        # Precision/recall: three n_eval x n_eval distance and comparison passes, memory-bound, nearly whatever d.
        f["pr_pairs"] = T * cfg.eval_chains * cfg.n_eval**2
        f["pr_pairs_d"] = T * cfg.eval_chains * cfg.n_eval**2 * d
    if "modes" in extras and mixture:
        f["modes"] = T * cfg.eval_chains * cfg.n_eval * cfg.target.modes.shape[0] * d
    if "w2" in extras:
        m = min(cfg.n_eval, W2_POINTS)
        f["w2"] = T * cfg.eval_chains * m**3
        f["w2_sq"] = T * cfg.eval_chains * m**2
    if "nll" in extras:
        per_point = {"gaussian": d * d, "gaussian-diag": d, "gmm": cfg.components * (d * d + d),
                     "flow": cfg.flow_layers * (cfg.flow_hidden**2 + cfg.flow_hidden * d)}.get(cfg.model, 0)
        f[f"nll_{cfg.model}"] = T * cfg.eval_chains * cfg.n_eval * per_point
    return f


def estimate_seconds(cfg: Any, coefs: dict[str, float] | None = None) -> float:
    """Predicted run time of ``simulate(cfg)`` on one idle core, in seconds."""
    c = coefficients() if coefs is None else coefs
    return float(sum(c.get(name, 0.0) * value for name, value in features(cfg).items()))


def estimate_work(cfg: Any) -> float:
    """``estimate_seconds`` in the API's work units (``WORK_PER_SECOND`` per second)."""
    return estimate_seconds(cfg) * WORK_PER_SECOND
