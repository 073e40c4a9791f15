"""The two ReRoPE prefill paths, the log-sum-exp helpers, window blocking and measured memory growth."""

from __future__ import annotations

import math

import pytest
import torch

from backend.services.attention import functional as A
from backend.services.attention.memtrace import PeakMemory
from backend.services.attention.positions import apply_rope, logn_scale, position_tables, rel_pos, rope
from tests.attention.conftest import qkv


@pytest.mark.parametrize("fused", [True, False], ids=["fused-lse", "math-lse"])
@pytest.mark.parametrize("n,w,leaky_k", [(50, 7, None), (50, 49, None), (64, 16, 4.0), (31, 2, 1e3)])
def test_merged_prefill_equals_chunked_and_naive(monkeypatch, fused, n, w, leaky_k):
    if not fused:
        monkeypatch.setattr(A, "_FUSED_CPU_LSE", None)
    q, k, v = qkv(n=n, seed=n + w)
    ln = logn_scale(n, 0, 16, "dagger")
    mode = "rerope" if leaky_k is None else "leaky"
    naive = A.naive_relpos_attention(q, k, v, rel_pos(n, n, mode, w, leaky_k), logn=ln)
    merged = A.rerope_attention(q, k, v, w, leaky_k, logn=ln)
    chunked = A._rerope_chunked(q, k, v, w, leaky_k, 0, None, ln, 10000.0, 8, 0.0)
    assert (merged - naive).abs().max() < 1e-10
    assert (chunked - naive).abs().max() < 1e-10


def test_attention_lse_matches_logsumexp(monkeypatch):
    q, k, v = qkv(n=20, seed=3)
    s = (q @ k.transpose(-1, -2)) * 0.3
    s = s.masked_fill(~A.causal_mask(20, 20), float("-inf"))
    for fused in (A._FUSED_CPU_LSE, None):
        monkeypatch.setattr(A, "_FUSED_CPU_LSE", fused)
        out, lse = A._attention_lse(q, k, v, 0.3)
        assert (lse - torch.logsumexp(s, -1)).abs().max() < 1e-12
        assert (out - torch.softmax(s, -1) @ v).abs().max() < 1e-12


@pytest.mark.parametrize("group,heads", [(None, None), (1, None), (2, None), (None, 4)],
                         ids=["default-groups", "group-1", "group-2", "all-heads-at-once"])
@pytest.mark.parametrize("n,w,block", [(10, 3, None), (33, 8, 3), (64, 16, 64), (7, 20, None), (9, 1, None),
                                       (40, 40, None), (41, 40, None), (50, 20, 4)])
def test_window_lse_and_block_sizes(group, heads, n, w, block):
    q, k, v = qkv(n=n, seed=w)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~A.causal_mask(n, n, window=w), float("-inf"))
    scale = 1 / math.sqrt(q.shape[-1])  # heads=4: all B * H heads in one batched call, as on a GPU
    out, lse = A._window_attention_lse(q, k, v, w, scale, block=block, group=group, heads=heads)
    assert (lse - torch.logsumexp(s, -1)).abs().max() < 1e-12
    assert (out - torch.softmax(s, -1) @ v).abs().max() < 1e-12
    assert (A.window_attention(q, k, v, w) - out).abs().max() < 1e-12
    qb, kb, vb, band, lead = A._window_blocks(q, k, v, w, block)
    BH, nb, c = qb.shape[:3]
    assert kb.shape == (BH, nb, q.shape[-1], c + w - 1) and vb.shape == (BH, nb, c + w - 1, q.shape[-1])
    assert band.shape == (c, c + w - 1) and lead.shape[1:] == band.shape
    # every block's additive mask, as a boolean "visible" matrix: real query rows see exactly min(i + 1, w) keys
    bias = band.expand(nb, c, c + w - 1).clone()
    bias[: len(lead)] += lead
    visible = (bias > -math.inf).reshape(-1, c + w - 1)[:n].sum(-1)
    assert visible.tolist() == [min(i + 1, w) for i in range(n)]
    # the unfolded key blocks are K itself: block s, offset b holds key s*c - w + 1 + b where that is >= 0
    kp = torch.nn.functional.pad(k, (0, 0, 0, nb * c - n)).reshape(BH, -1, q.shape[-1])
    for s_ in range(nb):
        first = s_ * c - w + 1
        b0 = max(0, -first)  # offsets before key 0 (hidden by ``lead``)
        assert torch.equal(kb[:, s_, :, b0:].transpose(-1, -2), kp[:, first + b0 : first + c + w - 1])


