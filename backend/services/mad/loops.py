"""The three autophagous loops of "Self-Consuming Generative Models Go MAD", simulated for R chains at once.

G_1 is fitted on n_ini real samples. For t >= 2, G_t is fitted from scratch on D_t = (real part, synthetic
part) where the synthetic part is drawn with sampling bias lam from earlier model(s):

- fully_synthetic:        D_t = synthetic only (n_synth samples);
- synthetic_augmentation: D_t = (G_1's fixed real set, n_synth synthetic);
- fresh_data:             D_t = (n_real fresh real samples, n_synth synthetic).

Synthetic source: ``last`` (G_{t-1}, the paper's main setting), ``last_k`` (the K previous models, n_synth
split evenly between them, a stratified version of sampling a model uniformly per point) or ``accumulate``
(a pool of every earlier synthetic batch, each batch n_synth samples from the model of its time: StyleGAN setup).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

from backend.services.mad import metrics as M
from backend.services.mad import models as mdl
from backend.services.mad.cost import W2_POINTS, estimate_seconds, estimate_work  # noqa: F401 (re-exported)
from backend.services.mad.flow import Flow, FlowSettings, fit_flow
from backend.services.mad.targets import GaussianTarget, MixtureTarget, Target
from backend.services.mad.theory import theory_columns

ModelName = Literal["gaussian", "gaussian-diag", "gmm", "kde", "flow"]
LoopName = Literal["fully_synthetic", "synthetic_augmentation", "fresh_data"]
SourceName = Literal["last", "last_k", "accumulate"]
# Optional metric groups; the moment metrics (mean_err2, trace_cov, logdet, fd, fd_sampler) are always on.
# nll: mean negative log-likelihood of held-out real points under the fitted model (models with a density).
EXTRA_METRICS = ("pr", "modes", "w2", "nll")
DENSITY_MODELS = ("gaussian", "gaussian-diag", "gmm", "flow")

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class SimConfig:
    target: Target
    model: ModelName = "gaussian"
    loop: LoopName = "fully_synthetic"
    lam: float = 1.0
    n_ini: int = 100
    n_real: int = 100
    n_synth: int = 100
    generations: int = 10
    replicates: int = 8
    estimator: Literal["unbiased", "mle"] = "unbiased"
    source: SourceName = "last"
    k_last: int = 2
    gmm_components: int | None = None  # default: the target's number of modes (1 for a Gaussian)
    em_iters: int = 60
    kde_bandwidth: float | None = None  # default: Scott's rule on the first real set, then kept fixed
    flow_layers: int = 8  # RealNVP coupling layers (flow.py)
    flow_hidden: int = 64
    flow_steps: int = 800  # Adam steps per generation
    flow_batch: int = 256
    flow_lr: float = 1e-3
    metrics: tuple[str, ...] | None = None  # extra groups from EXTRA_METRICS; None = defaults for the target
    n_eval: int = 1000
    eval_replicates: int | None = None  # sample-based metrics on the first this-many chains (None: up to 16)
    k_nn: int = 5
    scatter_points: int = 0  # >0: keep this many sampler points of replicate 0 per generation (2-D view)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.lam <= 1:
            raise ValueError("lam must lie in (0, 1]")
        if self.generations < 1 or self.replicates < 1:
            raise ValueError("generations and replicates must be >= 1")
        if self.n_ini < 2 or self.n_synth < 0 or self.n_real < 0:
            raise ValueError("need n_ini >= 2 and non-negative n_real, n_synth")
        if self.generations > 1 and self.training_size < 2:
            raise ValueError("every generation needs at least 2 training samples")
        if self.model == "gmm" and self.components > min(self.n_ini, self.training_size):
            raise ValueError("more mixture components than training samples")
        if self.source == "last_k" and self.k_last < 1:
            raise ValueError("k_last must be >= 1")
        unknown = set(self.extra_metrics) - set(EXTRA_METRICS)
        if unknown:
            raise ValueError(f"unknown metric groups {sorted(unknown)}")
        if self.eval_replicates is not None and self.eval_replicates < 1:
            raise ValueError("eval_replicates must be >= 1")
        if ("pr" in self.extra_metrics) and self.n_eval <= self.k_nn:
            raise ValueError("n_eval must exceed k_nn for precision/recall")
        if "nll" in self.extra_metrics and self.model not in DENSITY_MODELS:
            raise ValueError(f"the nll metric needs a model with a density ({', '.join(DENSITY_MODELS)})")
        if self.model == "flow":
            if self.dim < 2:
                raise ValueError("the flow model needs dim >= 2 (coupling layers split the coordinates)")
            if min(self.flow_layers, self.flow_hidden, self.flow_steps, self.flow_batch) < 1 or not self.flow_lr > 0:
                raise ValueError("flow layers, hidden, steps and batch must be >= 1 and flow_lr > 0")

    @property
    def flow_settings(self) -> FlowSettings:
        return FlowSettings(layers=self.flow_layers, hidden=self.flow_hidden, steps=self.flow_steps,
                            batch=self.flow_batch, lr=self.flow_lr)

    @property
    def ddof(self) -> int:
        return 1 if self.estimator == "unbiased" else 0

    @property
    def dim(self) -> int:
        return self.target.dim

    @property
    def components(self) -> int:
        if self.gmm_components is not None:
            return self.gmm_components
        return 1 if self.target.modes is None else self.target.modes.shape[0]

    @property
    def real_size(self) -> int:
        """Real samples in D_t for t >= 2."""
        return {"fully_synthetic": 0, "synthetic_augmentation": self.n_ini, "fresh_data": self.n_real}[self.loop]

    @property
    def training_size(self) -> int:
        """Size of D_t for t >= 2 (the largest one for an accumulating pool)."""
        synth = self.n_synth * (self.generations - 1 if self.source == "accumulate" else 1)
        return self.real_size + synth

    @property
    def eval_chains(self) -> int:
        """Chains that get the sample-based metrics (each costs O(n_eval^2) per generation)."""
        wanted = 16 if self.eval_replicates is None else self.eval_replicates
        return min(self.replicates, wanted)

    @property
    def extra_metrics(self) -> tuple[str, ...]:
        if self.metrics is not None:
            return tuple(self.metrics)
        density = ("nll",) if self.model == "flow" else ()
        if isinstance(self.target, MixtureTarget):
            return ("pr", "modes", *density)
        return ("pr", *density) if self.dim <= 20 else density




@dataclass
class SimResult:
    config: SimConfig
    per_replicate: dict[str, np.ndarray]  # metric -> (T, R)
    theory: dict[str, np.ndarray]  # column -> (T,)
    scatter: list[np.ndarray] = field(default_factory=list)  # per generation (m, 2) points of replicate 0
    bandwidth: float | None = None

    def rows(self) -> list[dict]:
        """One row per generation: replicate means, standard errors (``<metric>_se``) and theory columns."""
        rows = []
        for i in range(self.config.generations):
            row: dict = {"t": i + 1}
            for name, values in self.per_replicate.items():
                v = values[i]
                reps = v.shape[0]
                if np.all(np.isfinite(v)):
                    row[name] = float(v.mean())
                    row[name + "_se"] = float(v.std(ddof=1) / np.sqrt(reps)) if reps > 1 else None
                else:  # e.g. log det of a singular covariance (n <= d): no finite mean exists
                    row[name] = None
                    row[name + "_se"] = None
            for name, values in self.theory.items():
                row[name] = float(values[i]) if np.isfinite(values[i]) else None
            rows.append(row)
        return rows


def _head(model: mdl.Model, count: int) -> mdl.Model:
    """The same model restricted to its first ``count`` replicate chains."""
    if isinstance(model, mdl.GaussianFull):
        w, v = model.eig
        return mdl.GaussianFull(model.mu[:count], model.sigma[:count], (w[:count], v[:count]))
    if isinstance(model, mdl.GaussianDiag):
        return mdl.GaussianDiag(model.mu[:count], model.var[:count])
    if isinstance(model, mdl.GMM):
        return mdl.GMM(model.weights[:count], model.means[:count], model.covs[:count])
    if isinstance(model, Flow):
        return model.head(count)
    return mdl.KDE(model.points[:count], model.h[:count])


def _fit(cfg: SimConfig, x: np.ndarray, rng: np.random.Generator, bandwidth: np.ndarray | None) -> mdl.Model:
    if cfg.model == "gaussian":
        return mdl.fit_gaussian(x, ddof=cfg.ddof)
    if cfg.model == "gaussian-diag":
        return mdl.fit_gaussian(x, ddof=cfg.ddof, diag=True)
    if cfg.model == "gmm":
        return mdl.fit_gmm(x, cfg.components, rng, iters=cfg.em_iters)
    if cfg.model == "flow":
        return fit_flow(x, rng, cfg.flow_settings)
    return mdl.KDE(x, bandwidth)


def _synthetic(cfg: SimConfig, history: deque, pool: list, rng: np.random.Generator) -> np.ndarray:
    if cfg.source == "last":
        return history[-1].sample(rng, cfg.n_synth, cfg.lam)
    if cfg.source == "accumulate":
        pool.append(history[-1].sample(rng, cfg.n_synth, cfg.lam))
        return np.concatenate(pool, axis=1)
    models = list(history)
    counts = np.full(len(models), cfg.n_synth // len(models))
    counts[: cfg.n_synth % len(models)] += 1
    parts = [g.sample(rng, int(c), cfg.lam) for g, c in zip(models, counts, strict=True) if c > 0]
    return np.concatenate(parts, axis=1)


def iterate(cfg: SimConfig, rng: np.random.Generator | None = None):
    """Yield (t, model) for t = 1..T: the fitted models of all replicate chains, generation by generation."""
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    r = cfg.replicates
    first = cfg.target.sample(rng, (r, cfg.n_ini))
    bandwidth = None
    if cfg.model == "kde":
        bandwidth = np.full(r, cfg.kde_bandwidth) if cfg.kde_bandwidth else mdl.scott_bandwidth(first)
    history: deque = deque(maxlen=cfg.k_last if cfg.source == "last_k" else 1)
    pool: list = []
    model = _fit(cfg, first, rng, bandwidth)
    history.append(model)
    yield 1, model
    for t in range(2, cfg.generations + 1):
        synth = _synthetic(cfg, history, pool, rng)
        if cfg.loop == "fully_synthetic":
            data = synth
        elif cfg.loop == "synthetic_augmentation":
            data = np.concatenate([first, synth], axis=1)
        else:
            data = np.concatenate([cfg.target.sample(rng, (r, cfg.n_real)), synth], axis=1)
        model = _fit(cfg, data, rng, bandwidth)
        history.append(model)
        yield t, model


def simulate(cfg: SimConfig, progress: Progress | None = None, *, blas_threads: int | None = 1) -> SimResult:
    """Run the loop and record, per generation and replicate, the metrics of the fitted model G_t.

    ``blas_threads`` caps BLAS threads for the run (None = leave as is): the work is many small batched
    matrices, where BLAS threads only add synchronisation (10x slower on a busy 2-core machine).

    Moment metrics use the fitted model (the primary quantities of the theory); ``fd_sampler`` and the
    sample-based metrics (precision/recall, modes, W2) use what the generation actually produces,
    i.e. samples with bias lam.
    """
    if blas_threads is not None:
        with threadpool_limits(blas_threads):
            return simulate(cfg, progress, blas_threads=None)
    rng = np.random.default_rng(cfg.seed)
    # A separate stream for evaluation keeps the loop's own random numbers identical whatever metrics run.
    eval_rng = np.random.default_rng([cfg.seed, 1])
    target = cfg.target
    extras = cfg.extra_metrics
    T, R = cfg.generations, cfg.replicates
    names = ["mean_err2", "trace_cov", "logdet", "fd", "fd_sampler"]
    gmm_vs_mixture = cfg.model == "gmm" and isinstance(target, MixtureTarget)
    if cfg.model == "gmm":
        names.append("modal_var")
    if gmm_vs_mixture:
        names.append("l2")
        k0, d0 = target.modes.shape
        covs0 = np.broadcast_to(target.std**2 * np.eye(d0), (1, k0, d0, d0))
        target_mix = (target.weights[None], target.modes[None], covs0)
    if "pr" in extras:
        names += ["precision", "recall"]
    if "modes" in extras and target.modes is not None:
        names += ["modes_covered", "hq_frac"]
    if "w2" in extras:
        names.append("w2")
    if "nll" in extras:
        names.append("nll")
    sample_based = {"precision", "recall", "modes_covered", "hq_frac", "w2", "nll"}
    E = cfg.eval_chains
    out = {name: np.empty((T, E if name in sample_based else R)) for name in names}
    need_samples = any(name in sample_based - {"nll"} for name in names) or cfg.scatter_points > 0
    real_eval = radii = None
    if "pr" in extras or "w2" in extras or "nll" in extras:
        real_eval = target.sample(eval_rng, (E, cfg.n_eval))
    if "pr" in extras:
        radii = [M.knn_radii(real_eval[j], cfg.k_nn) for j in range(E)]
    scatter = []
    bandwidth = None
    for t, model in iterate(cfg, rng):
        i = t - 1
        if isinstance(model, mdl.KDE):
            bandwidth = float(model.h[0])
        out["mean_err2"][i] = ((model.mean() - target.mean) ** 2).sum(axis=1)
        out["trace_cov"][i] = model.trace()
        out["logdet"][i] = model.logdet()
        out["fd"][i] = M.frechet_to_target(model, target)
        out["fd_sampler"][i] = out["fd"][i] if cfg.lam == 1 else M.frechet_to_target(model, target, cfg.lam)
        if cfg.model == "gmm":
            out["modal_var"][i] = model.modal_variance()
        if gmm_vs_mixture:
            out["l2"][i] = M.gmm_l2(model.weights, model.means, model.covs, *target_mix)
        if "nll" in extras:
            out["nll"][i] = -_head(model, E).log_prob(real_eval).mean(axis=1)
        if need_samples:
            fake = _head(model, E).sample(eval_rng, max(cfg.n_eval, cfg.scatter_points), cfg.lam)
            fake_eval = fake[:, : cfg.n_eval]
            for j in range(E):
                if "pr" in extras:
                    out["precision"][i, j], out["recall"][i, j] = M.precision_recall(
                        real_eval[j], fake_eval[j], cfg.k_nn, real_radii=radii[j]
                    )
                if "modes" in extras and target.modes is not None:
                    out["modes_covered"][i, j], out["hq_frac"][i, j] = M.modes_covered(
                        fake_eval[j], target.modes, target.mode_std, target.weights
                    )
                if "w2" in extras:
                    m = min(cfg.n_eval, W2_POINTS)
                    out["w2"][i, j] = M.empirical_w2(fake_eval[j, :m], real_eval[j, :m])
            if cfg.scatter_points > 0:
                scatter.append(fake[0, : cfg.scatter_points, :2].copy())
        if progress is not None:
            progress(t / T, f"generation {t}/{T}")
    theory = {}
    if isinstance(target, GaussianTarget):
        theory = theory_columns(
            model=cfg.model,
            loop=cfg.loop,
            source=cfg.source if not (cfg.source == "last_k" and cfg.k_last == 1) else "last",
            cov0=target.cov,
            lam=cfg.lam,
            n_ini=cfg.n_ini,
            n_real=cfg.n_real,
            n_synth=cfg.n_synth,
            generations=T,
            ddof=cfg.ddof,
        )
    return SimResult(cfg, out, theory, scatter, bandwidth)
