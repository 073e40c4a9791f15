"""The MAD simulator page in real Chromium: form -> charts with theory, 2-D scatter, job path, errors."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def fill(browser, values: dict) -> None:
    for element_id, value in values.items():
        element = browser.find_element(By.ID, element_id)
        if element.tag_name == "select":
            Select(element).select_by_value(str(value))
        else:
            element.clear()
            element.send_keys(str(value))


def open_page(browser, live_server):
    browser.get(f"{live_server.url}/mad")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return typeof drawLineChart === 'function'"))


def wait_done(browser, timeout=20):
    WebDriverWait(browser, timeout).until(
        lambda b: b.find_element(By.ID, "mad-summary").get_attribute("data-done") == "1"
        or b.find_element(By.ID, "mad-error").is_displayed()
    )
    assert not browser.find_element(By.ID, "mad-error").is_displayed(), browser.find_element(By.ID, "mad-error").text


def canvas_has_ink(browser, canvas) -> bool:
    """Some pixel of the canvas is not white/transparent (the chart was really drawn)."""
    return browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (let i = 0; i < d.length; i += 4) { if (d[i+3] > 0 && (d[i] < 200 || d[i+1] < 200)) return true; }"
        "return false;",
        canvas,
    )


def test_gaussian_run_draws_metric_charts_with_theory(browser, live_server):
    open_page(browser, live_server)
    fill(browser, {"mad-dim": 3, "mad-lam": 0.8, "mad-n-ini": 20, "mad-n-synth": 20, "mad-generations": 6,
                   "mad-replicates": 8, "mad-n-eval": 100})
    browser.find_element(By.ID, "mad-run").click()
    wait_done(browser)
    canvases = browser.find_elements(By.CSS_SELECTOR, "#mad-charts canvas")
    metrics = [c.get_attribute("data-metric") for c in canvases]
    for name in ("fd", "trace_cov", "mean_err2", "logdet", "precision", "recall"):
        assert name in metrics
    trace = next(c for c in canvases if c.get_attribute("data-metric") == "trace_cov")
    assert canvas_has_ink(browser, trace)
    # The theory series is drawn in its own colour (#2f6690): look for it on the trace chart.
    assert browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (let i = 0; i < d.length; i += 4) { if (Math.abs(d[i]-47) < 12 && Math.abs(d[i+1]-102) < 12"
        " && Math.abs(d[i+2]-144) < 12) return true; } return false;",
        trace,
    )
    assert "6 generations" in browser.find_element(By.ID, "mad-summary").text
    assert not browser.find_element(By.ID, "mad-scatter-box").is_displayed()


def test_mixture_run_shows_scatter_per_generation(browser, live_server):
    open_page(browser, live_server)
    fill(browser, {"mad-model": "gmm", "mad-target": "ring", "mad-dim": 2, "mad-n-ini": 200, "mad-n-synth": 200,
                   "mad-generations": 3, "mad-replicates": 1, "mad-n-eval": 200})
    browser.find_element(By.ID, "mad-run").click()
    wait_done(browser)
    box = browser.find_element(By.ID, "mad-scatter-box")
    assert box.is_displayed()
    assert browser.find_element(By.ID, "mad-scatter-label").text == "t = 3"
    slider = browser.find_element(By.ID, "mad-scatter-t")
    browser.execute_script("arguments[0].value = 1; arguments[0].dispatchEvent(new Event('input'));", slider)
    assert browser.find_element(By.ID, "mad-scatter-label").text == "t = 1"
    assert canvas_has_ink(browser, browser.find_element(By.ID, "mad-scatter"))
    metrics = [c.get_attribute("data-metric") for c in browser.find_elements(By.CSS_SELECTOR, "#mad-charts canvas")]
    assert "modes_covered" in metrics


def test_large_run_goes_through_a_job_with_progress(browser, live_server):
    old = live_server.app.config["MAD_SYNC_MAX_WORK"]
    live_server.app.config["MAD_SYNC_MAX_WORK"] = 1.0
    try:
        open_page(browser, live_server)
        fill(browser, {"mad-dim": 2, "mad-n-ini": 20, "mad-n-synth": 20, "mad-generations": 5, "mad-replicates": 4})
        browser.find_element(By.ID, "mad-run").click()
        box = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, "#mad-progress .job-progress"))
        assert len(box.get_attribute("data-job-id")) == 32
        WebDriverWait(browser, 30).until(lambda b: box.get_attribute("data-status") == "done")
        wait_done(browser)
        assert browser.find_elements(By.CSS_SELECTOR, "#mad-charts canvas")
    finally:
        live_server.app.config["MAD_SYNC_MAX_WORK"] = old


def test_bad_input_shows_the_api_message(browser, live_server):
    open_page(browser, live_server)
    fill(browser, {"mad-n-synth": 30000})  # over MAD_MAX_SAMPLES: the API's 422 says so in the form's words
    browser.find_element(By.ID, "mad-run").click()
    error = browser.find_element(By.ID, "mad-error")
    WebDriverWait(browser, 10).until(lambda b: error.is_displayed())
    assert "30,000 synthetic samples (n_synth) is over the limit of 20,000" in error.text
    fill(browser, {"mad-n-synth": 20, "mad-target": "grid25", "mad-dim": 3})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: "2-D" in error.text)
    fill(browser, {"mad-target": "gaussian", "mad-dim": 2, "mad-cov": "[[1, <b>x</b>"})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: "not valid JSON" in error.text)
    assert not browser.find_elements(By.CSS_SELECTOR, "#mad-error b")  # shown as text, never as HTML


def test_effective_sample_size_is_shown_with_its_chart(browser, live_server):
    open_page(browser, live_server)
    fill(browser, {"mad-loop": "fresh_data", "mad-dim": 2, "mad-lam": 1, "mad-n-real": 100, "mad-n-synth": 100,
                   "mad-generations": 10, "mad-replicates": 16, "mad-n-eval": 100})
    browser.find_element(By.ID, "mad-effective").click()
    browser.find_element(By.ID, "mad-run").click()
    wait_done(browser)
    summary = browser.find_element(By.ID, "mad-summary").text
    assert "n_e ≈ " in summary and "n_e / n_real = " in summary
    chart = browser.find_element(By.CSS_SELECTOR, '#mad-charts canvas[data-metric="effective"]')
    assert canvas_has_ink(browser, chart)

    # Asked for with another loop: the API's message, and no stale summary.
    fill(browser, {"mad-loop": "fully_synthetic"})
    browser.find_element(By.ID, "mad-run").click()
    error = browser.find_element(By.ID, "mad-error")
    WebDriverWait(browser, 10).until(lambda b: error.is_displayed())
    assert "fresh_data loop only" in error.text
