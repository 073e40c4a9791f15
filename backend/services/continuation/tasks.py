"""The ``continuation.compare`` job: naive decoding next to the chosen fix, with progress after every token.

The page runs through it so that a 3-5 s run on a busy machine shows a progress bar (and can be cancelled);
``POST /api/continue/jobs`` validates the request as ``POST /api/continue`` does and starts it. Its caps are the
request's (``ContinueRequest``), checked at submission by the job layer against the app's settings; the model
folder and the listing caps come from ``backend.config``, as workers have no Flask app.
"""

from __future__ import annotations

from backend.config import load_config
from backend.jobs import JobContext, task
from backend.services.continuation.schemas import CompareJobResult, ContinueRequest
from backend.services.continuation.service import continuation_payload, load_model, model_folder


@task("continuation.compare", params=ContinueRequest)
def compare_job(params: ContinueRequest, ctx: JobContext) -> dict:
    """Continue ``params.prompt`` naively and with ``params.method``; progress counts decoding steps of both."""
    config = load_config()
    ctx.progress(0.0, "loading the model")
    tok, lm = load_model(model_folder(config["CONTINUATION_CHECKPOINTS"]))
    results = {}
    runs = [("naive", "naive"), ("fixed", params.method)]
    for i, (key, method) in enumerate(runs):
        def on_step(done: int, total: int, i: int = i, method: str = method) -> None:
            ctx.progress((i + done / max(1, total)) / len(runs), f"{method}: token {done} of at most {total}")

        results[key] = continuation_payload(
            tok, lm, prompt=params.prompt, method=method, max_new_tokens=params.max_new_tokens,
            temperature=params.temperature, seed=params.seed,
            max_backoff_tokens=config["CONTINUATION_MAX_BACKOFF_TOKENS"],
            max_candidates=config["CONTINUATION_MAX_CANDIDATES"], on_step=on_step)
    ctx.progress(1.0, "done")
    return CompareJobResult.model_validate(results).model_dump()
