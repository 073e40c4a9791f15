"""MonarchLinear: fly's shapes, init, forward and the dense-to-sparse projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.services.matrix.layers import MonarchLinear
from backend.services.matrix.monarch import project


@pytest.mark.parametrize("fin,fout,nb,shape1,shape2", [
    (16, 16, 4, (4, 4, 4), (4, 4, 4)),
    (10, 7, 4, (4, 2, 3), (4, 2, 2)),  # in_ext 12 >= out_ext 8
    (8, 20, 4, (4, 2, 2), (4, 5, 2)),  # in_ext 8 < out_ext 20
    (64, 64, 2, (2, 32, 32), (2, 32, 32)),
])
def test_shapes_padding_and_saving(fin, fout, nb, shape1, shape2):
    layer = MonarchLinear(fin, fout, nb)
    assert tuple(layer.blkdiag1.shape) == shape1 and tuple(layer.blkdiag2.shape) == shape2
    assert layer.saving == pytest.approx((math.prod(shape1) + math.prod(shape2)) / (fin * fout))
    if fin == fout and fin % nb == 0:
        assert layer.saving == pytest.approx(2 / nb)


def test_forward_equals_dense_weight_and_bias():
    torch.manual_seed(0)
    layer = MonarchLinear(10, 7, 4).double()
    x = torch.randn(2, 3, 10, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)
    # row-major while autograd records (training), the copy-free transposed view in inference; same values
    x2 = torch.randn(5, 10, dtype=torch.float64)
    with torch.no_grad():
        viewed = layer(x2)
    recorded = layer(x2)
    assert recorded.is_contiguous() and not viewed.is_contiguous()
    torch.testing.assert_close(viewed, recorded.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(viewed, x2 @ layer.weight.T + layer.bias)
    assert layer.weight.shape == (7, 10)
    with pytest.raises(ValueError, match="input features"):
        layer(torch.randn(2, 9, dtype=torch.float64))


def test_init_ranges_reproduce_fly():
    torch.manual_seed(1)
    layer = MonarchLinear(256, 64, 4)  # blocks: in 64 wide, out 16 tall
    for w in (layer.blkdiag1, layer.blkdiag2):
        bound = 1 / math.sqrt(w.shape[-1])
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.05 * bound  # uniform
    bound = 1 / math.sqrt(64)  # fan = len(bias) = out_features, fly's quirk
    assert layer.bias.abs().max() <= bound and layer.bias.abs().max() > 0.8 * bound
    assert MonarchLinear(8, 8, 2, bias=False).bias is None


def test_from_dense_is_the_optimal_projection_and_exact_on_monarch_weights():
    torch.manual_seed(2)
    w = torch.randn(12, 20, dtype=torch.float64)
    b = torch.randn(12, dtype=torch.float64)
    layer, proj = MonarchLinear.from_dense(w, b, nblocks=4)
    assert torch.linalg.norm(layer.weight - w).item() == pytest.approx(proj.error_fro, rel=1e-10)
    x = torch.randn(5, 20, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + b)
    # a weight that is already Monarch in this layout is recovered exactly
    source = MonarchLinear(20, 12, 4, bias=False).double()
    again, proj2 = MonarchLinear.from_dense(source.weight, nblocks=4)
    assert proj2.error_fro < 1e-10
    torch.testing.assert_close(again.weight, source.weight)
    # padding does not cost optimality: it equals projecting the zero-padded weight
    padded = np.zeros((layer.out_ext, layer.in_ext))
    padded[:12, :20] = w.numpy()
    assert project(padded, tuple(layer.blkdiag1.shape), tuple(layer.blkdiag2.shape)).error_fro == pytest.approx(proj.error_fro)


def test_training_step_reduces_loss():
    torch.manual_seed(3)
    target = torch.nn.Linear(32, 32)
    layer = MonarchLinear(32, 32, 4)
    x = torch.randn(64, 32)
    with torch.no_grad():
        y = target(x)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert layer.blkdiag1.grad is not None and layer.blkdiag2.grad is not None
