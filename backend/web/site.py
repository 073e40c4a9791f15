"""The home page and the health check."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, render_template, request, send_from_directory
from pydantic import BaseModel

from backend.web.api import ApiBlueprint
from backend.web.openapi import openapi_document
from backend.web.pages import PAGES

bp = ApiBlueprint("site", __name__)


class Health(BaseModel):
    status: str
    version: str


@bp.get("/")
def home():
    spec = openapi_document(current_app)
    endpoints = [
        {"method": method.upper(), "path": path, "summary": op.get("summary", "")}
        for path, operations in spec["paths"].items()
        for method, op in operations.items()
    ]
    base = current_app.config["COOLPAPERS_BASE"].rstrip("/")
    return render_template(
        "home.html",
        pages=PAGES,
        endpoints=endpoints,
        base=base,
        base_host=urlsplit(base).netloc,
        # the box then needs one button: the Cool Papers page and the local copy are the same page
        base_is_local=base == request.url_root.rstrip("/"),
    )


@bp.get("/favicon.ico")
def favicon():
    # The extension's 16 and 32 px icons in one ICO file (PNG entries); browsers ask for it on every page.
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                               max_age=86400)


@bp.api("GET", "/api/health", response=Health, summary="Liveness check")
def health() -> Health:
    return Health(status="ok", version=current_app.config["APP_VERSION"])


@bp.app_context_processor
def _navigation() -> dict:
    return {"nav_pages": lambda: PAGES}
