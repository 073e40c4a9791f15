"""Compute cannot starve control: a bounded number of compute requests per process, each with a time budget.

``ApiBlueprint.api(..., cost=fn)`` runs a compute endpoint through :func:`compute`:

1. a slot: at most ``COMPUTE_CONCURRENCY`` compute requests are read and run at once in a process; one more is
   answered 503 with ``Retry-After`` at once, before its body is read (it never queues, so the threads stay free
   for the stove and health endpoints, and large bodies are parsed a bounded number at a time);
2. an estimate: ``fn(body)`` predicts the run's seconds (calibrated by ``scripts/calibrate_costs.py``); one over
   ``SYNC_MAX_SECONDS`` is refused with a 422 that says how to make it smaller or run it as a job;
3. a deadline: a run that still overruns (``SYNC_MAX_SECONDS`` x ``SYNC_OVERRUN_FACTOR``) is stopped: cooperative
   code calls :func:`check` at its progress points, and a watchdog raises :class:`Overrun` inside the request's
   thread at its next Python instruction for code that has none. The stack unwinds normally (``finally`` blocks and
   ``with`` locks release), and the client gets a 503 in the error shape.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g, request

from backend.web.caps import fmt
from backend.web.errors import ApiError, Overrun


def _state(app: Flask) -> dict[str, Any]:
    ext = app.extensions.get("compute_budget")
    if ext is None:
        ext = app.extensions["compute_budget"] = {
            "slots": threading.BoundedSemaphore(max(1, int(app.config["COMPUTE_CONCURRENCY"]))),
            "running": 0,
            "lock": threading.Lock(),
        }
    return ext


def running(app: Flask) -> int:
    """Compute requests running in this process now."""
    return _state(app)["running"]


def _busy() -> ApiError:
    cfg = current_app.config
    slots = int(cfg["COMPUTE_CONCURRENCY"])
    retry = int(cfg["COMPUTE_RETRY_AFTER_S"])
    return ApiError(503, f"the server is busy with {slots} other computation{'s' if slots != 1 else ''}; "
                         f"try again in {retry} s", code="busy", limit="COMPUTE_CONCURRENCY", limit_value=slots,
                    headers={"Retry-After": str(retry)})


def _discard_body() -> None:
    """Read and drop an unread request body in small pieces (never parsed, never held), so the client's
    keep-alive connection stays usable for its retry after the 503."""
    with contextlib.suppress(Exception):  # too large, or too slow: the server closes the connection instead
        stream = request.stream
        while stream.read(64 * 1024):
            pass


def admit(estimate_s: float, *, fix: str) -> None:
    """Refuse (422) a synchronous run estimated over ``SYNC_MAX_SECONDS``; ``fix`` says how to get under it."""
    limit = float(current_app.config["SYNC_MAX_SECONDS"])
    if estimate_s > limit:
        raise ApiError(422, f"this would take about {_seconds(estimate_s)}, over the limit of {_seconds(limit)} "
                            f"for a direct answer; {fix}", code="limit_exceeded", limit="SYNC_MAX_SECONDS",
                       limit_value=limit)


def _seconds(s: float) -> str:
    return f"{fmt(round(s, 1 if s < 10 else 0))} s"


def check() -> None:
    """Cooperative overrun check for progress points of a synchronous run (no-op outside one)."""
    deadline = g.get("compute_deadline") if _in_request() else None
    if deadline is not None and time.monotonic() > deadline:
        raise Overrun()


def _in_request() -> bool:
    from flask import has_app_context

    return has_app_context()


# ---------------------------------------------------------------- the watchdog
class _Watchdog:
    """One daemon thread per process: raises Overrun in request threads that passed their deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, float] = {}  # thread id -> monotonic deadline
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _ensure(self) -> None:
        if self._thread is None or not self._thread.is_alive():  # also after a fork
            self._thread = threading.Thread(target=self._run, name="compute-watchdog", daemon=True)
            self._thread.start()

    def watch(self, deadline: float) -> None:
        with self._lock:
            self._deadlines[threading.get_ident()] = deadline
            self._ensure()
        self._wake.set()

    def release(self) -> None:
        """Stop watching this thread and drop an Overrun that was raised but not yet delivered."""
        ident = threading.get_ident()
        with self._lock:
            self._deadlines.pop(ident, None)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [ident for ident, deadline in self._deadlines.items() if deadline <= now]
                for ident in due:
                    del self._deadlines[ident]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(Overrun))
                nearest = min(self._deadlines.values(), default=now + 5.0)
            self._wake.wait(max(0.01, min(5.0, nearest - time.monotonic())))
            self._wake.clear()


_watchdog = _Watchdog()


@contextmanager
def slot() -> Iterator[None]:
    """One of this process's ``COMPUTE_CONCURRENCY`` compute slots, or a 503 with ``Retry-After`` at once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state(app)
    if not state["slots"].acquire(blocking=False):
        _discard_body()
        raise _busy()
    with state["lock"]:
        state["running"] += 1
    try:
        yield
    finally:
        with state["lock"]:
            state["running"] -= 1
        state["slots"].release()


@contextmanager
def deadline(estimate_s: float, *, fix: str) -> Iterator[None]:
    """Admit a run estimated at ``estimate_s`` (422 over SYNC_MAX_SECONDS) and stop it past its deadline (503)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    admit(estimate_s, fix=fix)
    limit = float(app.config["SYNC_MAX_SECONDS"])
    allowed = limit * float(app.config["SYNC_OVERRUN_FACTOR"])
    g.compute_deadline = time.monotonic() + allowed
    try:
        _watchdog.watch(g.compute_deadline)
        try:
            yield
        finally:
            _watchdog.release()
    except Overrun:
        raise overrun_error(estimate_s) from None
    finally:
        if _in_request():  # a generator finalised by the garbage collector has no app context left
            g.compute_deadline = None


def overrun_error(estimate_s: float | None = None) -> ApiError:
    """The 503 of a stopped run. Also the app's handler for an Overrun that escaped :func:`deadline`: the
    watchdog's asynchronous exception can land while the context manager itself is exiting."""
    cfg = current_app.config
    limit = float(cfg["SYNC_MAX_SECONDS"])
    allowed = limit * float(cfg["SYNC_OVERRUN_FACTOR"])
    estimated = "" if estimate_s is None else f" (the estimate was {_seconds(estimate_s)})"
    return ApiError(503, f"this computation ran past {_seconds(allowed)}{estimated} and was stopped; ask for less, "
                         "or run it as a job", code="overrun", limit="SYNC_MAX_SECONDS", limit_value=limit,
                    headers={"Retry-After": str(int(cfg["COMPUTE_RETRY_AFTER_S"]))})


@contextmanager
def compute(estimate_s: float, *, fix: str) -> Iterator[None]:
    """A synchronous compute run in a view (MAD's direct answers): a slot, the estimate admitted, the deadline."""
    admit(estimate_s, fix=fix)  # before taking a slot: a refused run never holds one
    with slot(), deadline(estimate_s, fix=fix):
        yield


def estimate(cost: Callable[[Any], float] | float, body: Any) -> float:
    value = cost(body) if callable(cost) else float(cost)
    return value if math.isfinite(value) else math.inf
