"""The per-burner state machine on a fake clock: commands, timers, retries with backoff, read-back,
FAULT + alerts, persistence of deadlines."""

from __future__ import annotations

import math

import pytest

from backend.services.stove.adapters import RelayState
from backend.services.stove.controller import (
    CUTTING,
    FAULT,
    READY,
    RESTORING,
    STATES,
    TIMER_ARMED,
    TRANSITIONS,
    Conflict,
    ControllerSettings,
    IllegalTransition,
    InvalidDuration,
    UnknownBurner,
)
from backend.services.stove.persistence import StoveStore
from tests.stove.conftest import make_rig


def actions(rig, burner="left"):
    return [(r["action"], r["result"]) for r in reversed(rig.store.list_audit(limit=500, burner=burner))]


def test_settings_require_hold_longer_than_valve_release():
    with pytest.raises(ValueError, match="must be longer than the valve release"):
        ControllerSettings(hold_s=1.0, valve_release_s=1.0)
    with pytest.raises(ValueError):
        ControllerSettings(hold_s=3.0, valve_release_s=0.0)
    s = ControllerSettings(retry_base_s=0.5, retry_max_s=3.0)
    assert [s.backoff(i) for i in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_transition_table_covers_every_state():
    assert set(TRANSITIONS) == set(STATES)
    assert READY not in TRANSITIONS[CUTTING], "a cut always goes through RESTORING (read-back) first"
    assert all(FAULT in TRANSITIONS[s] for s in STATES if s != FAULT)


def test_shutoff_cycle_states_and_valve(rig):
    rig.stove.light("left")
    seen = []
    orig = rig.adapter.cut

    def spy(burner, hold_s, on_open=None, guard=None):
        seen.append(rig.store.get_burner(burner).state)
        orig(burner, hold_s, on_open, guard)
        seen.append(rig.store.get_burner(burner).state)

    rig.adapter.cut = spy
    t0 = rig.clock.now()
    ticket = rig.ctl.shutoff_now("left", "alice")
    assert rig.store.get_burner("left").state == READY  # queued: only the scheduler touches the relay
    cmd = rig.run("left")
    assert cmd.id == ticket.command_id and cmd.status == "done"
    assert seen == [CUTTING, CUTTING]
    assert cmd.delivered_at == t0
    assert rig.adapter.cut_calls == [("left", 3.0)]
    assert not rig.stove.valve_open("left"), "the pulse outlasted the valve release time"
    assert rig.stove.light("left"), "restored: the burner can be relit by hand"
    status = rig.ctl.status("left")
    assert status["state"] == READY and status["relay_state"] == "conducting"
    assert "cut delivered at" in status["message"]
    assert "flame" in status["message"] and "unknown" in status["message"]
    assert status["flame"] == "unknown"
    for phrase in ("flame off", "flame is off", "stove off", "stove is off", "flame out"):
        assert phrase not in status["message"].lower()
    assert ("cut", status["message"].split(";")[0]) in actions(rig)


def test_shutoff_is_idempotent_and_joins_the_open_command(rig):
    tickets = [rig.ctl.shutoff_now("left", f"user{i}") for i in range(5)]
    assert len({t.command_id for t in tickets}) == 1
    assert [t.joined for t in tickets] == [False, True, True, True, True]
    rig.run("left")
    assert len(rig.adapter.cut_calls) == 1
    accepted = [r for a, r in actions(rig) if a == "shutoff" and r.startswith("accepted")]
    assert len(accepted) == 5  # every request is audited, one pulse is sent
    assert rig.ctl.shutoff_now("left", "later").joined is False  # after completion a new press cuts again


def test_shutoff_wins_over_restore_and_timer(rig):
    rig.ctl.arm_timer("left", 10, "bob")
    restore = rig.ctl.restore("left", "carol")
    shut = rig.ctl.shutoff_now("left", "alice")
    assert rig.store.get_command(restore.command_id).status == "superseded"
    with pytest.raises(Conflict, match="shutoff wins"):
        rig.ctl.restore("left", "carol")
    with pytest.raises(Conflict):
        rig.ctl.arm_timer("left", 5, "bob")
    assert ("restore", "rejected: a shutoff is queued or running; shutoff wins") in actions(rig)
    rig.run("left")
    assert rig.store.get_command(shut.command_id).status == "done"
    row = rig.store.get_burner("left")
    assert row.timer_deadline is None and row.state == READY
    assert any(a == "cancel_timer" and "shutoff" in r for a, r in actions(rig))


def test_timer_arm_rearm_cancel_and_fire(rig):
    row = rig.ctl.arm_timer("left", 10, "alice")
    assert row.state == TIMER_ARMED and row.timer_deadline == rig.clock.now() + 600
    row = rig.ctl.arm_timer("left", 1.5, "alice")  # re-arm replaces the deadline
    assert row.timer_deadline == rig.clock.now() + 90
    rig.clock.advance(89.9)
    assert rig.ctl.fire_due_timers() == []
    rig.clock.advance(0.1)
    fired = rig.ctl.fire_due_timers()
    assert len(fired) == 1
    assert rig.store.get_burner("left").timer_deadline is None
    cmd = rig.run("left")
    assert cmd.id == fired[0] and cmd.requested_by == "timer (armed by alice)"
    assert rig.store.get_burner("left").state == READY
    rig.ctl.arm_timer("left", 5, "alice")
    status, cancelled = rig.ctl.cancel_timer("left", "alice")
    assert cancelled and status.state == READY and status.timer_deadline is None
    assert rig.ctl.cancel_timer("left", "alice")[1] is False
    rig.clock.advance(3600)
    assert rig.ctl.fire_due_timers() == []


def test_timer_validation(rig):
    for bad in (0, -1, 240.01, math.inf, math.nan, True, "5"):
        with pytest.raises(InvalidDuration):
            rig.ctl.arm_timer("left", bad, "x")
    assert rig.ctl.arm_timer("left", 240, "x").state == TIMER_ARMED
    with pytest.raises(UnknownBurner, match="configured burners: left, right"):
        rig.ctl.arm_timer("middle", 5, "x")
    with pytest.raises(UnknownBurner):
        rig.ctl.shutoff_now("../etc", "x")


def test_overdue_timer_fires_after_restart(tmp_path):
    rig = make_rig(tmp_path)
    rig.ctl.arm_timer("right", 2, "alice")
    deadline = rig.store.get_burner("right").timer_deadline
    # "Restart": a new controller on the same database, three minutes later.
    later = make_rig(tmp_path)
    later.clock.advance(deadline - later.clock.now() + 180)
    fired = later.ctl.fire_due_timers()
    assert len(fired) == 1
    detail = [r for r in later.store.list_audit(limit=50, burner="right") if r["action"] == "timer_fired"][0]
    assert "fired 180.000 s after it" in detail["detail"]
    assert later.run("right").status == "done"


def test_timeouts_are_retried_with_backoff_then_delivered(rig):
    rig.stove.light("left")
    rig.stove.inject("left", "timeout", "error", "timeout")
    rig.ctl.shutoff_now("left", "alice")
    cmd = rig.run("left")
    assert cmd.status == "done" and cmd.attempts == 4
    assert rig.clock.sleeps[:3] == [0.5, 1.0, 2.0]  # exponential backoff, capped at retry_max_s
    assert not rig.stove.valve_open("left")
    failed = [r for a, r in actions(rig) if a == "cut" and "failed" in r]
    assert failed == ["attempt 1/4 failed", "attempt 2/4 failed", "attempt 3/4 failed"]
    assert rig.pushed == []


def test_undeliverable_shutoff_faults_and_alerts(rig):
    rig.stove.light("left")
    rig.stove.inject("left", *["timeout"] * 4)
    rig.ctl.shutoff_now("left", "alice")
    cmd = rig.run("left")
    assert cmd.status == "failed"
    row = rig.store.get_burner("left")
    assert row.state == FAULT and "NOT delivered" in row.fault and "gas may still be flowing" in row.fault
    assert rig.stove.valve_open("left")
    assert len(rig.pushed) == 1 and "NOT delivered" in rig.pushed[0]["message"]
    assert rig.store.list_alerts()[0]["pushed"] == 1
    # Shutoff is always allowed, FAULT included; once the relay answers, the cut goes through.
    rig.ctl.shutoff_now("left", "alice")
    assert rig.run("left").status == "done"
    assert rig.store.get_burner("left").state == READY and rig.store.get_burner("left").fault is None


def test_relay_stuck_conducting_faults(rig):
    rig.stove.set_stuck("left", "conducting")
    rig.ctl.shutoff_now("left", "alice")
    cmd = rig.run("left")
    assert cmd.status == "failed" and "reads conducting" in cmd.result
    assert rig.store.get_burner("left").state == FAULT
    assert len(rig.pushed) == 1


def test_relay_stuck_cut_after_pulse_faults_on_read_back(rig):
    rig.stove.light("left")
    orig = rig.adapter.cut

    def weld_during_hold(burner, hold_s, on_open=None, guard=None):
        def opened(t):
            on_open(t)
            rig.stove.set_stuck(burner, "cut")
        orig(burner, hold_s, opened, guard)

    rig.adapter.cut = weld_during_hold
    rig.ctl.shutoff_now("left", "alice")
    cmd = rig.run("left")
    assert cmd.status == "done" and cmd.delivered_at is not None  # the gas was cut
    row = rig.store.get_burner("left")
    assert row.state == FAULT and "still reads CUT" in row.fault
    assert row.relay_state == RelayState.CUT.value
    assert len(rig.pushed) == 1 and "cannot be relit" in rig.pushed[0]["message"]
    assert "FAULT" in rig.ctl.status("left")["message"]
    # Restore from FAULT once the relay is fixed.
    rig.stove.set_stuck("left", None)
    rig.ctl.restore("left", "bob")
    assert rig.run("left").status == "done"
    assert rig.store.get_burner("left").state == READY
    assert rig.stove.light("left")


def test_restore_keeps_an_armed_timer_and_is_rejected_during_a_cut(rig):
    rig.ctl.arm_timer("left", 30, "alice")
    rig.ctl.restore("left", "bob")
    rig.run("left")
    row = rig.store.get_burner("left")
    assert row.state == TIMER_ARMED and row.timer_deadline is not None
    with rig.store.tx() as conn:
        rig.store.update_burner(conn, "left", rig.clock.now(), state=CUTTING)
    with pytest.raises(Conflict, match="cut is in progress"):
        rig.ctl.restore("left", "bob")


def test_illegal_transitions_are_refused(rig):
    with rig.store.tx() as conn:
        row = rig.store.burner(conn, "left")
        row.state = CUTTING
        with pytest.raises(IllegalTransition):
            rig.ctl._set_state(conn, row, READY, rig.clock.now())
        row.state = FAULT
        with pytest.raises(IllegalTransition):
            rig.ctl._set_state(conn, row, TIMER_ARMED, rig.clock.now())
        row.state = RESTORING
        with pytest.raises(IllegalTransition):
            rig.ctl._set_state(conn, row, CUTTING, rig.clock.now())


def test_restart_mid_cut_requeues_the_shutoff(tmp_path):
    rig = make_rig(tmp_path)
    rig.ctl.shutoff_now("left", "alice")
    rig.store.claim_next_command("left", rig.clock.now())  # a scheduler took it, then died
    later = make_rig(tmp_path)
    assert later.ctl.recover() == 1
    assert later.run("left").status == "done"
    assert len(later.adapter.cut_calls) == 1


def test_audit_keeps_recent_rows_and_the_newest_min_rows(tmp_path):
    day = 86_400.0
    store = StoveStore(str(tmp_path / "a.sqlite3"), audit_keep_days=2, audit_min_rows=150)
    # 400 rows over 4 days: the first 300 are older than 2 days when the last is written
    with store.tx() as conn:  # one transaction: pruning runs inside it every 100 rows
        for i in range(400):
            store.audit(conn, at=i * day / 100, who="t", action="x", result=str(i))
    kept = [int(r["result"]) for r in store.list_audit(limit=1000)]
    assert kept[0] == 399 and len(kept) >= 150
    assert min(kept) <= 399 - 149, "the newest audit_min_rows always stay"
    assert all(i * day / 100 >= 399 * day / 100 - 2 * day or i >= 399 - 149 for i in kept)
    assert min(kept) > 0, "old rows beyond the minimum were pruned"
    # young rows are never pruned, however many there are
    young = StoveStore(str(tmp_path / "b.sqlite3"), audit_keep_days=2, audit_min_rows=100)
    with young.tx() as conn:
        for i in range(1000):
            young.audit(conn, at=float(i), who="t", action="x", result=str(i))
    assert len(young.list_audit(limit=2000)) == 1000


def test_restart_during_restoring_runs_the_shutoff_again(tmp_path):
    rig = make_rig(tmp_path)
    ticket = rig.ctl.shutoff_now("left", "alice")
    cmd = rig.store.claim_next_command("left", rig.clock.now())
    with rig.store.tx() as conn:  # the dead scheduler had got as far as the read-back
        rig.store.update_burner(conn, "left", rig.clock.now(), state=RESTORING)
        rig.store.update_command(conn, cmd.id, status="delivered", delivered_at=rig.clock.now())
    later = make_rig(tmp_path)
    later.ctl.recover()
    assert later.store.get_burner("left").state == READY
    assert later.run("left").status == "done"
    assert later.store.get_command(ticket.command_id).status == "done"
    assert ("recover", "sequence interrupted by a scheduler restart; running it again") in actions(later)


def test_failed_close_after_delivery_is_restored_by_retry(rig):
    rig.stove.light("left")
    orig = rig.adapter.cut

    def flaky_close(burner, hold_s, on_open=None, guard=None):
        def opened(t):
            on_open(t)
            rig.stove.inject(burner, "timeout")  # the write that closes the loop again times out
        orig(burner, hold_s, opened, guard)

    rig.adapter.cut = flaky_close
    rig.ctl.shutoff_now("left", "alice")
    cmd = rig.run("left")
    assert cmd.status == "done" and cmd.attempts == 1, "a delivered cut is not sent again"
    assert len(rig.adapter.cut_calls) == 1
    assert rig.store.get_burner("left").state == READY
    assert rig.stove.contact_conducts("left") and not rig.stove.valve_open("left")
    assert rig.pushed == []
