"""Fixtures for the extension's build and packaging tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str):
    """Import scripts/<name>.py as a module (scripts/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_module():
    return load_script("build_extension")


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory):
    """A throwaway signing key folder: tests never touch the developer's .keys/."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def prod(build_module, key_dir, tmp_path_factory):
    return build_module.build("prod", out=tmp_path_factory.mktemp("dist"), key_dir=key_dir)


@pytest.fixture(scope="session")
def dev(build_module, key_dir, tmp_path_factory):
    return build_module.build("dev", out=tmp_path_factory.mktemp("dist"), key_dir=key_dir)
