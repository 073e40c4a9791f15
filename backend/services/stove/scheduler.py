"""Exactly one scheduler, even with several worker processes, frozen ones included.

Every process that hosts the service runs a :class:`Scheduler` thread; only the holder of the **lease**
acts (fires due timers, executes queued commands against the relay). The lease is the ``leader`` row in
the database: holder, monotonically increasing epoch, expiry. The leader renews it every LEASE/3; a
standby takes it over once it has not been renewed for LEASE, so a leader that is frozen (SIGSTOP, a
stalled VM) is replaced, not only a dead one.

**Fencing.** Every write the leader makes (a timer firing, a command claimed, a cut delivered or
finished) runs in a transaction that first checks the lease row still names its epoch; every command to
the relay is preceded by a check that its lease cannot have lapsed. A leader that wakes up after SIGCONT
with an old epoch therefore writes nothing and sends nothing; it stands down. Commands record their
progress (claimed, sending, delivered, pulse done) before and after each relay command, so a new leader
re-delivers a cut that may not have completed and never skips one; a cut is sent twice only when the old
leader froze inside a relay command.

**The flock fast path.** The leader also holds an ``flock`` on ``<STOVE_DB>.lock`` and says so in the
lease row. The kernel drops that lock when its holder dies (even on SIGKILL): a standby that gets the
lock while the row says the holder had it knows the holder is gone and takes over at once, without
waiting for the lease to expire. A frozen holder keeps its lock, so only the lease can see it.

**The guarded loop.** Every step, the sleep computation included, runs inside one guard: a failure is
logged, retried with capped exponential backoff, and raises an alert after ``alert_after`` failures in a
row. The thread never leaves the loop while the process lives; if it ever does, it releases the lease
first.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable

from backend.services.stove.clock import Clock, SystemClock
from backend.services.stove.controller import LostLeadership, StoveController
from backend.services.stove.persistence import LeaseRow, StoveStore

log = logging.getLogger(__name__)

# A leader trusts its lease for this fraction of LEASE after the renewal started (clock drift, slow commits).
LEASE_TRUST = 0.8


class LeaderLock:
    """A non-blocking exclusive lock on a file, held for as long as the file stays open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def forget(self) -> None:
        """In a forked child: close our copy of the descriptor without unlocking the parent's lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LeaseTerm:
    """One leadership term: the fences the controller checks (see controller.Term)."""

    def __init__(self, lease: Lease, epoch: int) -> None:
        self.lease, self.epoch = lease, epoch

    def check(self, conn: sqlite3.Connection) -> None:
        row = StoveStore.lease(conn)
        if row.holder != self.lease.holder or row.epoch != self.epoch:
            raise LostLeadership(f"epoch {self.epoch} ended: the lease is now epoch {row.epoch} of {row.holder}")

    def device_ok(self) -> None:
        if self.lease.epoch != self.epoch:
            raise LostLeadership(f"epoch {self.epoch} ended in this process")
        if time.monotonic() >= self.lease.trusted_until:
            raise LostLeadership(f"the lease of epoch {self.epoch} may have lapsed (not renewed in time)")


class Lease:
    """Leadership as a lease in the database (holder, epoch, expiry), with the flock as a fast path."""

    def __init__(self, store: StoveStore, lock_path: str, lease_s: float, clock: Clock) -> None:
        self.store, self.lease_s, self.clock = store, float(lease_s), clock
        self.lock = LeaderLock(lock_path)
        self.holder = self._new_holder()
        self.epoch: int | None = None
        self.term: LeaseTerm | None = None
        self.trusted_until = 0.0  # monotonic
        self._renewed = 0.0  # monotonic time the last renewal started
        # Lease transactions give up quickly: a renewal stuck behind a lock is a failed step, not a frozen loop.
        self.db_timeout_s = max(0.05, self.lease_s / 4)

    @staticmethod
    def _new_holder() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    @property
    def held(self) -> bool:
        return self.epoch is not None

    def step(self) -> tuple[bool, bool]:
        """Acquire or renew. Returns (leading now, just became leader). Raises on database errors and
        LostLeadership when another process has taken the lease over."""
        if self.epoch is None:
            return self._try_claim(), self.epoch is not None
        # A leader that took over from a frozen holder lacks the flock: it picks it up once that holder lets go.
        got_lock = not self.lock.held and self.lock.try_acquire()
        if got_lock or time.monotonic() - self._renewed >= self.lease_s / 3:
            self._renew()
        return True, False

    def renew_due_in(self) -> float:
        return max(0.0, self._renewed + self.lease_s / 3 - time.monotonic())

    def _try_claim(self) -> bool:
        started = time.monotonic()
        got_lock = self.lock.try_acquire()
        try:
            epoch = self.store.claim_lease(self.holder, self.clock.now(), self.lease_s, has_flock=got_lock,
                                           timeout_s=self.db_timeout_s)
        except BaseException:
            if got_lock:
                self.lock.release()
            raise
        if epoch is None:
            if got_lock:
                self.lock.release()  # the leader (which lacks the lock) picks it up at its next renewal
            return False
        self.epoch, self.term = epoch, LeaseTerm(self, epoch)
        self._trust(started)
        return True

    def _renew(self) -> None:
        started = time.monotonic()
        if not self.store.renew_lease(self.holder, self.epoch, self.clock.now(), self.lease_s,
                                      has_flock=self.lock.held, timeout_s=self.db_timeout_s):
            raise LostLeadership(f"epoch {self.epoch}: another process holds the lease now")
        self._trust(started)

    def _trust(self, started: float) -> None:
        self._renewed = started
        self.trusted_until = started + self.lease_s * LEASE_TRUST

    def stand_down(self) -> None:
        """Stop leading: give the lease back (if it is still ours) and the flock."""
        epoch, self.epoch, self.term = self.epoch, None, None
        self.trusted_until = 0.0
        try:
            if epoch is not None:
                self.store.release_lease(self.holder, epoch, timeout_s=self.db_timeout_s)
        except Exception as exc:  # it expires on its own
            log.warning("stove scheduler: could not release the lease (it expires in %.1f s): %s", self.lease_s, exc)
        finally:
            self.lock.release()

    def forget_parent(self) -> None:
        """In a forked child: the parent's lease and lock are the parent's."""
        self.lock.forget()
        self.epoch, self.term, self.trusted_until = None, None, 0.0
        self.holder = self._new_holder()


def lease_status(row: LeaseRow, now: float, lease_s: float) -> dict:
    """What the watchdog says about a lease row: stale when its holder has not renewed for 2 x LEASE."""
    age = None if row.renewed_at is None else max(0.0, now - row.renewed_at)
    stale = row.holder is None or age is None or age > 2 * lease_s
    if row.holder is None:
        message = "no scheduler holds the lease: armed timers will not fire"
    elif stale:
        message = (f"the scheduler lease has not been renewed for {age:.1f} s (more than 2 x STOVE_LEASE_S = "
                   f"{2 * lease_s:g} s): armed timers may not fire")
    else:
        message = "scheduler lease renewed"
    pid = None
    if row.holder:
        parts = row.holder.split(":")
        pid = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    return {"ok": not stale, "message": message, "holder": row.holder, "leader_pid": pid, "epoch": row.epoch,
            "lease_age_s": None if age is None else round(age, 3),
            "lease_expires_in_s": round(row.expires_at - now, 3) if row.holder else None}


class Scheduler:
    """Leader loop: timers and command execution, one worker thread per busy burner."""

    def __init__(self, controller: StoveController, lock_path: str, *, poll_s: float = 0.25,
                 lease_s: float = 5.0, alert_after: int = 3, clock: Clock | None = None,
                 on_step: Callable[[], None] | None = None) -> None:
        self.controller = controller
        self.clock = clock or SystemClock()
        self.poll_s = float(poll_s)
        self.lease_s = float(lease_s)
        self.alert_after = int(alert_after)
        self.lease = Lease(controller.store, lock_path, self.lease_s, self.clock)
        self.on_step = on_step  # extra per-step chores of the hosting service (flushing counters)
        self.failures = 0  # failed steps in a row
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: dict[str, threading.Thread] = {}
        self._owner_pid: int | None = None
        self._stale_alerted: str | None = None
        controller.on_command = self.wake
        controller.db_retry_s = max(0.5, self.lease_s * 0.6)

    @property
    def lock(self) -> LeaderLock:
        return self.lease.lock

    @property
    def is_leader(self) -> bool:
        return self.lease.held

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop in this process (idempotent; restarts a loop that ended; also right after a fork)."""
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            self._forget_parent()
        if self.running:
            return
        self._owner_pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stove-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, let running burner workers finish (a pulse is never cut short), release the lease."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for t in list(self._workers.values()):
            t.join(timeout)
        self._stand_down("scheduler stopped")

    def _forget_parent(self) -> None:
        # Forked from a process that ran this scheduler (e.g. gunicorn --preload): the parent's threads did
        # not come along, and the inherited lock descriptor shares the parent's lock. Close our copy (the
        # parent keeps its lock and lease) and start over as a standby.
        self.lease.forget_parent()
        self.controller.term = None
        self._thread = None
        self._workers = {}
        self._stop = threading.Event()
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    # ---------------------------------------------------------------- the loop
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()  # before the step: a wake-up during the step is not lost
                delay = self._guarded_step()
                self._wake.wait(delay)
        finally:
            self._stand_down("scheduler loop ended")

    def _guarded_step(self) -> float:
        """One step; never raises. Returns how long to sleep before the next one."""
        try:
            delay = self.step()
        except LostLeadership as exc:
            log.warning("stove scheduler: pid %s stands down: %s", os.getpid(), exc)
            self._stand_down(str(exc))
            return self.poll_s
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{exc.__class__.__name__}: {exc}"
            delay = self.backoff(self.failures)
            log.error("stove scheduler step failed (%d in a row; next try in %.2f s): %s", self.failures, delay,
                      self.last_error, exc_info=self.failures == 1)
            if self.failures == self.alert_after:
                self._alert_failures()
            return delay
        if self.failures:
            log.warning("stove scheduler: steps succeed again after %d failure(s)", self.failures)
            self.failures, self.last_error = 0, None
        return delay

    def backoff(self, failures: int) -> float:
        """Delay after ``failures`` failed steps in a row: doubling from POLL, capped below LEASE/3 so a
        leader still renews its lease in time once the database answers again."""
        return min(self.poll_s * 2 ** (failures - 1), max(self.poll_s, self.lease_s / 3))

    def step(self) -> float:
        """One pass: lease, recovery after a takeover, timers, commands, watchdog, chores. Returns the sleep."""
        leading, acquired = self.lease.step()
        if acquired:
            self.controller.term = self.lease.term
            log.info("stove scheduler: pid %s is the leader (epoch %s)", os.getpid(), self.lease.epoch)
            try:
                self.controller.recover()
            except Exception:
                self._stand_down("recovery after the takeover failed")  # let the next step start over
                raise
        if leading:
            self.run_once()
        else:
            self._watchdog()
        self.controller.alerter.flush()
        if self.on_step is not None:
            self.on_step()
        return self._sleep_time()

    def run_once(self) -> None:
        """One leader step (also used directly by tests)."""
        busy = [b for b, t in self._workers.items() if t.is_alive()]
        self.controller.requeue_orphans(busy)
        self.controller.fire_due_timers()
        for burner in self.controller.pending_burners():
            worker = self._workers.get(burner)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(target=self._drain, args=(burner,), name=f"stove-{burner}", daemon=True)
                self._workers[burner] = worker
                worker.start()

    def _drain(self, burner: str) -> None:
        # Commands of one burner run one after the other; burners run in parallel.
        try:
            while self.controller.execute_next(burner) is not None:
                pass
        except LostLeadership as exc:
            log.warning("stove scheduler: burner %s worker stops: %s", burner, exc)
            self._wake.set()
        except Exception:  # its command stays open; the next leader step requeues it (requeue_orphans)
            log.exception("stove scheduler: burner %s worker failed", burner)
            self._wake.set()

    def _sleep_time(self) -> float:
        if not self.lease.held:
            return self.poll_s
        delay = min(self.poll_s, self.lease.renew_due_in())
        deadline = self.controller.store.next_deadline()
        if deadline is not None:
            delay = min(delay, deadline - self.clock.now())
        return max(0.0, delay)

    def _stand_down(self, reason: str) -> None:
        was = self.lease.epoch
        self.controller.term = None
        try:
            self.lease.stand_down()
        except Exception as exc:  # pragma: no cover - stand_down already swallows database errors
            log.warning("stove scheduler: stand-down incomplete: %s", exc)
        if was is not None:
            log.info("stove scheduler: pid %s left the lead (epoch %s): %s", os.getpid(), was, reason)

    # ---------------------------------------------------------------- alerts
    def _alert_failures(self) -> None:
        self.controller.alerter.alert(
            None, f"the stove scheduler in pid {os.getpid()} failed {self.failures} steps in a row "
                  f"({self.last_error}); it keeps retrying, but armed timers may be late")

    def _watchdog(self) -> None:
        """A standby watches the leader: a lease not renewed for 2 x LEASE is an alert (pushed once)."""
        now = self.clock.now()
        status = lease_status(self.controller.store.get_lease(timeout_s=self.lease.db_timeout_s), now, self.lease_s)
        if status["ok"]:
            return
        key = f"{status['epoch']}:{status['holder']}"
        if self._stale_alerted != key and self.controller.store.claim_once("watchdog_alerted", key):
            self.controller.alerter.alert(None, f"watchdog: {status['message']}")
        self._stale_alerted = key
