"""Model-level Monarch experiment (dense-to-sparse, as in Dao et al. 2022, Table 8): pure pieces, no Flask.

A byte-level MLP language model with 1024-wide hidden layers is trained dense on the Python standard library's own
sources (nothing is downloaded). Every linear layer is then replaced by the optimal Monarch approximation
(``MonarchLinear.from_dense``, nblocks = 4 as in fly's GPT-2 configs) or by the optimal low-rank approximation with
the same number of weights (truncated SVD), and each model, the dense one included, is fine-tuned for the same few
steps on the same batches. ``scripts/exp_monarch_mlp.py`` drives it; this module holds the corpus, the model, the
layer conversions and scores (the intervals come from ``backend.stats``, per ``shared/specs/statistics.md``).
"""

from __future__ import annotations

import copy
import math
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.services.matrix.layers import MonarchLinear

# --------------------------------------------------------------------------------------------------------------
# Corpus: the standard library's *.py sources as bytes, split by file
# --------------------------------------------------------------------------------------------------------------

SKIP_PARTS = {"test", "tests", "site-packages", "__pycache__", "idle_test"}


def stdlib_sources(root: str | Path | None = None) -> list[Path]:
    """The standard library's ``*.py`` files (tests excluded), sorted by relative path."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    files = [f for f in base.rglob("*.py") if not SKIP_PARTS & set(f.relative_to(base).parts)]
    return sorted(files, key=lambda f: f.relative_to(base).as_posix())


def load_corpus(root: str | Path | None = None, held_out_every: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) uint8 tensors; every ``held_out_every``-th file is held out, files joined by NUL."""
    train, test = bytearray(), bytearray()
    for i, path in enumerate(stdlib_sources(root)):
        (test if i % held_out_every == held_out_every - 1 else train).extend(path.read_bytes() + b"\0")
    if not train or not test:
        raise RuntimeError("no Python sources found for the corpus")
    return torch.frombuffer(train, dtype=torch.uint8).clone(), torch.frombuffer(test, dtype=torch.uint8).clone()


# --------------------------------------------------------------------------------------------------------------
# Model: a byte-level MLP language model whose hidden layers are 1024 wide
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPConfig:
    vocab: int = 256
    context: int = 16  # bytes of history the next byte is predicted from
    embed: int = 16  # per byte, so the input layer reads context * embed = 256 features
    width: int = 1024
    hidden_layers: int = 1  # width x width residual layers


class ByteMLP(nn.Module):
    """Next-byte predictor: embed the last ``context`` bytes, concatenate, then an MLP of residual GELU layers.

    Every ``nn.Linear`` (input, hidden, output) touches the 1024-wide hidden state, so all of them are projected.
    """

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.embed)
        self.fc_in = nn.Linear(cfg.context * cfg.embed, cfg.width)
        self.hidden = nn.ModuleList(nn.Linear(cfg.width, cfg.width) for _ in range(cfg.hidden_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.width) for _ in range(cfg.hidden_layers + 1))
        self.fc_out = nn.Linear(cfg.width, cfg.vocab)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        """Logits (..., vocab) of the byte following each context row (..., context)."""
        h = F.gelu(self.fc_in(self.embed(ctx).flatten(-2)))
        for norm, layer in zip(self.norms, self.hidden, strict=False):
            h = h + F.gelu(layer(norm(h)))
        return self.fc_out(self.norms[-1](h))

    def linear_names(self) -> list[str]:
        return ["fc_in", *(f"hidden.{i}" for i in range(len(self.hidden))), "fc_out"]


