"""Relay adapters: the only code that talks to the relay in the thermocouple loop.

Physical setting: a relay contact sits in series with the thermocouple -> safety-magnet loop of each
burner. Breaking the loop drops the holding current and the gas valve closes; closing the loop again
never reopens the valve (that needs a hand on the knob). So every adapter offers exactly four things:
``cut`` (a pulse: break, hold, close again), ``restore`` (close the loop, re-enables *manual* lighting),
``relay_state`` and ``health``. There is deliberately no method that could open the gas.

Relay firmware thinks in "switch on/off". Which of those breaks the loop depends on the wiring (on the
normally-closed terminal, "on" energises the coil and *opens* the contact). That translation lives in
exactly one place, :class:`Polarity`; concrete adapters only move raw switch values.
"""

from __future__ import annotations

import enum
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.services.stove.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class RelayState(enum.StrEnum):
    CONDUCTING = "conducting"  # loop closed: the valve can be held open by the thermocouple
    CUT = "cut"  # loop open: no holding current, the valve closes
    UNKNOWN = "unknown"


class AdapterError(Exception):
    """The relay could not be reached or did not do what was asked."""


class AdapterTimeout(AdapterError):
    """The relay did not answer in time."""


class RelayDidNotOpen(AdapterError):
    """The cut command was accepted but the read-back still shows a conducting loop."""


@dataclass(frozen=True)
class Polarity:
    """THE one place where 'loop cut' is mapped to the relay firmware's switch value.

    ``nc_inverted=True`` (the article's wiring, normally-closed terminal): firmware "on" energises the
    coil, which opens the NC contact, so "on" means the gas is cut. ``nc_inverted=False`` (normally-open
    terminal): "on" closes the contact, so "on" means conducting.
    """

    nc_inverted: bool = True

    def switch_for(self, loop_cut: bool) -> bool:
        """Raw switch value that puts the loop in the wanted state."""
        return loop_cut if self.nc_inverted else not loop_cut

    def state_of(self, switch_on: bool | None) -> RelayState:
        """Loop state from a raw switch value (``None``: the device did not say)."""
        if switch_on is None:
            return RelayState.UNKNOWN
        loop_cut = switch_on if self.nc_inverted else not switch_on
        return RelayState.CUT if loop_cut else RelayState.CONDUCTING


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "error", "detail": self.detail}


class RelayAdapter(ABC):
    """Common behaviour of every adapter. Subclasses implement only raw switch I/O and a health probe."""

    kind = "abstract"

    def __init__(self, burners: list[str], polarity: Polarity, clock: Clock | None = None) -> None:
        self.burners = list(burners)
        self.polarity = polarity
        self.clock: Clock = clock or SystemClock()

    # ---- the public interface (the only things the controller may call) ----
    def cut(self, burner: str, hold_s: float, on_open: Callable[[float], None] | None = None,
            guard: Callable[[], None] | None = None) -> None:
        """Break the loop, confirm it is broken, hold ``hold_s`` seconds, then close it again.

        ``on_open(t)`` is called once the break is confirmed (t = clock time): that is the moment the
        cut is *delivered*. Raises AdapterError if the break cannot be confirmed (nothing delivered),
        or if closing the loop afterwards fails (delivered, but not restored). ``guard()`` runs before
        each command to the relay and may raise to stop there (a scheduler that lost its leadership
        leaves the relay to the new leader; a loop left open is the safe direction).
        """
        self._check_burner(burner)
        if guard is not None:
            guard()
        self._write(burner, loop_cut=True)
        state = self.relay_state(burner)
        if state is not RelayState.CUT:
            raise RelayDidNotOpen(f"relay for burner {burner!r} reads {state.value} after the cut command")
        if on_open is not None:
            try:
                on_open(self.clock.now())
            except Exception:  # bookkeeping must never cut the pulse short or leave it unrestored
                log.exception("cut delivery callback failed for burner %s", burner)
        self.clock.sleep(hold_s)
        if guard is not None:
            guard()
        self._write(burner, loop_cut=False)

    def restore(self, burner: str) -> None:
        """Close the loop so the burner can be lit again by hand. Never opens the gas valve."""
        self._check_burner(burner)
        self._write(burner, loop_cut=False)

    def relay_state(self, burner: str) -> RelayState:
        self._check_burner(burner)
        return self.polarity.state_of(self._read_switch(burner))

    @abstractmethod
    def health(self) -> Health:
        ...

    # ---- raw I/O implemented per protocol ----
    def _write(self, burner: str, *, loop_cut: bool) -> None:
        self._write_switch(burner, self.polarity.switch_for(loop_cut))

    @abstractmethod
    def _write_switch(self, burner: str, on: bool) -> None:
        ...

    @abstractmethod
    def _read_switch(self, burner: str) -> bool | None:
        ...

    def _check_burner(self, burner: str) -> None:
        if burner not in self.burners:
            raise AdapterError(f"unknown burner {burner!r}")


