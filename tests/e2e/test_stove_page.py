"""The stove page in real Chromium, at 1280 px and on a 390 px phone: the token checked when entered, buttons
disabled with a reason, live countdown, "Shut off at HH:MM" kept after a cut, errors, the watchdog banner,
the audit log."""

from __future__ import annotations

import re
import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from backend.services.stove.blueprint import get_service

FAST = {"STOVE_CUT_HOLD_S": 0.4, "STOVE_VALVE_RELEASE_S": 0.1, "STOVE_SIM_RELEASE_S": 0.1, "STOVE_POLL_S": 0.05,
        "STOVE_RETRY_BASE_S": 0.02, "STOVE_RETRY_MAX_S": 0.05, "STOVE_LEASE_S": 0.4}


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
    yield browser, token, service
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def card(browser, burner):
    return browser.find_element(By.CSS_SELECTOR, f'[data-burner="{burner}"]')


def field(browser, burner, name):
    return card(browser, burner).find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text


def button(browser, burner, action):
    return card(browser, burner).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]')


def click(browser, burner, action):
    button(browser, burner, action).click()


def wait(browser, predicate, timeout=10):
    # cards are updated in place, but the alert and audit lists are rebuilt: a read may catch the swap
    return WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda _d: predicate())


def feedback(browser):
    return browser.find_element(By.ID, "stove-feedback").text


def enter_token(browser, value):
    box = browser.find_element(By.ID, "stove-token")
    box.clear()
    box.send_keys(value)
    browser.find_element(By.ID, "token-save").click()


def token_status(browser):
    return browser.find_element(By.ID, "token-status").text


def test_stove_page_token_countdown_buttons_and_audit(stove_page, live_server):
    browser, token, service = stove_page
    assert token not in browser.page_source
    wait(browser, lambda: field(browser, "left", "state") == "READY")
    assert "flame state unknown" in field(browser, "left", "message")
    # the page says where the generated token is
    where = browser.find_element(By.ID, "token-where").text
    token_file = live_server.app.extensions["stove"]["token_source"]
    assert f"it is in {token_file} on the server (for example cat {token_file})" in where

    # No token yet: every button is disabled, and the card says why.
    assert all(not button(browser, "left", a).is_enabled() for a in ("shutoff", "arm", "cancel", "restore"))
    assert "Enter the API token" in field(browser, "left", "reasons")

    # A wrong token is checked when entered, refused, and not kept.
    enter_token(browser, "not-the-token-at-all")
    wait(browser, lambda: "token refused: the bearer token is not valid" in token_status(browser))
    assert browser.execute_script("return sessionStorage.getItem('stoveApiToken')") is None
    assert not button(browser, "left", "shutoff").is_enabled()

    enter_token(browser, token)
    wait(browser, lambda: token_status(browser) == "shared token accepted")
    assert browser.execute_script("return sessionStorage.getItem('stoveApiToken')") == token
    # Never persisted: no local-storage entry holds it (other pages keep their own entries there, e.g. /jobs).
    stored = browser.execute_script("return Object.keys(localStorage).map((k) => localStorage.getItem(k))")
    assert not [value for value in stored if token in value]
    assert browser.find_element(By.ID, "stove-token").get_attribute("value") == ""
    assert token not in browser.page_source
    wait(browser, lambda: button(browser, "left", "shutoff").is_enabled())
    # Cancel cannot act without a timer: disabled, with the reason shown.
    assert not button(browser, "left", "cancel").is_enabled()
    assert "Cancel timer: no timer armed." in field(browser, "left", "reasons")

    # Bad duration: the 422 message is shown.
    minutes = card(browser, "left").find_element(By.CSS_SELECTOR, '[data-field="minutes"]')
    minutes.clear()
    minutes.send_keys("0")
    click(browser, "left", "arm")
    wait(browser, lambda: "minutes must be more than 0" in feedback(browser))

    # Arm 10 minutes: the state changes and the countdown runs; cancel becomes possible.
    minutes.clear()
    minutes.send_keys("10")
    wait(browser, lambda: button(browser, "left", "arm").is_enabled())
    click(browser, "left", "arm")
    wait(browser, lambda: field(browser, "left", "state") == "TIMER_ARMED")
    first = field(browser, "left", "countdown")
    assert re.fullmatch(r"(10:00|09:5\d)", first), first
    wait(browser, lambda: field(browser, "left", "countdown") != first, timeout=5)
    assert service.store.get_burner("left").timer_deadline is not None
    wait(browser, lambda: button(browser, "left", "cancel").is_enabled())
    assert "Timer armed by stove page (127.0.0.1)" in field(browser, "left", "message")

    click(browser, "left", "cancel")
    wait(browser, lambda: field(browser, "left", "state") == "READY" and field(browser, "left", "countdown") == "--:--")

    # Shut off: "cut delivered at T", never "flame off"; the card keeps "Shut off at HH:MM" (local time).
    click(browser, "right", "shutoff")
    wait(browser, lambda: "cut delivered at" in field(browser, "right", "message"))
    assert "off" not in field(browser, "right", "message").replace("cut", "").lower().split("(")[0]
    wait(browser, lambda: field(browser, "right", "state") == "READY")
    cut_at = service.store.get_burner("right").last_cut_at
    local = browser.execute_script(
        "const d = new Date(arguments[0] * 1000); return String(d.getHours()).padStart(2, '0') + ':' + "
        "String(d.getMinutes()).padStart(2, '0');", cut_at)
    assert field(browser, "right", "shutoff-at") == f"Shut off at {local}"
    time.sleep(1.2)  # it stays through refreshes ...
    assert field(browser, "right", "shutoff-at") == f"Shut off at {local}"
    # ... until the next action on that burner
    card(browser, "right").find_element(By.CSS_SELECTOR, '[data-field="minutes"]').clear()
    card(browser, "right").find_element(By.CSS_SELECTOR, '[data-field="minutes"]').send_keys("5")
    click(browser, "right", "arm")
    wait(browser, lambda: field(browser, "right", "state") == "TIMER_ARMED" and field(browser, "right", "shutoff-at") == "")
    click(browser, "right", "cancel")
    wait(browser, lambda: field(browser, "right", "state") == "READY")

    # The page reloads the audit table after each action: read it whole, in one script, until the entry shows.
    def audit_has_the_cut():
        texts = browser.execute_script(
            "return [...document.querySelectorAll('#audit tbody tr')].map((tr) => tr.innerText)")
        return any("stove page" in t and "cut delivered at" in t for t in texts)

    wait(browser, audit_has_the_cut, timeout=5)


