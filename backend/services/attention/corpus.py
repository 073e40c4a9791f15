"""Local training text: the Python standard library's own ``*.py`` sources, as bytes (vocab 256).

Nothing is downloaded. The split is by file (every 20th file, in sorted order, is held out), so no test
text leaks into training. The file list depends on the Python version (3.11 was used for the shipped runs).
"""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path

import torch

SKIP_PARTS = {"test", "tests", "site-packages", "__pycache__", "idle_test"}


def stdlib_files(root: str | Path | None = None) -> list[Path]:
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = [f for f in root.rglob("*.py") if not SKIP_PARTS & set(f.relative_to(root).parts)]
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


@functools.lru_cache(maxsize=2)
def load_corpus(root: str | Path | None = None, held_out_every: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) uint8 byte tensors; files joined by a NUL byte so a boundary is visible to the model.

    Memoised (reading ~1,000 files takes seconds): treat the tensors as read-only."""
    train, test = bytearray(), bytearray()
    for i, path in enumerate(stdlib_files(root)):
        target = test if i % held_out_every == held_out_every - 1 else train
        target += path.read_bytes() + b"\0"
    if not train or not test:
        raise RuntimeError("no Python sources found for the corpus")
    return torch.frombuffer(train, dtype=torch.uint8).clone(), torch.frombuffer(test, dtype=torch.uint8).clone()


def random_batch(data: torch.Tensor, batch: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-byte targets (batch, length), int64, at random offsets drawn from ``gen``."""
    starts = torch.randint(0, len(data) - length - 1, (batch,), generator=gen)
    rows = torch.stack([data[s : s + length + 1] for s in starts.tolist()]).long()
    return rows[:, :-1], rows[:, 1:]


def mixed_batch(
    data: torch.Tensor,
    batch: int,
    length: int,
    gen: torch.Generator,
    *,
    repeat_fraction: float = 0.75,
    periods: tuple[int, int] = (8, 64),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like ``random_batch``, but the last round(repeat_fraction * batch) rows repeat a chunk end to end.

    A repeated row tiles a chunk of p bytes (p uniform in ``periods``) to length + 1: half of those chunks are
    training text, half random printable ASCII (32..126), which only copying can predict. Such rows make an
    induction head (find the earlier occurrence of the current byte, copy the byte after it) form in a few
    thousand steps at this scale, so the 'rep' test set measures retrieval past N; natural Python source alone
    did not teach the spec's small models to copy. Deterministic given ``gen``.
    """
    x, y = random_batch(data, batch, length, gen)
    rows = torch.cat([x, y[:, -1:]], dim=1)
    for r in range(batch - round(repeat_fraction * batch), batch):
        p = int(torch.randint(periods[0], periods[1] + 1, (1,), generator=gen))
        if r % 2:
            start = int(torch.randint(0, len(data) - p, (1,), generator=gen))
            chunk = data[start : start + p].long()
        else:
            chunk = torch.randint(32, 127, (p,), generator=gen)
        rows[r] = chunk.repeat(-(-(length + 1) // p))[: length + 1]
    return rows[:, :-1], rows[:, 1:]


def eval_windows(data: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """non-rep set: ``count`` contiguous windows of length + 1 bytes, evenly spaced over the held-out text."""
    span = len(data) - length - 1
    starts = torch.linspace(0, span, count).long().tolist()
    return torch.stack([data[s : s + length + 1] for s in starts]).long()


def repeated_windows(data: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """rep set: a held-out chunk of length/2 tiled to ``length`` + 1 bytes, so the second copy can be
    predicted by retrieving the first (Su's 'rep' set rewards exactly this global copying)."""
    half = length // 2
    span = len(data) - half
    # a different offset grid from eval_windows, so rep and non-rep are not the same text
    starts = (torch.linspace(0, span - 1, count + 1)[:-1] + span / (2 * count)).long().tolist()
    rows = []
    for s in starts:
        chunk = data[s : s + half]
        rows.append(chunk.repeat(-(-(length + 1) // half))[: length + 1])
    return torch.stack(rows).long()
