"""Request and response examples for the OpenAPI document, declared per endpoint in one data file.

``api_examples.json`` maps ``"METHOD /api/path/{param}"`` to any of::

    {"path": {"param": "value"}, "query": {"name": "value"}, "request": {...JSON body...},
     "response": {...the JSON answer to that request...}}

Requests are written by hand (a value that shows what the endpoint is for); responses are what the backend
answered to them, recorded by ``scripts/record_api_examples.py``. A body model that validates from ``{}`` needs no
request example: its defaults are one. ``tests/web/test_api_examples.py`` checks every example against its model.
The viewer (/api/docs) prefills "Try it out" with these, so each request example should be cheap to run.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

EXAMPLES_FILE = Path(__file__).with_name("api_examples.json")


@lru_cache(maxsize=1)
def declared() -> dict[str, dict[str, Any]]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))


def operation_key(method: str, path: str) -> str:
    """The file's key of an operation: ``"POST /api/jobs/{job_id}"`` (OpenAPI path syntax)."""
    return f"{method.upper()} {path}"


def request_example(key: str, body: type[BaseModel] | None) -> Any | None:
    """The declared request body of ``key``, else the body model's defaults when ``{}`` is a valid body."""
    entry = declared().get(key, {})
    if "request" in entry:
        return entry["request"]
    if body is None:
        return None
    try:
        return body.model_validate({}).model_dump(mode="json", exclude_none=True)
    except ValidationError:
        return None


def annotate(operation: dict[str, Any], key: str, body: type[BaseModel] | None, json_body: str) -> None:
    """Put the examples of ``key`` into ``operation`` (parameters, JSON request body, first 2xx response)."""
    entry = declared().get(key, {})
    for parameter in operation.get("parameters", []):
        value = entry.get(parameter["in"], {}).get(parameter["name"])
        if value is not None:
            parameter["example"] = value
    request = request_example(key, body)
    media = operation.get("requestBody", {}).get("content", {}).get(json_body)
    if request is not None and media is not None:
        media["example"] = request
    if "response" in entry:
        status = min((s for s in operation["responses"] if s.startswith("2")), default=None)
        content = operation["responses"].get(status, {}).get("content", {}).get(json_body) if status else None
        if content is not None:
            content["example"] = entry["response"]
