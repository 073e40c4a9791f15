"""Attention benchmark, one run: prefill time and peak memory, stack prefill, and decode-step time.

1. Attention core (B=1, H=4, d=64) at n in --sizes: full causal RoPE through torch SDPA (the anchor, 1.00x),
   ReRoPE two-pass (w = 512), window attention (w = 64, RoPE included). Time and peak memory.
   Bar: window-attention memory grows linearly in n (log2 growth per doubling of n <= 1.15).
2. Stacks of the same size (24 layers, d_model 64, 2 heads): HWFA2 (f=2 full layers switched to ReRoPE
   w=256, window layers w=64) against all-full RoPE. Bar: HWFA2 prefill at n=4096 <= 0.35x the RoPE stack.
3. Decode step (one query) against the cached length: RoPE over a rotated cache, ReRoPE over an un-rotated
   cache (re-rotating every key as rerope_patch does, and rotating only the last w keys), window attention
   over a ring buffer of 64.

Peak memory: on CUDA torch's allocator peak; on the CPU the peak of tensors created during the call
(``memtrace.PeakMemory``; scratch memory inside fused kernels such as CPU SDPA is not visible there).
Times are the best of --repeats runs after one warm-up (the stacks alternate, so both see the same load);
ratios are against anchors measured in this run.

    nice -n 10 .venv/bin/python scripts/bench_attention.py                 # CPU, 1 thread
    .venv/bin/python scripts/bench_attention.py --device cuda --batch 8
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.services.attention.functional import (  # noqa: E402
    KVCache,
    RingKVCache,
    rerope_attention,
    rerope_decode_step,
    rope_attention,
    window_attention,
)
from backend.services.attention.memtrace import PeakMemory, cuda_peak  # noqa: E402
from backend.services.attention.model import LM, ModelConfig, plan, to_inference  # noqa: E402
from backend.services.attention.positions import position_tables, rope  # noqa: E402

RE_W, WIN = 512, 64


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, *args) -> float:  # noqa: ANN001
    """Best (minimum) seconds of fn(*args) over ``repeats`` calls after one warm-up: on a shared machine the
    minimum is the least disturbed run."""
    fn(*args)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn(*args)
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(fn, device: torch.device, *args) -> int:  # noqa: ANN001
    if device.type == "cuda":
        return cuda_peak(lambda: fn(*args), device)
    with PeakMemory() as mem:
        fn(*args)
    return mem.peak_bytes


def window_with_rope(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RoPE then window attention, as a window layer does it (tables of positions 0..n-1 shared by all layers)."""
    tables = position_tables(q.shape[2], q.shape[-1], dtype=q.dtype, device=q.device)
    return window_attention(q, k, v, WIN, rope_tables=tables)


def bench_core(args: argparse.Namespace, device: torch.device) -> list[str]:
    methods = {
        "rope_sdpa": lambda q, k, v: rope_attention(q, k, v),
        f"rerope_two_pass_w{RE_W}": lambda q, k, v: rerope_attention(q, k, v, RE_W),
        f"window_w{WIN}": window_with_rope,
    }
    lines, memory = [], {}
    for n in tqdm(args.sizes, desc="core prefill"):
        gen = torch.Generator().manual_seed(n)
        q, k, v = (torch.randn(args.batch, 4, n, 64, generator=gen).to(device) for _ in range(3))
        anchor = None
        for name, fn in methods.items():
            seconds = timed(fn, device, args.repeats, q, k, v)
            mem = peak_bytes(fn, device, q, k, v)
            anchor = anchor or seconds
            memory.setdefault(name, {})[n] = mem
            lines.append(
                f"prefill n={n:5d} {name:22s} time={seconds * 1e3:9.2f} ms ({seconds / anchor:5.2f}x rope_sdpa) "
                f"peak={mem / 2**20:8.2f} MiB"
            )
    sizes = sorted(args.sizes)
    for name, by_n in memory.items():
        growth = math.log2(by_n[sizes[-1]] / by_n[sizes[0]]) / math.log2(sizes[-1] / sizes[0])
        lines.append(f"memory growth {name:22s} exponent={growth:.2f} (1 = linear in n, 2 = quadratic)")
    w_growth = math.log2(memory[f"window_w{WIN}"][sizes[-1]] / memory[f"window_w{WIN}"][sizes[0]])
    w_growth /= math.log2(sizes[-1] / sizes[0])
    lines.append(f"BAR window-attention memory linear in n: exponent {w_growth:.2f} <= 1.15 -> "
                 f"{'PASS' if w_growth <= 1.15 else 'FAIL'}")
    return lines