def test_stove_page_shows_fault_and_alert(stove_page):
    browser, token, service = stove_page
    enter_token(browser, token)
    wait(browser, lambda: token_status(browser) == "shared token accepted")
    wait(browser, lambda: field(browser, "left", "state") in ("READY", "TIMER_ARMED"))
    service.adapter.stove.set_stuck("left", "conducting")
    try:
        wait(browser, lambda: button(browser, "left", "shutoff").is_enabled())
        click(browser, "left", "shutoff")
        wait(browser, lambda: "shutoff NOT delivered" in feedback(browser), timeout=20)
        wait(browser, lambda: field(browser, "left", "state") == "FAULT")
        assert "gas may still be flowing" in field(browser, "left", "message")
        wait(browser, lambda: "NOT delivered" in browser.find_element(By.ID, "alerts").text)
        assert "requested by stove page (127.0.0.1)" in browser.find_element(By.ID, "alerts").text
    finally:
        service.adapter.stove.set_stuck("left", None)
    wait(browser, lambda: button(browser, "left", "restore").is_enabled())
    click(browser, "left", "restore")
    wait(browser, lambda: field(browser, "left", "state") == "READY")


def test_stove_page_red_banner_when_no_scheduler_renews_the_lease(stove_page, live_server):
    browser, _token, service = stove_page
    banner = browser.find_element(By.ID, "watchdog-banner")
    wait(browser, lambda: not banner.is_displayed())
    # No scheduler anywhere: this process stops its own and, like a web worker with STOVE_SCHEDULER=0,
    # does not start it again on the next request.
    live_server.app.config["STOVE_SCHEDULER"] = False
    service.scheduler.stop()
    try:
        wait(browser, lambda: banner.is_displayed() and "Timers may not fire" in banner.text, timeout=10)
        assert banner.value_of_css_property("background-color") in ("rgba(180, 35, 24, 1)", "rgb(180, 35, 24)")
        assert "no scheduler holds the lease" in banner.text
    finally:
        live_server.app.config["STOVE_SCHEDULER"] = True
        service.start()
    wait(browser, lambda: not banner.is_displayed(), timeout=10)


def test_stove_page_on_a_390_px_phone_has_the_controls_on_the_first_screen(stove_page, live_server):
    browser, token, _service = stove_page
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
    browser.get(live_server.url + "/stove")
    browser.execute_script("sessionStorage.setItem('stoveApiToken', arguments[0])", token)
    browser.get(live_server.url + "/stove")
    wait(browser, lambda: field(browser, "right", "state") in ("READY", "TIMER_ARMED"))
    wait(browser, lambda: button(browser, "right", "shutoff").is_enabled())
    assert browser.execute_script("return window.innerWidth") == 390
    boxes = browser.execute_script("""
        return [...document.querySelectorAll('[data-burner] button, [data-burner] input')].map((el) => {
          const r = el.getBoundingClientRect();
          return {what: el.closest('[data-burner]').dataset.burner + ' ' + (el.dataset.action || el.dataset.field),
                  top: r.top, bottom: r.bottom, left: r.left, right: r.right};
        });""")
    height = browser.execute_script("return window.innerHeight")
    assert len(boxes) == 10
    for box in boxes:
        assert box["bottom"] <= height, f"{box['what']} is below the first screen ({box['bottom']} > {height})"
        assert box["left"] >= 0 and box["right"] <= 390, f"{box['what']} sticks out sideways"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    click(browser, "right", "shutoff")
    wait(browser, lambda: field(browser, "right", "shutoff-at").startswith("Shut off at "), timeout=15)
