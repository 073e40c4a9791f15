"""The standalone stove scheduler (``python -m backend.services.stove``) with chaos hooks, for the tests:

    python -m tests.stove.chaos_daemon --set STOVE_DB=... [--set ...]

- ``STOVE_CHAOS_JOURNAL=<file>``: every write to the simulated relay is appended to this file as
  ``<time> <pid> <burner> open|closed`` (the contact after the write), so tests count the cuts that reached
  "the relay" across processes, each of which simulates its own copy of it.
- ``STOVE_CHAOS_FAULT='{"kinds": [K1, K2, ...], "seconds": S}'``: each SIGUSR1 arms the next kind: for S
  seconds every call of that database operation fails as SQLite fails when there is no free descriptor, the
  file is locked or the disk is full. A kind is a ``StoveStore`` method (``tx``, ``read``, ``next_deadline``,
  ``renew_lease``, ...), ``connect`` (every database call) or ``descriptors`` (the process's descriptors are
  really exhausted: every open fails). When a window closes the daemon prints
  ``chaos: injected N failure(s) into K``.
- ``STOVE_CHAOS_NOFILE=<n>``: the soft limit on open descriptors (cheap exhaustion).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import sys
import threading
import time
from typing import Any

from backend.services.stove import __main__ as stove_main
from backend.services.stove.adapters import SimulatedStove
from backend.services.stove.persistence import StoveStore

ERRORS = ["unable to open database file", "database is locked", "database or disk is full", "disk I/O error"]


class Fault:
    def __init__(self, kinds: list[str], seconds: float) -> None:
        self.kinds, self.seconds = list(kinds), seconds
        self.kind: str | None = None
        self.armed_at: float | None = None
        self.injected = 0
        self.requests: list[float] = []  # appended by the signal handler, served by the watcher thread
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="chaos", daemon=True).start()

    def active(self, kind: str) -> bool:
        return self.kind == kind and self.armed_at is not None and time.monotonic() - self.armed_at < self.seconds

    def hit(self, kind: str) -> None:
        if self.active(kind):
            with self._lock:
                self.injected += 1
                message = ERRORS[self.injected % len(ERRORS)]
            raise sqlite3.OperationalError(f"{message} (injected)")

    def _watch(self) -> None:
        # The signal handler only appends: starting threads or printing inside a handler can deadlock.
        while True:
            if not self.requests:
                time.sleep(0.005)
                continue
            self.requests.pop(0)
            if not self.kinds:
                continue
            kind = self.kinds.pop(0)
            self.injected = 0
            self.kind, self.armed_at = kind, time.monotonic()
            if kind == "descriptors":
                self._exhaust()
            else:
                time.sleep(self.seconds + 0.05)
            print(f"chaos: injected {self.injected} failure(s) into {kind}", flush=True)

    def _exhaust(self) -> None:
        held: list[int] = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        self.injected = len(held)
        time.sleep(self.seconds)
        for fd in held:
            os.close(fd)


def install_fault(spec: dict[str, Any]) -> Fault:
    fault = Fault(spec["kinds"], float(spec["seconds"]))
    for kind in set(fault.kinds) - {"descriptors"}:
        name = "_connect" if kind == "connect" else kind
        original = getattr(StoveStore, name)

        def failing(self: StoveStore, *args: Any, _kind: str = kind, _original: Any = original, **kwargs: Any) -> Any:
            fault.hit(_kind)
            return _original(self, *args, **kwargs)

        setattr(StoveStore, name, failing)
    signal.signal(signal.SIGUSR1, lambda *_: fault.requests.append(time.monotonic()))
    return fault


def install_journal(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # opened now: it works without descriptors
    original = SimulatedStove.set_switch

    def journalled(self: SimulatedStove, burner: str, on: bool) -> None:
        original(self, burner, on)
        state = "closed" if self.contact_conducts(burner) else "open"
        os.write(fd, f"{time.time():.6f} {os.getpid()} {burner} {state}\n".encode())

    SimulatedStove.set_switch = journalled


def main() -> int:
    if os.environ.get("STOVE_CHAOS_NOFILE"):
        soft = int(os.environ["STOVE_CHAOS_NOFILE"])
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if os.environ.get("STOVE_CHAOS_JOURNAL"):
        install_journal(os.environ["STOVE_CHAOS_JOURNAL"])
    if os.environ.get("STOVE_CHAOS_FAULT"):
        install_fault(json.loads(os.environ["STOVE_CHAOS_FAULT"]))
    return stove_main.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
