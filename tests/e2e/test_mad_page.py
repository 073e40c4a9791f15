"""The MAD simulator page in real Chromium: form -> charts with theory, 2-D scatter, job path, errors."""

from __future__ import annotations

import pytest
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


def field_error(browser, name):
    """The message shown under the control named ``name`` (None when there is none)."""
    notes = browser.find_elements(By.CSS_SELECTOR, f'#mad-form [name="{name}"] ~ .field-error')
    return notes[0].text if notes else None


def test_bad_input_shows_the_api_message_next_to_the_field(browser, live_server):
    open_page(browser, live_server)
    fill(browser, {"mad-n-synth": 30000})  # over MAD_MAX_SAMPLES: the 422 says so in the form's words, by the field
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: field_error(b, "n_synth"))
    assert "30,000 synthetic samples (n_synth) is over the limit of 20,000" in field_error(browser, "n_synth")
    assert "MAD_MAX_SAMPLES" not in field_error(browser, "n_synth")  # the setting's name is not the user's word
    assert browser.find_element(By.ID, "mad-n-synth").get_attribute("aria-invalid") == "true"
    assert not browser.find_element(By.ID, "mad-error").is_displayed()
    fill(browser, {"mad-n-synth": 20, "mad-target": "grid25", "mad-dim": 3})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: field_error(b, "dim") and "2-D" in field_error(b, "dim"))
    assert field_error(browser, "n_synth") is None  # the previous message is gone
    assert browser.find_element(By.ID, "mad-n-synth").get_attribute("aria-invalid") is None
    fill(browser, {"mad-target": "gaussian", "mad-dim": 2, "mad-cov": "[[1, <b>x</b>"})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: "not valid JSON" in (field_error(b, "target_cov") or ""))
    assert not browser.find_elements(By.CSS_SELECTOR, "#mad-form .field-error b")  # shown as text, never as HTML
    fill(browser, {"mad-cov": "[[1, 2], [2, 1]]"})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: "positive semi-definite" in (field_error(b, "target_cov") or ""))


