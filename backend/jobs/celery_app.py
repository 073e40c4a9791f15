"""The Celery backend: one generic Celery task runs any registered job by id.

The web side only sends ``backend.jobs.run(job_id)`` messages; job state lives in Redis
(``RedisStore``), so a worker needs nothing but the same code, the same config (environment
variables) and the Redis URL: it runs unchanged on any machine.

Delivery guarantees: messages are acknowledged when a worker starts them (``task_acks_late`` off),
and a job is claimed atomically in Redis before it runs, so a job runs at most once even if its
message is delivered twice. A job whose worker dies fails as interrupted (dead process on the same
host, or stale heartbeat); when a worker starts it re-sends every queued job, so a message lost with
a dead worker never strands a job (the duplicates that creates are skipped by the claim).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from celery import Celery, signals

from backend.jobs.execute import RunLimits, recover, run_claimed
from backend.jobs.records import new_owner
from backend.jobs.store_redis import RedisStore

log = logging.getLogger(__name__)

RUN_TASK = "backend.jobs.run"

_BASE_CONF = dict(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,  # results live in the job store, not in a Celery result backend
    task_acks_late=False,
    worker_prefetch_multiplier=1,  # a busy worker holds at most one extra message
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)


def _broker_conf(config: Mapping[str, Any]) -> dict[str, Any]:
    return dict(
        broker_url=config["CELERY_BROKER_URL"],
        task_default_queue=config["JOBS_CELERY_QUEUE"],
        broker_transport_options={"visibility_timeout": int(config["JOBS_VISIBILITY_TIMEOUT_S"])},
    )


celery_app = Celery("backend.jobs")  # the worker's app
celery_app.conf.update(_BASE_CONF)


def make_client(config: Mapping[str, Any]) -> Celery:
    """A Celery app of its own for a web process to send run messages (no shared global state)."""
    client = Celery("backend.jobs.client")
    client.conf.update(_BASE_CONF, **_broker_conf(config))
    return client

_settings: dict[str, Any] = {}
_runtime: dict[int, tuple[RedisStore, str]] = {}  # per process (prefork children): store, owner


def redis_url(config: Mapping[str, Any]) -> str:
    return config.get("JOBS_REDIS_URL") or config["CELERY_BROKER_URL"]


def make_limits(config: Mapping[str, Any]) -> RunLimits:
    return RunLimits(
        max_runtime_s=float(config["JOBS_MAX_RUNTIME_S"]),
        max_result_bytes=int(config["JOBS_MAX_RESULT_BYTES"]),
        progress_interval_s=float(config["JOBS_PROGRESS_INTERVAL_S"]),
        heartbeat_s=float(config["JOBS_HEARTBEAT_S"]),
    )


def make_store(config: Mapping[str, Any]) -> RedisStore:
    return RedisStore(
        redis_url(config), prefix=config["JOBS_REDIS_PREFIX"], inline_limit=int(config["JOBS_INLINE_RESULT_BYTES"])
    )


def configure(config: Mapping[str, Any]) -> Celery:
    """Point the worker's Celery app at the configured broker and queue."""
    _settings.clear()
    _settings.update({k: v for k, v in config.items() if k.startswith(("JOBS_", "CELERY_"))})
    celery_app.conf.update(_broker_conf(config))
    return celery_app


def _worker_runtime() -> tuple[RedisStore, str]:
    pid = os.getpid()
    if pid not in _runtime:  # first task in this (possibly forked) process: own connections, own identity
        _runtime.clear()
        _runtime[pid] = (make_store(_settings), new_owner())
    return _runtime[pid]


@celery_app.task(name=RUN_TASK, ignore_result=True)
def run_job(job_id: str) -> str:
    """Claim the job and run it; a job already claimed (duplicate delivery) or cancelled is skipped."""
    store, owner = _worker_runtime()
    job = store.claim(job_id, owner)
    if job is None:
        return "skipped"
    return run_claimed(store, job, owner, make_limits(_settings))


def resend_queued(store: RedisStore) -> int:
    """Publish a run message for every queued job (duplicates are harmless: the claim skips them)."""
    ids = store.queued_ids()
    for job_id in ids:
        celery_app.send_task(RUN_TASK, args=[job_id], queue=_settings["JOBS_CELERY_QUEUE"])
    return len(ids)


@signals.worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    if not _settings:
        return
    store = make_store(_settings)
    try:
        failed = recover(store, float(_settings["JOBS_STALE_S"]))
        sent = resend_queued(store)
        log.info("jobs worker ready: %d interrupted job(s) failed, %d queued job(s) re-sent", len(failed), sent)
    finally:
        store.close()
