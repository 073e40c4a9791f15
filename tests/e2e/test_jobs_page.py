"""The jobs page in real Chromium: start a job, live progress, result, failure, cancel, escaping."""

from __future__ import annotations

import json
import time

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


def test_bad_params_are_reported_next_to_the_field_and_escaped(browser, live_server):
    open_page(browser, live_server)
    start(browser, {"steps": 2, "step_s": 0.05})
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "job-result").is_displayed())
    browser.get_log("browser")

    start(browser, {"steps": 0})
    error = browser.find_element(By.ID, "job-params-error")
    WebDriverWait(browser, 5).until(lambda b: error.is_displayed())
    assert error.text == "steps must be at least 1, not 0"  # the user's words: no "params field 'params.steps'"
    box = browser.find_element(By.ID, "job-params")
    assert box.get_attribute("aria-invalid") == "true"
    # the last job's progress and result are gone: nothing stale under a refused request
    assert not browser.find_element(By.ID, "job-result").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#job-current .job-progress") == []
    below = browser.execute_script("return arguments[0].getBoundingClientRect().top - "
                                   "arguments[1].getBoundingClientRect().bottom", error, box)
    assert 0 <= below < 40  # right under the params box
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "/api/jobs" not in e["message"]] == []

    for text, said in [("{not json", "The params are not valid JSON"), ("[1, 2]", "The params are a JSON object"),
                       ('{"steps": 3, "bogus": 1}', "bogus is not a field of this request; remove it"),
                       ('{"steps": 100000}', "steps must be at most 1,000, not 100,000")]:
        box.clear()
        box.send_keys(text)
        assert not error.is_displayed()  # typing clears the old message
        browser.find_element(By.ID, "job-start").click()
        WebDriverWait(browser, 5).until(lambda b, said=said: error.text.startswith(said))

    # A kind the server does not know, carrying markup: said next to the kind, as text.
    browser.execute_script(
        "const s = document.getElementById('job-kind');"
        "s.add(new Option('x', '<img src=x onerror=window.pwned=1>')); s.value = s.options[s.options.length-1].value;"
    )
    box.clear()
    box.send_keys("{}")
    browser.find_element(By.ID, "job-start").click()
    kind_error = browser.find_element(By.ID, "job-kind-error")
    WebDriverWait(browser, 5).until(lambda b: "there is no job kind" in kind_error.text)
    assert "<img src=x onerror=window.pwned=1>" in kind_error.text
    assert not kind_error.find_elements(By.TAG_NAME, "img")
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.find_element(By.ID, "job-kind").get_attribute("aria-invalid") == "true"
    browser.get_log("browser")  # the expected 422s stay here, not in the next test's console check


def test_started_shows_the_date_in_the_viewers_zone(browser, live_server):
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    try:
        open_page(browser, live_server)
        start(browser, {"steps": 1, "step_s": 0.05})
        cell = WebDriverWait(browser, 10).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#jobs-table tbody tr:first-child td[data-label=Started] time"))
        stamp = cell.get_attribute("datetime")
        expected = browser.execute_script("return formatTime(arguments[0])", stamp)
        assert cell.text == expected and str(time.gmtime().tm_year) in cell.text
        assert ("EST" in cell.text or "EDT" in cell.text or "GMT-" in cell.text)
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_a_finished_mad_job_reopens_as_charts_on_the_mad_page(browser, live_server):
    open_page(browser, live_server)
    Select(browser.find_element(By.ID, "job-kind")).select_by_value("mad.simulate")
    params = {"model": "gaussian", "target": "gaussian", "dim": 2, "loop": "fully_synthetic", "n_ini": 40,
              "n_synth": 40, "generations": 4, "replicates": 2, "n_eval": 100, "seed": 3}
    start(browser, params)
    link = WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "job-view-link")
                                            if b.find_element(By.ID, "job-view").is_displayed() else None)
    assert "Self-consuming loops" in link.text
    row_link = WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "#jobs-table tbody tr:first-child a.job-row-view"))
    assert row_link.get_attribute("href") == link.get_attribute("href")
    job_id = browser.find_element(By.CSS_SELECTOR, "#jobs-table tbody tr:first-child").get_attribute("data-job-id")
    assert f"/mad?job={job_id}&key=" in link.get_attribute("href")

    browser.execute_script("localStorage.clear()")  # the key in the link is all it takes
    browser.get(link.get_attribute("href"))
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "mad-results").is_displayed())
    charts = browser.find_elements(By.CSS_SELECTOR, "#mad-charts canvas")
    assert charts and browser.execute_script(
        "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (let i = 3; i < d.length; i += 4) if (d[i] && (d[i-1] < 250 || d[i-2] < 250)) return true; return false;",
        charts[0])
    assert browser.find_element(By.ID, "mad-generations").get_attribute("value") == "4"  # the run's own settings
    assert browser.find_element(By.ID, "mad-seed").get_attribute("value") == "3"
    assert not browser.find_element(By.ID, "mad-error").is_displayed()


def test_a_job_link_with_a_wrong_key_says_so_on_the_mad_page(browser, live_server):
    browser.get(f"{live_server.url}/mad?job={'0' * 32}&key=wrong")
    error = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "mad-error")
                                             if b.find_element(By.ID, "mad-error").is_displayed() else None)
    assert error.text
    assert not browser.find_element(By.ID, "mad-results").is_displayed()
    browser.get_log("browser")  # the expected 404 stays here, not in the next test's console check
