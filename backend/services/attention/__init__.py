"""HWFA + ReRoPE attention library (torch): RoPE, ReRoPE / Leaky ReRoPE, window attention, HWFA stacks.

Public entry point: ``rerope_attention(q, k, v, window, leaky_k=None)`` on un-rotated (B, H, n, d) tensors.
See functional.py (kernels and caches), positions.py (RoPE, relative positions, log n) and model.py (stacks).
"""

from backend.services.attention.functional import (
    KVCache,
    RingKVCache,
    causal_mask,
    naive_relpos_attention,
    rerope_attention,
    rerope_decode_step,
    rope_attention,
    window_attention,
)
from backend.services.attention.model import LM, InferencePos, LayerSpec, ModelConfig, plan, to_inference
from backend.services.attention.positions import logn_scale, rel_pos, rope, rotate_half

__all__ = [
    "LM",
    "InferencePos",
    "KVCache",
    "LayerSpec",
    "ModelConfig",
    "RingKVCache",
    "causal_mask",
    "logn_scale",
    "naive_relpos_attention",
    "plan",
    "rel_pos",
    "rerope_attention",
    "rerope_decode_step",
    "rope",
    "rope_attention",
    "rotate_half",
    "to_inference",
    "window_attention",
]
