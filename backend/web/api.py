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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Union, get_args, get_origin

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from backend.web import limits
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


def _field_name(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validation_error(exc: ValidationError, where: str) -> ApiError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0]
    name = _field_name(first["loc"])
    message = f"{where} field '{name}': {first['msg']}" if first["loc"] else f"{where}: {first['msg']}"
    details = [{"field": _field_name(e["loc"]), "message": e["msg"], "type": e["type"]} for e in errors]
    return ApiError(422, message, field=name if first["loc"] else None, details=details)


def read_json_body() -> Any:
    """The request's JSON document, with 400/413/415 answers for everything that is not one."""
    limit = current_app.config["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"JSON body is over the limit MAX_JSON_BYTES={limit} bytes", code="limit_exceeded")
    mimetype = request.mimetype
    if mimetype and mimetype != JSON_BODY and not mimetype.endswith("+json"):
        raise ApiError(415, f"send the body as {JSON_BODY}, not {mimetype}")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise ApiError(413, f"JSON body is over the limit MAX_JSON_BYTES={limit} bytes", code="limit_exceeded")
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


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
    """The request part as ``model``; then its declared caps (``caps.capped_by``), each a 422 naming the setting."""
    try:
        valid = model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, where) from None
    limits.check_declared(valid)
    return valid


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
        self.security_checks: dict[str, Callable[[], None]] = {}
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
    ) -> Callable:
        """Declare ``method rule``; ``files`` names multipart file fields (the body then comes as form fields).

        ``security`` names the schemes that protect it (``"bearer"``): documented, and enforced by the
        blueprint's ``security_scheme`` check before anything else of the request is read.
        """
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
                security=tuple(security),
            )

            @functools.wraps(view)
            def endpoint(**path_args: Any) -> Response:
                for scheme in spec.security:
                    self.security_checks[scheme]()
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
                return _to_response(view(**kwargs), spec)

            endpoint.api_spec = spec  # type: ignore[attr-defined]
            self.api_specs.append(spec)
            self.add_url_rule(rule, view.__name__, endpoint, methods=[spec.method])
            return endpoint

        return decorate
