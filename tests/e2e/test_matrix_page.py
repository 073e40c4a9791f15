"""The matrix compression page in real Chromium: built-in image, an uploaded one, and an error message."""

from __future__ import annotations

import numpy as np
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def _wait_results(browser):
    wait = WebDriverWait(browser, 30)
    wait.until(EC.visibility_of_element_located((By.ID, "matrix-results")))
    wait.until(lambda d: d.find_element(By.ID, "matrix-run").is_enabled())
    return wait


def test_compress_builtin_then_upload(live_server, browser, tmp_path):
    browser.get(live_server.url + "/matrix")
    Select(browser.find_element(By.ID, "matrix-size")).select_by_value("64")
    Select(browser.find_element(By.ID, "matrix-builtin")).select_by_value("pattern")
    browser.execute_script("const r = document.getElementById('matrix-rank'); r.value = 2;"
                           "r.dispatchEvent(new Event('input'));")
    assert "SVD rank 16" in browser.find_element(By.ID, "matrix-budget").text
    browser.find_element(By.ID, "matrix-run").click()
    _wait_results(browser)
    assert "built-in: pattern" in browser.find_element(By.ID, "cap-original").text
    assert "SVD rank 16" in browser.find_element(By.ID, "cap-svd").text
    assert "Monarch block rank 2" in browser.find_element(By.ID, "cap-monarch").text
    assert "2048 numbers" in browser.find_element(By.ID, "matrix-summary").text
    for img in ("img-original", "img-svd", "img-monarch"):
        assert browser.execute_script(f"const i = document.getElementById('{img}'); return i.complete && i.naturalWidth;") == 64
    # the chart drew something: some canvas pixels are not blank
    inked = browser.execute_script(
        "const c = document.getElementById('matrix-curve'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n;")
    assert inked > 500

    path = tmp_path / "upload.png"
    Image.fromarray((np.indices((30, 40)).sum(0) % 7 * 36).astype(np.uint8)).save(path)
    browser.find_element(By.ID, "matrix-image").send_keys(str(path))
    browser.find_element(By.ID, "matrix-run").click()
    WebDriverWait(browser, 30).until(
        lambda d: "upload.png" in d.find_element(By.ID, "cap-original").text)


def test_bad_upload_shows_the_api_message(live_server, browser, tmp_path):
    browser.get(live_server.url + "/matrix")
    Select(browser.find_element(By.ID, "matrix-size")).select_by_value("64")
    path = tmp_path / "broken.png"
    path.write_bytes(b"this is not a png")
    browser.find_element(By.ID, "matrix-image").send_keys(str(path))
    browser.find_element(By.ID, "matrix-run").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "matrix-status").text)
    assert "not an image this page can read" in browser.find_element(By.ID, "matrix-status").text
    assert browser.find_element(By.ID, "matrix-results").get_attribute("hidden") is not None
