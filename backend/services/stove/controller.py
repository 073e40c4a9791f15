"""The per-burner state machine.

States: READY (loop conducting; flame unknown) -> TIMER_ARMED(deadline) -> CUTTING -> RESTORING ->
READY, plus FAULT. Commands (``shutoff_now``, ``restore``) and timers (``arm_timer``, ``cancel_timer``)
are recorded in the store by whichever process receives them; only the scheduler executes commands
against the relay (``execute_next``, ``fire_due_timers``), so there is one actor on the hardware.

Safety rules enforced here:
- shutoff always wins: always accepted (from any state), idempotent (joins an open shutoff), supersedes
  queued restores, runs before restores, retried with backoff; failure -> FAULT + alert;
- a cut is a pulse held longer than the valve release time, then restored and read back; a loop that
  still reads cut (or cannot be read) -> FAULT + alert;
- timers are absolute deadlines, fire even when overdue, and are never dropped silently;
- we never claim the flame is off: status says "cut delivered at T".
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from backend.services.stove.adapters import AdapterError, RelayAdapter, RelayState
from backend.services.stove.clock import Clock
from backend.services.stove.persistence import FINAL_STATUSES, BurnerRow, CommandRow, StoveStore

_T = TypeVar("_T")

log = logging.getLogger(__name__)

READY, TIMER_ARMED, CUTTING, RESTORING, FAULT = "READY", "TIMER_ARMED", "CUTTING", "RESTORING", "FAULT"
STATES = (READY, TIMER_ARMED, CUTTING, RESTORING, FAULT)

# Every state change goes through _set_state, which checks it against this table. FAULT is reachable
# from everywhere (an internal error must still end visibly); leaving FAULT needs a cut or a restore.
TRANSITIONS: dict[str, frozenset[str]] = {
    READY: frozenset({TIMER_ARMED, CUTTING, RESTORING, FAULT}),
    TIMER_ARMED: frozenset({TIMER_ARMED, READY, CUTTING, RESTORING, FAULT}),
    CUTTING: frozenset({RESTORING, FAULT}),
    RESTORING: frozenset({READY, TIMER_ARMED, FAULT}),
    FAULT: frozenset({CUTTING, RESTORING}),
}

FLAME_NOTE = "flame state unknown: the relay cannot see the flame"


class StoveError(Exception):
    """Base class of the errors the controller reports to callers."""


class UnknownBurner(StoveError):
    pass


class InvalidDuration(StoveError):
    pass


class Conflict(StoveError):
    pass


class IllegalTransition(StoveError):
    pass


class LostLeadership(Exception):  # noqa: N818 - a state, not a failure of the caller
    """This process is no longer the scheduler's leader (a newer epoch exists, or its lease lapsed).
    Raised before any write or relay command it would have made: the process stands down."""


class Term(Protocol):
    """One leadership term of the scheduler (see scheduler.Lease): its epoch, and the two fences."""

    epoch: int

    def check(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: raise LostLeadership unless the lease row still names this term."""
        ...

    def device_ok(self) -> None:
        """Before a relay command: raise LostLeadership unless this term's lease is surely still ours."""
        ...


# Database errors a leader waits out (no descriptors, a locked or full disk) before it gives up the step.
TRANSIENT_DB_ERRORS = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)