# --------------------------------------------------------------------------- simulated hardware


@dataclass
class _Channel:
    switch_on: bool = False  # firmware state; power-on default "off" = NC contact conducting
    valve_open: bool = False
    loop_open_since: float | None = None
    stuck: str | None = None  # None, "cut" or "conducting": the contact ignores the coil
    fail_next: list[str] = field(default_factory=list)  # queued faults: "timeout" / "error"
    writes: list[tuple[float, bool]] = field(default_factory=list)


class SimulatedStove:
    """A stove with a flame-failure valve per burner and a relay channel in each thermocouple loop.

    Valve model: ``light`` (a person pressing the knob and igniting) only keeps the valve open while
    the loop conducts; once the loop has been open for ``release_s`` the magnet lets go and the valve
    stays closed until lit again by hand. A pulse shorter than ``release_s`` leaves the flame burning.
    The relay reports its real contact position (so a stuck contact is visible on read-back).
    """

    def __init__(self, burners: list[str], clock: Clock, *, release_s: float = 1.0,
                 wiring: str = "NC") -> None:
        if wiring not in ("NC", "NO"):
            raise ValueError("wiring must be 'NC' or 'NO'")
        self.clock = clock
        self.release_s = float(release_s)
        self.wiring = wiring
        self._lock = threading.RLock()
        # Power-on state: firmware "off"; on NC wiring that conducts, on NO wiring it is open.
        self.channels = {b: _Channel() for b in burners}
        for b in burners:
            if not self._contact_conducts(self.channels[b]):
                self.channels[b].loop_open_since = clock.now()

    # -- fault injection --
    def inject(self, burner: str, *faults: str) -> None:
        """Queue faults for the next relay calls: 'timeout' or 'error', consumed one per call."""
        with self._lock:
            for f in faults:
                if f not in ("timeout", "error"):
                    raise ValueError(f"unknown fault {f!r}")
                self.channels[burner].fail_next.append(f)

    def set_stuck(self, burner: str, stuck: str | None) -> None:
        """Weld the contact 'cut' or 'conducting' (None: healthy)."""
        if stuck not in (None, "cut", "conducting"):
            raise ValueError("stuck must be None, 'cut' or 'conducting'")
        with self._lock:
            ch = self.channels[burner]
            self._settle(ch)
            was = self._contact_conducts(ch)
            ch.stuck = stuck
            self._contact_changed(ch, was)

    # -- a person at the stove --
    def light(self, burner: str) -> bool:
        """Press the knob and ignite. Returns whether the flame stays lit after letting go."""
        with self._lock:
            ch = self.channels[burner]
            self._settle(ch)
            ch.valve_open = self._contact_conducts(ch)
            return ch.valve_open

    def valve_open(self, burner: str) -> bool:
        with self._lock:
            ch = self.channels[burner]
            self._settle(ch)
            return ch.valve_open

    def contact_conducts(self, burner: str) -> bool:
        with self._lock:
            return self._contact_conducts(self.channels[burner])

    # -- the relay's own protocol (what a device driver sees) --
    def set_switch(self, burner: str, on: bool) -> None:
        with self._lock:
            ch = self._channel_for_call(burner)
            self._settle(ch)
            was = self._contact_conducts(ch)
            ch.switch_on = bool(on)
            ch.writes.append((self.clock.now(), bool(on)))
            self._contact_changed(ch, was)

    def get_switch(self, burner: str) -> bool:
        with self._lock:
            ch = self._channel_for_call(burner)
            conducts = self._contact_conducts(ch)
            # Report the contact translated back to the firmware convention of this wiring.
            return (not conducts) if self.wiring == "NC" else conducts

    # -- internals --
    def _channel_for_call(self, burner: str) -> _Channel:
        ch = self.channels[burner]
        if ch.fail_next:
            fault = ch.fail_next.pop(0)
            if fault == "timeout":
                raise AdapterTimeout(f"simulated timeout talking to relay for {burner!r}")
            raise AdapterError(f"simulated relay error for {burner!r}")
        return ch

    def _contact_conducts(self, ch: _Channel) -> bool:
        if ch.stuck is not None:
            return ch.stuck == "conducting"
        return (not ch.switch_on) if self.wiring == "NC" else ch.switch_on

    def _contact_changed(self, ch: _Channel, was_conducting: bool) -> None:
        now_conducting = self._contact_conducts(ch)
        if was_conducting and not now_conducting:
            ch.loop_open_since = self.clock.now()
        elif not was_conducting and now_conducting:
            ch.loop_open_since = None

    def _settle(self, ch: _Channel) -> None:
        """Drop the valve if the loop has been open at least ``release_s``."""
        if ch.valve_open and ch.loop_open_since is not None \
                and self.clock.now() - ch.loop_open_since >= self.release_s:
            ch.valve_open = False