def random_batch(data: torch.Tensor, batch: int, context: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` (context bytes, next byte) pairs at positions drawn from ``gen``: (batch, context), (batch,)."""
    starts = torch.randint(0, len(data) - context, (batch,), generator=gen)
    rows = data[starts[:, None] + torch.arange(context + 1)].long()
    return rows[:, :-1], rows[:, -1]


def eval_windows(data: torch.Tensor, count: int, length: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` windows of ``length`` consecutive predictions, evenly spaced over the held-out text.

    Returns contexts (count, length, context) and targets (count, length); a window is the unit of every interval.
    """
    starts = torch.linspace(0, len(data) - length - context - 1, count).long()
    offsets = torch.arange(length)[:, None] + torch.arange(context + 1)
    rows = data[starts[:, None, None] + offsets].long()
    return rows[..., :-1], rows[..., -1]


# --------------------------------------------------------------------------------------------------------------
# Structured replacements of a trained dense layer
# --------------------------------------------------------------------------------------------------------------


class LowRankLinear(nn.Module):
    """y = (x V^T) U^T + b with U (out, r), V (r, in): r (in + out) weights."""

    def __init__(
        self, in_features: int, out_features: int, rank: int, bias: bool = True, *, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.v = nn.Parameter(torch.empty(rank, in_features, dtype=dtype))
        self.u = nn.Parameter(torch.empty(out_features, rank, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype)) if bias else None
        nn.init.kaiming_uniform_(self.v, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.u, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.v), self.u, self.bias)

    @property
    def weight(self) -> torch.Tensor:
        return (self.u @ self.v).detach()

    @classmethod
    def from_dense(cls, weight: torch.Tensor, bias: torch.Tensor | None, rank: int) -> tuple[LowRankLinear, float]:
        """Optimal rank-r layer (Eckart-Young, sqrt(s) split); returns it and its relative Frobenius error."""
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features, rank, bias=bias is not None, dtype=weight.dtype)
        w = weight.detach().double()
        u, s, vt = torch.linalg.svd(w, full_matrices=False)
        root = s[:rank].sqrt()
        with torch.no_grad():
            layer.u.copy_((u[:, :rank] * root).to(weight.dtype))
            layer.v.copy_((root[:, None] * vt[:rank]).to(weight.dtype))
            if bias is not None:
                layer.bias.copy_(bias.detach())
        err = float(s[rank:].square().sum().sqrt() / s.square().sum().sqrt())
        return layer, err


def matched_rank(in_features: int, out_features: int, nblocks: int) -> int:
    """The rank whose r (in + out) weights equal MonarchLinear(in, out, nblocks)'s (rounded to the nearest)."""
    probe = MonarchLinear(in_features, out_features, nblocks, bias=False)
    params = probe.blkdiag1.numel() + probe.blkdiag2.numel()
    return max(1, round(params / (in_features + out_features)))


def convert(model: ByteMLP, kind: str, nblocks: int = 4) -> tuple[ByteMLP, list[dict]]:
    """A copy of ``model`` with every linear layer replaced ('dense' keeps them). Returns (model, per-layer info)."""
    out = copy.deepcopy(model)
    info = []
    for name in out.linear_names():
        dense: nn.Linear = out.get_submodule(name)
        if kind == "dense":
            layer, err = dense, 0.0
        elif kind == "monarch":
            layer, proj = MonarchLinear.from_dense(dense.weight.detach(), dense.bias.detach(), nblocks=nblocks)
            err = proj.relative_error
        elif kind == "lowrank":
            rank = matched_rank(dense.in_features, dense.out_features, nblocks)
            layer, err = LowRankLinear.from_dense(dense.weight, dense.bias, rank)
        else:
            raise ValueError(f"unknown kind {kind!r}")
        parent, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, attr, layer)
        weights = sum(p.numel() for n, p in layer.named_parameters() if n != "bias")
        info.append({"layer": name, "in": dense.in_features, "out": dense.out_features, "weights": weights,
                     "relative_error": err})
    return out, info


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------------------------------


def cosine_lr(step: int, steps: int, lr: float, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def train(
    model: ByteMLP,
    data: torch.Tensor,
    *,
    steps: int,
    batch: int,
    lr: float,
    warmup: int,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """AdamW on random windows drawn from a generator seeded with ``seed`` (same batches for every model)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    losses = []
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        x, y = random_batch(data, batch, model.cfg.context, gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if progress:
            progress(step, losses[-1])
    return losses


@torch.no_grad()
def window_scores(model: ByteMLP, contexts: torch.Tensor, targets: torch.Tensor, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per window: mean next-byte loss in bits and next-byte accuracy (the units of every interval)."""
    model.eval()
    losses, accs = [], []
    for start in range(0, len(targets), batch):
        ctx, tgt = contexts[start : start + batch], targets[start : start + batch]
        logits = model(ctx)
        nll = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")
        losses.append((nll.mean(1) / math.log(2)).numpy())
        accs.append((logits.argmax(-1) == tgt).float().mean(1).numpy())
    return np.concatenate(losses), np.concatenate(accs)
