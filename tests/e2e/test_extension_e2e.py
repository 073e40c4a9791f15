"""The Chrome extension in real headless Chromium (Debian chromium + chromedriver).

The dev build is loaded unpacked; the backend runs on a free loopback port (``live_server``) and the
options page points the extension at it. Redirects go through the service worker's handleClick, the
function the context menu calls (the menu itself is native UI that WebDriver cannot open). Content
scripts run on local copies of arXiv, OpenReview and ACL pages served over https on loopback under
their real host names (``--host-resolver-rules`` + ``--ignore-certificate-errors``), so the
manifest's real match patterns decide where they run. A missing browser fails these tests (see
``chrome_options`` in conftest.py); nothing here is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import CHROMEDRIVER, chrome_options
from tests.e2e.paper_hosts import CVF_PAGE, HOSTS, NEURIPS_PAGE, PaperHosts

ROOT = Path(__file__).resolve().parents[2]
VECTORS = [ROOT / "tests" / "data" / "resolve.jsonl", ROOT / "tests" / "data" / "reach.jsonl"]
PUBLIC_BASE = "https://papers.cool"
WAIT = 10


# --- fixtures -----------------------------------------------------------------------------------
def _load_build_module():
    spec = importlib.util.spec_from_file_location("build_extension", ROOT / "scripts" / "build_extension.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    """The dev build, made by the real build script (validation included) with a throwaway key."""
    build = _load_build_module()
    tmp = tmp_path_factory.mktemp("extension")
    return build.build("dev", out=tmp / "dist", key_dir=tmp / "keys", package=False)


@pytest.fixture(scope="module")
def paper_hosts(tmp_path_factory):
    """An https server on loopback answering for arXiv, OpenReview, ACL, CVF, USENIX, AAAI, ADS and NeurIPS."""
    hosts = PaperHosts(tmp_path_factory.mktemp("tls"))
    yield hosts.port
    hosts.close()


@pytest.fixture(scope="module")
def driver(extension, paper_hosts, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    rules = ",".join(f"MAP {host} 127.0.0.1:{paper_hosts}" for host in HOSTS)
    options = chrome_options(
        [
            f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
            f"--load-extension={extension.directory}",
            f"--disable-extensions-except={extension.directory}",
            f"--host-resolver-rules={rules}",
            "--ignore-certificate-errors",
        ]
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(30)
    yield browser
    browser.quit()


class Extension:
    """Drives the extension from one of its own pages (the options page in the first tab)."""

    def __init__(self, driver, extension_id: str, live_url: str):
        self.driver = driver
        self.id = extension_id
        self.origin = f"chrome-extension://{extension_id}"
        self.live = live_url
        self.home = driver.current_window_handle

    def url(self, page: str) -> str:
        return f"{self.origin}/{page}"

    def go_home(self) -> None:
        for handle in self.driver.window_handles:
            if handle != self.home:
                self.driver.switch_to.window(handle)
                self.driver.close()
        self.driver.switch_to.window(self.home)
        if not self.driver.current_url.startswith(self.url("options.html")):
            self.driver.get(self.url("options.html"))

    def call(self, message: dict) -> dict:
        """chrome.runtime.sendMessage from the current extension page; the service worker's reply."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "chrome.runtime.sendMessage(arguments[0]).then(done, (e) => done({error: String(e)}));",
            message,
        )

    def storage(self, values: dict | None = None) -> dict:
        script = (
            "const [values, done] = arguments;"
            "(values ? chrome.storage.sync.set(values) : Promise.resolve())"
            ".then(() => chrome.storage.sync.get(null)).then(done);"
        )
        return self.driver.execute_async_script(script, values)

    def set_options(self, base: str, open_in: str) -> str:
        """Through the options page's form, as a user would; returns the status line."""
        d = self.driver
        d.get(self.url("options.html"))
        field = WebDriverWait(d, WAIT).until(
            lambda x: x.find_element(By.ID, "base") if x.find_element(By.ID, "base").get_attribute("value") else None
        )
        field.clear()
        field.send_keys(base)
        d.find_element(By.ID, f"open-{open_in}").click()
        d.find_element(By.ID, "save").click()
        return WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "status").text)

    def new_window_after(self, before: set[str]) -> str:
        handle = WebDriverWait(self.driver, WAIT).until(lambda d: (set(d.window_handles) - before) or None).pop()
        self.driver.switch_to.window(handle)
        return handle

    def wait_loaded(self, url: str) -> None:
        d = self.driver
        WebDriverWait(d, WAIT).until(
            lambda x: x.current_url == url and x.execute_script("return document.readyState") == "complete"
        )


