"""The application factory: configuration, shared web pieces, then one blueprint per service."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from flask import Flask
from flask_talisman import Talisman
from werkzeug.routing import Map

from backend.config import load_config
from backend.web import openapi, site
from backend.web.errors import register_error_handlers

# Each module exposes ``bp``; order only matters for the navigation bar.
SERVICE_BLUEPRINTS: list[str] = [
    "backend.redirector.blueprint",
    "backend.jobs.blueprint",
    "backend.services.stove.blueprint",
    "backend.services.matrix.blueprint",
    "backend.services.tokenize.blueprint",
    "backend.services.continuation.blueprint",
    "backend.services.attention.blueprint",
    "backend.services.mad.blueprint",
]


class _UnmergedSlashes(Map):
    """Keep '//' in paths: "/https://arxiv.org/..." must reach the prefix route as typed, not be redirected."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["merge_slashes"] = False
        super().__init__(*args, **kwargs)


class _Backend(Flask):
    url_map_class = _UnmergedSlashes


def _app_version() -> str:
    try:
        return version("coolpapers-backend")
    except PackageNotFoundError:
        return "0+unknown"


def _trusted_hosts(config: dict[str, Any]) -> list[str]:
    """TRUSTED_HOSTS, plus the address the server is told to listen on (an empty list accepts any Host)."""
    trusted = list(config["TRUSTED_HOSTS"])
    host = str(config.get("HOST") or "")
    if trusted and host and ":" not in host and host != "0.0.0.0" and host not in trusted:
        trusted.append(host)
    return trusted


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the backend. ``config`` overrides environment variables, which override the defaults."""
    settings = load_config(config)
    app = _Backend(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(settings)
    app.config["TRUSTED_HOSTS"] = _trusted_hosts(app.config)
    app.config.setdefault("APP_VERSION", _app_version())
    Path(app.config["INSTANCE_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets and databases
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    register_error_handlers(app)
    _security_headers(app)
    app.register_blueprint(site.bp)
    app.register_blueprint(openapi.bp)
    for module_name in SERVICE_BLUEPRINTS:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp)
        init_app = getattr(module, "init_app", None)
        if init_app is not None:
            init_app(app)
    return app


# Pages load their scripts from /static or carry the per-response nonce (``<script nonce="{{ csp_nonce() }}">``);
# styles may be inline (no script runs from them). Nothing may frame a page (the stove's buttons!).
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _security_headers(app: Flask) -> None:
    """CSP with nonces, frame-ancestors 'none', nosniff, Referrer-Policy and COOP on every response (flask-talisman)."""
    if not app.config["SECURITY_HEADERS"]:
        app.jinja_env.globals["csp_nonce"] = lambda: ""
        return
    Talisman(
        app,
        force_https=False,  # served on loopback or a LAN over http; HSTS is sent when a proxy terminates TLS
        strict_transport_security=True,
        frame_options="DENY",
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["script-src"],
        referrer_policy="same-origin",
        session_cookie_secure=False,
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()"},
    )

    @app.after_request
    def _isolation(response):
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
