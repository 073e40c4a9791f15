"""Chaos with real processes (tests/stove/chaos.py): database failures of every kind the scheduler meets,
descriptor exhaustion, a leader frozen with SIGSTOP (idle, and inside the cut pulse), two and three processes,
the simulated relay and a fake Home Assistant. Cuts are counted where they land: at the relay.

Lateness bounds carry SLACK_S for a loaded two-core machine (the processes under test compete with the rest
of the suite); ``scripts/stove_chaos.py`` measures the figures quoted in the README.
"""

from __future__ import annotations

import pytest

from tests.stove.chaos import LEASE_S, POLL_S, db_faults, sigkill_idle, sigstop_idle, sigstop_in_pulse

SLACK_S = 1.0  # scheduling allowance on a busy machine, on top of what the design promises
# Every kind of database call the scheduler makes: all of them (connect), every write (tx), every read,
# and each named step: the sleep computation, due timers, lease renewal, command claim, dispatch, orphan sweep.
KINDS = ["connect", "tx", "read", "next_deadline", "due_timers", "renew_lease", "claim_next_command",
         "burners_with_pending", "count_open_running", "descriptors"]
FAULT_S = 0.8  # each failure lasts this long, from 0.4 s before the deadline


def test_every_kind_of_database_failure_and_descriptor_exhaustion_is_survived(tmp_path):
    outcomes = db_faults(tmp_path, KINDS, FAULT_S, nofile=128)
    backoff_cap = LEASE_S / 3
    for kind in KINDS:
        o = outcomes[kind]
        assert o.injected > 0, f"{kind}: the fault never hit the scheduler"
        assert o.notes["alive"], f"{kind}: the process died"
        assert o.relay_cuts == 1, f"{kind}: {o.relay_cuts} cuts reached the relay; exactly one is right"
        # fires once the failure is over: its remaining 0.4 s, one capped backoff, one poll
        bound = (FAULT_S - 0.4) + backoff_cap + POLL_S + SLACK_S
        assert 0 <= o.lateness_s <= bound, f"{kind}: fired {o.lateness_s} s late"
        assert o.notes["cut_lateness_s"] is not None and o.notes["cut_lateness_s"] <= bound + SLACK_S, kind
    for kind in ("connect", "next_deadline", "descriptors"):  # whole steps fail: alert after 3 in a row
        assert any("failed 3 steps in a row" in a for a in outcomes[kind].alerts), kind
    after = outcomes["after"]
    assert after.notes["alive"] and after.notes["leader_pids"] == {after.notes["pid"]}, "it kept the lead"
    assert after.relay_cuts == 1 and after.lateness_s <= POLL_S + SLACK_S


@pytest.mark.parametrize("processes, home_assistant", [(2, False), (3, True)])
def test_frozen_leader_is_replaced_and_the_timer_fires_exactly_once(tmp_path, processes, home_assistant):
    o = sigstop_idle(tmp_path, home_assistant=home_assistant, processes=processes)
    assert 0 <= o.lateness_s <= LEASE_S + POLL_S + SLACK_S, f"fired {o.lateness_s} s after the deadline"
    assert o.notes["cut_lateness_s"] <= LEASE_S + POLL_S + 2 * SLACK_S
    assert o.firings == 1 and o.relay_cuts == 1, "exactly one firing and one cut, also after SIGCONT"
    assert o.notes["fired_by_epoch"] > o.notes["first_epoch"]
    assert len(o.notes["starts"]) == 2, "one takeover"
    assert o.notes["old_leader_wrote_after_resume"] == 0, "the resumed leader wrote nothing under its old epoch"
    assert o.notes["old_leader_alive"], "it stands down and lives on as a standby"


def test_leader_frozen_inside_the_pulse_is_the_only_double_cut(tmp_path):
    o = sigstop_in_pulse(tmp_path)
    assert o.relay_cuts == 2 and o.notes["cut_pids"] == [o.notes["a"], o.notes["b"]], \
        "the standby delivers the cut again: it cannot know the pulse was held long enough"
    assert o.notes["old_leader_relay_writes_after_resume"] == [], "the resumed leader does not touch the relay"
    _, pid, burner, state = o.notes["last_write"]
    assert (pid, state) == (o.notes["b"], "closed"), "the new leader ends the pulse and restores the loop"
    assert o.notes["command"].status == "done" and o.notes["command"].epoch > 1
    assert o.notes["redelivered_after_freeze_s"] <= LEASE_S + POLL_S + 2 * SLACK_S


def test_killed_leader_is_replaced_at_once_through_the_flock(tmp_path):
    o = sigkill_idle(tmp_path)
    assert o.firings == 1 and o.relay_cuts == 1 and len(o.notes["starts"]) == 2
    # the kernel dropped the dead leader's flock: no waiting for its lease to expire
    assert o.lateness_s <= POLL_S + SLACK_S < LEASE_S + POLL_S + SLACK_S
