"""Oracle 6: the metrics on their own."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm
from scipy.stats import ortho_group

from backend.services.mad import gaussian, grid25
from backend.services.mad import metrics as M
from backend.services.mad.models import GaussianDiag, GaussianFull, fit_gaussian


def random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_identity_symmetry_rotation():
    rng = np.random.default_rng(0)
    d = 6
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    assert M.frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)
    fd = M.frechet_distance(m1, s1, m2, s2)
    assert fd > 0
    assert M.frechet_distance(m2, s2, m1, s1) == pytest.approx(fd, rel=1e-9)
    q = ortho_group.rvs(d, random_state=1)
    assert M.frechet_distance(q @ m1, q @ s1 @ q.T, q @ m2, q @ s2 @ q.T) == pytest.approx(fd, rel=1e-9)
    # Agrees with the textbook form tr(S1 + S2 - 2 (S1 S2)^(1/2)) computed with scipy's sqrtm.
    textbook = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert fd == pytest.approx(textbook, rel=1e-8)


def test_frechet_one_dimensional_and_diagonal_forms():
    fd = M.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]]))
    assert fd == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2)
    a, b = np.array([1.0, 2.0, 0.5]), np.array([0.3, 2.0, 4.0])
    mu = np.array([0.1, -0.2, 0.3])
    fd = M.frechet_distance(mu, np.diag(a), np.zeros(3), np.diag(b))
    assert fd == pytest.approx(np.sum(mu**2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))


def test_frechet_singular_and_batched():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3))  # rank-deficient sample covariance in d = 8
    s1 = np.cov(np.hstack([x, np.zeros((5, 5))]).T)
    s2 = np.eye(8)
    fd = M.frechet_distance(np.zeros(8), s1, np.zeros(8), s2)
    assert np.isfinite(fd) and fd > 0
    batch = M.frechet_distance(np.zeros((2, 8)), np.stack([s1, s2]), np.zeros(8), s2)
    np.testing.assert_allclose(batch, [fd, 0.0], atol=1e-9)


@pytest.mark.parametrize("cov0", [np.eye(4), 2.5 * np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0]), None])
def test_frechet_to_target_fast_paths_agree(cov0):
    rng = np.random.default_rng(3)
    cov0 = random_spd(rng, 4) if cov0 is None else cov0
    target = gaussian(4, cov0)
    x = rng.standard_normal((3, 30, 4)) * np.array([1.0, 0.5, 2.0, 1.5])
    for model in (fit_gaussian(x), fit_gaussian(x, diag=True)):
        for lam in (1.0, 0.6):
            fast = M.frechet_to_target(model, target, lam)
            slow = M.frechet_distance(model.mean(), model.cov(lam), target.mean, target.cov)
            np.testing.assert_allclose(fast, slow, rtol=1e-8, atol=1e-10)


def test_fd_of_real_fit_is_d_d_plus_5_over_4n():
    d, n, reps = 5, 2000, 300
    rng = np.random.default_rng(4)
    model = fit_gaussian(rng.standard_normal((reps, n, d)))
    fd = M.frechet_to_target(model, gaussian(d))
    expected = d * (d + 5) / (4 * n)
    se = fd.std(ddof=1) / np.sqrt(reps)
    # Leading-order formula: allow 4 SE plus its O(1/n^2) error.
    assert abs(fd.mean() - expected) <= 4 * se + 0.02 * expected


def test_precision_recall_same_distribution_high():
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((1000, 3)), rng.standard_normal((1000, 3))
    p, r = M.precision_recall(real, fake, k=5)
    assert p > 0.9 and r > 0.9 and abs(p - r) < 0.05


def test_precision_recall_shrunk_sampler():
    rng = np.random.default_rng(6)
    real = rng.standard_normal((1000, 2))
    wide = M.precision_recall(real, rng.standard_normal((1000, 2)))
    narrow = M.precision_recall(real, 0.2 * rng.standard_normal((1000, 2)))
    collapsed = M.precision_recall(real, 1e-3 * rng.standard_normal((1000, 2)))
    assert narrow[0] >= wide[0] and collapsed[0] == 1.0
    assert narrow[1] < 0.5 * wide[1] and collapsed[1] < narrow[1]
    shifted = M.precision_recall(real, rng.standard_normal((1000, 2)) + 10)
    assert shifted == (0.0, 0.0)


def test_knn_radii_exclude_self():
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    np.testing.assert_allclose(M.knn_radii(x, k=1), [1.0, 1.0, 4.0, 9.0])
    with pytest.raises(ValueError):
        M.knn_radii(x, k=4)


def test_modes_covered():
    target = grid25()
    rng = np.random.default_rng(7)
    samples = target.sample(rng, (1000,))
    assert M.modes_covered(samples, target.modes, target.mode_std)[0] == 25
    only_three = target.modes[:3][rng.integers(3, size=900)] + 0.05 * rng.standard_normal((900, 2))
    stragglers = rng.uniform(-5, 5, size=(100, 2))
    covered, hq = M.modes_covered(np.vstack([only_three, stragglers]), target.modes, target.mode_std)
    assert covered == 3
    assert 0.87 <= hq < 0.93  # 2-D: P(|z| <= 3) = 1 - exp(-4.5) ~= 0.989 of the 900 on-mode points


def test_empirical_w2_matches_sorted_matching_in_1d():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((200, 1)), rng.standard_normal((200, 1)) + 0.5
    sorted_w2 = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert M.empirical_w2(x, y) == pytest.approx(sorted_w2, rel=1e-9)
    assert M.empirical_w2(x, x) == 0.0
    with pytest.raises(ValueError):
        M.empirical_w2(x, y[:10])


def test_logdet_and_singular_covariance():
    model = GaussianFull(np.zeros((2, 2)), np.stack([np.diag([2.0, 3.0]), np.diag([1.0, 0.0])]))
    out = model.logdet()
    assert out[0] == pytest.approx(np.log(6.0)) and out[1] == -np.inf
    diag = GaussianDiag(np.zeros((1, 2)), np.array([[2.0, 3.0]]))
    assert diag.logdet()[0] == pytest.approx(np.log(6.0))


def test_gmm_l2_matches_numerical_integration():
    from scipy.stats import multivariate_normal as mvn

    wa, ma = np.array([[0.3, 0.7]]), np.array([[[0.0, 0.0], [1.5, -0.5]]])
    ca = np.array([[[[0.4, 0.1], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.5]]]])
    wb, mb = np.array([[1.0]]), np.array([[[0.5, 0.0]]])
    cb = np.array([[[[0.6, -0.2], [-0.2, 0.4]]]])
    grid = np.linspace(-6, 7, 521)
    xx, yy = np.meshgrid(grid, grid)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    p = sum(w * mvn(m, c).pdf(pts) for w, m, c in zip(wa[0], ma[0], ca[0], strict=True))
    q = mvn(mb[0, 0], cb[0, 0]).pdf(pts)
    numeric = np.sum((p - q) ** 2) * (grid[1] - grid[0]) ** 2
    assert M.gmm_l2(wa, ma, ca, wb, mb, cb)[0] == pytest.approx(numeric, rel=1e-4)
    assert M.gmm_l2(wa, ma, ca, wa, ma, ca)[0] == pytest.approx(0.0, abs=1e-12)


def test_gmm_run_reports_l2_to_the_target():
    from backend.services.mad import SimConfig, ring, simulate

    rows = simulate(SimConfig(target=ring(), model="gmm", n_ini=300, n_synth=300, generations=3, replicates=2,
                              n_eval=200, seed=1)).rows()
    assert all(row["l2"] >= 0 for row in rows)
    assert rows[0]["l2"] < 0.2 * 8 * (1 / 8) ** 2 / (4 * np.pi * 0.05**2)  # well under |p|^2 of the target
