"""Declared JSON endpoints: one decorator validates the request and feeds the OpenAPI document.

    bp = ApiBlueprint("tokenize", __name__)

    @bp.api("POST", "/api/tokenize", body=TokenizeRequest, response=TokenizeResponse,
            summary="Segment a text", errors={422: "the text cannot be segmented"})
    def tokenize(body: TokenizeRequest) -> TokenizeResponse: ...

Validation failures come back as the shared error shape (``backend.web.errors``) naming the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Union, get_args, get_origin

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from backend.web import access, budget, caps
from backend.web.caps import Over, fmt
from backend.web.errors import ApiError

JSON_BODY = "application/json"
MULTIPART_BODY = "multipart/form-data"


@dataclass(frozen=True)
class EndpointSpec:
    method: str
    rule: str
    summary: str
    description: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: dict[int, str]
    files: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    security: tuple[str, ...] = ()
    extra_responses: dict[int, dict] = field(default_factory=dict)
    gated: bool = False  # compute or jobs: API token, or loopback only (backend.web.access)
    cost: Callable[[Any], float] | float | None = None  # compute: estimated seconds (backend.web.budget)
    fix: str = ""  # compute: how to get under SYNC_MAX_SECONDS


def _field_name(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return f"the number {fmt(value)}"
    if isinstance(value, str):
        return "text" if len(value) > 40 else f"the text {value!r}"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


_KIND = {"int": "a whole number", "float": "a number", "string": "text", "bool": "true or false",
         "list": "a list", "dict": "an object", "model": "an object"}


def _plain(error: dict[str, Any], name: str) -> str:
    """One pydantic error in the words of a form: what is wrong with the field and what it must be."""
    kind, ctx, msg = error["type"], error.get("ctx") or {}, error["msg"]
    subject = name or "the body"
    if kind == "missing":
        return f"{subject} is required"
    if kind == "extra_forbidden":
        return f"{subject} is not a field of this request; remove it"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        word = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                "less_than": "less than"}[kind]
        bound = next(iter(ctx.values()), "")
        return f"{subject} must be {word} {fmt(bound) if isinstance(bound, (int, float)) else bound}, " \
               f"not {fmt(error['input']) if isinstance(error.get('input'), (int, float)) else error.get('input')}"
    base = kind.split("_", 1)[0] if kind.endswith("_type") or kind.endswith("_parsing") else None
    if base in _KIND:
        return f"{subject} must be {_KIND[base]}, not {_json_type(error.get('input'))}"
    if kind == "literal_error":
        return f"{subject} must be {ctx.get('expected', msg.removeprefix('Input should be '))}"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return f"{subject} must not be empty" if least == 1 else f"{subject} needs at least {least} characters"
    if kind == "too_short":
        return f"{subject} needs at least {ctx.get('min_length')} entries"
    if kind in ("string_too_long", "too_long"):
        most = ctx.get("max_length")
        unit = "characters" if kind == "string_too_long" else "entries"
        return f"{subject} has too many {unit}; use at most {fmt(most)}"
    if kind == "finite_number":
        return f"{subject} must be a finite number"
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", msg.split(", ", 1)[-1]))
        return text if not name or text.startswith(name) else f"{name}: {text}"
    return f"{subject}: {msg}" if name else msg


def validation_error(exc: ValidationError, where: str = "body", prefix: tuple[str, ...] = ()) -> ApiError:
    """The first error as a sentence naming the field (``field`` carries its path); all of them in ``details``."""
    errors = exc.errors(include_url=False, include_context=True, include_input=True)
    first = errors[0]
    name = _field_name(first["loc"])
    details = [{"field": _field_name((*prefix, *e["loc"])) or None, "message": _plain(e, _field_name(e["loc"])),
                "type": e["type"]} for e in errors]
    field = _field_name((*prefix, *first["loc"])) or None
    message = _plain(first, name) if name or where == "body" else f"{where}: {_plain(first, name)}"
    return ApiError(422, message, field=field, details=details)


def _depth(text: str) -> int:
    """How deeply the JSON text nests arrays and objects, without parsing it (strings removed first)."""
    bare = _STRINGS.sub("", text)
    if "[" not in bare and "{" not in bare:
        return 0
    codes = np.frombuffer(bare.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    steps = np.zeros(codes.shape, dtype=np.int32)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_json_body() -> Any:
    """The request's JSON document; 415 unless it is sent as JSON, 413 over MAX_JSON_BYTES, 400 for the rest.

    The content type is required: a body without one is what another site's ``no-cors`` fetch or a beacon sends.
    Size and nesting depth are checked before the document is parsed.
    """
    config = current_app.config
    limit = config["MAX_JSON_BYTES"]
    mimetype = request.mimetype
    if mimetype != JSON_BODY and not mimetype.endswith("+json"):
        got = f"as {mimetype}" if mimetype else "without a Content-Type"
        raise ApiError(415, f"this endpoint takes a JSON body, and it came {got}; send it with "
                            f"Content-Type: {JSON_BODY}", code="unsupported_media_type")
    size = request.content_length
    if size is not None and size > limit:
        raise ApiError.over(_body_over(size, limit))
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise ApiError.over(_body_over(len(raw), limit))
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not valid UTF-8 text; send it as UTF-8") from None
    depth_limit = config["MAX_JSON_DEPTH"]
    depth = _depth(text)
    if depth > depth_limit:
        raise ApiError(400, f"the JSON body nests {fmt(depth)} levels deep, over the limit of {fmt(depth_limit)} "
                            "levels; flatten it", code="limit_exceeded", limit="MAX_JSON_DEPTH",
                       limit_value=depth_limit)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    except RecursionError:  # unreachable below MAX_JSON_DEPTH; a safety net all the same
        raise ApiError(400, "the JSON body nests too deeply; flatten it", limit="MAX_JSON_DEPTH",
                       limit_value=depth_limit) from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise ApiError(400, "the JSON body contains a lone surrogate escape (such as \\ud800), which is not "
                            "Unicode text; send valid UTF-8 text")
    return data


def _body_over(size: int, limit: int) -> Over:
    return Over("MAX_JSON_BYTES", size, limit, None,
                f"a JSON body of {fmt(size)} bytes is over the limit of {fmt(limit)} bytes; send less"
                " (large matrices can be uploaded as a .npy file)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number or null")


def _refuse_body() -> None:
    """Endpoints that declare no body take none: a body there is a mistake or another site's form."""
    if request.content_length or request.headers.get("Transfer-Encoding", "").lower() == "chunked":
        raise ApiError(400, f"{request.method} {request.path} takes no request body; send the request without one",
                       code="unexpected_body")


