"""The HWFA + ReRoPE page in real Chromium: stored results and charts, scoring a text, the heat map, errors next
to their fields with stale results cleared, a 390 px phone width, and labelled controls."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from backend.services.attention.experiment import N_TRAIN, VARIANTS
from backend.services.attention.scoring import DEFAULT_DATA

BLANK_JS = (
    "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
    "for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false; return true;"
)
# Controls without an accessible name (a <label>, aria-label or aria-labelledby; buttons may use their text).
UNLABELLED_JS = """
return [...document.querySelectorAll('main input, main select, main textarea, main button, main canvas')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
          && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.id || el.outerHTML.slice(0, 80));
"""


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})
  .then((r) => done(r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
                    .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '))))
  .catch((e) => done(['axe failed: ' + e]));
"""


def _axe_violations(browser) -> list[str]:
    """Serious and critical WCAG 2 A/AA violations axe-core finds on the current page."""
    if not AXE.exists():
        pytest.fail(f"axe-core is required for the accessibility check: run `npm ci` ({AXE})")
    browser.execute_script(AXE.read_text())
    browser.set_script_timeout(60)
    return browser.execute_async_script(AXE_RUN_JS)


def _text(browser, element_id: str, predicate, timeout: float = 20) -> str:
    WebDriverWait(browser, timeout).until(lambda b: predicate(b.find_element(By.ID, element_id).text))
    return browser.find_element(By.ID, element_id).text


def _blank(browser, element_id: str) -> bool:
    return browser.execute_script(BLANK_JS, browser.find_element(By.ID, element_id))


def _shown(browser, element_id: str) -> bool:
    return browser.find_element(By.ID, element_id).is_displayed()


def _fill(browser, element_id: str, value: str) -> None:
    box = browser.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(value)


def _phone(browser, width: int = 390):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 844, "deviceScaleFactor": 2, "mobile": True})


@pytest.fixture
def phone(browser):
    _phone(browser)
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_stored_results_charts_tell_the_truth(live_server, browser):
    browser.get(live_server.url + "/attention")
    rows = browser.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
    with (DEFAULT_DATA / "exp_results.csv").open(newline="") as f:
        stored = {r["variant"] for r in csv.DictReader(f)}
    # the shipped run has every variant: one row each, in the experiment's order, and no "not in this run" note
    # (a partial run's note: test_api.test_page_names_the_variants_a_partial_run_left_out)
    assert stored == {v.name for v in VARIANTS}
    assert [r.get_attribute("data-variant") for r in rows] == [v.name for v in VARIANTS]
    assert not browser.find_elements(By.ID, "not-run")
    assert rows[0].text.startswith("Baseline RoPE") and "24.17" in rows[0].text  # Su's row beside ours
    assert "[" in rows[0].text  # every number comes with its interval
    assert browser.find_elements(By.CSS_SELECTOR, "#claims-table tbody tr")
    # readable names only: no internal ids in what the page shows
    visible = browser.find_element(By.TAG_NAME, "main").text
    for v in VARIANTS:
        if "_" in v.name:
            assert v.name not in visible, v.name
    assert "Baseline-log n\u2020" in visible
    for chart in ("chart-nonrep", "chart-rep", "chart-loss", "chart-train"):
        assert not _blank(browser, chart), chart
        canvas = browser.find_element(By.ID, chart)
        # the legend sits under the plot box, never over a curve
        assert canvas.get_attribute("data-legend") == "below"
        left, top, width, height = map(int, canvas.get_attribute("data-plot").split(","))
        assert int(canvas.get_attribute("data-legend-top")) > top + height
    for chart in ("chart-nonrep", "chart-rep", "chart-loss"):
        canvas = browser.find_element(By.ID, chart)
        # x in tokens (bytes), not "log2 eval length"; the training length is marked
        assert canvas.get_attribute("data-x-ticks") == "128|256|512|1024"
        assert canvas.get_attribute("data-markers") == f"training length N = {N_TRAIN}"
    assert browser.execute_script("return document.getElementById('experiment-png').naturalWidth") > 0


def test_heat_map_and_its_field_errors(live_server, browser):
    browser.get(live_server.url + "/attention")
    # the page draws the default ReRoPE matrix on load (w = 16)
    assert _text(browser, "relpos-status", lambda t: t.startswith("max P")) == "max P = 16, 17 distinct values"
    assert not _blank(browser, "relpos-chart")
    Select(browser.find_element(By.ID, "relpos-mode")).select_by_visible_text("Leaky ReRoPE")
    for field, value in (("relpos-n", "40"), ("relpos-window", "8"), ("relpos-k", "4")):
        _fill(browser, field, value)
    browser.find_element(By.ID, "relpos-button").click()
    assert _text(browser, "relpos-status", lambda t: "15.75" in t).startswith("max P = 15.75")

    # over the limit: the server's message next to n, the stale heat map and status gone
    _fill(browser, "relpos-n", "600")
    browser.find_element(By.ID, "relpos-button").click()
    message = _text(browser, "relpos-n-error", lambda t: t != "")
    assert "512" in message
    assert browser.find_element(By.ID, "relpos-n").get_attribute("aria-invalid") == "true"
    assert not _shown(browser, "relpos-chart") and browser.find_element(By.ID, "relpos-status").text == ""
    # an empty window: said next to that field, before any request
    _fill(browser, "relpos-n", "40")
    browser.find_element(By.ID, "relpos-window").clear()
    browser.find_element(By.ID, "relpos-button").click()
    assert _text(browser, "relpos-window-error", lambda t: t != "") == "Enter a number."
    assert not _shown(browser, "relpos-n-error")
    # fixed: errors cleared, the heat map back
    _fill(browser, "relpos-window", "8")
    browser.find_element(By.ID, "relpos-button").click()
    assert _text(browser, "relpos-status", lambda t: t.startswith("max P")).startswith("max P = 15.75")
    assert _shown(browser, "relpos-chart") and not _shown(browser, "relpos-window-error")
    assert browser.find_element(By.ID, "relpos-window").get_attribute("aria-invalid") is None


