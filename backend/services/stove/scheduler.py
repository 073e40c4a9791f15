"""Exactly one scheduler, even with several worker processes.

Every process that hosts the service runs a :class:`Scheduler` thread, but only the one holding an
exclusive OS file lock (``flock`` on ``<STOVE_DB>.lock``) acts: it fires due timers and executes
queued commands against the relay. The others stay on standby and retry the lock; because the kernel
drops a lock when its process dies (even on SIGKILL), a standby takes over within one poll interval.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

from backend.services.stove.clock import Clock, SystemClock
from backend.services.stove.controller import StoveController

log = logging.getLogger(__name__)


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
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
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


class Scheduler:
    """Leader loop: timers and command execution, one worker thread per busy burner."""

    def __init__(self, controller: StoveController, lock_path: str, *, poll_s: float = 0.25,
                 heartbeat_s: float = 2.0, clock: Clock | None = None) -> None:
        self.controller = controller
        self.lock = LeaderLock(lock_path)
        self.poll_s = float(poll_s)
        self.heartbeat_s = float(heartbeat_s)
        self.clock = clock or SystemClock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: dict[str, threading.Thread] = {}
        self._last_beat = 0.0
        self._owner_pid: int | None = None
        controller.on_command = self.wake

    @property
    def is_leader(self) -> bool:
        return self.lock.held

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop in this process (idempotent; also right after a fork, see _forget_parent)."""
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            self._forget_parent()
        if self.running:
            return
        self._owner_pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stove-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, let running burner workers finish (a pulse is never cut short), release the lock."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for t in list(self._workers.values()):
            t.join(timeout)
        self.lock.release()

    def _forget_parent(self) -> None:
        # Forked from a process that ran this scheduler (e.g. gunicorn --preload): the parent's threads did
        # not come along, and the inherited lock descriptor shares the parent's lock. Close our copy (the
        # parent keeps its lock) and start over as a standby.
        if self.lock._fd is not None:
            os.close(self.lock._fd)
            self.lock._fd = None
        self._thread = None
        self._workers = {}
        self._stop = threading.Event()
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> None:
        """One leader step (also used directly by tests)."""
        self.controller.fire_due_timers()
        for burner in self.controller.pending_burners():
            worker = self._workers.get(burner)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(target=self._drain, args=(burner,), name=f"stove-{burner}", daemon=True)
                self._workers[burner] = worker
                worker.start()

    def _drain(self, burner: str) -> None:
        # Commands of one burner run one after the other; burners run in parallel.
        while self.controller.execute_next(burner) is not None:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the step: a wake-up during the step is not lost
            try:
                if not self.lock.held and self.lock.try_acquire():
                    log.info("stove scheduler: pid %s is the leader", os.getpid())
                    self.controller.recover()
                if self.lock.held:
                    self.run_once()
                    self._heartbeat()
            except Exception:  # keep the only scheduler alive; the error is logged and retried
                log.exception("stove scheduler step failed")
            self._wake.wait(self._sleep_time())

    def _sleep_time(self) -> float:
        if not self.lock.held:
            return self.poll_s
        deadline = self.controller.store.next_deadline()
        if deadline is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, deadline - self.clock.now()))

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= self.heartbeat_s:
            self._last_beat = now
            self.controller.store.set_meta(leader_pid=str(os.getpid()), leader_heartbeat=f"{self.clock.now():.3f}")