def bench_stacks(args: argparse.Namespace, device: torch.device) -> list[str]:
    torch.manual_seed(0)
    cfg = dict(d_model=64, n_heads=2, train_len=512)
    rope_stack = LM(ModelConfig(plan("baseline", 24, 512), **cfg)).to(device).eval()
    hwfa2 = LM(ModelConfig(plan("hwfa2", 24, 512, window=WIN, n_full=2), **cfg)).to(device).eval()
    to_inference(hwfa2, 256)
    lines, ratio_4k = [], None
    for n in tqdm(args.stack_sizes, desc="stack prefill"):
        ids = torch.randint(0, 256, (args.batch, n), generator=torch.Generator().manual_seed(n)).to(device)
        t_rope, t_hwfa2 = float("inf"), float("inf")
        for _ in range(args.repeats):  # alternate, so a burst of load on the machine hits both
            t_rope = min(t_rope, timed(rope_stack, device, 1, ids))
            t_hwfa2 = min(t_hwfa2, timed(hwfa2, device, 1, ids))
        ratio = t_hwfa2 / t_rope
        ratio_4k = ratio if n == 4096 else ratio_4k
        lines.append(f"stack prefill n={n:5d} rope_24L={t_rope * 1e3:9.1f} ms hwfa2_f2_w{WIN}={t_hwfa2 * 1e3:9.1f} ms "
                     f"ratio={ratio:.3f}")
    if ratio_4k is not None:
        lines.append(f"BAR HWFA2 stack prefill at n=4096 <= 0.35x RoPE stack: {ratio_4k:.3f} -> "
                     f"{'PASS' if ratio_4k <= 0.35 else 'FAIL'}")
    lines += attention_share(args, device)
    return lines


def attention_share(args: argparse.Namespace, device: torch.device) -> list[str]:
    """Where the stack time goes at n=4096: attention cores (at the stacks' 2 heads x 32) vs the rest of a block."""
    n = 4096
    gen = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(args.batch, 2, n, 32, generator=gen).to(device) for _ in range(3))
    x = torch.randn(args.batch, n, 64, generator=gen).to(device)
    t_sdpa = timed(rope_attention, device, args.repeats, q, k, v)
    t_window = timed(window_with_rope, device, args.repeats, q, k, v)
    t_rerope = timed(rerope_attention, device, args.repeats, q, k, v, 256)
    block = LM(ModelConfig(plan("baseline", 1, 512), d_model=64, n_heads=2, train_len=512)).blocks[0].to(device).eval()
    t_rest = timed(lambda h: block.norm2(h + block.feed_forward(h)), device, args.repeats, x)
    t_rest += timed(lambda h: block.proj(block.qkv(h)[..., :64]), device, args.repeats, x)
    cores = (22 * t_window + 2 * t_rerope) / (24 * t_sdpa)
    whole = (22 * (t_window + t_rest) + 2 * (t_rerope + t_rest)) / (24 * (t_sdpa + t_rest))
    return [
        f"n=4096 per layer: rope_sdpa core={t_sdpa * 1e3:.1f} ms window_w{WIN} core={t_window * 1e3:.1f} ms "
        f"rerope_w256 core={t_rerope * 1e3:.1f} ms projections+MLP+norm={t_rest * 1e3:.1f} ms",
        f"HWFA2/RoPE from these parts: attention cores only={cores:.3f} with the rest of each block={whole:.3f}",
    ]


def rope_decode_step(q_t: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Plain RoPE decoding: the cache already holds rotated keys, so one q K^T and no re-rotation."""
    return torch.softmax(q_t @ cache.k.transpose(-1, -2) / q_t.shape[-1] ** 0.5, -1) @ cache.v


def bench_decode(args: argparse.Namespace, device: torch.device) -> list[str]:
    lines = []
    for n in tqdm(args.sizes, desc="decode step"):
        gen = torch.Generator().manual_seed(n + 1)
        k, v = (torch.randn(args.batch, 4, n, 64, generator=gen).to(device) for _ in range(2))
        q = torch.randn(args.batch, 4, 1, 64, generator=gen).to(device)
        rotated = KVCache()
        rotated.append(rope(k, torch.arange(n, dtype=torch.float64, device=device)), v)
        raw = KVCache()
        raw.append(k, v)
        ring = RingKVCache(WIN)
        ring.fill(k, v)
        t = n - 1
        qt = rope(q, float(t))

        reps = args.repeats * 5
        t_rope = timed(rope_decode_step, device, reps, qt, rotated)
        t_patch = timed(partial(rerope_decode_step, rotate_all=True), device, reps, q, raw.k, raw.v, t, RE_W)
        t_rerope = timed(rerope_decode_step, device, reps, q, raw.k, raw.v, t, RE_W)
        t_ring = timed(ring.attend, device, reps, qt)
        lines.append(f"decode cached={n:5d} rope={t_rope * 1e6:8.1f} us "
                     f"rerope_rotate_all={t_patch * 1e6:8.1f} us ({t_patch / t_rope:5.2f}x) "
                     f"rerope={t_rerope * 1e6:8.1f} us ({t_rerope / t_rope:5.2f}x) "
                     f"window_ring{WIN}={t_ring * 1e6:8.1f} us ({t_ring / t_rope:5.2f}x)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    ap.add_argument("--stack-sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} thread(s)"
    print(f"device: {name}; torch {torch.__version__}; batch {args.batch}")
    with torch.no_grad():
        lines = bench_core(args, device) + bench_stacks(args, device) + bench_decode(args, device)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
