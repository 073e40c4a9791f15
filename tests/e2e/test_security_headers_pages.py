"""Every page under the Content-Security-Policy in real Chromium: its scripts run (nonces), nothing is refused,
and no other site can frame a page (the stove's buttons)."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import CHROMEDRIVER, chrome_options

PAGES = ["/", "/stove", "/jobs", "/tokenize", "/continuation", "/attention", "/matrix", "/mad", "/papers",
         "/api/docs", "/arxiv/cs.CV"]


@pytest.fixture(scope="module")
def logged_browser():
    profile = tempfile.mkdtemp(prefix="chromium-csp-")
    options = chrome_options([f"--user-data-dir={profile}"])
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _csp_messages(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


@pytest.mark.parametrize("path", PAGES)
def test_page_scripts_run_under_the_policy(logged_browser, live_server, path):
    driver = logged_browser
    driver.get("about:blank")
    driver.get_log("browser")  # drop earlier entries
    driver.get(live_server.url + path)
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")
    # The shared script loaded, and the page's own inline script (carrying the nonce) ran: it is the last script,
    # so a marker it cannot have set otherwise is the document having finished without a refusal in the log.
    assert driver.execute_script("return typeof window.api === 'object'")
    driver.execute_script("return 1")
    assert _csp_messages(driver) == [], path


def test_inline_script_without_the_nonce_is_refused(logged_browser, live_server):
    driver = logged_browser
    driver.get(live_server.url + "/")
    driver.get_log("browser")
    driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        "document.body.appendChild(s);")
    assert driver.execute_script("return window.injected === undefined")  # it did not run
    seen: list[str] = []
    WebDriverWait(driver, 5).until(lambda d: seen.extend(_csp_messages(d)) or seen)
    assert any("Content Security Policy" in m for m in seen), seen


def test_no_page_can_be_framed(logged_browser, live_server, tmp_path):
    framing = tmp_path / "framing.html"
    framing.write_text(f'<iframe id="f" src="{live_server.url}/stove" width="400" height="300"></iframe>')
    driver = logged_browser
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get(framing.as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
    frame = driver.find_element("id", "f")
    driver.switch_to.frame(frame)
    framed_buttons = driver.execute_script("return document.querySelectorAll('button').length")
    driver.switch_to.default_content()
    assert framed_buttons == 0  # the stove page did not render inside another site's frame
