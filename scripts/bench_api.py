"""Requests per second and p50/p99 latency of /api/resolve under gunicorn (2 workers) on loopback; then the
stove API's latency under abuse (``scripts/load_abuse.py``: slow uploads, heavy requests, a job flood).

The anchor of the first part is a trivial Flask endpoint served by the same gunicorn in the same run; the load comes
from separate processes. Bounded in request count and time. Bar: /api/resolve reaches at least 0.5 of the trivial
endpoint's throughput. The anchor of the second part is the same stove probe on the idle server; bar: the worst
probe under load stays under 2 s, nothing lost.

    python scripts/bench_api.py [--requests 4000] [--concurrency 8] [--load-seconds 30]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 60.0
QUERIES = [
    "https://arxiv.org/abs/2307.01850v2",
    "https://www.google.com/url?sa=t&url=https%3A%2F%2Farxiv.org%2Fabs%2F2305.17493v2&usg=x",
    "https://openreview.net/forum?id=B18WgG-CZ",
    "Dao et al. Monarch. arXiv preprint arXiv:2204.00595 (2022).",
    "https://aclanthology.org/2024.naacl-long.431/",
]


def make_app():
    """The backend plus one trivial endpoint: the anchor, served by the same workers."""
    sys.path.insert(0, str(ROOT))
    from backend import create_app

    app = create_app({"INSTANCE_DIR": os.environ["BENCH_INSTANCE_DIR"]})

    @app.get("/bench/trivial")
    def trivial():
        return {"ok": True}

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client(port: int, paths: list[str], count: int, deadline: float, out: mp.Queue) -> None:
    latencies: list[float] = []
    errors = 0

    def worker(share: int) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(share):
            if time.perf_counter() > deadline:
                break
            start = time.perf_counter()
            try:
                conn.request("GET", paths[i % len(paths)])
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors += 1
            except OSError:
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            latencies.append(time.perf_counter() - start)
        conn.close()

    threads = [threading.Thread(target=worker, args=(count // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, errors))


def run_load(port: int, paths: list[str], total: int, concurrency: int) -> dict:
    """``concurrency`` keep-alive connections spread over separate processes."""
    processes = max(1, concurrency // 4)
    queue: mp.Queue = mp.Queue()
    deadline = time.perf_counter() + TIME_LIMIT_S
    start = time.perf_counter()
    procs = [mp.Process(target=_client, args=(port, paths, total // processes, deadline, queue)) for _ in range(processes)]
    for p in procs:
        p.start()
    latencies, errors = [], 0
    for _ in procs:
        lat, err = queue.get(timeout=TIME_LIMIT_S + 30)
        latencies += lat
        errors += err
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load-seconds", type=float, default=30.0, help="the abuse part (0 skips it)")
    args = parser.parse_args()
    port = _free_port()
    instance = tempfile.mkdtemp(prefix="bench-api-")
    # The repository's gunicorn.conf.py applies (production settings); its sidecars share the same instance folder.
    env = {**os.environ, "BENCH_INSTANCE_DIR": instance, "BACKEND_INSTANCE_DIR": instance, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "--chdir", str(ROOT / "scripts"), "bench_api:make_app()"],
        env=env,
        cwd=ROOT,
    )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        resolve_paths = [f"/api/resolve?q={quote(q, safe='')}&context=link" for q in QUERIES]
        run_load(port, ["/bench/trivial"] + resolve_paths, 200, args.concurrency)  # warm both workers
        results = {}
        for name, paths in tqdm([("trivial endpoint", ["/bench/trivial"]), ("/api/resolve", resolve_paths)], desc="load", leave=False):
            results[name] = run_load(port, paths, args.requests, args.concurrency)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"gunicorn -w 2 on loopback, {args.concurrency} keep-alive connections from separate processes")
    print(f"{'endpoint':<18}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in results.items():
        print(f"{name:<18}{r['requests']:>9}{r['errors']:>8}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}")
    ratio = results["/api/resolve"]["rps"] / results["trivial endpoint"]["rps"]
    print(f"throughput ratio /api/resolve / trivial: {ratio:.2f} (bar >= 0.5: {'met' if ratio >= 0.5 else 'MISSED'})")
    if args.load_seconds > 0:
        sys.path.insert(0, str(ROOT / "scripts"))
        from load_abuse import report, run_suite, verdict

        result = run_suite(args.load_seconds)
        print(report(result))
        problems = verdict(result)
        print("under abuse: " + ("bar met (worst probe < 2 s, nothing lost)" if not problems
                                 else "MISSED: " + "; ".join(problems)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
