"""Small causal LMs whose layers are full or window attention with RoPE / NoPE, as in HWFA and HWFA2.

- baseline: every layer full causal RoPE (optionally with log-n scaling while training).
- HWFA (Su, post 9): layers 1..L-1 are window RoPE layers, the last layer is full NoPE with log-n scaling.
- HWFA2 (Su, post 14): window RoPE layers, except f full RoPE + log-n layers at index i*L/(f+1); at inference
  those full layers switch to ReRoPE (``set_inference``), the window layers are left alone.

Post-Norm blocks (x = norm(x + f(x))) as in Su's GAU runs. Inference-time position tricks (PI, ReRoPE,
Leaky ReRoPE, post-hoc log n) apply to the full RoPE layers only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from backend.services.attention.functional import (
    KVCache,
    ReRoPECache,
    RingKVCache,
    attend,
    rerope_attention,
    rerope_decode_step,
    rope_attention,
    window_attention,
)
from backend.services.attention.positions import logn_scale, position_tables, rope

Kind = Literal["full", "window"]
Pos = Literal["rope", "nope"]


@dataclass(frozen=True)
class LayerSpec:
    kind: Kind = "full"
    window: int | None = None  # window layers only
    pos: Pos = "rope"
    logn: Literal["train"] | None = None  # log-n scaling used while training (full layers)


@dataclass
class ModelConfig:
    layers: list[LayerSpec]
    vocab: int = 256
    d_model: int = 64
    n_heads: int = 2
    train_len: int = 128  # N: the training length, also the log-n reference length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        data["layers"] = [LayerSpec(**spec) for spec in data["layers"]]
        return cls(**data)


@dataclass(frozen=True)
class InferencePos:
    """How full RoPE layers encode positions at inference. Training always uses plain RoPE."""

    mode: Literal["rope", "pi", "rerope", "leaky"] = "rope"
    window: int | None = None  # rerope / leaky
    k: float | None = None  # pi: interpolation factor; leaky: slope 1/k past the window
    logn_dagger: bool = False  # post-hoc log n (max(1, log_N n)) on layers trained without log n


def plan(
    variant: Literal["baseline", "hwfa", "hwfa2"],
    n_layers: int,
    train_len: int,
    *,
    window: int | None = None,
    n_full: int = 1,
    alpha: float = 0.75,
    logn: bool = False,
) -> list[LayerSpec]:
    """The layer list of a variant (see the module docstring)."""
    if variant == "baseline":
        return [LayerSpec("full", None, "rope", "train" if logn else None)] * n_layers
    if variant == "hwfa":
        # largest w with (w - 1)(L - 1) + 1 <= alpha * N, so every window feature sees at most alpha * N tokens
        w = window or int((alpha * train_len - 1) // (n_layers - 1)) + 1
        return [LayerSpec("window", w, "rope")] * (n_layers - 1) + [LayerSpec("full", None, "nope", "train")]
    if variant == "hwfa2":
        if window is None:
            raise ValueError("hwfa2 needs the window of its window layers")
        full = {i * n_layers // (n_full + 1) for i in range(1, n_full + 1)}
        return [
            LayerSpec("full", None, "rope", "train") if i in full else LayerSpec("window", window, "rope")
            for i in range(n_layers)
        ]
    raise ValueError(f"unknown variant {variant!r}")


class Block(nn.Module):
    """One Post-Norm block: attention (kind/pos per its LayerSpec) then a GELU MLP."""

    def __init__(self, spec: LayerSpec, d_model: int, n_heads: int, train_len: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        if spec.kind == "window" and not spec.window:
            raise ValueError("a window layer needs a window")
        self.spec, self.n_heads, self.head_dim, self.train_len = spec, n_heads, d_model // n_heads, train_len
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model, bias=False), nn.GELU(), nn.Linear(4 * d_model, d_model, bias=False)
        )
        self.norm1, self.norm2 = nn.RMSNorm(d_model), nn.RMSNorm(d_model)
        self.inference = InferencePos()

    # -- helpers ------------------------------------------------------------------------------------------
    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, n, _ = x.shape
        q, k, v = self.qkv(x).view(B, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def _logn_mode(self) -> str | None:
        if self.spec.logn:
            return self.spec.logn
        if self.inference.logn_dagger and self.spec.kind == "full" and self.spec.pos == "rope":
            return "dagger"
        return None

    def _logn(self, nq: int, offset: int) -> torch.Tensor | None:
        mode = self._logn_mode()
        return None if mode is None else logn_scale(nq, offset, self.train_len, mode)

    # -- full sequence ------------------------------------------------------------------------------------
    def attention(self, x: torch.Tensor) -> torch.Tensor:
        B, n, _ = x.shape
        q, k, v = self._split(x)
        spec, inf = self.spec, self.inference
        if spec.kind == "window":
            tables = position_tables(n, self.head_dim, dtype=q.dtype, device=x.device) if spec.pos == "rope" else None
            out = window_attention(q, k, v, spec.window, rope_tables=tables)  # RoPE applied inside the kernel
        elif spec.pos == "nope":
            logn = self._logn(n, 0)
            q = q if logn is None else q * logn.to(device=q.device, dtype=q.dtype)[:, None]
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif inf.mode == "rope":
            out = rope_attention(q, k, v, logn=self._logn(n, 0))
        elif inf.mode == "pi":
            out = rope_attention(q, k, v, logn=self._logn(n, 0), pos_scale=1.0 / float(inf.k))
        else:
            leaky = float(inf.k) if inf.mode == "leaky" else None
            out = rerope_attention(q, k, v, int(inf.window), leaky, logn=self._logn(n, 0))
        return self.proj(out.transpose(1, 2).reshape(B, n, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.feed_forward(x))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The GELU MLP of the block."""
        up, gelu, down = self.mlp
        h = up(x)
        if torch.is_grad_enabled():
            return down(gelu(h))
        # Without autograd, the same GELU in place (bit-identical): at n = 4096 a second fresh n x 4d tensor per
        # layer (4 MiB: page faults, cache misses) cost more than the GELU itself, ~1-2 ms per layer in any stack.
        return down(torch.ops.aten.gelu_(h, approximate=gelu.approximate))

    # -- incremental decoding -----------------------------------------------------------------------------
    def new_cache(self) -> KVCache | RingKVCache:
        """Window layers keep a ring buffer of w rotated keys; full layers a growing cache, which for ReRoPE /
        Leaky layers also keeps each key's rotated forms (``ReRoPECache``), so no step re-rotates the cache.
        Make the caches after ``set_inference``: a cache belongs to one position mode."""
        if self.spec.kind == "window":
            return RingKVCache(self.spec.window)
        if self.spec.pos == "rope" and self.inference.mode in ("rerope", "leaky"):
            leaky = float(self.inference.k) if self.inference.mode == "leaky" else None
            return ReRoPECache(int(self.inference.window), leaky)
        return KVCache()

    def _rotates_cache(self) -> bool:
        # ReRoPE/Leaky positions are non-linear in j, so their keys must be cached un-rotated.
        return self.spec.pos == "rope" and self.inference.mode in ("rope", "pi")

    def step_attention(self, x_t: torch.Tensor, cache: KVCache | RingKVCache, t: int) -> torch.Tensor:
        """Attention output for one new token at position t (x_t: (B, 1, d_model))."""
        q, k, v = self._split(x_t)
        spec, inf = self.spec, self.inference
        if isinstance(cache, RingKVCache):
            if spec.pos == "rope":
                q, k = rope(q, float(t)), rope(k, float(t))
            cache.append(k, v)
            out = cache.attend(q)
        else:
            logn = self._logn(1, t)
            factor = None if logn is None else float(logn[0])
            if isinstance(cache, ReRoPECache) and (
                self._rotates_cache()
                or (cache.window, cache.leaky_k) != (inf.window, float(inf.k) if inf.mode == "leaky" else None)
            ):
                raise ValueError("this cache was made for another position mode: call new_caches() after set_inference")
            if spec.pos == "nope" or self._rotates_cache():
                ps = 1.0 / float(inf.k) if spec.pos == "rope" and inf.mode == "pi" else 1.0
                if spec.pos == "rope":
                    q, k = rope(q, t * ps), rope(k, t * ps)
                cache.append(k, v)
                q = q if factor is None else q * factor
                out = attend(q @ cache.k.transpose(-1, -2) * self.head_dim**-0.5, cache.v, None)
            elif isinstance(cache, ReRoPECache):
                cache.append(k, v)
                out = cache.attend(q, logn=factor)
            else:  # a plain cache of un-rotated keys (made before set_inference): re-rotated per step
                cache.append(k, v)
                leaky = float(inf.k) if inf.mode == "leaky" else None
                out = rerope_decode_step(q, cache.k, cache.v, t, int(inf.window), leaky, logn=factor)
        B = x_t.shape[0]
        return self.proj(out.transpose(1, 2).reshape(B, 1, -1))

    def step(self, x_t: torch.Tensor, cache: KVCache | RingKVCache, t: int) -> torch.Tensor:
        x_t = self.norm1(x_t + self.step_attention(x_t, cache, t))
        return self.norm2(x_t + self.feed_forward(x_t))


