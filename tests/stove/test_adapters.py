"""Adapters: the one interface, the NC inversion, the valve model, fault injection, and the two real
protocols against local fakes (an HTTP server on loopback for Home Assistant, a fake transport for miIO)."""

from __future__ import annotations

import inspect

import pytest
from miio import MiotDevice
from miio.exceptions import DeviceException

from backend.services.stove.adapters import (
    AdapterError,
    AdapterTimeout,
    HomeAssistantAdapter,
    MiioAdapter,
    Polarity,
    RelayAdapter,
    RelayDidNotOpen,
    RelayState,
    SimulatedAdapter,
    SimulatedStove,
)
from backend.services.stove.clock import FakeClock
from tests.stove.fake_ha import FakeHomeAssistant

# ----------------------------------------------------------------------------- interface and polarity


def test_interface_offers_only_cut_restore_state_health():
    public = {n for n, _ in inspect.getmembers(RelayAdapter, inspect.isfunction) if not n.startswith("_")}
    assert public == {"cut", "restore", "relay_state", "health"}
    for cls in (SimulatedAdapter, HomeAssistantAdapter, MiioAdapter):
        names = {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}
        assert names == public, cls
        assert not any(w in n for n in names for w in ("open", "ignite", "light", "turn_on"))


@pytest.mark.parametrize("nc_inverted, cut_switch", [(True, True), (False, False)])
def test_polarity_is_the_only_mapping(nc_inverted, cut_switch):
    p = Polarity(nc_inverted=nc_inverted)
    assert p.switch_for(loop_cut=True) is cut_switch
    assert p.switch_for(loop_cut=False) is (not cut_switch)
    assert p.state_of(cut_switch) is RelayState.CUT
    assert p.state_of(not cut_switch) is RelayState.CONDUCTING
    assert p.state_of(None) is RelayState.UNKNOWN


def _sim(wiring="NC", nc_inverted=True, release_s=1.0):
    clock = FakeClock()
    stove = SimulatedStove(["left", "right"], clock, release_s=release_s, wiring=wiring)
    return clock, stove, SimulatedAdapter(stove, Polarity(nc_inverted=nc_inverted))


@pytest.mark.parametrize("wiring, nc_inverted", [("NC", True), ("NO", False)])
def test_cut_closes_valve_when_polarity_matches_wiring(wiring, nc_inverted):
    clock, stove, adapter = _sim(wiring, nc_inverted)
    adapter.restore("left")  # NO wiring powers up open; NC powers up conducting
    assert stove.light("left")
    opened = []
    adapter.cut("left", 2.0, opened.append)
    assert opened == [clock.now() - 2.0]
    assert not stove.valve_open("left")
    assert adapter.relay_state("left") is RelayState.CONDUCTING  # pulse ended: relightable
    assert stove.light("left")


def test_wrong_polarity_setting_leaves_the_gas_on():
    # NC wiring configured as NO: the "cut" writes the switch value that keeps the NC contact closed.
    # The relay reports the same raw value back, so a read-back cannot notice: this single setting
    # (STOVE_NC_INVERTED) must match the wiring and be confirmed on the hardware.
    clock, stove, adapter = _sim("NC", nc_inverted=False)
    stove.light("left")
    writes_before = len(stove.channels["left"].writes)
    adapter.cut("left", 2.0)
    # During the whole pulse the loop conducted (the flame was never cut) ...
    assert [on for _, on in stove.channels["left"].writes[writes_before:]] == [False, True]
    # ... and the "restore" at its end opened the loop instead, leaving the burner unlightable.
    assert not stove.contact_conducts("left")


def test_pulse_shorter_than_release_time_leaves_flame_burning():
    clock, stove, adapter = _sim(release_s=1.0)
    stove.light("left")
    adapter.cut("left", 0.5)
    assert stove.valve_open("left"), "a too-short pulse must not close the valve (why hold > release)"
    adapter.cut("left", 1.5)
    assert not stove.valve_open("left")


def test_restore_never_opens_gas_and_lighting_needs_a_conducting_loop():
    clock, stove, adapter = _sim()
    stove.light("left")
    adapter._write("left", loop_cut=True)  # loop held open (e.g. relay left cut)
    clock.advance(5)
    assert not stove.valve_open("left")
    assert not stove.light("left"), "the flame dies when the knob is released while the loop is cut"
    adapter.restore("left")
    assert not stove.valve_open("left"), "restoring the loop only re-enables manual lighting"
    assert stove.light("left")


def test_fault_injection_timeouts_errors_and_stuck_contacts():
    clock, stove, adapter = _sim()
    stove.inject("left", "timeout", "error")
    with pytest.raises(AdapterTimeout):
        adapter.relay_state("left")
    with pytest.raises(AdapterError):
        adapter.restore("left")
    assert adapter.relay_state("left") is RelayState.CONDUCTING  # faults consumed
    stove.set_stuck("left", "conducting")
    with pytest.raises(RelayDidNotOpen):
        adapter.cut("left", 2.0)
    stove.set_stuck("left", "cut")
    adapter.restore("left")
    assert adapter.relay_state("left") is RelayState.CUT
    with pytest.raises(ValueError):
        stove.inject("left", "melt")
    with pytest.raises(AdapterError):
        adapter.relay_state("middle")


# ----------------------------------------------------------------------------- Home Assistant (loopback fake)


@pytest.fixture
def fake_ha():
    ha = FakeHomeAssistant("ha-secret", ["switch.relay_1", "switch.relay_2"])
    yield ha
    ha.close()