def test_a_failed_run_clears_the_previous_charts(browser, live_server):
    open_page(browser, live_server)
    fill(browser, {"mad-dim": 2, "mad-n-ini": 20, "mad-n-synth": 20, "mad-generations": 3, "mad-replicates": 4,
                   "mad-n-eval": 50})
    browser.find_element(By.ID, "mad-run").click()
    wait_done(browser)
    assert browser.find_elements(By.CSS_SELECTOR, "#mad-charts canvas")
    fill(browser, {"mad-replicates": 0})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: field_error(b, "replicates"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#mad-charts canvas")
    assert not browser.find_element(By.ID, "mad-results").is_displayed()
    assert browser.find_element(By.ID, "mad-summary").text == ""


def overlaps(a, b) -> bool:
    return a["left"] < b["right"] - 1 and b["left"] < a["right"] - 1 and a["top"] < b["bottom"] - 1 and (
        b["top"] < a["bottom"] - 1)


LAYOUT = """
const rect = (el) => { const r = el.getBoundingClientRect();
  return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
const fields = [...document.querySelectorAll('#mad-form .field')].filter((f) => !f.hidden);
const out = {fields: fields.map((f) => ({name: f.querySelector('input,select,textarea').name, box: rect(f),
  parts: [...f.children].filter((c) => c.tagName !== 'P').map(rect)}))};
// Each select is wide enough for its longest option (text measured in the select's own font, plus its arrow).
const ctx = document.createElement('canvas').getContext('2d');
out.selects = [...document.querySelectorAll('#mad-form select')].map((s) => {
  ctx.font = getComputedStyle(s).font;
  const need = Math.max(...[...s.options].map((o) => ctx.measureText(o.text).width));
  return {name: s.name, need: need, have: s.clientWidth - 28};
});
// Subscripts stay next to their letter: the gap between "n" and its <sub> is under 3 px.
out.subs = [...document.querySelectorAll('#mad-form sub')].map((sub) => {
  const range = document.createRange(); const text = sub.previousSibling;
  range.setStart(text, text.length - 1); range.setEnd(text, text.length);
  return sub.getBoundingClientRect().left - range.getBoundingClientRect().right;
});
out.scroll = [document.documentElement.scrollWidth, document.documentElement.clientWidth];
return out;
"""


def check_layout(browser) -> None:
    layout = browser.execute_script(LAYOUT)
    fields = layout["fields"]
    for i, a in enumerate(fields):
        for part in a["parts"]:  # the name and the control stay inside their own cell
            assert part["left"] >= a["box"]["left"] - 1 and part["right"] <= a["box"]["right"] + 1, a["name"]
        for b in fields[i + 1 :]:
            assert not overlaps(a["box"], b["box"]), (a["name"], b["name"])
    for s in layout["selects"]:
        assert s["need"] <= s["have"], s
    assert layout["subs"] and all(abs(gap) < 3 for gap in layout["subs"]), layout["subs"]
    assert layout["scroll"][0] <= layout["scroll"][1], layout["scroll"]  # no sideways scroll


def test_page_says_which_mechanisms_and_heuristics_are_ours(browser, live_server):
    open_page(browser, live_server)
    hint = browser.find_element(By.CSS_SELECTOR, "p.hint").text
    assert "mechanism is our choice" in hint  # lambda for the GMM and the KDE
    assert "is ours" in hint and "not the paper's" in hint  # the n_s* rule of thumb


def test_form_layout_at_1280_px(browser, live_server):
    browser.set_window_size(1280, 1000)
    open_page(browser, live_server)
    assert browser.execute_script("return window.innerWidth") >= 1200
    check_layout(browser)
    Select(browser.find_element(By.ID, "mad-model")).select_by_value("flow")  # shows the flow's own field
    check_layout(browser)


def test_no_sideways_scroll_on_a_390_px_phone(browser, live_server):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        open_page(browser, live_server)
        assert browser.execute_script("return window.innerWidth") == 390
        check_layout(browser)
        fill(browser, {"mad-model": "gmm", "mad-target": "ring", "mad-dim": 2, "mad-n-ini": 100, "mad-n-synth": 100,
                       "mad-generations": 3, "mad-replicates": 1, "mad-n-eval": 100})
        browser.find_element(By.ID, "mad-run").click()
        wait_done(browser)
        assert browser.find_element(By.ID, "mad-scatter-box").is_displayed()
        width = browser.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], width
        for canvas in browser.find_elements(By.CSS_SELECTOR, "canvas"):
            assert canvas.rect["x"] + canvas.rect["width"] <= 390
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_fig10_preset_with_effective_sample_size_runs_as_a_job(browser, live_server):
    # Issue 16: this combination used to be refused (MAD_MAX_ARRAY_ELEMENTS); the reference curve now runs in chunks.
    open_page(browser, live_server)
    browser.find_element(By.ID, "mad-preset-fig10").click()
    assert browser.find_element(By.ID, "mad-dim").get_attribute("value") == "100"
    browser.find_element(By.ID, "mad-effective").click()
    browser.find_element(By.ID, "mad-run").click()
    box = WebDriverWait(browser, 15).until(lambda b: b.find_element(By.CSS_SELECTOR, "#mad-progress .job-progress"))
    assert not browser.find_element(By.ID, "mad-error").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, "#mad-form .field-error")
    assert browser.find_element(By.ID, "mad-summary").text == "running as a job…"
    box.find_element(By.CSS_SELECTOR, ".job-cancel").click()  # the full run takes tens of seconds; stop it here
    WebDriverWait(browser, 30).until(lambda b: box.get_attribute("data-status") == "cancelled")


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

    # Asked for with another loop: the API's message next to the tick box, and no stale summary or chart.
    fill(browser, {"mad-loop": "fully_synthetic"})
    browser.find_element(By.ID, "mad-run").click()
    WebDriverWait(browser, 10).until(lambda b: "fresh_data loop only" in (field_error(b, "effective_sample_size") or ""))
    assert browser.find_element(By.ID, "mad-summary").text == ""
    assert not browser.find_elements(By.CSS_SELECTOR, '#mad-charts canvas[data-metric="effective"]')


def test_flow_model_runs_from_the_form_and_draws_its_nll(browser, live_server):
    open_page(browser, live_server)
    steps = browser.find_element(By.ID, "mad-flow-steps")
    assert not steps.is_displayed()  # only the flow has this field
    browser.find_element(By.ID, "mad-preset-flow").click()
    assert steps.is_displayed()
    assert Select(browser.find_element(By.ID, "mad-model")).first_selected_option.get_attribute("value") == "flow"
    fill(browser, {"mad-n-ini": 200, "mad-n-synth": 200, "mad-generations": 2, "mad-replicates": 1,
                   "mad-n-eval": 100, "mad-flow-steps": 20})
    browser.find_element(By.ID, "mad-run").click()
    wait_done(browser, timeout=60)
    chart = browser.find_element(By.CSS_SELECTOR, '#mad-charts canvas[data-metric="nll"]')
    assert canvas_has_ink(browser, chart)
    assert "estimated" in browser.find_element(By.ID, "mad-summary").text


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_nothing_serious_before_and_after_a_run(browser, live_server, width):
    from tests.e2e.test_attention_page import _axe_violations  # one copy of the axe-core runner

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        open_page(browser, live_server)
        assert _axe_violations(browser) == []
        fill(browser, {"mad-model": "gmm", "mad-target": "ring", "mad-dim": 2, "mad-n-ini": 100, "mad-n-synth": 30000,
                       "mad-generations": 3, "mad-replicates": 1, "mad-n-eval": 100})
        browser.find_element(By.ID, "mad-run").click()  # a refused run: the message under its field
        WebDriverWait(browser, 10).until(lambda b: field_error(b, "n_synth"))
        assert _axe_violations(browser) == []
        fill(browser, {"mad-n-synth": 100})
        browser.find_element(By.ID, "mad-run").click()
        wait_done(browser)
        assert _axe_violations(browser) == []
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
