"""Smart gas-stove shutoff: a relay in each burner's flame-failure (thermocouple) loop, driven by
timers that survive restarts. Pure core (no Flask): adapters, controller, persistence, scheduler,
service; ``blueprint.py`` is the HTTP layer."""

from backend.services.stove.adapters import (
    AdapterError,
    AdapterTimeout,
    HomeAssistantAdapter,
    MiioAdapter,
    Polarity,
    RelayAdapter,
    RelayState,
    SimulatedAdapter,
    SimulatedStove,
)
from backend.services.stove.clock import FakeClock, SystemClock
from backend.services.stove.controller import ControllerSettings, StoveController
from backend.services.stove.persistence import StoveStore
from backend.services.stove.scheduler import LeaderLock, Scheduler
from backend.services.stove.service import StoveService, StoveSettings

__all__ = [
    "AdapterError", "AdapterTimeout", "ControllerSettings", "FakeClock", "HomeAssistantAdapter", "LeaderLock",
    "MiioAdapter", "Polarity", "RelayAdapter", "RelayState", "Scheduler", "SimulatedAdapter", "SimulatedStove",
    "StoveController", "StoveService", "StoveSettings", "StoveStore", "SystemClock",
]