def _ha(fake_ha, token="ha-secret", timeout_s=2.0):
    return HomeAssistantAdapter(fake_ha.url, token, {"left": "switch.relay_1", "right": "switch.relay_2"},
                                Polarity(nc_inverted=True), timeout_s=timeout_s, clock=FakeClock())


def test_home_assistant_cut_pulse_and_inversion(fake_ha):
    adapter = _ha(fake_ha)
    assert adapter.health().ok
    assert adapter.relay_state("left") is RelayState.CONDUCTING  # "off" on the NC terminal conducts
    delivered = []
    adapter.cut("left", 3.0, delivered.append)
    posts = [(path, body) for method, path, body in fake_ha.calls if method == "POST"]
    # NC inversion: the cut is "turn_on", the restore "turn_off", on the burner's entity only.
    assert posts == [("/api/services/switch/turn_on", {"entity_id": "switch.relay_1"}),
                     ("/api/services/switch/turn_off", {"entity_id": "switch.relay_1"})]
    assert len(delivered) == 1
    assert fake_ha.states == {"switch.relay_1": "off", "switch.relay_2": "off"}
    assert adapter.relay_state("left") is RelayState.CONDUCTING


def test_home_assistant_errors(fake_ha):
    bad = _ha(fake_ha, token="wrong")
    with pytest.raises(AdapterError, match="rejected the access token"):
        bad.relay_state("left")
    assert not bad.health().ok
    adapter = _ha(fake_ha)
    fake_ha.states["switch.relay_1"] = "unavailable"
    assert adapter.relay_state("left") is RelayState.UNKNOWN
    fake_ha.states["switch.relay_1"] = "off"
    fake_ha.fail_status = 500
    with pytest.raises(AdapterError, match="HTTP 500"):
        adapter.restore("left")
    fake_ha.fail_status = 0
    fake_ha.delay_s = 0.5
    slow = _ha(fake_ha, timeout_s=0.1)
    with pytest.raises(AdapterTimeout):
        slow.relay_state("left")


def test_home_assistant_unreachable():
    adapter = HomeAssistantAdapter("http://127.0.0.1:9", "t", {"left": "switch.x"}, Polarity(True), timeout_s=0.5)
    with pytest.raises(AdapterError, match="unreachable"):
        adapter.restore("left")


# ----------------------------------------------------------------------------- python-miio (fake transport)


class FakeMiotTransport:
    """Stands in for python-miio's MiIOProtocol: answers the MIoT property calls of a relay."""

    def __init__(self, props: dict[tuple[int, int], bool]) -> None:
        self.props = dict(props)
        self.sent: list[tuple[str, object]] = []
        self.fail_next: list[str] = []

    def send(self, command, parameters=None, retry_count=3, *, extra_parameters=None):
        self.sent.append((command, parameters))
        if self.fail_next:
            kind = self.fail_next.pop(0)
            raise DeviceException("No response from the device" if kind == "timeout" else "device error -5001")
        if command == "miIO.info":
            return {"model": "fake.relay.4ch", "fw_ver": "1.0", "hw_ver": "esp32", "token": "0" * 32,
                    "mac": "00:00:00:00:00:00", "ap": {}, "netif": {}}
        out = []
        for p in parameters:
            key = (p["siid"], p["piid"])
            if key not in self.props:
                out.append({**p, "code": -4003})
            elif command == "set_properties":
                self.props[key] = p["value"]
                out.append({"did": p["did"], "siid": p["siid"], "piid": p["piid"], "code": 0})
            else:
                out.append({**p, "code": 0, "value": self.props[key]})
        return out


def _miio(props=None):
    transport = FakeMiotTransport(props or {(2, 1): False, (3, 1): False})
    device = MiotDevice("127.0.0.1", "0" * 32, mapping={})
    device._protocol = transport  # the miIO UDP transport replaced by the fake; payloads are python-miio's
    adapter = MiioAdapter("127.0.0.1", "0" * 32, {"left": (2, 1), "right": (3, 1)}, Polarity(nc_inverted=True),
                          clock=FakeClock(), device=device)
    return transport, adapter


def test_miio_cut_uses_siid_piid_and_nc_inversion():
    transport, adapter = _miio()
    assert adapter.relay_state("right") is RelayState.CONDUCTING
    adapter.cut("right", 3.0)
    sets = [params[0] for cmd, params in transport.sent if cmd == "set_properties"]
    assert [(p["siid"], p["piid"], p["value"]) for p in sets] == [(3, 1, True), (3, 1, False)]
    assert transport.props == {(2, 1): False, (3, 1): False}
    health = adapter.health()
    assert health.ok and "fake.relay.4ch" in health.detail


def test_miio_faults():
    transport, adapter = _miio()
    transport.fail_next = ["timeout"]
    with pytest.raises(AdapterTimeout):
        adapter.restore("left")
    transport.fail_next = ["error"]
    with pytest.raises(AdapterError, match="miIO relay error"):
        adapter.relay_state("left")
    transport, adapter = _miio({(3, 1): False})  # left's property missing on this model
    with pytest.raises(AdapterError, match="code -4003"):
        adapter.restore("left")
    transport.fail_next = ["timeout"]
    assert not adapter.health().ok


def test_a_failing_delivery_callback_does_not_cut_the_pulse_short():
    clock, stove, adapter = _sim()
    stove.light("left")

    def broken(_t):
        raise RuntimeError("database is locked")

    adapter.cut("left", 2.0, broken)
    assert not stove.valve_open("left") and stove.contact_conducts("left")
