"""scripts/build_extension.py --browser firefox: the Firefox manifest, the AMO package and Mozilla's addons-linter."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINTER = ROOT / "node_modules" / ".bin" / "addons-linter"


@pytest.fixture(scope="module")
def firefox(build_module, tmp_path_factory):
    return build_module.build("prod", out=tmp_path_factory.mktemp("dist"), browser="firefox")


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def test_firefox_manifest(firefox, prod):
    m, chrome = _manifest(firefox.directory), _manifest(prod.directory)
    assert m["manifest_version"] == 3
    assert m["background"] == {"scripts": ["background.js"], "type": "module"}
    gecko = m["browser_specific_settings"]["gecko"]
    assert gecko["id"] == firefox.extension_id == "cool-papers-redirector@papers.cool"
    assert gecko["strict_min_version"] and gecko["data_collection_permissions"] == {"required": ["none"]}
    assert "key" not in m and "minimum_chrome_version" not in m
    # the same extension otherwise: permissions, content scripts, pages, commands, omnibox
    for key in ("permissions", "content_scripts", "action", "options_ui", "commands", "omnibox", "default_locale", "icons"):
        assert m[key] == chrome[key], key
    assert "host_permissions" not in m
    assert firefox.browser == "firefox" and firefox.crx_path is None
    assert '"browser": "firefox"' in (firefox.directory / "build-config.js").read_text()


def test_amo_package_is_the_folder(firefox):
    assert firefox.zip_path.name == f"cool-papers-redirector-{firefox.version}-firefox.zip"
    xpi = firefox.zip_path.with_suffix(".xpi")
    assert xpi.read_bytes() == firefox.zip_path.read_bytes()
    with zipfile.ZipFile(firefox.zip_path) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read("manifest.json")) == _manifest(firefox.directory)
    shipped = {p.relative_to(firefox.directory).as_posix() for p in firefox.directory.rglob("*") if p.is_file()}
    assert names == shipped and "manifest.json" in names and not any(n.startswith("test/") for n in names)


def test_validation_knows_firefox(build_module, firefox, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(firefox.directory, broken)
    m = _manifest(broken)
    m["background"] = {"service_worker": "background.js", "type": "module"}
    del m["browser_specific_settings"]
    m["key"] = "x"
    (broken / "manifest.json").write_text(json.dumps(m))
    problems = "\n".join(build_module.validate(broken, target="prod", browser="firefox"))
    assert "background.scripts" in problems and "gecko needs an id" in problems and "no key" in problems
    assert build_module.validate(firefox.directory, target="prod", browser="firefox") == []


def test_cli_builds_firefox(build_module, tmp_path, capsys):
    assert build_module.main(["--browser", "firefox", "--target", "dev", "--out", str(tmp_path), "--no-package"]) == 0
    out = capsys.readouterr().out
    assert "browser firefox" in out and "cool-papers-redirector@papers.cool" in out
    assert _manifest(tmp_path / "firefox-dev")["name"] == "__MSG_extNameDev__"
    with pytest.raises(SystemExit):
        build_module.main(["--browser", "safari"])


def test_addons_linter_finds_no_errors(firefox):
    """Mozilla's own linter (npm addons-linter, installed by `npm ci`), as addons.mozilla.org runs it."""
    node = shutil.which("node") or "/usr/bin/node"
    assert LINTER.exists(), "addons-linter is missing: run `npm ci` at the repository root (scripts/dev.sh test does)"
    run = subprocess.run(
        [node, str(LINTER), "--output", "json", str(firefox.zip_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    report = json.loads(run.stdout)
    assert report["summary"]["errors"] == 0, json.dumps(report["errors"], indent=1)
    # warnings are not fatal on AMO, but this build has none: keep it so
    assert report["summary"]["warnings"] == 0, json.dumps(report["warnings"], indent=1)
