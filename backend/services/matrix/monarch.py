# ruff: noqa: E741  (``l`` is the count of L blocks, as in fly and the spec; renaming it would obscure the maths)
"""Monarch matrices: M = P_out BD(w2) P_mid BD(w1) (Dao et al. 2022; Su, kexue.fm/archives/10249).

One general layout covers every case in the spec, the same one as fly's ``blockdiag_butterfly_multiply``:

* ``w1`` ("R", applied first): ``k`` dense blocks of shape ``(q, p)``; the input has ``n_in = k * p`` features,
  read as ``x[kk * p + pp]``.
* the middle shuffle reads the ``k * q`` intermediate features ``t = kk * q + qq`` as ``(r, l)``:
  ``t = rr * l + ll`` (a reshape-transpose, i.e. P);
* ``w2`` ("L"): ``l`` dense blocks of shape ``(s, r)`` (requires ``l * r == k * q``); the output has
  ``n_out = l * s`` features written as ``y[ss * l + ll]`` (the second P).

Special cases (constructors below):

* square ``M^(n)``, n = m^2: all six sizes equal m; ``w1 = R[k, j, l]`` and ``w2 = L[j, i, k]`` exactly as in the spec;
* general block size ``M^(b, n)``: (k, q, p) = (n/b, b, b), (l, s, r) = (b, n/b, n/b);
* rectangular (spec 1.3): n_in = k*i, n_out = l*j, ``w1`` (k, j, i), ``w2`` (j, l, k);
* block rank ``c``: q = c * l makes every (ll, kk) block of the dense matrix a sum of c rank-1 terms.

Every (ll, kk) block (rows ``ss * l + ll``, columns ``kk * p + pp``) of the dense matrix is a sum of outer products
``w2[ll, :, rr] w1[kk, qq, :]`` over the ``qq`` with ``(kk * q + qq) % l == ll`` (``rr = (kk * q + qq) // l``);
distinct blocks use disjoint parameters, which is why the optimal Frobenius projection is a per-block truncated SVD.

Multiplication keeps the batch as the innermost (fastest) axis: ``x`` (B, n_in) is read as (k, p, B) without a copy,
so both block products are plain BLAS calls on unit-stride operands and the middle shuffle costs nothing (it is a
view). The result comes back as a transposed view of a contiguous (n_out, B) buffer; see ``monarch_matmul``.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

Array = np.ndarray | torch.Tensor


# --------------------------------------------------------------------------------------------------------------
# Permutations and block-diagonal helpers (reference constructions, used by tests and ``dense_reference``)
# --------------------------------------------------------------------------------------------------------------


def reshape_transpose_perm(a: int, c: int) -> np.ndarray:
    """Index vector of P_(a,c): ``(P x) = x[perm]`` with ``P x = x.reshape(a, c).T.reshape(-1)``."""
    return np.arange(a * c).reshape(a, c).T.reshape(-1)


def perm_matrix(perm: np.ndarray) -> np.ndarray:
    """Dense permutation matrix P with ``P @ x == x[perm]``."""
    n = len(perm)
    p = np.zeros((n, n))
    p[np.arange(n), perm] = 1.0
    return p


def block_diag(blocks: np.ndarray) -> np.ndarray:
    """Dense block-diagonal matrix BD(W) from blocks ``W[block, row, col]``."""
    nb, rows, cols = blocks.shape
    out = np.zeros((nb * rows, nb * cols), dtype=blocks.dtype)
    for b in range(nb):
        out[b * rows : (b + 1) * rows, b * cols : (b + 1) * cols] = blocks[b]
    return out


# --------------------------------------------------------------------------------------------------------------
# Conversion helpers: the library accepts numpy arrays and torch tensors and answers in the caller's type
# --------------------------------------------------------------------------------------------------------------


def _to_torch(a: Array) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    arr = np.asarray(a)
    if any(st < 0 for st in arr.strides):  # torch cannot view reversed numpy strides
        arr = arr.copy()
    return torch.from_numpy(arr)


def _to_numpy(a: Array) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _like(result: torch.Tensor, template: Array) -> Array:
    return result if isinstance(template, torch.Tensor) else result.numpy()


def check_shapes(w1_shape: tuple[int, ...], w2_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless (w1, w2) = ((k, q, p), (l, s, r)) with l * r == k * q."""
    if len(w1_shape) != 3 or len(w2_shape) != 3:
        raise ValueError(f"factors must be 3-D (blocks, rows, cols); got {tuple(w1_shape)} and {tuple(w2_shape)}")
    k, q, _ = w1_shape
    l, _, r = w2_shape
    if l * r != k * q:
        raise ValueError(f"w2 blocks must consume w1's k*q = {k * q} outputs; got l*r = {l}*{r} = {l * r}")


