"""Attention kernels in plain torch: the RoPE / ReRoPE / Leaky ReRoPE family, window attention and KV caches.

Shapes: q, k, v are (B, H, n, d). Queries sit at absolute positions offset .. offset + nq - 1 and keys at
0 .. nk - 1 (offset defaults to nk - nq: the queries are the last nq positions). Everything is causal.
Scores are scaled by 1/sqrt(d) unless ``scale`` is given; ``logn`` is a per-query-row logit multiplier
(see ``positions.logn_scale``) applied before the softmax.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from backend.services.attention.positions import _needs_grad, apply_rope, position_tables, rope, rope_tables

# The CPU flash-attention op also returns the log-sum-exp that merging two softmax parts needs.
_FUSED_CPU_LSE = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

# ---------------------------------------------------------------------------------------------------------
# small helpers


class _Scratch:
    """Temporaries of one kernel call, carved one after another from a per-thread arena kept between calls.

    Why: a multi-MiB CPU temporary is handed back to the OS when it is freed (glibc trims the top of its heap),
    and the next call's first touch of it costs a page fault per 4 KiB page: on the project's VM that is
    slower than the arithmetic done on the page (see scripts/bench_attention.py). Only for temporaries that
    die with the call, never for outputs or under autograd. Off the CPU (a caching allocator) and above
    ``MAX_BYTES`` the buffers are plain fresh tensors.
    """

    MAX_BYTES = 64 << 20
    _local = threading.local()

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        self.dtype, self.device, self.used = dtype, device, 0
        self.arenas: dict = self._local.__dict__.setdefault("arenas", {})

    def take(self, *shape: int) -> torch.Tensor:
        numel = math.prod(shape)
        start = -(-self.used // 16) * 16  # 64-byte aligned views for float32
        end = start + numel
        if self.device.type != "cpu" or end * torch.empty((), dtype=self.dtype).element_size() > self.MAX_BYTES:
            return torch.empty(shape, dtype=self.dtype, device=self.device)
        arena = self.arenas.get(self.dtype)
        if arena is None or arena.numel() < end:
            # views handed out before keep the old arena alive until this call ends; the next call fits
            arena = self.arenas[self.dtype] = torch.empty(end + end // 4, dtype=self.dtype)
        self.used = end
        return arena[start:end].view(shape)


def release_scratch() -> None:
    """Free this thread's scratch arenas (the kernels keep them between calls; see ``_Scratch``)."""
    _Scratch._local.__dict__.pop("arenas", None)


@contextmanager
def _scratch(dtype: torch.dtype, device: torch.device) -> Iterator[_Scratch | None]:
    """A ``_Scratch`` for one call, or None when this thread's arena is already in use (a nested call)."""
    local = _Scratch._local
    if getattr(local, "busy", False):
        yield None
        return
    local.busy = True
    try:
        yield _Scratch(dtype, device)
    finally:
        local.busy = False


