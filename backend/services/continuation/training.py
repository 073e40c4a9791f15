"""Training the small models: token streams from the corpus, the GPT training loop, the n-gram.

Deterministic: fixed seeds for numpy, torch and the segmentation sampler, single-process data, and the caller
fixes the torch thread count (scripts only). ``progress(step, total, loss)`` lets a script draw a bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from backend.services.continuation.gpt import GPT, GPTConfig
from backend.services.continuation.ngram import NGramLM
from backend.services.continuation.tokenizer import Tokenizer

Segmenter = Callable[[str], list[int]]


def encode_sentences(tok: Tokenizer, sentences: Sequence[str], segment: Segmenter | None = None) -> list[list[int]]:
    """Each sentence as token ids followed by EOS (canonical encoding unless ``segment`` is given)."""
    seg = segment or tok.encode
    return [seg(s) + [tok.eos_id] for s in sentences]


def pack(tok: Tokenizer, sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """One stream ``BOS s1 EOS BOS s2 EOS ...``: inference contexts start with BOS, like every sentence here."""
    out: list[int] = []
    for s in sequences:
        out.append(tok.bos_id)
        out.extend(s)
    return np.asarray(out, dtype=np.int64)


def train_gpt(
    cfg: GPTConfig,
    stream_for_epoch: Callable[[int], np.ndarray],
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    device: torch.device | str = "cpu",
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[int, GPT], None] | None = None,
) -> tuple[GPT, float]:
    """AdamW with warm-up and cosine decay on random windows of the stream; returns (model, last mean loss).

    ``stream_for_epoch(e)`` gives the packed token stream for pass ``e`` (a different random segmentation
    each pass for the random-segmentation model); a new pass starts once ``len(stream)`` tokens were seen.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, steps // 20)
    epoch, seen = 0, 0
    stream = torch.from_numpy(stream_for_epoch(0))
    recent: list[float] = []
    model.train()
    for step in range(steps):
        if seen >= len(stream):
            epoch, seen = epoch + 1, 0
            stream = torch.from_numpy(stream_for_epoch(epoch))
        starts = torch.randint(0, len(stream) - cfg.block_size - 1, (batch_size,), generator=gen)
        x = torch.stack([stream[s : s + cfg.block_size] for s in starts.tolist()])
        y = torch.stack([stream[s + 1 : s + 1 + cfg.block_size] for s in starts.tolist()])
        x, y = x.to(device), y.to(device)
        seen += batch_size * cfg.block_size
        if step < warmup:
            scale = (step + 1) / warmup
        else:
            scale = 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
        for group in opt.param_groups:
            group["lr"] = lr * (0.1 + 0.9 * scale)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent = (recent + [loss.item()])[-50:]
        if progress:
            progress(step + 1, steps, sum(recent) / len(recent))
        if on_checkpoint and checkpoint_every and (step + 1) % checkpoint_every == 0:
            model.eval()
            on_checkpoint(step + 1, model)
            model.train()
    return model.eval(), sum(recent) / max(1, len(recent))


@torch.no_grad()
def stream_loss(model: GPT, stream: np.ndarray, max_windows: int = 64) -> float:
    """Mean next-token cross-entropy (nats) on consecutive windows of a held-out stream."""
    T = model.cfg.block_size
    device = next(model.parameters()).device
    data = torch.from_numpy(stream).to(device)
    losses = []
    for s in range(0, min(len(data) - T - 1, max_windows * T), T):
        _, loss = model(data[s : s + T][None], data[s + 1 : s + 1 + T][None])
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def train_ngram(tok: Tokenizer, sequences: Sequence[Sequence[int]]) -> NGramLM:
    return NGramLM.train(sequences, tok.vocab_size, tok.bos_id)