@pytest.fixture(scope="module")
def ext(driver, extension, live_server):
    driver.get(f"chrome-extension://{extension.extension_id}/options.html")
    helper = Extension(driver, extension.extension_id, live_server.url)
    # The service worker may still be starting: wait until it answers.
    WebDriverWait(driver, WAIT, ignored_exceptions=(Exception,)).until(
        lambda d: "results" in helper.call({"type": "resolveMany", "items": []})
    )
    return helper


@pytest.fixture
def at_backend(ext):
    """Options point at the local backend, results in new tabs; every test starts from the options page."""
    ext.go_home()
    status = ext.set_options(ext.live, "newTab")
    assert status == "Saved."
    yield ext
    ext.go_home()


def _local(target: str, base: str) -> str:
    assert target.startswith(PUBLIC_BASE + "/")
    return base + target[len(PUBLIC_BASE) :]


def _vectors() -> list[dict]:
    return [json.loads(line) for path in VECTORS for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _info(vector: dict) -> dict:
    if "info" in vector:
        return vector["info"]
    key = {"selection": "selectionText", "link": "linkUrl", "page": "pageUrl", "frame": "frameUrl"}[vector["context"]]
    return {key: vector["input"]}


def _landed_ids(driver) -> list[str]:
    return [el.get_attribute("data-id") for el in driver.find_elements(By.CSS_SELECTOR, "article.paper")]


def _console_errors(driver, extension_id: str) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and extension_id in e["message"]]


# --- tests --------------------------------------------------------------------------------------
def test_dev_build_defaults_to_the_local_backend(ext):
    ext.go_home()
    ext.driver.execute_async_script("chrome.storage.sync.clear().then(arguments[0]);")  # as freshly installed
    ext.driver.get(ext.url("options.html"))
    WebDriverWait(ext.driver, WAIT).until(lambda d: d.find_element(By.ID, "base").get_attribute("value"))
    assert ext.driver.find_element(By.ID, "base").get_attribute("value") == "http://127.0.0.1:5000"
    assert ext.driver.find_element(By.ID, "default-base").text == "http://127.0.0.1:5000"
    assert ext.driver.find_element(By.ID, "open-newTab").is_selected()


def test_chrome_accepts_the_context_menus_and_their_page_patterns(ext):
    ext.go_home()
    assert ext.call({"type": "createMenus"}) == {"ok": True, "ids": ["cool-papers-selection-link", "cool-papers-page"]}


def test_every_vector_through_the_click_handler_lands_on_the_backend_page(at_backend):
    ext, d = at_backend, at_backend.driver
    vectors = _vectors()
    assert len(vectors) >= 40
    opened = 0
    for vector in vectors:
        d.switch_to.window(ext.home)
        before = set(d.window_handles)
        result = ext.call({"type": "redirect", "info": _info(vector)})
        if vector["target"] is None:
            assert result["ok"] is False, (vector, result)
            assert result["notificationId"] and result["message"], result
            assert set(d.window_handles) == before, f"a tab opened for {vector}"
            continue
        expected = _local(vector["target"], ext.live)
        assert result["ok"] is True, (vector, result)
        assert result["resolution"]["target"] == expected
        ext.new_window_after(before)
        ext.wait_loaded(expected)
        assert "Cool Papers (local)" in d.title
        kind, ids = result["resolution"]["kind"], result["resolution"]["ids"]
        if kind in ("arxiv", "venue"):
            assert _landed_ids(d) == ids, vector
        elif kind == "category":
            assert d.find_element(By.ID, "heading").text == ids[0]
        elif kind == "search":
            assert d.find_element(By.ID, "heading").text.startswith("Search: ")
        d.close()
        opened += 1
    assert opened == sum(1 for v in vectors if v["target"])


def test_resolver_module_passes_every_vector_in_an_extension_page(ext):
    """resolver.js imported as a module by a page (as the popup does), default base: the raw vectors."""
    ext.go_home()
    vectors = _vectors()
    got = ext.driver.execute_async_script(
        "const [vectors, done] = arguments;"
        "import('./resolver.js').then(({resolve, resolveClick}) => done(vectors.map((v) => {"
        "  const r = v.info ? resolveClick(v.info) : resolve(v.input, v.context);"
        "  return r ? r.target : null; })), (e) => done(String(e)));",
        vectors,
    )
    assert got == [v["target"] for v in vectors]


