"""Model stacks: plans, incremental decoding with KV caches, causality, locality and inference switches."""

from __future__ import annotations

import pytest
import torch

from backend.services.attention.functional import KVCache, ReRoPECache, RingKVCache
from backend.services.attention.model import (
    LM,
    InferencePos,
    LayerSpec,
    ModelConfig,
    load_checkpoint,
    plan,
    save_checkpoint,
    to_inference,
)

N = 32


def tiny(layers, seed=0, dtype=torch.float64) -> LM:
    torch.manual_seed(seed)
    model = LM(ModelConfig(layers, vocab=40, d_model=16, n_heads=2, train_len=N)).to(dtype).eval()
    # random-init post-norm stacks are nearly position-blind; larger weights make position effects visible
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(20)
    return model


def ids(n, seed=1, vocab=40):
    return torch.randint(0, vocab, (2, n), generator=torch.Generator().manual_seed(seed))


def test_plans():
    assert plan("baseline", 6, 128) == [LayerSpec("full", None, "rope", None)] * 6
    assert plan("baseline", 2, 128, logn=True)[0].logn == "train"
    hwfa = plan("hwfa", 6, 128)
    assert hwfa[-1] == LayerSpec("full", None, "nope", "train")
    w = hwfa[0].window
    assert (w - 1) * 5 + 1 <= 0.75 * 128 < w * 5 + 1  # the largest window that satisfies the constraint
    assert [s.kind for s in plan("hwfa2", 24, 512, window=64, n_full=1)].index("full") == 12
    f2 = plan("hwfa2", 24, 512, window=64, n_full=2)
    assert [i for i, s in enumerate(f2) if s.kind == "full"] == [8, 16]
    assert all(s.pos == "rope" and (s.logn == "train") == (s.kind == "full") for s in f2)
    with pytest.raises(ValueError):
        plan("hwfa2", 6, 128)
    with pytest.raises(ValueError):
        plan("nonsense", 6, 128)  # type: ignore[arg-type]


STACKS = {
    "baseline": plan("baseline", 3, N),
    "baseline_logn": plan("baseline", 3, N, logn=True),
    "hwfa": plan("hwfa", 3, N, window=5),
    "hwfa2_f1": plan("hwfa2", 4, N, window=6, n_full=1),
}
POSITIONS = [InferencePos(), InferencePos("rerope", 8), InferencePos("leaky", 8, 4.0), InferencePos("pi", k=2.0),
             InferencePos("rerope", 8, logn_dagger=True)]


@pytest.mark.parametrize("name", list(STACKS))
@pytest.mark.parametrize("pos", POSITIONS, ids=lambda p: f"{p.mode}{'_dagger' if p.logn_dagger else ''}")
def test_decode_with_caches_equals_forward(name, pos):
    model = tiny(STACKS[name]).set_inference(pos)
    x = ids(2 * N + 5)
    with torch.no_grad():
        full = model(x)
        caches = model.new_caches()
        steps = torch.stack([model.step(x[:, t], caches, t) for t in range(x.shape[1])], dim=1)
    assert (steps - full).abs().max() < 1e-9
    for block, cache in zip(model.blocks, caches, strict=True):
        if block.spec.kind == "window":  # ring buffer: constant memory
            assert isinstance(cache, RingKVCache) and cache.k.shape[2] == block.spec.window
        else:
            assert isinstance(cache, KVCache) and cache.length == x.shape[1]
            # ReRoPE / Leaky full RoPE layers never re-rotate their cache: each key is rotated once, when appended
            re_rope = block.spec.pos == "rope" and pos.mode in ("rerope", "leaky")
            assert isinstance(cache, ReRoPECache) == re_rope


def test_decode_with_an_old_plain_cache_still_equals_forward():
    """A plain cache made before set_inference(ReRoPE) falls back to re-rotating keys per step: same logits."""
    model = tiny(STACKS["baseline"])
    caches = model.new_caches()
    model.set_inference(InferencePos("rerope", 8))
    x = ids(N + 9)
    with torch.no_grad():
        full = model(x)
        steps = torch.stack([model.step(x[:, t], caches, t) for t in range(x.shape[1])], dim=1)
    assert (steps - full).abs().max() < 1e-9 and not any(isinstance(c, ReRoPECache) for c in caches)


def test_rerope_cache_refuses_another_position_mode():
    model = tiny(STACKS["baseline"]).set_inference(InferencePos("rerope", 8))
    caches = model.new_caches()
    model.set_inference(InferencePos("rerope", 16))
    with torch.no_grad(), pytest.raises(ValueError, match="new_caches"):
        model.step(ids(1)[:, 0], caches, 0)