def test_score_a_text_then_errors_clear_the_stale_results(live_server, browser):
    browser.get(live_server.url + "/attention")
    assert not _shown(browser, "score-results")  # no empty chart box before the first score
    boxes = browser.find_elements(By.CSS_SELECTOR, "#score-variants input")
    labels = {box.get_attribute("value"): box.find_element(By.XPATH, "..").text for box in boxes}
    assert labels["rope_logn_dagger"] == "Baseline-log n\u2020"  # readable names beside the boxes
    for box in boxes:
        if box.is_selected() != (box.get_attribute("value") in ("rope", "hwfa2_f1")):
            box.click()
    _fill(browser, "score-text", "<b>not bold</b> " + "import os\nprint(os.getcwd())\n" * 6)
    browser.find_element(By.ID, "score-button").click()
    status = _text(browser, "score-status", lambda t: "scored" in t or "error" in t.lower())
    assert status.endswith("scored by 2 variants")
    assert _shown(browser, "score-results") and not _blank(browser, "score-chart")
    rows = browser.find_elements(By.CSS_SELECTOR, "#score-table tbody tr")
    assert [r.get_attribute("data-variant") for r in rows] == ["rope", "hwfa2_f1"]
    assert rows[1].text.startswith("HWFA-ReRoPE-w32-f1")
    assert browser.find_element(By.ID, "score-chart").get_attribute("data-legend") == "below"
    assert not browser.find_elements(By.CSS_SELECTOR, "#score b")  # the text never becomes markup

    # too short: the message under the text box; the old chart and table are gone
    _fill(browser, "score-text", "a")
    browser.find_element(By.ID, "score-button").click()
    assert "at least 2 bytes" in _text(browser, "score-text-error", lambda t: t != "")
    assert browser.find_element(By.ID, "score-text").get_attribute("aria-invalid") == "true"
    assert not _shown(browser, "score-results")
    assert not browser.find_elements(By.CSS_SELECTOR, "#score-table tbody tr")

    # no variant picked: said next to the variants, and the text's old error is cleared
    for box in browser.find_elements(By.CSS_SELECTOR, "#score-variants input:checked"):
        box.click()
    _fill(browser, "score-text", "print('hello')\n")
    browser.find_element(By.ID, "score-button").click()
    assert "at least one variant" in _text(browser, "score-variants-error", lambda t: t != "")
    assert not _shown(browser, "score-text-error")


def test_phone_width_has_no_sideways_scroll(live_server, phone):
    phone.get(live_server.url + "/attention")
    _text(phone, "relpos-status", lambda t: t.startswith("max P"))
    width = phone.execute_script("return window.innerWidth")
    assert width == 390
    assert phone.execute_script("return document.documentElement.scrollWidth") <= width
    # every control fits on the screen (wide tables scroll inside their own box)
    overflowing = phone.execute_script(
        "return [...document.querySelectorAll('main input, main select, main textarea, main button, main canvas')]"
        ".filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5).map((el) => el.id);")
    assert overflowing == []
    for chart in ("chart-nonrep", "chart-rep"):
        assert not _blank(phone, chart)
        canvas = phone.find_element(By.ID, chart)
        assert int(canvas.get_attribute("data-legend-top")) > sum(map(int, canvas.get_attribute("data-plot").split(",")[1::2]))


def test_every_control_is_labelled_and_axe_finds_nothing_serious(live_server, browser):
    browser.get(live_server.url + "/attention")
    _text(browser, "relpos-status", lambda t: t.startswith("max P"))
    assert browser.execute_script(UNLABELLED_JS) == []
    assert browser.find_element(By.CSS_SELECTOR, "label[for='score-text']").text == "Text to score"
    assert _axe_violations(browser) == []
    browser.find_element(By.ID, "score-button").click()  # with results and a field error shown, too
    _text(browser, "score-status", lambda t: "scored" in t)
    _fill(browser, "relpos-n", "0")
    browser.find_element(By.ID, "relpos-button").click()
    _text(browser, "relpos-n-error", lambda t: t != "")
    assert _axe_violations(browser) == []
    _phone(browser)
    try:
        browser.get(live_server.url + "/attention")
        _text(browser, "relpos-status", lambda t: t.startswith("max P"))
        assert _axe_violations(browser) == []
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
