"""The production server's pieces: gunicorn's refusals in the error shape, and the supervised sidecar processes."""

from __future__ import annotations

import json
import sys
import time

from backend.config import load_config
from backend.web.server import Sidecars, json_error_response, sidecar_commands, worker_environment


def test_gunicorn_refusals_use_the_error_shape():
    raw = json_error_response(414, "URI Too Long", "Request Line is too large (9000 > 8190)")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n") and b"Content-Type: application/json" in head
    assert int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) == len(body)
    error = json.loads(body)
    assert set(error) == {"error", "status", "code", "field", "limit", "limit_value"}
    assert error["status"] == 414 and error["limit"] == "limit_request_line" and "URL" in error["error"]


def test_sidecars_are_restarted_when_they_exit_and_stopped_with_the_server(tmp_path):
    marker = tmp_path / "starts"
    quick = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"]
    steady = [sys.executable, "-c", "import time; time.sleep(60)"]
    sidecars = Sidecars({"quick": quick, "steady": steady})
    sidecars.start()
    try:
        deadline = time.monotonic() + 20
        while sidecars.restarts["quick"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sidecars.restarts["quick"] >= 2 and len(marker.read_text()) >= 2  # exited, started again
        assert sidecars.restarts["steady"] == 0 and sidecars.procs["steady"].poll() is None
    finally:
        sidecars.stop(timeout=5)
    assert all(proc.poll() is not None for proc in sidecars.procs.values())


def test_the_topology_follows_the_settings():
    settings = load_config({"JOBS_BACKEND": "embedded", "WEB_SIDECARS": True}, environ={})
    assert set(sidecar_commands(settings)) == {"stove-scheduler", "job-worker"}
    assert worker_environment(settings) == {"STOVE_SCHEDULER": "0", "JOBS_EMBEDDED_POOL": "0"}
    celery = load_config({"JOBS_BACKEND": "celery"}, environ={})
    assert set(sidecar_commands(celery)) == {"stove-scheduler"}  # Celery workers are started on their own
    assert worker_environment(load_config({"WEB_SIDECARS": False}, environ={})) == {}