def test_ring_buffer_fill_matches_stepwise_appends():
    k = torch.randn(1, 2, 11, 4, dtype=torch.float64)
    v = torch.randn(1, 2, 11, 4, dtype=torch.float64)
    a, b = RingKVCache(4), RingKVCache(4)
    for t in range(11):
        a.append(k[:, :, t : t + 1], v[:, :, t : t + 1])
    b.fill(k, v)
    assert a.length == b.length == 11 and torch.equal(a.k, b.k) and torch.equal(a.v, b.v)


@pytest.mark.parametrize("name", list(STACKS))
def test_stack_causality(name):
    model = tiny(STACKS[name]).set_inference(InferencePos("rerope", 8))
    x = ids(50)
    y = x.clone()
    y[:, 30:] = (y[:, 30:] + 7) % 40
    with torch.no_grad():
        a, b = model(x), model(y)
    assert (a[:, :30] - b[:, :30]).abs().max() < 1e-10
    assert (a[:, 30:] - b[:, 30:]).abs().max() > 1e-3


def test_window_stack_locality():
    """m window layers: a token at distance >= (w - 1) m + 1 cannot reach the output; at (w - 1) m it can."""
    w, m = 4, 3
    model = tiny([LayerSpec("window", w, "rope")] * m)
    field = model.receptive_field()
    assert field == (w - 1) * m + 1
    n, i = 40, 35
    x = ids(n)
    with torch.no_grad():
        base = model(x)[:, i]
        for dist, changes in [(field, False), (field + 5, False), (field - 1, True)]:
            y = x.clone()
            y[:, i - dist] = (y[:, i - dist] + 1) % 40
            diff = (model(y)[:, i] - base).abs().max()
            assert (diff > 1e-6) == changes, (dist, diff)


def test_hwfa_window_layers_see_at_most_alpha_n():
    layers = plan("hwfa", 6, 128)
    window_part = LM(ModelConfig(layers[:-1], d_model=16, n_heads=2, train_len=128))
    assert window_part.receptive_field() <= 0.75 * 128
    assert LM(ModelConfig(layers, d_model=16, n_heads=2, train_len=128)).receptive_field() is None


def test_hwfa_last_layer_sees_everything():
    model = tiny(STACKS["hwfa"])
    x = ids(60)
    y = x.clone()
    y[:, 0] = (y[:, 0] + 1) % 40  # far beyond the window stack's receptive field (2 * 4 + 1 = 9)
    with torch.no_grad():
        assert (model(x)[:, -1] - model(y)[:, -1]).abs().max() > 1e-6


def test_inference_switches_only_touch_full_rope_layers_and_wide_window_is_identity():
    model = tiny(STACKS["hwfa2_f1"])
    x = ids(3 * N)
    with torch.no_grad():
        plain = model(x)
        assert torch.equal(to_inference(model, 10**6)(x), plain)  # w >= n changes nothing
        rerope = to_inference(model, 8)(x)
    assert (rerope - plain).abs().max() > 1e-6
    modes = [(b.spec.kind, b.inference.mode) for b in model.blocks]
    assert modes == [("window", "rope"), ("window", "rope"), ("full", "rerope"), ("window", "rope")]


def test_logn_dagger_is_identity_inside_training_length():
    model = tiny(STACKS["baseline"])
    x = ids(N)
    with torch.no_grad():
        plain = model(x)
        dagger = model.set_inference(InferencePos(logn_dagger=True))(x)
        assert torch.equal(dagger, plain)
        longer = ids(3 * N)
        assert (model(longer) - model.set_inference(InferencePos())(longer)).abs().max() > 1e-6


def test_checkpoint_round_trip(tmp_path):
    model = tiny(STACKS["hwfa2_f1"], dtype=torch.float32)
    path = tmp_path / "m.pt"
    save_checkpoint(model, str(path), {"note": "x"})
    loaded, extra = load_checkpoint(str(path))
    assert extra == {"note": "x"} and loaded.config == model.config
    x = ids(20)
    with torch.no_grad():
        # stored in float16: equal up to that rounding
        assert (loaded(x) - model(x)).abs().max() < 0.05 * model(x).abs().max()


def test_block_rejects_bad_shapes():
    with pytest.raises(ValueError):
        LM(ModelConfig([LayerSpec("full")], d_model=15, n_heads=2))
    with pytest.raises(ValueError):
        LM(ModelConfig([LayerSpec("window", None)], d_model=16, n_heads=2))


@pytest.mark.parametrize("name", ["baseline", "hwfa2_f1"])
def test_inference_fast_paths_equal_the_training_forward(name):
    """Without autograd the MLP's GELU runs in place and ReRoPE uses the merged prefill: same outputs."""
    model = tiny(STACKS[name])
    to_inference(model, 8)
    x = ids(40)
    with_grad = model(x)
    assert with_grad.requires_grad
    with torch.no_grad():
        assert (model(x) - with_grad).abs().max() < 1e-12
