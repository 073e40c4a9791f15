"""One error shape for the whole backend.

API clients always get ``{"error": message, "status": code, "code": slug, "field": name-or-null}``;
people browsing pages get the friendly error page. Nothing escapes as a bare 500 with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure with an HTTP status and a message that tells the client what to fix."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _default_code(status)
        self.field = field
        self.details = details


def _default_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media_type",
        422: "validation_error",
        429: "too_many_requests",
    }.get(status, "error" if status < 500 else "internal_error")


def error_body(error: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error.message, "status": error.status, "code": error.code, "field": error.field}
    if error.details:
        body["details"] = error.details
    return body


def wants_json() -> bool:
    """API paths answer JSON; pages answer HTML unless the client asks only for JSON."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def render_error(error: ApiError) -> tuple[Response | str, int]:
    if wants_json():
        response = jsonify(error_body(error))
    else:
        response = render_template("error.html", error=error)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    return response, error.status, headers


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return render_error(error)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return render_error(ApiError(413, f"request body is over the limit MAX_CONTENT_LENGTH={limit} bytes"))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        message = error.description or error.name
        if error.code == 404:
            message = f"nothing here: {request.path}"
        elif error.code == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        return render_error(ApiError(error.code or 500, message))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # A bug, never an expected path: log it fully, tell the client without leaking internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        return render_error(ApiError(500, "internal error; it has been logged"))
