"""Task kinds used only by the job layer's tests (workers import them via JOBS_TASK_MODULES)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel, Field

from backend.jobs import JobContext, task

RECORD_DIR_ENV = "JOBS_TEST_RECORD_DIR"


class RecordParams(BaseModel):
    token: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    sleep_s: float = Field(default=0.0, ge=0, le=5)


@task("tests_jobs.record", params=RecordParams)
def record(params: RecordParams, ctx: JobContext) -> dict:
    """Create <record dir>/<token> exclusively: a second run of the same job fails loudly."""
    ctx.progress(0.0, "recording")
    fd = os.open(Path(os.environ[RECORD_DIR_ENV]) / params.token, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    time.sleep(params.sleep_s)
    ctx.progress(1.0, "recorded")
    return {"token": params.token, "pid": os.getpid()}


class NoParams(BaseModel):
    pass


@task("tests_jobs.not_json", params=NoParams)
def not_json(params: NoParams, ctx: JobContext) -> dict:
    """Returns something JSON cannot encode."""
    return {"value": {1, 2, 3}}


@task("tests_jobs.silent", params=NoParams)
def silent(params: NoParams, ctx: JobContext) -> dict:
    """Never reports progress: the heartbeat alone must keep it alive."""
    time.sleep(1.5)
    return {"ok": True}
