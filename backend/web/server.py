"""The production server's pieces (``gunicorn.conf.py`` uses them; ``python -m backend serve`` uses the sidecars).

- :class:`DeadlineThreadWorker`: gunicorn's threaded worker, where a connection holds one thread (never the
  worker) only while its request arrives in time: the request line and headers within ``WEB_HEADER_TIMEOUT_S``,
  the whole body within ``WEB_BODY_TIMEOUT_S`` (a stalled upload gets a 408 and its thread back).
- gunicorn's own refusals (400, 414, 431, ...) answer in the JSON error shape instead of an HTML page.
- :class:`Sidecars`: the stove scheduler and the embedded job workers run as their own processes beside the web
  workers, restarted when they exit, so a request, a slow client or a worker restart never stops a timer or a job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.http.errors import NoMoreData
from gunicorn.workers import gthread

log = logging.getLogger("backend.server")

# Refusals gunicorn makes before the app sees a request, in the app's words; the setting goes in `limit`.
_GUNICORN_REFUSALS = {
    400: ("the request is malformed HTTP ({detail}); send a well-formed request", None),
    403: ("this request was refused ({detail})", None),
    408: ("the request arrived too slowly and was dropped; send it again", "WEB_HEADER_TIMEOUT_S"),
    414: ("the request line is longer than this server accepts; put long input in a JSON body instead of the "
          "URL", "limit_request_line"),
    417: ("this server does not support that Expect header ({detail})", None),
    431: ("the request headers are too many or too large ({detail}); send fewer or shorter headers",
          "limit_request_fields"),
    501: ("this server does not support that transfer coding ({detail})", None),
}


def json_error_response(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying the app's error shape (``backend.web.errors``)."""
    template, limit = _GUNICORN_REFUSALS.get(status, ("the request could not be handled ({detail})", None))
    body = json.dumps({"error": template.format(detail=detail.strip() or reason.lower()), "status": status,
                       "code": reason.lower().replace(" ", "_"), "field": None, "limit": limit,
                       "limit_value": None}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
    return head + body


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    gunicorn_util.write_nonblock(sock, json_error_response(int(status_int), reason, mesg))


class _DeadlineSocket:
    """What the request parser reads through: ``recv`` with a deadline for the headers, then one for the body.

    Responses are written to the real socket, which stays blocking between reads.
    """

    def __init__(self, sock: Any, header_s: float, body_s: float) -> None:
        self._sock = sock
        self.header_s = header_s
        self.body_s = body_s
        self.deadline = time.monotonic() + header_s
        self.in_body = False
        self.expired = False

    def start_request(self) -> None:
        self.deadline, self.in_body, self.expired = time.monotonic() + self.header_s, False, False

    def start_body(self) -> None:
        self.deadline, self.in_body = time.monotonic() + self.body_s, True

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.expired = True
            # Headers: drop the connection quietly (gunicorn's "client went away"); body: the app answers 408.
            if self.in_body:
                raise TimeoutError(f"request body not received within {self.body_s:g} s")
            raise NoMoreData(b"")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size)
        except TimeoutError:
            self.expired = True
            if self.in_body:
                raise
            raise NoMoreData(b"") from None
        finally:
            with contextlib.suppress(OSError):  # closed meanwhile
                self._sock.settimeout(None)


class _DeadlineConn(gthread.TConn):
    def init(self) -> None:
        super().init()
        if self.parser is None or self.is_http2:
            return
        unreader = self.parser.unreader
        reader = getattr(unreader, "sock", None)
        if not isinstance(reader, _DeadlineSocket):
            reader = _DeadlineSocket(reader, self.cfg.header_timeout_s, self.cfg.body_timeout_s)
            unreader.sock = reader
        reader.start_request()  # each request on a kept-alive connection gets its own deadlines


