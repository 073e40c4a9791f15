"""Settings validation, adapter selection, alert pushing and the API token file."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.config import load_config
from backend.services.stove.adapters import HomeAssistantAdapter, MiioAdapter, SimulatedAdapter
from backend.services.stove.clock import FakeClock
from backend.services.stove.service import (
    ConfigError,
    StoveService,
    StoveSettings,
    build_adapter,
    resolve_api_token,
)


def cfg(tmp_path, **over):
    base = {"STOVE_DB": str(tmp_path / "s.sqlite3")}
    base.update(over)
    return load_config(base, environ={})


def test_defaults_are_valid_and_simulated(tmp_path):
    s = StoveSettings.from_config(cfg(tmp_path))
    assert s.burners == ("left", "right") and s.adapter == "simulated" and s.nc_inverted is True
    assert s.controller.hold_s > s.controller.valve_release_s
    assert isinstance(build_adapter(s, FakeClock()), SimulatedAdapter)


@pytest.mark.parametrize("over, fragment", [
    ({"STOVE_BURNERS": []}, "STOVE_BURNERS must have at least 1 item"),
    ({"STOVE_BURNERS": ["Left"]}, "STOVE_BURNERS[0] must be a burner id"),
    ({"STOVE_ADAPTER": "zigbee"}, "STOVE_ADAPTER must be one of 'simulated', 'home_assistant', 'miio'"),
    ({"STOVE_CUT_HOLD_S": 1.0, "STOVE_VALVE_RELEASE_S": 2.0}, "STOVE_CUT_HOLD_S must be longer than"),
    ({"STOVE_NC_INVERTED": "ture"}, "STOVE_NC_INVERTED must be a boolean"),
])
def test_settings_edited_after_start_are_checked_again(tmp_path, over, fragment):
    """from_config re-checks its keys through the typed layer, so a mapping changed after load_config
    (e.g. app.config before the service is built) cannot slip a bad value into the core."""
    config = cfg(tmp_path)
    config.update(over)
    with pytest.raises(ConfigError) as err:
        StoveSettings.from_config(config)
    assert str(err.value).startswith(fragment) and "(from the stove settings)" in str(err.value)


def test_missing_key_is_reported(tmp_path):
    config = cfg(tmp_path)
    del config["STOVE_CUT_HOLD_S"]
    with pytest.raises(ConfigError, match="missing setting STOVE_CUT_HOLD_S"):
        StoveSettings.from_config(config)


def test_real_adapters_are_built_from_config(tmp_path):
    ha = StoveSettings.from_config(cfg(tmp_path, STOVE_ADAPTER="home_assistant", STOVE_HA_TOKEN="t" * 20,
                                       STOVE_HA_URL="http://127.0.0.1:8123/"))
    adapter = build_adapter(ha, FakeClock())
    assert isinstance(adapter, HomeAssistantAdapter) and adapter.base_url == "http://127.0.0.1:8123"
    assert adapter.entities == {"left": "switch.stove_relay_1", "right": "switch.stove_relay_2"}
    mi = StoveSettings.from_config(cfg(tmp_path, STOVE_ADAPTER="miio", STOVE_MIIO_IP="127.0.0.1",
                                       STOVE_MIIO_TOKEN="ab" * 16, STOVE_NC_INVERTED=False))
    adapter = build_adapter(mi, FakeClock())
    assert isinstance(adapter, MiioAdapter) and adapter.props == {"left": (2, 1), "right": (3, 1)}
    assert adapter.polarity.nc_inverted is False


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [200, 500])
def test_unreachable_device_at_timer_time_pushes_an_alert(tmp_path, status):
    receiver = Receiver(status)
    try:
        clock = FakeClock()
        settings = StoveSettings.from_config(cfg(tmp_path, STOVE_ALERT_WEBHOOK=receiver.url, STOVE_RETRY_ATTEMPTS=2))
        service = StoveService(settings, clock=clock)
        service.adapter.stove.inject("left", "timeout", "timeout")
        service.controller.arm_timer("left", 1, "alice")
        clock.advance(60)
        service.controller.fire_due_timers()
        assert service.controller.execute_next("left").status == "failed"
        assert len(receiver.received) == 1
        alert = receiver.received[0]
        assert alert["burner"] == "left" and "NOT delivered" in alert["message"]
        assert alert["who"] == "timer (armed by alice)" and "alice" not in alert["message"]
        stored = service.store.list_alerts()[0]
        assert stored["pushed"] == (1 if status == 200 else 0)
        push_rows = [r for r in service.store.list_audit(limit=50) if r["action"] == "alert_push"]
        assert len(push_rows) == (0 if status == 200 else 1)
    finally:
        receiver.close()


def test_token_configured_wins(tmp_path):
    assert resolve_api_token("abc", str(tmp_path / "t")) == ("abc", "STOVE_API_TOKEN")
    assert not (tmp_path / "t").exists()


def test_token_generated_once_even_when_raced(tmp_path):
    path = str(tmp_path / "inst" / "token")
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda _: resolve_api_token("", path)[0], range(16)))
    assert len(set(tokens)) == 1 and len(tokens[0]) >= 32
    (tmp_path / "inst" / "token").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_api_token("", path)
