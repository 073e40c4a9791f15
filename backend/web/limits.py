"""Caps on decoded data inside a view (an uploaded file's size, a matrix's shape): the app's settings, one wording.

Caps on request fields are declared on the models instead (``caps.capped_by`` and ``check_caps``) and checked by
``ApiBlueprint`` and the job layer through ``caps.validate``; this is for what only the view can measure.
"""

from __future__ import annotations

from flask import current_app

from backend.web.caps import refuse


def cap(name: str) -> int | float:
    """The configured value of limit ``name``."""
    return current_app.config[name]


def check(name: str, value: int | float, *, noun: str, field: str | None = None, said: str | None = None,
          fix: str | None = None, budget: bool = False) -> None:
    """Raise ``caps.CapExceeded`` (a 422, or 413 for ``*_BYTES``; the error shape names the setting in ``limit``)
    when ``value`` exceeds the app's setting ``name``. ``noun``/``said``/``fix`` word it as in ``caps.refuse``."""
    refuse(name, value, current_app.config, noun=noun, field=field, said=said, fix=fix, budget=budget)
