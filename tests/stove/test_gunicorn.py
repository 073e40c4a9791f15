"""The production command (``gunicorn backend.wsgi:app`` with the repository's gunicorn.conf.py) with several
worker processes: one scheduler (its own process beside the workers), shutoffs sent to different workers join one
cut, and a SIGKILLed scheduler is replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from backend.services.stove.persistence import StoveStore

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
TOKEN = "gunicorn-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=30.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = predicate()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def gunicorn_app(tmp_path):
    if not GUNICORN.exists():
        pytest.fail(f"gunicorn is required for this test ({GUNICORN})")
    port = free_port()
    db = tmp_path / "stove.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOVE_")}
    env.update(BACKEND_INSTANCE_DIR=str(tmp_path / "instance"), JOBS_DB=str(tmp_path / "jobs.sqlite3"),
               STOVE_DB=str(db), STOVE_API_TOKEN=TOKEN, STOVE_CUT_HOLD_S="1.5", STOVE_VALVE_RELEASE_S="0.1",
               STOVE_SIM_RELEASE_S="0.1", STOVE_POLL_S="0.05", WEB_WORKERS="3", WEB_THREADS="8",
               HOST="127.0.0.1", PORT=str(port), TOKENIZE_WARM_UP="0")
    proc = subprocess.Popen([str(GUNICORN), "backend.wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        # Generous: each worker imports the whole backend, which takes long on a busy 2-core machine.
        wait_until(lambda: requests.get(url + "/api/stove/burners", timeout=5).status_code == 200, 240)
        yield url, StoveStore(str(db)), proc
    finally:
        proc.terminate()  # the master stops its workers and the scheduler and job-worker processes
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def scheduler_starts(store: StoveStore) -> list[int]:
    rows = reversed(store.list_audit(limit=1000))
    return [int(r["detail"].split()[1]) for r in rows if r["action"] == "scheduler_start"]


def workers_answering(url: str) -> set[int]:
    pids = set()
    for _ in range(30):
        pids.add(requests.get(url + "/api/stove/health", timeout=10).json()["scheduler"]["pid"])
    return pids


def timer_fired(store: StoveStore, burner: str) -> list[dict]:
    return [e for e in store.list_audit(limit=200, burner=burner) if e["action"] == "timer_fired"]


def children(master: int) -> dict[int, str]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return {int(pid): args for pid, _, args in (line.strip().partition(" ") for line in out.splitlines())}


def workers(master: int) -> set[int]:
    """The web workers (the master's other children are the scheduler and job-worker processes)."""
    return {pid for pid, args in children(master).items() if "gunicorn" in args}


def scheduler_process(master: int) -> set[int]:
    return {pid for pid, args in children(master).items() if "backend.services.stove" in args}


@pytest.mark.slow  # three workers each import the whole backend (torch included): tens of seconds on 2 cores
def test_gunicorn_workers_share_one_scheduler(gunicorn_app):
    url, store, proc = gunicorn_app
    wait_until(lambda: len(workers(proc.pid)) == 3)
    # Every worker has built the app (and its scheduler) once all three answer; give them the time.
    wait_until(lambda: len(workers_answering(url)) == 3, 240)
    leader = wait_until(lambda: scheduler_starts(store))[0]
    assert leader in scheduler_process(proc.pid)  # its own process, not a web worker
    assert all(not info["this_process_is_leader"] for info in
               (requests.get(url + "/api/stove/health", timeout=10).json()["scheduler"] for _ in range(10)))
    time.sleep(1.0)  # the workers run no scheduler: nothing else takes the lock
    assert scheduler_starts(store) == [leader]

    # A timer armed through any worker fires exactly once.
    r = requests.post(url + "/api/stove/burners/left/timer", json={"minutes": 0.01}, headers=AUTH, timeout=10)
    assert r.status_code == 200
    fired = wait_until(lambda: timer_fired(store, "left"))
    assert len(fired) == 1

    # Shutoffs spread over the workers join one cut sequence.
    results: list = []

    def press():
        results.append(requests.post(url + "/api/stove/burners/right/shutoff", headers=AUTH, timeout=30))

    threads = [threading.Thread(target=press) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in results] == [200] * 20
    assert len({r.json()["command"]["id"] for r in results}) == 1
    assert store.count_commands(burner="right", kind="shutoff") == 1

    # Let both pulses finish, then SIGKILL the scheduler process: the master starts a new one.
    wait_until(lambda: all(store.get_burner(b).state == "READY" for b in ("left", "right")))
    os.kill(leader, signal.SIGKILL)
    starts = wait_until(lambda: (s := scheduler_starts(store)) and len(s) == 2 and s)
    assert starts[1] != leader
    r = requests.post(url + "/api/stove/burners/left/timer", json={"minutes": 0.01}, headers=AUTH, timeout=10)
    assert r.status_code == 200
    wait_until(lambda: len(timer_fired(store, "left")) == 2)
    time.sleep(0.5)
    assert len(scheduler_starts(store)) == 2
    cuts = [e for e in store.list_audit(limit=500) if e["action"] == "cut" and e["result"].startswith("cut delivered")]
    assert len(cuts) == 3  # left timer, right shutoff, left timer
