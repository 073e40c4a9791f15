"""The two ReRoPE prefill paths, the log-sum-exp helpers, window blocking and measured memory growth."""

from __future__ import annotations

import math

import pytest
import torch

from backend.services.attention import functional as A
from backend.services.attention.memtrace import PeakMemory
from backend.services.attention.positions import logn_scale, rel_pos, rope
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


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("n,w,block", [(10, 3, None), (33, 8, 3), (64, 16, 64), (7, 20, None), (9, 1, None),
                                       (40, 40, None), (41, 40, None)])
def test_window_lse_and_block_sizes(monkeypatch, fused, n, w, block):
    if not fused:
        monkeypatch.setattr(A, "_FUSED_CPU_LSE", None)
    q, k, v = qkv(n=n, seed=w)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~A.causal_mask(n, n, window=w), float("-inf"))
    out, lse = A._window_attention_lse(q, k, v, w, 1 / math.sqrt(q.shape[-1]))
    assert (lse - torch.logsumexp(s, -1)).abs().max() < 1e-12
    assert (out - torch.softmax(s, -1) @ v).abs().max() < 1e-12
    assert (A.window_attention(q, k, v, w) - out).abs().max() < 1e-12
    qb, kb, _, mask = A._window_blocks(q, k, v, w, block)
    c = qb.shape[3]
    assert kb.shape[3] == c + w - 1 and mask.shape == (qb.shape[2], c, c + w - 1)
    visible = mask.reshape(-1, c + w - 1)[:n].sum(-1)  # real query rows see exactly min(i + 1, w) keys
    assert visible.tolist() == [min(i + 1, w) for i in range(n)]


def _peak(fn, *args) -> int:
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
    assert 3.5 < growth["window"] < 4.5
    assert 3.5 < growth["rerope"] < 4.5
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