def test_options_change_the_base_and_the_tab_mode(at_backend, live_server):
    ext, d = at_backend, at_backend.driver
    # a base with a trailing slash is normalised; current-tab mode replaces the page that asked
    assert ext.set_options(ext.live + "/", "currentTab") == "Saved."
    assert ext.storage() == {"base": ext.live, "openIn": "currentTab"}
    before = set(d.window_handles)
    d.execute_script("chrome.runtime.sendMessage({type: 'redirect', info: {selectionText: 'arXiv:2204.00595v2'}});")
    ext.wait_loaded(f"{ext.live}/arxiv/2204.00595")
    assert set(d.window_handles) == before
    assert _landed_ids(d) == ["2204.00595"]

    # back to a new tab, and a different base: the public site's address is used as given
    d.get(ext.url("options.html"))
    assert ext.set_options("https://papers.cool", "newTab") == "Saved."
    result = ext.call(
        {"type": "resolveMany", "items": [{"text": "https://arxiv.org/abs/2307.01850", "context": "link"}]}
    )
    assert result["results"][0]["target"] == "https://papers.cool/arxiv/2307.01850"
    assert result["openIn"] == "newTab"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("ftp://example.com", "must start with http"),
        ("not a url", "not a valid URL"),
        ("", "Enter the address"),
        ("https://example.com/?q=1", "must not contain a query"),
    ],
)
def test_options_reject_a_bad_base_and_keep_the_old_one(at_backend, value, error):
    ext = at_backend
    status = ext.set_options(value or " ", "newTab") if value else _submit_empty(ext)
    assert error in status
    assert ext.storage()["base"] == ext.live


def _submit_empty(ext) -> str:
    d = ext.driver
    d.get(ext.url("options.html"))
    field = WebDriverWait(d, WAIT).until(
        lambda x: x.find_element(By.ID, "base") if x.find_element(By.ID, "base").get_attribute("value") else None
    )
    field.clear()
    d.find_element(By.ID, "save").click()
    return WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "status").text)


def test_nothing_found_shows_a_notification_saying_why(at_backend):
    ext = at_backend
    result = ext.call(
        {"type": "redirect", "info": {"linkUrl": "https://example.com/about", "pageUrl": "https://example.com/"}}
    )
    assert result["ok"] is False
    assert "the link" in result["message"] and "the page address" in result["message"]
    shown = ext.driver.execute_async_script("chrome.notifications.getAll().then(arguments[0]);")
    assert result["notificationId"] in shown
    # no input at all (the reference crashed on a missing selectionText)
    empty = ext.call({"type": "redirect", "info": {}})
    assert empty["ok"] is False and "nothing to look at" in empty["message"]


def test_a_redirect_from_a_tab_group_stays_in_the_group(at_backend):
    """Issue #33 of the reference: inside (saved) tab groups the menu did nothing."""
    d = at_backend.driver
    found = d.execute_async_script(
        "const done = arguments[0]; (async () => {"
        " const me = await chrome.tabs.getCurrent();"
        " const groupId = await chrome.tabs.group({tabIds: [me.id]});"
        " const r = await chrome.runtime.sendMessage({type: 'redirect', info: {selectionText: '2307.01850'}});"
        " const opened = await chrome.tabs.get(r.tabId);"
        " await chrome.tabs.ungroup([me.id, opened.id]);"
        " done({groupId, openedGroup: opened.groupId, ok: r.ok}); })().catch((e) => done({error: String(e)}));"
    )
    assert found.get("ok") is True, found
    assert found["groupId"] >= 0 and found["openedGroup"] == found["groupId"]


def test_omnibox_and_keyboard_command_paths(at_backend):
    ext, d = at_backend, at_backend.driver
    suggestion = ext.call({"type": "omniboxSuggest", "text": "https://openreview.net/forum?id=B18WgG-CZ"})
    assert suggestion["description"] == "Cool Papers: open OpenReview B18WgG-CZ"  # people's names, no raw key
    # the suggestion is omnibox XML: user text is escaped
    described = ext.call({"type": "omniboxSuggest", "text": "<b>scaling</b> laws"})["description"]
    assert described == "Cool Papers: search for scaling laws"
    path = ext.call({"type": "omniboxSuggest", "text": "https://papers.cool/venue/a&b"})["description"]
    assert path == "Cool Papers: open Cool Papers page /venue/a&amp;b"
    assert (
        ext.call({"type": "omniboxSuggest", "text": "<b>"})["description"] == "Cool Papers: no paper or words found yet"
    )
    before = set(d.window_handles)
    result = ext.call({"type": "omnibox", "text": "hep-th/9901001", "disposition": "newForegroundTab"})
    assert result["ok"] and result["mode"] == "newTab"
    ext.new_window_after(before)
    ext.wait_loaded(f"{ext.live}/arxiv/hep-th/9901001")
    assert _landed_ids(d) == ["hep-th/9901001"]

    # the command redirects the tab it is given, in place: here an arXiv page served under its real host
    d.switch_to.window(ext.home)
    d.get("https://arxiv.org/abs/2307.01850")
    page_tab = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(ext.url("options.html"))
    tab_id = d.execute_async_script(
        "const done = arguments[0]; chrome.tabs.getCurrent().then(async (me) => {"
        " const tabs = await chrome.tabs.query({});"
        " done(tabs.find((t) => t.id !== me.id && t.windowId === me.windowId && t.index < me.index)?.id); });"
    )
    result = ext.call({"type": "command", "command": "redirect-current-tab", "tabId": tab_id})
    assert result["ok"] and result["mode"] == "currentTab", result
    d.switch_to.window(page_tab)
    ext.wait_loaded(f"{ext.live}/arxiv/2307.01850")
    d.get(ext.url("options.html"))


