"""Compute and size caps: the numbers live in config, the check and its message live here."""

from __future__ import annotations

from flask import current_app
from pydantic import BaseModel

from backend.web.caps import declared, over_message
from backend.web.errors import ApiError


def cap(name: str) -> int | float:
    """The configured value of limit ``name``."""
    return current_app.config[name]


def check(name: str, value: int | float, *, field: str | None = None) -> None:
    """Raise 422 (413 for byte sizes) naming the limit when ``value`` exceeds config[name]."""
    limit = cap(name)
    if value > limit:
        status = 413 if name.endswith("_BYTES") else 422
        raise ApiError(status, over_message(name, value, limit, field), code="limit_exceeded", field=field)


def check_declared(model: BaseModel) -> None:
    """``check`` every cap the model's fields declare (``caps.capped_by``); ApiBlueprint calls it per request."""
    for name, value, field in declared(model):
        check(name, value, field=field)
