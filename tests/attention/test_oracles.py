"""The spec's oracle relations (section 5) for RoPE, ReRoPE, Leaky ReRoPE, window attention and log n."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from backend.services.attention import functional as A
from backend.services.attention.positions import logn_scale, rel_pos, rope
from tests.attention.conftest import qkv

TOL = 1e-10  # float64


def dense_rope(q, k, v, logn=None):
    """Independent plain RoPE path: rotate, score, mask, softmax (no SDPA)."""
    n = q.shape[2]
    pos = torch.arange(n, dtype=torch.float64)
    s = rope(q, pos) @ rope(k, pos).transpose(-1, -2) / math.sqrt(q.shape[-1])
    if logn is not None:
        s = s * logn[:, None]
    return A.attend(s, v, A.causal_mask(n, n))


def test_rope_oracle_equals_plain_rope_and_rerope_with_wide_window():
    q, k, v = qkv(n=40)
    naive = A.naive_relpos_attention(q, k, v, rel_pos(40, 40, "rope"))
    assert (naive - dense_rope(q, k, v)).abs().max() < TOL
    assert (naive - A.rope_attention(q, k, v)).abs().max() < TOL
    for w in (40, 41, 1000):
        # w >= n: no pair is past the window, so it is the plain RoPE path bit for bit
        assert torch.equal(A.rerope_attention(q, k, v, w), A.rope_attention(q, k, v))
        assert torch.equal(A.rerope_attention(q, k, v, w, leaky_k=4.0), A.rope_attention(q, k, v))


def test_rope_scores_depend_only_on_relative_position():
    q, k, _ = qkv(n=1, d=16)
    for i, j in [(5, 2), (105, 102), (3, 0)]:
        s = (rope(q, float(i)) * rope(k, float(j))).sum()
        s_ref = (rope(q, 3.0) * rope(k, 0.0)).sum()
        assert abs(s - s_ref) < 1e-12
    # rotate-half layout: dimension m pairs with m + d/2, and the rotation keeps norms
    x = torch.zeros(16, dtype=torch.float64)
    x[1] = 1.0
    y = rope(x, 1.0)
    assert set(torch.nonzero(y).flatten().tolist()) == {1, 9}
    assert abs(y.norm() - 1) < 1e-15


@pytest.mark.parametrize("n,w,offset,chunk", [(24, 1, 0, 256), (24, 5, 0, 7), (33, 8, 0, 1), (33, 16, 0, 256),
                                              (20, 6, 11, 4), (17, 3, 40, 256)])
def test_rerope_efficient_equals_naive(n, w, offset, chunk):
    q, k, v = qkv(n=n + offset, seed=n + w)
    q = q[:, :, offset:]  # the last n queries against all n + offset keys
    P = rel_pos(n, n + offset, "rerope", w, offset=offset)
    mask = A.causal_mask(n, n + offset, offset)
    naive = A.naive_relpos_attention(q, k, v, P, mask)
    fast = A.rerope_attention(q, k, v, w, offset=offset, chunk_size=chunk)
    assert (fast - naive).abs().max() < TOL


@pytest.mark.parametrize("n,w,kk,offset,chunk", [(24, 4, 2.0, 0, 256), (24, 8, 16.0, 0, 5), (30, 1, 3.5, 0, 256),
                                                 (20, 6, 8.0, 9, 3)])
def test_leaky_efficient_equals_naive(n, w, kk, offset, chunk):
    q, k, v = qkv(n=n + offset, seed=3 * n + w)
    q = q[:, :, offset:]
    P = rel_pos(n, n + offset, "leaky", w, kk, offset=offset)
    naive = A.naive_relpos_attention(q, k, v, P, A.causal_mask(n, n + offset, offset))
    fast = A.rerope_attention(q, k, v, w, leaky_k=kk, offset=offset, chunk_size=chunk)
    assert (fast - naive).abs().max() < TOL


def test_rerope_really_differs_from_rope_past_the_window():
    q, k, v = qkv(n=30)
    assert (A.rerope_attention(q, k, v, 4) - A.rope_attention(q, k, v)).abs().max() > 1e-3


def test_leaky_k1_is_rope_and_large_k_approaches_rerope():
    q, k, v = qkv(n=32)
    rope_out = A.rope_attention(q, k, v)
    assert (A.rerope_attention(q, k, v, 5, leaky_k=1.0) - rope_out).abs().max() < TOL
    rerope_out = A.rerope_attention(q, k, v, 5)
    err_1e3 = (A.rerope_attention(q, k, v, 5, leaky_k=1e3) - rerope_out).abs().max()
    err_1e9 = (A.rerope_attention(q, k, v, 5, leaky_k=1e9) - rerope_out).abs().max()
    assert err_1e9 < 1e-6 and err_1e9 < err_1e3  # error O(n / k)


def test_pi_is_rope_on_scaled_positions():
    q, k, v = qkv(n=20)
    naive = A.naive_relpos_attention(q, k, v, rel_pos(20, 20, "pi", k=4.0))
    assert (A.rope_attention(q, k, v, pos_scale=0.25) - naive).abs().max() < TOL


@pytest.mark.parametrize("leaky_k,rotate_all", [(None, False), (None, True), (4.0, False)])
def test_decode_step_equals_prefill_row(leaky_k, rotate_all):
    n, w = 26, 7
    q, k, v = qkv(n=n, seed=5)
    prefill = A.rerope_attention(q, k, v, w, leaky_k)
    for t in range(n):
        step = A.rerope_decode_step(q[:, :, t : t + 1], k[:, :, : t + 1], v[:, :, : t + 1], t, w, leaky_k,
                                    rotate_all=rotate_all)
        assert (step[:, :, 0] - prefill[:, :, t]).abs().max() < TOL


def test_decode_step_with_logn_equals_prefill_row():
    n, w, N = 40, 6, 16
    q, k, v = qkv(n=n, seed=6)
    logn = logn_scale(n, 0, N, "dagger")
    prefill = A.rerope_attention(q, k, v, w, logn=logn)
    for t in (0, 15, 16, 39):
        step = A.rerope_decode_step(q[:, :, t : t + 1], k[:, :, : t + 1], v[:, :, : t + 1], t, w, logn=float(logn[t]))
        assert (step[:, :, 0] - prefill[:, :, t]).abs().max() < TOL


@pytest.mark.parametrize("w_tilde,w", [(4, 4), (4, 9), (1, 3)])
def test_window_layers_need_no_rerope_patch(w_tilde, w):
    """With w_tilde <= w every visible pair is inside the ReRoPE window: ReRoPE == RoPE there."""
    n = 30
    q, k, v = qkv(n=n, seed=w)
    mask = A.causal_mask(n, n, window=w_tilde)
    as_rerope = A.naive_relpos_attention(q, k, v, rel_pos(n, n, "rerope", w), mask)
    as_rope = A.naive_relpos_attention(q, k, v, rel_pos(n, n, "rope"), mask)
    pos = torch.arange(n, dtype=torch.float64)
    banded = A.window_attention(rope(q, pos), rope(k, pos), v, w_tilde)
    assert (as_rerope - as_rope).abs().max() < TOL
    assert (banded - as_rope).abs().max() < TOL


@pytest.mark.parametrize("n,w", [(1, 1), (5, 8), (16, 4), (37, 5), (64, 16)])
def test_window_attention_equals_masked_dense(n, w):
    q, k, v = qkv(n=n, seed=n)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    dense = A.attend(s, v, A.causal_mask(n, n, window=w))
    assert (A.window_attention(q, k, v, w) - dense).abs().max() < TOL


@pytest.mark.parametrize("leaky_k", [None, 4.0, 1.0])
def test_shift_invariance(leaky_k):
    q, k, v = qkv(n=28, seed=9)
    ref = A.rerope_attention(q, k, v, 6, leaky_k)
    for shift in (1.0, 37.0, 1000.5):
        shifted = A.rerope_attention(q, k, v, 6, leaky_k, shift=shift)
        assert (shifted - ref).abs().max() < 1e-9


@pytest.mark.parametrize("fn", [lambda q, k, v: A.rerope_attention(q, k, v, 5),
                                lambda q, k, v: A.rerope_attention(q, k, v, 5, leaky_k=3.0),
                                lambda q, k, v: A.rope_attention(q, k, v),
                                lambda q, k, v: A.window_attention(q, k, v, 4)])
def test_causality(fn):
    q, k, v = qkv(n=20, seed=11)
    base = fn(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 12:] += 5.0
    v2[:, :, 12:] -= 3.0
    out = fn(q, k2, v2)
    assert (out[:, :, :12] - base[:, :, :12]).abs().max() < TOL
    assert (out[:, :, 12:] - base[:, :, 12:]).abs().max() > 1e-3


def test_nope_full_layer_is_permutation_invariant_over_earlier_tokens():
    n, i = 20, 15
    q, k, v = qkv(n=n, seed=12)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    perm = torch.cat([torch.randperm(i, generator=torch.Generator().manual_seed(0)), torch.arange(i, n)])
    out_p = F.scaled_dot_product_attention(q, k[:, :, perm], v[:, :, perm], is_causal=True)
    assert (out_p[:, :, i] - out[:, :, i]).abs().max() < TOL
    # with RoPE the same permutation does change the output: the test can fail
    rope_out = A.rope_attention(q, k, v)
    rope_p = A.rope_attention(q, k[:, :, perm], v[:, :, perm])
    assert (rope_p[:, :, i] - rope_out[:, :, i]).abs().max() > 1e-3


def test_logn_factors():
    N = 128
    dagger = logn_scale(4 * N, 0, N, "dagger")
    assert torch.equal(dagger[:N], torch.ones(N, dtype=torch.float64))
    assert dagger[N] > 1 and abs(dagger[-1] - math.log(4 * N) / math.log(N)) < 1e-12
    train = logn_scale(N, 0, N, "train")
    assert abs(train[N - 1] - 1) < 1e-12  # n = N visible keys
    assert torch.equal(train[:16], torch.full((16,), math.log(16) / math.log(N), dtype=torch.float64))
    assert torch.equal(logn_scale(5, 0, N, None), torch.ones(5, dtype=torch.float64))
    # offset: row r sits at position offset + r
    assert torch.equal(logn_scale(4, 200, N, "dagger"), dagger[200:204])


def test_logn_dagger_changes_nothing_inside_training_length():
    N = 32
    q, k, v = qkv(n=N, seed=13)
    with_dagger = A.rerope_attention(q, k, v, 8, logn=logn_scale(N, 0, N, "dagger"))
    assert torch.equal(with_dagger, A.rerope_attention(q, k, v, 8))


def test_logn_in_efficient_path_equals_naive():
    n, N, w = 40, 16, 6
    q, k, v = qkv(n=n, seed=14)
    for mode in ("train", "dagger"):
        ln = logn_scale(n, 0, N, mode)
        naive = A.naive_relpos_attention(q, k, v, rel_pos(n, n, "rerope", w), logn=ln)
        assert (A.rerope_attention(q, k, v, w, logn=ln) - naive).abs().max() < TOL
        assert (A.rope_attention(q, k, v, logn=ln) - dense_rope(q, k, v, ln)).abs().max() < TOL


@pytest.mark.parametrize("n", [1, 10, 100, 1000])
def test_relative_position_bounds(n):
    w, kk = 8, 4.0
    rerope_P = rel_pos(n, n, "rerope", w)
    leaky_P = rel_pos(n, n, "leaky", w, kk)
    lower = torch.tril(torch.ones(n, n, dtype=torch.bool))
    assert rerope_P[lower].max() == min(n - 1, w)
    expected = n - 1 if n - 1 < w else w + (n - 1 - w) / kk
    assert abs(leaky_P[lower].max() - expected) < 1e-12
    assert torch.equal(rel_pos(n, n, "rope")[lower].max(), torch.tensor(float(n - 1), dtype=torch.float64))


def test_float32_matches_float64_reference():
    q, k, v = qkv(n=64, seed=15)
    ref = A.rerope_attention(q, k, v, 16, leaky_k=8.0)
    got = A.rerope_attention(q.float(), k.float(), v.float(), 16, leaky_k=8.0)
    assert (got.double() - ref).abs().max() < 1e-5


def test_bad_arguments():
    q, k, v = qkv(n=8)
    with pytest.raises(ValueError):
        A.window_attention(q, k, v, 0)
    with pytest.raises(ValueError):
        A.rerope_attention(q, k, v, 2, leaky_k=0.0)
    with pytest.raises(ValueError):
        rel_pos(4, 4, "rerope")
    with pytest.raises(ValueError):
        rope(torch.zeros(3, 5), 1.0)