class SimulatedAdapter(RelayAdapter):
    """Adapter over a :class:`SimulatedStove`. The default adapter, and the one tests drive."""

    kind = "simulated"

    def __init__(self, stove: SimulatedStove, polarity: Polarity, clock: Clock | None = None) -> None:
        super().__init__(list(stove.channels), polarity, clock or stove.clock)
        self.stove = stove
        self.cut_calls: list[tuple[str, float]] = []
        self._calls_lock = threading.Lock()

    def cut(self, burner: str, hold_s: float, on_open: Callable[[float], None] | None = None,
            guard: Callable[[], None] | None = None) -> None:
        with self._calls_lock:
            self.cut_calls.append((burner, float(hold_s)))
        super().cut(burner, hold_s, on_open, guard)

    def health(self) -> Health:
        return Health(True, f"simulated relay, {len(self.burners)} channel(s), wiring {self.stove.wiring}")

    def _write_switch(self, burner: str, on: bool) -> None:
        self.stove.set_switch(burner, on)

    def _read_switch(self, burner: str) -> bool | None:
        return self.stove.get_switch(burner)


# --------------------------------------------------------------------------- Home Assistant REST


class HomeAssistantAdapter(RelayAdapter):
    """Home Assistant REST API: one ``switch.*`` entity per burner, long-lived bearer token.

    Writes ``POST /api/services/switch/turn_on|turn_off`` with ``{"entity_id": ...}``; reads
    ``GET /api/states/<entity_id>``.
    """

    kind = "home_assistant"

    def __init__(self, base_url: str, token: str, entities: Mapping[str, str], polarity: Polarity, *,
                 timeout_s: float = 3.0, clock: Clock | None = None, session: Any = None) -> None:
        import requests  # imported here so the simulated default does not need it

        super().__init__(list(entities), polarity, clock)
        self.base_url = base_url.rstrip("/")
        self.entities = dict(entities)
        self.timeout_s = float(timeout_s)
        self._requests = requests
        self._session = session or requests.Session()
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        req = self._requests
        try:
            resp = self._session.request(method, self.base_url + path, json=body, headers=self._headers,
                                         timeout=self.timeout_s)
        except req.Timeout as exc:
            raise AdapterTimeout(f"Home Assistant did not answer within {self.timeout_s} s") from exc
        except req.RequestException as exc:
            raise AdapterError(f"Home Assistant unreachable: {exc.__class__.__name__}") from exc
        if resp.status_code in (401, 403):
            raise AdapterError(f"Home Assistant rejected the access token (HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise AdapterError(f"Home Assistant answered HTTP {resp.status_code} to {method} {path}")
        try:
            return resp.json()
        except ValueError as exc:
            raise AdapterError(f"Home Assistant sent invalid JSON for {method} {path}") from exc

    def _write_switch(self, burner: str, on: bool) -> None:
        service = "turn_on" if on else "turn_off"
        self._call("POST", f"/api/services/switch/{service}", {"entity_id": self.entities[burner]})

    def _read_switch(self, burner: str) -> bool | None:
        data = self._call("GET", f"/api/states/{self.entities[burner]}")
        state = data.get("state") if isinstance(data, dict) else None
        if state == "on":
            return True
        if state == "off":
            return False
        return None  # "unavailable", "unknown", or garbage

    def health(self) -> Health:
        try:
            data = self._call("GET", "/api/")
        except AdapterError as exc:
            return Health(False, str(exc))
        return Health(True, str(data.get("message", "API running")) if isinstance(data, dict) else "ok")


# --------------------------------------------------------------------------- python-miio (MIoT)


class MiioAdapter(RelayAdapter):
    """A Mi Home relay over the local miIO protocol, via python-miio's ``MiotDevice``.

    Each burner maps to a (siid, piid) switch property from the relay's miot-spec.
    """

    kind = "miio"

    def __init__(self, ip: str, token: str, props: Mapping[str, tuple[int, int]], polarity: Polarity, *,
                 timeout_s: float = 3.0, clock: Clock | None = None, device: Any = None) -> None:
        super().__init__(list(props), polarity, clock)
        self.props = {b: (int(s), int(p)) for b, (s, p) in props.items()}
        if device is None:
            from miio import MiotDevice

            device = MiotDevice(ip=ip, token=token, timeout=timeout_s, mapping={})
        self.device = device
        # python-miio devices keep a message counter and are not safe to share between threads.
        self._io_lock = threading.Lock()

    def _send(self, fn: Callable[[], Any]) -> Any:
        from miio.exceptions import DeviceException

        with self._io_lock:
            try:
                return fn()
            except DeviceException as exc:
                if "No response" in str(exc) or "discover" in str(exc):
                    raise AdapterTimeout(f"miIO relay did not answer: {exc}") from exc
                raise AdapterError(f"miIO relay error: {exc}") from exc
            except OSError as exc:
                raise AdapterError(f"miIO transport error: {exc}") from exc

    @staticmethod
    def _first(result: Any) -> dict:
        if not isinstance(result, list) or not result or not isinstance(result[0], dict):
            raise AdapterError(f"miIO relay sent an unexpected answer: {result!r}"[:200])
        item = result[0]
        if item.get("code", 0) != 0:
            raise AdapterError(f"miIO relay refused the property (code {item.get('code')})")
        return item

    def _write_switch(self, burner: str, on: bool) -> None:
        siid, piid = self.props[burner]
        self._first(self._send(lambda: self.device.set_property_by(siid, piid, bool(on))))

    def _read_switch(self, burner: str) -> bool | None:
        siid, piid = self.props[burner]
        value = self._first(self._send(lambda: self.device.get_property_by(siid, piid))).get("value")
        return value if isinstance(value, bool) else None

    def health(self) -> Health:
        try:
            info = self._send(lambda: self.device.info(skip_cache=True))
        except AdapterError as exc:
            return Health(False, str(exc))
        return Health(True, f"miIO relay {getattr(info, 'model', None) or 'unknown model'}")
