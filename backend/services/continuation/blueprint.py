"""HTTP for prompt continuation: ``POST /api/continue``, ``POST /api/continue/jobs`` and the ``/continuation`` page.

The model is the shipped tiny GPT with its long-piece tokenizer (``data/``, or ``CONTINUATION_CHECKPOINTS``),
loaded once per process (``service.py``). ``POST /api/continue`` answers inline (at most
``CONTINUATION_MAX_NEW_TOKENS`` forward passes of a 1M-parameter model); the page starts the
``continuation.compare`` job instead, which shows progress while naive decoding and the fix run.
Caps are the ``CONTINUATION_*`` settings in ``backend/config.py``.
"""

from __future__ import annotations

from flask import current_app, render_template

from backend import jobs
from backend.services.continuation import tasks  # noqa: F401  (registers the continuation.compare job kind)
from backend.services.continuation.decoding import METHODS
from backend.services.continuation.schemas import ContinueRequest, ContinueResponse, JobStarted
from backend.services.continuation.service import (
    DEFAULT_METHOD,
    EXAMPLES,
    ModelUnavailable,
    continuation_payload,
    load_model,
    model_folder,
)
from backend.web.api import ApiBlueprint
from backend.web.errors import ApiError
from backend.web.pages import register_job_view, register_page

bp = ApiBlueprint("continuation", __name__, template_folder="templates")
register_page("Prompt continuation", "continuation.page",
              "continue a prompt that ends inside a long token: naive decoding next to Su's back-off fix")
register_job_view("continuation.compare", "continuation.page")  # /jobs links a finished run to its two columns


def _model() -> tuple:
    try:
        return load_model(model_folder(current_app.config["CONTINUATION_CHECKPOINTS"]))
    except ModelUnavailable as exc:
        raise ApiError(503, str(exc), code="model_unavailable") from None


# One forward pass of the tiny GPT, and the prompt's share (scripts/calibrate_costs.py, 2-core machine, loaded).
SECONDS_PER_FORWARD_PASS = 0.005  # measured ~1.5 ms; x3 for a busier machine
SECONDS_PER_PROMPT_CHAR = 1e-5


def estimated_seconds(body: ContinueRequest) -> float:
    """The compute budget's estimate: backed-off steps plus the new tokens, one forward pass each."""
    passes = body.max_new_tokens + 1 + (8 if body.method == "backoff-multi" else 1)
    return 0.05 + SECONDS_PER_FORWARD_PASS * passes + SECONDS_PER_PROMPT_CHAR * len(body.prompt)


@bp.api("POST", "/api/continue", body=ContinueRequest, response=ContinueResponse,
        cost=estimated_seconds, fix="ask for fewer new tokens",
        summary="Continue a prompt (naive, Su's back-off fix, or token healing)",
        errors={422: "a field is out of range or over a CONTINUATION_* limit",
                503: "the model checkpoints are missing"})
def continue_api(body: ContinueRequest) -> ContinueResponse:
    tok, lm = _model()
    cfg = current_app.config
    return ContinueResponse.model_validate(continuation_payload(
        tok, lm, prompt=body.prompt, method=body.method, max_new_tokens=body.max_new_tokens,
        temperature=body.temperature, seed=body.seed, max_backoff_tokens=cfg["CONTINUATION_MAX_BACKOFF_TOKENS"],
        max_candidates=cfg["CONTINUATION_MAX_CANDIDATES"]))


@bp.api("POST", "/api/continue/jobs", body=ContinueRequest, response=JobStarted, status=202,
        summary="Start naive decoding and the chosen method side by side as a job (the page's way: progress)",
        errors={422: "a field is out of range or over a CONTINUATION_* limit",
                429: "too many jobs are queued", 503: "the model checkpoints are missing"},
        gated=True)
def continue_job(body: ContinueRequest):
    _model()  # a missing model is a 503 now, not a failed job later
    job = jobs.submit_job("continuation.compare", body.model_dump(mode="json"))
    started = {k: job[k] for k in ("id", "job_key", "kind", "status", "status_url")}
    return started, 202, {"Location": job["status_url"]}


@bp.get("/continuation")
def page():
    methods = [m for m in METHODS if m != "naive"]
    return render_template("continuation/index.html", examples=EXAMPLES, methods=methods,
                           default_method=DEFAULT_METHOD)