class DeadlineThreadWorker(gthread.ThreadWorker):
    """gthread with request deadlines (``WEB_HEADER_TIMEOUT_S``, ``WEB_BODY_TIMEOUT_S``) and JSON refusals."""

    def init_process(self) -> None:
        gunicorn_util.write_error = _write_json_error  # gunicorn's refusals in the app's error shape
        self.cfg.header_timeout_s = float(os.environ.get("WEB_HEADER_TIMEOUT_S", 10.0))
        self.cfg.body_timeout_s = float(os.environ.get("WEB_BODY_TIMEOUT_S", 60.0))
        super().init_process()

    def accept(self, listener: Any) -> None:
        # As gthread's accept, with the connection class that sets the deadlines.
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            conn = _DeadlineConn(self.cfg, client_sock, client_addr, listener.getsockname())
            self.enqueue_req(conn)
        except OSError as e:
            import errno

            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise

    def handle_request(self, req: Any, conn: Any) -> bool:
        reader = getattr(getattr(conn.parser, "unreader", None), "sock", None)
        if isinstance(reader, _DeadlineSocket):
            reader.start_body()
        keepalive = super().handle_request(req, conn)
        # A body that timed out leaves the connection mid-request: close it.
        return bool(keepalive) and not (isinstance(reader, _DeadlineSocket) and reader.expired)


# ---------------------------------------------------------------- sidecar processes
def sidecar_commands(settings: Mapping[str, Any]) -> dict[str, list[str]]:
    """The processes that run beside the web workers: the stove scheduler, and (embedded jobs) the job workers."""
    commands = {"stove-scheduler": [sys.executable, "-m", "backend.services.stove"]}
    if settings["JOBS_BACKEND"] == "embedded":
        commands["job-worker"] = [sys.executable, "-m", "backend.jobs.worker",
                                  "--concurrency", str(int(settings["JOBS_WORKERS"]))]
    return commands


class Sidecars:
    """Start each command, restart it when it exits (1 s, doubling to 30 s while it keeps failing), stop them all."""

    def __init__(self, commands: Mapping[str, list[str]], *, env: Mapping[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.commands = dict(commands)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.commands, 0)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name)
        self._thread = threading.Thread(target=self._watch, name="sidecars", daemon=True)
        self._thread.start()

    def _spawn(self, name: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            # Own process group: a Ctrl-C in the terminal reaches the server, which stops these in order.
            self.procs[name] = subprocess.Popen(self.commands[name], env=self.env, cwd=self.cwd,
                                                start_new_session=True)
            log.info("started %s (pid %s)", name, self.procs[name].pid)

    def _watch(self) -> None:
        backoff = dict.fromkeys(self.commands, 1.0)
        started = {name: time.monotonic() for name in self.commands}
        while not self._stop.wait(0.5):
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    if time.monotonic() - started[name] > 60:
                        backoff[name] = 1.0  # ran a minute: healthy again
                    continue
                log.warning("%s (pid %s) exited with %s; restarting in %.0f s", name, proc.pid, proc.returncode,
                            backoff[name])
                if self._stop.wait(backoff[name]):
                    return
                backoff[name] = min(30.0, backoff[name] * 2)
                self.restarts[name] += 1
                started[name] = time.monotonic()
                self._spawn(name)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM each (a running job fails as interrupted, a stove pulse finishes), SIGKILL after ``timeout``."""
        self._stop.set()
        with self._lock:
            procs = list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._thread is not None:
            self._thread.join(2)


def worker_environment(settings: Mapping[str, Any]) -> dict[str, str]:
    """Environment for processes that serve requests while sidecars run the scheduler and the jobs."""
    if not settings["WEB_SIDECARS"]:
        return {}
    env = {"STOVE_SCHEDULER": "0"}  # the stove-scheduler sidecar runs it
    if settings["JOBS_BACKEND"] == "embedded":
        env["JOBS_EMBEDDED_POOL"] = "0"  # web processes only queue; the job-worker sidecar runs the jobs
    return env
