"""The home page, the API reference and the local Cool Papers pages in real Chromium."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def wait(browser, seconds: float = 10):
    return WebDriverWait(browser, seconds)


def test_home_form_resolves_through_go_to_the_local_paper_page(browser, live_server):
    browser.get(live_server.url + "/")
    assert "Cool Papers companion" in browser.title
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "ul.pages a")]
    assert live_server.url + "/papers" in links and live_server.url + "/api/docs" in links
    assert browser.find_elements(By.CSS_SELECTOR, "table.endpoints code")
    box = browser.find_element(By.ID, "q")
    box.send_keys("Dao et al. Monarch. arXiv preprint arXiv:2204.00595v1 (2022).")
    box.submit()
    wait(browser).until(EC.url_to_be(live_server.url + "/arxiv/2204.00595"))
    article = browser.find_element(By.CSS_SELECTOR, "article.paper")
    assert article.get_attribute("data-id") == "2204.00595"
    assert "Monarch" in article.find_element(By.TAG_NAME, "h2").text


def test_prefix_form_lands_on_the_local_page(browser, live_server):
    browser.get(live_server.url + "/https://openreview.net/forum?id=B18WgG-CZ")
    wait(browser).until(EC.url_contains("/venue/"))
    assert browser.current_url == live_server.url + "/venue/B18WgG-CZ@OpenReview"
    link = browser.find_element(By.CSS_SELECTOR, "article.paper .links a")
    assert link.get_attribute("href") == "https://openreview.net/forum?id=B18WgG-CZ"


def test_search_page_highlights_and_escapes(browser, live_server):
    browser.get(live_server.url + "/arxiv/search?highlight=1&query=generative%20%3Cscript%3Ewindow.pwned%3D1%3C/script%3E")
    assert browser.execute_script("return window.pwned === undefined")
    marks = [m.text.lower() for m in browser.find_elements(By.TAG_NAME, "mark")]
    assert "generative" in marks
    assert "<script>" in browser.find_element(By.ID, "heading").text


def test_category_and_catalog_pages(browser, live_server):
    browser.get(live_server.url + "/papers")
    rows = browser.find_elements(By.CSS_SELECTOR, "#catalog tbody tr")
    assert len(rows) >= 10
    browser.get(live_server.url + "/arxiv/cs.CV")
    ids = {a.get_attribute("data-id") for a in browser.find_elements(By.CSS_SELECTOR, "article.paper")}
    assert "1512.03385" in ids and "1706.03762" not in ids


def test_not_found_page_is_friendly(browser, live_server):
    browser.get(live_server.url + "/go?q=https://example.com/about")
    assert "No paper found" in browser.find_element(By.CSS_SELECTOR, "#error .message").text


def test_api_docs_viewer_lists_every_operation_and_tries_a_get(browser, live_server):
    """Swagger UI, served offline: every operation of the document listed, and try-it on GET /api/health."""
    import json
    import urllib.request

    with urllib.request.urlopen(live_server.url + "/api/openapi.json") as response:
        spec = json.load(response)
    expected = sorted((method.upper(), path) for path, ops in spec["paths"].items() for method in ops)
    browser.get(live_server.url + "/api/docs")
    wait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"))
    listed = sorted(
        (block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
         block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    )
    assert listed == expected
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))")
    assert loaded == []  # nothing from another site: the viewer ships with the backend

    health = browser.find_element(By.ID, "operations-site-get-api-health")
    health.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait(browser).until(lambda b: health.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    health.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    health.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait(browser, 20).until(
        lambda b: health.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"))
    assert status.text.strip().startswith("200")
    body = health.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description pre").text
    assert json.loads(body)["status"] == "ok"
