"""Benchmark of the matrix service (CPU): Monarch multiply against dense, randomized SVD against its peers.

    .venv/bin/python scripts/bench_matrix.py                  # everything (~10 min idle on 2 cores; longer loaded)
    .venv/bin/python scripts/bench_matrix.py --quick          # smaller sizes, fewer repeats: a smoke run
    .venv/bin/python scripts/bench_matrix.py --only multiply --profile   # the profile behind the notes below
    .venv/bin/python scripts/bench_matrix.py --only rsvd --plot docs/figures/matrix_rsvd_error_time.png

Every speed is a ratio against an anchor timed in the same run, interleaved with it (each repeat runs every
candidate once, so a load spike hits them all), with the minimum and the median of the repeats printed.

Goals (issue 19): Monarch multiply at n = 4096, B = 2048, fp32 >= 16x a dense matmul (FLOP ratio 32); randomized
SVD at rank 50, oversampling 10, 2 power iterations, n = 2000, <= 0.8x the time of the fastest peer
(torch.svd_lowrank, scikit-learn's randomized_svd with the same iterations) at equal error. The peers are run
at the same sketch and the same threads; library defaults are printed as a second row.

Where the time goes (profile, --profile; 2-core VM, fp32, n = 4096, B = 2048, 1 thread)
-------------------------------------------------------------------------------------
* FLOPs: 4 n^1.5 B = 2.15 GFLOP against the dense 2 n^2 B = 68.7 GFLOP. The dense GEMM runs at the machine's
  single-core peak (~148-160 GFLOP/s; 200-212 on session 6's host), so the FLOP floor of the Monarch
  multiply is ~10-14 ms (32x).
* Memory: the multiply must read x (32 MiB) and write y (32 MiB), and a fresh y is zeroed by the kernel on first
  touch. One core streams only ~5-12 GB/s here (copy, read + write), so the traffic alone is ~6-13 ms: unlike the
  dense matmul, the Monarch multiply is memory-bound as much as compute-bound. The roofline line printed for each
  size sums the two (serial) and takes their maximum (perfect overlap).
* The kernel before issue 19 ran both block GEMMs over the whole batch, x -> z (32 MiB) -> the L-block result
  (32 MiB) -> an axis-swap copy into the output (32 MiB), and allocated the 32 MiB result with torch.empty, which
  is mmapped in 4 KiB pages: every first touch faulted, ~15 ms per call (measured idle: 43 ms = first GEMM 17.9 +
  second GEMM 9.4 + copy 4.4 + faults ~11; 10x the dense matmul).
* Now the second GEMM writes straight into the batch-innermost result (bmm's out= accepts that strided view), so
  the copy is gone; results of >= 4 MiB come from numpy, which asks for transparent huge pages: the first touch of
  32 MiB costs ~6 ms instead of ~16 ms (rows "numpy/torch.empty + fill"). Measured idle in session 6, a fresh
  result still cost 28.1 ms against 20.4 ms with out= (12.2x against 16.3x). Two causes. (1) The first touch of
  the new buffer: result buffers are now recycled, i.e. once the caller has dropped every reference to a result
  (its numpy view is finalized) the next result of the same size reuses its already-mapped pages (at most
  RESULT_POOL_BYTES are kept), like torch's CUDA caching allocator: 18.5 against 23.7 ms back-to-back
  (torch.utils.benchmark), 16.6 against 20.0 ms in this bench (row "ours cold result" empties the pool before each
  call and so pays the faults, as the first call of a process does). (2) The order of the rows: see timings().
  The batch is walked in chunks of CHUNK_BYTES = 16 MiB per row block: chunks small enough for L2 (<= 1 MiB) were
  25-100% slower, because MKL's batched GEMMs lose efficiency as they get narrow, and 2-64 MiB were within noise
  of each other.
* What is left (measured in session 6, whole batch, 1 thread): the first GEMM takes 14.9 ms reading x row-major
  (each block's operand is 64 floats per row at a 16 KiB stride) and 6.6 ms reading a batch-innermost copy; the
  second takes 7.0 ms. Huge pages for x changed nothing (22.6 vs 22.9 ms), so it is the access pattern, not the
  TLB. A per-chunk transpose of x (torch's copy 6.5 ms per 32 MiB, a blocked numba transpose 5.5-6.7 ms, MKL's
  omatcopy in an earlier session: all at the streaming bandwidth) costs what it saves at every chunk size from
  64 to 1024 rows. Net: 90% of the serial roofline at 1 thread. At 2 threads the dense anchor doubles while the
  multiply, memory-bound, gains 25-30% (61% of its roofline); splitting the batch between two Python threads
  running the 1-thread kernel was no faster (11.3 vs 10.9 ms).
* Per-call overhead: ~0.1 ms at n = 1024 and ~0.27 ms at n = 4096 for a single row: two batched GEMMs of m tiny
  blocks each cost MKL ~1-2 us per block. It matters only below B ~ 64 rows.
* Allocations per call: the result only (and, with autograd, z for the backward); the chunk scratch is reused per
  thread. The backward accumulates dL/dw1 and dL/dw2 chunk by chunk, so gy is never transposed whole.
* Threads: the block GEMMs are batched (bmm) and MKL splits the blocks across threads. Whether the second vCPU
  is a real core depends on the host: in session 5 it did not speed up the dense GEMM (431 ms with 1 thread, 443
  with 2); in session 6 it halved it (324 -> 166 ms) while the Monarch multiply gained 25-30%. Compare each row
  with its own dense anchor.
* Contiguous (row-major) results pay one 2-D transpose of each chunk (the output shuffle P puts the L-block index
  innermost, which no GEMM can write row-major): ~18 ms at this size, hence the transposed-view default.
* Randomized SVD: every pass over A costs the same FLOPs in every library; the difference is orientation. MKL runs
  A^T Q ~2.3x slower than (Q^T A)^T, and A @ (column-major Q), the layout LAPACK's QR returns, ~1.8x slower than
  A @ (row-major Q). torch.svd_lowrank and scikit-learn pass A^T; ours never does. Between power iterations a
  Cholesky-QR basis (3 BLAS-3 calls) replaces Householder QR; the final basis is Householder's, the SVD of the
  wide sketch goes through a QR of its transpose, the test matrix is drawn in float32 (torch's float64 sampler is
  ~7x slower) and the float64-accumulated norm of a float32 A avoids a converting pass (8x slower).

How to read the result on a loaded machine
------------------------------------------
* Read ratios, never absolute times, and read the min column first (the repeat least disturbed), then the median.
* Single-thread rows can be timed in process CPU time (--clock cpu): it leaves out the time the process waited for
  a core, which wall time counts, and is the steadier measure when other processes share the cores. It still
  includes what co-runners do to caches and memory bandwidth.
* The dense anchor is compute-bound; the Monarch multiply is half memory-bound. Co-runners (other processes, other
  VMs on the host) take memory bandwidth and cache before they take FMA throughput, so on a loaded machine the
  Monarch ratio drops below its idle value even though both were timed together. The script prints the load
  average and the streaming bandwidth it measured in the same run; compare the achieved time with the roofline
  line (bytes / measured bandwidth, FLOPs / the dense anchor's rate). A ratio measured at a load average above
  the core count is a lower bound, not the kernel's speed.
* The randomized SVD is mostly GEMM-bound (each pass is 480 MFLOP fp64 over a 32 MB matrix); its ratios move
  less with load, but QR and the small SVD are many short calls that suffer from cache flushes between them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.services.matrix import monarch as monarch_module  # noqa: E402
from backend.services.matrix.lowrank import randomized_svd  # noqa: E402
from backend.services.matrix.monarch import (  # noqa: E402
    monarch_matmul,
    monarch_matmul_einsum,
    monarch_matmul_fly,
    project,
    square_layout,
)
from backend.stats import bootstrap_mean  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------ timing
CPU_CLOCK = False  # --clock cpu: process CPU time for single-thread rows (wall time for multi-thread rows)


def clock() -> Callable[[], float]:
    return time.process_time if CPU_CLOCK and torch.get_num_threads() == 1 else time.perf_counter


def clock_name() -> str:
    return "CPU time" if clock() is time.process_time else "wall time"


SETTLE_SECONDS = 0.3


def timings(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, *, steady: bool = False
) -> dict[str, np.ndarray]:
    """Times of each function over ``repeats`` interleaved rounds (after ``warmup`` calls each).

    ``steady``: every round runs the candidates in a new order (seeded shuffle) and each timed call follows one
    untimed call of the same function, so each candidate is timed near its own steady state, as back-to-back
    harnesses (timeit, torch.utils.benchmark) time it, while a load spike still hits every candidate of the round.
    Why: the first two Monarch calls after the dense anchor are slower than the next ones (medians at n = 1024:
    5.3, 4.2, 3.1, 2.9 ms; at n = 4096 the first was 22.9 ms against 17.8), so with a fixed order the variant
    that always came first after the anchor carried the whole penalty (its min 4.0 ms against 2.9 for the others).

    With more than one thread every call waits SETTLE_SECONDS first: after a BLAS call OpenBLAS's worker threads
    (numpy, scipy, scikit-learn) spin for ~2^28 cycles before they sleep, and a call timed in that window shares
    the cores with them (measured: ours 90 ms right after scikit-learn, 32 ms 0.3 s later; torch 108 vs 42).
    """
    now = clock()
    settle = SETTLE_SECONDS if torch.get_num_threads() > 1 else 0.0
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        for index in rng.permutation(len(order)) if steady else range(len(order)):
            name, fn = order[index]
            time.sleep(settle)
            if steady:
                fn()
            t0 = now()
            fn()
            out[name].append(now() - t0)
    return {name: np.array(v) for name, v in out.items()}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def stream_bandwidth(repeats: int) -> float:
    """Copy bandwidth (read + write bytes per second) of 256 MiB buffers at the current thread count."""
    src = torch.ones(64 << 20)
    dst = torch.empty_like(src)
    t = timings({"copy": lambda: dst.copy_(src)}, repeats)["copy"]
    return 2 * src.numel() * 4 / t.min()


# ---------------------------------------------------------------------------------------------------- multiply
def bench_multiply(sizes: list[tuple[int, int]], threads: list[int], repeats: int) -> dict:
    print("\n== Monarch multiply (m = sqrt(n) blocks) against the dense matmul, fp32 ==")
    print("speed-up = dense time / Monarch time, same thread count, interleaved in a new order each round, each timed "
          "call after an untimed one of the same variant; 'min' and 'median' of the repeats;")
    print("fresh: both allocate their result; out=: both write into a preallocated one")
    results = {}
    for nt in threads:
        set_threads(nt)
        bw = stream_bandwidth(max(3, repeats // 2))
        print(f"\n-- {nt} thread(s), {clock_name()}: streaming copy bandwidth {bw / 1e9:.1f} GB/s (read + write); "
              f"{load()}")
        print(f"{'n':>6} {'B':>5} {'dense ms':>9} {'GFLOP/s':>8} | {'variant':<22} {'ms min':>8} {'ms med':>8} "
              f"{'x min':>7} {'x med':>7} {'FLOP x':>7}")
        for n, batch in tqdm(sizes, desc=f"multiply, {nt} thread(s)", file=sys.stderr):
            gen = torch.Generator().manual_seed(0)
            w1s, w2s = square_layout(n)
            w1 = torch.randn(w1s, generator=gen) / math.sqrt(w1s[2])
            w2 = torch.randn(w2s, generator=gen) / math.sqrt(w2s[2])
            dense_w = torch.randn(n, n, generator=gen) / math.sqrt(n)
            x = torch.randn(batch, n, generator=gen)
            out_dense = torch.zeros(batch, n)
            out_view = torch.zeros(n, batch).t()
            out_rows = torch.zeros(batch, n)
            fns: dict[str, Callable[[], object]] = {
                "dense": lambda x=x, w=dense_w: x @ w.T,
                "dense out=": lambda x=x, w=dense_w, o=out_dense: torch.matmul(x, w.T, out=o),
                "ours": lambda x=x, w1=w1, w2=w2: monarch_matmul(x, w1, w2),
                "ours cold result": lambda x=x, w1=w1, w2=w2: cold_call(x, w1, w2),
                "ours contiguous": lambda x=x, w1=w1, w2=w2: monarch_matmul(x, w1, w2, contiguous=True),
                "ours out= (view)": lambda x=x, w1=w1, w2=w2, o=out_view: monarch_matmul(x, w1, w2, out=o),
                "ours out= (rows)": lambda x=x, w1=w1, w2=w2, o=out_rows: monarch_matmul(x, w1, w2, out=o),
                "fly bmm sequence": lambda x=x, w1=w1, w2=w2: monarch_matmul_fly(x, w1, w2),
            }
            if n * batch <= 4096 * 2048:
                fns["einsum"] = lambda x=x, w1=w1, w2=w2: monarch_matmul_einsum(x, w1, w2)
            with torch.no_grad():
                t = timings(fns, repeats, steady=True)
            dense_flops = 2 * batch * n * n
            rate = dense_flops / t["dense"].min()
            flop_ratio = math.sqrt(n) / 2
            print(f"{n:>6} {batch:>5} {1e3 * t['dense'].min():>9.1f} {rate / 1e9:>8.0f} |")
            row = {"dense_rate": rate, "bandwidth": bw}
            for name in fns:
                if name.startswith("dense"):
                    continue
                anchor = t["dense out="] if "out=" in name else t["dense"]
                sp_min, sp_med = anchor.min() / t[name].min(), np.median(anchor) / np.median(t[name])
                row[name] = (sp_min, sp_med, t[name].min())
                print(f"{'':>6} {'':>5} {'':>9} {'':>8} | {name:<22} {1e3 * t[name].min():>8.2f} "
                      f"{1e3 * np.median(t[name]):>8.2f} {sp_min:>6.1f}x {sp_med:>6.1f}x {flop_ratio:>6.0f}x",
                      flush=True)
            # roofline of the default call: FLOPs at the dense anchor's rate; bytes: x read, y written (a recycled
            # result buffer is already mapped, so no first-touch pass; the cold row pays one)
            monarch_flops = 4 * n**1.5 * batch
            t_flops = monarch_flops / rate
            t_bytes = 2 * batch * n * 4 / bw
            best = t["ours"].min()
            print(f"{'':>6} {'':>5} {'':>9} {'':>8} | roofline: FLOPs {1e3 * t_flops:.1f} ms + bytes "
                  f"{1e3 * t_bytes:.1f} ms (x read, y written at {bw / 1e9:.1f} GB/s): "
                  f"{1e3 * max(t_flops, t_bytes):.1f}-{1e3 * (t_flops + t_bytes):.1f} ms "
                  f"(overlapped-serial) = {t['dense'].min() / (t_flops + t_bytes):.0f}-"
                  f"{t['dense'].min() / max(t_flops, t_bytes):.0f}x; ours {1e3 * best:.1f} ms "
                  f"= {(t_flops + t_bytes) / best:.0%} of the serial roofline")
            if n == 4096:
                row["harness"] = harness_check(x, w1, w2, dense_w)
                d_ms, o_ms = row["harness"]
                print(f"{'':>6} {'':>5} {'':>9} {'':>8} | cross-check, torch.utils.benchmark (back-to-back, median): "
                      f"dense {1e3 * d_ms:.1f} ms, ours {1e3 * o_ms:.2f} ms = {d_ms / o_ms:.1f}x")
            results[(n, batch, nt)] = row
            del dense_w
    return results


def harness_check(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, dense_w: torch.Tensor) -> tuple[float, float]:
    """Median seconds of the dense matmul and of ours under an independent harness (torch.utils.benchmark)."""
    from torch.utils import benchmark

    env = {"x": x, "w1": w1, "w2": w2, "w": dense_w, "monarch_matmul": monarch_matmul}
    threads = torch.get_num_threads()
    dense = benchmark.Timer("x @ w.T", globals=env, num_threads=threads).timeit(6).median
    ours = benchmark.Timer("monarch_matmul(x, w1, w2)", globals=env, num_threads=threads).timeit(60).median
    return dense, ours


def cold_call(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """A multiply whose result buffer is new (the first call of a process): the recycled buffers are dropped first."""
    monarch_module._RESULT_POOL.clear()
    return monarch_matmul(x, w1, w2)


def profile_multiply(repeats: int) -> None:
    """The measurements behind the docstring: per-call overhead, chunk size, thread use, allocation."""
    print("\n== Profile of the Monarch multiply (fp32) ==")
    set_threads(1)
    gen = torch.Generator().manual_seed(0)
    w1s, w2s = square_layout(4096)
    w1, w2 = torch.randn(w1s, generator=gen), torch.randn(w2s, generator=gen)
    print("per-call overhead (n = 1024 and 4096, tiny batches; microseconds per call):")
    for n in (1024, 4096):
        a, b = (torch.randn(s, generator=gen) for s in square_layout(n))
        for batch in (1, 8, 64):
            x = torch.randn(batch, n, generator=gen)
            t = timings({"m": lambda x=x, a=a, b=b: monarch_matmul(x, a, b)}, 50, warmup=5)["m"]
            print(f"  n={n:>5} B={batch:>3}: {1e6 * t.min():7.1f} us (min), {1e6 * np.median(t):7.1f} us (median)")
    x = torch.randn(2048, 4096, generator=gen)
    print(f"chunk size (n = 4096, B = 2048, 1 thread; CHUNK_BYTES now {monarch_module.CHUNK_BYTES >> 20} MiB):")
    saved = monarch_module.CHUNK_BYTES
    fns = {}
    for chunk in (256 << 10, 1 << 20, 2 << 20, 4 << 20, 16 << 20, 64 << 20):
        def run(chunk=chunk):
            monarch_module.CHUNK_BYTES = chunk
            with torch.no_grad():
                monarch_matmul(x, w1, w2)
        fns[chunk] = run
    t = timings(fns, repeats)
    monarch_module.CHUNK_BYTES = saved
    for chunk, v in t.items():
        rows = max(16, chunk // (4 * 4096))
        print(f"  {chunk / 2**20:6.2f} MiB ({min(rows, 2048):>4} rows): {1e3 * v.min():7.2f} ms min, "
              f"{1e3 * np.median(v):7.2f} ms median")
    print("fresh result vs reused (out=), and numpy's huge pages vs torch.empty (32 MiB, first touch):")
    out = torch.zeros(4096, 2048).t()
    fns = {"fresh (numpy, huge pages)": lambda: monarch_matmul(x, w1, w2),
           "out= (no faults)": lambda: monarch_matmul(x, w1, w2, out=out),
           "torch.empty + fill": lambda: torch.empty(8 << 20).fill_(1.0),
           "numpy empty + fill": lambda: torch.from_numpy(np.empty(8 << 20, np.float32)).fill_(1.0)}
    with torch.no_grad():
        t = timings(fns, repeats)
    for name, v in t.items():
        print(f"  {name:<28} {1e3 * v.min():7.2f} ms min, {1e3 * np.median(v):7.2f} ms median")


def bench_projection(sizes: list[int], repeats: int) -> None:
    print("\n== Monarch projection (m^2 SVDs of m x m) against one full SVD of the same n x n matrix (fp64) ==")
    print(f"{'n':>6} {'projection s':>12} {'full SVD s':>10} {'ratio':>7} {'flop ratio ~n^0.5':>17}")
    for n in tqdm(sizes, desc="projection", file=sys.stderr):
        a = np.random.default_rng(1).standard_normal((n, n))
        shapes = square_layout(n)
        t = timings({"proj": lambda a=a, shapes=shapes: project(a, *shapes),
                     "svd": lambda a=a: np.linalg.svd(a)}, repeats, warmup=0)
        print(f"{n:>6} {t['proj'].min():>12.3f} {t['svd'].min():>10.2f} {t['svd'].min() / t['proj'].min():>6.1f}x "
              f"{math.sqrt(n):>16.0f}x", flush=True)


# -------------------------------------------------------------------------------------------- randomized SVD
def hard_matrix(n: int, rank: int, noise: float, seed: int = 0) -> np.ndarray:
    """A = U diag(linspace(100, 10)) V^T + noise * G, U and V random orthonormal (the spec's benchmark matrix)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    v, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    return (u * np.linspace(100.0, 10.0, rank)) @ v.T + noise * rng.standard_normal((n, n))


def rsvd_methods(rank: int, oversample: int) -> dict[str, Callable]:
    """name -> fn(a, power_iters, seed) returning (U, s, Vt) as numpy, each at the same sketch."""
    from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

    def ours(a, q, seed):
        r = randomized_svd(a, rank, oversample=oversample, power_iters=q, seed=seed, estimate_spectral=False)
        return r.u, r.s, r.vt

    def torch_lowrank(a, q, seed):
        torch.manual_seed(seed)
        u, s, v = torch.svd_lowrank(torch.from_numpy(a), q=rank + oversample, niter=q)
        return u[:, :rank].numpy(), s[:rank].numpy(), v[:, :rank].T.numpy()

    def sklearn(a, q, seed):
        return sk_randomized_svd(a, rank, n_oversamples=oversample, n_iter=q, random_state=seed)

    return {"ours": ours, "torch.svd_lowrank": torch_lowrank, "sklearn randomized_svd": sklearn}


def default_methods(rank: int) -> dict[str, Callable]:
    """Each library's defaults (second rows): ours with its spectral estimate, torch with q = rank (its default
    q = 6 cannot return rank 50) and its default niter = 2, scikit-learn with n_iter='auto' (7 here)."""
    from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

    def ours(a, seed):
        r = randomized_svd(a, rank, seed=seed)
        return r.u, r.s, r.vt

    def torch_lowrank(a, seed):
        torch.manual_seed(seed)
        u, s, v = torch.svd_lowrank(torch.from_numpy(a), q=rank)
        return u[:, :rank].numpy(), s[:rank].numpy(), v[:, :rank].T.numpy()

    def sklearn(a, seed):
        return sk_randomized_svd(a, rank, random_state=seed)

    return {"ours (defaults: p=10, q=2, + spectral estimate)": ours,
            "torch.svd_lowrank (defaults: niter=2; q=k)": torch_lowrank,
            "sklearn randomized_svd (defaults: p=10, n_iter=7)": sklearn}


def diff_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a minus mean of b with a 95% interval, each resampled on its own (unpaired: different generators)."""
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    mb = b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    d = ma - mb
    return float(a.mean() - b.mean()), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    iv = bootstrap_mean(values)  # backend.stats: percentile bootstrap over seeds, 2,000 resamples
    return iv.estimate, iv.low, iv.high


def bench_rsvd(n: int, rank: int, oversample: int, noise: float, threads: list[int], repeats: int, seeds: int,
               curve_iters: list[int], plot: Path | None) -> dict:
    print(f"\n== Randomized SVD, {n} x {n}, rank {rank} + N(0, {noise}^2) noise; sketch k = {rank}, p = {oversample} ==")
    print("error ratio = ||A - U S V^T||_F / optimal (Eckart-Young); mean over "
          f"{seeds} seeds with a 95% bootstrap interval; time: the same call timed {repeats}x, interleaved")
    a64 = hard_matrix(n, rank, noise)
    s_full = np.linalg.svd(a64, compute_uv=False)
    optimal = math.sqrt(float(np.sum(s_full[rank:] ** 2)))
    methods = rsvd_methods(rank, oversample)
    results: dict = {"curves": {}, "matched": {}, "defaults": {}, "rank": rank}
    for dtype in ("float64", "float32"):
        a = a64 if dtype == "float64" else a64.astype(np.float32)

        def err(usv, a=a) -> float:
            u, s, vt = usv
            return float(np.linalg.norm(a64 - (u.astype(np.float64) * s) @ vt.astype(np.float64))) / optimal

        for nt in threads:
            set_threads(nt)
            with threadpool_limits(nt):
                print(f"\n-- {dtype}, {nt} thread(s), {clock_name()}; {load()}")
                print(f"{'method':<50} {'q':>2} {'ms min':>8} {'ms med':>8} {'vs fastest peer':>15} "
                      f"{'error ratio (95% CI)':>32}")
                for q in tqdm(curve_iters, desc=f"rsvd {dtype} {nt}t", file=sys.stderr):
                    fns = {name: (lambda fn=fn, q=q, a=a: fn(a, q, 0)) for name, fn in methods.items()}
                    t = timings(fns, repeats)
                    errors = {name: np.array([err(fn(a, q, s)) for s in range(seeds)]) for name, fn in methods.items()}
                    peers = [k for k in methods if k != "ours"]
                    fastest = min(peers, key=lambda k: t[k].min())
                    for name in methods:
                        ci = mean_ci(errors[name])
                        rel = t[name].min() / t[fastest].min()
                        print(f"{name:<50} {q:>2} {1e3 * t[name].min():>8.1f} {1e3 * np.median(t[name]):>8.1f} "
                              f"{rel:>14.2f}x {ci[0]:>12.6f} [{ci[1]:.6f}, {ci[2]:.6f}]", flush=True)
                        results["curves"][(dtype, nt, name, q)] = (float(np.median(t[name])), t[name].min(), ci)
                    if q == 2:
                        results["matched"][(dtype, nt)] = {"times": {k: v.min() for k, v in t.items()},
                                                           "medians": {k: float(np.median(v)) for k, v in t.items()},
                                                           "errors": errors, "fastest_peer": fastest}
                defaults = default_methods(rank)
                t = timings({name: (lambda fn=fn, a=a: fn(a, 0)) for name, fn in defaults.items()}, max(3, repeats // 2))
                for name, fn in defaults.items():
                    ci = mean_ci(np.array([err(fn(a, s)) for s in range(max(3, seeds // 2))]))
                    print(f"{name:<50} {'':>2} {1e3 * t[name].min():>8.1f} {1e3 * np.median(t[name]):>8.1f} "
                          f"{'':>15} {ci[0]:>12.6f} [{ci[1]:.6f}, {ci[2]:.6f}]", flush=True)
                    results["defaults"][(dtype, nt, name)] = (t[name].min(), ci)
    if plot is not None:
        plot_curves(results["curves"], threads, curve_iters, plot, rank, oversample)
    return results


def plot_curves(curves: dict, threads: list[int], iters: list[int], path: Path, rank: int, oversample: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = ("float64", "float32")
    fig, axes = plt.subplots(len(dtypes), len(threads), figsize=(5.2 * len(threads), 4.2 * len(dtypes)), squeeze=False)
    colors = {"ours": "#b0413e", "torch.svd_lowrank": "#2f6690", "sklearn randomized_svd": "#6a8d3a"}
    for i, dtype in enumerate(dtypes):
        for j, nt in enumerate(threads):
            ax = axes[i][j]
            for name, color in colors.items():
                pts = [(curves[(dtype, nt, name, q)][0], curves[(dtype, nt, name, q)][2]) for q in iters
                       if (dtype, nt, name, q) in curves]
                if not pts:
                    continue
                xs = [1e3 * p[0] for p in pts]
                ys = [p[1][0] - 1 for p in pts]
                lo = [p[1][0] - p[1][1] for p in pts]
                hi = [p[1][2] - p[1][0] for p in pts]
                ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker="o", label=name, capsize=2)
                for x, y, q in zip(xs, ys, iters, strict=False):
                    ax.annotate(f"q={q}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
            ax.set_yscale("log")
            ax.set_xlabel("median time per call (ms)")
            ax.set_ylabel("error ratio - 1 (mean over seeds, 95% CI)")
            ax.set_title(f"{dtype}, {nt} thread(s), {'CPU' if CPU_CLOCK and nt == 1 else 'wall'} time")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Randomized SVD: error against time\nmatched sketches (k = {rank}, p = {oversample}, "
                 f"q = {min(iters)}..{max(iters)})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\nplot: {path}")


# -------------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke run)")
    parser.add_argument("--only", choices=("multiply", "projection", "rsvd"), action="append")
    parser.add_argument("--profile", action="store_true", help="also print the multiply profile")
    parser.add_argument("--threads", default="1,2", help="thread counts for every comparison")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: process CPU time for 1-thread rows, the steadier measure on a loaded machine")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per randomized-SVD error estimate")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "figures" / "matrix_rsvd_error_time.png")
    args = parser.parse_args()
    global CPU_CLOCK
    CPU_CLOCK = args.clock == "cpu"
    threads = [int(t) for t in args.threads.split(",")]
    parts = set(args.only or ("multiply", "projection", "rsvd"))
    print(f"bench_matrix: torch {torch.__version__}, {load()}")
    if args.quick:
        mult_sizes, proj_sizes, rsvd_n, repeats, seeds, iters = [(1024, 512), (4096, 256)], [256], 500, 3, 3, [1, 2]
    else:
        mult_sizes, proj_sizes, rsvd_n = [(4096, 2048), (1024, 2048), (16384, 256)], [1024, 4096], 2000
        repeats, seeds, iters = args.repeats, args.seeds, [0, 1, 2, 3, 4]
    mult = rsvd = None
    if args.profile:
        profile_multiply(repeats)
    if "multiply" in parts:
        mult = bench_multiply(mult_sizes, threads, repeats)
    if "projection" in parts:
        set_threads(max(threads))
        bench_projection(proj_sizes, repeats=1 if not args.quick else 2)
    if "rsvd" in parts:
        rsvd = bench_rsvd(rsvd_n, 50 if not args.quick else 20, 10, 0.1, threads, max(3, repeats), seeds, iters,
                          None if args.quick else args.plot)
    print(f"\n== Goals (issue 19); {load()} ==")
    if mult:
        for (n, batch, nt), row in mult.items():
            if n == 4096:
                sp_min, sp_med, _ = row["ours"]
                spc = row["ours contiguous"][0]
                d_ms, o_ms = row["harness"]
                print(f"Monarch multiply n=4096 B={batch} fp32, {nt} thread(s): {sp_min:.1f}x (median {sp_med:.1f}x; "
                      f"contiguous result {spc:.1f}x; torch.utils.benchmark {d_ms / o_ms:.1f}x) the dense matmul; "
                      f"goal >= 16x: {'MET' if sp_min >= 16 else 'MISSED'}")
    if rsvd:
        for (dtype, nt), m in rsvd["matched"].items():
            fastest = m["fastest_peer"]
            rel = m["times"]["ours"] / m["times"][fastest]
            rel_med = m["medians"]["ours"] / m["medians"][fastest]
            dci = diff_ci(m["errors"]["ours"], m["errors"][fastest])
            same = dci[1] <= 0 <= dci[2]
            print(f"randomized SVD {dtype}, {nt} thread(s), k={rsvd['rank']} p=10 q=2: ours {rel:.2f}x the time of the fastest peer "
                  f"({fastest}; median {rel_med:.2f}x); error ratio difference ours - peer {dci[0]:+.2e} "
                  f"[{dci[1]:+.2e}, {dci[2]:+.2e}] ({'equal within the interval' if same else 'NOT equal'}); "
                  f"goal <= 0.8x at equal error: {'MET' if rel <= 0.8 and same else 'MISSED'}")


if __name__ == "__main__":
    main()
