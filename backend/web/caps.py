"""Caps, checked in one place for requests and job parameters alike.

A field capped by one setting declares it: ``Field(..., json_schema_extra=capped_by("TOKENIZE_MAX_TEXT_CHARS",
"characters"))``. Caps that depend on several fields (samples x characters, array elements) live on the model as
``def check_caps(self, settings) -> None`` calling :func:`refuse`. :func:`validate` is the one entry point: it
validates a request part or a job's params with the settings in pydantic's validation context, then checks every
declared and joint cap against those same settings (a ``create_app`` override applies to jobs too).

A refusal is a :class:`CapExceeded` whose message speaks in the user's words ("2,000 samples x 1,140 characters
is over the 1,000,000 budget; use at most 877 samples"); the setting's name and value travel beside it (the error
shape's ``limit`` and ``limit_value``), never inside the sentence. No Flask here: pure schemas import this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

LIMIT_KEY = "x-limit"
NOUN_KEY = "x-limit-noun"


def capped_by(name: str, noun: str | None = None) -> dict[str, str]:
    """``json_schema_extra`` for a field capped by setting ``name`` (a number, or a length for text/lists).

    ``noun`` is what the value counts, as the form says it ("new tokens", "characters"); by default "characters"
    for text, "entries" for lists and mappings, and the field's name for numbers.
    """
    return {LIMIT_KEY: name, NOUN_KEY: noun} if noun else {LIMIT_KEY: name}


@dataclass(frozen=True)
class Over:
    """A refused value: what the user sent, the setting that caps it, and the sentence that says so."""

    setting: str
    value: float
    limit: float
    field: str | None
    message: str

    @property
    def status(self) -> int:
        return 413 if self.setting.endswith("_BYTES") else 422


class CapExceeded(ValueError):
    """Raised by :func:`refuse`; the web layer turns it into a 422 (413 for byte sizes) with ``limit`` fields."""

    def __init__(self, over: Over) -> None:
        super().__init__(over.message)
        self.over = over


def fmt(x: float) -> str:
    """A number as people read it: 1,000,000; 0.25; 2.5e+12."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int) or (isinstance(x, float) and math.isfinite(x) and x.is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    if isinstance(x, float) and math.isfinite(x) and 1e-3 <= abs(x) < 1e15:
        return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return f"{x:.3g}"


def over_message(value: float, limit: float, noun: str, *, said: str | None = None, fix: str | None = None) -> str:
    """The one wording: "<what was sent> is over the limit of <limit>; <what to do>".

    ``said`` describes the request ("2,000 samples x 1,140 characters"); ``fix`` tells what to do
    ("use at most 877 samples"). Defaults: "<value> <noun>" and "use at most <limit> <noun>".
    """
    said = said or f"{fmt(value)} {noun}"
    fix = fix or f"use at most {fmt(limit)} {noun}"
    return f"{said} is over the limit of {fmt(limit)} {noun}; {fix}"


def refuse(setting: str, value: float, settings: Mapping[str, Any], *, noun: str, field: str | None = None,
           said: str | None = None, fix: str | None = None, budget: bool = False) -> None:
    """Raise :class:`CapExceeded` when ``value`` exceeds ``settings[setting]``.

    ``budget``: the cap bounds a product of fields ("... is over the 1,000,000 budget"), so the limit is stated
    without the noun of a single field.
    """
    limit = settings[setting]
    if value <= limit:
        return
    if budget:
        message = f"{said or fmt(value)} is over the budget of {fmt(limit)} {noun}; {fix or 'ask for less'}"
    else:
        message = over_message(value, limit, noun, said=said, fix=fix)
    raise CapExceeded(Over(setting, value, limit, field, message))


def measure(value: Any) -> float:
    """What a cap compares: the length of text, lists and mappings; numbers themselves."""
    return len(value) if isinstance(value, (str, list, tuple, dict)) else value


def _default_noun(name: str, value: Any) -> str:
    if isinstance(value, str):
        return "characters"
    if isinstance(value, (list, tuple, dict)):
        return "entries"
    return name.replace("_", " ")


def declared(model: BaseModel) -> list[tuple[str, float, str, str]]:
    """(setting, measured value, field, noun) for every capped field of ``model`` that is set."""
    found = []
    for name, info in type(model).model_fields.items():
        extra = info.json_schema_extra
        value = getattr(model, name)
        if isinstance(extra, dict) and LIMIT_KEY in extra and value is not None:
            field = info.alias or name
            found.append((extra[LIMIT_KEY], measure(value), field, extra.get(NOUN_KEY) or _default_noun(field, value)))
    return found


def enforce(model: BaseModel, settings: Mapping[str, Any]) -> None:
    """Check ``model``'s declared caps, then its joint ones (``check_caps``); raises :class:`CapExceeded`."""
    for setting, value, field, noun in declared(model):
        refuse(setting, value, settings, noun=noun, field=field)
    joint = getattr(model, "check_caps", None)
    if callable(joint):
        joint(settings)


def validate(model: type[BaseModel], data: Any, settings: Mapping[str, Any], *, strict: bool = False) -> BaseModel:
    """``data`` as ``model`` under ``settings`` (in the validation context as ``settings``), caps checked.

    Raises pydantic's ``ValidationError`` for invalid data and :class:`CapExceeded` for a cap.
    """
    instance = model.model_validate(data, strict=strict, context={"settings": settings})
    try:
        enforce(instance, settings)
    except CapExceeded:
        raise
    except ValueError as exc:  # a joint check found a combination the core rejects: invalid, not over a cap
        detail = InitErrorDetails(type="value_error", loc=(), input=data, ctx={"error": str(exc)})
        raise ValidationError.from_exception_data(model.__name__, [detail]) from None
    return instance


def first_over(model: BaseModel, settings: Mapping[str, Any]) -> Over | None:
    """The first cap ``model`` exceeds under ``settings``, or None (for reports; :func:`enforce` raises)."""
    try:
        enforce(model, settings)
    except CapExceeded as exc:
        return exc.over
    return None
