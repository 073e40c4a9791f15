"""Fixtures for the job layer: a real redis-server, real worker processes, both backends.

``harness`` is parametrized over the two backends. Each is the real thing end to end: the backend
app served over HTTP on loopback (it only queues: JOBS_EMBEDDED_POOL off), and a separate
``python -m backend.jobs.worker`` process that runs the jobs, a Celery worker on a redis-server
broker or an embedded pool on the same SQLite file. Killing that process is a backend restart.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from backend import create_app
from tests.conftest import config_for_tests
from tests.jobs.sample_tasks import RECORD_DIR_ENV

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = "/usr/bin/redis-server"
FINISHED = ("done", "failed", "cancelled")
TASK_MODULES = ["tests.jobs.sample_tasks"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            pytest.fail(f"{REDIS_SERVER} is required for the Celery backend tests: apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--protected-mode", "yes"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        import redis

        client = redis.Redis.from_url(self.url)

        def ping() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {(workdir / 'redis.log').read_text()}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(ping, 10, "redis-server to answer PING")
        client.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class Harness:
    """One backend under test: the app over HTTP (queues jobs) and a worker process (runs them)."""

    def __init__(self, backend: str, tmp: Path, redis_url: str | None = None) -> None:
        self.backend = backend
        self.tmp = tmp
        self.record_dir = tmp / "records"
        self.record_dir.mkdir()
        settings = {
            "JOBS_BACKEND": backend,
            "JOBS_EMBEDDED_POOL": False,
            "JOBS_TASK_MODULES": TASK_MODULES,
            "JOBS_WORKERS": 2,
            "JOBS_POLL_S": 0.05,
            "JOBS_HEARTBEAT_S": 0.3,
            "JOBS_STALE_S": 5.0,
            "JOBS_PROGRESS_INTERVAL_S": 0.02,
            "JOBS_MAX_PENDING": 1000,
            "JOBS_MAX_PENDING_PER_CLIENT": 1000,  # every request comes from this one loopback client
            "JOBS_DEMO_MAX_PAYLOAD_KB": 1024,  # results over the inline limit (256 KiB) are part of the tests
        }
        if redis_url:
            settings["CELERY_BROKER_URL"] = redis_url
            settings["JOBS_REDIS_PREFIX"] = f"test-{uuid.uuid4().hex[:8]}"
        self.config = config_for_tests(tmp, **settings)
        os.environ[RECORD_DIR_ENV] = str(self.record_dir)  # for in-process runs of the sample tasks
        self.env = dict(os.environ)
        self.env.update({key: _env_value(value) for key, value in self.config.items() if key.startswith(("JOBS_",
                                                                                                           "CELERY_"))})
        self.env.update({"BACKEND_INSTANCE_DIR": str(tmp / "worker-instance"), RECORD_DIR_ENV: str(self.record_dir),
                         "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
        self.app = create_app(self.config)
        self.manager = self.app.extensions["jobs"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.http = requests.Session()
        self.worker: subprocess.Popen | None = None
        self.worker_starts = 0

    # -- the worker process -----------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen:
        self.worker_starts += 1
        log_path = self.tmp / f"worker-{self.worker_starts}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the child owns it from here
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "backend.jobs.worker", "--concurrency", "2", "--loglevel", "INFO",
             "--modules", ",".join(TASK_MODULES)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        ready = "jobs worker ready" if self.backend == "celery" else "embedded job worker:"

        def is_ready() -> bool:
            if self.worker.poll() is not None:
                raise AssertionError(f"worker exited with {self.worker.returncode}:\n{log_path.read_text()}")
            return ready in log_path.read_text(errors="replace")

        wait_until(is_ready, 60, "the worker to start", interval=0.1)
        return self.worker

    def ensure_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            self.start_worker()

    def kill_worker(self) -> None:
        """SIGKILL the worker and its children: a crash, nothing gets to clean up."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)

    def stop_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            return
        os.killpg(self.worker.pid, signal.SIGTERM)
        try:
            self.worker.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(10)

    # -- the HTTP API -----------------------------------------------------------------------------

    def submit(self, kind: str, params: dict | None = None, session: requests.Session | None = None) -> str:
        response = (session or self.http).post(f"{self.url}/api/jobs", json={"kind": kind, "params": params or {}})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def key(self, job_id: str) -> dict:
        """The ?key= query of a job (reading and cancelling need it)."""
        return {"key": self.manager.key_for(job_id)}

    def get(self, job_id: str) -> dict:
        response = self.http.get(f"{self.url}/api/jobs/{job_id}", params=self.key(job_id))
        assert response.status_code == 200, response.text
        return response.json()

    def cancel(self, job_id: str) -> requests.Response:
        return self.http.delete(f"{self.url}/api/jobs/{job_id}", params=self.key(job_id))

    def wait(self, job_id: str, statuses=FINISHED, timeout: float = 20) -> dict:
        return wait_until(lambda: (job := self.get(job_id))["status"] in statuses and job, timeout,
                          f"job {job_id} to be {statuses}")

    def records(self) -> set[str]:
        return {p.name for p in self.record_dir.iterdir()}

    def close(self) -> None:
        self.stop_worker()
        self.server.shutdown()
        self.http.close()
        for hook in self.app.extensions.get("shutdown_hooks", []):
            hook()


@pytest.fixture(scope="module", params=["embedded", "celery"])
def harness(request, tmp_path_factory):
    redis_url = request.getfixturevalue("redis_server").url if request.param == "celery" else None
    h = Harness(request.param, tmp_path_factory.mktemp(f"jobs-{request.param}"), redis_url)
    yield h
    h.close()


@pytest.fixture
def jobs(harness):
    """The harness with a live worker (a test before may have killed it)."""
    harness.ensure_worker()
    return harness
