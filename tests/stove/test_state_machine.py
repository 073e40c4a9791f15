"""Random command sequences against the controller (fake clock, simulated stove with faults):
the safety invariants hold after every step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from backend.services.stove.controller import (
    CUTTING,
    FAULT,
    READY,
    RESTORING,
    STATES,
    TIMER_ARMED,
    Conflict,
    InvalidDuration,
)
from tests.stove.conftest import BURNERS, make_rig

burners = st.sampled_from(BURNERS)


class StoveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="stove-sm-")
        self.rig = make_rig(Path(self.tmp), retry_attempts=3, readback_attempts=2)
        self.failed_commands = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _execute(self, burner: str) -> None:
        while (cmd := self.rig.ctl.execute_next(burner)) is not None:
            if cmd.status == "done" and cmd.kind == "shutoff" and cmd.delivered_at is not None:
                # The pulse outlasted the release time: whatever was burning is now out.
                assert not self.rig.stove.valve_open(burner)
            if cmd.status == "failed" or self.rig.store.get_burner(burner).state == FAULT:
                self.failed_commands += 1

    @rule(burner=burners)
    def light(self, burner):
        lit = self.rig.stove.light(burner)
        assert lit == self.rig.stove.contact_conducts(burner)

    @rule(burner=burners, execute=st.booleans())
    def shutoff(self, burner, execute):
        self.rig.ctl.shutoff_now(burner, "prop")
        if execute:
            self._execute(burner)

    @rule(burner=burners, minutes=st.one_of(st.floats(-5, 300, allow_nan=False), st.integers(-2, 300)))
    def arm(self, burner, minutes):
        try:
            row = self.rig.ctl.arm_timer(burner, minutes, "prop")
        except InvalidDuration:
            assert not 0 < minutes <= 240
            return
        except Conflict:
            return
        assert 0 < minutes <= 240
        assert row.timer_deadline == self.rig.clock.now() + minutes * 60

    @rule(burner=burners)
    def cancel(self, burner):
        row, _ = self.rig.ctl.cancel_timer(burner, "prop")
        assert row.timer_deadline is None

    @rule(burner=burners)
    def restore(self, burner):
        try:
            self.rig.ctl.restore(burner, "prop")
        except Conflict:
            return
        self._execute(burner)

    @rule(seconds=st.floats(0, 20000))
    def time_passes(self, seconds):
        self.rig.clock.advance(seconds)
        self.rig.ctl.fire_due_timers()
        for b in BURNERS:
            self._execute(b)
        for b in BURNERS:
            row = self.rig.store.get_burner(b)
            assert row.timer_deadline is None or row.timer_deadline > self.rig.clock.now(), "a due timer was dropped"

    @rule(burner=burners, fault=st.sampled_from(["timeout", "error"]), n=st.integers(1, 4))
    def inject(self, burner, fault, n):
        self.rig.stove.inject(burner, *[fault] * n)

    @rule(burner=burners, stuck=st.sampled_from([None, None, "cut", "conducting"]))
    def stick(self, burner, stuck):
        self.rig.stove.set_stuck(burner, stuck)

    @invariant()
    def states_are_consistent(self):
        for b in BURNERS:
            row = self.rig.store.get_burner(b)
            assert row.state in STATES
            assert row.state not in (CUTTING, RESTORING), "sequences run to the end synchronously here"
            if row.state == TIMER_ARMED:
                assert row.timer_deadline is not None
            if row.state == READY:
                assert row.timer_deadline is None
            with self.rig.store.read() as conn:
                open_shutoffs = conn.execute(
                    "SELECT COUNT(*) FROM commands WHERE burner = ? AND kind = 'shutoff' AND status IN "
                    "('pending', 'running', 'delivered')", (b,)).fetchone()[0]
            assert open_shutoffs <= 1
            status = self.rig.ctl.status(b)
            assert status["flame"] == "unknown" and "flame off" not in status["message"].lower()

    @invariant()
    def every_fault_was_alerted(self):
        assert len(self.rig.pushed) >= self.failed_commands


StoveMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=25, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
TestStoveStateMachine = StoveMachine.TestCase
