"""The jobs page in real Chromium: start a job, live progress, result, failure, cancel, escaping."""

from __future__ import annotations

import json

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def open_page(browser, live_server):
    browser.get(f"{live_server.url}/jobs")
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "job-params").get_attribute("value"))
    Select(browser.find_element(By.ID, "job-kind")).select_by_value("jobs.demo_sleep")


def start(browser, params: dict) -> None:
    box = browser.find_element(By.ID, "job-params")
    box.clear()
    box.send_keys(json.dumps(params))
    browser.find_element(By.ID, "job-start").click()


def progress_box(browser):
    return WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, "#job-current .job-progress"))


def test_job_runs_with_live_progress_and_shows_result(browser, live_server):
    open_page(browser, live_server)
    start(browser, {"steps": 12, "step_s": 0.2})
    box = progress_box(browser)
    job_id = box.get_attribute("data-job-id")
    assert len(job_id) == 32
    fill = box.find_element(By.CSS_SELECTOR, ".progress > div")

    # Live: the bar is seen part-way (not 0, not full) while the job runs.
    def partway(_):
        width = fill.value_of_css_property("width")
        percent = box.find_element(By.CSS_SELECTOR, ".progress").get_attribute("aria-valuenow")
        return percent and 0 < int(percent) < 100 and width != "0px"

    WebDriverWait(browser, 10, poll_frequency=0.05).until(partway)
    assert box.find_element(By.CSS_SELECTOR, ".job-message").text.startswith("step ")

    WebDriverWait(browser, 15).until(lambda b: box.get_attribute("data-status") == "done")
    assert box.find_element(By.CSS_SELECTOR, ".progress").get_attribute("aria-valuenow") == "100"
    result = browser.find_element(By.ID, "job-result")
    assert result.is_displayed()
    assert json.loads(result.text) == {"steps": 12, "slept_s": 2.4, "payload": ""}

    # The list shows it as done, and its Result button shows the stored result.
    row = WebDriverWait(browser, 5).until(
        lambda b: b.find_element(By.CSS_SELECTOR, f'#jobs-table tr[data-job-id="{job_id}"][data-status="done"]')
    )
    # A refresh keeps a row whose job did not change (the same node), so the click cannot miss.
    browser.execute_script("arguments[0].dataset.seen = '1'", row)
    tbody = browser.find_element(By.CSS_SELECTOR, "#jobs-table tbody")
    seen_refreshes = int(tbody.get_attribute("data-refreshes"))
    WebDriverWait(browser, 5).until(lambda b: int(tbody.get_attribute("data-refreshes")) >= seen_refreshes + 2)
    assert row.get_attribute("data-seen") == "1"
    row.find_element(By.CSS_SELECTOR, ".job-row-result").click()
    detail = browser.find_element(By.ID, "job-detail-body")
    WebDriverWait(browser, 5).until(lambda b: detail.text.startswith("{"))
    assert json.loads(detail.text)["steps"] == 12


def test_failure_and_cancel_are_shown(browser, live_server):
    open_page(browser, live_server)
    start(browser, {"steps": 5, "step_s": 0.05, "fail_at": 2})
    box = progress_box(browser)
    WebDriverWait(browser, 10).until(lambda b: box.get_attribute("data-status") == "failed")
    message = box.find_element(By.CSS_SELECTOR, ".job-message").text
    assert message == "RuntimeError: demo failure at step 2, as requested"
    assert not browser.find_element(By.ID, "job-result").is_displayed()

    start(browser, {"steps": 300, "step_s": 0.05})
    # the page replaces the progress box when the new job starts: re-find it on every poll
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "#job-current .job-status").text.endswith("%")
    )
    box = browser.find_element(By.CSS_SELECTOR, "#job-current .job-progress")
    box.find_element(By.CSS_SELECTOR, ".job-cancel").click()
    WebDriverWait(browser, 10).until(lambda b: box.get_attribute("data-status") == "cancelled")
    assert box.find_element(By.CSS_SELECTOR, ".job-message").text == "cancelled while running"
    assert not box.find_elements(By.CSS_SELECTOR, ".job-cancel")


def test_bad_params_are_reported_and_escaped(browser, live_server):
    open_page(browser, live_server)
    start(browser, {"steps": 0})
    error = browser.find_element(By.ID, "job-form-error")
    WebDriverWait(browser, 5).until(lambda b: error.is_displayed())
    assert error.text == "steps must be at least 1, not 0"

    box = browser.find_element(By.ID, "job-params")
    box.clear()
    box.send_keys("{not json")
    browser.find_element(By.ID, "job-start").click()
    WebDriverWait(browser, 5).until(lambda b: error.text.startswith("Params are not valid JSON"))

    # A kind the server does not know, carrying markup: the message shows it as text.
    browser.execute_script(
        "const s = document.getElementById('job-kind');"
        "s.add(new Option('x', '<img src=x onerror=window.pwned=1>')); s.value = s.options[s.options.length-1].value;"
    )
    box.clear()
    box.send_keys("{}")
    browser.find_element(By.ID, "job-start").click()
    WebDriverWait(browser, 5).until(lambda b: "there is no job kind" in error.text)
    assert "<img src=x onerror=window.pwned=1>" in error.text
    assert not error.find_elements(By.TAG_NAME, "img")
    assert browser.execute_script("return window.pwned === undefined")
