"""What the HTTP API and the job run: the shipped model, loaded once per process, and one continuation as JSON.

No Flask here: ``blueprint.py`` (requests) and ``tasks.py`` (the job worker, which has no app) both call it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from backend.services.continuation.decoding import continue_prompt

DATA = Path(__file__).resolve().parent / "data"

# The page's and the API's default fix: the method with the best exact match on the evaluation's partial-token set
# (cut inside a token), both languages, shipped GPT: backoff-multi beats backoff and heal there, paired on the same
# cuts (README, "Evaluation"; scripts/eval_continuation.py).
DEFAULT_METHOD = "backoff-multi"

# Prompts on the page: each one stops inside a word, and with the shipped GPT the default fix finishes the word
# while naive decoding does not (tests/continuation/test_api.py checks every one: the expected start of the fix).
EXAMPLES: list[tuple[str, str]] = [
    ("我们明天从白云", "机场"),
    ("客人明天要去白云", "机场"),
    ("Always import numpy", " as np"),
    ("Return the number of by", "tes"),
    ("Raise an exception if the file does not ex", "ist"),
    ("Return the current working direc", "tory"),
]


class ModelUnavailable(RuntimeError):
    """The checkpoints are missing or unreadable (the message says where and how to build them)."""


_lock = threading.Lock()
_models: dict[str, tuple] = {}


def model_folder(configured: str) -> str:
    return configured or str(DATA)


def load_model(folder: str) -> tuple:
    """(tokenizer, GPT language model) from ``folder`` (tokenizer.model + gpt.pt), loaded once per process."""
    with _lock:
        if folder not in _models:
            from backend.services.continuation.gpt import GPTLM, load_checkpoint
            from backend.services.continuation.tokenizer import Tokenizer

            try:
                tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.model"))
                model, _ = load_checkpoint(str(Path(folder) / "gpt.pt"))
            except (OSError, RuntimeError, KeyError) as exc:
                raise ModelUnavailable(f"the continuation model is not available in {folder!r} ({exc}); build it "
                                       "with scripts/train_continuation.py") from None
            _models[folder] = (tok, GPTLM(model, tok.bos_id))
        return _models[folder]


def continuation_payload(
    tok,
    lm,
    *,
    prompt: str,
    method: str,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    max_backoff_tokens: int,
    max_candidates: int,
    on_step: Callable[[int, int], None] | None = None,
) -> dict:
    """One continuation as the API's response (``schemas.ContinueResponse``)."""
    with _lock:  # one model instance: keep its pass counter and torch's threads to one request at a time
        out = continue_prompt(lm, tok, prompt, method, max_new_tokens=max_new_tokens, temperature=temperature,
                              seed=seed, max_backoff_tokens=max_backoff_tokens, on_step=on_step)
    shown = out.candidates[:max_candidates]
    rest = max(0.0, 1.0 - sum(p for _, p in shown))
    total = tok.vocab_size if out.constrained_steps == 0 or method == "heal" else len(out.candidates)
    return {
        "continuation": out.continuation,
        "removed": out.removed,
        "kept": out.kept,
        "candidates": [(tok.display(t), p) for t, p in shown],
        "candidates_rest": rest,
        "candidates_total": total,
        "method": out.method,
        "consistent": out.consistent,
        "backed_off": out.backed_off,
        "constrained_steps": out.constrained_steps,
        "forward_passes": out.forward_passes,
        "prompt_tokens": [tok.display(t) for t in tok.encode(prompt)],
        "new_tokens": [tok.display(t) for t in out.tokens],
    }
