"""The stove page in real Chromium: token handling, live countdown, buttons, errors, audit log."""

from __future__ import annotations

import re

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from backend.services.stove.blueprint import get_service

FAST = {"STOVE_CUT_HOLD_S": 0.4, "STOVE_VALVE_RELEASE_S": 0.1, "STOVE_SIM_RELEASE_S": 0.1, "STOVE_POLL_S": 0.05,
        "STOVE_RETRY_BASE_S": 0.02, "STOVE_RETRY_MAX_S": 0.05}


@pytest.fixture
def stove_page(live_server, browser):
    app = live_server.app
    if "service" not in app.extensions.get("stove", {}):
        app.config.update(FAST)  # only the stove's own keys, before its service is built
    service = get_service(app)
    token = app.extensions["stove"]["token"]
    browser.get(live_server.url + "/stove")
    browser.execute_script("sessionStorage.clear()")
    browser.get(live_server.url + "/stove")
    return browser, token, service


def card(browser, burner):
    return browser.find_element(By.CSS_SELECTOR, f'[data-burner="{burner}"]')


def field(browser, burner, name):
    return card(browser, burner).find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text


def click(browser, burner, action):
    card(browser, burner).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()


def wait(browser, predicate, timeout=10):
    # cards are updated in place, but the alert and audit lists are rebuilt: a read may catch the swap
    return WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda _d: predicate())


def feedback(browser):
    return browser.find_element(By.ID, "stove-feedback").text


def test_stove_page_token_countdown_buttons_and_audit(stove_page):
    browser, token, service = stove_page
    assert token not in browser.page_source
    wait(browser, lambda: field(browser, "left", "state") == "READY")
    assert "flame state unknown" in field(browser, "left", "message")

    # No token yet: nothing is sent, the page asks for it.
    click(browser, "left", "shutoff")
    wait(browser, lambda: "Enter the API token first" in feedback(browser))

    # A wrong token is refused by the server and the page says so.
    browser.find_element(By.ID, "stove-token").send_keys("not-the-token")
    browser.find_element(By.ID, "token-save").click()
    click(browser, "left", "cancel")
    wait(browser, lambda: "bearer token is not valid" in feedback(browser))

    browser.find_element(By.ID, "token-forget").click()
    browser.find_element(By.ID, "stove-token").send_keys(token)
    browser.find_element(By.ID, "token-save").click()
    assert browser.execute_script("return sessionStorage.getItem('stoveApiToken')") == token
    # Never persisted: no local-storage entry holds it (other pages keep their own entries there, e.g. /jobs).
    stored = browser.execute_script("return Object.keys(localStorage).map((k) => localStorage.getItem(k))")
    assert not [value for value in stored if token in value]
    assert browser.find_element(By.ID, "stove-token").get_attribute("value") == ""
    assert token not in browser.page_source

    # Bad duration: the 422 message is shown.
    minutes = card(browser, "left").find_element(By.CSS_SELECTOR, '[data-field="minutes"]')
    minutes.clear()
    minutes.send_keys("0")
    click(browser, "left", "arm")
    wait(browser, lambda: "minutes must be more than 0" in feedback(browser))

    # Arm 10 minutes: the state changes and the countdown runs.
    minutes.clear()
    minutes.send_keys("10")
    click(browser, "left", "arm")
    wait(browser, lambda: field(browser, "left", "state") == "TIMER_ARMED")
    first = field(browser, "left", "countdown")
    assert re.fullmatch(r"(10:00|09:5\d)", first), first
    wait(browser, lambda: field(browser, "left", "countdown") != first, timeout=5)
    assert service.store.get_burner("left").timer_deadline is not None

    click(browser, "left", "cancel")
    wait(browser, lambda: field(browser, "left", "state") == "READY" and field(browser, "left", "countdown") == "--:--")

    # Shut off: "cut delivered at T", never "flame off"; the audit log shows who did it.
    click(browser, "right", "shutoff")
    wait(browser, lambda: "cut delivered at" in field(browser, "right", "message"))
    assert "off" not in field(browser, "right", "message").replace("cut", "").lower().split("(")[0]
    wait(browser, lambda: field(browser, "right", "state") == "READY")
    # The page reloads the audit table after each action: read it whole, in one script, until the entry shows.
    def audit_has_the_cut():
        texts = browser.execute_script(
            "return [...document.querySelectorAll('#audit tbody tr')].map((tr) => tr.innerText)")
        return any("stove page" in t and "cut delivered at" in t for t in texts)

    wait(browser, audit_has_the_cut, timeout=5)


def test_stove_page_shows_fault_and_alert(stove_page):
    browser, token, service = stove_page
    browser.find_element(By.ID, "stove-token").send_keys(token)
    browser.find_element(By.ID, "token-save").click()
    wait(browser, lambda: field(browser, "left", "state") in ("READY", "TIMER_ARMED"))
    service.adapter.stove.set_stuck("left", "conducting")
    try:
        click(browser, "left", "shutoff")
        wait(browser, lambda: "shutoff NOT delivered" in feedback(browser), timeout=20)
        wait(browser, lambda: field(browser, "left", "state") == "FAULT")
        assert "gas may still be flowing" in field(browser, "left", "message")
        wait(browser, lambda: "NOT delivered" in browser.find_element(By.ID, "alerts").text)
    finally:
        service.adapter.stove.set_stuck("left", None)
    click(browser, "left", "restore")
    wait(browser, lambda: field(browser, "left", "state") == "READY")
