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


# Job kinds whose result a page can show in its own view (charts, not JSON): the page reads ?job=<id>&key=<key>
# (jobs.js: loadJobFromPage) and the /jobs page links finished jobs of that kind to it.
@dataclass(frozen=True)
class JobView:
    endpoint: str
    title: str | None  # None: the title it has in PAGES


JOB_VIEWS: dict[str, JobView] = {}


def register_job_view(kind: str, endpoint: str, title: str | None = None) -> None:
    """Declare that page ``endpoint`` shows results of job ``kind`` given ``?job=<id>&key=<key>``.

    ``title`` names a page that is not in the navigation (a view only jobs lead to); registered pages keep theirs.
    """
    JOB_VIEWS[kind] = JobView(endpoint, title)
