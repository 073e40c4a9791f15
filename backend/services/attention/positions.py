"""Rotary position embedding (RoPE), relative-position matrices and log-n logit scaling.

Layout: LLaMA "rotate_half", i.e. dimension m is paired with dimension m + d/2 and that pair turns by
angle ``pos * base**(-2m/d)``. Angles are always built in float64 and cast to the tensor's dtype at the
end, so that fractional positions (PI, Leaky ReRoPE) and long sequences lose no precision.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch

RelPosMode = Literal["rope", "rerope", "leaky", "pi"]
LognMode = Literal["train", "dagger"]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(a, b) -> (-b, a) on the two halves of the last dimension: multiplication by i per pair."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def rope_tables(
    pos: torch.Tensor | float,
    d: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (..., d/2) of the angles pos * base**(-2m/d), computed in float64, returned in ``dtype``."""
    if d % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {d}")
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)
    ang = torch.as_tensor(pos, dtype=torch.float64, device=device)[..., None] * inv_freq
    return ang.cos().to(dtype), ang.sin().to(dtype)


def position_tables(
    n: int, d: int, base: float = 10000.0, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rope_tables`` of the integer positions 0 .. n-1, memoised: every layer of a prefill needs the same ones.

    The returned tensors are shared: read them, never write into them.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    # inference-mode tensors cannot be saved for backward, so they must not be handed to a later training step
    return _position_tables(n, d, float(base), dtype, device, torch.is_inference_mode_enabled())


@functools.lru_cache(maxsize=4)
def _position_tables(
    n: int, d: int, base: float, dtype: torch.dtype, device: torch.device, inference: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    return rope_tables(torch.arange(n, dtype=torch.float64, device=device), d, base, dtype, device)


def apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, out: torch.Tensor | None = None, scale: float = 1.0
) -> torch.Tensor:
    """(x * cos + rotate_half(x) * sin) * scale, written on the halves to skip building the full-width tables.

    ``out`` (only without autograd): write the result there, e.g. into a padded or blocked buffer, instead of
    a fresh tensor. Without autograd the halves are written in place into one output (one allocation instead
    of seven: on a VM a fresh page costs more than the arithmetic on it; see scripts/bench_attention.py).
    """
    if _needs_grad(x, cos, sin):
        if out is not None:
            raise ValueError("apply_rope(out=...) does not support autograd")
        # q and k split off a fused projection are strided views; on those the half-width ops below run ~3x
        # slower than one copy to contiguous memory followed by them
        a, b = x.contiguous().chunk(2, dim=-1)
        rotated = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
        return rotated if scale == 1.0 else rotated * scale
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    if out is None:
        out = torch.empty(torch.broadcast_shapes(x.shape, cos.shape[:-1] + (x.shape[-1],)), dtype=x.dtype,
                          device=x.device)
    first, second = out[..., :h], out[..., h:]
    torch.mul(a, cos, out=first).addcmul_(b, sin, value=-1.0)
    torch.mul(b, cos, out=second).addcmul_(a, sin)
    return out if scale == 1.0 else out.mul_(scale)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def rope(x: torch.Tensor, pos: torch.Tensor | float, base: float = 10000.0) -> torch.Tensor:
    """Rotate ``x`` (..., n, d) by R^pos; ``pos`` is real-valued and broadcastable to x.shape[:-1]."""
    return apply_rope(x, *rope_tables(pos, x.shape[-1], base, x.dtype, x.device))


def rel_pos(
    nq: int,
    nk: int,
    mode: RelPosMode = "rope",
    window: float | None = None,
    k: float | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """The explicit relative-position matrix P (nq, nk) in float64 for query i at offset + i and key j.

    rope: P = i - j.  rerope: min(i - j, w).  leaky: i - j inside the window, w + (i - j - w) / k past it.
    pi (position interpolation): (i - j) / k.  Entries above the diagonal (j > i) are meaningless for a
    causal model and are returned unclamped.
    """
    r = (torch.arange(nq, dtype=torch.float64)[:, None] + offset) - torch.arange(nk, dtype=torch.float64)[None]
    if mode == "rope":
        return r
    if mode == "pi":
        return r / _need(k, "k")
    w = _need(window, "window")
    if mode == "rerope":
        return r.clamp(max=w)
    if mode == "leaky":
        return torch.where(r < w, r, w + (r - w) / _need(k, "k"))
    raise ValueError(f"unknown relative-position mode {mode!r}")


def _need(value: float | None, name: str) -> float:
    if value is None:
        raise ValueError(f"this mode needs {name}")
    return float(value)


def logn_scale(nq: int, offset: int, train_len: int, mode: LognMode | None) -> torch.Tensor:
    """Per-query-row logit multiplier (nq,) in float64 for query rows at positions offset .. offset+nq-1.

    'train' (bert4keras softmax_plus, used while training): log(max(n, 16)) / log(N), n = visible keys.
    'dagger' (rerope_patch, added post hoc): max(1, log(n) / log(N)); exactly 1 inside the training length.
    """
    n = torch.arange(nq, dtype=torch.float64) + offset + 1  # visible keys in a causal full layer
    if mode == "train":
        return torch.log(n.clamp(min=16)) / math.log(train_len)
    if mode == "dagger":
        return (torch.log(n) / math.log(train_len)).clamp(min=1)
    if mode is None:
        return torch.ones_like(n)
    raise ValueError(f"unknown log-n mode {mode!r}")
