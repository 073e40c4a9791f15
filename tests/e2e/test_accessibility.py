"""axe-core on every page the backend serves and every extension page, at 1280 px and on a 390 px phone.

One Chromium session with the dev build of the extension loaded (so its popup and options pages are real extension
pages); axe-core comes from node_modules (package.json pins it; `npm ci`) and is injected into each page. A test
fails on any serious or critical violation of WCAG 2 A/AA (2.0, 2.1 and 2.2 rules), naming the page, the width,
the rule and the first offending elements. A test per page and width (the pages: the app's own list, as for the
phone suite), and per state a page reaches once used.
"""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import start_chromium, stop_chromium
from tests.e2e.served_pages import pages_of_a_fresh_app

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = {"serious", "critical"}
WIDTHS = {"1280 px": None, "390 px phone": {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}}
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}, resultTypes: ["violations"]})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + ": " + n.failureSummary.split("\\n").slice(1, 2))}))),
        e => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));
"""


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("build_extension", ROOT / "scripts" / "build_extension.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    tmp = tmp_path_factory.mktemp("a11y-extension")
    return module.build("dev", out=tmp / "dist", key_dir=tmp / "keys", package=False)


@pytest.fixture(scope="module")
def chromium(extension):
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` (package.json pins axe-core)"
    driver = start_chromium([f"--load-extension={extension.directory}",
                             f"--disable-extensions-except={extension.directory}"])
    driver.set_script_timeout(60)
    yield driver
    stop_chromium(driver)


def _violations(driver, url: str | None, ready: str | None = None) -> list[str]:
    """Serious and critical violations on ``url`` (None: the page as it is now)."""
    if url is not None:
        driver.get(url)
        WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    if ready:
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    found = driver.execute_async_script(RUN_AXE, TAGS)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in found if v["impact"] in FAILING_IMPACTS]


EXTENSION_PAGES = {"extension:options.html": "#base", "extension:popup.html": "#paste"}
PAGES = list(pages_of_a_fresh_app()) + list(EXTENSION_PAGES)  # a test per page and width


def _url(page: str, live_server, extension) -> tuple[str, str | None]:
    """(url, CSS selector to wait for) of a backend path or an extension page."""
    if page in EXTENSION_PAGES:
        return f"chrome-extension://{extension.extension_id}/{page.split(':', 1)[1]}", EXTENSION_PAGES[page]
    return live_server.url + page, ".opblock" if page == "/api/docs" else None


@contextmanager
def _width(driver, width: str):
    metrics = WIDTHS[width]
    if metrics:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        yield
    finally:
        if metrics:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _docs_operation_tried(driver, live_server, extension=None) -> list[str]:
    """The API viewer with an operation open, its example sent and the answer shown."""
    driver.get(live_server.url + "/api/docs")
    block = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "operations-redirector-post-api-resolve"))
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(driver, 10).until(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    return _violations(driver, None, ".live-responses-table tr.response")


def _jobs_with_a_finished_job(driver, live_server, extension=None) -> list[str]:
    """/jobs after a demo job ran: its progress, its result and its row in the table."""
    driver.get(live_server.url + "/jobs")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "job-params").get_attribute("value"))
    driver.execute_script("document.getElementById('job-kind').value = 'jobs.demo_sleep';"
                          "document.getElementById('job-params').value = '{\"steps\": 1, \"step_s\": 0.05}';")
    driver.find_element(By.ID, "job-start").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "job-result").is_displayed())
    return _violations(driver, None, "#jobs-table tbody tr .job-row-result")


def _lowrank_with_a_result(driver, live_server, extension=None) -> list[str]:
    """/matrix/lowrank after its job ran: the summary and the spectrum chart."""
    driver.get(live_server.url + "/matrix/lowrank")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
    driver.find_element(By.ID, "lowrank-run").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "lowrank-results").get_attribute("data-done") == "1")
    return _violations(driver, None)


def _popup_of_a_tab(driver, live_server, extension) -> list[str]:
    """The popup as it shows the papers of a tab: the local page of two papers."""
    driver.get(live_server.url + "/arxiv/2307.01850,2204.00595")
    origin = f"chrome-extension://{extension.extension_id}"
    driver.switch_to.new_window("tab")
    try:
        driver.get(f"{origin}/options.html")
        tab = driver.execute_async_script(
            "const done = arguments[0]; chrome.tabs.query({}).then(tabs => done("
            "tabs.find(t => (t.url || '').includes('/arxiv/2307.01850'))?.id ?? null));")
        return _violations(driver, f"{origin}/popup.html?tab={tab}", "#paste")
    finally:
        driver.close()
        driver.switch_to.window(driver.window_handles[0])


STATES = {  # (driver, live_server, extension) -> violations
    "/api/docs, an operation tried": _docs_operation_tried,
    "/jobs, a job done": _jobs_with_a_finished_job,
    "/matrix/lowrank, a result shown": _lowrank_with_a_result,
    "popup.html, a tab's papers": _popup_of_a_tab,
}


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("page", PAGES)
def test_no_serious_accessibility_violation_on_the_page(chromium, live_server, extension, page, width):
    url, ready = _url(page, live_server, extension)
    with _width(chromium, width):
        problems = [f"{url} [{width}] {v}" for v in _violations(chromium, url, ready)]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("state", list(STATES))
def test_no_serious_accessibility_violation_once_used(chromium, live_server, extension, state, width):
    """Pages after people used them: an operation tried, a job finished, a result drawn, the popup on a tab."""
    with _width(chromium, width):
        problems = [f"{state} [{width}] {v}" for v in STATES[state](chromium, live_server, extension)]
    assert problems == [], "\n".join(problems)
