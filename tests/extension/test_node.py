"""Runs the extension's Node 20 tests (extension/test/*.test.mjs): resolver vectors, service worker, settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_node_test_suite_passes():
    node = shutil.which("node") or "/usr/bin/node"
    assert Path(node).exists(), "Node 20 is required: the extension's JS tests cannot run without it"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, version
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "extension" / "test").glob("*.test.mjs"))
    assert len(files) >= 3
    run = subprocess.run([node, "--test", *files], capture_output=True, text=True, cwd=ROOT, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    passed = int(re.search(r"^# pass (\d+)", output, re.M).group(1))
    assert re.search(r"^# fail 0$", output, re.M), output[-4000:]
    assert passed >= 60, output[-2000:]