def _tab_id_of_other_window(ext) -> int:
    return ext.driver.execute_async_script(
        "const done = arguments[0]; chrome.tabs.getCurrent().then(async (me) => {"
        " const tabs = await chrome.tabs.query({}); done(tabs.find((t) => t.windowId !== me.windowId)?.id); });"
    )


def test_popup_lists_the_papers_on_the_tab_and_opens_them(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get("https://arxiv.org/list/cs.CL/new")
    WebDriverWait(d, WAIT).until(lambda x: x.find_elements(By.CSS_SELECTOR, "dt a.cool-papers-link"))
    page_window = d.current_window_handle
    d.switch_to.new_window("window")
    d.get(ext.url("options.html"))
    tab_id = _tab_id_of_other_window(ext)
    d.get(ext.url(f"popup.html?tab={tab_id}"))
    items = WebDriverWait(d, WAIT).until(lambda x: x.find_elements(By.CSS_SELECTOR, "#papers li"))
    texts = [li.text for li in items]
    assert "cs.CL" in texts[0]
    assert any("2307.01850" in t and "Self-Consuming" in t for t in texts)
    assert any("2204.00595" in t for t in texts)
    assert len(items) == 3
    open_all = d.find_element(By.ID, "open-all")
    assert open_all.is_displayed() and "2" in open_all.text
    before = set(d.window_handles)
    open_all.click()
    ext.new_window_after(before)
    ext.wait_loaded(f"{ext.live}/arxiv/2307.01850,2204.00595")
    assert _landed_ids(d) == ["2307.01850", "2204.00595"]

    # the paste box, through the same click handler
    d.switch_to.window(page_window)
    d.switch_to.new_window("tab")
    d.get(ext.url("popup.html"))
    box = WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "paste"))
    box.send_keys("https://proceedings.mlr.press/v202/smith23a/smith23a.pdf")
    before = set(d.window_handles)
    d.find_element(By.ID, "go").click()
    ext.new_window_after(before)
    ext.wait_loaded(f"{ext.live}/venue/smith23a@v202@PMLR")
    assert _landed_ids(d) == ["smith23a@v202@PMLR"]


def test_popup_on_an_acl_volume_opens_its_papers_together(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get("https://aclanthology.org/volumes/2024.naacl-long/")
    d.switch_to.new_window("window")
    d.get(ext.url("options.html"))
    d.get(ext.url(f"popup.html?tab={_tab_id_of_other_window(ext)}"))
    items = WebDriverWait(d, WAIT).until(lambda x: x.find_elements(By.CSS_SELECTOR, "#papers li"))
    # the venue by name and the paper as the venue writes it: never "venue" nor "2024.naacl-long.1@ACL"
    assert [li.find_element(By.CSS_SELECTOR, ".kind").text for li in items] == [
        "ACL Anthology · 2024.naacl-long.1",
        "ACL Anthology · 2024.naacl-long.2",
    ]
    assert [li.find_element(By.CSS_SELECTOR, ".title").text for li in items] == ["First paper", "Second paper"]
    before = set(d.window_handles)
    d.find_element(By.ID, "open-all").click()
    ext.new_window_after(before)
    ext.wait_loaded(f"{ext.live}/venue/2024.naacl-long.1@ACL,2024.naacl-long.2@ACL")
    assert _landed_ids(d) == ["2024.naacl-long.1@ACL", "2024.naacl-long.2@ACL"]


def _link(driver, css: str):
    return WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, css) or None)


