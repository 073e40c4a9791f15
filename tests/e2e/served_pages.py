"""Every page the backend serves, as URLs to open: for the phone-width and accessibility suites.

Found from the app's URL map (every GET rule outside /api/, plus /api/docs), so a new page is checked without being
listed here; a rule with arguments needs sample URLs in SAMPLES (the suites fail until it has them), and a GET rule
that is not a page (a file, an image) goes in NOT_PAGES.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

SAMPLES = {
    "redirector.arxiv_page": ["/arxiv/2307.01850", "/arxiv/2307.01850,2204.00595,hep-th/9901001", "/arxiv/cs.CV"],
    "redirector.venue_page": ["/venue/B18WgG-CZ@OpenReview,2024.naacl-long.431@ACL"],
    "redirector.arxiv_search": ["/arxiv/search?highlight=1&query=low%20rank%20adaptation", "/arxiv/search?query="],
    "redirector.go": ["/go?q=2204.00595&where=local"],  # lands on a local paper page
    "redirector.prefix_form": ["/https://openreview.net/forum?id=B18WgG-CZ"],  # the live server's base is itself
}
# (every blueprint's static files, "<name>.static", are left out too)
NOT_PAGES = {"static", "openapi.openapi_json", "site.favicon", "attention.experiment_plot"}
ERROR_PAGE = "/no/such/page"  # the friendly 404 page


def served_pages(app) -> list[str]:
    """Paths of every page ``app`` serves (samples for rules with arguments), then the error page."""
    pages: list[str] = []
    missing: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES or rule.endpoint.endswith(".static"):
            continue
        if rule.rule.startswith("/api/") and rule.rule != "/api/docs":
            continue
        if rule.endpoint in SAMPLES:
            pages.extend(SAMPLES[rule.endpoint])
        elif rule.arguments:
            missing.append(f"{rule.rule} ({rule.endpoint})")
        else:
            pages.append(rule.rule)
    assert not missing, f"add sample URLs for these pages to tests/e2e/served_pages.py SAMPLES: {missing}"
    return pages + [ERROR_PAGE]


@functools.cache
def pages_of_a_fresh_app() -> tuple[str, ...]:
    """``served_pages`` of an app built for tests in a throwaway folder: for parametrizing tests at collection time
    (a test per page), before any live server exists. ``test_pages_checked_are_the_live_servers`` compares them."""
    from backend import create_app
    from tests.conftest import config_for_tests

    tmp = Path(tempfile.mkdtemp(prefix="served-pages-"))
    try:
        app = create_app(config_for_tests(tmp))
        try:
            return tuple(served_pages(app))
        finally:
            for hook in app.extensions.get("shutdown_hooks", []):
                hook()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
