"""Fixtures for the stove tests: a fake-clock rig for the pure core and a fast-timing app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from backend import create_app
from backend.services.stove.adapters import Polarity, SimulatedAdapter, SimulatedStove
from backend.services.stove.clock import FakeClock
from backend.services.stove.controller import Alerter, ControllerSettings, StoveController
from backend.services.stove.persistence import StoveStore
from tests.conftest import config_for_tests

BURNERS = ["left", "right"]

# Real-time settings for app tests: a short pulse that still exceeds the (simulated) valve release time.
FAST = {
    "STOVE_CUT_HOLD_S": 0.3,
    "STOVE_VALVE_RELEASE_S": 0.1,
    "STOVE_SIM_RELEASE_S": 0.1,
    "STOVE_RETRY_BASE_S": 0.02,
    "STOVE_RETRY_MAX_S": 0.05,
    "STOVE_POLL_S": 0.05,
    "STOVE_REQUEST_WAIT_S": 10.0,
}


@dataclass
class Rig:
    clock: FakeClock
    store: StoveStore
    stove: SimulatedStove
    adapter: SimulatedAdapter
    ctl: StoveController
    pushed: list

    def run(self, burner: str = "left"):
        """Execute every pending command of ``burner`` (what the scheduler's worker does)."""
        last = None
        while (cmd := self.ctl.execute_next(burner)) is not None:
            last = cmd
        return last


def make_rig(tmp_path: Path, *, nc_inverted: bool = True, wiring: str = "NC", **settings) -> Rig:
    clock = FakeClock()
    store = StoveStore(str(tmp_path / "stove.sqlite3"))
    stove = SimulatedStove(BURNERS, clock, release_s=1.0, wiring=wiring)
    adapter = SimulatedAdapter(stove, Polarity(nc_inverted=nc_inverted))
    pushed: list = []
    opts = dict(hold_s=3.0, valve_release_s=1.0, retry_attempts=4, retry_base_s=0.5, retry_max_s=2.0,
                readback_attempts=3)
    opts.update(settings)
    ctl = StoveController(store, adapter, clock, ControllerSettings(**opts), Alerter(store, clock, pushed.append))
    return Rig(clock, store, stove, adapter, ctl, pushed)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


@pytest.fixture
def stove_app(tmp_path: Path):
    app = create_app(config_for_tests(tmp_path, STOVE_API_TOKEN="test-token-0123456789", **FAST))
    yield app
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()


@pytest.fixture
def stove_client(stove_app):
    return stove_app.test_client()


AUTH = {"Authorization": "Bearer test-token-0123456789"}
