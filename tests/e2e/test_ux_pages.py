"""Pages people enjoy using, in real Chromium: every page on a 390 px phone (a test each), the home page's box and the search box
with bad input, times in the viewer's zone, the API viewer's try-it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.served_pages import ERROR_PAGE, pages_of_a_fresh_app, served_pages

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
# Pages whose form is what people come for: its first control must be on the first phone screen.
CONTROL_FIRST = {"/": "#q", "/arxiv/search?query=": "#query", "/jobs": "#job-kind",
                 "/stove": "#burners button.shutoff", "/matrix": "#matrix-builtin", "/tokenize": "#tok-text",
                 "/continuation": "#cont-prompt", "/mad": "#mad-model", "/matrix/lowrank": "#lowrank-matrix"}
OVERFLOW = """
const width = document.documentElement.clientWidth, wide = [];
for (const el of document.querySelectorAll('body *')) {
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.right <= width + 0.5) continue;
  let clipped = false;  // inside a box that scrolls or clips on its own, it cannot widen the page
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') { clipped = true; break; }
  }
  if (!clipped) wide.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} right=${Math.round(box.right)}`);
}
return {scroll: document.documentElement.scrollWidth, width: width, wide: wide.slice(0, 6)};
"""


def wait_ready(browser, seconds: float = 15) -> None:
    WebDriverWait(browser, seconds).until(lambda b: b.execute_script("return document.readyState") == "complete")


def errors_in_console(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


@contextmanager
def emulated(browser, command: str, params: dict, clear: str, clear_params: dict | None = None):
    browser.execute_cdp_cmd(command, params)
    try:
        yield
    finally:
        browser.execute_cdp_cmd(clear, clear_params or {})


@contextmanager
def config(live_server, **values):
    """Change settings of the shared live server for one test."""
    before = {key: live_server.app.config[key] for key in values}
    live_server.app.config.update(values)
    try:
        yield
    finally:
        live_server.app.config.update(before)


def open_operation(browser, live_server, block_id: str):
    """/api/docs with one operation opened (its summary clicked); returns the operation's block."""
    browser.get(live_server.url + "/api/docs")
    block = WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, block_id))
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(browser, 10).until(lambda b: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    return block


def test_pages_checked_are_the_live_servers(live_server):
    pages = pages_of_a_fresh_app()
    assert {"/", "/papers", "/jobs", "/api/docs", "/mad", "/matrix/lowrank", "/arxiv/2307.01850"} <= set(pages)
    assert list(pages) == served_pages(live_server.app)


@pytest.mark.parametrize("path", pages_of_a_fresh_app())
def test_page_fits_a_390_px_phone(browser, live_server, path):
    """No sideways scroll, the form's first control on the first screen, no console error (the error page: its 404)."""
    problems = []
    with emulated(browser, "Emulation.setDeviceMetricsOverride", PHONE, "Emulation.clearDeviceMetricsOverride"):
        browser.get(live_server.url + path)
        wait_ready(browser)
        if path == "/api/docs":
            WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"))
        found = browser.execute_script(OVERFLOW)
        if found["scroll"] > found["width"]:
            problems.append(f"{found['scroll']} px wide in a {found['width']} px viewport: {found['wide']}")
        control = CONTROL_FIRST.get(path)
        if control:
            top = browser.execute_script(
                "return document.querySelector(arguments[0]).getBoundingClientRect().top", control)
            if top > PHONE["height"] - 40:
                problems.append(f"{control} starts at {top:.0f} px, below the first screen")
        errors = errors_in_console(browser)
        if path == ERROR_PAGE:  # its own 404, nothing else
            errors = [e for e in errors if not (ERROR_PAGE in e and "404" in e)]
        if errors:
            problems.append(f"console errors {errors}")
    assert problems == []


def test_api_docs_opened_operation_fits_a_phone(browser, live_server):
    with emulated(browser, "Emulation.setDeviceMetricsOverride", PHONE, "Emulation.clearDeviceMetricsOverride"):
        block = open_operation(browser, live_server, "operations-mad-post-api-mad-simulate")
        block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        WebDriverWait(browser, 10).until(lambda b: block.find_elements(By.CSS_SELECTOR, "textarea.body-param__text"))
        found = browser.execute_script(OVERFLOW)
        assert found["scroll"] <= found["width"], found
        assert errors_in_console(browser) == []


def test_api_docs_copy_path_buttons_are_full_size_without_hover(browser, live_server):
    """Phones have no hover, and axe measured a button half-way through Swagger's width animation (0.2 px)."""
    with emulated(browser, "Emulation.setDeviceMetricsOverride", PHONE, "Emulation.clearDeviceMetricsOverride"):
        open_operation(browser, live_server, "operations-redirector-post-api-resolve")
        sizes = browser.execute_script(
            "return [...document.querySelectorAll('.opblock-summary .copy-to-clipboard button')].map((b) => {"
            "  const r = b.getBoundingClientRect(); return [r.width, r.height]; })")
        assert sizes and all(w >= 24 and h >= 24 for w, h in sizes), sizes


def test_home_box_says_where_it_goes_and_opens_the_local_copy(browser, live_server):
    cool = live_server.url + "/cool"  # a base other than this backend (the real one, papers.cool, is offline here)
    with config(live_server, COOLPAPERS_BASE=cool):
        browser.get(live_server.url + "/")
        wait_ready(browser)
        explained = browser.find_element(By.ID, "go-explained").text
        assert cool in explained and "Local copy" in explained and "development build" in explained
        assert browser.find_element(By.ID, "go-cool").text == "Open on 127.0.0.1:" + live_server.url.rsplit(":", 1)[1]
        box = browser.find_element(By.ID, "q")
        box.send_keys("Dao et al. Monarch. arXiv:2204.00595v1")
        browser.find_element(By.ID, "go-local").click()
        WebDriverWait(browser, 10).until(lambda b: b.current_url == live_server.url + "/arxiv/2204.00595")
        assert browser.find_element(By.CSS_SELECTOR, "article.paper").get_attribute("data-id") == "2204.00595"

        browser.get(live_server.url + "/")
        box = browser.find_element(By.ID, "q")
        box.send_keys("https://openreview.net/forum?id=B18WgG-CZ\n")  # Enter: the configured base
        WebDriverWait(browser, 10).until(lambda b: b.current_url.startswith(cool + "/"))
        assert browser.current_url == cool + "/venue/B18WgG-CZ@OpenReview"


@pytest.mark.parametrize("text, said", [
    ("   ", "Type an arXiv id"),
    ("https://example.com/about", "No paper found in that text"),
    ("x" * 300, "That text is 300 bytes; the box takes at most 200"),  # RESOLVE_MAX_QUERY_BYTES is 200 here
])
def test_home_box_bad_input_is_said_next_to_the_field(browser, live_server, text, said):
    with config(live_server, RESOLVE_MAX_QUERY_BYTES=200):
        browser.get(live_server.url + "/")
        wait_ready(browser)
        browser.get_log("browser")
        box = browser.find_element(By.ID, "q")
        box.send_keys(text)
        browser.find_element(By.ID, "go-cool").click()
        error = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "q-error").text and
                                                 b.find_element(By.ID, "q-error"))
        assert said in error.text
        assert browser.current_url == live_server.url + "/"  # stayed, the text kept
        assert box.get_attribute("value") == text and box.get_attribute("aria-invalid") == "true"
        below = browser.execute_script(
            "const b = arguments[0].getBoundingClientRect(), e = arguments[1].getBoundingClientRect();"
            "return e.top - b.bottom", box, error)
        assert 0 <= below < 60  # next to the field, not somewhere else on the page
        unexpected = [e for e in errors_in_console(browser) if "/api/resolve" not in e]
        assert unexpected == []  # only the expected 4xx of the resolve call
        box.send_keys("x")
        assert not browser.find_element(By.ID, "q-error").is_displayed()  # typing clears the old message


@pytest.mark.parametrize("query, said, status", [
    ("", "Type some words", 200),
    ("?!", "no words to search for", 200),
    ("a" * 300, "over", 413),  # a byte size: 413
])
def test_search_box_bad_input_is_said_next_to_the_field(browser, live_server, query, said, status):
    with config(live_server, RESOLVE_MAX_QUERY_BYTES=200):
        browser.get(live_server.url + "/arxiv/search?highlight=1&query=low+rank")
        assert browser.find_elements(By.CSS_SELECTOR, "article.paper")
        box = browser.find_element(By.ID, "query")
        box.clear()
        box.send_keys(query)
        box.submit()
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "query-error"))
        assert said in browser.find_element(By.ID, "query-error").text
        assert browser.find_elements(By.CSS_SELECTOR, "article.paper") == []  # no stale results
        assert browser.find_element(By.ID, "query").get_attribute("value") == query
        url = live_server.url + "/arxiv/search?" + urllib.parse.urlencode({"highlight": 1, "query": query})
        request = urllib.request.Request(url, headers={"Accept": "text/html"})
        try:
            with urllib.request.urlopen(request) as response:
                assert response.status == status
        except urllib.error.HTTPError as exc:
            assert exc.code == status
        browser.get_log("browser")  # the expected 413 stays here, not in the next test's console check


def test_times_carry_the_date_in_the_viewers_zone(browser, live_server):
    with emulated(browser, "Emulation.setTimezoneOverride", {"timezoneId": "Asia/Shanghai"},
                  "Emulation.setTimezoneOverride", {"timezoneId": ""}):
        browser.get(live_server.url + "/")
        wait_ready(browser)
        shown = browser.execute_script("return formatTime(1764772279)")  # 2025-12-03 14:31:19 UTC
        assert "2025" in shown and "Dec" in shown and "3" in shown and "10:31:19" in shown and "GMT+8" in shown
        element = browser.execute_script(
            "const t = timeElement(1764772279); document.body.appendChild(t);"
            "const s = document.createElement('time'); s.dataset.epoch = '0'; document.body.appendChild(s);"
            "fillTimes(); return [t.dateTime, t.title, t.textContent, s.textContent]")
        assert element[0] == "2025-12-03T14:31:19.000Z" and element[1] == "2025-12-03 14:31:19 UTC"
        assert element[2] == shown and "1970" in element[3] and "08:00:00" in element[3]
        assert browser.execute_script("return [formatTime(null), formatTime('not a time')]") == ["", ""]
        # UTC instants inside a server's message are read in the viewer's zone too; other text stays as it is
        said = browser.execute_script(
            "return [localTimes('cut delivered at 2025-12-03T14:31:19.250Z; loop restored'),"
            " localTimes('at 2025-12-03T15:31:19+01:00'), localTimes('no time 2025-12-03 here'), localTimes(null)]")
        assert said == [f"cut delivered at {shown}; loop restored", f"at {shown}", "no time 2025-12-03 here", ""]


def test_favicon_is_served_to_the_browser(browser, live_server):
    browser.get(live_server.url + "/favicon.ico")
    assert browser.execute_script("return document.images.length === 1 && document.images[0].naturalWidth > 0")


def test_api_docs_viewer_openapi_examples_fill_try_it(browser, live_server):
    """The request example of an operation is what "Try it out" starts from."""
    with urllib.request.urlopen(live_server.url + "/api/openapi.json") as response:
        spec = json.load(response)
    example = spec["paths"]["/api/resolve"]["post"]["requestBody"]["content"]["application/json"]["example"]
    block = open_operation(browser, live_server, "operations-redirector-post-api-resolve")
    block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    body = WebDriverWait(browser, 10).until(lambda b: block.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
    assert json.loads(body.get_attribute("value")) == example
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    status = WebDriverWait(browser, 20).until(
        lambda b: block.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"))
    assert status.text.strip().startswith("200")
    answer = block.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description pre").text
    assert json.loads(answer)["target"] == live_server.url + "/venue/B18WgG-CZ@OpenReview"