def causal_mask(
    nq: int, nk: int, offset: int | None = None, window: int | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean (nq, nk), True = visible: j <= i and, with a window w, i - j < w."""
    offset = nk - nq if offset is None else offset
    i = torch.arange(nq, device=device)[:, None] + offset
    j = torch.arange(nk, device=device)[None]
    mask = j <= i
    return mask & (i - j < window) if window is not None else mask


def attend(scores: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(scores, masked) @ v, with the softmax in at least float32 (float64 stays float64)."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    return probs.to(v.dtype) @ v


def _scale(q: torch.Tensor, scale: float | None) -> float:
    return scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])


def _row_scaled(q: torch.Tensor, logn: torch.Tensor | None) -> torch.Tensor:
    # A per-row logit factor is the same as scaling that query row (rotation commutes with a scalar).
    return q if logn is None else q * logn.to(device=q.device, dtype=q.dtype)[:, None]


# ---------------------------------------------------------------------------------------------------------
# oracle and plain RoPE


def naive_relpos_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    P: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    logn: torch.Tensor | None = None,
) -> torch.Tensor:
    """ORACLE: s_ij = <R^{P_ij} q_i, k_j> for an explicit relative-position matrix P (nq, nk).

    Memory O(nq * nk * d): for tests and small inputs only. ``mask`` defaults to causal.
    """
    nq, nk = q.shape[2], k.shape[2]
    P = P.to(q.device)
    scores = (rope(q[:, :, :, None, :], P) * k[:, :, None]).sum(-1) * _scale(q, scale)
    if logn is not None:
        scores = scores * logn.to(device=q.device, dtype=scores.dtype)[:, None]
    return attend(scores, v, causal_mask(nq, nk, device=q.device) if mask is None else mask)


def rope_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    offset: int | None = None,
    scale: float | None = None,
    logn: torch.Tensor | None = None,
    pos_scale: float = 1.0,
    base: float = 10000.0,
    shift: float = 0.0,
) -> torch.Tensor:
    """Plain causal RoPE attention on un-rotated q, k through torch SDPA (fused kernel, no n x n matrix).

    ``pos_scale`` multiplies every position: 1/k is position interpolation (PI). ``shift`` adds a constant
    to every absolute position (the output must not change: RoPE only sees i - j).
    """
    nq, nk = q.shape[2], k.shape[2]
    offset = nk - nq if offset is None else offset
    pq = (torch.arange(nq, dtype=torch.float64, device=q.device) + offset + shift) * pos_scale
    pk = (torch.arange(nk, dtype=torch.float64, device=q.device) + shift) * pos_scale
    if shift == 0 and pos_scale == 1.0:  # keys at 0..nk-1: the tables every layer shares
        k_tables = position_tables(nk, q.shape[-1], base, q.dtype, q.device)
    else:
        k_tables = rope_tables(pk, q.shape[-1], base, q.dtype, q.device)
    q_tables = k_tables if nq == nk and offset == 0 else rope_tables(pq, q.shape[-1], base, q.dtype, q.device)
    qr, kr = _row_scaled(apply_rope(q, *q_tables), logn), apply_rope(k, *k_tables)
    if nq == nk and offset == 0:
        return F.scaled_dot_product_attention(qr, kr, v, is_causal=True, scale=_scale(q, scale))
    mask = causal_mask(nq, nk, offset, device=q.device)
    return F.scaled_dot_product_attention(qr, kr, v, attn_mask=mask, scale=_scale(q, scale))


# ---------------------------------------------------------------------------------------------------------
# ReRoPE / Leaky ReRoPE


def rerope_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    leaky_k: float | None = None,
    *,
    offset: int | None = None,
    scale: float | None = None,
    logn: torch.Tensor | None = None,
    base: float = 10000.0,
    chunk_size: int = 1024,
    shift: float = 0.0,
) -> torch.Tensor:
    """Causal ReRoPE (``leaky_k=None``) or Leaky ReRoPE attention on UN-rotated q, k (B, H, n, d).

    Relative position P_ij = i - j inside the window (i - j < w); past it, w (ReRoPE) or
    w + (i - j - w) / k (Leaky). Efficient two-pass prefill as in bojone's rerope_patch.py:
      S1_ij = (R^i q_i)^T (R^j k_j)                                   ordinary RoPE, used where i - j < w
      S2_ij = (R^w q_i)^T k_j            (ReRoPE: the key is not rotated)
            = (R^{(i + w(k-1))/k} q_i)^T (R^{j/k} k_j)   (Leaky: linear-scaled RoPE, query shifted)
    and S = where(i - j < w, S1, S2). Two exact implementations of that scheme:
    - prefill (nq == nk, offset 0): S1 on the band as window attention, S2 on the far keys through the fused
      causal SDPA kernel, the two softmax parts merged by their log-sum-exp (``_rerope_prefill_merged``);
    - any offset: query chunks of ``chunk_size`` rows, S2 on every visible key and S1 only on the band,
      selected and softmaxed per chunk (``_rerope_chunked``), memory O(chunk * n).
    If no pair is past the window (w >= n), this is exactly ``rope_attention``. ``shift`` adds a constant to
    every absolute position; ReRoPE and Leaky ReRoPE depend only on i - j, so the output must not change.
    """
    nq, nk = q.shape[2], k.shape[2]
    offset = nk - nq if offset is None else offset
    if offset + nq - 1 < window:  # the largest i - j never reaches the window: plain RoPE
        return rope_attention(q, k, v, offset=offset, scale=scale, logn=logn, base=base, shift=shift)
    if leaky_k is not None and leaky_k <= 0:
        raise ValueError(f"leaky_k must be positive, got {leaky_k}")

    if nq == nk and offset == 0:
        return _rerope_prefill_merged(q, k, v, window, leaky_k, scale=scale, logn=logn, base=base, shift=shift)
    return _rerope_chunked(q, k, v, window, leaky_k, offset, scale, logn, base, chunk_size, shift)


def _rerope_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    leaky_k: float | None,
    offset: int,
    scale: float | None,
    logn: torch.Tensor | None,
    base: float,
    chunk_size: int,
    shift: float,
) -> torch.Tensor:
    """The general two-pass path (any offset): S2 on every visible key, S1 on the band, select, softmax."""
    nq, nk = q.shape[2], k.shape[2]
    dev, f64 = q.device, torch.float64
    pk = torch.arange(nk, dtype=f64, device=dev) + shift
    k_near = rope(k, pk, base)
    k_far = k if leaky_k is None else rope(k, pk / leaky_k, base)
    q = _row_scaled(q, logn) * _scale(q, scale)

    outputs = []
    for s in range(0, nq, chunk_size):
        e = min(nq, s + chunk_size)
        pq = torch.arange(s, e, dtype=f64, device=dev) + offset
        qc = q[:, :, s:e]
        kend = min(nk, offset + e)  # keys past the chunk's last query are invisible (causal)
        # pass 2 (S2) on every visible key: most of them are past the window
        if leaky_k is None:
            q_far = rope(qc, torch.full_like(pq, float(window)), base)
        else:
            q_far = rope(qc, (pq + shift + window * (leaky_k - 1)) / leaky_k, base)
        scores = q_far @ k_far[:, :, :kend].transpose(-1, -2)
        # pass 1 (S1) only on the band of keys that is inside the window for some row of the chunk
        a = min(kend, max(0, offset + s - window + 1))
        band = rope(qc, pq + shift, base) @ k_near[:, :, a:kend].transpose(-1, -2)
        rel = pq[:, None] - torch.arange(a, kend, dtype=f64, device=dev)[None]
        scores[..., a:] = torch.where(rel < window, band, scores[..., a:]).masked_fill(rel < 0, float("-inf"))
        outputs.append(attend(scores, v[:, :, :kend], None))
    return torch.cat(outputs, dim=2)


def _rerope_prefill_merged(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    leaky_k: float | None,
    *,
    scale: float | None,
    logn: torch.Tensor | None,
    base: float,
    shift: float,
) -> torch.Tensor:
    """Prefill (queries = keys = 0..n-1) as two attentions merged by their log-sum-exp (flash style).

    Pass 1, the band 0 <= i - j < w, is window attention with RoPE (O(n w)). Pass 2, the far keys j <= i - w,
    is a causal attention of the fixed-rotation queries (rows w..n-1) over keys 0..n-w-1, run by the fused
    SDPA kernel, so no n x n score matrix is ever built. The softmax over both parts is recombined exactly:
    out = (e^{l1} o1 + e^{l2} o2) / (e^{l1} + e^{l2}).
    """
    n, dev, f64 = q.shape[2], q.device, torch.float64
    sc = _scale(q, scale)
    q = _row_scaled(q, logn)
    pos = torch.arange(n, dtype=f64, device=dev) + shift
    if shift == 0:
        tables = position_tables(n, q.shape[-1], base, q.dtype, dev)
    else:
        tables = rope_tables(pos, q.shape[-1], base, q.dtype, dev)
    # RoPE is applied inside the window kernel, straight into its blocked buffers
    out, lse = _window_attention_lse(q, k, v, window, sc, tables=tables)
    if leaky_k is None:
        q_far, k_far = rope(q[:, :, window:], float(window), base), k[:, :, : n - window]
    else:
        q_far = rope(q[:, :, window:], (pos[window:] + window * (leaky_k - 1)) / leaky_k, base)
        k_far = rope(k[:, :, : n - window], pos[: n - window] / leaky_k, base)
    far, far_lse = _attention_lse(q_far, k_far, v[:, :, : n - window], sc)  # row r = query w + r sees keys <= r
    near, near_lse = out[:, :, window:], lse[:, :, window:]
    m = torch.maximum(near_lse, far_lse)
    a, b = (near_lse - m).exp_(), (far_lse - m).exp_()
    if not _needs_grad(q, k, v) and near.dtype == a.dtype == b.dtype == far.dtype:
        # in place into the window kernel's own output buffer: no n x d temporaries, no concatenation
        total = a + b
        near.mul_(a.div_(total)[..., None]).addcmul_(far, b.div_(total)[..., None])
        return out
    a, b = a[..., None], b[..., None]
    merged = (a * near.to(a.dtype) + b * far.to(a.dtype)) / (a + b)
    return torch.cat([out[:, :, :window], merged.to(v.dtype)], dim=2)


def _attention_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention (row r sees keys 0..r) and its per-row log-sum-exp of the scaled scores.

    On the CPU torch's fused flash kernel returns the log-sum-exp (an internal op: public SDPA drops it);
    elsewhere, and whenever a gradient is needed (that op's backward ignores the gradient of its log-sum-exp
    output, so the merged prefill's q and k gradients would be wrong), the scores are materialised.
    """
    if q.device.type == "cpu" and _FUSED_CPU_LSE is not None and not _needs_grad(q, k, v):
        out, lse = _FUSED_CPU_LSE(q, k, v, 0.0, True, scale=scale)
        return out, lse
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~causal_mask(q.shape[2], k.shape[2], 0, device=q.device), float("-inf"))
    lse = torch.logsumexp(scores.float() if scores.dtype != torch.float64 else scores, dim=-1)
    return ((scores - lse[..., None].to(scores.dtype)).exp() @ v), lse