@pytest.mark.parametrize(
    ("url", "css", "target"),
    [
        (
            "https://arxiv.org/abs/2307.01850",
            ".extra-services .full-text ul li a.cool-papers-link",
            "/arxiv/2307.01850",
        ),
        (
            "https://arxiv.org/abs/hep-th/9901001",
            ".extra-services .full-text ul li a.cool-papers-link",
            "/arxiv/hep-th/9901001",
        ),
        ("https://export.arxiv.org/abs/1706.03762", "h1.title + a.cool-papers-link", "/arxiv/1706.03762"),
        (
            "https://openreview.net/forum?id=B18WgG-CZ",
            ".forum-title h2 a.cool-papers-link",
            "/venue/B18WgG-CZ@OpenReview",
        ),
        (
            "https://aclanthology.org/2024.naacl-long.431/",
            ".acl-paper-link-block a.cool-papers-link",
            "/venue/2024.naacl-long.431@ACL",
        ),
        ("https://aclanthology.org/2023.acl-long.1/", "#cool-papers-float", "/venue/2023.acl-long.1@ACL"),
    ],
)
def test_content_script_adds_one_link_to_the_papers_page(at_backend, url, css, target):
    ext, d = at_backend, at_backend.driver
    d.get(url)
    links = _link(d, css)
    assert len(d.find_elements(By.CSS_SELECTOR, "a.cool-papers-link")) == 1
    assert links[0].get_attribute("href") == ext.live + target
    assert links[0].text == "Cool Papers"
    assert not _console_errors(d, ext.id)
    if url.startswith("https://openreview.net"):
        assert not d.find_elements(By.ID, "cool-papers-float"), "the floating link should give way to the inline one"


def test_content_script_on_listing_pages_links_every_entry_and_the_listing(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get("https://arxiv.org/list/cs.CL/new")
    links = _link(d, "dt a.cool-papers-link")
    assert [a.get_attribute("href") for a in links] == [f"{ext.live}/arxiv/2307.01850", f"{ext.live}/arxiv/2204.00595"]
    assert (
        d.find_element(By.CSS_SELECTOR, "#dlpage h1 a.cool-papers-link").get_attribute("href")
        == f"{ext.live}/arxiv/cs.CL"
    )
    # following a link reaches the backend's page for that paper
    links[1].click()
    d.switch_to.window(d.window_handles[-1])
    ext.wait_loaded(f"{ext.live}/arxiv/2204.00595")
    assert _landed_ids(d) == ["2204.00595"]
    assert not _console_errors(d, ext.id)


def test_content_script_on_openreview_group_collects_notes_as_they_render(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get("https://openreview.net/group?id=ICLR.cc/2018/Conference")
    ids = ["B18WgG-CZ", "Hkbd5xZRb", "rJ_ycN0c-", "Sy2ogebAW"]
    expected = f"{ext.live}/venue/" + ",".join(f"{i}@OpenReview" for i in ids)
    WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "cool-papers-float").get_attribute("href") == expected)
    d.find_element(By.ID, "cool-papers-float").click()
    d.switch_to.window(d.window_handles[-1])
    ext.wait_loaded(expected)
    assert _landed_ids(d) == [f"{i}@OpenReview" for i in ids]
    assert not _console_errors(d, ext.id)


