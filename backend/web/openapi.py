"""The OpenAPI 3.1 document, built from the endpoints declared with ``ApiBlueprint.api``."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template
from pydantic import BaseModel, Field

from backend.web.api import JSON_BODY, MULTIPART_BODY, EndpointSpec
from backend.web.caps import LIMIT_KEY

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "the stove's token: Authorization: Bearer <token>"},
    "api_token": {"type": "http", "scheme": "bearer",
                  "description": "API_TOKEN or a person's token from API_TOKENS; with none configured, compute and "
                  "job endpoints answer loopback clients only (403 otherwise)"},
}
ALWAYS_POSSIBLE = {400: "the request is malformed", 413: "the request is over a size limit"}
_converter = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    error: str = Field(description="what went wrong and what to fix")
    status: int
    code: str
    field: str | None = Field(default=None, description="the offending request field, when there is one")
    limit: str | None = Field(default=None, description="the setting that refused the request (a cap, a budget)")
    limit_value: float | None = Field(default=None, description="that setting's configured value")
    details: list[dict[str, Any]] | None = None


def _portable(node: Any) -> Any:
    """Tuples (``prefixItems``) as ``items: anyOf`` with a fixed length: fuzzers and older tools read that form."""
    if isinstance(node, dict):
        node = {key: _portable(value) for key, value in node.items()}
        if "prefixItems" in node:
            node["items"] = {"anyOf": node.pop("prefixItems")}
        return node
    if isinstance(node, list):
        return [_portable(item) for item in node]
    return node


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = _portable(model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode))
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _parameters(spec: EndpointSpec, rule_path: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
        for name in _converter.findall(rule_path)
    ]
    if spec.query is not None:
        schema = _portable(spec.query.model_json_schema(ref_template=REF_TEMPLATE, mode="validation"))
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def _operation(spec: EndpointSpec, rule_path: str, components: dict[str, Any]) -> dict[str, Any]:
    error_ref = {"$ref": REF_TEMPLATE.format(model="ErrorResponse")}
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', rule_path).strip('_')}",
        "tags": list(spec.tags),
    }
    if spec.description and spec.description != spec.summary:
        operation["description"] = spec.description
    if spec.security:
        operation["security"] = [{name: []} for name in spec.security]
    params = _parameters(spec, rule_path, components)
    if params:
        operation["parameters"] = params
    if spec.body is not None or spec.files:
        content: dict[str, Any] = {}
        if spec.body is not None:
            content[JSON_BODY] = {"schema": _schema(spec.body, components, "validation")}
        if spec.files:
            form = {"type": "object", "properties": {name: {"type": "string", "format": "binary"} for name in spec.files}}
            if spec.body is not None:
                form = {"allOf": [form, {"$ref": REF_TEMPLATE.format(model=spec.body.__name__)}]}
            content[MULTIPART_BODY] = {"schema": form}
        operation["requestBody"] = {"required": True, "content": content}
    success: dict[str, Any] = {"description": "success"}
    if spec.response is not None:
        success["content"] = {JSON_BODY: {"schema": _schema(spec.response, components, "serialization")}}
    responses: dict[str, Any] = {str(spec.status): success}
    errors = dict(ALWAYS_POSSIBLE)
    if spec.body is not None or spec.query is not None or spec.files:
        errors[422] = "a field is invalid or over a configured limit"
    if spec.body is not None:
        errors[415] = "the body is not sent as application/json"
    if spec.gated:
        errors[401] = "an API token is configured and none was sent"
        errors[403] = "wrong API token, or (with none configured) a client that is not this machine"
    if spec.cost is not None:
        errors[422] = "a field is invalid, over a configured limit, or the run would exceed SYNC_MAX_SECONDS"
        errors[503] = "all compute slots are busy (Retry-After), or the run overran its time budget and was stopped"
    errors.update(spec.errors)
    for status, description in sorted(errors.items()):
        responses[str(status)] = {"description": description, "content": {JSON_BODY: {"schema": error_ref}}}
    for status, extra in spec.extra_responses.items():
        responses[str(status)] = extra
    operation["responses"] = responses
    return operation


_LIMIT_KEYWORD = {"integer": "maximum", "number": "maximum", "string": "maxLength", "array": "maxItems",
                  "object": "maxProperties"}


def _apply_limits(node: Any, config: Any) -> None:
    """Fill in the configured numbers of fields declared ``json_schema_extra=capped_by("<CONFIG_NAME>")``.

    ``ApiBlueprint`` enforces the same caps, so the document states what the server accepts under this app's
    configuration: clients and fuzzers see the bound instead of finding it by a 422.
    """
    if isinstance(node, list):
        for item in node:
            _apply_limits(item, config)
        return
    if not isinstance(node, dict):
        return
    name = node.get(LIMIT_KEY)
    if name is not None:
        if not isinstance(config.get(name), (int, float)):
            raise ValueError(f"x-limit {name!r} is not a numeric setting in the config")
        types = [node.get("type")] + [alt.get("type") for alt in node.get("anyOf", []) if isinstance(alt, dict)]
        keyword = next((_LIMIT_KEYWORD[t] for t in types if t in _LIMIT_KEYWORD), None)
        if keyword is not None:
            value = config[name] if keyword == "maximum" else int(config[name])
            node[keyword] = min(node[keyword], value) if keyword in node else value
    for value in node.values():
        _apply_limits(value, config)


def build_openapi(app: Flask) -> dict[str, Any]:
    components: dict[str, Any] = {}
    _schema(ErrorResponse, components, "serialization")
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        spec: EndpointSpec | None = getattr(view, "api_spec", None)
        if spec is None:
            continue
        path = _converter.sub(r"{\1}", rule.rule)
        paths.setdefault(path, {})[spec.method.lower()] = _operation(spec, rule.rule, components)
    _apply_limits(paths, app.config)
    _apply_limits(components, app.config)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cool Papers companion backend",
            "version": app.config.get("APP_VERSION", "0"),
            "description": "Resolves paper-bearing URLs and text to Cool Papers pages, and hosts the algorithm services.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


def openapi_document(app: Flask) -> dict[str, Any]:
    """The app's document, built once: routes cannot change after the first request is served."""
    document = app.extensions.get("openapi")
    if document is None:
        document = app.extensions["openapi"] = build_openapi(app)
    return document


bp = Blueprint("openapi", __name__)


@bp.get("/api/openapi.json")
def openapi_json():
    return jsonify(openapi_document(current_app))


@bp.get("/api/docs")
def docs_page():
    return render_template("docs.html", spec=openapi_document(current_app))