def _is_list(annotation: Any) -> bool:
    """``list[X]``, also inside ``Optional`` / unions: such query parameters may repeat."""
    if get_origin(annotation) is list or annotation is list:
        return True
    return get_origin(annotation) in (Union, UnionType) and any(_is_list(arg) for arg in get_args(annotation))


def _query_dict(model: type[BaseModel]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        field = model.model_fields.get(key)
        data[key] = values if field is not None and _is_list(field.annotation) else values[-1]
    return data


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """The request part as ``model``, its caps checked (``caps.validate``: declared and joint, one place).

    JSON bodies are validated strictly (no "3" for 3, no true for 1); query strings and form fields are text,
    so they are converted.
    """
    try:
        return caps.validate(model, data, current_app.config, strict=where == "body")
    except ValidationError as exc:
        raise validation_error(exc, where) from None
    except caps.CapExceeded as exc:
        raise ApiError.over(exc.over) from None


def _to_response(result: Any, spec: EndpointSpec) -> Response:
    if isinstance(result, Response):
        return result
    status, headers = spec.status, None
    if isinstance(result, tuple):
        result, status, *rest = result
        headers = rest[0] if rest else None
    if isinstance(result, BaseModel):
        payload = result.model_dump(mode="json")
    else:
        payload = result
        if spec.response is not None and status < 300 and current_app.config.get("VALIDATE_RESPONSES"):
            # Tests run with this on, so a view cannot drift from the schema it declares.
            spec.response.model_validate(payload)
    response = jsonify(payload)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


class ApiBlueprint(Blueprint):
    """A Blueprint whose ``api`` decorator declares, validates and documents JSON endpoints.

    ``security=["bearer"]`` on an endpoint both documents the scheme and enforces it: the blueprint's check
    for that scheme (``@bp.security_scheme("bearer")``) runs before the query or body is even parsed. An
    endpoint declaring a scheme the blueprint has no check for stops the app at registration.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "api_token" guards compute and job endpoints (``gated``) on every blueprint: access.py enforces it
        self.security_checks: dict[str, Callable[[], None]] = {"api_token": access.require}
        self.api_specs: list[EndpointSpec] = []

    def security_scheme(self, name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
        """Register the check that enforces scheme ``name``; it raises ApiError (401/403) to refuse."""
        def register(check: Callable[[], None]) -> Callable[[], None]:
            self.security_checks[name] = check
            return check

        return register

    def register(self, app: Any, options: dict) -> None:
        unenforced = [f"{spec.method} {spec.rule} ({scheme})" for spec in self.api_specs for scheme in spec.security
                      if scheme not in self.security_checks]
        if unenforced:
            raise ValueError(f"blueprint {self.name!r} declares security it does not enforce: "
                             f"{', '.join(unenforced)}; register a check with @bp.security_scheme(name)")
        super().register(app, options)

    def api(
        self,
        method: str,
        rule: str,
        *,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        description: str = "",
        errors: dict[int, str] | None = None,
        files: Iterable[str] = (),
        tags: Iterable[str] = (),
        extra_responses: dict[int, dict] | None = None,
        security: Iterable[str] = (),
        gated: bool = False,
        cost: Callable[[Any], float] | float | None = None,
        fix: str = "ask for less",
    ) -> Callable:
        """Declare ``method rule``; ``files`` names multipart file fields (the body then comes as form fields).

        ``security`` names the schemes that protect it (``"bearer"``): documented, and enforced by the
        blueprint's ``security_scheme`` check before anything else of the request is read.
        ``gated``: a compute or job endpoint (an API token, or loopback clients only). ``cost``: a compute endpoint;
        ``cost(body)`` estimates its seconds (or a constant), and it runs under the compute budget
        (``backend.web.budget``: a slot or 503, SYNC_MAX_SECONDS or 422 saying ``fix``, overruns stopped).
        """
        gated = gated or cost is not None
        files = tuple(files)

        def decorate(view: Callable) -> Callable:
            spec = EndpointSpec(
                method=method.upper(),
                rule=rule,
                summary=summary or (view.__doc__ or "").strip().split("\n")[0],
                description=description or (view.__doc__ or "").strip(),
                body=body,
                query=query,
                response=response,
                status=status,
                errors=dict(errors or {}),
                files=files,
                tags=tuple(tags) or (self.name,),
                extra_responses=dict(extra_responses or {}),
                security=tuple(security) + (("api_token",) if gated and "api_token" not in security else ()),
                gated=gated,
                cost=cost,
                fix=fix,
            )

            @functools.wraps(view)
            def endpoint(**path_args: Any) -> Response:
                # before anything is parsed: an anonymous caller learns nothing
                for scheme in spec.security:
                    self.security_checks[scheme]()
                if cost is None:
                    return _to_response(view(**arguments(path_args)), spec)
                # A compute slot before the body is read: a 4 MB matrix costs ~200 MB while it is parsed and
                # validated, so the number of those at once is bounded too.
                with budget.slot():
                    kwargs = arguments(path_args)
                    with budget.deadline(budget.estimate(cost, kwargs.get("body")), fix=fix):
                        result = view(**kwargs)
                return _to_response(result, spec)

            def arguments(path_args: dict[str, Any]) -> dict[str, Any]:
                kwargs: dict[str, Any] = dict(path_args)
                if query is not None:
                    kwargs["query"] = _validate(query, _query_dict(query), "query")
                if files:
                    if request.mimetype != MULTIPART_BODY and body is not None:
                        kwargs["body"] = _validate(body, read_json_body(), "body")
                        kwargs["files"] = {}
                    else:
                        if body is not None:
                            kwargs["body"] = _validate(body, request.form.to_dict(), "form")
                        kwargs["files"] = {name: request.files[name] for name in files if name in request.files}
                elif body is not None:
                    kwargs["body"] = _validate(body, read_json_body(), "body")
                else:
                    _refuse_body()
                return kwargs

            endpoint.api_spec = spec  # type: ignore[attr-defined]
            self.api_specs.append(spec)
            self.add_url_rule(rule, view.__name__, endpoint, methods=[spec.method])
            return endpoint

        return decorate
