"""Compute and size caps: the numbers live in config, the check and its message live here."""

from __future__ import annotations

from flask import current_app

from backend.web.errors import ApiError


def cap(name: str) -> int | float:
    """The configured value of limit ``name``."""
    return current_app.config[name]


def check(name: str, value: int | float, *, field: str | None = None) -> None:
    """Raise 422 (413 for byte sizes) naming the limit when ``value`` exceeds config[name]."""
    limit = cap(name)
    if value > limit:
        status = 413 if name.endswith("_BYTES") else 422
        what = field or name.lower()
        raise ApiError(
            status,
            f"{what} is {value}, over the limit {name}={limit}",
            code="limit_exceeded",
            field=field,
        )
