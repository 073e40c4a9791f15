"""One error shape for the whole backend.

API clients always get ``{"error": message, "status": code, "code": slug, "field": name-or-null}``;
people browsing pages get the friendly error page. Nothing escapes as a bare 500 with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge, SecurityError

from backend.web.caps import CapExceeded, Over, fmt

log = logging.getLogger(__name__)


class Overrun(Exception):
    """A synchronous computation ran past its deadline (``backend.web.budget``); raised in its own thread."""


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
        limit: str | None = None,
        limit_value: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _default_code(status)
        self.field = field
        self.details = details
        self.limit = limit  # the setting that refused the request (never named in the message)
        self.limit_value = limit_value
        self.headers = headers or {}

    @classmethod
    def over(cls, over: Over) -> ApiError:
        """A cap refusal (``caps.CapExceeded``) in the error shape: 422, or 413 for byte sizes."""
        return cls(over.status, over.message, code="limit_exceeded", field=over.field, limit=over.setting,
                   limit_value=over.limit)


def _default_code(status: int) -> str:
    return {
        400: "bad_request",
        408: "request_timeout",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media_type",
        422: "validation_error",
        429: "too_many_requests",
        503: "busy",
    }.get(status, "error" if status < 500 else "internal_error")


def error_body(error: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error.message, "status": error.status, "code": error.code, "field": error.field,
                            "limit": error.limit, "limit_value": error.limit_value}
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
    headers.update(error.headers)
    return response, error.status, headers


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return render_error(error)

    @app.errorhandler(CapExceeded)
    def _cap(error: CapExceeded):
        return render_error(ApiError.over(error.over))

    @app.errorhandler(Overrun)
    def _overrun(_error: Overrun):
        from backend.web.budget import overrun_error  # budget builds on this module

        return render_error(overrun_error())

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        size = request.content_length
        said = f"a request body of {fmt(size)} bytes" if size else "the request body"
        return render_error(ApiError(413, f"{said} is over the limit of {fmt(limit)} bytes; send a smaller file",
                                     code="limit_exceeded", limit="MAX_CONTENT_LENGTH", limit_value=limit))

    @app.errorhandler(SecurityError)
    def _untrusted_host(_error: SecurityError):
        # Flask's TRUSTED_HOSTS refused the Host header (DNS rebinding): say which names this server answers to.
        # Always JSON: without a trusted host there is no URL adapter for the HTML page's links.
        host = request.environ.get("HTTP_HOST", "")[:100]
        error = ApiError(400, f"this server does not answer to the host name {host!r}; open it by one of its "
                              "configured names (127.0.0.1 or localhost by default)", code="untrusted_host",
                         field="Host", limit="TRUSTED_HOSTS")
        return jsonify(error_body(error)), 400

    @app.errorhandler(TimeoutError)
    def _slow_client(_error: Exception):
        # The production worker gives each request body a deadline (gunicorn.conf.py); a client that stalls past
        # it gets this instead of holding a thread.
        return render_error(ApiError(408, "the request body arrived too slowly and was dropped; send it again",
                                     limit="WEB_BODY_TIMEOUT_S", limit_value=app.config.get("WEB_BODY_TIMEOUT_S")))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if isinstance(error, ClientDisconnected):  # werkzeug's word for a body that stopped coming (our deadline)
            return _slow_client(error)
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
