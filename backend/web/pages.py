"""A registry of the pages people can open, so the home page and the navigation list them all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    title: str
    endpoint: str
    description: str


PAGES: list[Page] = []


def register_page(title: str, endpoint: str, description: str) -> None:
    """Declare a page (``endpoint`` as for ``url_for``); call it at import time of a blueprint module."""
    if not any(page.endpoint == endpoint for page in PAGES):
        PAGES.append(Page(title, endpoint, description))
