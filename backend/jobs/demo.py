"""A demo job kind: something real to run on the jobs page and in the job layer's tests."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from backend.jobs.registry import JobContext, task


class DemoSleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=10, ge=1, le=1000, description="how many steps")
    step_s: float = Field(default=0.1, ge=0.0, le=5.0, description="seconds each step sleeps")
    fail_at: int | None = Field(default=None, ge=1, le=1000, description="raise an error at this step")
    payload_kb: int = Field(
        default=0, ge=0, le=4096, description="KiB of filler in the result (large results are stored aside)"
    )


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
