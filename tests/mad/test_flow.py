"""The learned generator (RealNVP flow) and the densities of the other models (the nll metric)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from backend.services.mad import SimConfig, gaussian, ring, simulate
from backend.services.mad.flow import FlowSettings, elements_per_chain, fit_flow, parameters_per_chain
from backend.services.mad.models import fit_gaussian, fit_gmm

TINY = FlowSettings(layers=4, hidden=16, steps=100, batch=128, lr=3e-3)


def test_flow_inverse_and_density_integrate_to_one():
    rng = np.random.default_rng(0)
    x = ring(std=0.2).sample(rng, (2, 600))
    flow = fit_flow(x, rng, TINY)
    z = rng.standard_normal((2, 50, 2))
    back = flow._to_latent(torch.as_tensor(flow._decode(z), dtype=torch.float32))[0]
    np.testing.assert_allclose(back.numpy(), z, atol=1e-3)
    # The density of each chain integrates to ~1 over a grid that holds nearly all its mass.
    axis = np.linspace(-4, 4, 161)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(1, -1, 2)
    dens = np.exp(flow.log_prob(np.repeat(grid, 2, axis=0)))
    mass = dens.sum(axis=1) * (axis[1] - axis[0]) ** 2
    np.testing.assert_allclose(mass, 1.0, atol=0.03)


def test_flow_training_improves_likelihood_and_chains_are_independent():
    rng = np.random.default_rng(1)
    x = gaussian(2, np.array([[2.0, 1.2], [1.2, 1.0]])).sample(rng, (2, 800))
    flow = fit_flow(x, np.random.default_rng(5), TINY)
    held = gaussian(2, np.array([[2.0, 1.2], [1.2, 1.0]])).sample(rng, (2, 2000))
    exact = multivariate_normal([0, 0], [[2.0, 1.2], [1.2, 1.0]]).logpdf(held[0]).mean()
    nll = -flow.log_prob(held).mean(axis=1)
    assert np.all(nll < -exact + 0.15)  # close to the true density's entropy
    # Changing chain 1's data leaves chain 0's training untouched (the chains are separate runs; this also
    # shows that a seed fixes the run).
    other = x.copy()
    other[1] = rng.standard_normal((800, 2)) * 3 + 5
    again = fit_flow(other, np.random.default_rng(5), TINY)
    for layer_a, layer_b in zip(flow.params, again.params, strict=True):
        for key in layer_a:
            assert np.array_equal(layer_a[key][0].numpy(), layer_b[key][0].numpy())
            assert not np.array_equal(layer_a[key][1].numpy(), layer_b[key][1].numpy()) or key.startswith("b")


def test_flow_bias_shrinks_the_latent_and_head_keeps_chains():
    rng = np.random.default_rng(2)
    flow = fit_flow(gaussian(3).sample(rng, (3, 500)), rng, TINY)
    wide, narrow = flow.sample(rng, 3000, 1.0), flow.sample(rng, 3000, 0.3)
    assert np.all(narrow.var(axis=1).sum(axis=1) < 0.6 * wide.var(axis=1).sum(axis=1))
    np.testing.assert_allclose(flow.trace(), np.trace(flow.cov(), axis1=1, axis2=2))
    head = flow.head(2)
    assert head.sample(rng, 10).shape == (2, 10, 3) and head.mean().shape == (2, 3)
    np.testing.assert_allclose(head.mean(), flow.mean()[:2], atol=1e-6)
    assert parameters_per_chain(3, TINY) > 0 and elements_per_chain(3, TINY) > 4 * parameters_per_chain(3, TINY)


def test_flow_in_the_loops_reports_nll():
    cfg = SimConfig(target=ring(std=0.1), model="flow", n_ini=400, n_synth=400, generations=3, replicates=2,
                    n_eval=300, flow_layers=4, flow_hidden=16, flow_steps=60, seed=3)
    res = simulate(cfg)
    assert {"nll", "precision", "recall", "modes_covered", "hq_frac", "fd"} <= set(res.per_replicate)
    rows = res.rows()
    assert all(np.isfinite(row["nll"]) for row in rows)
    assert res.theory == {}
    with pytest.raises(ValueError, match="dim >= 2"):
        SimConfig(target=gaussian(1), model="flow")
    with pytest.raises(ValueError, match="density"):
        SimConfig(target=gaussian(2), model="kde", metrics=("nll",))


def test_gaussian_and_gmm_log_prob_match_scipy():
    rng = np.random.default_rng(4)
    cov = np.array([[1.5, 0.4], [0.4, 0.7]])
    x = gaussian(2, cov).sample(rng, (2, 300))
    full = fit_gaussian(x)
    diag = fit_gaussian(x, diag=True)
    pts = rng.standard_normal((2, 20, 2))
    for r in range(2):
        np.testing.assert_allclose(full.log_prob(pts)[r], multivariate_normal(full.mu[r], full.sigma[r]).logpdf(pts[r]))
        np.testing.assert_allclose(diag.log_prob(pts)[r],
                                   multivariate_normal(diag.mu[r], np.diag(diag.var[r])).logpdf(pts[r]))
    gmm = fit_gmm(ring().sample(rng, (1, 400)), 8, rng)
    manual = np.log(sum(w * multivariate_normal(m, c).pdf(pts[0]) for w, m, c in
                        zip(gmm.weights[0], gmm.means[0], gmm.covs[0], strict=True)))
    np.testing.assert_allclose(gmm.log_prob(pts[:1])[0], manual, rtol=1e-8)
    collapsed = fit_gaussian(np.ones((1, 5, 2)))
    assert np.all(collapsed.log_prob(pts[:1]) == -np.inf)


def test_written_out_adam_matches_torch_adam_bit_for_bit():
    from backend.services.mad.flow import _Adam

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 4, generator=gen)
    ours = [torch.randn(3, 4, 5, generator=gen).requires_grad_(True), torch.randn(3, 1, 5, generator=gen)]
    ours[1].requires_grad_(True)
    theirs = [p.detach().clone().requires_grad_(True) for p in ours]
    opt_ours, opt_theirs = _Adam(ours, lr=1e-2), torch.optim.Adam(theirs, lr=1e-2, foreach=True)
    for _ in range(30):
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            (torch.tanh(torch.baddbmm(params[1], x, params[0])) ** 2).sum().backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
