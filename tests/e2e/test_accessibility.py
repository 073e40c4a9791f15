"""axe-core on every page the backend serves and every extension page, at 1280 px and on a 390 px phone.

One Chromium session with the dev build of the extension loaded (so its popup and options pages are real extension
pages); axe-core comes from node_modules (package.json pins it; `npm ci`) and is injected into each page. A test
fails on any serious or critical violation of WCAG 2 A/AA (2.0, 2.1 and 2.2 rules), naming the page, the width,
the rule and the first offending elements.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import start_chromium, stop_chromium
from tests.e2e.served_pages import served_pages

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


def _pages(live_server, extension) -> list[tuple[str, str | None]]:
    """(url, CSS selector to wait for) of every backend page and every extension page."""
    pages = [(live_server.url + path, ".opblock" if path == "/api/docs" else None)
             for path in served_pages(live_server.app)]
    origin = f"chrome-extension://{extension.extension_id}"
    pages += [(f"{origin}/options.html", "#base"), (f"{origin}/popup.html", "#paste")]
    return pages


def _docs_operation_tried(driver, live_server) -> list[str]:
    """The API viewer with an operation open, its example sent and the answer shown."""
    driver.get(live_server.url + "/api/docs")
    block = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "operations-redirector-post-api-resolve"))
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(driver, 10).until(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    return _violations(driver, None, ".live-responses-table tr.response")


def _jobs_with_a_finished_job(driver, live_server) -> list[str]:
    """/jobs after a demo job ran: its progress, its result and its row in the table."""
    driver.get(live_server.url + "/jobs")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "job-params").get_attribute("value"))
    driver.execute_script("document.getElementById('job-kind').value = 'jobs.demo_sleep';"
                          "document.getElementById('job-params').value = '{\"steps\": 1, \"step_s\": 0.05}';")
    driver.find_element(By.ID, "job-start").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "job-result").is_displayed())
    return _violations(driver, None, "#jobs-table tbody tr .job-row-result")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_no_serious_accessibility_violation_on_any_page(chromium, live_server, extension, width):
    metrics = WIDTHS[width]
    if metrics:
        chromium.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        problems = []
        for url, ready in _pages(live_server, extension):
            problems += [f"{url} [{width}] {v}" for v in _violations(chromium, url, ready)]
        problems += [f"/api/docs, an operation tried [{width}] {v}" for v in _docs_operation_tried(chromium, live_server)]
        problems += [f"/jobs, a job done [{width}] {v}" for v in _jobs_with_a_finished_job(chromium, live_server)]
        # the popup as it shows the papers of a tab: the local page of two papers
        chromium.get(live_server.url + "/arxiv/2307.01850,2204.00595")
        origin = f"chrome-extension://{extension.extension_id}"
        chromium.switch_to.new_window("tab")
        try:
            chromium.get(f"{origin}/options.html")
            tab = chromium.execute_async_script(
                "const done = arguments[0]; chrome.tabs.query({}).then(tabs => done("
                "tabs.find(t => (t.url || '').includes('/arxiv/2307.01850'))?.id ?? null));")
            problems += [f"popup.html?tab [{width}] {v}"
                         for v in _violations(chromium, f"{origin}/popup.html?tab={tab}", "#paste")]
        finally:
            chromium.close()
            chromium.switch_to.window(chromium.window_handles[0])
        assert problems == [], "\n".join(problems)
    finally:
        if metrics:
            chromium.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
