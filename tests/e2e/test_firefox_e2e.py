"""The Firefox build in Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core (firefox/drive_firefox.mjs).

geckodriver is not available from the registries; Firefox's own WebDriver BiDi server is, and BiDi's
``webExtension.install`` loads the add-on (temporarily, as about:debugging would). The driver sends the same
test messages as the Chromium tests through the same handler the context menu calls, follows each redirect to
the backend's page, and checks the content scripts on local copies of paper pages served under their real
host names (``network.dns.localDomains``; match patterns ignore the port), ADS's pushState navigation and
the popup's way back.

Not exercised headless, and why: the context menu itself and the toolbar button (native browser UI that
neither WebDriver nor BiDi can open; the menu's handler is called instead, and the popup is loaded as a
page), typing in the address bar after the ``cool`` keyword and pressing the keyboard shortcut (browser UI;
their handlers are called instead), the permission prompts of a signed install from addons.mozilla.org
(BiDi installs temporarily, without prompts), and activeTab's grant on a user gesture (so the popup is told
the tab's address as the toolbar click would have let it read it). Notifications are created and listed
through the API; headless Firefox has no alert service, shows none and closes them at once (so they are
checked by the id the API returns, and listed only in the Chromium test).

A missing firefox-esr or node_modules fails these tests (``bash scripts/dev.sh test`` installs both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.paper_hosts import CVF_PAGE, HOSTS, PaperHosts

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("firefox") / "drive_firefox.mjs"
FIREFOX = "/usr/bin/firefox-esr"
VECTORS = [ROOT / "tests" / "data" / "resolve.jsonl", ROOT / "tests" / "data" / "reach.jsonl"]
PUBLIC_BASE = "https://papers.cool"
CONTEXT_KEY = {"selection": "selectionText", "link": "linkUrl", "page": "pageUrl", "frame": "frameUrl"}
CONTENT_PAGES = [
    ["arxiv", "https://arxiv.org:{port}/abs/2307.01850", ".extra-services a.cool-papers-link"],
    ["cvf", "https://openaccess.thecvf.com:{port}" + CVF_PAGE, "#papertitle a.cool-papers-link"],
    ["usenix", "https://www.usenix.org:{port}/conference/usenixsecurity24/presentation/xu-haichuan", "h1 a.cool-papers-link"],
    ["aaai", "https://ojs.aaai.org:{port}/index.php/AAAI/article/view/38818", "h1 a.cool-papers-link"],
    ["openreview", "https://openreview.net:{port}/forum?id=B18WgG-CZ", ".forum-title h2 a.cool-papers-link"],
]


def _vectors() -> list[dict]:
    out = []
    for path in VECTORS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                vector = json.loads(line)
                info = vector.get("info") or {CONTEXT_KEY[vector["context"]]: vector["input"]}
                out.append({"info": info, "target": vector["target"]})
    return out


@pytest.fixture(scope="module")
def firefox_extension(tmp_path_factory, live_server):
    from tests.extension.conftest import load_script

    build = load_script("build_extension")
    out = tmp_path_factory.mktemp("firefox")
    return build.build("dev", out=out, package=False, base=live_server.url, browser="firefox")


@pytest.fixture(scope="module")
def report(firefox_extension, live_server, tmp_path_factory):
    node = shutil.which("node") or "/usr/bin/node"
    if not Path(FIREFOX).exists():
        pytest.fail(f"firefox-esr is required for the Firefox end-to-end test: apt-get install firefox-esr ({FIREFOX})")
    if not (ROOT / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("puppeteer-core is required: run `npm ci` at the repository root (scripts/dev.sh test does)")
    hosts = PaperHosts(tmp_path_factory.mktemp("tls"))
    config = {
        "firefox": FIREFOX,
        "extensionDir": str(firefox_extension.directory),
        "geckoId": firefox_extension.extension_id,
        "uuid": str(uuid.uuid4()),
        "backend": live_server.url,
        "pagesPort": hosts.port,
        "hosts": HOSTS,
        "vectors": _vectors(),
        "contentPages": CONTENT_PAGES,
    }
    path = tmp_path_factory.mktemp("driver") / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    try:
        run = subprocess.run([node, str(DRIVER), str(path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    finally:
        hosts.close()
    assert run.stdout.strip(), f"no report from the driver (exit {run.returncode}): {run.stderr[-3000:]}"
    return json.loads(run.stdout)


def _local(target: str, base: str) -> str:
    assert target.startswith(PUBLIC_BASE + "/")
    return base + target[len(PUBLIC_BASE) :]


def test_firefox_loads_the_add_on_without_errors(report, firefox_extension):
    assert not report["errors"], "\n".join(report["errors"])
    assert report["version"].startswith("firefox/")
    assert report["installed"] == firefox_extension.extension_id
    # Firefox accepted the context menus and their page patterns
    assert report["handlers"]["menus"] == {"ok": True, "ids": ["cool-papers-selection-link", "cool-papers-page"]}


def test_every_vector_through_the_click_handler_in_firefox(report, live_server):
    vectors = report["vectors"]
    assert len(vectors) == len(_vectors()) >= 57
    for entry in vectors:
        result = entry["result"]
        if entry["expected"] is None:
            assert result["ok"] is False, entry
            # created (the API returned its id); headless Firefox has no alert service and closes it at once,
            # so notifications.getAll() is empty there (the Chromium test checks the list)
            assert result["message"] and result["notificationId"].startswith("cool-papers-"), entry
            continue
        expected = _local(entry["expected"], live_server.url)
        assert result["ok"] is True and result["resolution"]["target"] == expected, entry
        landed = entry["landed"]
        assert landed["url"] == expected and "Cool Papers (local)" in landed["title"], entry
        kind, ids = result["resolution"]["kind"], result["resolution"]["ids"]
        if kind in ("arxiv", "venue"):
            assert landed["ids"] == ids, entry
        elif kind == "search":
            assert landed["heading"].startswith("Search: "), entry


def test_content_scripts_in_firefox(report, live_server):
    base = live_server.url
    assert report["content"] == {
        "arxiv": f"{base}/arxiv/2307.01850",
        "cvf": f"{base}/venue/Park_SplineGS_Robust_Motion-Adaptive_Spline_for_Real-Time_Dynamic_3D_Gaussians_from@CVPR2025@CVF",
        "usenix": f"{base}/venue/xu-haichuan@usenixsecurity24@USENIX",
        "aaai": f"{base}/venue/38818@AAAI",
        "openreview": f"{base}/venue/B18WgG-CZ@OpenReview",
        "ads": [f"{base}/arxiv/2012.07436", f"{base}/arxiv/1401.1234", "none"],
    }


def test_popup_omnibox_and_paste_in_firefox(report):
    assert report["popup"]["sources"] == [
        ["arXiv abstract", "https://arxiv.org/abs/2307.01850"],
        ["PDF", "https://arxiv.org/pdf/2307.01850"],
    ]
    handlers = report["handlers"]
    assert handlers["omniboxPaper"] == {"description": "Cool Papers: open OpenReview B18WgG-CZ"}
    assert handlers["omniboxUrl"] == {"description": "Cool Papers: no paper in this URL"}
    assert handlers["pasteUrl"]["ok"] is False and handlers["pasteUrl"]["message"].startswith("No paper in this URL")
