"""The random tokenization page in real Chromium: chart, table, escaping, errors."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from backend.services.tokenize import get_model, warm_up


def wait(browser, predicate, timeout=20):
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda _d: predicate())


def rows(browser):
    return browser.find_elements(By.CSS_SELECTOR, "#tok-table tbody tr")


def chart_painted(browser) -> bool:
    return browser.execute_script(
        "const c = document.getElementById('tok-chart');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let colored = 0; for (let i = 0; i < d.length; i += 4) {"
        "  if (Math.abs(d[i] - d[i + 1]) > 40 || Math.abs(d[i + 1] - d[i + 2]) > 40) colored++; }"
        "return colored > 200;"
    )


def submit(browser, text=None, alpha=None, method=None, samples=None):
    if text is not None:
        box = browser.find_element(By.ID, "tok-text")
        box.clear()
        box.send_keys(text)
    if alpha is not None:
        field = browser.find_element(By.ID, "tok-alpha")
        field.clear()
        field.send_keys(str(alpha))
    if samples is not None:
        field = browser.find_element(By.ID, "tok-samples")
        field.clear()
        field.send_keys(str(samples))
    if method is not None:
        Select(browser.find_element(By.ID, "tok-method")).select_by_value(method)
    # bypass the browser's own min/max check so the server's validation is what we see
    browser.execute_script("document.getElementById('tok-form').noValidate = true;")
    browser.find_element(By.ID, "tok-run").click()


def test_tokenize_page_chart_table_and_errors(live_server, browser):
    # compile the kernels first (seconds in a fresh checkout) so no page wait depends on the JIT
    warm_up()
    get_model("default")
    browser.get(live_server.url + "/tokenize")
    # the page samples its example on load
    wait(browser, lambda: len(rows(browser)) > 3)
    assert chart_painted(browser)
    summary = browser.find_element(By.ID, "tok-summary").text
    assert "2000 samples" in summary and "Chi-square" in summary
    first = rows(browser)[0].find_elements(By.TAG_NAME, "td")
    assert "".join(s.text for s in first[1].find_elements(By.TAG_NAME, "span")) == "unbelievable"
    assert 0 < float(first[3].text) <= 1 and 0 < float(first[4].text) <= 1

    # markup in the text stays text
    submit(browser, text="<b>bold</b>", alpha=-1)
    wait(browser, lambda: len(rows(browser)) == 1)
    assert not browser.find_elements(By.CSS_SELECTOR, "#tok-table b")
    tokens = rows(browser)[0].find_elements(By.CSS_SELECTOR, "td.tokens span")
    assert "".join(t.get_attribute("textContent") for t in tokens) == "<b>bold</b>"
    assert float(rows(browser)[0].find_elements(By.TAG_NAME, "td")[4].text) == 1.0

    # the legacy sampler on a longer text: the page reports the mismatch
    submit(browser, text="internationalization", alpha=0.5, method="legacy-sample", samples=20000)
    wait(browser, lambda: "do not follow the exact law" in browser.find_element(By.ID, "tok-summary").text, 60)

    # a bad alpha comes back as the server's message
    submit(browser, alpha=5000)
    wait(browser, lambda: "alpha" in browser.find_element(By.ID, "tok-error").text)
