"""Fixtures shared by every test: a testing app whose files all live in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backend import create_app
from backend.config import DEFAULTS

DATA = Path(__file__).parent / "data"
PATH_SUFFIXES = ("_DB", "_DIR", "_FILE")


def config_for_tests(tmp: Path, **overrides) -> dict:
    """Testing settings: responses checked against their schemas, every path setting under ``tmp``."""
    config = {"TESTING": True, "VALIDATE_RESPONSES": True, "INSTANCE_DIR": str(tmp / "instance"),
              # A first request compiles kernels or loads a model (a background warm-up does it in production):
              # on a busy test machine that alone can pass the default overrun deadline.
              "SYNC_OVERRUN_FACTOR": 10.0}
    for key in DEFAULTS:
        if key.endswith(PATH_SUFFIXES) and key != "INSTANCE_DIR":
            suffix = ".sqlite3" if key.endswith("_DB") else ""
            config[key] = str(tmp / (key.lower() + suffix))
    config.update(overrides)
    return config


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The suite shares two cores with the browser and the servers it starts: torch gets one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def app(tmp_path: Path):
    app = create_app(config_for_tests(tmp_path))
    yield app
    shutdown = app.extensions.get("shutdown_hooks", [])
    for hook in shutdown:
        hook()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_app(tmp_path: Path):
    """create_app with test settings and overrides; every app made is shut down after the test (its stove
    scheduler too)."""
    made = []

    def make(**settings):
        app = create_app(config_for_tests(tmp_path / f"app{len(made)}", **settings))
        made.append(app)
        return app

    yield make
    for app in made:
        for hook in app.extensions.get("shutdown_hooks", []):
            hook()
