"""Attention tests: float64 random inputs (one torch thread comes from tests/conftest.py)."""

from __future__ import annotations

import torch


def qkv(B: int = 2, H: int = 2, n: int = 24, d: int = 8, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, d, generator=gen, dtype=dtype) for _ in range(3)]
