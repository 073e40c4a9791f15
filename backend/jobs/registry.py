"""Task registry: the contract between services and the job layer.

A service declares long work once::

    @task("mad.simulate", params=SimulateParams)
    def simulate(params: SimulateParams, ctx: JobContext) -> dict: ...

and the job layer (embedded worker pool or Celery) runs it, feeding progress through ``ctx``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel


class JobCancelled(Exception):
    """Raised inside a task by ``ctx.progress`` once the job has been cancelled."""


class JobContext(Protocol):
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; raises JobCancelled when the job was cancelled."""


@dataclass
class LocalContext:
    """A context for running a task function directly (tests, scripts): records progress."""

    updates: list[tuple[float, str]] = field(default_factory=list)
    cancelled: bool = False

    def progress(self, fraction: float, message: str = "") -> None:
        if self.cancelled:
            raise JobCancelled()
        self.updates.append((min(1.0, max(0.0, float(fraction))), message))


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    fn: Callable[[Any, JobContext], dict]
    params: type[BaseModel]
    summary: str


TASKS: dict[str, TaskSpec] = {}


def task(kind: str, *, params: type[BaseModel], summary: str = "") -> Callable:
    """Register ``fn(params, ctx) -> dict`` as the job kind ``kind`` ("<service>.<task>")."""

    def register(fn: Callable[[Any, JobContext], dict]) -> Callable[[Any, JobContext], dict]:
        if kind in TASKS and TASKS[kind].fn is not fn:
            raise ValueError(f"job kind {kind!r} registered twice")
        TASKS[kind] = TaskSpec(kind, fn, params, summary or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return register
