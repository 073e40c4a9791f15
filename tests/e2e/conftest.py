"""Real-browser fixtures: the backend on a free loopback port and a headless Debian Chromium."""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from backend import create_app
from tests.conftest import config_for_tests

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HEADLESS_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,1000",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class LiveServer:
    url: str
    app: object
    server: object


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The backend in a thread; its Cool Papers base is itself, so redirects stay on this machine."""
    tmp = tmp_path_factory.mktemp("live")
    app = create_app(config_for_tests(tmp, VALIDATE_RESPONSES=True))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.port}"
    app.config["COOLPAPERS_BASE"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(url=url, app=app, server=server)
    server.shutdown()
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()


def chrome_options(extra_args: list[str] | None = None):
    from selenium.webdriver.chrome.options import Options

    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail(f"Chromium is required for end-to-end tests: install it with apt-get install chromium chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in HEADLESS_FLAGS + (extra_args or []):
        options.add_argument(flag)
    return options


def start_chromium(extra_args: list[str] | None = None):
    """A fresh headless Chromium with its own profile folder; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = chrome_options([f"--user-data-dir={profile}"] + (extra_args or []))
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.profile_dir = profile  # type: ignore[attr-defined]
    return driver


def stop_chromium(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def _session_browser():
    driver = start_chromium()
    yield driver
    stop_chromium(driver)


@pytest.fixture
def browser(_session_browser):
    """One Chromium for the session, reset between tests."""
    _session_browser.get("about:blank")
    _session_browser.delete_all_cookies()
    _session_browser.get_log("browser")  # each test sees only its own console entries
    yield _session_browser