def rerope_decode_step(
    q_t: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    t: int,
    window: int,
    leaky_k: float | None = None,
    *,
    scale: float | None = None,
    logn: float | None = None,
    base: float = 10000.0,
    rotate_all: bool = False,
) -> torch.Tensor:
    """One decode step (q_len = 1) for the query at position t over UN-rotated cached keys 0..t.

    One score pass with P_tj = min(t - j, w) (or the Leaky value), using <q, R^{-P} k> = <R^P q, k>:
    - Leaky (``leaky_k`` given), or ``rotate_all=True``: every cached key is re-rotated by -P_tj, as the
      rerope_patch does; this O(n d) rotation per step is why ReRoPE decoding is slower than RoPE;
    - ReRoPE: every key past the window has the same P = w, so those scores are (R^w q)^T k_j against the
      raw cache and only the last w keys are rotated: O(w d) extra per step instead of O(n d).
    """
    nk, dev = k_cache.shape[2], q_t.device
    q_t = q_t * (_scale(q_t, scale) * (1.0 if logn is None else float(logn)))
    if leaky_k is None and not rotate_all:
        near = max(0, t - window + 1)  # keys j >= near are inside the window
        far_scores = rope(q_t, float(window), base) @ k_cache[:, :, :near].transpose(-1, -2)
        P = t - torch.arange(near, nk, dtype=torch.float64, device=dev)
        near_scores = q_t @ rope(k_cache[:, :, near:], -P, base).transpose(-1, -2)
        return attend(torch.cat([far_scores, near_scores], dim=-1), v_cache, None)
    r = t - torch.arange(nk, dtype=torch.float64, device=dev)
    P = r.clamp(max=window) if leaky_k is None else torch.where(r < window, r, window + (r - window) / leaky_k)
    return attend(q_t @ rope(k_cache, -P, base).transpose(-1, -2), v_cache, None)


