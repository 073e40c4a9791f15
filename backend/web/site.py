"""The home page and the health check."""

from __future__ import annotations

from flask import current_app, render_template
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
    return render_template("home.html", pages=PAGES, endpoints=endpoints, base=current_app.config["COOLPAPERS_BASE"])


@bp.api("GET", "/api/health", response=Health, summary="Liveness check")
def health() -> Health:
    return Health(status="ok", version=current_app.config["APP_VERSION"])


@bp.app_context_processor
def _navigation() -> dict:
    return {"nav_pages": lambda: PAGES}
