"""Load and abuse suite: the production server under slow uploads, heavy requests and a job flood, while a
separate process probes the stove API. Bounded in time, loopback only.

    python scripts/load_abuse.py [--seconds 20]

Starts ``gunicorn backend.wsgi:app`` with the repository's gunicorn.conf.py on a free loopback port (temporary
instance folder), then for ``--seconds``:

- slow clients: connections that send headers and then trickle (or stall) a 1 MB body, and ones that never finish
  their headers;
- heavy requests: threads posting synchronous MAD runs (the KDE model whose estimate is low), exact SVDs of a
  500 x 500 JSON matrix and 20,000-sample tokenizations, as fast as they are answered;
- a job flood: submissions of short demo jobs as fast as they are answered;
- a probe in its own process: every 0.25 s, the stove's burner list, and a timer armed and cancelled (token).

Prints the probe's latencies, every status seen, and what was lost (a probe that failed, an accepted job that did
not finish, a timer whose arm or cancel is missing from the audit log). Exit status 1 when the worst probe took
2 s or more, anything answered 500, or anything was lost. ``tests/load/test_abuse.py`` runs it in a short form.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "load-suite-stove-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORST_PROBE_BAR_S = 2.0
MAD_KDE = {"model": "kde", "target": "grid25", "loop": "fresh_data", "n_ini": 1000, "n_synth": 1000,
           "generations": 5, "replicates": 300, "metrics": [], "scatter_points": 0, "mode": "sync"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``gunicorn backend.wsgi:app`` from the repository root (so gunicorn.conf.py applies) on loopback."""

    def __init__(self, instance: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STOVE_", "JOBS_", "WEB_", "API_"))}
        env.update({"BACKEND_INSTANCE_DIR": str(instance), "HOST": "127.0.0.1", "PORT": str(self.port),
                    "STOVE_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
                    "WEB_HEADER_TIMEOUT_S": "3", "WEB_BODY_TIMEOUT_S": "5", **settings})
        self.log = open(instance / "gunicorn.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "backend.wsgi:app"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            try:
                ok = requests.get(self.url + "/api/stove/health", timeout=2).json()
                if ok.get("scheduler", {}).get("leader_pid"):  # the scheduler sidecar holds the lead
                    requests.get(self.url + "/api/health", timeout=2).raise_for_status()
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not become ready within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


# ---------------------------------------------------------------- the probe (its own process)
def _probe(url: str, seconds: float, out: mp.Queue) -> None:
    latencies: list[float] = []
    failures: list[str] = []
    arms = cancels = 0
    session = requests.Session()
    end = time.monotonic() + seconds
    step = 0
    while time.monotonic() < end:
        calls = [("GET", "/api/stove/burners", None)]
        if step % 2 == 0:
            calls += [("POST", "/api/stove/burners/left/timer", {"minutes": 30}),
                      ("DELETE", "/api/stove/burners/left/timer", None)]
        for method, path, body in calls:
            started = time.monotonic()
            try:
                r = session.request(method, url + path, json=body, headers=AUTH if method != "GET" else None,
                                    timeout=30)
                ok = r.status_code == 200
            except requests.RequestException as exc:
                ok, r = False, exc
            latencies.append(time.monotonic() - started)
            if not ok:
                failures.append(f"{method} {path}: {getattr(r, 'status_code', r)}")
            elif method == "POST":
                arms += 1
            elif method == "DELETE":
                cancels += 1
        step += 1
        time.sleep(0.25)
    session.close()
    out.put({"latencies": latencies, "failures": failures, "arms": arms, "cancels": cancels})


# ---------------------------------------------------------------- the abusers (threads here)
def _slow_upload(url: str, stop: threading.Event, outcomes: collections.Counter, stall: bool) -> None:
    port = int(url.rsplit(":", 1)[1])
    while not stop.is_set():
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"POST /api/matrix/lowrank HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"matrix\": [[")
                sock.settimeout(0.5)
                answer = b""
                while not stop.is_set() and time.monotonic() - started < 20:
                    try:
                        answer = sock.recv(4096)
                        break
                    except TimeoutError:
                        if not stall:
                            sock.sendall(b"1,")
                outcome = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
                outcomes[f"slow body -> {outcome}"] += 1
        except OSError:
            outcomes["slow body -> reset"] += 1


def _slow_headers(url: str, stop: threading.Event, outcomes: collections.Counter) -> None:
    port = int(url.rsplit(":", 1)[1])
    while not stop.is_set():
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                sock.settimeout(0.5)
                while not stop.is_set() and time.monotonic() - started < 20:
                    try:
                        data = sock.recv(4096)
                        outcomes["slow headers -> " + ("answered" if data else "closed")] += 1
                        break
                    except TimeoutError:
                        sock.sendall(b"a")
        except OSError:
            outcomes["slow headers -> reset"] += 1


def _heavy(url: str, stop: threading.Event, statuses: collections.Counter, kind: int) -> None:
    import numpy as np

    session = requests.Session()
    matrix = np.random.default_rng(kind).standard_normal((500, 500)).round(6).tolist()
    requests_by_kind = [
        ("mad", "/api/mad/simulate", MAD_KDE),
        ("svd", "/api/matrix/lowrank", {"matrix": matrix, "rank": 5}),
        ("tokenize", "/api/tokenize/distribution", {"text": "self-consuming generative loops", "samples": 20000}),
    ]
    i = kind
    while not stop.is_set():
        name, path, body = requests_by_kind[i % len(requests_by_kind)]
        i += 1
        try:
            r = session.post(url + path, json=body, timeout=60)
            statuses[f"{name} {r.status_code}"] += 1
        except requests.RequestException as exc:
            statuses[f"{name} {type(exc).__name__}"] += 1
    session.close()


def _flood(url: str, stop: threading.Event, statuses: collections.Counter, accepted: list[str]) -> None:
    session = requests.Session()
    while not stop.is_set():
        try:
            r = session.post(url + "/api/jobs", json={"kind": "jobs.demo_sleep", "params": {"steps": 2, "step_s": 0.05}},
                             timeout=30)
        except requests.RequestException as exc:
            statuses[f"submit {type(exc).__name__}"] += 1
            continue
        statuses[f"submit {r.status_code}"] += 1
        if r.status_code == 202:
            accepted.append(r.json()["status_url"])
        elif r.status_code == 429:
            time.sleep(0.05)
    session.close()


def _gunicorn_refusals(url: str) -> dict[str, tuple[int, str | None]]:
    """What the server (not the app) answers to an over-long request line and too many headers: (status, code)."""
    out = {}
    for name, kwargs in (("long request line", {"params": {"q": "a" * 9000}}),
                         ("too many headers", {"headers": {f"X-H{i}": "x" for i in range(150)}})):
        r = requests.get(url + "/api/resolve", timeout=30, **kwargs)
        try:
            out[name] = (r.status_code, r.json().get("code"))
        except ValueError:
            out[name] = (r.status_code, None)  # not JSON
    return out


# ---------------------------------------------------------------- the suite
def run_suite(seconds: float = 20.0, *, heavy_threads: int = 4, slow_clients: int = 6,
              extra_load=None, settings: dict[str, str] | None = None) -> dict:
    """Start the server, abuse it for ``seconds`` while the probe runs; the measurements as a dict."""
    instance = Path(tempfile.mkdtemp(prefix="load-abuse-"))
    server = Server(instance, **(settings or {}))
    try:
        server.wait_ready()
        idle = []  # the anchor: the same probe with nothing else running
        with requests.Session() as session:
            for _ in range(20):
                started = time.monotonic()
                session.get(server.url + "/api/stove/burners", timeout=30).raise_for_status()
                idle.append(time.monotonic() - started)
        refusals = _gunicorn_refusals(server.url)
        stop = threading.Event()
        outcomes: collections.Counter = collections.Counter()
        statuses: collections.Counter = collections.Counter()
        accepted: list[str] = []
        threads = [threading.Thread(target=_slow_upload, args=(server.url, stop, outcomes, i % 2 == 0), daemon=True)
                   for i in range(slow_clients // 2)]
        threads += [threading.Thread(target=_slow_headers, args=(server.url, stop, outcomes), daemon=True)
                    for _ in range(slow_clients - slow_clients // 2)]
        threads += [threading.Thread(target=_heavy, args=(server.url, stop, statuses, i), daemon=True)
                    for i in range(heavy_threads)]
        threads.append(threading.Thread(target=_flood, args=(server.url, stop, statuses, accepted), daemon=True))
        queue: mp.Queue = mp.get_context("spawn").Queue()
        probe = mp.get_context("spawn").Process(target=_probe, args=(server.url, seconds, queue))
        for thread in threads:
            thread.start()
        probe.start()
        extra = extra_load(server.url, seconds) if extra_load else None
        probed = queue.get(timeout=seconds + 120)
        probe.join(30)
        stop.set()
        for thread in threads:
            thread.join(30)
        # Nothing lost: every accepted job finishes; every timer armed and cancelled is in the audit log.
        session = requests.Session()
        unfinished = []
        deadline = time.monotonic() + 60
        for status_url in accepted:
            while True:
                job = session.get(server.url + status_url, timeout=30).json()
                if job.get("status") in ("done", "failed", "cancelled") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if job.get("status") != "done":
                unfinished.append(f"{status_url}: {job.get('status')} {job.get('error', '')}")
        audit = session.get(server.url + "/api/stove/audit", params={"limit": 500, "burner": "left"}, headers=AUTH,
                            timeout=30).json()["entries"]
        session.close()
        armed = sum(1 for e in audit if e["action"] == "arm_timer")
        cancelled = sum(1 for e in audit if e["action"] == "cancel_timer")
        latencies = sorted(probed["latencies"])
        return {
            "seconds": seconds,
            "probes": len(latencies),
            "probe_p50_s": statistics.median(latencies) if latencies else None,
            "probe_p90_s": latencies[int(0.9 * (len(latencies) - 1))] if latencies else None,
            "idle_probe_p50_s": statistics.median(idle),
            "probe_worst_s": latencies[-1] if latencies else None,
            "probe_failures": probed["failures"],
            "timer_arms": probed["arms"], "timer_cancels": probed["cancels"],
            "audit_arms": armed, "audit_cancels": cancelled,
            "statuses": dict(sorted(statuses.items())),
            "slow_clients": dict(sorted(outcomes.items())),
            "jobs_accepted": len(accepted),
            "jobs_unfinished": unfinished,
            "extra": extra,
            "refusals": refusals,
            "server_log": str(instance / "gunicorn.log"),
        }
    finally:
        server.stop()


def verdict(result: dict) -> list[str]:
    """What failed, in words (empty when the suite passed)."""
    problems = []
    if result["probes"] < 20:
        problems.append(f"only {result['probes']} probes (at least 20 wanted)")
    if result["probe_worst_s"] is None or result["probe_worst_s"] >= WORST_PROBE_BAR_S:
        problems.append(f"worst probe {result['probe_worst_s']} s (bar < {WORST_PROBE_BAR_S} s)")
    if result["probe_failures"]:
        problems.append(f"failed probes: {result['probe_failures'][:5]}")
    server_errors = {k: v for k, v in result["statuses"].items() if k.endswith((" 500", " 502", " 504"))}
    if server_errors:
        problems.append(f"server errors: {server_errors}")
    if result["jobs_unfinished"]:
        problems.append(f"accepted jobs that did not finish: {result['jobs_unfinished'][:5]}")
    if result["audit_arms"] < result["timer_arms"] or result["audit_cancels"] < result["timer_cancels"]:
        problems.append(f"audit log misses timer actions: {result['audit_arms']}/{result['timer_arms']} arms, "
                        f"{result['audit_cancels']}/{result['timer_cancels']} cancels")
    if not result["jobs_accepted"]:
        problems.append("the job flood got no job accepted")
    if any(code is None for _, code in result["refusals"].values()):
        problems.append(f"gunicorn refusals not in the JSON error shape: {result['refusals']}")
    return problems


def report(result: dict) -> str:
    lines = [
        f"load and abuse for {result['seconds']:g} s on loopback (gunicorn backend.wsgi:app, gunicorn.conf.py)",
        f"stove probes: {result['probes']} from a separate process; p50 {1e3 * result['probe_p50_s']:.1f} ms, "
        f"p90 {1e3 * result['probe_p90_s']:.1f} ms, worst {1e3 * result['probe_worst_s']:.1f} ms (bar < {1e3 * WORST_PROBE_BAR_S:.0f} ms); "
        f"failures {len(result['probe_failures'])}",
        f"the same probe idle (anchor, same run): p50 {1e3 * result['idle_probe_p50_s']:.1f} ms; under load / idle: "
        f"{result['probe_p50_s'] / result['idle_probe_p50_s']:.1f}x at p50",
        f"timers armed/cancelled by the probe: {result['timer_arms']}/{result['timer_cancels']}; in the audit log: "
        f"{result['audit_arms']}/{result['audit_cancels']}",
        f"job flood: {result['jobs_accepted']} accepted, {len(result['jobs_unfinished'])} not finished",
        "statuses: " + json.dumps(result["statuses"]),
        "slow clients: " + json.dumps(result["slow_clients"]),
        "server refusals (status, code): " + json.dumps(result["refusals"]),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--heavy-threads", type=int, default=4)
    parser.add_argument("--slow-clients", type=int, default=6)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a server setting for this run (environment variable), e.g. COMPUTE_CONCURRENCY=1")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    result = run_suite(args.seconds, heavy_threads=args.heavy_threads, slow_clients=args.slow_clients,
                       settings=settings)
    print(report(result))
    problems = verdict(result)
    print("verdict: " + ("passed" if not problems else "FAILED: " + "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
