"""The matrix compression page in real Chromium: built-in image, an explicit and clearable upload, truthful
exactness wording, errors next to their field with stale results cleared, and a 390 px phone width."""

from __future__ import annotations

import numpy as np
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def _text(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def _set_rank(browser, value: int) -> None:
    browser.execute_script("const r = document.getElementById('matrix-rank'); r.value = arguments[0];"
                           "r.dispatchEvent(new Event('input'));", value)


def _run(browser):
    browser.find_element(By.ID, "matrix-run").click()
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "matrix-run").is_enabled())
    return wait


def _wait_results(browser, caption_part: str):
    WebDriverWait(browser, 30).until(lambda d: caption_part in d.find_element(By.ID, "cap-original").text
                                     and d.find_element(By.ID, "matrix-results").is_displayed())


def _png(tmp_path, name="upload.png", shape=(30, 40)):
    path = tmp_path / name
    Image.fromarray((np.indices(shape).sum(0) % 7 * 36).astype(np.uint8)).save(path)
    return path


def _no_sideways_scroll(browser) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_builtin_then_explicit_upload_then_cleared(live_server, browser, tmp_path):
    browser.get(live_server.url + "/matrix")
    Select(browser.find_element(By.ID, "matrix-size")).select_by_value("64")
    Select(browser.find_element(By.ID, "matrix-builtin")).select_by_value("pattern")
    _set_rank(browser, 2)
    assert "SVD rank 16 of 64" in _text(browser, "matrix-budget")
    assert "Using the built-in image pattern" in _text(browser, "matrix-using")
    assert not browser.find_element(By.ID, "matrix-clear").is_displayed()
    _run(browser)
    _wait_results(browser, "built-in: pattern")
    assert "SVD rank 16" in _text(browser, "cap-svd")
    assert "Monarch block rank 2" in _text(browser, "cap-monarch")
    assert "2,048 numbers" in _text(browser, "matrix-summary")
    for img in ("img-original", "img-svd", "img-monarch"):
        assert browser.execute_script(f"const i = document.getElementById('{img}'); return i.complete && i.naturalWidth;") == 64
    inked = browser.execute_script(
        "const c = document.getElementById('matrix-curve'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n;")
    assert inked > 500

    # choosing a file switches the source to the upload, visibly; the built-in select is then out of play
    browser.find_element(By.ID, "matrix-image").send_keys(str(_png(tmp_path)))
    assert browser.find_element(By.ID, "matrix-source-upload").is_selected()
    assert "Using your image upload.png" in _text(browser, "matrix-using")
    assert not browser.find_element(By.ID, "matrix-builtin").is_enabled()
    _run(browser)
    _wait_results(browser, "upload: upload.png")

    # the upload can be cleared, and the built-in image is used again
    browser.find_element(By.ID, "matrix-clear").click()
    assert browser.find_element(By.ID, "matrix-source-builtin").is_selected()
    assert browser.execute_script("return document.getElementById('matrix-image').files.length") == 0
    assert "Using the built-in image pattern." in _text(browser, "matrix-using")
    assert not browser.find_element(By.ID, "matrix-clear").is_displayed()
    _run(browser)
    _wait_results(browser, "built-in: pattern")

    # a file still chosen but the built-in radio picked: the built-in one is used, and the page says so
    browser.find_element(By.ID, "matrix-image").send_keys(str(_png(tmp_path, "other.png")))
    browser.find_element(By.ID, "matrix-source-builtin").click()
    assert "your file other.png is not used" in _text(browser, "matrix-using")
    _run(browser)
    _wait_results(browser, "built-in: pattern")


def test_exactness_is_stated_truthfully(live_server, browser):
    browser.get(live_server.url + "/matrix")
    Select(browser.find_element(By.ID, "matrix-size")).select_by_value("64")
    _set_rank(browser, 4)  # m/2: as many numbers as the image, still lossy
    assert "as many numbers as the image itself, yet both still approximate" in _text(browser, "matrix-budget")
    _run(browser)
    _wait_results(browser, "built-in: hopper")
    summary = _text(browser, "matrix-summary")
    assert "100.0 % of the image's 4,096 pixels" in summary and "Both are approximations" in summary
    assert "exact" not in _text(browser, "cap-svd") and "exact" not in _text(browser, "cap-monarch")
    _set_rank(browser, 8)  # m: exact, at twice the storage
    assert "both exact, at twice the image's storage" in _text(browser, "matrix-budget")
    _run(browser)
    WebDriverWait(browser, 30).until(lambda d: "Monarch block rank 8" in d.find_element(By.ID, "cap-monarch").text)
    assert "Both reproduce the image exactly" in _text(browser, "matrix-summary")
    assert "exact" in _text(browser, "cap-svd") and "exact" in _text(browser, "cap-monarch")


def test_errors_sit_next_to_their_field_and_clear_stale_results(live_server, browser, tmp_path):
    browser.get(live_server.url + "/matrix")
    Select(browser.find_element(By.ID, "matrix-size")).select_by_value("64")
    _run(browser)
    _wait_results(browser, "built-in: hopper")
    # a file that is not an image: the message sits under the image field, the old pictures go away
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png")
    browser.find_element(By.ID, "matrix-image").send_keys(str(broken))
    _run(browser)
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "matrix-image-error").text)
    message = _text(browser, "matrix-image-error")
    assert "not an image this page can read" in message and "BytesIO" not in message
    assert not browser.find_element(By.ID, "matrix-results").is_displayed()
    assert _text(browser, "matrix-status") == ""
    # the upload radio without a file: said next to the field, nothing sent
    browser.find_element(By.ID, "matrix-clear").click()
    assert _text(browser, "matrix-image-error") == ""
    browser.find_element(By.ID, "matrix-source-upload").click()
    browser.find_element(By.ID, "matrix-run").click()
    assert "Choose an image file, or pick a built-in image" in _text(browser, "matrix-image-error")
    # an upload over the size limit (the server's own check, with a small limit for this test)
    app = live_server.app
    old = app.config["MATRIX_IMAGE_UPLOAD_MAX_BYTES"]
    app.config["MATRIX_IMAGE_UPLOAD_MAX_BYTES"] = 100
    try:
        browser.find_element(By.ID, "matrix-image").send_keys(str(_png(tmp_path, "big.png", (60, 80))))
        _run(browser)
        WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "matrix-image-error").text)
        assert "100" in _text(browser, "matrix-image-error")
        assert not browser.find_element(By.ID, "matrix-results").is_displayed()
    finally:
        app.config["MATRIX_IMAGE_UPLOAD_MAX_BYTES"] = old
    # a good run afterwards clears the error
    browser.find_element(By.ID, "matrix-clear").click()
    _run(browser)
    _wait_results(browser, "built-in: hopper")
    assert _text(browser, "matrix-image-error") == ""


def test_usable_at_phone_width(live_server, browser):
    size = browser.get_window_size()
    browser.set_window_size(390, 844)
    try:
        browser.get(live_server.url + "/matrix")
        WebDriverWait(browser, 10).until(EC.element_to_be_clickable((By.ID, "matrix-run")))
        assert browser.execute_script("return window.innerWidth") <= 400
        assert _no_sideways_scroll(browser)
        # the controls are on the first screen
        assert browser.execute_script(
            "return document.getElementById('matrix-run').getBoundingClientRect().bottom <= window.innerHeight")
        Select(browser.find_element(By.ID, "matrix-size")).select_by_value("64")
        _run(browser)
        _wait_results(browser, "built-in: hopper")
        assert _no_sideways_scroll(browser)
    finally:
        browser.set_window_size(size["width"], size["height"])
