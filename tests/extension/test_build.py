"""scripts/build_extension.py: rendering, the shipped files, validation and the zip."""

from __future__ import annotations

import io
import json
import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"contextMenus", "notifications", "storage", "activeTab"}


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def test_version_comes_from_pyproject(prod, dev):
    with open(ROOT / "pyproject.toml", "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    assert prod.version == dev.version == version
    assert _manifest(prod.directory)["version"] == version
    assert "{{" not in (prod.directory / "manifest.json").read_text()


def test_prod_manifest_is_minimal(prod):
    m = _manifest(prod.directory)
    assert m["manifest_version"] == 3
    assert set(m["permissions"]) <= ALLOWED
    assert "host_permissions" not in m and "optional_host_permissions" not in m
    assert "key" not in m
    assert m["name"] == "__MSG_extName__"
    assert m["background"] == {"service_worker": "background.js", "type": "module"}
    assert m["omnibox"] == {"keyword": "cool"}
    assert "redirect-current-tab" in m["commands"]
    for script in m["content_scripts"]:
        for pattern in script["matches"]:
            host = pattern.split("://", 1)[1].split("/", 1)[0]
            assert host in {
                "arxiv.org", "www.arxiv.org", "export.arxiv.org", "openreview.net", "aclanthology.org",
                "openaccess.thecvf.com", "www.usenix.org", "ojs.aaai.org", "ui.adsabs.harvard.edu",
            }


def test_targets_differ_only_where_they_should(prod, dev):
    assert "https://papers.cool" in (prod.directory / "build-config.js").read_text()
    assert '"target": "dev"' in (dev.directory / "build-config.js").read_text()
    assert "http://127.0.0.1:5000" in (dev.directory / "build-config.js").read_text()
    m = _manifest(dev.directory)
    assert m["name"] == "__MSG_extNameDev__"
    assert m["key"]  # the unpacked dev build keeps the CRX's id


def test_only_runtime_files_ship(prod):
    shipped = {p.relative_to(prod.directory).as_posix() for p in prod.directory.rglob("*") if p.is_file()}
    assert not [name for name in shipped if name.startswith("test/") or name.endswith(".test.mjs")]
    expected = {
        "manifest.json",
        "background.js",
        "resolver.js",
        "rules.json",
        "settings.js",
        "hosts.js",
        "i18n.js",
        "labels.js",
        "sources.js",
        "build-config.js",
        "popup.html",
        "popup.js",
        "options.html",
        "options.js",
        "pages.css",
        "content/content.js",
        "content/content.css",
        "_locales/en/messages.json",
        "_locales/zh_CN/messages.json",
        "icons/icon16.png",
        "icons/icon32.png",
        "icons/icon48.png",
        "icons/icon128.png",
    }
    assert shipped == expected
    # rules.json ships unchanged: the one hand-edited source of the grammar
    assert (prod.directory / "rules.json").read_bytes() == (ROOT / "extension" / "rules.json").read_bytes()


def test_zip_is_the_folder_without_key_and_is_reproducible(build_module, dev, key_dir, tmp_path):
    with zipfile.ZipFile(dev.zip_path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert names == {p.relative_to(dev.directory).as_posix() for p in dev.directory.rglob("*") if p.is_file()}
    assert "key" not in manifest
    assert dev.zip_path.name == f"cool-papers-redirector-{dev.version}-dev.zip"
    again = build_module.build("dev", out=tmp_path, key_dir=key_dir)
    assert again.zip_path.read_bytes() == dev.zip_path.read_bytes()


def test_prod_package_names(prod):
    assert prod.zip_path.name == f"cool-papers-redirector-{prod.version}.zip"
    assert prod.crx_path.name == f"cool-papers-redirector-{prod.version}.crx"
    with zipfile.ZipFile(io.BytesIO(prod.zip_path.read_bytes())) as archive:
        assert archive.testzip() is None


def test_the_built_folders_validate(build_module, prod, dev):
    assert build_module.validate(prod.directory, target="prod") == []
    assert build_module.validate(dev.directory, target="dev") == []


def _broken_copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ext"
    shutil.copytree(source, target)
    return target


def _edit_manifest(directory: Path, change) -> None:
    m = _manifest(directory)
    change(m)
    (directory / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (lambda d: (d / "icons" / "icon48.png").unlink(), "missing file 'icons/icon48.png'"),
        (
            lambda d: (d / "icons" / "icon48.png").write_bytes((d / "icons" / "icon16.png").read_bytes()),
            "not a 48x48 PNG",
        ),
        (lambda d: (d / "content" / "content.js").unlink(), "missing file 'content/content.js'"),
        (lambda d: (d / "settings.js").unlink(), "import in background.js: missing file 'settings.js'"),
        (lambda d: _edit_manifest(d, lambda m: m["permissions"].append("tabs")), "permission 'tabs' is not allowed"),
        (
            lambda d: _edit_manifest(d, lambda m: m.__setitem__("host_permissions", ["<all_urls>"])),
            "host_permissions must be empty",
        ),
        (lambda d: _edit_manifest(d, lambda m: m["content_scripts"][0]["matches"].append("https://*/*")), "too broad"),
        (lambda d: _edit_manifest(d, lambda m: m["content_scripts"][0]["matches"].append("<all_urls>")), "too broad"),
        (lambda d: _edit_manifest(d, lambda m: m.__setitem__("version", "1.0-beta")), "not 1-4 dot-separated integers"),
        (lambda d: _edit_manifest(d, lambda m: m.__setitem__("key", "abc")), "must not carry a key"),
        (
            lambda d: _edit_manifest(d, lambda m: m["permissions"].remove("notifications")),
            "chrome.notifications is used but",
        ),
        (lambda d: _edit_manifest(d, lambda m: m["background"].pop("type")), "must be an ES module"),
        (
            lambda d: (d / "popup.html").write_text(
                (d / "popup.html").read_text().replace("</body>", "<script>alert(1)</script></body>")
            ),
            "inline scripts",
        ),
        (
            lambda d: (d / "options.html").write_text(
                (d / "options.html")
                .read_text()
                .replace("</body>", '<script src="https://cdn.example/x.js"></script></body>')
            ),
            "remote code",
        ),
        (
            lambda d: (d / "popup.html").write_text(
                (d / "popup.html").read_text().replace('data-i18n="popupGo"', 'data-i18n="popupGoo"')
            ),
            "lacks the message 'popupGoo'",
        ),
        (lambda d: _drop_message(d, "zh_CN", "menuRedirect"), "_locales/zh_CN lacks the message 'menuRedirect'"),
        (lambda d: (d / "rules.json").write_text("{"), "rules.json unreadable"),
        (
            lambda d: _edit_rules(d, lambda r: r["pageHosts"]["patterns"].append("arxiv.org/*")),
            "not a valid match pattern",
        ),
        (
            lambda d: _edit_rules(d, lambda r: r["pageHosts"]["patterns"].append("https://a*b.org/*")),
            "not a valid match",
        ),
        (lambda d: _edit_rules(d, lambda r: r.pop("pageHosts")), "no pageHosts.patterns"),
        (
            lambda d: _edit_manifest(d, lambda m: m["content_scripts"][0]["matches"].append("https://arxiv.org")),
            "not a valid",
        ),
        (lambda d: (d / "resolver.js").write_text((d / "resolver.js").read_text() + "\neval('1');\n"), "eval"),
    ],
)
def test_validation_names_each_problem(build_module, prod, tmp_path, breakage, problem):
    directory = _broken_copy(prod.directory, tmp_path)
    breakage(directory)
    problems = build_module.validate(directory, target="prod")
    assert any(problem in p for p in problems), problems


def _edit_rules(directory: Path, change) -> None:
    path = directory / "rules.json"
    rules = json.loads(path.read_text(encoding="utf-8"))
    change(rules)
    path.write_text(json.dumps(rules), encoding="utf-8")


def _drop_message(directory: Path, locale: str, key: str) -> None:
    path = directory / "_locales" / locale / "messages.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data[key]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_cli_builds_and_prints_the_id(build_module, key_dir, tmp_path, capsys):
    assert build_module.main(["--target", "prod", "--out", str(tmp_path), "--key-dir", str(key_dir)]) == 0
    out = capsys.readouterr().out
    key = build_module.load_or_create_key(key_dir)
    assert f"extension id: {build_module.extension_id(build_module.public_key_der(key))}" in out
    assert (tmp_path / "prod" / "manifest.json").exists()


def test_cli_rejects_an_unknown_target(build_module):
    with pytest.raises(SystemExit):
        build_module.main(["--target", "beta"])


def test_icons_are_reproducible(tmp_path):
    from tests.extension.conftest import load_script

    icons = load_script("make_extension_icons")
    for size in icons.SIZES:
        icons.draw_icon(size).save(tmp_path / f"icon{size}.png", format="PNG", optimize=True)
        assert (tmp_path / f"icon{size}.png").read_bytes() == (
            ROOT / "extension" / "icons" / f"icon{size}.png"
        ).read_bytes()