def _epoch_note(epoch: int | None) -> str:
    return "" if epoch is None else f" (leader epoch {epoch})"


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ControllerSettings:
    hold_s: float = 5.0  # how long a cut pulse keeps the loop open
    valve_release_s: float = 2.0  # time the valve needs to drop once the loop is open (hardware)
    timer_max_min: float = 240.0
    retry_attempts: int = 5
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    readback_attempts: int = 3

    def __post_init__(self) -> None:
        if not self.valve_release_s > 0:
            raise ValueError("valve release time must be > 0")
        if not self.hold_s > self.valve_release_s:
            raise ValueError(f"cut hold ({self.hold_s} s) must be longer than the valve release time "
                             f"({self.valve_release_s} s), or the valve may stay open")
        if self.retry_attempts < 1 or self.readback_attempts < 1:
            raise ValueError("retry and read-back attempts must be >= 1")
        if not self.timer_max_min > 0:
            raise ValueError("timer cap must be > 0")

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based): exponential, capped."""
        return min(self.retry_base_s * (2 ** (attempt - 1)), self.retry_max_s)


@dataclass(frozen=True)
class Ticket:
    """What a caller gets back for a queued command."""

    command_id: int
    joined: bool


class Alerter:
    """Records an alert and pushes it (webhook, Home Assistant notify). Never raises: an alert that cannot be
    stored now (database unavailable) is logged at once, pushed anyway, and stored by a later ``flush``."""

    def __init__(self, store: StoveStore, clock: Clock,
                 push: Callable[[dict], None] | list[Callable[[dict], None]] | None = None) -> None:
        self.store, self.clock = store, clock
        self.pushers = [] if push is None else (list(push) if isinstance(push, list) else [push])
        self._unstored: list[tuple[float, str | None, str, str | None, bool]] = []
        self._lock = threading.Lock()

    def alert(self, burner: str | None, message: str, who: str | None = None) -> None:
        now = self.clock.now()
        log.error("STOVE ALERT [%s]: %s%s", burner, message, f" (requested by {who})" if who else "")
        alert_id = None
        try:
            alert_id = self.store.add_alert(now, burner, message, who)
        except Exception as exc:  # the database is what failed: keep the alert, push it anyway
            log.error("could not store stove alert (kept to store later): %s", exc)
        pushed = self._push({"burner": burner, "message": message, "who": who, "at": iso(now), "id": alert_id})
        if alert_id is None:
            with self._lock:
                self._unstored.append((now, burner, message, who, pushed))
        elif pushed:
            self._quietly(lambda: self.store.mark_alert_pushed(alert_id))

    def flush(self) -> None:
        """Store the alerts that could not be stored when they were raised."""
        with self._lock:
            pending, self._unstored = self._unstored, []
        for i, (at, burner, message, who, pushed) in enumerate(pending):
            try:
                self.store.add_alert(at, burner, message, who, pushed=pushed)
            except Exception:
                with self._lock:
                    self._unstored[:0] = pending[i:]
                raise

    @property
    def unstored(self) -> int:
        return len(self._unstored)

    def _push(self, payload: dict) -> bool:
        pushed = False
        for push in self.pushers:
            try:
                push(payload)
                pushed = True
            except Exception as exc:  # a failed push must not stop the shutoff logic
                log.error("could not push stove alert %s: %s", payload.get("id"), exc)
                self._quietly(lambda exc=exc: self.store.audit(
                    None, at=self.clock.now(), who="system", burner=payload["burner"], action="alert_push",
                    result="failed", detail=str(exc)[:300]))
        return pushed

    @staticmethod
    def _quietly(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            log.error("stove alert bookkeeping failed: %s", exc)


class StoveController:
    def __init__(self, store: StoveStore, adapter: RelayAdapter, clock: Clock, settings: ControllerSettings,
                 alerter: Alerter | None = None, burners: list[str] | None = None) -> None:
        self.store, self.adapter, self.clock, self.settings = store, adapter, clock, settings
        self.burners = list(burners if burners is not None else adapter.burners)
        missing = [b for b in self.burners if b not in adapter.burners]
        if missing:
            raise ValueError(f"adapter has no channel for burner(s) {missing}")
        self.alerter = alerter or Alerter(store, clock)
        self._changed = threading.Condition()
        self.on_command: Callable[[], None] | None = None  # set by the scheduler to wake up
        # The scheduler's current leadership term: every leader-only write is fenced by it. None: no
        # scheduler (tests driving the controller by hand), writes unfenced.
        self.term: Term | None = None
        self.db_retry_s = 5.0  # how long a leader waits out database errors inside one step (see _leader)
        self._local = threading.local()  # the term a burner worker started its command under
        store.sync_burners(self.burners, clock.now())

    # ------------------------------------------------------------------ commands (any process)
    def shutoff_now(self, burner: str, who: str) -> Ticket:
        """Queue a cut, or join the one already open. Always accepted, from any state."""
        self._known(burner)
        now = self.clock.now()
        with self.store.tx() as conn:
            existing = self.store.open_command(conn, burner, "shutoff")
            if existing is not None:
                self.store.audit(conn, at=now, who=who, burner=burner, action="shutoff",
                                 result=f"accepted: joined open shutoff #{existing.id}")
                ticket = Ticket(existing.id, True)
            else:
                cid = self.store.insert_command(conn, burner, "shutoff", who, now)
                superseded = conn.execute(
                    "UPDATE commands SET status = 'superseded', finished_at = ?, result = ? "
                    "WHERE burner = ? AND kind = 'restore' AND status = 'pending'",
                    (now, f"superseded by shutoff #{cid}", burner)).rowcount
                self.store.audit(conn, at=now, who=who, burner=burner, action="shutoff",
                                 result=f"accepted: queued shutoff #{cid}",
                                 detail=f"superseded {superseded} queued restore(s)" if superseded else None)
                ticket = Ticket(cid, False)
        self._poke()
        return ticket

    def restore(self, burner: str, who: str) -> Ticket:
        """Queue a restore (close the loop so the burner can be lit by hand again)."""
        self._known(burner)
        now = self.clock.now()

        def queue() -> Ticket:
            with self.store.tx() as conn:
                row = self.store.burner(conn, burner)
                if row.state in (CUTTING, RESTORING) and self.store.open_command(conn, burner, "restore") is None:
                    raise Conflict(f"a cut is in progress (state {row.state}); "
                                   "the loop is restored automatically at the end of the pulse")
                if self.store.open_command(conn, burner, "shutoff") is not None:
                    raise Conflict("a shutoff is queued or running; shutoff wins")
                existing = self.store.open_command(conn, burner, "restore")
                if existing is not None:
                    self.store.audit(conn, at=now, who=who, burner=burner, action="restore",
                                     result=f"accepted: joined open restore #{existing.id}")
                    ticket = Ticket(existing.id, True)
                else:
                    cid = self.store.insert_command(conn, burner, "restore", who, now)
                    self.store.update_burner(conn, burner, now, last_user_action_at=now)
                    self.store.audit(conn, at=now, who=who, burner=burner, action="restore",
                                     result=f"accepted: queued restore #{cid}")
                    ticket = Ticket(cid, False)
            return ticket

        ticket = self._audited_conflict(who, burner, "restore", queue)
        self._poke()
        return ticket

    def arm_timer(self, burner: str, minutes: float, who: str) -> BurnerRow:
        """Arm (or re-arm) a shutoff timer ``minutes`` from now, stored as an absolute deadline."""
        self._known(burner)
        cap = self.settings.timer_max_min
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not math.isfinite(minutes):
            raise InvalidDuration("minutes must be a finite number")
        if not 0 < minutes <= cap:
            raise InvalidDuration(f"minutes must be > 0 and <= {cap:g} (STOVE_TIMER_MAX_MIN), got {minutes:g}")
        now = self.clock.now()
        deadline = now + minutes * 60.0

        def arm() -> BurnerRow:
            with self.store.tx() as conn:
                row = self.store.burner(conn, burner)
                if row.state in (CUTTING, RESTORING) or self.store.open_command(conn, burner, "shutoff"):
                    raise Conflict(f"a cut is queued or in progress (state {row.state}); arm the timer afterwards")
                # In FAULT the state stays FAULT (the fault is the more important thing to show); the timer
                # still fires: shutoff is always attempted.
                new_state = row.state if row.state == FAULT else TIMER_ARMED
                self._set_state(conn, row, new_state, now, timer_deadline=deadline, timer_armed_by=who,
                                timer_armed_at=now, last_user_action_at=now)
                self.store.audit(conn, at=now, who=who, burner=burner, action="arm_timer",
                                 result=f"armed: shutoff at {iso(deadline)}", detail=f"{minutes:g} min")
                return self.store.burner(conn, burner)

        return self._audited_conflict(who, burner, "arm_timer", arm)

    def cancel_timer(self, burner: str, who: str) -> tuple[BurnerRow, bool]:
        """Cancel the timer. Idempotent: returns (status, whether a timer was cancelled)."""
        self._known(burner)
        now = self.clock.now()
        with self.store.tx() as conn:
            row = self.store.burner(conn, burner)
            if row.timer_deadline is None:
                self.store.audit(conn, at=now, who=who, burner=burner, action="cancel_timer",
                                 result="no timer armed")
                return row, False
            new_state = READY if row.state == TIMER_ARMED else row.state
            if new_state != row.state:
                self._set_state(conn, row, new_state, now, timer_deadline=None, timer_armed_by=None,
                                timer_armed_at=None, last_user_action_at=now)
            else:
                self.store.update_burner(conn, burner, now, timer_deadline=None, timer_armed_by=None,
                                         timer_armed_at=None, last_user_action_at=now)
            self.store.audit(conn, at=now, who=who, burner=burner, action="cancel_timer",
                             result=f"cancelled timer due {iso(row.timer_deadline)}")
            return self.store.burner(conn, burner), True

    # ------------------------------------------------------------------ execution (scheduler only)
    def fire_due_timers(self) -> list[int]:
        """Turn every due (or overdue) deadline into a shutoff command, under the leader's epoch.
        Returns the command ids. A firing and its command are one transaction: never half done."""
        fired: list[int] = []
        now = self.clock.now()
        epoch = self._epoch()
        for due in self._leader(lambda: self.store.due_timers(now)):
            if due.id not in self.burners:
                continue

            def fire(conn: sqlite3.Connection, burner: str = due.id) -> int | None:
                row = self.store.burner(conn, burner)
                if row.timer_deadline is None or row.timer_deadline > now:
                    return None  # cancelled or re-armed meanwhile (or already fired)
                fields = dict(timer_deadline=None, timer_armed_by=None, timer_armed_at=None)
                if row.state == TIMER_ARMED:
                    self._set_state(conn, row, READY, now, **fields)
                else:
                    self.store.update_burner(conn, row.id, now, **fields)
                existing = self.store.open_command(conn, row.id, "shutoff")
                if existing is not None:
                    cid, how = existing.id, f"joined open shutoff #{existing.id}"
                else:
                    cid = self.store.insert_command(conn, row.id, "shutoff",
                                                    f"timer (armed by {row.timer_armed_by})", now)
                    how = f"queued shutoff #{cid}"
                late = now - row.timer_deadline
                self.store.audit(conn, at=now, who="timer", burner=row.id, action="timer_fired", result=how,
                                 detail=f"deadline {iso(row.timer_deadline)}, fired {late:.3f} s after it"
                                        f"{_epoch_note(epoch)}")
                return cid

            cid = self._leader_write(fire)
            if cid is not None:
                fired.append(cid)
        if fired:
            self._notify()
        return fired

    def execute_next(self, burner: str) -> CommandRow | None:
        """Run the next pending command of ``burner`` to completion. Returns it, or None if idle.

        Raises LostLeadership (and has then written nothing more, nor touched the relay) when this
        process stopped being the leader meanwhile."""
        self._local.term = self.term
        try:
            cmd = self._leader(lambda: self.store.claim_next_command(
                burner, self.clock.now(), fence=self._fence(), epoch=self._epoch()))
            if cmd is None:
                return None
            self._notify()
            try:
                if cmd.kind == "shutoff":
                    self._run_shutoff(cmd)
                else:
                    self._run_restore(cmd)
            except LostLeadership:
                raise
            except Exception as exc:  # a bug or a lasting DB error must still leave a visible FAULT and an alert
                log.exception("stove command %s crashed", cmd.id)
                self._fail(cmd, f"internal error while executing {cmd.kind}: {exc.__class__.__name__}: {exc}")
            self._notify()
            return self._leader(lambda: self.store.get_command(cmd.id))
        finally:
            self._local.term = None

    def recover(self) -> int:
        """Called when a scheduler takes over: re-run what the previous leader left unfinished."""
        now = self.clock.now()

        def requeue(conn: sqlite3.Connection) -> int:
            n, interrupted = self.store.requeue_running(conn, now)
            self.store.audit(conn, at=now, who="system", action="scheduler_start",
                             result=f"requeued {n} unfinished command(s)",
                             detail=f"pid {os.getpid()}{_epoch_note(self._epoch())}")
            for burner in interrupted:
                self.store.audit(conn, at=now, who="system", burner=burner, action="recover",
                                 result="sequence interrupted by a scheduler restart; running it again")
            return n

        return self._leader_write(requeue)

    def requeue_orphans(self, busy: Iterable[str]) -> int:
        """Commands left running by a burner worker of this leader that died (a lasting database error):
        run them again. ``busy`` are the burners whose worker is still alive."""
        busy = set(busy)
        idle = [b for b in self.burners if b not in busy]
        now = self.clock.now()

        def requeue(conn: sqlite3.Connection) -> int:
            n, interrupted = self.store.requeue_running(conn, now, idle)
            for burner in interrupted:
                self.store.audit(conn, at=now, who="system", burner=burner, action="recover",
                                 result="sequence interrupted by a failed step; running it again")
            return n

        if not self._leader(lambda: self.store.count_open_running(idle)):
            return 0
        return self._leader_write(requeue)

    def pending_burners(self) -> list[str]:
        return [b for b in self.store.burners_with_pending() if b in self.burners]

    # ------------------------------------------------------------------ status
    def status(self, burner: str, *, names: bool = True) -> dict[str, Any]:
        self._known(burner)
        return self.describe(self.store.get_burner(burner), names=names)

    def statuses(self, *, names: bool = True) -> list[dict[str, Any]]:
        return [self.describe(r, names=names) for r in self.store.list_burners(self.burners)]

    def describe(self, row: BurnerRow, *, names: bool = True) -> dict[str, Any]:
        """A burner's state for people. ``names=False`` (no token): who armed the timer is null."""
        now = self.clock.now()
        if row.state == CUTTING:
            msg = "cut in progress" + (f"; cut delivered at {iso(row.last_cut_at)}" if row.last_cut_at else "")
        elif row.state == RESTORING:
            msg = f"cut delivered at {iso(row.last_cut_at)}; restoring the loop" if row.last_cut_at \
                else "restoring the loop"
        elif row.state == FAULT:
            msg = f"FAULT: {row.fault}"
        elif row.last_cut_at is not None:
            msg = f"cut delivered at {iso(row.last_cut_at)}; loop restored, burner can be relit by hand"
        else:
            msg = "ready: loop conducting, no cut delivered yet"
        if row.timer_deadline is not None:
            msg += f"; shutoff timer due at {iso(row.timer_deadline)}"
        # "Shut off at T" stays until the next action a person takes on this burner (arm, cancel, restore).
        shut_off = row.last_cut_at if row.last_cut_at is not None and (
            row.last_user_action_at is None or row.last_cut_at >= row.last_user_action_at) else None
        return {
            "id": row.id,
            "state": row.state,
            "message": f"{msg} ({FLAME_NOTE})",
            "flame": "unknown",
            "timer_deadline": iso(row.timer_deadline),
            "timer_deadline_epoch": row.timer_deadline,
            "seconds_left": None if row.timer_deadline is None else max(0.0, row.timer_deadline - now),
            "timer_armed_by": row.timer_armed_by if names else None,
            "cut_delivered_at": iso(row.last_cut_at),
            "shut_off_at_epoch": shut_off,
            "last_restore_at": iso(row.last_restore_at),
            "relay_state": row.relay_state,
            "relay_checked_at": iso(row.relay_checked_at),
            "fault": row.fault,
        }

    def wait_for(self, command_id: int, timeout_s: float) -> CommandRow | None:
        """Wait until a command is delivered or final (or the timeout passes). Uses the real clock:
        it is only a bound on how long an HTTP request waits."""
        end = time.monotonic() + timeout_s
        while True:
            cmd = self.store.get_command(command_id)
            if cmd is None or cmd.status == "delivered" or cmd.status in FINAL_STATUSES:
                return cmd
            left = end - time.monotonic()
            if left <= 0:
                return cmd
            with self._changed:
                # Woken at once when this process runs the scheduler; polls for other processes.
                self._changed.wait(min(left, 0.1))

    # ------------------------------------------------------------------ internals
    def _run_shutoff(self, cmd: CommandRow) -> None:
        s, burner = self.settings, cmd.burner
        now = self.clock.now()

        def start(conn: sqlite3.Connection) -> None:
            row = self.store.burner(conn, burner)
            cleared = row.timer_deadline
            self._set_state(conn, row, CUTTING, now, timer_deadline=None, timer_armed_by=None, timer_armed_at=None)
            if cleared is not None:
                self.store.audit(conn, at=now, who="system", burner=burner, action="cancel_timer",
                                 result=f"timer due {iso(cleared)} cleared: shutoff #{cmd.id} wins")

        self._leader_write(start)
        if cmd.pulse_done_at is not None:
            # A previous leader delivered the whole pulse and closed the loop, then stopped before recording
            # the read-back: no second cut, only the read-back.
            self._leader_write(lambda conn: self._set_state(conn, self.store.burner(conn, burner), RESTORING,
                                                             self.clock.now()))
            self._verify_and_finish(cmd, cmd.delivered_at or cmd.pulse_done_at, write_first=True)
            return
        delivered: list[float] = []

        def record_delivery(t: float) -> None:
            def write(conn: sqlite3.Connection) -> None:
                self.store.update_command(conn, cmd.id, status="delivered", delivered_at=t)
                self.store.update_burner(conn, burner, t, last_cut_at=t, relay_state=RelayState.CUT.value,
                                         relay_checked_at=t)
                self.store.audit(conn, at=t, who=cmd.requested_by, burner=burner, action="cut",
                                 result=f"cut delivered at {iso(t)}",
                                 detail=f"shutoff #{cmd.id}, holding {s.hold_s:g} s{_epoch_note(self._epoch())}")

            self._leader_write(write)
            self._notify()

        def on_open(t: float) -> None:
            delivered.append(t)
            try:
                record_delivery(t)
            except LostLeadership:
                raise  # the adapter leaves the loop open: the new leader delivers the pulse again
            except Exception:  # keep the pulse going; the delivery is recorded again below
                log.exception("could not record the delivery of shutoff #%s", cmd.id)

        error: AdapterError | None = None
        for attempt in range(1, s.retry_attempts + 1):
            sending = self.clock.now()
            self._leader_write(lambda conn, a=attempt, t=sending: self.store.update_command(
                conn, cmd.id, attempts=a, sending_at=t))
            try:
                self.adapter.cut(burner, s.hold_s, on_open, guard=self._device_ok)
                error = None
                break
            except AdapterError as exc:
                error = exc
                if delivered:
                    break  # the break was delivered; only closing the loop failed: handled below
                self._leader_write(lambda conn, a=attempt, e=exc: self.store.audit(
                    conn, at=self.clock.now(), who="system", burner=burner, action="cut",
                    result=f"attempt {a}/{s.retry_attempts} failed", detail=str(e)))
                if attempt < s.retry_attempts:
                    self.clock.sleep(s.backoff(attempt))
        if not delivered:
            reason = (f"shutoff NOT delivered after {s.retry_attempts} attempt(s): {error}; "
                      "the gas may still be flowing")
            self._fail(cmd, reason)
            return
        t = delivered[0]
        done = self.clock.now()

        def pulse_done(conn: sqlite3.Connection) -> None:
            current = self.store.get_command_in(conn, cmd.id)
            if current is not None and current.delivered_at is None:  # on_open could not record it
                self.store.update_command(conn, cmd.id, status="delivered", delivered_at=t)
                self.store.update_burner(conn, burner, t, last_cut_at=t, relay_state=RelayState.CUT.value,
                                         relay_checked_at=t)
                self.store.audit(conn, at=t, who=cmd.requested_by, burner=burner, action="cut",
                                 result=f"cut delivered at {iso(t)}", detail=f"shutoff #{cmd.id} (recorded late)")
            if error is None:
                self.store.update_command(conn, cmd.id, pulse_done_at=done)
            self._set_state(conn, self.store.burner(conn, burner), RESTORING, done)

        self._leader_write(pulse_done)
        self._verify_and_finish(cmd, t, write_first=error is not None)

    def _verify_and_finish(self, cmd: CommandRow, delivered_at: float | None, *, write_first: bool) -> None:
        ok, detail = self._restore_and_verify(cmd.burner, write_first=write_first)
        if ok:
            self._finish(cmd, READY, f"cut delivered at {iso(delivered_at)}; loop restored and read back conducting")
        else:
            self._fail(cmd, f"cut delivered at {iso(delivered_at)}, but {detail}", keep_delivered=True)

    def _run_restore(self, cmd: CommandRow) -> None:
        burner = cmd.burner
        self._leader_write(lambda conn: self._set_state(conn, self.store.burner(conn, burner), RESTORING,
                                                         self.clock.now()))
        ok, detail = self._restore_and_verify(burner, write_first=True)
        if ok:
            row = self._leader(lambda: self.store.get_burner(burner))
            self._finish(cmd, TIMER_ARMED if row.timer_deadline is not None else READY,
                         "loop restored and read back conducting; the burner can be lit by hand")
        else:
            self._fail(cmd, f"restore failed: {detail}")

    def _restore_and_verify(self, burner: str, *, write_first: bool) -> tuple[bool, str]:
        """Read back (restoring first, or again, when needed); retried with backoff."""
        s = self.settings
        detail = "relay state not read"
        write = write_first
        for attempt in range(1, s.readback_attempts + 1):
            self._device_ok()
            try:
                if write:
                    self.adapter.restore(burner)
                state = self.adapter.relay_state(burner)
            except AdapterError as exc:
                detail = f"relay read-back failed: {exc}"
                state = None
            now = self.clock.now()
            if state is not None:
                fields: dict[str, Any] = dict(relay_state=state.value, relay_checked_at=now)
                if state is RelayState.CONDUCTING:
                    fields["last_restore_at"] = now
                self._leader_write(lambda conn, f=fields, t=now: self.store.update_burner(conn, burner, t, **f))
                if state is RelayState.CONDUCTING:
                    return True, "conducting"
                detail = ("relay still reads CUT after restore: the burner cannot be relit (gas stays off); "
                          "check the relay") if state is RelayState.CUT else "relay state unknown after restore"
            self._leader_write(lambda conn, a=attempt, d=detail, t=now: self.store.audit(
                conn, at=t, who="system", burner=burner, action="read_back",
                result=f"attempt {a}/{s.readback_attempts} failed", detail=d))
            write = True  # retry by commanding the loop closed again (harmless: never opens the gas)
            if attempt < s.readback_attempts:
                self.clock.sleep(s.backoff(attempt))
        return False, detail

    def _finish(self, cmd: CommandRow, state: str, result: str) -> None:
        now = self.clock.now()

        def write(conn: sqlite3.Connection) -> None:
            self._set_state(conn, self.store.burner(conn, cmd.burner), state, now, fault=None)
            self.store.update_command(conn, cmd.id, status="done", finished_at=now, result=result)
            self.store.audit(conn, at=now, who=cmd.requested_by, burner=cmd.burner, action=cmd.kind,
                             result="done", detail=f"#{cmd.id}: {result}")

        self._leader_write(write)

    def _fail(self, cmd: CommandRow, reason: str, *, keep_delivered: bool = False) -> None:
        now = self.clock.now()

        def write(conn: sqlite3.Connection) -> None:
            row = self.store.burner(conn, cmd.burner)
            if row.state != FAULT:
                self._set_state(conn, row, FAULT, now, fault=reason)
            else:
                self.store.update_burner(conn, cmd.burner, now, fault=reason)
            # A shutoff whose break was delivered stays "done" for its waiters (the gas was cut);
            # the fault is about the restore.
            status = "done" if keep_delivered else "failed"
            self.store.update_command(conn, cmd.id, status=status, finished_at=now, result=reason)
            self.store.audit(conn, at=now, who=cmd.requested_by, burner=cmd.burner, action=cmd.kind,
                             result="FAULT", detail=f"#{cmd.id}: {reason}")

        message = f"burner {cmd.burner}: {reason} ({cmd.kind})"
        try:
            self._leader_write(write)
        except LostLeadership:
            raise  # the new leader runs the command again
        except Exception:
            self.alerter.alert(cmd.burner, message + "; could not be recorded: the database failed",
                               who=cmd.requested_by)
            raise
        self.alerter.alert(cmd.burner, message, who=cmd.requested_by)

    # ---- leadership: fences and retried writes ----
    def _current_term(self) -> Term | None:
        return getattr(self._local, "term", None) or self.term

    def _epoch(self) -> int | None:
        term = self._current_term()
        return None if term is None else term.epoch

    def _fence(self) -> Callable[[sqlite3.Connection], None] | None:
        term = self._current_term()
        return None if term is None else term.check

    def _device_ok(self) -> None:
        term = self._current_term()
        if term is not None:
            term.device_ok()

    def _leader_write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """One fenced write transaction of the leader, retried through transient database errors."""
        def attempt() -> _T:
            with self.store.tx(self._fence()) as conn:
                return fn(conn)

        return self._leader(attempt)

    def _leader(self, fn: Callable[[], _T]) -> _T:
        """Run a database step of the leader, waiting out transient errors (no free descriptor, a locked or
        full disk) for up to ``db_retry_s``, so a short outage does not cut twice. LostLeadership is final."""
        give_up = time.monotonic() + self.db_retry_s
        delay = 0.02
        while True:
            try:
                return fn()
            except LostLeadership:
                raise
            except TRANSIENT_DB_ERRORS as exc:
                if time.monotonic() + delay > give_up:
                    raise
                log.warning("stove: database step failed (%s); retrying in %.2f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _set_state(self, conn: Any, row: BurnerRow, new: str, now: float, **fields: Any) -> None:
        if new != row.state and new not in TRANSITIONS[row.state]:
            raise IllegalTransition(f"{row.state} -> {new} is not allowed")
        if new == TIMER_ARMED and row.state == TIMER_ARMED and "timer_deadline" not in fields:
            raise IllegalTransition("re-arming needs a deadline")
        self.store.update_burner(conn, row.id, now, state=new, **fields)
        row.state = new

    def _audited_conflict(self, who: str, burner: str, action: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (which holds its own transaction); a Conflict rolls it back, so audit the
        rejection in a transaction of its own before re-raising it."""
        try:
            return fn()
        except Conflict as exc:
            self.store.audit(None, at=self.clock.now(), who=who, burner=burner, action=action,
                             result=f"rejected: {exc}")
            raise

    def _known(self, burner: str) -> None:
        if burner not in self.burners:
            raise UnknownBurner(f"unknown burner {burner!r}; configured burners: {', '.join(self.burners)}")

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _poke(self) -> None:
        self._notify()
        if self.on_command is not None:
            self.on_command()
