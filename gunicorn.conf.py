"""Production server: ``gunicorn backend.wsgi:app`` (from the repository root) reads this file.

What it sets up (every number is a setting of ``backend/config.py``, overridable by an environment variable):

- ``WEB_WORKERS`` worker processes with ``WEB_THREADS`` threads each (``backend.web.server.DeadlineThreadWorker``):
  a slow or stalled client holds one thread, never a worker, and only until ``WEB_HEADER_TIMEOUT_S`` (request line
  and headers) or ``WEB_BODY_TIMEOUT_S`` (the whole body; then a 408). gunicorn's own refusals (malformed request,
  request line or headers too large) answer in the JSON error shape.
- The stove scheduler and the embedded job workers run as their own processes beside the web workers
  (``WEB_SIDECARS``), started and restarted by the gunicorn master: no request, timeout or worker restart can stop a
  timer or kill a running job, and the web workers only serve requests.
- Compute endpoints run under a per-process budget (``COMPUTE_CONCURRENCY``, ``SYNC_MAX_SECONDS``), so the stove and
  health endpoints always find a free thread.
"""

from __future__ import annotations

import os
import sys

from backend.config import load_config_or_exit
from backend.web.server import Sidecars, sidecar_commands, worker_environment

settings = load_config_or_exit()  # a bad setting: one line naming it, exit status 2

wsgi_app = "backend.wsgi:app"
bind = [f"{settings['HOST']}:{settings['PORT']}"]
workers = int(settings["WEB_WORKERS"])
threads = int(settings["WEB_THREADS"])
worker_class = "backend.web.server.DeadlineThreadWorker"
worker_connections = 1000
# The worker's main loop (not a request) must check in this often; requests are bounded by the compute budget.
timeout = 30
graceful_timeout = 20
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# The deadlines the worker reads (they may come from the environment already).
for _name in ("WEB_HEADER_TIMEOUT_S", "WEB_BODY_TIMEOUT_S"):
    os.environ.setdefault(_name, str(settings[_name]))
# Web workers leave the stove scheduler and the jobs to the sidecars.
os.environ.update(worker_environment(settings))

_sidecars: Sidecars | None = None


def post_fork(server, worker) -> None:
    # A thread waiting for the GIL behind compute threads gets it after at most this long (default 5 ms): a stove
    # request releases and re-takes the GIL at every socket and SQLite call, so this bounds its latency under load.
    sys.setswitchinterval(float(settings["WEB_GIL_SWITCH_S"]))


def when_ready(server) -> None:
    global _sidecars
    if settings["WEB_SIDECARS"]:
        _sidecars = Sidecars(sidecar_commands(settings))
        _sidecars.start()
        server.log.info("sidecars: %s", ", ".join(_sidecars.commands))


def on_exit(server) -> None:
    if _sidecars is not None:
        _sidecars.stop()