# --------------------------------------------------------------------------------------------------------------
# Multiplication kernels (torch; batch innermost)
# --------------------------------------------------------------------------------------------------------------


def _batch_inner(x: torch.Tensor, blocks: int, width: int) -> torch.Tensor:
    """View a (B, blocks*width) matrix as (blocks, width, B) without copying when its layout allows it.

    Row-major x gives unit stride along ``width`` (a transposed operand for BLAS); a transposed view of a
    contiguous (n, B) buffer, which is what our kernels return, gives unit stride along B. Either way no copy.
    """
    bsz = x.shape[0]
    if x.is_contiguous():
        return x.view(bsz, blocks, width).permute(1, 2, 0)
    if x.t().is_contiguous():
        return x.t().view(blocks, width, bsz)
    return x.contiguous().view(bsz, blocks, width).permute(1, 2, 0)


class _Workspace(threading.local):
    """Per-thread scratch for the per-chunk intermediates, which never leave a call.

    Reusing them keeps them cache-resident and spares the allocator; they are only read before this thread's next
    kernel call, so results handed to the caller and tensors autograd saves are always allocated fresh.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def get(self, role: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        numel = math.prod(shape)
        key = (role, like.dtype, like.device)
        buf = self.buffers.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=like.dtype, device=like.device)
            self.buffers[key] = buf
        return buf[:numel].view(shape)


_WORKSPACE = _Workspace()

# Rows of the batch processed per step: the widest row block (input, intermediate or output) is about this many
# bytes. Smaller chunks keep the intermediate in L2 but make each of the 2 * blocks small GEMMs narrower, and MKL's
# efficiency falls with the width; on this 2-core VM 16 MiB (1024 rows at n = 4096) was within 3% of the best in
# every sweep (scripts/bench_matrix.py --profile), 2 MiB was 25% slower under load.
CHUNK_BYTES = 16 << 20
_MIN_CHUNK_ROWS = 16
# Results at least this large come from numpy, whose allocator asks for transparent huge pages, and are recycled
# through _RESULT_POOL once nothing refers to them any more (see _fresh_output).
_HUGE_PAGE_BYTES = 4 << 20
# The most bytes of recycled result buffers kept for reuse (all threads together); 0 turns recycling off.
RESULT_POOL_BYTES = 128 << 20
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class _ResultPool:
    """Large result buffers handed back once the caller has dropped every reference to them.

    A CPU counterpart of torch's CUDA caching allocator, for the one allocation a multiply makes. Each result is a
    numpy view of a raw buffer; the torch tensor (and every view of it, and every ``.numpy()`` of those) keeps that
    view alive through its storage, so when the view is finalized nothing can reach the memory any more and the raw
    buffer can back the next result of the same size. Its pages are then already mapped, which spares the
    first-touch page faults of a fresh buffer (n = 4096, B = 2048: 18.5 against 23.7 ms per call back-to-back).
    At most ``RESULT_POOL_BYTES`` are kept.
    """

    def __init__(self) -> None:
        # reentrant: a finalizer may run (via the garbage collector) while this thread holds the lock in take()
        self._lock = threading.RLock()
        self._free: dict[int, list[np.ndarray]] = {}
        self.held_bytes = 0

    def take(self, shape: tuple[int, ...], dtype: type[np.generic]) -> torch.Tensor:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        raw = None
        with self._lock:
            spare = self._free.get(nbytes)
            if spare:
                raw = spare.pop()
                self.held_bytes -= nbytes
        if raw is None:
            raw = np.empty(nbytes, dtype=np.uint8)
        result = raw.view(dtype).reshape(shape)
        finalizer = weakref.finalize(result, self._give_back, raw)
        finalizer.atexit = False
        return torch.from_numpy(result)

    def _give_back(self, raw: np.ndarray) -> None:
        with self._lock:
            if self.held_bytes + raw.nbytes <= RESULT_POOL_BYTES:
                self._free.setdefault(raw.nbytes, []).append(raw)
                self.held_bytes += raw.nbytes

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self.held_bytes = 0


_RESULT_POOL = _ResultPool()


def clear_workspace() -> None:
    """Release this thread's scratch buffers and every recycled result buffer."""
    _WORKSPACE.buffers.clear()
    _RESULT_POOL.clear()