def test_window_and_merged_rerope_gradients_equal_dense():
    """Training runs through the blocked window kernel (and HWFA2's full layers through the merged prefill)."""
    n, w = 37, 8
    q, k, v = (t.requires_grad_() for t in qkv(n=n, seed=5))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    dense = A.attend(s, v, A.causal_mask(n, n, window=w))
    g_dense = torch.autograd.grad(dense.square().sum(), (q, k, v))
    g_window = torch.autograd.grad(A.window_attention(q, k, v, w).square().sum(), (q, k, v))  # dense: short n
    blocked, _ = A._window_attention_lse(q, k, v, w, 1 / math.sqrt(q.shape[-1]), need_lse=False)
    g_blocked = torch.autograd.grad(blocked.square().sum(), (q, k, v))
    naive = A.naive_relpos_attention(q, k, v, rel_pos(n, n, "rerope", w))
    g_naive = torch.autograd.grad(naive.square().sum(), (q, k, v))
    g_merged = torch.autograd.grad(A.rerope_attention(q, k, v, w).square().sum(), (q, k, v))
    for a, b in zip(g_dense + g_dense + g_naive, g_window + g_blocked + g_merged, strict=True):
        assert (a - b).abs().max() < 1e-10


def _peak(fn, *args) -> int:
    A.release_scratch()  # the kernels keep a scratch arena between calls: count it as this call's memory
    with torch.no_grad(), PeakMemory() as mem:
        fn(*args)
    return mem.peak_bytes


def _dense(q, k, v):
    n = q.shape[2]
    return A.attend(q @ k.transpose(-1, -2), v, A.causal_mask(n, n))


def test_window_and_rerope_memory_grow_linearly_but_dense_quadratically():
    sizes = (512, 1024, 2048)
    peaks = {"window": [], "rerope": [], "dense": []}
    for n in sizes:
        q, k, v = qkv(B=1, H=2, n=n, d=16, dtype=torch.float32)
        pos = torch.arange(n, dtype=torch.float64)
        peaks["window"].append(_peak(A.window_attention, rope(q, pos), rope(k, pos), v, 32))
        peaks["rerope"].append(_peak(A.rerope_attention, q, k, v, 64))
        peaks["dense"].append(_peak(_dense, q, k, v))
    growth = {name: p[-1] / p[0] for name, p in peaks.items()}  # n grew 4x
    # at most linear: the outputs and padded copies are O(n d); the window scores live in fixed-size groups
    # (O(group * w), a constant), so the growth can fall below 4x but never approaches the quadratic 16x
    assert 2 < growth["window"] < 4.5
    assert 2 < growth["rerope"] < 4.5
    assert growth["dense"] > 12


def test_peak_memory_tracer_counts_live_tensors():
    with PeakMemory() as mem:
        a = torch.zeros(1000, 250)  # 1 MB
        b = a + 1  # 2 MB live
        del a
        c = b * 2  # b and c: 2 MB
        del b, c
        d = torch.zeros(100, 250)  # 0.1 MB
    assert mem.peak_bytes == 2_000_000 and mem.current_bytes == 100_000
    del d


def test_kv_cache_grows_and_keeps_order():
    cache = A.KVCache()
    k = torch.randn(1, 2, 40, 4)
    v = torch.randn(1, 2, 40, 4)
    for t in range(0, 40, 7):
        cache.append(k[:, :, t : t + 7], v[:, :, t : t + 7])
    assert cache.length == 40 and torch.equal(cache.k, k) and torch.equal(cache.v, v)


@pytest.mark.parametrize("w,leaky_k", [(1, None), (3, None), (7, None), (40, None), (5, 4.0), (7, 1e3), (3, 0.25)])
def test_rerope_cache_decode_equals_naive_oracle(w, leaky_k):
    """ReRoPECache (each key rotated once, near keys in a mirrored ring) == the explicit-P oracle, row by row."""
    n = 30
    q, k, v = qkv(n=n, seed=w)
    mode = "rerope" if leaky_k is None else "leaky"
    naive = A.naive_relpos_attention(q, k, v, rel_pos(n, n, mode, w, leaky_k))
    cache = A.ReRoPECache(w, leaky_k)
    for t in range(n):
        cache.append(k[:, :, t : t + 1], v[:, :, t : t + 1])
        assert (cache.attend(q[:, :, t : t + 1])[:, :, 0] - naive[:, :, t]).abs().max() < 1e-12
    assert cache.length == n and cache.k.shape[2] == n


def test_rerope_cache_chunked_appends_scale_and_logn():
    n, w, N = 37, 6, 16
    q, k, v = qkv(n=n, seed=11)
    logn = logn_scale(n, 0, N, "dagger")
    naive = A.naive_relpos_attention(q, k, v, rel_pos(n, n, "rerope", w), scale=0.3, logn=logn)
    cache = A.ReRoPECache(w)
    for start, stop in ((0, 2), (2, 17), (17, 36)):  # a prefill-sized chunk longer than the window, then steps
        cache.append(k[:, :, start:stop], v[:, :, start:stop])
    cache.append(k[:, :, 36:], v[:, :, 36:])
    out = cache.attend(q[:, :, 36:], scale=0.3, logn=float(logn[36]))
    assert (out[:, :, 0] - naive[:, :, 36]).abs().max() < 1e-12
    with pytest.raises(ValueError):
        A.ReRoPECache(0)
    with pytest.raises(ValueError):
        A.ReRoPECache(4, leaky_k=-1.0)


