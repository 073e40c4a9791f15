"""The continuation page in real Chromium: naive and fixed side by side, the candidate chart drawn."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def _done(browser, n: int) -> None:
    def count(b) -> int:
        return int(b.find_element(By.TAG_NAME, "body").get_attribute("data-done") or 0)

    WebDriverWait(browser, 20).until(lambda b: count(b) >= n)


def test_page_shows_naive_and_fixed_side_by_side(live_server, browser):
    browser.get(live_server.url + "/continuation")
    _done(browser, 1)  # the page continues its default prompt on load
    fixed = browser.find_element(By.ID, "side-fixed")
    naive = browser.find_element(By.ID, "side-naive")
    assert fixed.find_element(By.CSS_SELECTOR, ".removed").text == "白云"
    assert not naive.find_elements(By.CSS_SELECTOR, ".removed")
    # the chart holds one bar per listed candidate (plus "others" when some are not listed)
    assert int(fixed.find_element(By.CSS_SELECTOR, "canvas").get_attribute("data-bars")) >= 2
    blank = browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false; return true;",
        fixed.find_element(By.CSS_SELECTOR, "canvas"))
    assert not blank

    # An English example, chosen by its button: the fix finishes the word, naive does not.
    browser.find_element(By.CSS_SELECTOR, 'button.example[data-prompt="Return the number of by"]').click()
    _done(browser, 2)
    assert fixed.find_element(By.CSS_SELECTOR, ".new").text.startswith("tes")
    assert not naive.find_element(By.CSS_SELECTOR, ".new").text.startswith("tes")


def test_untrusted_prompt_is_shown_as_text_and_errors_are_shown(live_server, browser):
    browser.get(live_server.url + "/continuation")
    _done(browser, 1)
    box = browser.find_element(By.ID, "cont-prompt")
    box.clear()
    box.send_keys("<img src=x onerror=alert(1)>")
    browser.find_element(By.ID, "cont-run").click()
    _done(browser, 2)
    kept = browser.find_element(By.CSS_SELECTOR, "#side-naive .kept").text
    assert kept.startswith("<img")
    assert not browser.find_elements(By.CSS_SELECTOR, "#side-naive img")
    # a bad field comes back as the API's 422 message
    browser.execute_script("document.getElementById('cont-max').value = '100000'")
    browser.find_element(By.ID, "cont-run").click()
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "cont-error").is_displayed())
    assert "100,000 new tokens is over the limit of 64 new tokens" in browser.find_element(By.ID, "cont-error").text