def _chunk_rows(bsz: int, width: int, itemsize: int) -> int:
    return max(1, min(bsz, max(_MIN_CHUNK_ROWS, CHUNK_BYTES // (itemsize * width))))


def _fresh_output(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A result buffer nobody else can see.

    A fresh 32 MiB buffer from torch.empty is mmapped in 4 KiB pages and every first touch faults: ~15 ms per call at
    n = 4096, B = 2048, as long as the whole multiply should take. numpy's allocator marks arrays >= 4 MiB
    MADV_HUGEPAGE, so the same buffer faults in 2 MiB pages (measured 5.7 ms instead of 14.5 ms for 32 MiB); and
    once a caller drops a result, the pool hands its already-mapped pages to the next result of the same size,
    so a steady stream of multiplies faults only on the first. The tensor shares the array's memory and keeps it
    alive; the only difference from torch.empty is that it cannot be resized.
    """
    nbytes = math.prod(shape) * like.element_size()
    if like.device.type == "cpu" and like.dtype in _NUMPY_DTYPES and nbytes >= _HUGE_PAGE_BYTES:
        return _RESULT_POOL.take(shape, _NUMPY_DTYPES[like.dtype])
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def _result(rows: int, cols: int, like: torch.Tensor, contiguous: bool, out: torch.Tensor | None) -> torch.Tensor:
    """The (rows, cols) result: row-major, or a transposed view of a (cols, rows) buffer (batch innermost)."""
    if out is not None:
        return out
    if contiguous:
        return _fresh_output((rows, cols), like)
    return _fresh_output((cols, rows), like).t()


def _forward_kernel(
    x2: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    *,
    keep_z: bool = True,
    contiguous: bool = False,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """y = M x for each row of x2 (B, n_in). Returns (y (B, n_out), the intermediate z (k, q, B) if ``keep_z``).

    y is row-major with ``contiguous`` (or when ``out`` is row-major), else a transposed view of a (n_out, B) buffer.
    The batch is walked in chunks of rows: per chunk one batched GEMM applies R (x read in place as (k, p, rows)),
    the middle shuffle P is a view of the chunk's intermediate, and one batched GEMM applies L, writing straight into
    the result when it is batch-innermost (bmm's out= accepts that strided view), else into a scratch block that one
    2-D transpose copies into the row-major result.
    """
    k, q, p = w1.shape
    l, s, r = w2.shape
    bsz, n_out = x2.shape[0], l * s
    xin = _batch_inner(x2, k, p)
    z_all = torch.empty(k * q, bsz, dtype=x2.dtype, device=x2.device) if keep_z else None
    y = _result(bsz, n_out, x2, contiguous, out)
    row_major = y.is_contiguous()
    y_blocks = None if row_major else y.t().view(s, l, bsz)  # y[b, ss*l + ll] = y_blocks[ss, ll, b]
    rows = _chunk_rows(bsz, max(k * p, k * q, n_out), x2.element_size())
    for start in range(0, bsz, rows):
        stop = min(bsz, start + rows)
        c = stop - start
        z = z_all[:, start:stop] if z_all is not None else _WORKSPACE.get("z", (k * q, c), x2)
        torch.bmm(w1, xin[:, :, start:stop], out=z.view(k, q, c))
        zv = z.view(r, l, c).transpose(0, 1)  # the middle P: intermediate t = rr*l + ll feeds L block ll
        if row_major:
            block = _WORKSPACE.get("y", (s, l, c), x2)
            torch.bmm(w2, zv, out=block.transpose(0, 1))
            y[start:stop].copy_(block.view(n_out, c).t())  # contiguous <- transposed 2-D: torch's blocked copy
        else:
            torch.bmm(w2, zv, out=y_blocks[:, :, start:stop].transpose(0, 1))
    return y, (z_all.view(k, q, bsz) if z_all is not None else None)


def _backward_kernel(
    gy: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    *,
    x2: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    need_input: bool = True,
    contiguous: bool = False,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """M^T applied to each row of gy (B, n_out), and the factor gradients, in one pass over the batch.

    Returns (gx = gy M, i.e. M^T per row, or None; dL/dw1 if ``x2`` is given; dL/dw2 if the forward's ``z`` is
    given). The factor gradients are sums over the batch, accumulated chunk by chunk (baddbmm), so neither gy nor
    the intermediate g is ever transposed or stored whole.
    """
    k, q, p = w1.shape
    l, s, r = w2.shape
    bsz, n_in, n_out = gy.shape[0], k * p, l * s
    gy_t = gy.t() if gy.t().is_contiguous() else None  # already batch-innermost: no per-chunk transpose needed
    xin = _batch_inner(x2, k, p) if x2 is not None else None
    gw1 = torch.zeros_like(w1) if x2 is not None else None
    gw2 = torch.zeros_like(w2) if z is not None else None
    gx = _result(bsz, n_in, gy, contiguous, out) if need_input else None
    row_major = gx is not None and gx.is_contiguous()
    gx_blocks = None if gx is None or row_major else gx.t().view(k, p, bsz)
    z_rows = z.reshape(k * q, bsz) if z is not None else None
    w1_t, w2_t = w1.transpose(1, 2), w2.transpose(1, 2)
    rows = _chunk_rows(bsz, max(n_in, k * q, n_out), gy.element_size())
    for start in range(0, bsz, rows):
        stop = min(bsz, start + rows)
        c = stop - start
        if gy_t is not None:
            yc = gy_t[:, start:stop]
        else:
            yc = _WORKSPACE.get("gy", (n_out, c), gy).copy_(gy[start:stop].t())
        yv = yc.view(s, l, c).transpose(0, 1)  # (l, s, c): rows of L block ll
        if gw2 is not None:
            gw2.baddbmm_(yv, z_rows[:, start:stop].view(r, l, c).transpose(0, 1).transpose(1, 2))
        g = _WORKSPACE.get("g", (k * q, c), gy)
        torch.bmm(w2_t, yv, out=g.view(r, l, c).transpose(0, 1))  # dL/dz, back through the middle P
        gk = g.view(k, q, c)
        if gw1 is not None:
            gw1.baddbmm_(gk, xin[:, :, start:stop].transpose(1, 2))
        if gx is None:
            continue
        if row_major:
            block = _WORKSPACE.get("gx", (k, p, c), gy)
            torch.bmm(w1_t, gk, out=block)
            gx[start:stop].copy_(block.view(n_in, c).t())
        else:
            torch.bmm(w1_t, gk, out=gx_blocks[:, :, start:stop])
    return gx, gw1, gw2


class _MonarchFunction(torch.autograd.Function):
    """Autograd for the fast kernel: the backward pass reuses the same chunked, batch-innermost GEMMs."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, contiguous: bool
    ) -> torch.Tensor:
        y, z = _forward_kernel(x2, w1, w2, keep_z=True, contiguous=contiguous)
        ctx.save_for_backward(x2, w1, w2, z)
        return y

    @staticmethod
    def backward(ctx, gy: torch.Tensor):  # type: ignore[override]
        x2, w1, w2, z = ctx.saved_tensors
        need_x, need_w1, need_w2, _ = ctx.needs_input_grad
        # the input's gradient in the input's own layout: a row-major gradient into a model's row-major activations
        # keeps the elementwise ops around the layer on contiguous memory
        gx2, gw1, gw2 = _backward_kernel(
            gy, w1, w2, x2=x2 if need_w1 else None, z=z if need_w2 else None, need_input=need_x,
            contiguous=x2.is_contiguous(),
        )
        return gx2, gw1, gw2, None


def _operands(a: Array, w1: Array, w2: Array, *, transposed: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The input and factors as torch tensors, checked: factor shapes, the input's width, one dtype."""
    at, w1t, w2t = _to_torch(a), _to_torch(w1), _to_torch(w2)
    check_shapes(tuple(w1t.shape), tuple(w2t.shape))
    k, _, p = w1t.shape
    l, s, _ = w2t.shape
    width, what = (l * s, "M^T") if transposed else (k * p, "this Monarch matrix")
    if at.shape[-1] != width:
        raise ValueError(f"input has {at.shape[-1]} features; {what} takes {width}")
    if not (at.dtype == w1t.dtype == w2t.dtype):
        raise TypeError(f"dtype mismatch: input {at.dtype}, w1 {w1t.dtype}, w2 {w2t.dtype}")
    return at, w1t, w2t


def _check_out(out: torch.Tensor | None, shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor | None:
    """``out`` must be a (B, n) tensor of the input's dtype, row-major or the transpose of a contiguous (n, B)."""
    if out is None:
        return None
    if not isinstance(out, torch.Tensor):
        raise TypeError("out must be a torch tensor")
    if tuple(out.shape) != shape or out.dtype != like.dtype or out.device != like.device:
        raise ValueError(f"out must be a {like.dtype} tensor of shape {shape}, got {out.dtype} {tuple(out.shape)}")
    if not (out.is_contiguous() or out.t().is_contiguous()):
        raise ValueError("out must be contiguous or the transpose of a contiguous tensor")
    return out


def monarch_matmul(x: Array, w1: Array, w2: Array, *, contiguous: bool = False, out: torch.Tensor | None = None) -> Array:
    """Compute ``x @ M^T`` (i.e. M applied to every row) for x of shape (..., n_in); float32 or float64.

    Works on numpy arrays (zero-copy through torch) and on torch tensors, with autograd. The result of a 2-D input
    is a (B, n_out) *transposed view* of a contiguous (n_out, B) buffer unless ``contiguous=True``: returning the
    view skips one full transpose of the output, and feeding it to another Monarch multiply is copy-free too.
    ``out`` (2-D inputs, no autograd): a preallocated (B, n_out) tensor, row-major or transposed-contiguous, written
    in place and returned, as with torch's ``out=``.
    """
    xt, w1t, w2t = _operands(x, w1, w2, transposed=False)
    k, _, p = w1t.shape
    l, s, _ = w2t.shape
    lead = xt.shape[:-1]
    x2 = xt.reshape(-1, k * p)
    contiguous = contiguous or len(lead) != 1
    wants_grad = torch.is_grad_enabled() and (x2.requires_grad or w1t.requires_grad or w2t.requires_grad)
    if out is not None and (len(lead) != 1 or wants_grad):
        raise ValueError("out= takes a 2-D input and no autograd")
    out = _check_out(out, (x2.shape[0], l * s), x2)
    if x2.shape[0] == 0:
        y = x2.new_zeros(0, l * s) if out is None else out
    elif wants_grad:
        y = _MonarchFunction.apply(x2, w1t, w2t, contiguous)
    else:
        with torch.no_grad():
            y = _forward_kernel(x2, w1t, w2t, keep_z=False, contiguous=contiguous, out=out)[0]
    if out is not None:
        return out
    return _like(y.reshape(*lead, l * s), x)


def monarch_matmul_transposed(
    y: Array, w1: Array, w2: Array, *, contiguous: bool = False, out: torch.Tensor | None = None
) -> Array:
    """Compute ``y @ M`` (i.e. M^T applied to every row) for y of shape (..., n_out). No autograd."""
    yt, w1t, w2t = _operands(y, w1, w2, transposed=True)
    k, _, p = w1t.shape
    l, s, _ = w2t.shape
    lead = yt.shape[:-1]
    y2 = yt.reshape(-1, l * s)
    contiguous = contiguous or len(lead) != 1
    if out is not None and len(lead) != 1:
        raise ValueError("out= takes a 2-D input")
    out = _check_out(out, (y2.shape[0], k * p), y2)
    with torch.no_grad():
        if y2.shape[0] == 0:
            x = y2.new_zeros(0, k * p) if out is None else out
        else:
            x = _backward_kernel(y2, w1t, w2t, contiguous=contiguous, out=out)[0]
    if out is not None:
        return out
    return _like(x.reshape(*lead, k * p), y)


def monarch_matmul_einsum(x: Array, w1: Array, w2: Array) -> Array:
    """Reference multiply written with einsum (slow, layout-naive); for tests and the benchmark's baseline."""
    xt, w1t, w2t = _to_torch(x), _to_torch(w1), _to_torch(w2)
    k, q, p = w1t.shape
    l, s, r = w2t.shape
    lead = xt.shape[:-1]
    z = torch.einsum("bkp,kqp->bkq", xt.reshape(-1, k, p), w1t).reshape(-1, r, l)  # t = kk*q+qq = rr*l+ll
    y = torch.einsum("brl,lsr->bsl", z, w2t).reshape(*lead, s * l)
    return _like(y, x)


def monarch_matmul_fly(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The bmm + transposes sequence of fly's ``BlockdiagButterflyMultiply.forward`` (benchmark baseline)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    bsz = x.shape[0]
    out1 = torch.bmm(x.reshape(bsz, k, p).transpose(0, 1), w1.transpose(-1, -2))  # (k, B, q)
    out1 = out1.transpose(0, 1).reshape(bsz, r, l).transpose(-1, -2).contiguous().transpose(0, 1)  # (l, B, r)
    out2 = torch.bmm(out1, w2.transpose(-1, -2))  # (l, B, s)
    return out2.permute(1, 2, 0).reshape(bsz, s * l)


# --------------------------------------------------------------------------------------------------------------
# Dense <-> factors
# --------------------------------------------------------------------------------------------------------------


def mid_perm(k: int, q: int, l: int, r: int) -> np.ndarray:
    """Index vector of the middle shuffle: input of L-block ll, column rr, is intermediate t = rr*l + ll."""
    # position (ll*r + rr) of BD(w2)'s input vector holds t = rr*l + ll
    return reshape_transpose_perm(r, l)


def out_perm(l: int, s: int) -> np.ndarray:
    """Index vector of the output shuffle: y[ss*l + ll] = (BD(w2) z)[ll*s + ss]."""
    return reshape_transpose_perm(l, s)


def monarch_to_dense(w1: Array, w2: Array) -> Array:
    """Dense (n_out, n_in) matrix of the factors, by direct index arithmetic (vectorised, exact)."""
    a1, a2 = _to_numpy(w1), _to_numpy(w2)
    check_shapes(a1.shape, a2.shape)
    k, q, p = a1.shape
    l, s, r = a2.shape
    t = np.arange(k * q).reshape(k, q)
    ll, rr = t % l, t // l  # (k, q) each: the L block and its column fed by intermediate t = kk*q + qq
    kk = np.repeat(np.arange(k), q).reshape(k, q)
    # term (kk, qq) is the outer product w2[ll, :, rr] x w1[kk, qq, :] added to block (ll, kk)
    outer = np.einsum("kqs,kqp->kqsp", a2[ll, :, rr], a1)
    blocks = np.zeros((l, k, s, p), dtype=np.result_type(a1, a2))
    np.add.at(blocks, (ll, kk), outer)
    dense4 = blocks.transpose(2, 0, 1, 3)  # (s, l, k, p): row ss*l + ll, column kk*p + pp
    dense = dense4.reshape(s * l, k * p)
    return torch.from_numpy(dense) if isinstance(w1, torch.Tensor) else dense


def dense_reference(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Dense matrix built literally as P_out BD(w2) P_mid BD(w1) with permutation matrices (test oracle)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    pm = perm_matrix(mid_perm(k, q, l, r))
    po = perm_matrix(out_perm(l, s))
    return po @ block_diag(w2) @ pm @ block_diag(w1)


def _block_view(a: np.ndarray, k: int, p: int, l: int, s: int) -> np.ndarray:
    """Blocks of a (n_out, n_in) matrix as (l, k, s, p): entry [ll, kk, ss, pp] = a[ss*l + ll, kk*p + pp]."""
    return a.reshape(s, l, k, p).transpose(1, 2, 0, 3)


@dataclass
class Projection:
    """Result of the optimal Frobenius projection onto a Monarch layout."""

    w1: np.ndarray
    w2: np.ndarray
    error_fro: float  # ||A - M*||_F, from the per-block tail singular values
    norm_fro: float  # ||A||_F
    block_singular_values: np.ndarray  # (l, k, min(s, p)), descending per block

    @property
    def relative_error(self) -> float:
        return self.error_fro / self.norm_fro if self.norm_fro > 0 else 0.0


def block_ranks(k: int, q: int, l: int) -> np.ndarray:
    """(l, k) array: how many rank-1 terms each (ll, kk) block of the layout can hold."""
    t = np.arange(k * q).reshape(k, q)
    counts = np.zeros((l, k), dtype=np.int64)
    np.add.at(counts, (t % l, np.repeat(np.arange(k), q).reshape(k, q)), 1)
    return counts


def project(a: Array, w1_shape: tuple[int, int, int], w2_shape: tuple[int, int, int]) -> Projection:
    """Optimal Frobenius approximation of dense ``a`` (n_out, n_in) in the given Monarch layout.

    Each (ll, kk) block is approximated by its truncated SVD of the rank the layout allows (Eckart-Young per block;
    the blocks share no parameters), so the result is globally optimal and the error is exact:
    ``||A - M*||_F^2 = sum over blocks of the tail singular values squared``. Factors are split as sqrt(s) u, sqrt(s) v.
    """
    check_shapes(w1_shape, w2_shape)
    k, q, p = w1_shape
    l, s, r = w2_shape
    raw = _to_numpy(a)
    arr = np.asarray(raw, dtype=np.complex128 if np.iscomplexobj(raw) else np.float64)  # complex: e.g. the DFT
    if arr.shape != (l * s, k * p):
        raise ValueError(f"matrix is {arr.shape}; this layout needs {(l * s, k * p)}")
    blocks = _block_view(arr, k, p, l, s)  # (l, k, s, p)
    # Batched over (l, k). One BLAS thread: these blocks are tiny, and a threaded BLAS synchronising on every one of
    # the m^2 small SVDs was measured 36x slower on a busy 2-core machine (98 s instead of 3 s at n = 4096).
    with threadpool_limits(1, user_api="blas"):
        u, sv, vt = np.linalg.svd(blocks, full_matrices=False)
    t = np.arange(k * q).reshape(k, q)
    ll, rr, tau = t % l, t // l, (np.arange(q) // l)[None, :].repeat(k, 0)
    kk = np.repeat(np.arange(k), q).reshape(k, q)
    ranks = block_ranks(k, q, l)
    nsv = sv.shape[-1]
    valid = tau < nsv  # a block of rank c > min(s, p) gets zero factors for the extra terms
    tau_c = np.minimum(tau, nsv - 1)
    root = np.sqrt(sv[ll, kk, tau_c]) * valid  # (k, q)
    w1 = vt[ll, kk, tau_c, :] * root[..., None]  # (k, q, p)
    w2 = np.empty((l, s, r), dtype=arr.dtype)
    w2[ll, :, rr] = u[ll, kk, :, tau_c] * root[..., None]
    # exact error: singular values beyond each block's allowed rank
    idx = np.arange(nsv)[None, None, :]
    tail = np.where(idx >= ranks[..., None], sv, 0.0)
    err = math.sqrt(float(np.sum(tail**2)))
    return Projection(w1=w1, w2=w2, error_fro=err, norm_fro=float(np.linalg.norm(arr)), block_singular_values=sv)


# --------------------------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------------------------


def square_layout(n: int, block_rank: int = 1) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Shapes of M^(n) (n = m^2, 2 n^1.5 parameters), or its block-rank-c generalisation (c times the parameters)."""
    m = math.isqrt(n)
    if m * m != n:
        raise ValueError(f"n = {n} is not a perfect square")
    if not 1 <= block_rank <= m:
        raise ValueError(f"block rank must be in [1, {m}]")
    return (m, block_rank * m, m), (m, m, block_rank * m)


def block_size_layout(n: int, b: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Shapes of M^(b,n) = P_(b,n/b) L P_(n/b,b) R: R has n/b blocks b x b, L has b blocks (n/b) x (n/b)."""
    if b < 1 or n % b:
        raise ValueError(f"block size {b} must divide n = {n}")
    return (n // b, b, b), (b, n // b, n // b)


def rectangular_layout(k: int, j: int, i: int, l: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Spec 1.3: n_in = k*i, n_out = l*j; w1 (k, j, i) = k blocks j x i, w2 (j, l, k) = j blocks l x k."""
    return (k, j, i), (j, l, k)


def linear_layout(in_features: int, out_features: int, nblocks: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """fly MonarchLinear shapes (features zero-padded up to nblocks * ceil(features / nblocks))."""
    in_blk = -(-in_features // nblocks)
    out_blk = -(-out_features // nblocks)
    if nblocks * in_blk < nblocks * out_blk:
        return (nblocks, in_blk, in_blk), (nblocks, out_blk, in_blk)
    return (nblocks, out_blk, in_blk), (nblocks, out_blk, out_blk)


def param_count(w1_shape: tuple[int, int, int], w2_shape: tuple[int, int, int]) -> int:
    return math.prod(w1_shape) + math.prod(w2_shape)


def square_factorisation(n: int) -> tuple[int, int]:
    """The factor pair (a, b), a >= b, a * b = n, closest to sqrt(n) (fly's choice for non-square n)."""
    b = math.isqrt(n)
    while n % b:
        b -= 1
    return n // b, b


# --------------------------------------------------------------------------------------------------------------
# The matrix object
# --------------------------------------------------------------------------------------------------------------


class Monarch:
    """A Monarch matrix held by its factors; optionally transposed (then it represents M(w1, w2)^T).

    ``w1`` and ``w2`` are numpy arrays or torch tensors of the same dtype. Products return the caller's type.
    """

    def __init__(self, w1: Array, w2: Array, *, transposed: bool = False) -> None:
        check_shapes(tuple(w1.shape), tuple(w2.shape))
        self.w1, self.w2, self.transposed = w1, w2, transposed

    # shapes -------------------------------------------------------------------------------------------------
    @property
    def base_shape(self) -> tuple[int, int]:
        k, _, p = self.w1.shape
        l, s, _ = self.w2.shape
        return l * s, k * p

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.base_shape
        return (cols, rows) if self.transposed else (rows, cols)

    @property
    def nparams(self) -> int:
        return param_count(tuple(self.w1.shape), tuple(self.w2.shape))

    # constructors -----------------------------------------------------------------------------------------------
    @classmethod
    def random(
        cls, w1_shape: tuple[int, int, int], w2_shape: tuple[int, int, int], *, seed: int = 0, dtype=np.float64
    ) -> Monarch:
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal(w1_shape).astype(dtype), rng.standard_normal(w2_shape).astype(dtype))

    @classmethod
    def from_dense(
        cls, a: Array, w1_shape: tuple[int, int, int] | None = None, w2_shape: tuple[int, int, int] | None = None
    ) -> tuple[Monarch, Projection]:
        """Optimal Frobenius projection; the layout defaults to M^(n) for a square n = m^2 matrix."""
        if w1_shape is None or w2_shape is None:
            rows, cols = a.shape
            if rows != cols:
                raise ValueError("give the layout for a non-square matrix")
            w1_shape, w2_shape = square_layout(rows)
        proj = project(a, w1_shape, w2_shape)
        return cls(proj.w1, proj.w2), proj

    # algebra -----------------------------------------------------------------------------------------------------
    def to_dense(self) -> Array:
        d = monarch_to_dense(self.w1, self.w2)
        return d.T if self.transposed else d

    @property
    def T(self) -> Monarch:
        return Monarch(self.w1, self.w2, transposed=not self.transposed)

    def matmul(self, x: Array, *, contiguous: bool = False) -> Array:
        """Apply the matrix to every row of x (..., ncols): returns x @ self^T, shape (..., nrows)."""
        if self.transposed:
            return monarch_matmul_transposed(x, self.w1, self.w2, contiguous=contiguous)
        return monarch_matmul(x, self.w1, self.w2, contiguous=contiguous)

    def inverse(self, *, cond_max: float = 1e12) -> Monarch:
        """M^{-1} = BD(w1)^{-1} P_mid^T BD(w2)^{-1} P_out^T: 2 sets of block inverses, O(n^2) for M^(n).

        Needs square blocks and every block well conditioned (``cond < cond_max``), else ValueError.
        """
        k, q, p = self.w1.shape
        l, s, r = self.w2.shape
        if q != p or s != r:
            raise ValueError("inverse needs square blocks (q == p and s == r)")
        b1, b2 = _to_numpy(self.w1).astype(np.float64), _to_numpy(self.w2).astype(np.float64)
        with threadpool_limits(1, user_api="blas"):  # many tiny blocks: see ``project``
            worst = max(float(np.max(np.linalg.cond(b1))), float(np.max(np.linalg.cond(b2))))
            if not np.isfinite(worst) or worst > cond_max:
                raise ValueError(f"a block is singular or ill-conditioned (condition number {worst:.3g})")
            inv1 = np.linalg.inv(b1).transpose(0, 2, 1).astype(_to_numpy(self.w1).dtype)
            inv2 = np.linalg.inv(b2).transpose(0, 2, 1).astype(_to_numpy(self.w2).dtype)
        if isinstance(self.w1, torch.Tensor):
            inv1, inv2 = torch.from_numpy(inv1), torch.from_numpy(inv2)
        # The inverse has the shape of a transposed Monarch with blocks inv(.)^T; inverting a transposed one flips back.
        return Monarch(inv1, inv2, transposed=not self.transposed)
