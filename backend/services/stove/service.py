"""Assembly: settings from a plain config mapping, the adapter, the store, the controller, the
scheduler and the API token. No Flask here: the blueprint and the standalone scheduler
(``python -m backend.services.stove``) both build a :class:`StoveService` from the same settings.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.config import ConfigError, StoveConfig, validate
from backend.services.stove.adapters import (
    HomeAssistantAdapter,
    MiioAdapter,
    Polarity,
    RelayAdapter,
    SimulatedAdapter,
    SimulatedStove,
)
from backend.services.stove.clock import Clock, SystemClock
from backend.services.stove.controller import Alerter, ControllerSettings, StoveController
from backend.services.stove.persistence import StoveStore
from backend.services.stove.scheduler import Scheduler

log = logging.getLogger(__name__)

__all__ = ["ConfigError", "StoveService", "StoveSettings", "build_adapter", "resolve_api_token", "webhook_pusher"]


@dataclass(frozen=True)
class StoveSettings:
    burners: tuple[str, ...]
    adapter: str
    nc_inverted: bool
    db_path: str
    controller: ControllerSettings
    poll_s: float = 0.25
    request_wait_s: float = 15.0
    audit_max_rows: int = 100_000
    sim_release_s: float = 1.0
    sim_wiring: str = "NC"
    ha_url: str = ""
    ha_token: str = ""
    ha_entities: dict[str, str] = field(default_factory=dict)
    miio_ip: str = ""
    miio_token: str = ""
    miio_props: dict[str, tuple[int, int]] = field(default_factory=dict)
    device_timeout_s: float = 3.0
    alert_webhook: str = ""

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> StoveSettings:
        """The ``STOVE_*`` keys of a config mapping, checked by the typed settings layer (backend/config.py):
        a bad or missing value raises its one-line ConfigError (also for a mapping edited after start)."""
        c = validate(cfg, StoveConfig, source="stove settings")
        instance = str(cfg.get("INSTANCE_DIR", "instance"))
        burners = tuple(c.STOVE_BURNERS)
        ctl = ControllerSettings(
            hold_s=c.STOVE_CUT_HOLD_S, valve_release_s=c.STOVE_VALVE_RELEASE_S, timer_max_min=c.STOVE_TIMER_MAX_MIN,
            retry_attempts=c.STOVE_RETRY_ATTEMPTS, retry_base_s=c.STOVE_RETRY_BASE_S, retry_max_s=c.STOVE_RETRY_MAX_S,
            readback_attempts=c.STOVE_READBACK_ATTEMPTS,
        )
        return cls(
            burners=burners, adapter=c.STOVE_ADAPTER, nc_inverted=c.STOVE_NC_INVERTED,
            db_path=c.STOVE_DB or os.path.join(instance, "stove.sqlite3"), controller=ctl, poll_s=c.STOVE_POLL_S,
            request_wait_s=c.STOVE_REQUEST_WAIT_S, audit_max_rows=c.STOVE_AUDIT_MAX_ROWS,
            sim_release_s=c.STOVE_SIM_RELEASE_S, sim_wiring=c.STOVE_SIM_WIRING, ha_url=c.STOVE_HA_URL,
            ha_token=c.STOVE_HA_TOKEN, ha_entities={b: c.STOVE_HA_ENTITIES[b] for b in burners if b in c.STOVE_HA_ENTITIES},
            miio_ip=c.STOVE_MIIO_IP, miio_token=c.STOVE_MIIO_TOKEN,
            miio_props={b: c.STOVE_MIIO_PROPS[b] for b in burners if b in c.STOVE_MIIO_PROPS},
            device_timeout_s=c.STOVE_DEVICE_TIMEOUT_S, alert_webhook=c.STOVE_ALERT_WEBHOOK,
        )


def build_adapter(settings: StoveSettings, clock: Clock) -> RelayAdapter:
    polarity = Polarity(nc_inverted=settings.nc_inverted)
    if settings.adapter == "home_assistant":
        return HomeAssistantAdapter(settings.ha_url, settings.ha_token, settings.ha_entities, polarity,
                                    timeout_s=settings.device_timeout_s, clock=clock)
    if settings.adapter == "miio":
        return MiioAdapter(settings.miio_ip, settings.miio_token, settings.miio_props, polarity,
                           timeout_s=settings.device_timeout_s, clock=clock)
    stove = SimulatedStove(list(settings.burners), clock, release_s=settings.sim_release_s,
                           wiring=settings.sim_wiring)
    return SimulatedAdapter(stove, polarity, clock)


def webhook_pusher(url: str, timeout_s: float = 3.0):
    """Push alerts as a JSON POST (e.g. to an ntfy topic or a Home Assistant webhook)."""
    import requests

    def push(alert: dict) -> None:
        resp = requests.post(url, json=alert, timeout=timeout_s)
        if resp.status_code >= 300:
            raise RuntimeError(f"alert webhook answered HTTP {resp.status_code}")

    return push


def resolve_api_token(configured: str, token_file: str) -> tuple[str, str]:
    """The bearer token for mutating endpoints, and where it came from.

    A configured STOVE_API_TOKEN wins. Otherwise a random token is generated once, stored (mode 0600)
    in ``token_file`` and reused by every worker and every restart; the secret itself is never logged.
    """
    if configured:
        return configured, "STOVE_API_TOKEN"
    path = os.path.abspath(token_file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = ""
        for _ in range(50):  # another worker may be writing it right now
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
            if token:
                break
            time.sleep(0.02)
        if not token:
            raise ConfigError(f"stove API token file {path} is empty; delete it to generate a new token") from None
        log.info("stove: STOVE_API_TOKEN is not set; using the API token stored in %s", path)
        return token, path
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    log.warning("stove: STOVE_API_TOKEN is not set; generated a random API token and stored it in %s "
                "(read it from there, or set STOVE_API_TOKEN)", path)
    return token, path


class StoveService:
    """Everything one process needs: store, adapter, controller and its (leader-elected) scheduler."""

    def __init__(self, settings: StoveSettings, *, clock: Clock | None = None,
                 adapter: RelayAdapter | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = StoveStore(settings.db_path, audit_max_rows=settings.audit_max_rows)
        self.adapter = adapter or build_adapter(settings, self.clock)
        push = webhook_pusher(settings.alert_webhook) if settings.alert_webhook else None
        self.controller = StoveController(self.store, self.adapter, self.clock, settings.controller,
                                          Alerter(self.store, self.clock, push), list(settings.burners))
        self.scheduler = Scheduler(self.controller, settings.db_path + ".lock", poll_s=settings.poll_s,
                                   clock=self.clock)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
