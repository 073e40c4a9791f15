"""The model-level Monarch experiment's pure pieces: layer conversions, batches, scores and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.services.matrix.experiment import (
    ByteMLP,
    LowRankLinear,
    MLPConfig,
    convert,
    eval_windows,
    matched_rank,
    random_batch,
    window_scores,
)
from backend.services.matrix.layers import MonarchLinear
from backend.services.matrix.monarch import project

SMALL = MLPConfig(context=4, embed=4, width=64, hidden_layers=1)


def test_low_rank_layer_is_the_truncated_svd():
    torch.manual_seed(0)
    dense = torch.nn.Linear(24, 40).double()
    layer, err = LowRankLinear.from_dense(dense.weight, dense.bias, 5)
    u, s, vt = np.linalg.svd(dense.weight.detach().numpy(), full_matrices=False)
    np.testing.assert_allclose(layer.weight.numpy(), (u[:, :5] * s[:5]) @ vt[:5], atol=1e-12)
    assert err == pytest.approx(np.sqrt(np.sum(s[5:] ** 2) / np.sum(s**2)), rel=1e-12)
    x = torch.randn(3, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + dense.bias)
    assert layer.u.numel() + layer.v.numel() == 5 * (24 + 40)


@pytest.mark.parametrize("fin,fout,rank", [(1024, 1024, 256), (256, 1024, 64), (1024, 256, 64), (64, 64, 16)])
def test_matched_rank_equals_the_monarch_weight_count(fin, fout, rank):
    assert matched_rank(fin, fout, 4) == rank
    mon = MonarchLinear(fin, fout, 4, bias=False)
    assert rank * (fin + fout) == mon.blkdiag1.numel() + mon.blkdiag2.numel()


def test_convert_keeps_dense_and_projects_every_linear():
    torch.manual_seed(1)
    model = ByteMLP(SMALL).double()
    ctx = torch.randint(0, 256, (5, SMALL.context))
    dense, info = convert(model, "dense")
    torch.testing.assert_close(dense(ctx), model(ctx))
    assert [row["layer"] for row in info] == ["fc_in", "hidden.0", "fc_out"] and all(r["relative_error"] == 0 for r in info)
    mon, mon_info = convert(model, "monarch")
    low, low_info = convert(model, "lowrank")
    for name, m_row, l_row in zip(model.linear_names(), mon_info, low_info, strict=True):
        original = model.get_submodule(name)
        layer = mon.get_submodule(name)
        assert isinstance(layer, MonarchLinear) and isinstance(low.get_submodule(name), LowRankLinear)
        proj = project(original.weight.detach().numpy(), tuple(layer.blkdiag1.shape), tuple(layer.blkdiag2.shape))
        np.testing.assert_allclose(layer.weight.numpy(), _dense(proj), atol=1e-12)
        assert m_row["relative_error"] == pytest.approx(proj.relative_error)
        assert m_row["weights"] == l_row["weights"]  # the same number of weights in both structured models
        torch.testing.assert_close(layer.bias, original.bias)
    # the original model is untouched
    assert isinstance(model.fc_in, torch.nn.Linear)
    with pytest.raises(ValueError, match="unknown"):
        convert(model, "sparse")


def _dense(proj):
    from backend.services.matrix.monarch import monarch_to_dense

    return monarch_to_dense(proj.w1, proj.w2)


def test_batches_and_windows_follow_the_text():
    data = torch.arange(1000, dtype=torch.int64) % 251
    data = data.to(torch.uint8)
    x, y = random_batch(data, 8, 4, torch.Generator().manual_seed(0))
    assert x.shape == (8, 4) and y.shape == (8,)
    assert torch.equal((x[:, -1].long() + 1) % 251, y.long())  # the target is the next byte
    x2, _ = random_batch(data, 8, 4, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    ctx, tgt = eval_windows(data, 6, 10, 4)
    assert ctx.shape == (6, 10, 4) and tgt.shape == (6, 10)
    assert torch.equal((ctx[..., -1] + 1) % 251, tgt)
    assert torch.equal(ctx[:, 1:, -1], tgt[:, :-1])  # consecutive predictions


def test_window_scores_are_bits_and_accuracies():
    torch.manual_seed(2)
    model = ByteMLP(SMALL)
    data = (torch.arange(3000) % 256).to(torch.uint8)
    bits, acc = window_scores(model, *eval_windows(data, 5, 12, SMALL.context))
    assert bits.shape == acc.shape == (5,)
    assert np.all(bits > 0) and np.all((acc >= 0) & (acc <= 1))
    assert abs(bits.mean() - 8) < 1.5  # an untrained model is near uniform over 256 bytes
