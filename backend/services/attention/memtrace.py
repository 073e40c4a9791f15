"""Peak memory of tensors created inside a block, on any device (CPU has no torch.cuda.max_memory_allocated).

    with PeakMemory() as mem:
        out = window_attention(q, k, v, 64)
    mem.peak_bytes   # the most bytes held at once by tensors created inside the block

Every op's outputs are seen through a TorchDispatchMode; a storage counts from its first appearance until
the last Python/C++ reference to any tensor on it is gone. Inputs created before the block are not counted,
and neither is scratch memory that a fused kernel allocates and frees internally (torch.cuda's allocator
statistics do count it, so on CUDA use ``cuda_peak`` instead).
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakMemory(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.current_bytes = 0
        self.peak_bytes = 0
        self._refs: dict[int, int] = {}  # storage data_ptr -> live tensors on it
        self._sizes: dict[int, int] = {}
        self._seen: set[int] = set()  # ids of tensors already being watched

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 (torch's protocol)
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._watch(t)
        return out

    def _watch(self, t: torch.Tensor) -> None:
        if id(t) in self._seen:
            return
        storage = t.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0:
            return
        if key not in self._refs:
            self._refs[key], self._sizes[key] = 0, size
            self.current_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        self._refs[key] += 1
        self._seen.add(id(t))
        weakref.finalize(t, self._release, key, id(t))

    def _release(self, key: int, tid: int) -> None:
        self._seen.discard(tid)
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.current_bytes -= self._sizes.pop(key)


def cuda_peak(fn, device: torch.device) -> int:  # noqa: ANN001
    """Peak bytes allocated on a CUDA device while ``fn()`` runs, above what was allocated before."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base
