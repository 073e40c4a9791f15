"""Per-position loss / accuracy of a byte LM, and the experiment's named inference variants."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from backend.services.attention.model import LM, InferencePos


@dataclass(frozen=True)
class Variant:
    """A row of the results table: a trained model plus how its full RoPE layers see positions."""

    name: str
    model: str  # checkpoint name
    pos: InferencePos = InferencePos()
    label: str = ""


@torch.no_grad()
def token_stats(model: LM, rows: torch.Tensor, micro_batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position cross-entropy and correctness (count, length) for rows of length + 1 token ids."""
    losses, hits = [], []
    device = next(model.parameters()).device
    for s in range(0, rows.shape[0], micro_batch):
        chunk = rows[s : s + micro_batch].to(device)
        logits = model(chunk[:, :-1]).float()
        target = chunk[:, 1:]
        losses.append(F.cross_entropy(logits.transpose(1, 2), target, reduction="none").cpu())
        hits.append((logits.argmax(-1) == target).float().cpu())
    return torch.cat(losses), torch.cat(hits)


def bucket_means(values: torch.Tensor, bucket: int) -> list[float]:
    """Means over positions [0, b), [b, 2b), ... of a (count, length) tensor."""
    return [values[:, s : s + bucket].mean().item() for s in range(0, values.shape[1], bucket)]


def score_text(model: LM, data: bytes) -> list[float]:
    """Per-position loss (nats) of predicting byte t + 1 from bytes 0..t, for t = 0 .. len(data) - 2."""
    if len(data) < 2:
        raise ValueError("need at least 2 bytes to score")
    ids = torch.tensor(list(data), dtype=torch.long)[None]
    loss, _ = token_stats(model, ids)
    return loss[0].tolist()
