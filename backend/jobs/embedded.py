"""The embedded backend: a pool of worker threads in the backend process, fed from SQLite.

Threads (not processes) because tasks are numpy/torch work that releases the GIL, and because a
thread shares the already-imported task registry. Several backend processes (gunicorn workers, or
``python -m backend.jobs.worker`` on the same machine) can share one database: claims are atomic.

Restart semantics: on start the pool fails the jobs whose process is gone ("interrupted: ...") and
then runs the queued jobs left from before the restart, oldest first: queued work is requeued, not lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from backend.jobs.execute import RunLimits, Store, recover, run_claimed
from backend.jobs.records import new_owner, release_owner
from backend.jobs.registry import TASKS

log = logging.getLogger(__name__)


class EmbeddedPool:
    def __init__(self, store: Store, *, workers: int, limits: RunLimits, poll_s: float, stale_s: float,
                 idle_exit_s: float | None = None) -> None:
        self.store = store
        self.workers = max(1, workers)
        self.limits = limits
        self.poll_s = poll_s  # how often idle threads look for jobs other processes queued
        self.stale_s = stale_s
        # In-app pools let idle threads go (a test app, a quiet server); submit() brings them back.
        self.idle_exit_s = idle_exit_s
        self.owner = new_owner()
        self._pid = os.getpid()
        self._wake = threading.Condition()
        self._signals = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.busy = 0

    @property
    def alive(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Fail jobs of dead workers, then make sure all worker threads run (idempotent)."""
        with self._lock:
            if self._stop.is_set():
                return
            if self._pid != os.getpid():  # forked (gunicorn --preload): a new process, a new identity
                self._pid, self.owner, self._threads = os.getpid(), new_owner(), []
            self._threads = [t for t in self._threads if t.is_alive()]
            if len(self._threads) >= self.workers:
                return
            recover(self.store, self.stale_s)
            for _ in range(self.workers - len(self._threads)):
                thread = threading.Thread(target=self._loop, name="job-worker", daemon=True)
                thread.start()
                self._threads.append(thread)

    def notify(self) -> None:
        """A job was queued: wake one idle thread now instead of at its next poll."""
        with self._wake:
            self._signals += 1
            self._wake.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running tasks stop at their next progress call and fail as interrupted."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        release_owner(self.owner)
        self.store.close()

    def _wait_for_work(self) -> bool:
        """Sleep until notified or a poll period passed; True when woken by a notify."""
        with self._wake:
            if self._signals == 0:
                self._wake.wait(self.poll_s)
            woken = self._signals > 0
            self._signals = max(0, self._signals - 1)
            return woken

    def _leave_if_idle(self, idle_since: float) -> bool:
        """True (and this thread is forgotten) when idle past idle_exit_s and no job was announced.

        Submitters notify() before start(), and start() sees this thread gone, so no job is stranded.
        """
        if self.idle_exit_s is None or time.monotonic() - idle_since <= self.idle_exit_s:
            return False
        with self._lock, self._wake:
            if self._signals:
                return False
            self._threads = [t for t in self._threads if t is not threading.current_thread()]
            return True

    def _loop(self) -> None:
        idle_since = time.monotonic()
        last_sweep = time.monotonic()
        errors = 0
        while not self._stop.is_set():
            try:
                job = self.store.claim(None, self.owner, set(TASKS))
                errors = 0
                if job is None:
                    if self._leave_if_idle(idle_since):
                        break
                    if time.monotonic() - last_sweep > self.stale_s / 2:  # now and then, fail lost workers' jobs
                        last_sweep = time.monotonic()
                        recover(self.store, self.stale_s)
                    self._wait_for_work()
                    continue
                with self._lock:
                    self.busy += 1
                try:
                    run_claimed(self.store, job, self.owner, self.limits, self._stop)
                finally:
                    with self._lock:
                        self.busy -= 1
                idle_since = time.monotonic()
            except Exception:  # a store error (disk full, locked database): log, back off, keep serving
                errors += 1
                if errors == 1:
                    log.exception("embedded job worker: store error (retrying)")
                if self._leave_if_idle(idle_since):
                    break
                self._stop.wait(min(self.poll_s * errors, 5.0))
        self.store.close()
