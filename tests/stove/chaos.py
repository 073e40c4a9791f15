"""Chaos scenarios with real processes on one stove database, shared by the tests (tests/stove/test_chaos.py)
and by ``scripts/stove_chaos.py``, which repeats them and prints the worst lateness for the README.

Each scenario returns what it measured; the tests assert the promises on it. Settings are short (LEASE 1 s,
POLL 0.05 s) so the whole set stays within seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.config import load_config
from backend.services.stove.service import StoveService, StoveSettings
from tests.stove.fake_ha import FakeHomeAssistant

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 1.0
POLL_S = 0.05
FAST = {
    "STOVE_CUT_HOLD_S": "0.3",
    "STOVE_VALVE_RELEASE_S": "0.1",
    "STOVE_SIM_RELEASE_S": "0.1",
    "STOVE_POLL_S": str(POLL_S),
    "STOVE_LEASE_S": str(LEASE_S),
    "STOVE_RETRY_BASE_S": "0.02",
    "STOVE_RETRY_MAX_S": "0.1",
}
HA_TOKEN = "fake-home-assistant-token-0123456789"
ENTITIES = {"left": "switch.stove_relay_1", "right": "switch.stove_relay_2"}


def local_service(db: Path, **extra: Any) -> StoveService:
    """The test's own view of the database (arms timers, reads the audit); it runs no scheduler."""
    cfg: dict[str, Any] = dict(FAST)
    cfg.update(STOVE_DB=str(db), **extra)
    return StoveService(StoveSettings.from_config(load_config(cfg, environ={})))


class Daemon:
    """``python -m tests.stove.chaos_daemon`` (the standalone scheduler with chaos hooks) as a subprocess."""

    count = 0

    def __init__(self, db: Path, *, journal: Path | None = None, fault: dict | None = None,
                 nofile: int | None = None, **settings: str) -> None:
        Daemon.count += 1
        args = [sys.executable, "-m", "tests.stove.chaos_daemon"]
        for key, value in {**FAST, "STOVE_DB": str(db), **settings}.items():
            args += ["--set", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOVE_")}
        if journal is not None:
            env["STOVE_CHAOS_JOURNAL"] = str(journal)
        if fault is not None:
            env["STOVE_CHAOS_FAULT"] = json.dumps(fault)
        if nofile is not None:
            env["STOVE_CHAOS_NOFILE"] = str(nofile)
        self.log_path = db.parent / f"daemon-{Daemon.count}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match:
        try:
            return wait_until(lambda: re.search(pattern, self.log()), timeout, f"log line {pattern!r} of pid {self.pid}")
        except AssertionError as exc:
            alive = "alive" if self.proc.poll() is None else f"exited {self.proc.returncode}"
            raise AssertionError(f"{exc} ({alive}); its log ends:\n{self.log()[-3000:]}") from None

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def wait_until(predicate, timeout: float = 20.0, what: str = "condition", step: float = 0.02):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} not reached within {timeout} s")


# ---------------------------------------------------------------- reading the outcome
def leader_starts(service: StoveService) -> list[tuple[int, int]]:
    """(pid, epoch) of every leadership start, oldest first."""
    rows = reversed(service.store.list_audit(limit=2000))
    found = []
    for r in rows:
        if r["action"] == "scheduler_start":
            m = re.match(r"pid (\d+) \(leader epoch (\d+)\)", r["detail"])
            found.append((int(m.group(1)), int(m.group(2))))
    return found


def fired(service: StoveService, burner: str) -> list[dict]:
    rows = reversed(service.store.list_audit(limit=2000, burner=burner))
    return [r for r in rows if r["action"] == "timer_fired"]


def lateness(row: dict) -> float:
    return float(re.search(r"fired (-?[0-9.]+) s after it", row["detail"]).group(1))


def epoch_of(row: dict) -> int:
    return int(re.search(r"leader epoch (\d+)", row["detail"]).group(1))


