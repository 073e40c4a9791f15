"""A demo job kind: something real to run on the jobs page and in the job layer's tests."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.jobs.registry import JobContext, task
from backend.web.caps import capped_by, fmt, refuse


class DemoSleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=10, ge=1, le=1000, description="how many steps")
    step_s: float = Field(default=0.1, ge=0.0, le=5.0, description="seconds each step sleeps")
    fail_at: int | None = Field(default=None, ge=1, le=1000, description="raise an error at this step")
    payload_kb: int = Field(
        default=0, ge=0, le=4096, description="KiB of filler in the result (large results are stored aside)",
        json_schema_extra=capped_by("JOBS_DEMO_MAX_PAYLOAD_KB", "KiB of filler"),
    )

    def check_caps(self, settings: Mapping[str, Any]) -> None:
        """A demo cannot occupy a worker for long: steps x step_s is capped."""
        limit = settings["JOBS_DEMO_MAX_SECONDS"]
        total = self.steps * self.step_s
        most = max(1, math.floor(limit / self.step_s)) if self.step_s > 0 else self.steps
        refuse("JOBS_DEMO_MAX_SECONDS", total, settings, noun="seconds", field="steps",
               said=f"{fmt(self.steps)} steps x {fmt(self.step_s)} s ({fmt(total)} seconds)",
               fix=f"use at most {fmt(most)} steps of {fmt(self.step_s)} s")


@task("jobs.demo_sleep", params=DemoSleepParams)
def demo_sleep(params: DemoSleepParams, ctx: JobContext) -> dict:
    """Sleep in steps, reporting progress; optionally fail, or return a large result."""
    for step in range(params.steps):
        ctx.progress(step / params.steps, f"step {step + 1} of {params.steps}")
        if params.fail_at == step + 1:
            raise RuntimeError(f"demo failure at step {step + 1}, as requested")
        time.sleep(params.step_s)
    ctx.progress(1.0, "finished")
    return {
        "steps": params.steps,
        "slept_s": round(params.steps * params.step_s, 6),
        "payload": "0123456789abcdef" * (64 * params.payload_kb),
    }
