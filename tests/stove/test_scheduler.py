"""One scheduler across processes, and timers that survive SIGKILL. These tests run the real
standalone scheduler (``python -m backend.services.stove``) as subprocesses on one SQLite file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.config import load_config
from backend.services.stove.scheduler import LeaderLock
from backend.services.stove.service import StoveService, StoveSettings

ROOT = Path(__file__).resolve().parents[2]
FAST = {
    "STOVE_CUT_HOLD_S": "0.3",
    "STOVE_VALVE_RELEASE_S": "0.1",
    "STOVE_SIM_RELEASE_S": "0.1",
    "STOVE_POLL_S": "0.05",
    "STOVE_RETRY_BASE_S": "0.02",
}


def settings(db: Path, **extra) -> StoveSettings:
    cfg = {k: float(v) for k, v in FAST.items()}
    cfg.update(STOVE_DB=str(db), **extra)
    return StoveSettings.from_config(load_config(cfg, environ={}))


class Daemon:
    def __init__(self, db: Path, **extra: str) -> None:
        args = [sys.executable, "-m", "backend.services.stove"]
        for k, v in {**FAST, "STOVE_DB": str(db), **extra}.items():
            args += ["--set", f"{k}={v}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOVE_")}
        self.started = time.time()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop()


def wait_until(predicate, timeout: float = 20.0, step: float = 0.02):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def leader_starts(service: StoveService) -> list[int]:
    rows = service.store.list_audit(limit=1000)
    return [int(r["detail"].split()[1]) for r in reversed(rows) if r["action"] == "scheduler_start"]


def fired(service: StoveService, burner: str) -> list[dict]:
    rows = reversed(service.store.list_audit(limit=1000, burner=burner))
    return [r for r in rows if r["action"] == "timer_fired"]


def lateness(row: dict) -> float:
    return float(re.search(r"fired (-?[0-9.]+) s after it", row["detail"]).group(1))


def test_leader_lock_is_exclusive_and_released(tmp_path):
    a, b = LeaderLock(str(tmp_path / "x.lock")), LeaderLock(str(tmp_path / "x.lock"))
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert b.try_acquire()
    b.release()


def test_in_process_scheduler_fires_on_time(tmp_path):
    service = StoveService(settings(tmp_path / "s.sqlite3"))
    service.start()
    try:
        wait_until(lambda: service.scheduler.is_leader, 5)
        service.controller.arm_timer("left", 0.02, "alice")  # 1.2 s
        wait_until(lambda: fired(service, "left"), 5)
        late = lateness(fired(service, "left")[0])
        assert 0 <= late < 1.0
        cmd = wait_until(lambda: (c := service.store.get_command(1)) and c.status == "done" and c, 5)
        assert cmd.delivered_at is not None
    finally:
        service.stop()
    assert not service.scheduler.is_leader


def test_exactly_one_scheduler_across_processes_and_takeover(tmp_path, daemons):
    db = tmp_path / "multi.sqlite3"
    local = StoveService(settings(db))  # this test process only writes timers (no scheduler)
    daemons += [Daemon(db) for _ in range(3)]
    pids = {d.pid for d in daemons}
    first = wait_until(lambda: leader_starts(local))[0]
    assert first in pids
    for burner in ("left", "right"):
        local.controller.arm_timer(burner, 0.01, "alice")  # 0.6 s
    wait_until(lambda: all(local.store.get_burner(b).state == "READY" and fired(local, b) for b in ("left", "right")))
    time.sleep(0.8)  # let any second scheduler (there must be none) have its chance
    assert leader_starts(local) == [first], "only one process may become the scheduler"
    for burner in ("left", "right"):
        assert len(fired(local, burner)) == 1
        cuts = [r for r in local.store.list_audit(limit=100, burner=burner) if r["action"] == "cut"]
        assert len(cuts) == 1 and cuts[0]["result"].startswith("cut delivered at")
    assert local.store.count_commands(kind="shutoff") == 2

    # SIGKILL the leader: one standby takes over and fires the next timer.
    leader = next(d for d in daemons if d.pid == first)
    leader.kill9()
    local.controller.arm_timer("left", 0.01, "alice")
    starts = wait_until(lambda: (s := leader_starts(local)) and len(s) == 2 and s)
    assert starts[1] in pids - {first}
    wait_until(lambda: len(fired(local, "left")) == 2)
    time.sleep(0.5)
    assert len(leader_starts(local)) == 2 and len(fired(local, "left")) == 2


def test_sigkill_during_countdown_then_restart_fires_on_time(tmp_path, daemons):
    db = tmp_path / "ontime.sqlite3"
    local = StoveService(settings(db))
    first = Daemon(db)
    daemons.append(first)
    wait_until(lambda: leader_starts(local))
    local.controller.arm_timer("left", 0.1, "alice")  # 6 s from now
    time.sleep(1.0)
    first.kill9()
    second = Daemon(db)
    daemons.append(second)
    row = wait_until(lambda: fired(local, "left"), 30)[0]
    assert leader_starts(local) == [first.pid, second.pid]
    assert 0 <= lateness(row) < 1.0, "a restart before the deadline must still fire on time"
    wait_until(lambda: local.store.get_command(1) and local.store.get_command(1).status == "done")


def test_sigkill_during_countdown_then_restart_after_deadline_fires_at_once(tmp_path, daemons):
    db = tmp_path / "overdue.sqlite3"
    local = StoveService(settings(db))
    first = Daemon(db)
    daemons.append(first)
    wait_until(lambda: leader_starts(local))
    local.controller.arm_timer("left", 0.03, "alice")  # 1.8 s from now
    deadline = local.store.get_burner("left").timer_deadline
    time.sleep(0.5)
    first.kill9()
    time.sleep(max(0.0, deadline - time.time()) + 1.5)  # nobody is running when the deadline passes
    assert fired(local, "left") == []
    second = Daemon(db)
    daemons.append(second)
    row = wait_until(lambda: fired(local, "left"), 30)[0]
    start = [r for r in local.store.list_audit(limit=100) if r["action"] == "scheduler_start"][0]
    assert start["detail"].startswith(f"pid {second.pid} (leader epoch ")
    assert lateness(row) >= 1.5, "it was overdue"
    assert row["at"] - start["at"] < 0.5, "an overdue timer fires on the new scheduler's first step"
    wait_until(lambda: local.store.get_command(1) and local.store.get_command(1).status == "done")


def test_sigkill_during_the_pulse_redelivers_the_cut(tmp_path, daemons):
    from tests.stove.chaos import Daemon as JournalDaemon
    from tests.stove.chaos import relay_cuts

    db, relay = tmp_path / "pulse.sqlite3", tmp_path / "relay.journal"
    local = StoveService(settings(db))
    first = JournalDaemon(db, journal=relay, STOVE_CUT_HOLD_S="5")
    daemons.append(first)
    wait_until(lambda: leader_starts(local))
    ticket = local.controller.shutoff_now("right", "alice")
    wait_until(lambda: local.store.get_command(ticket.command_id).status == "delivered")
    first.kill9()  # the loop is left open (the safe direction) and the command unfinished
    second = JournalDaemon(db, journal=relay)
    daemons.append(second)
    cmd = wait_until(lambda: (c := local.store.get_command(ticket.command_id)) and c.status == "done" and c, 30)
    newest_start = [r for r in local.store.list_audit(limit=100) if r["action"] == "scheduler_start"][0]
    assert newest_start["result"] == "requeued 1 unfinished command(s)"
    cuts = [r for r in local.store.list_audit(limit=100, burner="right") if r["action"] == "cut"]
    assert len(cuts) == 2  # delivered again by the new scheduler: fail toward cutting
    # and at the relay: the killed leader's cut and the new leader's (killed inside a relay command)
    assert [pid for _, pid in relay_cuts(relay, "right")] == [first.pid, second.pid]
    assert local.store.get_burner("right").state == "READY"
    assert cmd.delivered_at is not None


def test_forked_worker_becomes_a_standby_not_a_second_leader(tmp_path):
    # gunicorn --preload builds the app (and starts the scheduler) before forking its workers.
    service = StoveService(settings(tmp_path / "fork.sqlite3"))
    service.start()
    try:
        wait_until(lambda: service.scheduler.is_leader, 5)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: the inherited lock must not make it a leader
            code = 1
            try:
                os.close(read)
                service.start()
                time.sleep(0.5)
                code = 0 if (not service.scheduler.is_leader and service.scheduler.running) else 2
                service.scheduler._stop.set()
            finally:
                os.write(write, bytes([code]))
                os._exit(code)
        os.close(write)
        result = os.read(read, 1)
        os.close(read)
        os.waitpid(pid, 0)
        assert result == b"\x00"
        assert service.scheduler.is_leader
        assert leader_starts(service) == [os.getpid()]
    finally:
        service.stop()


def test_web_process_without_scheduler_is_served_by_the_standalone_one(tmp_path, daemons):
    from backend import create_app
    from tests.conftest import config_for_tests as make_config

    db = tmp_path / "split.sqlite3"
    app = create_app(make_config(tmp_path, STOVE_DB=str(db), STOVE_SCHEDULER=False, STOVE_API_TOKEN="split-token-0123456789",
                                 **{k: float(v) for k, v in FAST.items()}))
    try:
        client = app.test_client()
        local = StoveService(settings(db))
        daemons.append(Daemon(db))
        wait_until(lambda: leader_starts(local))
        r = client.post("/api/stove/burners/left/shutoff", headers={"Authorization": "Bearer split-token-0123456789"})
        assert r.status_code == 200 and r.json["message"].startswith("cut delivered at")
        health = client.get("/api/stove/health").json["scheduler"]
        assert health["this_process_is_leader"] is False and health["leader_pid"] == daemons[0].pid
    finally:
        for hook in app.extensions.get("shutdown_hooks", []):
            hook()
