"""The application factory: configuration, shared web pieces, then one blueprint per service."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from flask import Flask
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


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the backend. ``config`` overrides environment variables, which override the defaults."""
    settings = load_config(config)
    app = _Backend(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(settings)
    app.config.setdefault("APP_VERSION", _app_version())
    Path(app.config["INSTANCE_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets and databases
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    register_error_handlers(app)
    app.register_blueprint(site.bp)
    app.register_blueprint(openapi.bp)
    for module_name in SERVICE_BLUEPRINTS:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp)
        init_app = getattr(module, "init_app", None)
        if init_app is not None:
            init_app(app)
    return app
