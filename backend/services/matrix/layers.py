"""``MonarchLinear``: a drop-in ``nn.Linear`` replacement with Monarch weights (behaviour of fly's layer)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.services.matrix.monarch import Projection, linear_layout, monarch_matmul, monarch_to_dense, project


class MonarchLinear(nn.Module):
    """y = x W^T + b with W = P BD(blkdiag2) P BD(blkdiag1), as in fly's ``MonarchLinear``.

    Features are zero-padded up to ``nblocks * ceil(features / nblocks)`` and the output truncated back.
    ``nblocks`` = b blocks per factor; square layers keep ``2 / nblocks`` of the dense parameters.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        nblocks: int = 4,
        bias: bool = True,
        *,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or nblocks < 1:
            raise ValueError("in_features, out_features and nblocks must be positive")
        self.in_features, self.out_features, self.nblocks = in_features, out_features, nblocks
        shape1, shape2 = linear_layout(in_features, out_features, nblocks)
        self.in_ext = shape1[0] * shape1[2]
        self.out_ext = shape2[0] * shape2[1]
        self.blkdiag1 = nn.Parameter(torch.empty(shape1, dtype=dtype))
        self.blkdiag2 = nn.Parameter(torch.empty(shape2, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming-uniform with a = sqrt(5) == U(+-1/sqrt(fan_in)); fan_in is each block's input width.
        for w in (self.blkdiag1, self.blkdiag2):
            bound = 1.0 / math.sqrt(w.shape[-1])
            nn.init.uniform_(w, -bound, bound)
        if self.bias is not None:
            # fly takes fan = len(bias) = out_features here (a quirk of its StructuredLinear, reproduced on purpose)
            bound = 1.0 / math.sqrt(self.out_features)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def saving(self) -> float:
        """Monarch parameters over dense parameters (bias excluded)."""
        return (self.blkdiag1.numel() + self.blkdiag2.numel()) / (self.in_features * self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got {x.shape[-1]}")
        if self.in_ext != self.in_features:
            x = F.pad(x, (0, self.in_ext - self.in_features))
        # Training: row-major like nn.Linear; the backward passes of a model's next ops on a batch-innermost view
        # cost more than the transpose (the whole-model step, exp_monarch_mlp.py --stage speed, was slower than
        # dense with the view). Inference: the copy-free view, which the next elementwise ops read as fast.
        y = monarch_matmul(x, self.blkdiag1, self.blkdiag2, contiguous=torch.is_grad_enabled())[..., : self.out_features]
        return y + self.bias.to(y.dtype) if self.bias is not None else y

    @property
    def weight(self) -> torch.Tensor:
        """The dense (out_features, in_features) weight (detached)."""
        dense = monarch_to_dense(self.blkdiag1.detach(), self.blkdiag2.detach())
        return dense[: self.out_features, : self.in_features]

    @classmethod
    def from_dense(
        cls, weight: torch.Tensor | np.ndarray, bias: torch.Tensor | np.ndarray | None = None, nblocks: int = 4
    ) -> tuple[MonarchLinear, Projection]:
        """The optimal Monarch approximation of a dense layer's weight (D2S fine-tuning start point).

        Zero padding is optimal here: padded inputs are always zero and padded outputs are dropped, and the truncated
        SVD of a zero-padded block is that of the block, padded. Returns (layer, projection with its exact error).
        """
        w = torch.as_tensor(weight)
        out_features, in_features = w.shape
        layer = cls(in_features, out_features, nblocks, bias=bias is not None, dtype=w.dtype)
        padded = np.zeros((layer.out_ext, layer.in_ext))
        padded[:out_features, :in_features] = w.detach().cpu().numpy()
        proj = project(padded, tuple(layer.blkdiag1.shape), tuple(layer.blkdiag2.shape))
        with torch.no_grad():
            layer.blkdiag1.copy_(torch.from_numpy(proj.w1))
            layer.blkdiag2.copy_(torch.from_numpy(proj.w2))
            if bias is not None:
                layer.bias.copy_(torch.as_tensor(bias))
        return layer, proj

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, nblocks={self.nblocks}, "
                f"bias={self.bias is not None}, saving={self.saving:.3f}")
