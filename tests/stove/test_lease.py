"""The lease, its fences and the guarded loop, in one process (the real-process versions: test_chaos.py)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from backend.config import load_config
from backend.services.stove.clock import SystemClock
from backend.services.stove.controller import LostLeadership
from backend.services.stove.persistence import StoveStore
from backend.services.stove.scheduler import Lease
from backend.services.stove.service import StoveService, StoveSettings
from tests.stove.chaos import wait_until

QUICK = {"STOVE_CUT_HOLD_S": 0.3, "STOVE_VALVE_RELEASE_S": 0.1, "STOVE_SIM_RELEASE_S": 0.1, "STOVE_POLL_S": 0.05,
         "STOVE_LEASE_S": 0.6, "STOVE_RETRY_BASE_S": 0.02, "STOVE_RETRY_MAX_S": 0.05}


def service(db, **extra) -> StoveService:
    return StoveService(StoveSettings.from_config(load_config({**QUICK, "STOVE_DB": str(db), **extra}, environ={})))


def test_lease_epochs_grow_and_an_old_term_is_fenced(tmp_path):
    store = StoveStore(str(tmp_path / "s.sqlite3"))
    lock = str(tmp_path / "s.lock")
    a = Lease(store, lock, 0.3, SystemClock())
    b = Lease(store, lock, 0.3, SystemClock())
    assert a.step() == (True, True) and a.epoch == 1
    assert b.step() == (False, False), "a live lease is not taken"
    old = a.term
    time.sleep(0.35)  # a "freezes": it does not renew, and keeps its flock
    with pytest.raises(LostLeadership, match="may have lapsed"):
        old.device_ok()
    assert b.step() == (True, True) and b.epoch == 2
    with pytest.raises(LostLeadership, match="epoch 1 ended"), store.tx(old.check) as conn:
        conn.execute("UPDATE burners SET state = 'READY'")
    with pytest.raises(LostLeadership):
        a.step()  # the renewal finds the lease taken
    with store.tx(b.term.check) as conn:  # the current term's fence lets its writes through
        conn.execute("UPDATE burners SET state = 'READY'")


def test_flock_fast_path_takes_over_from_a_dead_holder_at_once(tmp_path):
    store = StoveStore(str(tmp_path / "s.sqlite3"))
    lock = str(tmp_path / "s.lock")
    a = Lease(store, lock, 60.0, SystemClock())
    assert a.step()[0] and store.get_lease().has_flock
    b = Lease(store, lock, 60.0, SystemClock())
    assert b.step() == (False, False), "a holder of the flock is alive"
    a.lock.release()  # what the kernel does when a dies
    assert b.step() == (True, True) and b.epoch == 2, "no need to wait 60 s for the lease to expire"


def test_a_standby_that_gets_the_flock_from_a_lockless_leader_waits_for_the_lease(tmp_path):
    from backend.services.stove.scheduler import LeaderLock

    store = StoveStore(str(tmp_path / "s.sqlite3"))
    lock = str(tmp_path / "s.lock")
    frozen = LeaderLock(lock)  # a frozen old leader still holds the flock when the new one takes the lease
    assert frozen.try_acquire()
    leader = Lease(store, lock, 60.0, SystemClock())
    assert leader.step() == (True, True) and not store.get_lease().has_flock
    frozen.release()  # the old leader woke up and stood down
    standby = Lease(store, lock, 60.0, SystemClock())
    assert standby.step() == (False, False), "the lease says its holder has no flock: the holder may live"
    assert not standby.lock.held, "the standby leaves the lock for the leader"
    assert leader.step() == (True, False) and leader.lock.held and store.get_lease().has_flock


def test_a_fenced_leader_neither_writes_nor_touches_the_relay(tmp_path):
    old = service(tmp_path / "s.sqlite3")
    new = service(tmp_path / "s.sqlite3")
    stale = Lease(old.store, str(tmp_path / "x.lock"), 0.6, SystemClock())
    assert stale.step()[0]
    old.controller.term = stale.term
    ticket = new.controller.shutoff_now("left", "alice")
    new_lease = Lease(new.store, str(tmp_path / "y.lock"), 0.6, SystemClock())
    with new.store.tx() as conn:  # the old lease expires (as after a freeze); the new leader takes it
        conn.execute("UPDATE leader SET expires_at = 0")
    assert new_lease.step()[0]
    with pytest.raises(LostLeadership):
        old.controller.execute_next("left")
    assert old.adapter.cut_calls == [] and new.store.get_command(ticket.command_id).status == "pending"
    with pytest.raises(LostLeadership):
        old.controller.recover()
    assert not [r for r in new.store.list_audit(limit=50) if r["action"] == "scheduler_start"]


def test_the_loop_survives_a_failing_sleep_computation_and_alerts(tmp_path):
    svc = service(tmp_path / "s.sqlite3", STOVE_ALERT_AFTER_FAILURES=3)
    real = svc.store.next_deadline
    failures = {"left": 6}

    def flaky():
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("unable to open database file")
        return real()

    svc.store.next_deadline = flaky
    svc.start()
    try:
        wait_until(lambda: failures["left"] == 0, 20, "all failures consumed")
        assert svc.scheduler.running
        wait_until(lambda: svc.scheduler.failures == 0, 10, "steps succeed again")
        assert any("failed 3 steps in a row" in a["message"] for a in svc.store.list_alerts())
        svc.controller.arm_timer("left", 0.005, "alice")  # 0.3 s
        wait_until(lambda: svc.store.get_burner("left").last_cut_at is not None, 10, "the timer cut")
    finally:
        svc.stop()


def test_backoff_is_capped_below_a_third_of_the_lease(tmp_path):
    scheduler = service(tmp_path / "s.sqlite3").scheduler
    delays = [scheduler.backoff(n) for n in range(1, 10)]
    assert delays[:3] == pytest.approx([0.05, 0.1, 0.2]) and max(delays) == pytest.approx(0.2)


def test_the_lease_is_released_when_the_loop_ends(tmp_path):
    svc = service(tmp_path / "s.sqlite3")
    svc.start()
    wait_until(lambda: svc.scheduler.is_leader, 10, "leader")
    assert svc.store.get_lease().holder == svc.scheduler.lease.holder
    svc.stop()
    row = svc.store.get_lease()
    assert row.holder is None and not svc.scheduler.lock.held
    other = service(tmp_path / "s.sqlite3")
    other.start()
    try:
        wait_until(lambda: other.scheduler.is_leader, 2, "immediate takeover, no expiry to wait for")
    finally:
        other.stop()


def test_a_dead_loop_is_started_again(tmp_path):
    svc = service(tmp_path / "s.sqlite3")
    svc.start()
    try:
        wait_until(lambda: svc.scheduler.is_leader, 10, "leader")
        svc.scheduler._stop.set()  # end the loop as a fatal error would
        wait_until(lambda: not svc.scheduler.running, 10, "loop ended")
        assert svc.store.get_lease().holder is None, "it released the lease on its way out"
        svc.start()
        wait_until(lambda: svc.scheduler.is_leader, 10, "leader again")
    finally:
        svc.stop()
