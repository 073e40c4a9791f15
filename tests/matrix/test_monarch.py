# ruff: noqa: E741  (``l`` is the count of L blocks, as in the spec)
"""Oracles for Monarch matrices (spec section 5, items 1-6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.services.matrix.monarch import (
    Monarch,
    block_diag,
    block_size_layout,
    dense_reference,
    linear_layout,
    monarch_matmul,
    monarch_matmul_einsum,
    monarch_matmul_fly,
    monarch_matmul_transposed,
    monarch_to_dense,
    param_count,
    perm_matrix,
    project,
    rectangular_layout,
    reshape_transpose_perm,
    square_factorisation,
    square_layout,
)

LAYOUTS = {
    "square16": square_layout(16),
    "square64": square_layout(64),
    "square64_rank2": square_layout(64, 2),
    "b4_n24": block_size_layout(24, 4),
    "b8_n64": block_size_layout(64, 8),
    "rect": rectangular_layout(3, 4, 5, 6),
    "linear_in_lt_out": linear_layout(8, 20, 4),
    "linear_in_ge_out": linear_layout(48, 12, 4),
    "uneven_block_ranks": ((3, 5, 2), (5, 4, 3)),  # l does not divide q: blocks of rank 1 and 2 mixed
}


def random_factors(shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shapes[0]).astype(dtype), rng.standard_normal(shapes[1]).astype(dtype)


# 1. the shuffle ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 4, 8])
def test_p_is_reshape_transpose_and_an_involution(m):
    n = m * m
    x = np.arange(n, dtype=float)
    p = perm_matrix(reshape_transpose_perm(m, m))
    np.testing.assert_array_equal(p @ x, x.reshape(m, m).T.reshape(-1))
    np.testing.assert_array_equal(p @ p, np.eye(n))
    np.testing.assert_array_equal(p, p.T)
    # (Px)[a*m + b] = x[b*m + a]
    assert all((p @ x)[a * m + b] == x[b * m + a] for a in range(m) for b in range(m))


def test_rectangular_shuffle_is_not_an_involution_but_its_transpose_inverts_it():
    p = perm_matrix(reshape_transpose_perm(2, 3))
    assert not np.array_equal(p @ p, np.eye(6))
    np.testing.assert_array_equal(p @ p.T, np.eye(6))


# 2. every multiply path agrees ------------------------------------------------------------------------------------


def test_square_matches_the_spec_formulas():
    m, n = 4, 16
    rng = np.random.default_rng(1)
    left, right = rng.standard_normal((m, m, m)), rng.standard_normal((m, m, m))
    p = perm_matrix(reshape_transpose_perm(m, m))
    spec_dense = p @ block_diag(left) @ p @ block_diag(right)
    four_d = np.einsum("jik,kjl->ijkl", left, right).reshape(n, n)
    np.testing.assert_allclose(four_d, spec_dense, atol=1e-12)
    np.testing.assert_allclose(monarch_to_dense(right, left), spec_dense, atol=1e-12)
    # 4-D identity: M4[i, j, k, l] = L[j, i, k] * R[k, j, l]
    m4 = spec_dense.reshape(m, m, m, m)
    assert m4[1, 2, 3, 0] == pytest.approx(left[2, 1, 3] * right[3, 2, 0])


def test_block_size_family_matches_paper_definition():
    n, b = 24, 4
    w1, w2 = random_factors(block_size_layout(n, b), seed=2)
    paper = (perm_matrix(reshape_transpose_perm(b, n // b)) @ block_diag(w2)
             @ perm_matrix(reshape_transpose_perm(n // b, b)) @ block_diag(w1))
    np.testing.assert_allclose(monarch_to_dense(w1, w2), paper, atol=1e-12)


def test_rectangular_layout_matches_spec_entry_formula():
    k, j, i, l = 3, 4, 5, 6
    w1, w2 = random_factors(rectangular_layout(k, j, i, l), seed=3)
    dense = monarch_to_dense(w1, w2)
    expected = np.einsum("jlk,kji->ljki", w2, w1).reshape(l * j, k * i)  # M[(l,j),(k,i)] = w2[j,l,k] w1[k,j,i]
    np.testing.assert_allclose(dense, expected, atol=1e-12)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_all_multiply_paths_agree_float64(name):
    w1, w2 = random_factors(LAYOUTS[name], seed=4)
    dense = dense_reference(w1, w2)
    np.testing.assert_allclose(monarch_to_dense(w1, w2), dense, atol=1e-10)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, dense.shape[1]))
    expected = x @ dense.T
    np.testing.assert_allclose(monarch_matmul(x, w1, w2), expected, atol=1e-10)
    np.testing.assert_allclose(monarch_matmul_einsum(x, w1, w2), expected, atol=1e-10)
    tx, t1, t2 = map(torch.from_numpy, (x, w1, w2))
    np.testing.assert_allclose(monarch_matmul_fly(tx, t1, t2).numpy(), expected, atol=1e-10)
    y = rng.standard_normal((7, dense.shape[0]))
    np.testing.assert_allclose(monarch_matmul_transposed(y, w1, w2), y @ dense, atol=1e-10)


def test_float32_batch_dimensions_and_layouts():
    w1, w2 = random_factors(square_layout(64), seed=6, dtype=np.float32)
    dense = dense_reference(w1.astype(np.float64), w2.astype(np.float64))
    x = torch.randn(2, 3, 5, 64, generator=torch.Generator().manual_seed(0))
    y = monarch_matmul(x, torch.from_numpy(w1), torch.from_numpy(w2))
    assert y.shape == (2, 3, 5, 64) and y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), x.double().numpy() @ dense.T, rtol=1e-4, atol=1e-4)
    # a 1-D vector, a transposed-view input (what the kernel itself returns) and a strided slice
    v = x[0, 0, 0]
    np.testing.assert_allclose(monarch_matmul(v, torch.from_numpy(w1), torch.from_numpy(w2)).numpy(),
                               dense @ v.double().numpy(), rtol=1e-4, atol=1e-4)
    x2 = x.reshape(-1, 64)
    first = monarch_matmul(x2, torch.from_numpy(w1), torch.from_numpy(w2))
    assert not first.is_contiguous()  # the copy-free view
    second = monarch_matmul(first, torch.from_numpy(w1), torch.from_numpy(w2), contiguous=True)
    assert second.is_contiguous()
    np.testing.assert_allclose(second.numpy(), x2.double().numpy() @ (dense @ dense).T, rtol=1e-3, atol=1e-3)
    strided = x2[:, ::1][::2]
    np.testing.assert_allclose(monarch_matmul(strided, torch.from_numpy(w1), torch.from_numpy(w2)).numpy(),
                               strided.double().numpy() @ dense.T, rtol=1e-4, atol=1e-4)


def test_numpy_views_with_negative_or_odd_strides():
    w1, w2 = random_factors(square_layout(16), seed=19)
    dense = monarch_to_dense(w1, w2)
    x = np.random.default_rng(2).standard_normal((6, 32))
    for view in (x[::-1, :16], x[:, 16:], x[:, ::2], x[:, :16].T.T):
        np.testing.assert_allclose(monarch_matmul(view, w1, w2), view @ dense.T, atol=1e-10)


def test_multiply_rejects_bad_shapes_and_dtypes():
    w1, w2 = random_factors(square_layout(16))
    with pytest.raises(ValueError, match="features"):
        monarch_matmul(np.zeros((2, 15)), w1, w2)
    with pytest.raises(TypeError, match="dtype"):
        monarch_matmul(np.zeros((2, 16), dtype=np.float32), w1, w2)
    with pytest.raises(ValueError, match="consume"):
        monarch_matmul(np.zeros((2, 16)), w1, w2[:, :, :3])
    assert monarch_matmul(np.zeros((0, 16)), w1, w2).shape == (0, 16)


def test_autograd_matches_dense_gradients():
    shapes = linear_layout(12, 20, 4)
    w1, w2 = (torch.from_numpy(a).requires_grad_() for a in random_factors(shapes, seed=7))
    x = torch.randn(5, w1.shape[0] * w1.shape[2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: monarch_matmul(a, b, c), (x, w1, w2))
    # the same gradients as autograd through the einsum reference
    g = torch.randn(5, w2.shape[0] * w2.shape[1], dtype=torch.float64)
    grads = torch.autograd.grad((monarch_matmul(x, w1, w2) * g).sum(), (x, w1, w2))
    ref = torch.autograd.grad((monarch_matmul_einsum(x, w1, w2) * g).sum(), (x, w1, w2))
    for a, b in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, b)


# transpose and inverse -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["square16", "b4_n24", "rect"])
def test_transpose(name):
    mon = Monarch(*random_factors(LAYOUTS[name], seed=8))
    dense = mon.to_dense()
    np.testing.assert_allclose(mon.T.to_dense(), dense.T, atol=1e-12)
    assert mon.T.shape == dense.T.shape and mon.T.T.shape == dense.shape
    x = np.random.default_rng(0).standard_normal((4, dense.shape[0]))
    np.testing.assert_allclose(mon.T.matmul(x), x @ dense, atol=1e-10)


@pytest.mark.parametrize("name", ["square16", "square64", "b4_n24"])
def test_inverse(name):
    mon = Monarch(*random_factors(LAYOUTS[name], seed=9))
    dense = mon.to_dense()
    inv = mon.inverse()
    np.testing.assert_allclose(inv.to_dense() @ dense, np.eye(dense.shape[0]), atol=1e-8)
    x = np.random.default_rng(1).standard_normal((3, dense.shape[0]))
    np.testing.assert_allclose(inv.matmul(mon.matmul(x)), x, atol=1e-8)
    # inverse of the transpose, and the inverse of the inverse
    np.testing.assert_allclose(mon.T.inverse().to_dense(), np.linalg.inv(dense.T), atol=1e-8)
    np.testing.assert_allclose(inv.inverse().to_dense(), dense, atol=1e-8)


def test_inverse_refuses_singular_blocks_and_non_square_blocks():
    w1, w2 = random_factors(square_layout(16), seed=10)
    w1[2, :, 0] = 0.0
    with pytest.raises(ValueError, match="singular|ill-conditioned"):
        Monarch(w1, w2).inverse()
    with pytest.raises(ValueError, match="square blocks"):
        Monarch(*random_factors(LAYOUTS["rect"])).inverse()


# 3-5. projection ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_projecting_a_monarch_matrix_is_exact(name):
    w1, w2 = random_factors(LAYOUTS[name], seed=11)
    dense = monarch_to_dense(w1, w2)
    proj = project(dense, *LAYOUTS[name])
    assert proj.error_fro < 1e-10 * proj.norm_fro
    np.testing.assert_allclose(monarch_to_dense(proj.w1, proj.w2), dense, atol=1e-10)


@pytest.mark.parametrize("n", [256, 1024])
def test_projection_exact_at_larger_sizes(n):
    w1, w2 = random_factors(square_layout(n), seed=12)
    dense = monarch_to_dense(w1, w2)
    proj = project(dense, *square_layout(n))
    assert proj.error_fro**2 < 1e-20 * proj.norm_fro**2


@pytest.mark.parametrize("name", ["square16", "square64_rank2", "b8_n64", "rect", "uneven_block_ranks"])
def test_projection_error_identities_on_random_matrices(name):
    shapes = LAYOUTS[name]
    k, q, p = shapes[0]
    l, s, r = shapes[1]
    a = np.random.default_rng(13).standard_normal((l * s, k * p))
    proj = project(a, *shapes)
    approx = monarch_to_dense(proj.w1, proj.w2)
    err2 = np.linalg.norm(a - approx) ** 2
    assert proj.error_fro**2 == pytest.approx(err2, rel=1e-10)
    assert proj.error_fro > 0.1 * proj.norm_fro  # a generic matrix is not Monarch
    # Pythagoras: ||A||^2 = ||M*||^2 + ||A - M*||^2
    assert np.linalg.norm(a) ** 2 == pytest.approx(np.linalg.norm(approx) ** 2 + err2, rel=1e-10)
    # idempotence
    again = project(approx, *shapes)
    assert again.error_fro < 1e-10 * again.norm_fro
    np.testing.assert_allclose(monarch_to_dense(again.w1, again.w2), approx, atol=1e-10)


def test_square_projection_error_is_the_per_block_tail_of_the_spec_blocks():
    m, n = 8, 64
    a = np.random.default_rng(14).standard_normal((n, n))
    blocks = a.reshape(m, m, m, m).transpose(1, 2, 0, 3)  # B_jk = A4[:, j, k, :]
    sv = np.linalg.svd(blocks, compute_uv=False)
    proj = project(a, *square_layout(n))
    assert proj.error_fro**2 == pytest.approx(float((sv[:, :, 1:] ** 2).sum()), rel=1e-12)
    assert proj.error_fro**2 == pytest.approx(np.linalg.norm(a) ** 2 - float((sv[:, :, 0] ** 2).sum()), rel=1e-10)


def test_perturbing_the_optimal_factors_never_lowers_the_error():
    a = np.random.default_rng(15).standard_normal((64, 64))
    proj = project(a, *square_layout(64))
    rng = np.random.default_rng(16)
    for scale in (1e-3, 1e-1):
        for _ in range(5):
            w1 = proj.w1 + scale * rng.standard_normal(proj.w1.shape)
            w2 = proj.w2 + scale * rng.standard_normal(proj.w2.shape)
            assert np.linalg.norm(a - monarch_to_dense(w1, w2)) >= proj.error_fro - 1e-12


def test_gradient_descent_on_the_factors_does_not_beat_the_projection():
    a = torch.from_numpy(np.random.default_rng(17).standard_normal((16, 16)))
    proj = project(a.numpy(), *square_layout(16))
    w1 = torch.randn(4, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w2 = torch.randn(4, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    opt = torch.optim.Adam([w1, w2], lr=0.05)
    eye = torch.eye(16, dtype=torch.float64)
    for _ in range(600):
        opt.zero_grad()
        loss = ((monarch_matmul(eye, w1, w2).T - a) ** 2).sum()
        loss.backward()
        opt.step()
    assert loss.item() >= proj.error_fro**2 - 1e-9
    assert loss.item() <= 1.05 * proj.error_fro**2  # and gets close to it


def test_permuted_dft_is_monarch():
    for n in (16, 64, 256):
        m = int(np.sqrt(n))
        dft = np.fft.fft(np.eye(n)) / np.sqrt(n)
        perm = np.arange(n).reshape(m, m).T.reshape(-1)  # (i j) -> (j i)
        target = dft[:, perm]
        proj = project(target, *square_layout(n))
        assert proj.error_fro < 1e-10
        np.testing.assert_allclose(monarch_to_dense(proj.w1, proj.w2), target, atol=1e-10)
        # the unpermuted DFT is not Monarch
        assert project(dft, *square_layout(n)).error_fro > 0.1


def test_monarch_from_dense_and_shape_checks():
    a = np.random.default_rng(18).standard_normal((16, 16))
    mon, proj = Monarch.from_dense(a)
    assert mon.shape == (16, 16) and mon.nparams == 2 * 16**1.5
    np.testing.assert_allclose(np.linalg.norm(a - mon.to_dense()), proj.error_fro, rtol=1e-10)
    with pytest.raises(ValueError, match="perfect square"):
        Monarch.from_dense(np.zeros((15, 15)))
    with pytest.raises(ValueError, match="layout"):
        Monarch.from_dense(np.zeros((15, 16)))
    with pytest.raises(ValueError, match="needs"):
        project(np.zeros((15, 16)), *square_layout(16))


# 6. parameter counts -------------------------------------------------------------------------------------------------


def test_parameter_counts():
    for n in (16, 1024, 4096, 16384):
        assert param_count(*square_layout(n)) == round(2 * n**1.5)
    assert param_count(*square_layout(1024)) == 65_536
    assert param_count(*square_layout(4096)) == 524_288
    for n, b in ((64, 2), (64, 8), (24, 4)):
        assert param_count(*block_size_layout(n, b)) == n * n // b + n * b
    for n, nb in ((64, 4), (48, 2)):
        assert param_count(*linear_layout(n, n, nb)) == 2 * n * n // nb
    k, j, i, l = 3, 4, 5, 6
    assert param_count(*rectangular_layout(k, j, i, l)) == k * j * (i + l)
    assert square_factorisation(24) == (6, 4) and square_factorisation(49) == (7, 7)


def test_workspace_reuse_never_clobbers_returned_results_or_other_threads():
    import threading

    from backend.services.matrix.monarch import clear_workspace

    n, bsz = 1024, 1024  # intermediates of 1M entries: large enough to live in the reused workspace
    gen = torch.Generator().manual_seed(0)
    w1, w2 = (torch.randn(s, generator=gen) / 32 for s in square_layout(n))
    dense = torch.from_numpy(monarch_to_dense(w1.double().numpy(), w2.double().numpy()))
    xs = [torch.randn(bsz, n, generator=gen) for _ in range(3)]
    ys = [monarch_matmul(xs[0], w1, w2), monarch_matmul(xs[1], w1, w2, contiguous=True),
          monarch_matmul_transposed(xs[2], w1, w2)]
    expected = [xs[0].double() @ dense.T, xs[1].double() @ dense.T, xs[2].double() @ dense]
    for y, e in zip(ys, expected, strict=True):
        torch.testing.assert_close(y.double(), e, rtol=1e-4, atol=1e-4)
    results: dict[int, torch.Tensor] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = monarch_matmul(xs[i], w1, w2, contiguous=True)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        torch.testing.assert_close(results[i].double(), expected[i], rtol=1e-4, atol=1e-4)
    clear_workspace()


def test_equal_budget_accuracy_matches_the_spec_reference_checks():
    # spec Sec. 2: Monarch vs rank-m SVD at equal parameters; nearly equal on dense Gaussian, Monarch ahead on sparse
    n, m = 64, 8
    rng = np.random.default_rng(0)
    for density, (mon_ref, svd_ref) in ((1.0, (0.780, 0.785)), (0.05, (0.544, 0.704))):
        a = rng.standard_normal((n, n)) * (rng.random((n, n)) < density)
        mon = project(a, *square_layout(n)).relative_error
        s = np.linalg.svd(a, compute_uv=False)
        svd = np.sqrt(np.sum(s[m:] ** 2)) / np.linalg.norm(a)
        assert abs(mon - mon_ref) < 0.03 and abs(svd - svd_ref) < 0.05
    assert mon < svd - 0.1  # sparse: Monarch clearly better


# the chunked kernels: every chunk boundary, layout and output form against the float64 dense oracle -------------


@pytest.fixture
def small_chunks(monkeypatch):
    """Force chunks of 16 rows (the minimum), so a batch of 37 runs as 16 + 16 + 5 rows."""
    from backend.services.matrix import monarch as mod

    monkeypatch.setattr(mod, "CHUNK_BYTES", 1)
    return 37


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_chunked_forward_transposed_and_out_paths_float64(name, small_chunks):
    w1, w2 = (torch.from_numpy(a) for a in random_factors(LAYOUTS[name], seed=21))
    dense = torch.from_numpy(dense_reference(w1.numpy(), w2.numpy()))
    n_out, n_in = dense.shape
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(small_chunks, n_in, generator=gen, dtype=torch.float64)
    y = torch.randn(small_chunks, n_out, generator=gen, dtype=torch.float64)
    expected, expected_t = x @ dense.T, y @ dense
    for inp in (x, x.t().contiguous().t()):  # row-major, and batch-innermost (what the kernel returns)
        for contiguous in (False, True):
            got = monarch_matmul(inp, w1, w2, contiguous=contiguous)
            assert got.is_contiguous() == (contiguous or n_out == 1)
            torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
    for inp in (y, y.t().contiguous().t()):
        for contiguous in (False, True):
            torch.testing.assert_close(monarch_matmul_transposed(inp, w1, w2, contiguous=contiguous), expected_t,
                                       atol=1e-10, rtol=0)
    for out in (torch.full((small_chunks, n_out), np.nan, dtype=torch.float64),
                torch.full((n_out, small_chunks), np.nan, dtype=torch.float64).t()):
        assert monarch_matmul(x, w1, w2, out=out) is out
        torch.testing.assert_close(out, expected, atol=1e-10, rtol=0)
    for out in (torch.full((small_chunks, n_in), np.nan, dtype=torch.float64),
                torch.full((n_in, small_chunks), np.nan, dtype=torch.float64).t()):
        assert monarch_matmul_transposed(y, w1, w2, out=out) is out
        torch.testing.assert_close(out, expected_t, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", ["square64", "rect", "linear_in_lt_out", "uneven_block_ranks"])
def test_chunked_backward_matches_dense_gradients_float64(name, small_chunks):
    w1n, w2n = random_factors(LAYOUTS[name], seed=22)
    dense = torch.from_numpy(dense_reference(w1n, w2n))
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(small_chunks, dense.shape[1], generator=gen, dtype=torch.float64)
    g = torch.randn(small_chunks, dense.shape[0], generator=gen, dtype=torch.float64)
    cases = [(upstream, x_layout, contiguous)
             for upstream in (g, g.t().contiguous().t())  # a row-major and a batch-innermost incoming gradient
             for x_layout in ("rows", "batch-innermost") for contiguous in (False, True)]
    for upstream, x_layout, contiguous in cases:
        xs, w1, w2 = (t.clone().requires_grad_() for t in (x, torch.from_numpy(w1n), torch.from_numpy(w2n)))
        x_in = xs if x_layout == "rows" else xs.t().contiguous().t()
        y = monarch_matmul(x_in, w1, w2, contiguous=contiguous)
        assert y.is_contiguous() == (contiguous or y.shape[1] == 1)
        y.backward(upstream)
        # oracle: autograd through the float64 einsum reference (independent of the chunked kernels)
        xr, w1r, w2r = (t.clone().requires_grad_() for t in (x, torch.from_numpy(w1n), torch.from_numpy(w2n)))
        monarch_matmul_einsum(xr, w1r, w2r).backward(upstream)
        torch.testing.assert_close(xs.grad, upstream @ dense, atol=1e-10, rtol=0)
        for got, ref in ((xs.grad, xr.grad), (w1.grad, w1r.grad), (w2.grad, w2r.grad)):
            torch.testing.assert_close(got, ref, atol=1e-10, rtol=0)
    # only some inputs need a gradient
    w1 = torch.from_numpy(w1n).requires_grad_()
    monarch_matmul(x, w1, torch.from_numpy(w2n)).backward(g)
    xr, w1r = x.clone().requires_grad_(), torch.from_numpy(w1n).requires_grad_()
    monarch_matmul_einsum(xr, w1r, torch.from_numpy(w2n)).backward(g)
    torch.testing.assert_close(w1.grad, w1r.grad, atol=1e-10, rtol=0)


def test_out_argument_is_checked():
    w1, w2 = (torch.from_numpy(a) for a in random_factors(square_layout(16), seed=23))
    x = torch.randn(4, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="shape"):
        monarch_matmul(x, w1, w2, out=torch.empty(4, 15, dtype=torch.float64))
    with pytest.raises(ValueError, match="float64"):
        monarch_matmul(x, w1, w2, out=torch.empty(4, 16))
    with pytest.raises(ValueError, match="contiguous"):
        monarch_matmul(x, w1, w2, out=torch.empty(4, 32, dtype=torch.float64)[:, ::2])
    with pytest.raises(ValueError, match="2-D input"):
        monarch_matmul(x.view(2, 2, 16), w1, w2, out=torch.empty(4, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="autograd"):
        monarch_matmul(x.requires_grad_(), w1, w2, out=torch.empty(4, 16, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch tensor"):
        monarch_matmul_transposed(x.detach(), w1, w2, out=np.empty((4, 16)))


def test_large_results_live_in_huge_page_backed_numpy_buffers():
    # results >= 4 MiB come from numpy (MADV_HUGEPAGE); they must still be ordinary, correct, independent tensors
    n, bsz = 1024, 1024
    gen = torch.Generator().manual_seed(1)
    w1, w2 = (torch.randn(s, generator=gen) / 32 for s in square_layout(n))
    dense = torch.from_numpy(monarch_to_dense(w1.double().numpy(), w2.double().numpy()))
    x = torch.randn(bsz, n, generator=gen)
    first = monarch_matmul(x, w1, w2)
    second = monarch_matmul(x, w1, w2, contiguous=True)
    assert not first.untyped_storage().resizable() and not second.untyped_storage().resizable()
    assert first.untyped_storage().data_ptr() != second.untyped_storage().data_ptr()
    for y in (first, second):
        torch.testing.assert_close(y.double(), x.double() @ dense.T, rtol=1e-4, atol=1e-4)
    small = monarch_matmul(x[:8], w1, w2)
    assert small.untyped_storage().resizable()  # small results: plain torch allocations


# recycled result buffers: reused only once nothing refers to them -------------------------------------------


@pytest.fixture
def pool_case():
    """A multiply with 4 MiB float32 results (large enough for the pool), run between two empty pools."""
    from backend.services.matrix import monarch as mod

    n, bsz = 1024, 1024
    gen = torch.Generator().manual_seed(5)
    w1, w2 = (torch.randn(s, generator=gen) / 32 for s in square_layout(n))
    dense = torch.from_numpy(monarch_to_dense(w1.double().numpy(), w2.double().numpy()))
    xs = [torch.randn(bsz, n, generator=gen) for _ in range(2)]
    mod.clear_workspace()
    yield mod, w1, w2, dense, xs
    mod.clear_workspace()


RESULT_BYTES = 1024 * 1024 * 4


def test_a_dropped_result_buffer_backs_the_next_result_of_its_size(pool_case):
    mod, w1, w2, dense, xs = pool_case
    y = monarch_matmul(xs[0], w1, w2)
    address = y.data_ptr()
    del y
    assert mod._RESULT_POOL.held_bytes == RESULT_BYTES
    y2 = monarch_matmul(xs[1], w1, w2)
    assert y2.data_ptr() == address and mod._RESULT_POOL.held_bytes == 0
    torch.testing.assert_close(y2.double(), xs[1].double() @ dense.T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("keep", ["slice", "numpy", "storage", "numpy input"])
def test_a_result_still_reachable_through_any_view_is_never_reused(keep, pool_case):
    mod, w1, w2, _, xs = pool_case
    address = None
    if keep == "numpy input":  # numpy in, numpy out: the returned array holds the tensor
        kept = monarch_matmul(xs[0].numpy(), w1.numpy(), w2.numpy())
        snapshot = kept.copy()
    else:
        y = monarch_matmul(xs[0], w1, w2)
        kept = {"slice": lambda: y[3:7, 100:200], "numpy": y.numpy, "storage": y.untyped_storage}[keep]()
        snapshot = y[3:7, 100:200].clone() if keep == "slice" else y.clone()
        address = y.data_ptr()
        del y
    assert mod._RESULT_POOL.held_bytes == 0
    for _ in range(3):  # later results must live elsewhere and leave the kept memory alone
        y2 = monarch_matmul(xs[1], w1, w2)
        assert y2.data_ptr() != address
        del y2
    if keep == "storage":  # the whole buffer, read through the storage alone: (n_out, B), batch innermost
        whole = torch.empty(0).set_(kept, 0, (RESULT_BYTES // 4,))
        torch.testing.assert_close(whole, snapshot.t().reshape(-1), rtol=0, atol=0)
        del whole  # it shares the storage too
    else:
        torch.testing.assert_close(torch.as_tensor(kept), torch.as_tensor(snapshot), rtol=0, atol=0)
    held = mod._RESULT_POOL.held_bytes  # the later results' one buffer
    del kept
    assert mod._RESULT_POOL.held_bytes == held + RESULT_BYTES  # now the first buffer is free too


def test_the_pool_keeps_at_most_its_limit(monkeypatch, pool_case):
    mod, w1, w2, _, xs = pool_case
    monkeypatch.setattr(mod, "RESULT_POOL_BYTES", 0)
    y = monarch_matmul(xs[0], w1, w2)
    del y
    assert mod._RESULT_POOL.held_bytes == 0  # recycling off: the buffer went back to the allocator
    monkeypatch.setattr(mod, "RESULT_POOL_BYTES", RESULT_BYTES + (2 << 20))  # room for one buffer, not two
    ys = [monarch_matmul(x, w1, w2) for x in xs]
    del ys
    assert mod._RESULT_POOL.held_bytes == RESULT_BYTES
