"""What a job is, as every store keeps it and as clients see it."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = frozenset({DONE, FAILED, CANCELLED})


@dataclass
class JobRecord:
    id: str
    kind: str
    params: dict[str, Any]
    status: str
    progress: float = 0.0
    message: str = ""
    result: Any = None  # the decoded result when it is small enough to inline
    result_bytes: int | None = None  # size of the JSON result, inline or stored aside
    result_external: bool = False  # True: the result lives in a file/blob, served by GET .../result
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    owner: str | None = None
    runs: int = 0  # how many times a worker started it: 0 or 1, never more
    cancel_requested: bool = False
    client: str = ""  # who submitted it ("token:<name>" or "local:<address>"); never shown to clients

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def public(self, result_url: str | None = None) -> dict[str, Any]:
        """The JSON a client sees: no owner/heartbeat internals, result or error per status."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": round(self.progress, 6),
            "message": self.message,
            "params": self.params,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.status == DONE:
            out["result"] = None if self.result_external else self.result
            out["result_bytes"] = self.result_bytes
            out["result_external"] = self.result_external
            out["result_url"] = result_url
        if self.status in (FAILED, CANCELLED):
            out["error"] = self.error
        if self.cancel_requested and self.status == RUNNING:
            out["cancel_requested"] = True
        return out


# --- owner identity: which process runs a job, and whether that process is gone -----------------

HOST = socket.gethostname()
_LIVE_OWNERS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def new_owner() -> str:
    """A unique worker identity ``host:pid:nonce``; registered live in this process until released."""
    owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    with _LIVE_LOCK:
        _LIVE_OWNERS.add(owner)
    return owner


def release_owner(owner: str) -> None:
    with _LIVE_LOCK:
        _LIVE_OWNERS.discard(owner)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` ran on this host and its process (or its runner in this process) is gone.

    Owners on other hosts cannot be checked this way; their jobs fail by heartbeat timeout instead.
    """
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, _nonce = rest.partition(":")
    if host != HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _LIVE_LOCK:
            return owner not in _LIVE_OWNERS
    return not _pid_alive(pid)
