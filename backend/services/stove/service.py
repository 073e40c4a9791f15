"""Assembly: settings from a plain config mapping, the adapter, the store, the controller, the
scheduler and the API token. No Flask here: the blueprint and the standalone scheduler
(``python -m backend.services.stove``) both build a :class:`StoveService` from the same settings.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

BURNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ADAPTERS = ("simulated", "home_assistant", "miio")


class ConfigError(ValueError):
    """A stove setting is missing or invalid; the message names the key."""


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
        """Read the ``STOVE_*`` keys (see backend/config.py) and validate them."""
        def get(key: str) -> Any:
            if key not in cfg:
                raise ConfigError(f"missing setting {key}")
            return cfg[key]

        burners = get("STOVE_BURNERS")
        if isinstance(burners, str):
            burners = [b.strip() for b in burners.split(",") if b.strip()]
        if not isinstance(burners, (list, tuple)) or not burners:
            raise ConfigError("STOVE_BURNERS must be a non-empty list of burner ids")
        for b in burners:
            if not isinstance(b, str) or not BURNER_ID.match(b):
                raise ConfigError(f"STOVE_BURNERS: invalid burner id {b!r} (lowercase letters, digits, '-', '_')")
        if len(set(burners)) != len(burners):
            raise ConfigError("STOVE_BURNERS: duplicate burner ids")
        adapter = get("STOVE_ADAPTER")
        if adapter not in ADAPTERS:
            raise ConfigError(f"STOVE_ADAPTER must be one of {', '.join(ADAPTERS)}, not {adapter!r}")
        try:
            ctl = ControllerSettings(
                hold_s=float(get("STOVE_CUT_HOLD_S")),
                valve_release_s=float(get("STOVE_VALVE_RELEASE_S")),
                timer_max_min=float(get("STOVE_TIMER_MAX_MIN")),
                retry_attempts=int(get("STOVE_RETRY_ATTEMPTS")),
                retry_base_s=float(get("STOVE_RETRY_BASE_S")),
                retry_max_s=float(get("STOVE_RETRY_MAX_S")),
                readback_attempts=int(get("STOVE_READBACK_ATTEMPTS")),
            )
        except ValueError as exc:
            raise ConfigError(f"stove timing settings: {exc}") from None
        db = get("STOVE_DB") or os.path.join(str(cfg.get("INSTANCE_DIR", "instance")), "stove.sqlite3")
        entities = dict(get("STOVE_HA_ENTITIES"))
        props_raw = dict(get("STOVE_MIIO_PROPS"))
        if adapter == "home_assistant":
            _require_all(burners, entities, "STOVE_HA_ENTITIES")
            if not get("STOVE_HA_TOKEN"):
                raise ConfigError("STOVE_HA_TOKEN is required for the home_assistant adapter")
        props: dict[str, tuple[int, int]] = {}
        for b, v in props_raw.items():
            try:
                siid, piid = (int(x) for x in v)
            except (TypeError, ValueError):
                raise ConfigError(f"STOVE_MIIO_PROPS[{b!r}] must be [siid, piid]") from None
            props[b] = (siid, piid)
        if adapter == "miio":
            _require_all(burners, props, "STOVE_MIIO_PROPS")
            if not get("STOVE_MIIO_IP") or not re.fullmatch(r"[0-9a-fA-F]{32}", str(get("STOVE_MIIO_TOKEN"))):
                raise ConfigError("the miio adapter needs STOVE_MIIO_IP and a 32-hex-digit STOVE_MIIO_TOKEN")
        if get("STOVE_SIM_WIRING") not in ("NC", "NO"):
            raise ConfigError("STOVE_SIM_WIRING must be 'NC' or 'NO'")
        return cls(
            burners=tuple(burners), adapter=adapter, nc_inverted=bool(get("STOVE_NC_INVERTED")), db_path=db,
            controller=ctl, poll_s=float(get("STOVE_POLL_S")), request_wait_s=float(get("STOVE_REQUEST_WAIT_S")),
            audit_max_rows=int(get("STOVE_AUDIT_MAX_ROWS")), sim_release_s=float(get("STOVE_SIM_RELEASE_S")),
            sim_wiring=get("STOVE_SIM_WIRING"), ha_url=str(get("STOVE_HA_URL")), ha_token=str(get("STOVE_HA_TOKEN")),
            ha_entities={b: entities[b] for b in burners if b in entities}, miio_ip=str(get("STOVE_MIIO_IP")),
            miio_token=str(get("STOVE_MIIO_TOKEN")), miio_props={b: props[b] for b in burners if b in props},
            device_timeout_s=float(get("STOVE_DEVICE_TIMEOUT_S")), alert_webhook=str(get("STOVE_ALERT_WEBHOOK")),
        )


def _require_all(burners: list[str], mapping: Mapping[str, Any], key: str) -> None:
    missing = [b for b in burners if b not in mapping]
    if missing:
        raise ConfigError(f"{key} has no entry for burner(s) {', '.join(missing)}")


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


PERSON_NAME = re.compile(r"^[\w.@-]+$")
MIN_PERSON_TOKEN_CHARS = 16


def named_api_tokens(configured: Mapping[str, Any], main_token: str, max_name_chars: int) -> dict[str, str]:
    """STOVE_API_TOKENS checked: {person: token}, names short and plain, tokens long, distinct and not the main one.

    Each person's token authenticates like STOVE_API_TOKEN, and the audit log records the person's name
    (which, unlike the X-Stove-Actor label, the caller cannot choose).
    """
    if not isinstance(configured, Mapping):
        raise ConfigError('STOVE_API_TOKENS must be an object {"name": "token", ...}')
    seen: set[str] = {main_token}
    tokens: dict[str, str] = {}
    for name, token in configured.items():
        if not isinstance(name, str) or not PERSON_NAME.match(name) or len(name) > max_name_chars:
            raise ConfigError(f"STOVE_API_TOKENS: invalid name {name!r} (letters, digits, '.', '@', '-', '_'; "
                              f"at most {max_name_chars} characters)")
        if not isinstance(token, str) or len(token.strip()) < MIN_PERSON_TOKEN_CHARS:
            raise ConfigError(f"STOVE_API_TOKENS[{name!r}]: the token must be a string of at least "
                              f"{MIN_PERSON_TOKEN_CHARS} characters")
        token = token.strip()
        if token in seen:
            raise ConfigError(f"STOVE_API_TOKENS[{name!r}]: every person needs a token of their own")
        seen.add(token)
        tokens[name] = token
    return tokens


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
