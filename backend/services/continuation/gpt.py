"""A tiny GPT, read top to bottom (in the spirit of nanoGPT's model.py): embeddings, N pre-norm blocks of causal
self-attention + MLP, a final LayerNorm and a head tied to the token embedding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 8000
    block_size: int = 128  # longest context, in tokens
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 96
    dropout: float = 0.0


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)  # query, key, value for all heads at once
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying: halves the parameters of a small-vocab model
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V); with ``targets`` also the mean cross-entropy (targets < 0 are ignored)."""
        T = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss


class GPTLM:
    """The language-model interface used by the decoders: one call = one forward pass over the context."""

    def __init__(self, model: GPT, bos_id: int):
        self.model = model.eval()
        self.bos_id = bos_id
        self.vocab_size = model.cfg.vocab_size
        self.forward_passes = 0

    @torch.no_grad()
    def next_token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """log p(. | BOS + ids), the context cut to the last ``block_size`` tokens."""
        self.forward_passes += 1
        ctx = [self.bos_id, *ids][-self.model.cfg.block_size :]
        logits, _ = self.model(torch.tensor([ctx], dtype=torch.long))
        return torch.log_softmax(logits[0, -1].double(), dim=-1).numpy()

    def next_token_probs(self, ids: Sequence[int]) -> np.ndarray:
        return np.exp(self.next_token_logprobs(ids))

    @torch.no_grad()
    def path_logprobs(self, ids: Sequence[int], path: Sequence[int]) -> np.ndarray:
        """Row i: log p(. | BOS + ids + path[:i]) for every i, in one pass (teacher forcing, for scoring)."""
        full = [self.bos_id, *ids, *path]
        block = self.model.cfg.block_size
        if len(full) - 1 > block:  # too long for one window: fall back to one pass per step
            return np.stack([self.next_token_logprobs([*ids, *path[:i]]) for i in range(len(path))])
        self.forward_passes += 1
        logits, _ = self.model(torch.tensor([full[:-1]], dtype=torch.long))
        rows = logits[0, len(full) - 1 - len(path) :]
        return torch.log_softmax(rows.double(), dim=-1).numpy()


    @torch.no_grad()
    def score_sequences(
        self, seqs: Sequence[Sequence[int]], at: Sequence[Sequence[int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per sequence: log p of each token given BOS and the tokens before it, and the next-token
        log-distributions after the prefixes of the lengths in ``at`` (0..len). Sequences that fit in one window
        share one padded forward pass (causal attention: padding after a position never changes it); longer ones
        are scored window by window, as decoding would see them."""
        block = self.model.cfg.block_size
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(seqs)
        short = [i for i, s in enumerate(seqs) if len(s) + 1 <= block]
        if short:
            width = max(len(seqs[i]) + 1 for i in short)
            batch = torch.zeros((len(short), width), dtype=torch.long)
            for row, i in enumerate(short):
                batch[row, : len(seqs[i]) + 1] = torch.tensor([self.bos_id, *seqs[i]], dtype=torch.long)
            self.forward_passes += 1
            logits, _ = self.model(batch)
            logp = torch.log_softmax(logits.double(), dim=-1).numpy()
            for row, i in enumerate(short):
                seq = list(seqs[i])
                token_lp = logp[row, np.arange(len(seq)), seq] if seq else np.zeros(0)
                out[i] = (token_lp, logp[row, list(at[i])])
        for i, seq in enumerate(seqs):
            if out[i] is None:
                rows = np.concatenate([self.path_logprobs([], list(seq)), self.next_token_logprobs(list(seq))[None]])
                out[i] = (rows[np.arange(len(seq)), list(seq)], rows[list(at[i])])
        return out  # type: ignore[return-value]


def save_checkpoint(path: str, model: GPT, meta: dict) -> None:
    """Weights stored in float16 (half the bytes; the model runs in float32)."""
    state = {k: v.to(torch.float16) for k, v in model.state_dict().items() if k != "head.weight"}
    torch.save({"config": asdict(model.cfg), "state": state, "meta": meta}, path)


def load_checkpoint(path: str) -> tuple[GPT, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**blob["config"]))
    state = {k: v.float() for k, v in blob["state"].items()}
    state["head.weight"] = state["tok_emb.weight"]
    model.load_state_dict(state)
    return model.eval(), blob["meta"]
