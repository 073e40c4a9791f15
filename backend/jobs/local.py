"""Running tasks from scripts: in this process with a tqdm bar, or on a server while a bar follows.

    from backend.jobs.local import run_task
    result = run_task("mad.simulate", {"steps": 100})        # validates params, shows a tqdm bar

or from a shell: ``python -m backend.jobs run jobs.demo_sleep --params '{"steps": 20}'`` and
``python -m backend.jobs watch --server http://127.0.0.1:5000 jobs.demo_sleep --params '{...}'``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import BaseModel
from tqdm import tqdm

from backend.jobs.manager import validate_params
from backend.jobs.registry import TASKS, JobCancelled

BAR_TOTAL = 1000  # the bar counts thousandths of the job


class TqdmContext:
    """A task context for scripts: progress drives a tqdm bar, the message shows beside it."""

    def __init__(self, desc: str = "", **tqdm_kwargs: Any) -> None:
        tqdm_kwargs.setdefault("bar_format", "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
        self.bar = tqdm(total=BAR_TOTAL, desc=desc, **tqdm_kwargs)
        self.updates: list[tuple[float, str]] = []
        self.cancelled = False

    def progress(self, fraction: float, message: str = "") -> None:
        if self.cancelled:
            raise JobCancelled()
        fraction = min(1.0, max(0.0, float(fraction)))
        self.updates.append((fraction, message))
        self.bar.update(round(fraction * BAR_TOTAL) - self.bar.n)
        if message:
            self.bar.set_postfix_str(message, refresh=False)

    def close(self) -> None:
        self.bar.close()


def import_task_modules(extra: list[str] | tuple[str, ...] = ()) -> None:
    """Import every service blueprint (they register their tasks) and ``extra`` modules."""
    from backend.app import SERVICE_BLUEPRINTS

    for module in [*SERVICE_BLUEPRINTS, *extra]:
        importlib.import_module(module)


def run_task(kind: str, params: Mapping[str, Any] | BaseModel | None = None, *, ctx: Any = None,
             **tqdm_kwargs: Any) -> dict:
    """Validate ``params`` and run task ``kind`` here; a tqdm bar shows progress unless ``ctx`` is given."""
    clean = validate_params(kind, params)
    spec = TASKS[kind]
    own = ctx is None
    context = TqdmContext(kind, **tqdm_kwargs) if own else ctx
    try:
        return spec.fn(spec.params.model_validate(clean), context)
    finally:
        if own:
            context.close()


class RemoteJobError(RuntimeError):
    """A job on the server failed or was cancelled, or the server refused it."""


def watch_remote(server: str, kind: str, params: Mapping[str, Any] | None = None, *, poll_s: float = 0.25,
                 timeout_s: float | None = None, session: requests.Session | None = None,
                 **tqdm_kwargs: Any) -> dict:
    """Submit a job to a running backend and follow it with a tqdm bar; returns its result."""
    http = session or requests.Session()
    base = server.rstrip("/")
    response = http.post(f"{base}/api/jobs", json={"kind": kind, "params": dict(params or {})}, timeout=30)
    if response.status_code != 202:
        raise RemoteJobError(f"the server refused the job ({response.status_code}): {response.json().get('error')}")
    status_url = base + response.json()["status_url"]
    bar = TqdmContext(kind, **tqdm_kwargs)
    started = time.monotonic()
    try:
        while True:
            job = http.get(status_url, timeout=30).json()
            bar.progress(job.get("progress", 0.0), job.get("message", ""))
            if job["status"] == "done":
                if job.get("result_external"):
                    return http.get(base + job["result_url"], timeout=300).json()
                return job["result"]
            if job["status"] in ("failed", "cancelled"):
                raise RemoteJobError(f"job {job['id']} {job['status']}: {job.get('error')}")
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise TimeoutError(f"job {job['id']} still {job['status']} after {timeout_s} s")
            time.sleep(poll_s)
    finally:
        bar.close()
        if session is None:
            http.close()
