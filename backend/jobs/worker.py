"""Run job workers outside the web process: ``python -m backend.jobs.worker``.

Configuration comes from the environment exactly as for the web backend (``JOBS_BACKEND``,
``CELERY_BROKER_URL``, ``JOBS_DB``, ...), and the task registry from the same modules (every
service blueprint in ``backend.app.SERVICE_BLUEPRINTS`` plus ``JOBS_TASK_MODULES``), so a worker
needs nothing else: copy the code to another machine, point ``CELERY_BROKER_URL`` at the Redis
server, start it.

- ``JOBS_BACKEND=celery``: a Celery worker consuming ``JOBS_CELERY_QUEUE`` (any machine).
- ``JOBS_BACKEND=embedded``: a worker pool on the same SQLite file as the web backend (same machine),
  e.g. to run jobs in their own process while the web processes set ``JOBS_EMBEDDED_POOL=0``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from backend.config import exit_on_config_error, load_config
from backend.jobs.local import import_task_modules

log = logging.getLogger("backend.jobs.worker")


def load_worker_config() -> dict[str, Any]:
    """The backend's settings (defaults, then environment variables), as the web app reads them."""
    config = load_config()
    Path(config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    return config


def import_tasks(config: dict[str, Any], modules: list[str] | None) -> None:
    """Register tasks: by default every service blueprint's (as the web app does) plus JOBS_TASK_MODULES;
    ``modules`` instead imports only those (tests, single-purpose workers)."""
    if modules is None:
        import_task_modules(config.get("JOBS_TASK_MODULES") or [])
    else:
        for module in modules:
            importlib.import_module(module)


def run_celery(config: dict[str, Any], concurrency: int, pool: str, loglevel: str) -> None:
    from backend.jobs import celery_app

    app = celery_app.configure(config)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            f"--queues={config['JOBS_CELERY_QUEUE']}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def run_embedded(config: dict[str, Any], concurrency: int) -> None:
    from backend.jobs.embedded import EmbeddedPool
    from backend.jobs.manager import JobManager

    # The manager resolves the database and result paths as the web app does.
    manager = JobManager({**config, "JOBS_EMBEDDED_POOL": False})
    pool = EmbeddedPool(
        manager.store,
        workers=concurrency,
        limits=manager.limits,
        poll_s=float(config["JOBS_POLL_S"]),
        stale_s=float(config["JOBS_STALE_S"]),
        idle_exit_s=None,  # a dedicated worker waits for work forever
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pool.start()
    log.info("embedded job worker: %d thread(s) on %s", concurrency, manager.store.db_path)
    while not stop.wait(float(config["JOBS_POLL_S"])):
        pool.start()  # threads never exit here, but a crashed one is replaced
    log.info("stopping: running jobs fail as interrupted")
    pool.stop()


@exit_on_config_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=None, help="worker processes/threads (JOBS_WORKERS)")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"],
                        help="Celery pool (prefork isolates tasks in processes)")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--modules", default=None,
                        help="comma-separated task modules to import instead of every service's (with Celery, "
                        "every worker on a queue must know every kind sent to it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_worker_config()
    import_tasks(config, None if args.modules is None else [m for m in args.modules.split(",") if m])
    concurrency = args.concurrency or int(config["JOBS_WORKERS"])
    if config["JOBS_BACKEND"] == "celery":
        run_celery(config, concurrency, args.pool, args.loglevel)
    else:
        run_embedded(config, concurrency)


if __name__ == "__main__":
    main()
