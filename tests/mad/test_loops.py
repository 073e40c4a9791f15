"""Models, synthetic sources, configuration checks, n_e and the paper's qualitative claims (small sizes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backend.services.mad import (
    SimConfig,
    cost,
    effective_sample_size,
    estimate_seconds,
    estimate_work,
    gaussian,
    grid25,
    iterate,
    ring,
    simulate,
)
from backend.services.mad import theory as th
from backend.services.mad.cost import WORK_PER_SECOND
from backend.services.mad.effective import invert_curve
from backend.services.mad.models import fit_gmm


def test_gmm_em_recovers_the_grid():
    target = grid25()
    rng = np.random.default_rng(0)
    x = target.sample(rng, (2, 1000))
    gmm = fit_gmm(x, 25, rng)
    for r in range(2):
        # Every true mode has a fitted component with a sizeable weight right on it.
        d2 = ((target.modes[:, None, :] - gmm.means[r][None]) ** 2).sum(axis=2)
        nearest = d2.argmin(axis=1)
        assert np.all(d2.min(axis=1) < 0.02**2 * 25)
        assert np.all(gmm.weights[r][nearest] > 0.01)
    np.testing.assert_allclose(gmm.weights.sum(axis=1), 1.0)
    samples = gmm.sample(rng, 500, lam=0.5)
    assert samples.shape == (2, 500, 2)


def test_gmm_fully_synthetic_loses_recall_faster_with_bias():
    base = SimConfig(target=ring(), model="gmm", n_ini=400, n_synth=400, generations=8, replicates=2,
                     n_eval=400, metrics=("pr", "modes"), seed=3)
    unbiased = simulate(base).rows()
    biased = simulate(replace(base, lam=0.6)).rows()
    assert unbiased[0]["modes_covered"] == 8
    # Bias keeps quality (precision) while diversity (recall) drops faster: the paper's Fig. 6-7 claim.
    assert biased[-1]["precision"] >= 0.95
    assert biased[-1]["recall"] < unbiased[-1]["recall"] - 0.2
    assert "modal_var" in biased[-1]


def test_kde_variance_grows_by_lambda_h_squared():
    cfg = SimConfig(target=gaussian(2), model="kde", n_ini=400, n_synth=400, lam=0.5, kde_bandwidth=0.3,
                    generations=6, replicates=400, metrics=(), seed=4)
    res = simulate(cfg)
    tr = res.per_replicate["trace_cov"].mean(axis=1)
    # Model covariance = MLE covariance of its points + h^2 I. A new point set drawn from the sampler has
    # E MLE covariance = (1 - 1/n) (old point covariance + lam h^2 I): the trace grows by ~ d lam h^2 per step.
    n, dh2, lam = 400, 2 * 0.09, 0.5
    expected = [tr[0]]
    for _ in range(5):
        expected.append((1 - 1 / n) * (expected[-1] - dh2 + lam * dh2) + dh2)
    np.testing.assert_allclose(tr, expected, rtol=0.02)
    assert res.bandwidth == pytest.approx(0.3)
    scott = simulate(replace(cfg, kde_bandwidth=None, generations=1, replicates=2))
    assert 0 < scott.bandwidth < 1


def test_sources_last_k_and_accumulate():
    cfg = SimConfig(target=gaussian(2), loop="fully_synthetic", n_ini=50, n_synth=50, generations=5,
                    replicates=3, source="accumulate", metrics=(), seed=5)
    assert cfg.training_size == 200
    models = [m for _, m in iterate(cfg)]
    assert len(models) == 5
    res = simulate(cfg)
    assert "trace_cov_theory" not in res.theory  # no closed form for an accumulating pool
    k3 = simulate(replace(cfg, source="last_k", k_last=3))
    assert k3.per_replicate["fd"].shape == (5, 3)
    # last_k with K = 1 is the last-model loop, theory included.
    k1 = simulate(replace(cfg, source="last_k", k_last=1))
    last = simulate(replace(cfg, source="last"))
    np.testing.assert_allclose(k1.per_replicate["fd"], last.per_replicate["fd"])
    assert "trace_cov_theory" in k1.theory


def test_accumulating_pool_slows_collapse():
    base = SimConfig(target=gaussian(1), model="gaussian-diag", n_ini=20, n_synth=20, lam=0.7,
                     generations=10, replicates=3000, metrics=(), seed=6)
    last = simulate(base).per_replicate["trace_cov"][-1].mean()
    pooled = simulate(replace(base, source="accumulate")).per_replicate["trace_cov"][-1].mean()
    assert last == pytest.approx(0.7**9, rel=0.1)
    assert pooled > 2 * last


def test_rows_have_means_errors_and_theory():
    cfg = SimConfig(target=gaussian(3), n_ini=3, n_synth=10, lam=0.9, generations=3, replicates=4, seed=7)
    rows = simulate(cfg).rows()
    assert [r["t"] for r in rows] == [1, 2, 3]
    assert rows[0]["logdet"] is None  # n_ini = d: singular fit, no finite log det
    for key in ("fd", "fd_se", "precision", "recall", "trace_cov_theory", "mean_err2_theory", "fd_sampler"):
        assert key in rows[1]
    assert rows[1]["fd_se"] > 0


def test_same_seed_same_result_and_progress():
    cfg = SimConfig(target=grid25(), model="gmm", n_ini=200, n_synth=200, generations=3, replicates=2,
                    n_eval=200, scatter_points=50, seed=8)
    seen = []
    a = simulate(cfg, lambda f, msg: seen.append((f, msg)))
    b = simulate(cfg)
    assert a.rows() == b.rows()
    assert [round(f, 3) for f, _ in seen] == [0.333, 0.667, 1.0]
    assert len(a.scatter) == 3 and a.scatter[0].shape == (50, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lam": 0.0},
        {"lam": 1.2},
        {"n_ini": 1},
        {"generations": 0},
        {"metrics": ("nope",)},
        {"model": "gmm", "gmm_components": 500},
        {"loop": "fully_synthetic", "n_synth": 1, "generations": 3},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        SimConfig(target=gaussian(2), **kwargs)


def test_estimate_work_grows_with_size():
    small = SimConfig(target=gaussian(2), metrics=())
    per_chain = estimate_work(replace(small, replicates=16)) - estimate_work(replace(small, replicates=8))
    assert estimate_work(replace(small, replicates=24)) - estimate_work(replace(small, replicates=16)) == (
        pytest.approx(per_chain))
    assert estimate_work(replace(small, metrics=("pr",))) > estimate_work(small)
    assert estimate_work(replace(small, model="gmm")) > estimate_work(small)
    assert estimate_work(replace(small, model="flow")) > estimate_work(replace(small, model="gmm"))
    assert estimate_work(small) == pytest.approx(estimate_seconds(small) * WORK_PER_SECOND)


def test_cost_model_has_a_measured_cost_for_every_term():
    """Every count ``cost.features`` can produce has a coefficient from scripts/mad_calibrate.py."""
    configs = [SimConfig(target=target, model=model, metrics=("pr", "modes", "w2") + (("nll",) if model != "kde"
                                                                                        else ()))
               for model in ("gaussian", "gaussian-diag", "kde", "gmm", "flow")
               for target in (gaussian(2), ring())]
    names = {name for c in configs for name in cost.features(c)}
    missing = names - set(cost.coefficients())
    assert not missing
    assert all(v >= 0 for v in cost.coefficients().values())
    assert any(cost.coefficients()[name] > 0 for name in names if name.startswith("flow_"))


def test_reference_curve_runs_in_chunks_within_the_memory_bound(monkeypatch):
    from backend.services.mad import effective

    cfg = SimConfig(target=gaussian(3), loop="fresh_data", n_ini=40, n_real=40, n_synth=40, generations=4,
                    replicates=4, metrics=(), seed=2)
    sizes = np.array([20, 200])
    whole = effective.real_only_fd_curve(cfg, sizes, replicates=64)
    monkeypatch.setattr(effective, "REFERENCE_CHUNK_ELEMENTS", 200 * 3 * 10)  # 10 chains of the largest size
    runs = effective._reference_configs(cfg, sizes, 64, 1)
    assert [c.replicates for i, c in runs if i == 1] == [10] * 6 + [4]  # 64 chains in chunks of 10
    assert [c.replicates for i, c in runs if i == 0] == [64]  # the small size fits in one piece
    assert max(c.replicates * c.n_ini * c.dim for _, c in runs) <= 200 * 3 * 10
    assert effective.reference_peak_elements(cfg) <= 200 * 3 * 10
    chunked = effective.real_only_fd_curve(cfg, sizes, replicates=64)
    # Different random streams, same expectation: E FD(n) ~= d(d+5)/(4n) up to Monte-Carlo error.
    np.testing.assert_allclose(chunked, whole, rtol=0.25)
    assert chunked[0] > 5 * chunked[1]


def test_invert_curve():
    sizes = np.array([10.0, 100.0, 1000.0])
    curve = 5.0 / sizes
    assert invert_curve(sizes, curve, 5.0 / 316.0) == pytest.approx(316.0, rel=1e-6)
    assert invert_curve(sizes, curve, 10.0) == 10.0
    assert invert_curve(sizes, curve, 1e-6) == 1000.0


def test_effective_sample_size_and_phase_transition():
    """Spec 2.2: with lam < 1 synthetic data helps below n_s* ~= (d+5)/(1-lam)^2 and hurts above it."""
    d, lam = 4, 0.5
    n_star = th.admissible_threshold(d, lam)  # 36
    assert n_star == pytest.approx(36.0)
    assert th.admissible_threshold(d, 1.0) == float("inf")
    base = SimConfig(target=gaussian(d), loop="fresh_data", n_ini=200, n_real=200, n_synth=200, lam=1.0,
                     generations=16, replicates=48, metrics=(), seed=9)
    sizes = np.unique(np.geomspace(50, 1600, 24).astype(int))
    from backend.services.mad.effective import real_only_fd_curve

    curve = real_only_fd_curve(base, sizes, replicates=400)
    unbiased = effective_sample_size(base, sizes=sizes, curve=curve)  # lam = 1: synthetic data helps
    biased = effective_sample_size(replace(base, n_synth=150, lam=lam), sizes=sizes, curve=curve)  # n_s >> n_s*
    assert unbiased["ratio"] > 1.2 and biased["ratio"] < 0.7
    assert not unbiased["clamped"] and not biased["clamped"]
    with pytest.raises(ValueError):
        effective_sample_size(replace(base, loop="fully_synthetic"))


def test_fully_synthetic_fd_increases_without_bias():
    cfg = SimConfig(target=gaussian(5), n_ini=50, n_synth=50, generations=12, replicates=200, metrics=(), seed=10)
    fd = simulate(cfg).per_replicate["fd"].mean(axis=1)
    assert np.all(np.diff(fd[::3]) > 0)