# ---------------------------------------------------------------------------------------------------------
# window attention


DENSE_WINDOW_MAX_N = 256  # up to this length window attention runs as dense masked SDPA (memory n^2 per head)


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    *,
    scale: float | None = None,
    rope_tables: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Causal sliding-window attention: query i sees keys j with 0 <= i - j < w.

    q, k are already position-encoded, or, with ``rope_tables`` = (cos, sin) of positions 0..n-1 (as from
    ``positions.position_tables``), un-rotated and rotated here, straight into the kernel's blocked buffers.
    Blocked, so memory and work are O(n * w), never n x n: query blocks of c = min(w, 16) rows score only the
    c + w - 1 keys they can see (``_window_blocks``), one batched matmul per group of blocks. Sequences of at most
    ``DENSE_WINDOW_MAX_N`` positions take one dense masked SDPA call instead.
    """
    n = q.shape[2]
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if n <= DENSE_WINDOW_MAX_N:
        # short sequences (training at N = 128): one fused SDPA call over the n x n band mask beats the blocked
        # kernel's per-head, per-group loop, most of all under autograd (~3x per training step measured)
        if rope_tables is not None:
            q, k = apply_rope(q, *rope_tables), apply_rope(k, *rope_tables)
        mask = causal_mask(n, n, 0, window, device=q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=_scale(q, scale))
    out, _ = _window_attention_lse(q, k, v, window, _scale(q, scale), need_lse=False, tables=rope_tables)
    return out


def _window_blocks(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    w: int,
    block: int | None = None,
    *,
    tables: tuple[torch.Tensor, torch.Tensor] | None = None,
    scale: float = 1.0,
    scratch: _Scratch | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blocked views of q * scale, k, v for window attention, and the additive masks of the scores.

    With c = block rows per query block (default min(w, 16)), block s of a head holds queries s*c .. s*c + c - 1
    and sees keys s*c - w + 1 .. s*c + c - 1, a span of c + w - 1. Returns
      q_blocks (BH, nb, c, d); k_blocks (BH, nb, d, span), i.e. K^T per block; v_blocks (BH, nb, span, d);
      band (c, span): 0 where 0 <= i - j < w, else -inf (the same for every block);
      lead (L, c, span): -inf on the keys before key 0 in the first L = ceil((w - 1) / c) blocks of a head.
    The heads are laid end to end in one sequence behind w - 1 zero rows (one copy of K and of V), which is
    then unfolded into overlapping block views without further copies; the keys a leading block reaches before
    its head's key 0 are padding or the previous head's, and ``lead`` hides them. A tail of zero rows fills the
    last block: those keys come after every real query, so the band already hides them, and their query rows
    are dropped. ``tables`` = (cos, sin): q and k are un-rotated and RoPE is applied while filling the buffers.
    Without autograd, q and k go straight from their (possibly strided) inputs into those buffers, rotated and
    scaled on the way: one write each and no temporaries; with ``scratch`` those buffers come from its arena.
    """
    B, H, n, d = q.shape
    if w < 1:
        raise ValueError(f"window must be >= 1, got {w}")
    # a block of c rows scores c + w - 1 keys of which w are visible per row: small blocks waste less of the
    # span (w = 64: 19% at c = 16, 49% at c = 64); on the CPU c = 16 timed as fast as or faster than 32 and 64
    # for w = 64 and 256
    c = block or min(w, 16)
    span = c + w - 1
    nb = -(-n // c)
    padded = nb * c
    grad = _needs_grad(q, k, v, *(tables or ()))
    if grad:
        if tables is not None:
            q, k = apply_rope(q, *tables), apply_rope(k, *tables)
        q = q * scale
    if grad:
        q_blocks = (F.pad(q, (0, 0, 0, padded - n)) if padded != n else q).reshape(B * H, nb, c, d)
    else:
        q_buf = scratch.take(B, H, padded, d) if scratch else q.new_empty(B, H, padded, d)
        q_buf[:, :, n:].zero_()
        if tables is not None:
            apply_rope(q, *tables, out=q_buf[:, :, :n], scale=scale)
        else:
            torch.mul(q, scale, out=q_buf[:, :, :n])
        q_blocks = q_buf.view(B * H, nb, c, d)

    def unfold(t: torch.Tensor, rotate: bool) -> torch.Tensor:  # (BH, nb, d, span): block s's keys, transposed
        rows = w - 1 + B * H * padded
        flat = scratch.take(rows, d) if scratch and not grad else t.new_empty(rows, d)
        flat[: w - 1].zero_()  # zeros, not garbage: a NaN score would survive the -inf mask
        body = flat[w - 1 :].view(B, H, padded, d)
        if grad:
            body.copy_(F.pad(t, (0, 0, 0, padded - n)) if padded != n else t)  # one (possibly strided) copy
        else:
            body[:, :, n:].zero_()
            if rotate and tables is not None:
                apply_rope(t, *tables, out=body[:, :, :n])
            else:
                body[:, :, :n].copy_(t)
        return flat.unfold(0, span, c).unflatten(0, (B * H, nb))

    k_blocks, v_blocks = unfold(k, True), unfold(v, False).transpose(-1, -2)
    rel = torch.arange(c, device=q.device)[:, None] + (w - 1) - torch.arange(span, device=q.device)[None]  # i - j
    band = torch.zeros(c, span, dtype=q.dtype, device=q.device).masked_fill_((rel < 0) | (rel >= w), -math.inf)
    n_lead = min(nb, -(-(w - 1) // c))
    lead = torch.zeros(n_lead, c, span, dtype=q.dtype, device=q.device)
    for s in range(n_lead):
        lead[s, :, : w - 1 - s * c] = -math.inf  # key offset b sits at position s*c - w + 1 + b < 0
    return q_blocks, k_blocks, v_blocks, band, lead


_SOFTMAX_OUT = torch.ops.aten._softmax.out


def _window_schedule(
    q: torch.Tensor, BH: int, nb: int, c: int, span: int, group: int | None, heads: int | None
) -> tuple[int, int]:
    """Heads per call and blocks per group: on the CPU one head and ~128k scores (0.5 MiB in float32) at a
    time, so a group's scores, probabilities and output stay in cache; elsewhere everything in one call."""
    on_cpu = q.device.type == "cpu"
    heads = heads or (1 if on_cpu else BH)
    if heads not in (1, BH):
        raise ValueError("heads per call must be 1 or all of them")
    if group is None:
        group = max(1, (1 << 17) // (c * span)) if on_cpu else nb
    return heads, min(group, nb)


def _window_attention_lse_nograd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    scale: float,
    need_lse: bool,
    block: int | None,
    group: int | None,
    heads: int | None,
    tables: tuple[torch.Tensor, torch.Tensor] | None,
    scratch: _Scratch | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``_window_attention_lse`` without autograd: every group writes into buffers made once per call (scores,
    probabilities; the output and log-sum-exp fresh, as they outlive the call) instead of fresh per-group
    temporaries and a concatenation, which on the CPU cost more than the matmuls (scripts/bench_attention.py)."""
    B, H, n, d = q.shape
    q_blocks, k_blocks, v_blocks, band, lead = _window_blocks(q, k, v, int(window), block, tables=tables,
                                                              scale=scale, scratch=scratch)
    BH, nb, c, span = q_blocks.shape[0], q_blocks.shape[1], q_blocks.shape[2], band.shape[1]
    heads, group = _window_schedule(q, BH, nb, c, span, group, heads)
    out_buf = q_blocks.new_empty(BH, nb, c, d)
    lse_buf = q_blocks.new_empty(BH, nb, c) if need_lse else None
    if scratch:
        score_buf, prob_buf = scratch.take(heads, group, c, span), scratch.take(heads, group, c, span)
    else:
        score_buf, prob_buf = q_blocks.new_empty(heads, group, c, span), q_blocks.new_empty(heads, group, c, span)
    for h in range(0, BH, heads):
        for g in range(0, nb, group):
            e = min(nb, g + group)
            # (heads, blocks) fold into one batch dimension without a copy: one head, or all heads with all blocks
            scores = torch.matmul(q_blocks[h : h + heads, g:e], k_blocks[h : h + heads, g:e],
                                  out=score_buf[:, : e - g]).add_(band)
            if g < len(lead):
                scores[:, : len(lead) - g] += lead[g:e]
            probs = _SOFTMAX_OUT(scores, -1, False, out=prob_buf[:, : e - g])
            torch.matmul(probs, v_blocks[h : h + heads, g:e], out=out_buf[h : h + heads, g:e])
            if lse_buf is not None:
                torch.sub(scores.amax(-1), probs.amax(-1).log_(), out=lse_buf[h : h + heads, g:e])
    out = out_buf.view(B, H, nb * c, d)[:, :, :n]
    return out, lse_buf.view(B, H, nb * c)[:, :, :n] if lse_buf is not None else None


def _window_attention_lse(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    scale: float,
    need_lse: bool = True,
    block: int | None = None,
    group: int | None = None,
    heads: int | None = None,
    tables: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Window attention and each row's log-sum-exp of its scaled scores (for merging with other parts).

    Blocks are processed ``group`` at a time, one head at a time, on the CPU (about 128k scores, 0.5 MiB in
    float32, so each group's scores, probabilities and output stay in cache); elsewhere all heads and blocks go
    in one batched call (a GPU is bound by launches at these sizes).
    The log-sum-exp comes from the softmax itself: at the row maximum m, p = e^0 / sum, so lse = m - log(p_max)
    (p_max >= 1 / span, so the log is well conditioned); no separate exp pass is needed.
    Without autograd every group writes into buffers allocated once per call (scores, probabilities, output,
    log-sum-exp): on the CPU the fresh memory of per-group temporaries and their concatenation cost more than
    the matmuls (see scripts/bench_attention.py). ``tables``: see ``window_attention``'s ``rope_tables``.
    """
    if not _needs_grad(q, k, v, *(tables or ())):
        with _scratch(q.dtype, q.device) as scratch:
            return _window_attention_lse_nograd(q, k, v, window, scale, need_lse, block, group, heads, tables,
                                                scratch)
    # the scale goes on q (n x d) rather than on the scores (n x span): fewer multiplications
    q_blocks, k_blocks, v_blocks, band, lead = _window_blocks(q, k, v, int(window), block, tables=tables,
                                                              scale=scale)
    B, H, n, d = q.shape
    BH, nb, c, span = q_blocks.shape[0], q_blocks.shape[1], q_blocks.shape[2], band.shape[1]
    heads, group = _window_schedule(q, BH, nb, c, span, group, heads)
    outs, lses = [], []  # concatenated at the end (``out=`` buffers would break autograd)
    for h in range(0, BH, heads):
        row_out, row_lse = [], []
        for g in range(0, nb, group):
            e = min(nb, g + group)
            # (heads, blocks) fold into one batch dimension without a copy: one head, or all heads with all blocks
            scores = torch.matmul(q_blocks[h : h + heads, g:e], k_blocks[h : h + heads, g:e]).add_(band)
            if g < len(lead):
                scores[:, : len(lead) - g] += lead[g:e]
            probs = torch.softmax(scores, dim=-1)
            row_out.append(torch.matmul(probs, v_blocks[h : h + heads, g:e]))
            if need_lse:
                row_lse.append(scores.amax(-1) - probs.amax(-1).log())
        outs.append(torch.cat(row_out, dim=1))
        lses.append(torch.cat(row_lse, dim=1) if need_lse else None)
    out = torch.cat(outs).view(B, H, nb * c, d)[:, :, :n]
    return out, torch.cat(lses).view(B, H, nb * c)[:, :, :n] if need_lse else None


# ---------------------------------------------------------------------------------------------------------
# KV caches


class KVCache:
    """Growing cache of keys and values (B, H, t, d), preallocated in doubling chunks."""

    def __init__(self) -> None:
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        n = k.shape[2]
        if self._k is None or self.length + n > self._k.shape[2]:
            cap = max(16, 2 * (self.length + n))
            new_k = k.new_empty(*k.shape[:2], cap, k.shape[3])
            new_v = v.new_empty(*v.shape[:2], cap, v.shape[3])
            if self._k is not None:
                new_k[:, :, : self.length] = self.k
                new_v[:, :, : self.length] = self.v
            self._k, self._v = new_k, new_v
        self._k[:, :, self.length : self.length + n] = k
        self._v[:, :, self.length : self.length + n] = v
        self.length += n

    @property
    def k(self) -> torch.Tensor:
        assert self._k is not None, "empty cache"
        return self._k[:, :, : self.length]

    @property
    def v(self) -> torch.Tensor:
        assert self._v is not None, "empty cache"
        return self._v[:, :, : self.length]


class ReRoPECache(KVCache):
    """Decode cache for ReRoPE / Leaky ReRoPE that never re-rotates cached keys.

    For the query at t, key j is scored with relative position P_tj = t - j inside the window (t - j < w) and
    w (ReRoPE) or w + (t - j - w) / k (Leaky) past it. Both parts factor into a rotated query and a key
    rotated by something that does not depend on t:
      near (t - j < w): <R^t q, R^j k_j>
      far, ReRoPE:      <R^w q, k_j>
      far, Leaky:       <R^{(t + w(k-1))/k} q, R^{j/k} k_j>
    so each key is rotated once, when it is appended, into its far form (kept for every position: ``k``) and
    its near form R^j k_j (kept only for the last w positions). The near keys live in a mirrored ring of 2w
    slots (position p is written to slots p % w and p % w + w), so the last w of them are always one
    contiguous slice in position order: a decode step is two query rotations and one pass over the keys,
    the same work as a RoPE step, instead of rotating the whole cache (rerope_patch) or its last w keys.
    Extra memory: 2 w d per head.
    """

    def __init__(self, window: int, leaky_k: float | None = None, base: float = 10000.0) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if leaky_k is not None and leaky_k <= 0:
            raise ValueError(f"leaky_k must be positive, got {leaky_k}")
        self.window, self.leaky_k, self.base = int(window), leaky_k, float(base)
        self._near: torch.Tensor | None = None  # (B, H, 2w, d) rotated keys R^j k_j of the last w positions
        self._inv_freq: torch.Tensor | None = None

    def _angles(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._inv_freq is not None
        ang = pos.to(torch.float64)[..., None] * self._inv_freq  # float64 angles, as everywhere else
        return ang.cos(), ang.sin()

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Add keys/values (B, H, n, d) for the next n positions (un-rotated keys, as a layer produces them)."""
        B, H, n, d = k.shape
        if self._inv_freq is None:
            self._inv_freq = self.base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=k.device) / d)
        pos = torch.arange(self.length, self.length + n, dtype=torch.float64, device=k.device)
        cos, sin = (t.to(k.dtype) for t in self._angles(pos))
        far = k if self.leaky_k is None else apply_rope(k, *(t.to(k.dtype) for t in self._angles(pos / self.leaky_k)))
        super().append(far, v)
        w = self.window
        if self._near is None:
            self._near = k.new_zeros(B, H, 2 * w, d)
        if n == 1:  # a decode step: two slice writes, no index tensors
            slot = (self.length - 1) % w
            near = apply_rope(k, cos, sin)[:, :, 0]
            self._near[:, :, slot] = near
            self._near[:, :, slot + w] = near
            return
        tail = slice(max(0, n - w), n)  # only the last w new keys can still be near
        slots = (pos[tail].long() % w).to(k.device)
        near = apply_rope(k[:, :, tail], cos[tail], sin[tail])
        self._near[:, :, slots] = near
        self._near[:, :, slots + w] = near

    def attend(self, q_t: torch.Tensor, *, scale: float | None = None, logn: float | None = None) -> torch.Tensor:
        """Attention (B, H, 1, d) of the un-rotated query at the last appended position t over keys 0..t."""
        t, w = self.length - 1, self.window
        assert self._near is not None and t >= 0, "empty cache"
        factor = _scale(q_t, scale) * (1.0 if logn is None else float(logn))
        far_pos = float(w) if self.leaky_k is None else (t + w * (self.leaky_k - 1)) / self.leaky_k
        cos, sin = self._angles(torch.tensor([far_pos, float(t)], dtype=torch.float64, device=q_t.device))
        # (B, H, 2, d): the far query and the near query, scaled on the way
        q2 = apply_rope(q_t, cos.to(q_t.dtype), sin.to(q_t.dtype), scale=factor)
        near_start = max(0, t - w + 1)
        first = near_start % w  # slot of position near_start; the next t - near_start slots follow it
        near_scores = q2[:, :, 1:] @ self._near[:, :, first : first + t + 1 - near_start].transpose(-1, -2)
        if near_start:
            far_scores = q2[:, :, :1] @ self._k[:, :, :near_start].transpose(-1, -2)  # type: ignore[index]
            near_scores = torch.cat([far_scores, near_scores], dim=-1)
        return attend(near_scores, self.v, None)


class RingKVCache:
    """Fixed-size ring buffer holding the last ``window`` keys/values: the window layers' constant memory.

    Slot order does not matter to attention (the softmax is a set operation; positions live in the
    already-rotated keys), so a new entry simply overwrites the oldest slot.
    """

    def __init__(self, window: int) -> None:
        self.window = int(window)
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0  # tokens seen so far

    def append(self, k_t: torch.Tensor, v_t: torch.Tensor) -> None:
        """Add one step (B, H, 1, d)."""
        if self.k is None:
            self.k = k_t.new_zeros(*k_t.shape[:2], self.window, k_t.shape[3])
            self.v = v_t.new_zeros(*v_t.shape[:2], self.window, v_t.shape[3])
        assert self.v is not None
        slot = self.length % self.window
        self.k[:, :, slot] = k_t[:, :, 0]
        self.v[:, :, slot] = v_t[:, :, 0]
        self.length += 1

    def fill(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Load the tail of a prefill (B, H, n, d), keeping slot = position % window."""
        for t in range(max(0, k.shape[2] - self.window), k.shape[2]):
            self.length = t
            self.append(k[:, :, t : t + 1], v[:, :, t : t + 1])
        self.length = k.shape[2]

    def attend(self, q_t: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        """Attention of one query (B, H, 1, d) over the filled slots."""
        assert self.k is not None and self.v is not None, "empty cache"
        used = min(self.length, self.window)
        scores = (q_t @ self.k[:, :, :used].transpose(-1, -2)) * _scale(q_t, scale)
        return attend(scores, self.v[:, :, :used], None)
