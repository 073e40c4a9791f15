"""Caps declared on request fields, once: ``Field(..., json_schema_extra=capped_by("TOKENIZE_MAX_TEXT_CHARS"))``.

The declaration serves every place a cap matters: ``ApiBlueprint`` enforces it on each request (a 422 naming
the setting, through ``limits.check``), the OpenAPI document states the configured number, and job parameters
are checked against it outside any request. No Flask here: the services' pure schemas import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

LIMIT_KEY = "x-limit"


def capped_by(name: str) -> dict[str, str]:
    """``json_schema_extra`` for a field capped by the setting ``name`` (a number, or a length for text/lists)."""
    return {LIMIT_KEY: name}


def measure(value: Any) -> float:
    """What a cap compares: the length of text, lists and mappings; numbers themselves."""
    return len(value) if isinstance(value, (str, list, tuple, dict)) else value


def declared(model: BaseModel) -> list[tuple[str, float, str]]:
    """(setting, measured value, field) for every capped field of ``model`` that is set."""
    found = []
    for name, info in type(model).model_fields.items():
        extra = info.json_schema_extra
        value = getattr(model, name)
        if isinstance(extra, dict) and LIMIT_KEY in extra and value is not None:
            found.append((extra[LIMIT_KEY], measure(value), info.alias or name))
    return found


def first_over(model: BaseModel, config: Mapping[str, Any]) -> tuple[str, float, str] | None:
    """The first declared cap ``model`` exceeds under ``config``, as (setting, value, field), or None."""
    return next(((name, value, field) for name, value, field in declared(model) if value > config[name]), None)


def over_message(name: str, value: float, limit: float, field: str | None = None) -> str:
    """The one wording of a cap refusal: "<field> is <value>, over the limit <NAME>=<limit>"."""
    return f"{field or name.lower()} is {value}, over the limit {name}={limit}"
