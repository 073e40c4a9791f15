"""The random tokenization page in real Chromium: charts against the exact law, table, escaping, errors, widths."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from backend.services.tokenize import get_model, warm_up


def wait(browser, predicate, timeout=30):
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda _d: predicate())


def rows(browser):
    return browser.find_elements(By.CSS_SELECTOR, "#tok-table tbody tr.seg-row")


def painted(browser, canvas_id: str) -> bool:
    return browser.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "if (!c.width || !c.height) return false;"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let colored = 0; for (let i = 0; i < d.length; i += 4) {"
        "  if (Math.abs(d[i] - d[i + 1]) > 40 || Math.abs(d[i + 1] - d[i + 2]) > 40) colored++; }"
        "return colored > 200;",
        canvas_id,
    )


def no_sideways_scroll(browser) -> bool:
    """The page does not scroll sideways, and no element of the page's content sticks out to the right."""
    return browser.execute_script(
        "const w = window.innerWidth;"
        "if (document.documentElement.scrollWidth > w || document.body.scrollWidth > w) return false;"
        "return [...document.querySelectorAll('main *')].every((el) => el.getBoundingClientRect().right <= w + 0.5);"
    )


def result_shown(browser) -> bool:
    return browser.execute_script("return !document.getElementById('tok-result').hidden;")


def submit(browser, text=None, alpha=None, method=None, samples=None):
    if text is not None:
        box = browser.find_element(By.ID, "tok-text")
        box.clear()
        box.send_keys(text)
    for field, value in (("tok-alpha", alpha), ("tok-samples", samples)):
        if value is not None:
            el = browser.find_element(By.ID, field)
            el.clear()
            el.send_keys(str(value))
    if method is not None:
        Select(browser.find_element(By.ID, "tok-method")).select_by_value(method)
    browser.find_element(By.ID, "tok-run").click()


@contextmanager
def viewport(browser, width: int, height: int):
    """Emulate a device of this CSS width (a phone at 390 px), restored afterwards for the next test."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    # compile the kernels first (seconds in a fresh checkout) so no page wait depends on the JIT
    warm_up()
    get_model("default")


def test_tokenize_page_charts_against_the_exact_law(live_server, browser):
    with viewport(browser, 1280, 1000):
        browser.get(live_server.url + "/tokenize")
        # the page samples its example on load
        wait(browser, lambda: len(rows(browser)) > 3)
        assert painted(browser, "tok-boundaries") and painted(browser, "tok-chart")
        summary = browser.find_element(By.ID, "tok-summary").text
        assert "2000 samples" in summary and "Chi-square" in summary and "most probable" in summary
        cells = [r.find_elements(By.TAG_NAME, "td") for r in rows(browser)]
        # rows in order of exact probability (not of sampled frequency), each with its interval
        exact = [float(c[2].text) for c in cells]
        assert exact == sorted(exact, reverse=True) and 0 < exact[0] <= 1
        first = cells[0]
        freq, interval = first[3].text.split("[")
        lo, hi = (float(x) for x in interval.rstrip("]").split(", "))
        assert lo <= float(freq) <= hi
        assert browser.find_elements(By.CSS_SELECTOR, "#tok-table tbody tr.rest")
        assert no_sideways_scroll(browser)

        # markup in the text stays text; Viterbi: one row of probability 1
        submit(browser, text="<b>bold</b>", alpha=-1)
        wait(browser, lambda: result_shown(browser) and len(rows(browser)) == 1)
        assert not browser.find_elements(By.CSS_SELECTOR, "#tok-table b")
        tokens = rows(browser)[0].find_elements(By.CSS_SELECTOR, "td.tokens span")
        assert "".join(t.get_attribute("textContent") for t in tokens) == "<b>bold</b>"
        assert float(rows(browser)[0].find_elements(By.TAG_NAME, "td")[2].text) == 1.0

        # the legacy sampler on a longer text: the page reports the mismatch
        submit(browser, text="unbelievable", alpha=0.5, method="legacy-sample", samples=20000)
        wait(browser, lambda: "do not follow the exact law" in browser.find_element(By.ID, "tok-summary").text, 60)


def test_tokenize_page_errors_next_to_the_field_and_stale_results_cleared(live_server, browser):
    with viewport(browser, 1280, 1000):
        browser.get(live_server.url + "/tokenize")
        wait(browser, lambda: len(rows(browser)) > 3)
        # a bad alpha: the message sits under the alpha field, the old figures are gone
        submit(browser, alpha=5000)
        wait(browser, lambda: browser.find_element(By.ID, "tok-alpha-error").text)
        assert "alpha" in browser.find_element(By.ID, "tok-alpha-error").text
        assert not result_shown(browser) and not rows(browser)
        assert browser.find_element(By.ID, "tok-alpha").get_attribute("aria-invalid") == "true"
        assert browser.find_element(By.ID, "tok-error").text == ""
        # over the sample cap: next to "samples"; the alpha message is gone
        submit(browser, alpha=0.3, samples=10**6)
        wait(browser, lambda: browser.find_element(By.ID, "tok-samples-error").text)
        assert browser.find_element(By.ID, "tok-alpha-error").text == ""
        # an empty text: next to the text box
        submit(browser, text="", samples=100)
        wait(browser, lambda: browser.find_element(By.ID, "tok-text-error").text)
        assert not result_shown(browser)
        # a negative seed: next to the seed
        seed = browser.find_element(By.ID, "tok-seed")
        seed.clear()
        seed.send_keys("-4")
        submit(browser, text="tokenization")
        wait(browser, lambda: browser.find_element(By.ID, "tok-seed-error").text)
        assert not result_shown(browser)
        # a good request clears every message and shows results again
        seed.clear()
        submit(browser)
        wait(browser, lambda: result_shown(browser) and len(rows(browser)) > 1)
        assert all(browser.find_element(By.ID, f"tok-{f}-error").text == ""
                   for f in ("text", "alpha", "samples", "seed"))
        # the console shows nothing but the expected 4xx answers
        for entry in browser.get_log("browser"):
            if entry["level"] == "SEVERE":
                assert "status of 422" in entry["message"] or "favicon" in entry["message"], entry


def test_tokenize_page_on_a_phone(live_server, browser):
    with viewport(browser, 390, 844):
        browser.get(live_server.url + "/tokenize")
        wait(browser, lambda: len(rows(browser)) > 3)
        assert painted(browser, "tok-boundaries") and painted(browser, "tok-chart")
        assert no_sideways_scroll(browser)
        # the controls are on the first screen
        bottom = browser.execute_script(
            "return document.getElementById('tok-run').getBoundingClientRect().bottom + window.scrollY;")
        assert bottom <= 844
        # long tokens and a long text still fit the width
        submit(browser, text="Internationalization and localization of extraordinarily long words: "
               "Pneumonoultramicroscopicsilicovolcanoconiosis, 我来到北京清华大学。" * 2, alpha=0.2, samples=500)
        wait(browser, lambda: result_shown(browser) and len(rows(browser)) > 3)
        assert painted(browser, "tok-boundaries")
        assert no_sideways_scroll(browser)
