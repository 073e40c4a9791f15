"""The HWFA + ReRoPE page in real Chromium: stored results, the heat map, scoring a text, errors shown."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from backend.services.attention.experiment import VARIANTS

BLANK_JS = (
    "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
    "for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false; return true;"
)


def _status(browser, element_id: str, predicate, timeout: float = 20) -> str:
    WebDriverWait(browser, timeout).until(lambda b: predicate(b.find_element(By.ID, element_id).text))
    return browser.find_element(By.ID, element_id).text


def _blank(browser, element_id: str) -> bool:
    return browser.execute_script(BLANK_JS, browser.find_element(By.ID, element_id))


def test_stored_results_and_heat_map(live_server, browser):
    browser.get(live_server.url + "/attention")
    rows = browser.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
    assert len(rows) == len(VARIANTS)
    assert "Baseline RoPE" in rows[0].text and "24.17" in rows[0].text  # Su's row beside ours
    for chart in ("chart-nonrep", "chart-rep", "chart-loss", "chart-train"):
        assert not _blank(browser, chart), chart
    assert browser.execute_script("return document.getElementById('experiment-png').naturalWidth") > 0

    # the page draws the default ReRoPE matrix on load (w = 16)
    assert _status(browser, "relpos-status", lambda t: t.startswith("max P")) == "max P = 16, 17 distinct values"
    assert not _blank(browser, "relpos-chart")
    Select(browser.find_element(By.ID, "relpos-mode")).select_by_visible_text("leaky")
    for field, value in (("relpos-n", "40"), ("relpos-window", "8"), ("relpos-k", "4")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "relpos-button").click()
    assert _status(browser, "relpos-status", lambda t: "15.75" in t).startswith("max P = 15.75")

    # out of range: the API's 422 message is shown
    box = browser.find_element(By.ID, "relpos-n")
    box.clear()
    box.send_keys("600")
    browser.execute_script("document.getElementById('relpos-n').removeAttribute('max')")
    browser.find_element(By.ID, "relpos-button").click()
    assert "600 positions is over the limit of 512 positions" in _status(browser, "relpos-status",
                                                                       lambda t: "limit" in t)


def test_score_a_text_and_show_errors(live_server, browser):
    browser.get(live_server.url + "/attention")
    for box in browser.find_elements(By.CSS_SELECTOR, "#score-variants input"):
        if box.is_selected() != (box.get_attribute("value") in ("rope", "hwfa2_f1")):
            box.click()
    text = browser.find_element(By.ID, "score-text")
    text.clear()
    text.send_keys("<b>not bold</b> " + "import os\nprint(os.getcwd())\n" * 6)
    browser.find_element(By.ID, "score-button").click()
    status = _status(browser, "score-status", lambda t: "scored" in t or "error" in t.lower())
    assert status.endswith("scored by 2 variants")
    rows = browser.find_elements(By.CSS_SELECTOR, "#score-table tbody tr")
    assert [r.get_attribute("data-variant") for r in rows] == ["rope", "hwfa2_f1"]
    assert not _blank(browser, "score-chart")
    assert not browser.find_elements(By.CSS_SELECTOR, "#score b")  # the text never becomes markup

    text.clear()
    text.send_keys("a")
    browser.find_element(By.ID, "score-button").click()
    assert "at least 2 bytes" in _status(browser, "score-status", lambda t: "bytes" in t and "scored" not in t)