class LM(nn.Module):
    """Byte-level (vocab 256) causal LM made of ``Block``s."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.vocab, config.d_model)
        self.blocks = nn.ModuleList(
            Block(spec, config.d_model, config.n_heads, config.train_len) for spec in config.layers
        )
        self.head = nn.Linear(config.d_model, config.vocab, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, vocab) for token ids (B, n)."""
        x = self.emb(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def set_inference(self, pos: InferencePos) -> LM:
        """Switch the full RoPE layers to ``pos`` (window and NoPE layers are unaffected)."""
        for block in self.blocks:
            if block.spec.kind == "full" and block.spec.pos == "rope":
                block.inference = pos
        return self

    def new_caches(self) -> list[KVCache | RingKVCache]:
        return [block.new_cache() for block in self.blocks]

    def step(self, ids_t: torch.Tensor, caches: list, t: int) -> torch.Tensor:
        """Logits (B, vocab) of the token after ``ids_t`` (B,) at position t, updating ``caches``."""
        x = self.emb(ids_t)[:, None]
        for block, cache in zip(self.blocks, caches, strict=True):
            x = block.step(x, cache, t)
        return self.head(x)[:, 0]

    def receptive_field(self) -> int | None:
        """Tokens a final-layer output can depend on when every layer is a window layer; None if any is full."""
        if any(spec.kind == "full" for spec in self.config.layers):
            return None
        return sum(spec.window - 1 for spec in self.config.layers) + 1


def to_inference(model: LM, window: int) -> LM:
    """HWFA2 / baseline: full RoPE layers -> ReRoPE with this window (w >= n changes nothing)."""
    return model.set_inference(InferencePos("rerope", window))


def round_weights(model: LM, dtype: torch.dtype = torch.float16) -> LM:
    """Round every weight through ``dtype`` in place, so a model evaluated now equals its stored checkpoint."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(p.dtype))
    return model


def save_checkpoint(model: LM, path: str, extra: dict | None = None, dtype: torch.dtype = torch.float16) -> None:
    """Store config + weights (float16 by default: the shipped checkpoints must stay small)."""
    state = {name: t.to(dtype) for name, t in model.state_dict().items()}
    torch.save({"config": model.config.to_dict(), "state": state, "extra": extra or {}}, path)


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> tuple[LM, dict]:
    data = torch.load(path, map_location=map_location, weights_only=True)
    model = LM(ModelConfig.from_dict(data["config"]))
    model.load_state_dict({name: t.float() for name, t in data["state"].items()})
    model.to(map_location).eval()
    return model, data.get("extra", {})
