"""Oracles for optimal and randomized low rank and the least-squares helpers (spec section 5, items 7-9)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.services.matrix.lowrank import (
    als_lowrank,
    pinv,
    randomized_svd,
    solve_left_factor,
    solve_right_factor,
    svd_lowrank,
    tail_errors,
)


def low_rank_plus_noise(m, n, rank, noise, seed=0, s_hi=100.0, s_lo=10.0):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((m, rank)))
    v, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    s = np.linspace(s_hi, s_lo, rank)
    return (u * s) @ v.T + noise * rng.standard_normal((m, n)), s


@pytest.mark.parametrize("shape", [(30, 20), (20, 30), (25, 25)])
def test_eckart_young_error_identities(shape):
    a = np.random.default_rng(1).standard_normal(shape)
    sv = np.linalg.svd(a, compute_uv=False)
    for r in (1, 5, min(shape) - 1, min(shape)):
        lr = svd_lowrank(a, r)
        resid = a - lr.reconstruct()
        assert lr.error_fro == pytest.approx(np.linalg.norm(resid), rel=1e-9, abs=1e-10)
        assert lr.error_fro**2 == pytest.approx(float(np.sum(sv[r:] ** 2)), rel=1e-9, abs=1e-18)
        assert lr.error_spectral == pytest.approx(np.linalg.norm(resid, 2), rel=1e-9, abs=1e-10)
        assert lr.error_spectral == pytest.approx(sv[r] if r < min(shape) else 0.0, abs=1e-10)
        assert lr.nparams == r * sum(shape)
    np.testing.assert_allclose(lr.singular_values, sv)


def test_no_random_factorisation_beats_the_svd_and_als_reaches_it():
    a = np.random.default_rng(2).standard_normal((40, 30))
    r = 4
    best = svd_lowrank(a, r).error_fro
    rng = np.random.default_rng(3)
    for _ in range(50):
        x, y = rng.standard_normal((40, r)), rng.standard_normal((r, 30))
        assert np.linalg.norm(a - x @ y) >= best
        # even with the optimal second factor for a random first factor
        yy = solve_right_factor(x, a)
        assert np.linalg.norm(a - x @ yy) >= best - 1e-12
    _, _, history = als_lowrank(a, r, iters=200, seed=0)
    assert all(h2 <= h1 + 1e-9 for h1, h2 in zip(history, history[1:], strict=False))  # monotone
    assert history[-1] == pytest.approx(best, rel=1e-6)


def test_svd_recovers_subspace_not_raw_vectors():
    a, _ = low_rank_plus_noise(60, 50, 5, 0.0, seed=4)
    lr = svd_lowrank(a, 5)
    assert lr.error_fro < 1e-10 and lr.error_spectral < 1e-10  # exactly rank 5
    proj_true = lr.u @ lr.u.T
    q, _ = np.linalg.qr(a[:, :20])
    q = q[:, :5]
    np.testing.assert_allclose(proj_true @ a, a, atol=1e-9)  # compare projectors / reconstructions
    assert np.linalg.norm(q @ q.T - proj_true) < 1e-8
    for r in (6, 10):
        assert svd_lowrank(a, r).error_fro < 1e-10


def test_tail_errors_edge_cases():
    assert tail_errors(np.array([3.0, 2.0, 1.0]), 3) == (0.0, 0.0)
    fro, spec = tail_errors(np.array([3.0, 2.0, 1.0]), 1)
    assert fro == pytest.approx(np.sqrt(5.0)) and spec == 2.0


@pytest.mark.parametrize("bad", [np.zeros((3,)), np.zeros((0, 3)), np.array([[1.0, np.nan]]), np.array([[np.inf, 1.0]])])
def test_bad_matrices_are_refused(bad):
    with pytest.raises(ValueError):
        svd_lowrank(bad, 1)
    with pytest.raises(ValueError):
        randomized_svd(bad, 1)


def test_randomized_svd_names_nan_inf_and_overflow():
    for bad, words in ((np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or Inf"),
                       (np.array([[np.inf, 1.0], [0.0, 1.0]]), "NaN or Inf"),
                       (np.array([[1e200, 1.0], [0.0, 1.0]]), "too large")):
        with pytest.raises(ValueError, match=words):
            randomized_svd(bad, 1)


def test_rank_out_of_range():
    a = np.ones((4, 6))
    for r in (0, 5, -1):
        with pytest.raises(ValueError, match="rank"):
            svd_lowrank(a, r)
        with pytest.raises(ValueError, match="rank"):
            randomized_svd(a, r)


@pytest.fixture(scope="module")
def hard_case():
    # noise edge 2 * 0.1 * sqrt(400) = 4, just under the smallest signal sigma 4.5: power iterations matter
    a, _ = low_rank_plus_noise(400, 400, 20, 0.1, seed=5, s_hi=40.0, s_lo=4.5)
    return a, np.linalg.svd(a, compute_uv=False)


@pytest.mark.parametrize("power_iters,max_ratio,top_rtol,all_rtol", [
    (1, 1.02, 1e-3, 0.3), (2, 1.005, 1e-6, 0.1), (4, 1.001, 1e-10, 0.01)])
def test_randomized_svd_error_ratio_on_a_hard_seeded_case(hard_case, power_iters, max_ratio, top_rtol, all_rtol):
    a, sv = hard_case
    k = 20
    optimal = np.sqrt(np.sum(sv[k:] ** 2))
    lr = randomized_svd(a, k, oversample=10, power_iters=power_iters, seed=0)
    true_err = np.linalg.norm(a - lr.reconstruct())
    ratio = true_err / optimal
    assert 1.0 <= ratio <= max_ratio
    # the a-posteriori Frobenius error is exact, not a bound
    assert lr.error_fro == pytest.approx(true_err, rel=1e-8)
    # spectral: the power-iteration estimate is below the truth, the probabilistic bound above, and both near it
    true_spec = np.linalg.norm(a - lr.reconstruct(), 2)
    assert sv[k] - 1e-9 <= true_spec
    assert lr.error_spectral <= true_spec * (1 + 1e-9)
    assert lr.error_spectral >= 0.9 * true_spec
    assert lr.extra["error_spectral_bound"] >= true_spec
    # sorted singular values against numpy's: the top half is accurate, those near the noise edge less so
    assert np.all(np.diff(lr.s) <= 0)
    np.testing.assert_allclose(lr.s[: k // 2], sv[: k // 2], rtol=top_rtol)
    np.testing.assert_allclose(lr.s, sv[:k], rtol=all_rtol)
    assert np.all(lr.s <= sv[:k] * (1 + 1e-12))  # Q Q^T A has no larger singular values than A


def test_randomized_svd_without_power_iterations_is_worse_and_seeded():
    a, _ = low_rank_plus_noise(400, 300, 20, 0.1, seed=6, s_hi=50.0, s_lo=4.0)
    sv = np.linalg.svd(a, compute_uv=False)
    optimal = np.sqrt(np.sum(sv[20:] ** 2))
    q0 = randomized_svd(a, 20, power_iters=0, seed=1, estimate_spectral=False)
    q2 = randomized_svd(a, 20, power_iters=2, seed=1, estimate_spectral=False)
    assert q0.error_spectral is None
    assert q0.error_fro / optimal > q2.error_fro / optimal > 1.0 - 1e-9
    again = randomized_svd(a, 20, power_iters=0, seed=1, estimate_spectral=False)
    np.testing.assert_array_equal(again.s, q0.s)


def test_randomized_svd_is_exact_on_exactly_low_rank_input():
    a, s = low_rank_plus_noise(200, 150, 8, 0.0, seed=7)
    lr = randomized_svd(a, 8, oversample=5, power_iters=1)
    np.testing.assert_allclose(lr.s, s, rtol=1e-10)
    true_err = np.linalg.norm(a - lr.reconstruct())
    assert true_err < 1e-9 and lr.error_fro == pytest.approx(true_err, rel=1e-6, abs=1e-12)


def test_pinv_identities_and_normal_equations():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((12, 5)) @ rng.standard_normal((5, 9))  # rank 5, deficient
    ap = pinv(a)
    np.testing.assert_allclose(ap, np.linalg.pinv(a), atol=1e-10)
    np.testing.assert_allclose(a @ ap @ a, a, atol=1e-10)
    np.testing.assert_allclose(ap @ a @ ap, ap, atol=1e-10)
    np.testing.assert_allclose(pinv(ap), a, atol=1e-8)
    # ridge limit (A^T A + eps I)^-1 A^T -> A^+
    eps = 1e-9
    ridge = np.linalg.solve(a.T @ a + eps * np.eye(9), a.T)
    np.testing.assert_allclose(ridge, ap, atol=1e-5)
    # one factor given: normal equations A^T (A B* - M) = 0 and (A* B - M) B^T = 0
    full_a = rng.standard_normal((12, 4))
    m = rng.standard_normal((12, 7))
    b_star = solve_right_factor(full_a, m)
    np.testing.assert_allclose(full_a.T @ (full_a @ b_star - m), 0.0, atol=1e-10)
    np.testing.assert_allclose(b_star, pinv(full_a) @ m, atol=1e-10)
    b = rng.standard_normal((4, 7))
    a_star = solve_left_factor(b, m)
    np.testing.assert_allclose((a_star @ b - m) @ b.T, 0.0, atol=1e-10)
    np.testing.assert_allclose(a_star, m @ pinv(b), atol=1e-10)
    with pytest.raises(ValueError, match="rows"):
        solve_right_factor(full_a, m[:5])
    with pytest.raises(ValueError, match="columns"):
        solve_left_factor(b, m[:, :3])


# the fast paths of the randomized SVD: each against a float64 reference -------------------------------------------


def test_cholesky_qr_basis_and_its_householder_fallback(monkeypatch):
    import torch

    from backend.services.matrix import lowrank as mod

    calls = []
    real = mod._householder_q
    monkeypatch.setattr(mod, "_householder_q", lambda y: calls.append(y.shape) or real(y))
    rng = np.random.default_rng(11)
    left, _ = np.linalg.qr(rng.standard_normal((500, 60)))
    y = torch.from_numpy((left * np.logspace(0, 3, 60)) @ rng.standard_normal((60, 60)))  # cond ~1e3-1e4
    q = mod._well_conditioned_basis(y)
    assert calls == []  # Cholesky QR took it
    assert float(torch.linalg.cond(q)) < 1 + 1e-6  # a well-conditioned basis (orthonormal up to ~cond^2 eps)
    torch.testing.assert_close(q @ torch.linalg.lstsq(q, y).solution, y, atol=1e-9, rtol=0)  # same column space
    # exactly rank 5: the Gram matrix is singular, so Householder QR answers
    low = torch.from_numpy(rng.standard_normal((500, 5)) @ rng.standard_normal((5, 60)))
    q = mod._well_conditioned_basis(low)
    assert calls == [(500, 60)]
    torch.testing.assert_close(q.T @ q, torch.eye(60, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(q @ (q.T @ low), low, atol=1e-10, rtol=0)
    # the same y in float32 is too ill-conditioned for Cholesky QR there (cond^2 eps32 ~ 1): Householder again
    q32 = mod._well_conditioned_basis(y.float())
    assert calls == [(500, 60), (500, 60)]
    torch.testing.assert_close(q32.T @ q32, torch.eye(60), atol=1e-5, rtol=0)
    # the final basis is always Householder's, orthonormal to round-off
    q = mod._orthonormalise(y)
    torch.testing.assert_close(q.T @ q, torch.eye(60, dtype=torch.float64), atol=1e-13, rtol=0)


def test_fast_products_and_small_svd_match_the_plain_ones():
    import torch

    from backend.services.matrix.lowrank import _small_svd, _t_times, _times

    rng = np.random.default_rng(12)
    a = torch.from_numpy(rng.standard_normal((300, 200)))
    q = torch.linalg.qr(torch.from_numpy(rng.standard_normal((200, 30)))).Q  # column-major, as LAPACK returns it
    p = torch.linalg.qr(torch.from_numpy(rng.standard_normal((300, 30)))).Q
    torch.testing.assert_close(_times(a, q), a @ q, atol=1e-12, rtol=0)
    torch.testing.assert_close(_t_times(a, p), a.T @ p, atol=1e-12, rtol=0)
    b = torch.from_numpy(rng.standard_normal((30, 400)))
    u, s, vt = _small_svd(b)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(b.numpy(), compute_uv=False), rtol=1e-12)
    torch.testing.assert_close((u * s) @ vt, b, atol=1e-12, rtol=0)
    torch.testing.assert_close(vt @ vt.T, torch.eye(30, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(u.T @ u, torch.eye(30, dtype=torch.float64), atol=1e-12, rtol=0)


def test_float32_input_is_computed_in_float32_with_float64_errors(hard_case):
    a64, sv = hard_case
    a32 = a64.astype(np.float32)
    optimal = np.sqrt(np.sum(sv[20:] ** 2))
    lr32 = randomized_svd(a32, 20, oversample=10, power_iters=2, seed=0)
    lr64 = randomized_svd(a64, 20, oversample=10, power_iters=2, seed=0)
    assert lr32.u.dtype == lr32.s.dtype == lr32.vt.dtype == np.float32
    true_err = np.linalg.norm(a32.astype(np.float64) - lr32.reconstruct().astype(np.float64))
    assert lr32.error_fro == pytest.approx(true_err, rel=1e-5)  # float32: ~5 digits of the identity
    assert true_err / optimal == pytest.approx(lr64.error_fro / optimal, abs=1e-4)  # same sketch, same error
    np.testing.assert_allclose(lr32.s[:10], sv[:10], rtol=1e-5)
