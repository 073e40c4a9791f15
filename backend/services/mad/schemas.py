"""Request/response models of POST /api/mad/simulate and the mad.simulate job, and the config caps.

Caps are plain mappings (the app's settings), checked by ``caps.validate`` for requests and jobs alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from backend.services.mad.cost import WORK_PER_SECOND, estimate_work
from backend.services.mad.effective import reference_peak_elements, reference_sizes, reference_work
from backend.services.mad.flow import elements_per_chain
from backend.services.mad.loops import EXTRA_METRICS, SimConfig
from backend.services.mad.targets import GaussianTarget, gaussian, grid25, ring
from backend.web.caps import Over, capped_by, first_over, fmt, refuse

TARGETS = ("gaussian", "grid25", "ring")
DEFAULT_SCATTER_TOTAL = 100_000
MAX_COV_ENTRY = 1e6  # keeps every product in the fit and the Frechet distance far from float64 overflow


class SimulateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["gaussian", "gaussian-diag", "gmm", "kde", "flow"] = Field(
        default="gaussian",
        description="full or diagonal Gaussian, Gaussian mixture (EM each generation), KDE, or a small RealNVP "
        "normalizing flow trained by Adam each generation (torch; dim >= 2, at most MAD_MAX_FLOW_DIM; "
        "a misspecified learned generator)",
    )
    target: Literal["gaussian", "grid25", "ring"] = Field(
        default="gaussian", description="N(0, target_cov), the 5x5 grid of Gaussians, or a ring of 8 (both 2-D)"
    )
    dim: int = Field(
        default=2, ge=1, description="dimension (mixture targets: 2); at most MAD_MAX_DIM",
        json_schema_extra=capped_by("MAD_MAX_DIM", "dimensions"),
    )
    target_cov: list[list[float]] | None = Field(
        default=None, description="covariance of the Gaussian target (dim x dim, symmetric PSD); default identity"
    )
    loop: Literal["fully_synthetic", "synthetic_augmentation", "fresh_data"] = "fully_synthetic"
    lam: float = Field(
        default=1.0, gt=0, le=1,
        description="sampling bias lambda in (0, 1]. Gaussian: samples from N(mu, lam Sigma) and flow: latent "
        "N(0, lam I), as in the paper; GMM: every component's covariance scaled by lam and KDE: kernel variance "
        "lam h^2 (our choices: the paper gives no GMM or KDE mechanism)",
    )
    generations: int = Field(default=20, ge=1, json_schema_extra=capped_by("MAD_MAX_GENERATIONS", "generations"))
    n_ini: int = Field(
        default=100, ge=2, description="real samples of generation 1 (the fixed set in augmentation)",
        json_schema_extra=capped_by("MAD_MAX_SAMPLES", "initial real samples (n_ini)"),
    )
    n_real: int = Field(
        default=100, ge=0, description="fresh real samples per generation (fresh_data loop)",
        json_schema_extra=capped_by("MAD_MAX_SAMPLES", "fresh real samples (n_real)"),
    )
    n_synth: int = Field(
        default=100, ge=0, description="synthetic samples per generation",
        json_schema_extra=capped_by("MAD_MAX_SAMPLES", "synthetic samples (n_synth)"),
    )
    replicates: int = Field(
        default=8, ge=1, description="independent chains; rows average over them",
        json_schema_extra=capped_by("MAD_MAX_REPLICATES", "replicates"),
    )
    estimator: Literal["unbiased", "mle"] = Field(default="unbiased", description="Gaussian covariance fit")
    source: Literal["last", "last_k", "accumulate"] = Field(
        default="last", description="synthetic data from G_{t-1}, the last k_last models, or an accumulating pool"
    )
    k_last: int = Field(default=2, ge=1, le=1000)
    gmm_components: int | None = Field(
        default=None, ge=1, description="default: the target's number of modes",
        json_schema_extra=capped_by("MAD_MAX_GMM_COMPONENTS", "mixture components"),
    )
    em_iters: int = Field(default=60, ge=1, le=500)
    kde_bandwidth: float | None = Field(
        default=None, gt=0, le=1e6, description="default: Scott's rule on the first real set"
    )
    flow_layers: int = Field(
        default=8, ge=1, description="flow: affine coupling layers", json_schema_extra=capped_by("MAD_MAX_FLOW_LAYERS", "flow layers")
    )
    flow_hidden: int = Field(
        default=64, ge=1, description="flow: hidden width of each coupling's MLP",
        json_schema_extra=capped_by("MAD_MAX_FLOW_HIDDEN", "hidden units per flow layer"),
    )
    flow_steps: int = Field(
        default=800, ge=1, description="flow: Adam steps (batch 256, learning rate 1e-3) per generation",
        json_schema_extra=capped_by("MAD_MAX_FLOW_STEPS", "flow steps per generation"),
    )
    metrics: list[Literal["pr", "modes", "w2", "nll"]] | None = Field(
        default=None,
        description="extra metric groups: precision/recall (k=5), modes covered, empirical W2, held-out real "
        "negative log-likelihood (not for kde); default pr+modes for mixtures, pr for dim <= 20, plus nll "
        "for the flow",
    )
    n_eval: int = Field(
        default=1000, ge=10, description="samples per chain for the sample-based metrics",
        json_schema_extra=capped_by("MAD_MAX_EVAL", "evaluation samples"),
    )
    eval_replicates: int | None = Field(default=None, ge=1, description="chains that get sample-based metrics")
    scatter_points: int | None = Field(
        default=None, ge=0, description="2-D points per generation returned for plotting; default 300 for mixtures",
        json_schema_extra=capped_by("MAD_MAX_SCATTER_POINTS", "scatter points"),
    )
    effective_sample_size: bool = Field(
        default=False,
        description="fresh_data only: also estimate n_e (paper Eq. 4), the real-only sample size whose fit is as "
        "good as the loop's limit, from a real-only reference curve (its work counts towards the caps)",
    )
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    mode: Literal["auto", "sync", "job"] = Field(
        default="auto", description="auto: answer small runs directly and start a job for larger ones"
    )

    # Checks that involve several fields sit on the field a user has to change, so the 422 names it (the page
    # shows the message under that control). Fields validate in declaration order: info.data holds the earlier
    # ones that were valid.
    @field_validator("dim")
    @classmethod
    def _dim_fits_target_and_model(cls, dim: int, info: ValidationInfo) -> int:
        target = info.data.get("target", "gaussian")
        if target != "gaussian" and dim != 2:
            raise ValueError(f"the {target} target is 2-D: set dim to 2")
        if info.data.get("model") == "flow" and dim < 2:
            raise ValueError("the flow model needs dim >= 2 (its coupling layers split the coordinates)")
        return dim

    @field_validator("target_cov")
    @classmethod
    def _valid_covariance(cls, value: list[list[float]] | None, info: ValidationInfo) -> list[list[float]] | None:
        if value is None:
            return value
        if info.data.get("target", "gaussian") != "gaussian":
            raise ValueError("target_cov only applies to the gaussian target")
        dim = info.data.get("dim")
        cov = np.asarray(value, dtype=float) if all(len(row) == len(value) for row in value) else None
        if cov is None or dim is None or cov.shape != (dim, dim):
            raise ValueError(f"target_cov must be a {dim}x{dim} matrix (dim x dim)")
        if not np.all(np.isfinite(cov)) or np.abs(cov).max() > MAX_COV_ENTRY:
            raise ValueError(f"target_cov entries must be finite with |value| <= {MAX_COV_ENTRY:g}")
        if not np.allclose(cov, cov.T, atol=1e-9 * max(1.0, np.abs(cov).max())):
            raise ValueError("target_cov must be symmetric")
        if np.linalg.eigvalsh(cov).min() < -1e-9 * max(1.0, np.abs(cov).max()):
            raise ValueError("target_cov must be positive semi-definite")
        return value

    @field_validator("n_real")
    @classmethod
    def _fresh_needs_real(cls, n_real: int, info: ValidationInfo) -> int:
        if info.data.get("loop") == "fresh_data" and n_real < 1:
            raise ValueError("the fresh_data loop needs n_real >= 1")
        return n_real

    @field_validator("n_synth")
    @classmethod
    def _fully_synthetic_needs_samples(cls, n_synth: int, info: ValidationInfo) -> int:
        if info.data.get("loop") == "fully_synthetic" and info.data.get("generations", 1) > 1 and n_synth < 2:
            raise ValueError("the fully_synthetic loop needs n_synth >= 2")
        return n_synth

    @field_validator("metrics")
    @classmethod
    def _nll_needs_density(cls, metrics: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if metrics and "nll" in metrics and info.data.get("model") == "kde":
            raise ValueError("the nll metric needs a model with a density (not kde)")
        return metrics

    @field_validator("effective_sample_size")
    @classmethod
    def _fresh_only(cls, wanted: bool, info: ValidationInfo) -> bool:
        if wanted and info.data.get("loop") != "fresh_data":
            raise ValueError("effective_sample_size is defined for the fresh_data loop only")
        return wanted

    def check_caps(self, settings: Mapping[str, Any]) -> None:
        check_run_caps(self, settings)

    def target_object(self):
        if self.target == "grid25":
            return grid25()
        if self.target == "ring":
            return ring()
        return gaussian(self.dim, None if self.target_cov is None else np.asarray(self.target_cov, float))

    def to_config(self) -> SimConfig:
        """The core's configuration; raises ValueError for combinations the core rejects."""
        mixture = self.target != "gaussian"
        # Default: 300 points per generation for mixtures, fewer for long runs (<= DEFAULT_SCATTER_TOTAL in all).
        default = min(300, max(10, DEFAULT_SCATTER_TOTAL // self.generations)) if mixture else 0
        scatter = self.scatter_points if self.scatter_points is not None else default
        return SimConfig(
            target=self.target_object(),
            model=self.model,
            loop=self.loop,
            lam=self.lam,
            n_ini=self.n_ini,
            n_real=self.n_real,
            n_synth=self.n_synth,
            generations=self.generations,
            replicates=self.replicates,
            estimator=self.estimator,
            source=self.source,
            k_last=self.k_last,
            gmm_components=self.gmm_components,
            em_iters=self.em_iters,
            kde_bandwidth=self.kde_bandwidth,
            flow_layers=self.flow_layers,
            flow_hidden=self.flow_hidden,
            flow_steps=self.flow_steps,
            metrics=None if self.metrics is None else tuple(dict.fromkeys(self.metrics)),
            n_eval=self.n_eval,
            eval_replicates=self.eval_replicates,
            scatter_points=scatter if self.dim >= 2 else 0,
            seed=self.seed,
        )


def cap_violation(params: SimulateParams, caps: Mapping[str, Any]) -> Over | None:
    """The first cap the request exceeds (declared, then joint and whole-run ones), or None."""
    return first_over(params, caps)


def total_work(params: SimulateParams, cfg: SimConfig) -> float:
    """The run's estimated work, plus the real-only reference curve when n_e is asked for."""
    return estimate_work(cfg) + (reference_work(cfg) if params.effective_sample_size else 0.0)


def check_run_caps(params: SimulateParams, caps: Mapping[str, Any]) -> None:
    """Joint caps (raise ``CapExceeded`` in the form's words): mixture dimension, scatter size, training-set
    size, memory held at once, estimated work."""
    if params.model == "gmm":
        refuse("MAD_MAX_GMM_DIM", params.dim, caps, noun="dimensions", field="dim",
               said=f"a mixture model in {fmt(params.dim)} dimensions",
               fix=f"use at most {fmt(caps['MAD_MAX_GMM_DIM'])} dimensions, or another model")
    if params.model == "flow":
        refuse("MAD_MAX_FLOW_DIM", params.dim, caps, noun="dimensions", field="dim",
               said=f"a flow model in {fmt(params.dim)} dimensions",
               fix=f"use at most {fmt(caps['MAD_MAX_FLOW_DIM'])} dimensions, or another model")
    if params.scatter_points is not None:
        most = max(0, caps["MAD_MAX_SCATTER_TOTAL"] // params.generations)
        refuse("MAD_MAX_SCATTER_TOTAL", params.scatter_points * params.generations, caps, noun="points",
               field="scatter_points", budget=True,
               said=f"{fmt(params.scatter_points)} scatter points x {fmt(params.generations)} generations",
               fix=f"use at most {fmt(most)} scatter points")
    cfg = params.to_config()  # a combination the core rejects raises ValueError: a plain validation error
    size = max(cfg.n_ini, cfg.training_size)
    growing = cfg.source == "accumulate"
    refuse("MAD_MAX_TRAINING_SET", size, caps, noun="samples", field="n_synth",
           said=f"a training set of {fmt(size)} samples" + (" (the pool accumulates every generation)" if growing
                                                              else ""),
           fix="use fewer generations or a smaller n_synth" if growing else "use a smaller n_synth or n_ini")
    elements = cfg.replicates * size * cfg.dim
    most = max(1, caps["MAD_MAX_ARRAY_ELEMENTS"] // (size * cfg.dim))
    refuse("MAD_MAX_ARRAY_ELEMENTS", elements, caps, noun="numbers held at once", budget=True,
           field="n_synth" if growing else "replicates",
           said=f"{fmt(cfg.replicates)} replicates x {fmt(size)} samples x {fmt(cfg.dim)} dimensions",
           fix=f"use at most {fmt(most)} replicates, or fewer samples")
    if cfg.model == "flow":  # parameters, gradients, Adam's moments and activations of every chain's flow
        per_chain = elements_per_chain(cfg.dim, cfg.flow_settings)
        refuse("MAD_MAX_ARRAY_ELEMENTS", cfg.replicates * per_chain, caps, noun="numbers held at once", budget=True,
               field="replicates",
               said=f"training {fmt(cfg.replicates)} flows of {fmt(per_chain)} numbers each (weights, Adam state, "
                    "activations)",
               fix=f"use at most {fmt(max(1, caps['MAD_MAX_ARRAY_ELEMENTS'] // per_chain))} replicates, or a "
                   "smaller flow")
    if params.effective_sample_size:  # the reference fits go up to 8 (n_real + n_synth) real samples
        largest = int(reference_sizes(cfg)[-1])
        refuse("MAD_MAX_TRAINING_SET", largest, caps, noun="samples", field="effective_sample_size",
               said=f"the real-only reference fit of {fmt(largest)} samples that n_e needs",
               fix="use a smaller n_real + n_synth, or leave n_e off")
        # The curve's chains run in chunks, so what it holds at once is its largest chunk (usually far below the cap).
        peak = reference_peak_elements(cfg)
        refuse("MAD_MAX_ARRAY_ELEMENTS", peak, caps, noun="numbers held at once", budget=True,
               field="effective_sample_size",
               said=f"estimating n_e (reference fits of up to {fmt(largest)} samples x {fmt(cfg.dim)} dimensions, "
                    f"{fmt(peak)} numbers in its largest chunk)",
               fix="use a smaller n_real + n_synth, or leave n_e off")
    work = total_work(params, cfg)
    per_replicate = work / cfg.replicates
    most = max(1, int(caps["MAD_MAX_WORK"] // per_replicate)) if per_replicate > 0 else cfg.replicates
    refuse("MAD_MAX_WORK", work, caps, noun="work units", budget=True, field="replicates",
           said=f"this run's estimated work ({fmt(work)} units, about "
                f"{fmt(round(work / caps['MAD_WORK_PER_SECOND']))} s on one core)",
           fix=f"use at most {fmt(most)} replicates, or fewer generations or samples")


class SimulateJobParams(SimulateParams):
    """The ``mad.simulate`` job's parameters: the request's fields and caps (checked at submission against the
    app's settings by ``caps.validate``, like the request itself)."""


def effective_payload(found: dict[str, Any]) -> dict[str, Any]:
    """``effective_sample_size``'s answer as JSON (no NaN: one chain has no standard error)."""
    return {**found, "limit_se": found["limit_se"] if np.isfinite(found["limit_se"]) else None}


def result_payload(
    result, work: float, elapsed_s: float | None, effective: dict[str, Any] | None = None
) -> dict[str, Any]:
    """JSON of a finished run (what the endpoint answers and the job returns); ``work`` = ``total_work``."""
    cfg = result.config
    target = cfg.target
    rows = result.rows()
    metric_names = list(result.per_replicate)
    return {
        "status": "done",
        "rows": rows,
        "metrics": metric_names,
        "theory": sorted(result.theory),
        "scatter": [np.round(points, 4).tolist() for points in result.scatter] or None,
        "modes": None if target.modes is None else np.round(target.modes, 6).tolist(),
        "target_trace": float(np.trace(target.cov)),
        "bandwidth": result.bandwidth,
        "eval_replicates": cfg.eval_chains if any(m in cfg.extra_metrics for m in EXTRA_METRICS) else 0,
        "work": work,
        "estimated_s": round(work / WORK_PER_SECOND, 3),
        "effective": None if effective is None else effective_payload(effective),
        "elapsed_s": elapsed_s,
        "job_id": None,
        "status_url": None,
        "gaussian_target": isinstance(target, GaussianTarget),
    }


class EffectiveSize(BaseModel):
    n_e: float = Field(description="real-only sample size whose expected FD equals the loop's limit")
    ratio: float = Field(description="n_e / n_real: >= 1 means the synthetic data helps (is 'admissible')")
    limit: float = Field(description="the loop's limiting FD: mean over the second half of the generations")
    limit_se: float | None = Field(description="its standard error over the chains (null for one chain)")
    clamped: bool = Field(description="n_e hit the edge of the reference grid (a bound, not an estimate)")
    sizes: list[int] = Field(description="the reference grid of real-only sample sizes n")
    curve: list[float] = Field(description="E FD(n) of the real-only fits on that grid")


class SimulateResponse(BaseModel):
    status: Literal["done", "queued"] = Field(description="done: rows inline; queued: follow the job")
    rows: list[dict[str, float | int | None]] | None = Field(
        default=None,
        description="one row per generation t: replicate means of each metric, '<metric>_se' standard errors, "
        "and '<metric>_theory' closed forms where they exist",
    )
    metrics: list[str] | None = None
    theory: list[str] | None = None
    scatter: list[list[list[float]]] | None = Field(
        default=None, description="per generation, sampler points of chain 0 (first two coordinates)"
    )
    modes: list[list[float]] | None = Field(default=None, description="the mixture target's modes")
    target_trace: float | None = None
    bandwidth: float | None = Field(default=None, description="KDE bandwidth used")
    eval_replicates: int | None = None
    work: float = Field(
        description="estimated work in units of 5e9 per predicted second on one idle core (capped by MAD_MAX_WORK; "
        "over MAD_SYNC_MAX_WORK a run becomes a job)"
    )
    estimated_s: float | None = Field(default=None, description="the same estimate in seconds (calibrated per model)")
    elapsed_s: float | None = None
    job_id: str | None = Field(default=None, description="queued: the mad.simulate job")
    job_key: str | None = Field(default=None, description="queued: the job's key (status_url carries it)")
    status_url: str | None = Field(default=None, description="queued: poll this (GET /api/jobs/<id>)")
    gaussian_target: bool | None = None
    effective: EffectiveSize | None = Field(default=None, description="n_e, when effective_sample_size was asked")