@pytest.mark.parametrize("n,w", [(45, 8), (10, 30), (300, 16), (257, 40)])
def test_window_with_rope_tables_equals_rotating_first(n, w):
    """RoPE fused into the window kernel's buffers == rotate, then window attention; with and without autograd."""
    q, k, v = qkv(B=1, n=n, seed=n)  # n > DENSE_WINDOW_MAX_N: the blocked kernel; below it: dense SDPA
    tables = position_tables(n, q.shape[-1], dtype=q.dtype)
    rotated = A.window_attention(rope(q, torch.arange(n, dtype=torch.float64)),
                                 rope(k, torch.arange(n, dtype=torch.float64)), v, w)
    assert (A.window_attention(q, k, v, w, rope_tables=tables) - rotated).abs().max() < 1e-12
    qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
    fused = A.window_attention(qg, kg, vg, w, rope_tables=tables)
    assert (fused - rotated).abs().max() < 1e-12
    pos = torch.arange(n, dtype=torch.float64)
    s = (rope(qg, pos) @ rope(kg, pos).transpose(-1, -2)) / math.sqrt(q.shape[-1])
    dense = A.attend(s, vg, A.causal_mask(n, n, window=w))
    for a, b in zip(torch.autograd.grad(fused.square().sum(), (qg, kg, vg)),
                    torch.autograd.grad(dense.square().sum(), (qg, kg, vg)), strict=True):
        assert (a - b).abs().max() < 1e-10


def test_apply_rope_paths_agree_and_out_refuses_autograd():
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    cos, sin = position_tables(9, 8, dtype=torch.float64)
    fresh = apply_rope(x, cos, sin, scale=0.5)  # no autograd: halves written in place into one output
    with torch.enable_grad():
        xg = x.clone().requires_grad_()
        graph = apply_rope(xg, cos, sin, scale=0.5)  # autograd: the concatenating path
        with pytest.raises(ValueError):
            apply_rope(xg, cos, sin, out=torch.empty_like(x))
    assert (fresh - graph).abs().max() < 1e-15
    strided = torch.randn(2, 9, 3, 8, dtype=torch.float64).transpose(1, 2)  # a view, as split off a projection
    out = torch.zeros(2, 3, 12, 8, dtype=torch.float64)
    apply_rope(strided, cos, sin, out=out[:, :, :9])
    assert torch.equal(out[:, :, 9:], torch.zeros(2, 3, 3, 8, dtype=torch.float64))
    assert (out[:, :, :9] - rope(strided.contiguous(), torch.arange(9, dtype=torch.float64))).abs().max() < 1e-15


def test_scratch_arena_is_reused_and_nested_calls_get_their_own_buffers():
    q, k, v = qkv(B=1, H=2, n=300, d=16, dtype=torch.float32)  # past DENSE_WINDOW_MAX_N: the blocked kernel
    A.release_scratch()
    first = A.window_attention(q, k, v, 24)
    arena = A._Scratch._local.arenas[torch.float32]
    second = A.window_attention(q, k, v, 24)
    assert torch.equal(first, second) and A._Scratch._local.arenas[torch.float32] is arena  # no new arena
    assert first.data_ptr() != second.data_ptr()  # outputs are fresh, never views of the arena
    with A._scratch(torch.float32, q.device) as outer:
        assert outer is not None
        with A._scratch(torch.float32, q.device) as inner:
            assert inner is None  # nested: the caller's arena is busy, so plain tensors
            assert torch.equal(A.window_attention(q, k, v, 24), first)
    A.release_scratch()
    assert "arenas" not in A._Scratch._local.__dict__


@pytest.mark.parametrize("n", [A.DENSE_WINDOW_MAX_N, A.DENSE_WINDOW_MAX_N + 1])
def test_dense_and_blocked_window_paths_agree_at_the_switch(n):
    q, k, v = qkv(B=1, H=2, n=n, d=8, seed=n)
    blocked, _ = A._window_attention_lse(q, k, v, 24, 8**-0.5, need_lse=False)
    s = (q @ k.transpose(-1, -2)) * 8**-0.5
    dense = A.attend(s, v, A.causal_mask(n, n, window=24))
    assert (A.window_attention(q, k, v, 24) - dense).abs().max() < 1e-12
    assert (blocked - dense).abs().max() < 1e-12