def test_content_script_follows_the_tab_mode(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get("https://arxiv.org/abs/2307.01850")
    assert _link(d, "a.cool-papers-link")[0].get_attribute("target") == "_blank"
    d.get(ext.url("options.html"))
    ext.set_options(ext.live, "currentTab")
    d.get("https://arxiv.org/abs/2307.01850")
    assert _link(d, "a.cool-papers-link")[0].get_attribute("target") == ""


def test_extension_pages_log_no_errors(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get_log("browser")  # drop earlier entries
    for page in ("options.html", "popup.html"):
        d.get(ext.url(page))
        WebDriverWait(d, WAIT).until(lambda x: x.execute_script("return document.readyState") == "complete")
    assert not [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert urlsplit(d.current_url).scheme == "chrome-extension"


def test_chinese_locale(extension, paper_hosts, tmp_path):
    """With a zh-CN browser, pages and notifications come from _locales/zh_CN, with Chinese typography."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    rules = ",".join(f"MAP {host} 127.0.0.1:{paper_hosts}" for host in HOSTS)
    options = chrome_options(
        [
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--load-extension={extension.directory}",
            "--lang=zh-CN",
            f"--host-resolver-rules={rules}",
            "--ignore-certificate-errors",
        ]
    )
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_script_timeout(30)
    try:
        browser.get(f"chrome-extension://{extension.extension_id}/options.html")
        WebDriverWait(browser, WAIT).until(lambda d: d.title == "Cool Papers 设置")
        assert browser.find_element(By.ID, "save").text == "保存"
        helper = Extension(browser, extension.extension_id, "http://127.0.0.1:9")
        result = WebDriverWait(browser, WAIT, ignored_exceptions=(Exception,)).until(
            lambda d: helper.call({"type": "redirect", "info": {"pageUrl": "https://example.com/"}})
        )
        assert result["ok"] is False and "页面地址" in result["message"]
        # a Chinese list: 、 between items and 或 before the last, no ASCII comma
        listed = helper.call(
            {"type": "redirect", "info": {"selectionText": "!!", "linkUrl": "https://example.com/a", "pageUrl": "https://example.com/"}}
        )
        assert "在选中的文字、链接或页面地址中没有找到" in listed["message"], listed
        # omnibox: a space between 打开 and the Latin words
        suggestion = helper.call({"type": "omniboxSuggest", "text": "2307.01850"})["description"]
        assert suggestion == "Cool Papers：打开 arXiv 2307.01850"
        assert helper.call({"type": "omniboxSuggest", "text": "https://github.com/bojone/rerope"})["description"] == (
            "Cool Papers：这个网址里没有论文"
        )

        # the popup's 打开 buttons stay on one line beside long titles (a listing tab in another window)
        browser.get("https://arxiv.org/list/cs.CL/new")
        WebDriverWait(browser, WAIT).until(lambda x: x.find_elements(By.CSS_SELECTOR, "dt a.cool-papers-link"))
        browser.switch_to.new_window("window")
        browser.get(f"chrome-extension://{extension.extension_id}/options.html")
        tab_id = _tab_id_of_other_window(helper)
        browser.set_window_size(420, 700)
        browser.get(f"chrome-extension://{extension.extension_id}/popup.html?tab={tab_id}")
        items = WebDriverWait(browser, WAIT).until(lambda x: x.find_elements(By.CSS_SELECTOR, "#papers li"))
        assert len(items) == 3
        for button in browser.find_elements(By.CSS_SELECTOR, "#papers li button"):
            assert button.text == "打开"
            box = browser.execute_script(
                "const r = arguments[0].getBoundingClientRect(), s = getComputedStyle(arguments[0]);"
                "return {height: r.height, line: parseFloat(s.lineHeight) || 1.45 * parseFloat(s.fontSize),"
                " padding: parseFloat(s.paddingTop) + parseFloat(s.paddingBottom) + 2};",
                button,
            )
            assert box["height"] <= box["line"] + box["padding"] + 1, box  # one line of text, not one a character
        browser.get(f"chrome-extension://{extension.extension_id}/popup.html")
        WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "go").text == "在 Cool Papers 打开")
    finally:
        browser.quit()


# --- issue 17: reach --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "css", "target"),
    [
        (
            f"https://openaccess.thecvf.com{CVF_PAGE}",
            "#papertitle a.cool-papers-link.inline",
            "/venue/Park_SplineGS_Robust_Motion-Adaptive_Spline_for_Real-Time_Dynamic_3D_Gaussians_from@CVPR2025@CVF",
        ),
        (
            "https://www.usenix.org/conference/usenixsecurity24/presentation/xu-haichuan",
            "h1#page-title a.cool-papers-link.inline",
            "/venue/xu-haichuan@usenixsecurity24@USENIX",
        ),
        (
            "https://ojs.aaai.org/index.php/AAAI/article/view/38818",
            "h1.page_title a.cool-papers-link.inline",
            "/venue/38818@AAAI",
        ),
    ],
)
def test_content_script_on_cvf_usenix_and_aaai_paper_pages(at_backend, url, css, target):
    ext, d = at_backend, at_backend.driver
    d.get(url)
    links = _link(d, css)
    assert len(d.find_elements(By.CSS_SELECTOR, "a.cool-papers-link")) == 1
    assert links[0].get_attribute("href") == ext.live + target
    links[0].click()
    d.switch_to.window(d.window_handles[-1])
    ext.wait_loaded(ext.live + target)
    assert _landed_ids(d) == [target.removeprefix("/venue/")]
    assert not _console_errors(d, ext.id)


def _ads_link(d) -> str:
    """The one Cool Papers link of the ADS page once it settles (the app renders late)."""

    def settled(x):
        links = x.find_elements(By.CSS_SELECTOR, "a.cool-papers-link")
        return links[0].get_attribute("href") if len(links) == 1 and "inline" in links[0].get_attribute("class") else None

    return WebDriverWait(d, WAIT).until(settled)


def test_content_script_follows_ads_in_app_navigation(at_backend):
    """ADS is a single-page application: pushState changes the paper, the link must follow."""
    ext, d = at_backend, at_backend.driver
    d.get("https://ui.adsabs.harvard.edu/abs/2020arXiv201207436Z/abstract")
    assert _ads_link(d) == f"{ext.live}/arxiv/2012.07436"
    assert d.find_element(By.CSS_SELECTOR, "h2.s-abstract-title a.cool-papers-link")
    d.find_element(By.ID, "next").click()  # history.pushState, then the app re-renders
    WebDriverWait(d, WAIT).until(lambda x: x.current_url.endswith("/abs/2014arXiv1401.1234A/abstract"))
    assert _ads_link(d) == f"{ext.live}/arxiv/1401.1234"
    # a journal bibcode: the page's arXiv e-print link names the paper
    d.find_element(By.ID, "next").click()
    WebDriverWait(d, WAIT).until(lambda x: "2021ApJ" in x.current_url)
    WebDriverWait(d, WAIT).until(lambda x: "Journal Version" in x.find_element(By.CSS_SELECTOR, "h2").text)
    assert _ads_link(d) == f"{ext.live}/arxiv/2012.07436"
    # away from an abstract: no link left behind
    d.find_element(By.ID, "search").click()
    WebDriverWait(d, WAIT).until(lambda x: x.find_elements(By.CSS_SELECTOR, "h2.s-results-title"))
    WebDriverWait(d, WAIT).until(lambda x: not x.find_elements(By.CSS_SELECTOR, "a.cool-papers-link"))
    # and back (popstate)
    d.back()
    WebDriverWait(d, WAIT).until(lambda x: "2021ApJ" in x.current_url)
    assert _ads_link(d) == f"{ext.live}/arxiv/2012.07436"
    assert not _console_errors(d, ext.id)


def test_content_script_links_each_paper_of_an_acl_volume(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get("https://aclanthology.org/volumes/2024.naacl-long/")
    links = _link(d, "a.acl-row-link")
    WebDriverWait(d, WAIT).until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "a.acl-row-link")) == 2)
    links = d.find_elements(By.CSS_SELECTOR, "a.acl-row-link")
    assert [a.get_attribute("href") for a in links] == [
        f"{ext.live}/venue/2024.naacl-long.1@ACL",
        f"{ext.live}/venue/2024.naacl-long.2@ACL",
    ]
    # in the button row (pdf, bib) where the row has one, after the title where it has none
    assert d.find_element(By.CSS_SELECTOR, ".list-button-row a.acl-row-link").get_attribute("href").endswith(".1@ACL")
    assert not _console_errors(d, ext.id)


def _popup_for(ext, url: str, *, tell: bool = False, title: str | None = None):
    """The popup of a tab showing ``url``. WebDriver cannot click the toolbar button, so activeTab is never
    granted and the browser hides the tab's address: where no content script tells it, ``tell`` passes it
    (and the title) as the toolbar click would have let the popup read it."""
    d = ext.driver
    d.switch_to.window(ext.home)
    d.get(url)
    d.switch_to.new_window("window")
    d.get(ext.url("options.html"))
    query = f"tab={_tab_id_of_other_window(ext)}"
    if tell:
        query += "&" + urlencode({"url": url, **({"title": title} if title is not None else {})})
    d.get(ext.url(f"popup.html?{query}"))
    WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    return d.find_elements(By.CSS_SELECTOR, "#papers li")


def test_popup_labels_papers_alike_on_abstract_pages_and_listings(at_backend):
    ext = at_backend
    items = _popup_for(ext, "https://arxiv.org/abs/2307.01850")
    assert [(li.find_element(By.CSS_SELECTOR, ".kind").text, li.find_element(By.CSS_SELECTOR, ".title").text) for li in items] == [
        ("arXiv · 2307.01850", "Self-Consuming Generative Models Go MAD")
    ]
    ext.go_home()
    items = _popup_for(ext, "https://arxiv.org/list/cs.CL/new")
    labels = [(li.find_element(By.CSS_SELECTOR, ".kind").text, li.find_element(By.CSS_SELECTOR, ".title").text) for li in items]
    assert labels[0][0] == "arXiv listing · cs.CL"
    assert ("arXiv · 2307.01850", "Self-Consuming Generative Models Go MAD") in labels
    assert all(" · " in kind and "venue" not in kind and "@" not in kind for kind, _ in labels)
    ext.go_home()
    items = _popup_for(ext, f"https://openaccess.thecvf.com{CVF_PAGE}")
    kind = items[0].find_element(By.CSS_SELECTOR, ".kind").text
    assert kind.startswith("CVPR 2025 · Park SplineGS") and "@" not in kind
    assert items[0].find_element(By.CSS_SELECTOR, ".title").text.startswith("SplineGS: Robust")


def test_popup_on_a_cool_papers_tab_offers_the_way_back(at_backend):
    ext, d = at_backend, at_backend.driver
    _popup_for(ext, f"{ext.live}/arxiv/2307.01850,hep-th/9901001", tell=True)
    section = d.find_element(By.ID, "sources")
    assert section.is_displayed()
    links = [(a.text, a.get_attribute("href")) for a in section.find_elements(By.CSS_SELECTOR, "a")]
    assert links == [
        ("arXiv abstract", "https://arxiv.org/abs/2307.01850"),
        ("PDF", "https://arxiv.org/pdf/2307.01850"),
        ("arXiv abstract", "https://arxiv.org/abs/hep-th/9901001"),
        ("PDF", "https://arxiv.org/pdf/hep-th/9901001"),
    ]
    before = set(d.window_handles)
    section.find_element(By.CSS_SELECTOR, "a").click()  # back to the abstract (the local copy of arxiv.org)
    ext.new_window_after(before)
    WebDriverWait(d, WAIT).until(lambda x: x.current_url == "https://arxiv.org/abs/2307.01850")
    ext.go_home()
    _popup_for(ext, f"{ext.live}/venue/B18WgG-CZ@OpenReview,2024.naacl-long.431@ACL,12@2023@IJCAI", tell=True)
    links = [(a.text, a.get_attribute("href")) for a in d.find_elements(By.CSS_SELECTOR, "#sources a")]
    assert links == [
        ("OpenReview page", "https://openreview.net/forum?id=B18WgG-CZ"),
        ("ACL Anthology page", "https://aclanthology.org/2024.naacl-long.431/"),
    ]  # IJCAI: no reverse defined, nothing extra
    ext.go_home()
    _popup_for(ext, "https://arxiv.org/abs/2307.01850", tell=True)
    assert not d.find_element(By.ID, "sources").is_displayed()


def test_popup_and_omnibox_say_no_paper_in_this_url(at_backend):
    ext, d = at_backend, at_backend.driver
    d.get(ext.url("popup.html"))
    box = WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "paste"))
    box.send_keys("https://dl.acm.org/doi/10.1145/3292500.3330701")
    before = set(d.window_handles)
    d.find_element(By.ID, "go").click()
    status = WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "paste-status").text)
    assert status.startswith("No paper in this URL")
    assert "bad" in d.find_element(By.ID, "paste-status").get_attribute("class")
    assert set(d.window_handles) == before  # no keyword search on "https dl acm org doi"
    assert ext.call({"type": "omniboxSuggest", "text": "https://github.com/bojone/rerope"})["description"] == (
        "Cool Papers: no paper in this URL"
    )
    entered = ext.call({"type": "omnibox", "text": "https://github.com/bojone/rerope", "disposition": "currentTab"})
    assert entered["ok"] is False and entered["message"].startswith("No paper in this URL")


def test_options_suggest_the_scheme_a_base_lacks(at_backend):
    ext, d = at_backend, at_backend.driver
    status = ext.set_options("127.0.0.1:5602", "newTab")
    assert status == "The address needs http:// or https:// in front. Did you mean http://127.0.0.1:5602?"
    assert ext.storage()["base"] == ext.live  # nothing saved
    use = d.find_element(By.ID, "use-suggestion")
    assert use.is_displayed() and use.text == "Use http://127.0.0.1:5602"
    use.click()
    WebDriverWait(d, WAIT).until(lambda x: x.find_element(By.ID, "status").text == "Saved.")
    assert ext.storage()["base"] == "http://127.0.0.1:5602"
    assert not d.find_element(By.ID, "use-suggestion").is_displayed()
    assert "Did you mean https://example.org/cool?" in ext.set_options("example.org/cool", "newTab")


def test_title_fallback_through_the_click_handler(at_backend):
    """A publisher's paper page: the click carries the tab's title, which becomes the search (reach.jsonl has more)."""
    ext, d = at_backend, at_backend.driver
    page = f"https://proceedings.neurips.cc{NEURIPS_PAGE}"
    before = set(d.window_handles)
    result = ext.call({"type": "redirect", "info": {"pageUrl": page, "pageTitle": "Attention is All you Need"}})
    assert result["ok"], result
    ext.new_window_after(before)
    ext.wait_loaded(f"{ext.live}/arxiv/search?highlight=1&query=Attention%20is%20All%20you%20Need")
    # the local search marks content words only, never "is", "all", "you"
    marked = {m.text.lower() for m in d.find_elements(By.CSS_SELECTOR, "mark")}
    assert marked and marked <= {"attention", "need"}, marked
    d.close()
    d.switch_to.window(ext.home)
    bad = ext.call({"type": "redirect", "info": {"pageUrl": page, "pageTitle": "<script>alert(1)</script>"}})
    assert bad["ok"] is False
    # the popup on that tab offers the same search, labelled as one
    ext.go_home()
    items = _popup_for(ext, page, tell=True, title="Attention is All you Need - NeurIPS")
    assert [li.find_element(By.CSS_SELECTOR, ".kind").text for li in items] == ["Search · Attention is All you Need"]
