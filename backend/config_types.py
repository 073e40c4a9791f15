"""The kinds of settings, as reusable annotated pydantic types (used by ``backend/config.py``).

Each type refuses what it does not mean and says what it accepts, so a bad value stops the start with one
line naming the setting, the value and what is allowed. Values may come as Python objects (``create_app``
overrides) or as text (environment variables, ``--set``): every type parses text the same way.

    Bool                  1/0/true/false/yes/no/on/off (any case); pydantic's own y/t/n/f are refused
    Int, Float            finite numbers, never booleans; ranges go on the field: ``Field(5, ge=1, le=100)``
    Seconds               a finite duration > 0 (add ``le=``/``ge=`` on the field)
    Name                  non-empty text without surrounding whitespace
    Token, OptionalToken  >= 16 visible ASCII characters; the optional one also takes "" (generate / not used)
    WritableFile(...)     a file the backend creates: not a folder, its folder exists or can be created
    WritableDir(...)      a folder the backend creates or writes into
    ExistingDir(...)      a folder the backend only reads (must exist)
    HttpUrl(...)          an http(s) URL with a host
    JsonList[...] etc.    lists and mappings: given as JSON text in environment variables
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
BOOL_ALLOWED = "a boolean (1/0/true/false/yes/no/on/off, any case)"
MIN_TOKEN_CHARS = 16
SECRET = "secret"  # json_schema_extra marker: error messages show a secret's length, never its value


def refuse(allowed: str, **context: Any) -> PydanticCustomError:
    """The error a settings validator raises: ``allowed`` completes "<SETTING> must be ..."."""
    return PydanticCustomError("setting", "{allowed}", {"allowed": allowed, **context})


# ---------------------------------------------------------------- booleans and numbers
def _strict_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise refuse(BOOL_ALLOWED)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise refuse("a number, not a boolean")
    if isinstance(value, str):
        value = value.strip()
        try:
            parsed = float(value)
        except ValueError:
            return value  # not a number at all: the field's own parser says so
        if not math.isfinite(parsed):
            raise refuse("a finite number")
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse("a finite number")
    return value


Bool = Annotated[bool, BeforeValidator(_strict_bool)]
Int = Annotated[int, BeforeValidator(_number)]
Float = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]
Seconds = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False, gt=0)]


# ---------------------------------------------------------------- text
def _name(value: str) -> str:
    if not value or value != value.strip():
        raise refuse("non-empty text without surrounding whitespace")
    return value


def _token(value: str, *, optional: bool) -> str:
    if optional and value == "":
        return value
    if value != value.strip():
        raise refuse(f"a token without surrounding whitespace{' (or empty)' if optional else ''}")
    if len(value) < MIN_TOKEN_CHARS or not re.fullmatch(r"[\x21-\x7e]+", value):
        raise refuse(f"a token of at least {MIN_TOKEN_CHARS} visible ASCII characters"
                     f"{', or empty' if optional else ''}")
    return value


Name = Annotated[str, AfterValidator(_name)]
Token = Annotated[str, AfterValidator(lambda v: _token(v, optional=False)), Field(json_schema_extra={SECRET: True})]
OptionalToken = Annotated[str, AfterValidator(lambda v: _token(v, optional=True)),
                          Field(json_schema_extra={SECRET: True})]


def Pattern(regex: str, allowed: str, *, optional: bool = False) -> Any:  # noqa: N802 - a type, named like one
    """Text matching ``regex`` in full (``allowed`` describes it), or "" when optional."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if (optional and value == "") or compiled.fullmatch(value):
            return value
        raise refuse(allowed + (", or empty" if optional else ""))

    return Annotated[str, AfterValidator(check)]


def _ip_or_empty(value: str) -> str:
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise refuse("an IP address, or empty") from None
    return value


IpAddressOrEmpty = Annotated[str, AfterValidator(_ip_or_empty)]


def HttpUrl(*, optional: bool = False) -> Any:  # noqa: N802
    """An absolute http(s) URL with a host (or "" when optional)."""
    allowed = "an http:// or https:// URL with a host" + (", or empty" if optional else "")

    def check(value: str) -> str:
        if optional and value == "":
            return value
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise refuse(allowed) from None
        if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
            raise refuse(allowed)
        return value

    return Annotated[str, AfterValidator(check)]


# ---------------------------------------------------------------- paths
def creatable(path: Path) -> str | None:
    """Why ``path`` cannot be created (its nearest existing ancestor is no writable folder), or None."""
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def file_problem(value: str) -> str | None:
    """Why a file the backend creates cannot live at ``value``, or None."""
    path = Path(value)
    if path.is_dir():
        return "it is a folder"
    if path.exists():
        return None if os.access(path, os.R_OK | os.W_OK) else "it is not readable and writable"
    return creatable(path)


def dir_problem(value: str) -> str | None:
    """Why the backend cannot create or write into the folder ``value``, or None."""
    path = Path(value)
    if path.exists():
        if not path.is_dir():
            return "it is not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else "it is not writable"
    return creatable(path / "x")


def existing_dir_problem(value: str) -> str | None:
    """Why ``value`` is not a folder the backend can read from, or None."""
    path = Path(value)
    if path.is_dir():
        return None
    return "it is not a folder" if path.exists() else "it does not exist"


def _path_setting(what: str, problem: Callable[[str], str | None], empty_means: str | None) -> Any:
    """A path setting checked by ``problem`` (None = fine, else why not); "" = ``empty_means`` when given."""
    if empty_means:
        what += f", or empty (= {empty_means})"

    def check(value: str) -> str:
        if value == "" and empty_means:
            return value
        why = problem(value) if value else "it is empty"
        if why:
            raise refuse(f"{what}; {why}")
        return value

    return Annotated[str, AfterValidator(check)]


def WritableFile(empty_means: str | None = None) -> Any:  # noqa: N802
    """A file the backend creates and writes (a database, a token file); "" = ``empty_means`` when given."""
    return _path_setting("a file path (not a folder) whose folder exists or can be created", file_problem,
                         empty_means)


def WritableDir(empty_means: str | None = None) -> Any:  # noqa: N802
    """A folder the backend creates or writes into; "" = ``empty_means`` when given."""
    return _path_setting("a folder that exists or can be created, writable", dir_problem, empty_means)


def ExistingDir(empty_means: str | None = None) -> Any:  # noqa: N802
    """A folder the backend reads (it must exist); "" = ``empty_means`` when given."""
    return _path_setting("an existing folder", existing_dir_problem, empty_means)


# ---------------------------------------------------------------- JSON lists and mappings
def _json_text(value: Any) -> Any:
    """Environment variables carry lists and mappings as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise refuse("JSON (a list or an object, as the default shows)") from None
    return value


FromJson = BeforeValidator(_json_text)
