"""Command lines refuse a bad setting with one line on stderr and exit status 2, no traceback (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _SETTING_NAMES}
    clean.update(BACKEND_INSTANCE_DIR=str(tmp_path / "instance"), **env)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def _names() -> set[str]:
    from backend.config import DEFAULTS

    return set(DEFAULTS)


_SETTING_NAMES = _names()


@pytest.mark.parametrize("args, env, expected", [
    (["-m", "backend", "serve"], {"STOVE_NC_INVERTED": "ture"},
     "configuration error: STOVE_NC_INVERTED must be a boolean (1/0/true/false/yes/no/on/off, any case); "
     "got 'ture' (from the environment variable)"),
    (["-m", "backend", "serve", "--port", "99999"], {},
     "configuration error: PORT must be less than or equal to 65535; got 99999 (from the create_app config)"),
    (["-m", "backend.services.stove", "--set", "STOVE_POLL_S=0"], {},
     "configuration error: STOVE_POLL_S must be greater than or equal to 0.01; got '0' (from the --set option)"),
    (["-m", "backend.services.stove"], {"STOVE_API_TOKEN": " padded-token-0123456789 "},
     "configuration error: STOVE_API_TOKEN must be a token without surrounding whitespace (or empty); "
     "got <hidden, 25 characters> (from the environment variable)"),
    (["-m", "backend.jobs.worker"], {"JOBS_WORKERS": "0"},
     "configuration error: JOBS_WORKERS must be greater than or equal to 1; got '0' (from the environment variable)"),
])
def test_bad_setting_is_one_line_and_exit_2(tmp_path, args, env, expected):
    done = run(args, tmp_path, **env)
    assert done.returncode == 2, done.stderr
    assert done.stderr == expected + "\n"
    assert "Traceback" not in done.stdout + done.stderr


def test_stove_db_that_is_a_folder_stops_the_standalone_scheduler(tmp_path):
    done = run(["-m", "backend.services.stove", "--set", f"STOVE_DB={tmp_path}"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("configuration error: STOVE_DB must be a file path (not a folder)")
    assert done.stderr.count("\n") == 1 and "unable to open database file" not in done.stderr