def journal(path: Path) -> list[tuple[float, int, str, str]]:
    """(time, pid, burner, "open"|"closed") for every write that reached the simulated relay."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        t, pid, burner, state = line.split()
        out.append((float(t), int(pid), burner, state))
    return out


def relay_cuts(path: Path, burner: str) -> list[tuple[float, int]]:
    return [(t, pid) for t, pid, b, state in journal(path) if b == burner and state == "open"]


def command_done(service: StoveService, command_id: int) -> bool:
    cmd = service.store.get_command(command_id)
    return cmd is not None and cmd.status == "done"


def newest_shutoff(service: StoveService, burner: str) -> int:
    with service.store.read() as conn:
        return int(conn.execute("SELECT MAX(id) FROM commands WHERE burner = ? AND kind = 'shutoff'",
                                (burner,)).fetchone()[0])


@dataclass
class Outcome:
    lateness_s: float | None = None
    relay_cuts: int = 0
    firings: int = 0
    injected: int = 0
    alerts: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


def _arm_and_wait(local: StoveService, burner: str, seconds: float, at_deadline: Any = None,
                  before: float = 0.0, timeout: float = 30.0) -> tuple[dict, float]:
    """Arm a timer ``seconds`` ahead, call ``at_deadline()`` ``before`` seconds before it, wait until it fired
    and its shutoff is done. Returns (the timer_fired row, the deadline)."""
    already = len(fired(local, burner))
    local.controller.arm_timer(burner, seconds / 60.0, "chaos test")
    deadline = local.store.get_burner(burner).timer_deadline
    if at_deadline is not None:
        time.sleep(max(0.0, deadline - before - time.time()))
        at_deadline()
    row = wait_until(lambda: (rows := fired(local, burner)) and len(rows) > already and rows[-1], timeout,
                     f"timer on {burner} fired")
    cid = newest_shutoff(local, burner)
    wait_until(lambda: command_done(local, cid), timeout, f"shutoff #{cid} done")
    return row, deadline


# ---------------------------------------------------------------- scenarios
def cut_lateness(relay: Path, burner: str, deadline: float) -> float | None:
    """Seconds from a deadline to the first cut of ``burner`` that reached the relay after it."""
    after = [t for t, _ in relay_cuts(relay, burner) if t >= deadline - 0.001]
    return min(after) - deadline if after else None


def db_faults(tmp: Path, kinds: list[str], seconds: float = 0.8, *, nofile: int | None = None) -> dict[str, Outcome]:
    """One leader; for each kind in turn, a database failure of that kind lasting ``seconds`` begins 0.4 s
    before a timer falls due. Finally a plain timer shows the scheduler still fires on time."""
    db, relay = tmp / "stove.sqlite3", tmp / "relay.journal"
    local = local_service(db)
    daemon = Daemon(db, journal=relay, fault={"kinds": kinds, "seconds": seconds}, nofile=nofile)
    outcomes: dict[str, Outcome] = {}
    try:
        wait_until(lambda: leader_starts(local), 60, "a leader")
        for kind in kinds:
            cuts_before, alerts_before = len(relay_cuts(relay, "left")), len(local.store.list_alerts(1000))
            row, deadline = _arm_and_wait(local, "left", 0.8, lambda: daemon.signal(signal.SIGUSR1), before=0.4)
            found = daemon.wait_log(rf"chaos: injected (\d+) failure\(s\) into {kind}\n", 30)
            newest_first = local.store.list_alerts(1000)
            outcomes[kind] = Outcome(
                lateness_s=lateness(row), relay_cuts=len(relay_cuts(relay, "left")) - cuts_before, firings=1,
                injected=int(found.group(1)),
                alerts=[a["message"] for a in newest_first[: len(newest_first) - alerts_before]],
                notes={"cut_lateness_s": cut_lateness(relay, "left", deadline), "alive": daemon.proc.poll() is None})
        row, deadline = _arm_and_wait(local, "right", 0.3)
        outcomes["after"] = Outcome(lateness_s=lateness(row), relay_cuts=len(relay_cuts(relay, "right")), notes={
            "cut_lateness_s": cut_lateness(relay, "right", deadline), "alive": daemon.proc.poll() is None,
            "leader_pids": {pid for pid, _ in leader_starts(local)}, "pid": daemon.pid})
        return outcomes
    finally:
        daemon.stop()


def sigstop_idle(tmp: Path, *, home_assistant: bool = False, processes: int = 2) -> Outcome:
    """``processes`` schedulers; the leader is frozen (SIGSTOP) 0.15 s before a timer falls due, while idle;
    a standby fires it; the old leader resumes (SIGCONT) and must write and send nothing."""
    db, relay = tmp / "stove.sqlite3", tmp / "relay.journal"
    fake = FakeHomeAssistant(HA_TOKEN, list(ENTITIES.values())) if home_assistant else None
    extra = {"STOVE_ADAPTER": "home_assistant", "STOVE_HA_URL": fake.url, "STOVE_HA_TOKEN": HA_TOKEN,
             "STOVE_HA_ENTITIES": json.dumps(ENTITIES)} if fake else {}
    local = local_service(db)
    daemons = [Daemon(db, journal=relay, **extra)]
    try:
        wait_until(lambda: leader_starts(local), 60, "a leader")
        daemons += [Daemon(db, journal=relay, **extra) for _ in range(processes - 1)]
        for d in daemons[1:]:
            d.wait_log("stove scheduler running", 60)
        first_pid, first_epoch = leader_starts(local)[0]
        leader = next(d for d in daemons if d.pid == first_pid)

        def cuts() -> int:
            return len(fake.cuts(ENTITIES["left"])) if fake else len(relay_cuts(relay, "left"))

        # a timer fired by the healthy leader first: one cut
        _arm_and_wait(local, "left", 0.4)
        before = cuts()
        frozen: list[float] = []

        def freeze() -> None:
            leader.signal(signal.SIGSTOP)
            frozen.append(time.time())

        row, deadline = _arm_and_wait(local, "left", 1.5, freeze, before=0.15)
        late = lateness(row)
        resumed = time.time()
        leader.signal(signal.SIGCONT)
        leader.wait_log(r"stands down|left the lead", 30)
        time.sleep(LEASE_S)
        written_after = [r for r in local.store.list_audit(limit=2000)
                         if r["at"] >= resumed and f"(leader epoch {first_epoch})" in (r["detail"] or "")]
        starts = leader_starts(local)
        cut_times = fake.cuts(ENTITIES["left"]) if fake else [t for t, _ in relay_cuts(relay, "left")]
        after = [t for t in cut_times if t >= deadline - 0.001]
        return Outcome(lateness_s=late, relay_cuts=cuts() - before, firings=len(fired(local, "left")) - 1,
                       notes={"cut_lateness_s": min(after) - deadline if after else None,
                              "fired_by_epoch": epoch_of(row), "first_epoch": first_epoch, "starts": starts,
                              "old_leader_wrote_after_resume": len(written_after), "frozen_for_s": resumed - frozen[0],
                              "old_leader_alive": leader.proc.poll() is None, "deadline": deadline})
    finally:
        for d in daemons:
            d.stop()
        if fake:
            fake.close()


def sigstop_in_pulse(tmp: Path, hold_s: float = 1.5) -> Outcome:
    """The leader is frozen inside the cut pulse (between opening the loop and closing it again): the standby
    delivers the cut again (the only case a second cut is allowed) and closes the loop; the old leader, resumed,
    must not touch the relay."""
    db, relay = tmp / "stove.sqlite3", tmp / "relay.journal"
    local = local_service(db, STOVE_CUT_HOLD_S=str(hold_s))
    a = Daemon(db, journal=relay, STOVE_CUT_HOLD_S=str(hold_s))
    daemons = [a]
    try:
        wait_until(lambda: leader_starts(local), 60, "a leader")
        b = Daemon(db, journal=relay, STOVE_CUT_HOLD_S=str(hold_s))
        daemons.append(b)
        b.wait_log("stove scheduler running", 60)
        ticket = local.controller.shutoff_now("right", "chaos test")
        wait_until(lambda: local.store.get_command(ticket.command_id).status == "delivered", 30, "cut delivered")
        a.signal(signal.SIGSTOP)
        frozen = time.time()
        wait_until(lambda: command_done(local, ticket.command_id), 30, "shutoff done by the standby")
        resumed = time.time()
        a.signal(signal.SIGCONT)
        a.wait_log(r"stands down|left the lead|stops:", 30)
        time.sleep(hold_s + 0.5)
        writes = [w for w in journal(relay) if w[2] == "right"]
        cuts = [w for w in writes if w[3] == "open"]
        return Outcome(relay_cuts=len(cuts), notes={
            "cut_pids": [w[1] for w in cuts], "a": a.pid, "b": b.pid,
            "old_leader_relay_writes_after_resume": [w for w in writes if w[1] == a.pid and w[0] >= resumed],
            "last_write": writes[-1], "redelivered_after_freeze_s": cuts[-1][0] - frozen if len(cuts) > 1 else None,
            "command": local.store.get_command(ticket.command_id)})
    finally:
        for d in daemons:
            d.stop()


def sigkill_idle(tmp: Path) -> Outcome:
    """Two schedulers; the leader is killed (SIGKILL) 0.15 s before a timer falls due: the kernel drops its
    flock, so the standby takes over at its next poll instead of waiting for the lease to expire."""
    db, relay = tmp / "stove.sqlite3", tmp / "relay.journal"
    local = local_service(db)
    daemons = [Daemon(db, journal=relay)]
    try:
        wait_until(lambda: leader_starts(local), 60, "a leader")
        daemons.append(Daemon(db, journal=relay))
        daemons[1].wait_log("stove scheduler running", 60)
        leader = next(d for d in daemons if d.pid == leader_starts(local)[0][0])
        row, deadline = _arm_and_wait(local, "left", 1.0, leader.kill9, before=0.15)
        return Outcome(lateness_s=lateness(row), relay_cuts=len(relay_cuts(relay, "left")),
                       firings=len(fired(local, "left")),
                       notes={"cut_lateness_s": cut_lateness(relay, "left", deadline), "starts": leader_starts(local)})
    finally:
        for d in daemons:
            d.stop()


def sigkill_in_pulse(tmp: Path, hold_s: float = 1.5) -> Outcome:
    """The leader is killed inside the cut pulse; the standby delivers the cut again (fail toward cutting)."""
    db, relay = tmp / "stove.sqlite3", tmp / "relay.journal"
    local = local_service(db, STOVE_CUT_HOLD_S=str(hold_s))
    daemons = [Daemon(db, journal=relay, STOVE_CUT_HOLD_S=str(hold_s))]
    try:
        wait_until(lambda: leader_starts(local), 60, "a leader")
        daemons.append(Daemon(db, journal=relay, STOVE_CUT_HOLD_S=str(hold_s)))
        daemons[1].wait_log("stove scheduler running", 60)
        ticket = local.controller.shutoff_now("right", "chaos test")
        wait_until(lambda: local.store.get_command(ticket.command_id).status == "delivered", 30, "cut delivered")
        killed = time.time()
        next(d for d in daemons if d.pid == leader_starts(local)[0][0]).kill9()
        wait_until(lambda: command_done(local, ticket.command_id), 30, "shutoff done by the standby")
        cuts = relay_cuts(relay, "right")
        return Outcome(relay_cuts=len(cuts), notes={
            "redelivered_after_kill_s": cuts[-1][0] - killed if len(cuts) > 1 else None,
            "last_write": [w for w in journal(relay) if w[2] == "right"][-1]})
    finally:
        for d in daemons:
            d.stop()
