"""Assembly: settings from a plain config mapping, the adapter, the store, the controller, the
scheduler and the API token. No Flask here: the blueprint and the standalone scheduler
(``python -m backend.services.stove``) both build a :class:`StoveService` from the same settings.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
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
from backend.services.stove.scheduler import Scheduler, lease_status

log = logging.getLogger(__name__)

__all__ = ["ConfigError", "RefusalCounter", "StoveService", "StoveSettings", "build_adapter", "ha_notify_pusher",
           "resolve_api_token", "webhook_pusher"]


@dataclass(frozen=True)
class StoveSettings:
    burners: tuple[str, ...]
    adapter: str
    nc_inverted: bool
    db_path: str
    controller: ControllerSettings
    poll_s: float = 0.25
    lease_s: float = 5.0
    alert_after_failures: int = 3
    request_wait_s: float = 15.0
    audit_keep_days: float = 365.0
    audit_min_rows: int = 10_000
    refusals_max_rows: int = 100_000
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
    ha_notify: str = ""

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
            lease_s=c.STOVE_LEASE_S, alert_after_failures=c.STOVE_ALERT_AFTER_FAILURES,
            request_wait_s=c.STOVE_REQUEST_WAIT_S, audit_keep_days=c.STOVE_AUDIT_KEEP_DAYS,
            audit_min_rows=c.STOVE_AUDIT_MIN_ROWS, refusals_max_rows=c.STOVE_REFUSALS_MAX_ROWS,
            sim_release_s=c.STOVE_SIM_RELEASE_S, sim_wiring=c.STOVE_SIM_WIRING, ha_url=c.STOVE_HA_URL,
            ha_token=c.STOVE_HA_TOKEN, ha_entities={b: c.STOVE_HA_ENTITIES[b] for b in burners if b in c.STOVE_HA_ENTITIES},
            miio_ip=c.STOVE_MIIO_IP, miio_token=c.STOVE_MIIO_TOKEN,
            miio_props={b: c.STOVE_MIIO_PROPS[b] for b in burners if b in c.STOVE_MIIO_PROPS},
            device_timeout_s=c.STOVE_DEVICE_TIMEOUT_S, alert_webhook=c.STOVE_ALERT_WEBHOOK,
            ha_notify=c.STOVE_HA_NOTIFY.removeprefix("notify."),
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


def webhook_pusher(url: str, timeout_s: float = 3.0) -> Callable[[dict], None]:
    """Push alerts as a JSON POST (e.g. to an ntfy topic or a Home Assistant webhook)."""
    import requests

    def push(alert: dict) -> None:
        resp = requests.post(url, json=alert, timeout=timeout_s)
        if resp.status_code >= 300:
            raise RuntimeError(f"alert webhook answered HTTP {resp.status_code}")

    return push


def ha_notify_pusher(base_url: str, token: str, service: str, timeout_s: float = 3.0) -> Callable[[dict], None]:
    """Push alerts through a Home Assistant notify service (``POST /api/services/notify/<service>``),
    e.g. to the companion app on a phone."""
    import requests

    url = f"{base_url.rstrip('/')}/api/services/notify/{service}"
    headers = {"Authorization": f"Bearer {token}"}

    def push(alert: dict) -> None:
        burner = f" ({alert['burner']})" if alert.get("burner") else ""
        resp = requests.post(url, json={"title": f"Stove alert{burner}", "message": alert["message"]},
                             headers=headers, timeout=timeout_s)
        if resp.status_code >= 300:
            raise RuntimeError(f"Home Assistant notify.{service} answered HTTP {resp.status_code}")

    return push


class RefusalCounter:
    """Refused requests (no or a wrong token), counted per client, minute, endpoint and reason.

    Counts gather in memory and are written at most once per ``flush_s`` (by the scheduler loop or the
    next request), so a flood of refusals costs one small write a second, never a row each, and never
    touches the audit log of accepted actions.
    """

    MAX_KEYS = 10_000  # distinct counters held in memory before an early flush

    def __init__(self, store: StoveStore, clock: Clock, flush_s: float = 1.0) -> None:
        self.store, self.clock, self.flush_s = store, clock, flush_s
        self._counts: dict[tuple[str, int, str, str], int] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def add(self, client: str, endpoint: str, reason: str) -> None:
        key = (client[:64], int(self.clock.now() // 60), endpoint[:64], reason)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            full = len(self._counts) >= self.MAX_KEYS
        self.flush_if_due(force=full)

    def flush_if_due(self, *, force: bool = False) -> None:
        """Flush when counts have waited ``flush_s`` (a request or the scheduler passing by); never raises."""
        if self._counts and (force or time.monotonic() - self._last_flush >= self.flush_s):
            try:
                self.flush()
            except Exception as exc:
                log.warning("stove: could not write refusal counters (kept for later): %s", exc)

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self._last_flush = time.monotonic()
        try:
            self.store.add_refusals(counts)
        except Exception:
            with self._lock:  # keep them for the next flush
                for key, n in counts.items():
                    self._counts[key] = self._counts.get(key, 0) + n
            raise


def resolve_api_token(configured: str, token_file: str) -> tuple[str, str]:
    """The bearer token for mutating endpoints, and where it came from.

    A configured STOVE_API_TOKEN wins. Otherwise a random token is generated once, stored (mode 0600)
    in ``token_file`` and reused by every worker and every restart; the secret itself is never logged.
    """
    if configured:
        return configured, "STOVE_API_TOKEN"
    path = os.path.abspath(token_file)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
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
        self.created = time.monotonic()
        self.store = StoveStore(settings.db_path, audit_keep_days=settings.audit_keep_days,
                                audit_min_rows=settings.audit_min_rows, refusals_max_rows=settings.refusals_max_rows)
        self.adapter = adapter or build_adapter(settings, self.clock)
        pushers = []
        if settings.alert_webhook:
            pushers.append(webhook_pusher(settings.alert_webhook))
        if settings.ha_notify:
            pushers.append(ha_notify_pusher(settings.ha_url, settings.ha_token, settings.ha_notify,
                                            settings.device_timeout_s))
        self.alerter = Alerter(self.store, self.clock, pushers)
        self.controller = StoveController(self.store, self.adapter, self.clock, settings.controller,
                                          self.alerter, list(settings.burners))
        self.refusals = RefusalCounter(self.store, self.clock)
        # One lock file per database, however its path is spelled: the flock fast path relies on it.
        lock_path = os.path.realpath(settings.db_path) + ".lock"
        self.scheduler = Scheduler(self.controller, lock_path, poll_s=settings.poll_s,
                                   lease_s=settings.lease_s, alert_after=settings.alert_after_failures,
                                   clock=self.clock, on_step=self.refusals.flush_if_due)

    def watchdog(self) -> dict:
        """The scheduler's health as any process sees it (lease, failures); a stale lease is an alert,
        pushed once by whichever process notices it first."""
        status = lease_status(self.store.get_lease(), self.clock.now(), self.settings.lease_s)
        if not status["ok"] and time.monotonic() - self.created < 2 * self.settings.lease_s:
            # just started: give a scheduler (ours or another process's) the time to take the lease
            status.update(ok=True, message="waiting for a scheduler to take the lease")
        if not status["ok"]:
            key = f"{status['epoch']}:{status['holder']}"
            if self.store.claim_once("watchdog_alerted", key):
                self.alerter.alert(None, f"watchdog: {status['message']}")
        if self.scheduler.failures and self.scheduler.is_leader:
            status["ok"] = False
            status["message"] = (f"the scheduler's last {self.scheduler.failures} step(s) failed "
                                 f"({self.scheduler.last_error}); it keeps retrying")
        return status

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
