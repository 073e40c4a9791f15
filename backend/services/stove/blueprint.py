"""HTTP for the stove shutoff: the JSON API under /api/stove and the /stove page.

Endpoints declared with ``security=["bearer"]`` (every mutating one, the audit log, ``whoami``) need
``Authorization: Bearer <token>``: 401 without a bearer token, 403 with a wrong one; the declaration both
documents and enforces it (``@bp.security_scheme``). The token is STOVE_API_TOKEN, or one generated on
first start into STOVE_TOKEN_FILE (the page and the log name that file; the secret never reaches either),
or a person's own token from STOVE_API_TOKENS, which the audit log then records by that person's name.
The public reads (burners, health) answer everyone, with names and addresses only for a valid token.
Refused requests are counted per client and minute (``/api/stove/refusals``), never in the audit log.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import sqlite3
import threading
from typing import Any, Literal

from flask import Flask, current_app, g, render_template, request
from pydantic import BaseModel, ConfigDict, Field

from backend.services.stove.controller import Conflict, InvalidDuration, iso
from backend.services.stove.service import StoveService, StoveSettings, resolve_api_token
from backend.web.api import ApiBlueprint
from backend.web.caps import capped_by
from backend.web.errors import ApiError, render_error
from backend.web.pages import register_page

log = logging.getLogger(__name__)

bp = ApiBlueprint("stove", __name__, template_folder="templates")
register_page("Stove shutoff", "stove.page",
              "cut the gas of a burner now or on a timer (relay in the flame-failure loop)")

AUTH_ERRORS = {401: "no bearer token", 403: "wrong bearer token", 404: "unknown burner id"}
STILL_RETRYING = {202: {"description": "accepted, delivery not confirmed within STOVE_REQUEST_WAIT_S (still retrying)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CommandResultOut"}}}}}
_ACTOR_BAD_CHARS = re.compile(r"[^\x20-\x7e]|[\[\]]")  # brackets mark a person's own token: not forgeable


# ---------------------------------------------------------------- models (these are the OpenAPI document)
class BurnerOut(BaseModel):
    id: str
    state: Literal["READY", "TIMER_ARMED", "CUTTING", "RESTORING", "FAULT"]
    message: str = Field(description='"cut delivered at T" style status; never claims the flame is off')
    flame: Literal["unknown"] = Field(description="always unknown: the relay cannot see the flame")
    timer_deadline: str | None
    timer_deadline_epoch: float | None
    seconds_left: float | None
    timer_armed_by: str | None = Field(description="who armed the timer; null without a valid token")
    cut_delivered_at: str | None
    shut_off_at_epoch: float | None = Field(
        description="when the last cut was delivered, until the next action a person takes on this burner")
    last_restore_at: str | None
    relay_state: Literal["conducting", "cut", "unknown"]
    relay_checked_at: str | None
    fault: str | None


class SchedulerOut(BaseModel):
    ok: bool = Field(description="false: the lease is stale (not renewed for 2 x STOVE_LEASE_S) or steps fail")
    message: str
    pid: int = Field(description="the process that answered")
    this_process_is_leader: bool
    leader_pid: int | None
    epoch: int = Field(description="leadership epoch; grows at every takeover")
    lease_age_s: float | None = Field(description="seconds since the leader last renewed its lease")
    lease_expires_in_s: float | None
    lease_s: float
    heartbeat_age_s: float | None = Field(description="same as lease_age_s")


class BurnersOut(BaseModel):
    burners: list[BurnerOut]
    server_time: float = Field(description="server clock (epoch seconds), for client-side countdowns")
    adapter: str
    timer_max_min: float
    scheduler: SchedulerOut


class CommandOut(BaseModel):
    id: int
    kind: Literal["shutoff", "restore"]
    status: Literal["pending", "running", "delivered", "done", "failed", "superseded"]
    requested_by: str
    delivered_at: float | None
    result: str | None
    joined: bool = Field(description="true when this request joined a command that was already open")


class CommandResultOut(BaseModel):
    message: str
    command: CommandOut
    burner: BurnerOut


class TimerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(gt=0, allow_inf_nan=False, strict=True,
                           description="minutes from now; capped by STOVE_TIMER_MAX_MIN",
                           json_schema_extra=capped_by("STOVE_TIMER_MAX_MIN", "minutes"))


class TimerOut(BaseModel):
    message: str
    burner: BurnerOut


class CancelOut(BaseModel):
    cancelled: bool
    message: str
    burner: BurnerOut


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(
        default=100, ge=1, description="rows, newest first (at most STOVE_AUDIT_PAGE_MAX)",
        json_schema_extra=capped_by("STOVE_AUDIT_PAGE_MAX", "rows"),
    )
    burner: str | None = Field(default=None, description="only this burner")
    before_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="rows older than this id (paging)")


class AuditRow(BaseModel):
    id: int
    at: float
    at_iso: str
    who: str
    burner: str | None
    action: str
    result: str
    detail: str | None


class AuditOut(BaseModel):
    entries: list[AuditRow]


class AlertRow(BaseModel):
    id: int
    at: float
    burner: str | None
    message: str
    who: str | None = Field(description="who requested what failed; null without a valid token")
    pushed: bool


class HealthOut(BaseModel):
    adapter: str
    device: Literal["ok", "error"]
    detail: str
    scheduler: SchedulerOut
    alerts: list[AlertRow]


class WhoAmIOut(BaseModel):
    person: str | None = Field(description="the person a STOVE_API_TOKENS token belongs to; null for the shared one")
    kind: Literal["shared", "person"]


class RefusalsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, description="rows, newest minute first (at most STOVE_AUDIT_PAGE_MAX)",
                       json_schema_extra=capped_by("STOVE_AUDIT_PAGE_MAX"))


class RefusalRow(BaseModel):
    client: str
    minute: str = Field(description="the minute (UTC) the requests were refused in")
    endpoint: str
    reason: str
    count: int


class RefusalsOut(BaseModel):
    refusals: list[RefusalRow]


# ---------------------------------------------------------------- service wiring
def _service() -> StoveService:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return get_service(app)


def get_service(app: Flask) -> StoveService:
    """The app's StoveService, built on first use (and its scheduler started if enabled)."""
    ext = app.extensions.setdefault("stove", {})
    service = ext.get("service")
    if service is None:
        lock = ext.setdefault("lock", threading.Lock())
        with lock:
            service = ext.get("service")
            if service is None:
                service = _build(app)
                ext["service"] = service
    return service


def _build(app: Flask) -> StoveService:
    cfg = app.config
    settings = StoveSettings.from_config(cfg)
    service = StoveService(settings)
    token_file = cfg["STOVE_TOKEN_FILE"] or os.path.join(cfg["INSTANCE_DIR"], "stove_api_token")
    token, source = resolve_api_token(cfg["STOVE_API_TOKEN"], token_file)
    app.extensions["stove"]["token"] = token
    app.extensions["stove"]["token_source"] = source
    app.extensions["stove"]["person_tokens"] = dict(cfg["STOVE_API_TOKENS"])  # checked by backend/config.py
    if cfg["STOVE_SCHEDULER"]:
        service.start()
    app.extensions.setdefault("shutdown_hooks", []).append(service.stop)
    return service


def init_app(app: Flask) -> None:
    """Outside tests, build the service at start so overdue timers fire at once and the token exists;
    testing apps build it on first use, so other services' tests do not carry a stove scheduler."""
    if not app.testing:
        get_service(app)


@bp.before_request
def _ensure_started() -> None:
    service = _service()
    if current_app.config["STOVE_SCHEDULER"]:
        service.start()  # no-op when running; restarts it in a worker forked after the app was built
    service.refusals.flush_if_due()


@bp.errorhandler(sqlite3.Error)
def _database_unavailable(exc: sqlite3.Error):
    log.error("stove: database error on %s %s: %s", request.method, request.path, exc)
    return render_error(ApiError(503, "the stove database is unavailable right now; try again (timers already "
                                      "armed keep their deadline)", code="database_unavailable"))


# ---------------------------------------------------------------- authentication
@bp.security_scheme("bearer")
def _require_token() -> None:
    """Enforces ``security=["bearer"]``: 401 without a bearer token, 403 with a wrong one. Runs before the
    request body is parsed, so an anonymous caller learns nothing (not even validation details)."""
    scheme, given = _bearer()
    if scheme != "bearer" or not given:
        _count_refusal("no bearer token")
        raise ApiError(401, "authentication required: send 'Authorization: Bearer <STOVE_API_TOKEN>'",
                       code="unauthorized")
    if not _match(given):
        _count_refusal("wrong bearer token")
        raise ApiError(403, "the bearer token is not valid for this stove", code="forbidden")


def _optional_token() -> bool:
    """For the public reads: True with a valid bearer token (names are shown), False without one;
    a wrong bearer token is refused (403) rather than quietly read as anonymous."""
    scheme, given = _bearer()
    if scheme != "bearer" or not given:
        return False
    if not _match(given):
        _count_refusal("wrong bearer token")
        raise ApiError(403, "the bearer token is not valid for this stove (send none to read without names)",
                       code="forbidden")
    return True


def _bearer() -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower(), given.strip()


def _match(given: str) -> bool:
    """Compare with every token (no early exit to time); remember whose it is for the audit log."""
    given_bytes = given.encode()
    ext = current_app.extensions["stove"]
    matched = hmac.compare_digest(given_bytes, ext["token"].encode())
    person = None
    for name, token in ext["person_tokens"].items():
        if hmac.compare_digest(given_bytes, token.encode()):
            person = name
    g.stove_person = person
    g.stove_authenticated = matched or person is not None
    return g.stove_authenticated


def _count_refusal(why: str) -> None:
    _service().refusals.add(request.remote_addr or "unknown", request.endpoint or request.path, why)


def _who() -> str:
    """Who did it: "[name]" when a person's own token was used (STOVE_API_TOKENS; a label cannot contain
    brackets, so this cannot be forged), then an optional self-declared label (X-Stove-Actor), then the
    client address: "[ann] via kitchen tablet (10.0.0.5)", "kitchen tablet (10.0.0.5)", "api (10.0.0.5)"."""
    addr = request.remote_addr or "unknown"
    label = request.headers.get("X-Stove-Actor", "")
    label = _ACTOR_BAD_CHARS.sub("", label).strip()[: int(current_app.config["STOVE_ACTOR_MAX_CHARS"])]
    person = g.get("stove_person")
    if person:
        return f"[{person}] via {label} ({addr})" if label else f"[{person}] ({addr})"
    return f"{label} ({addr})" if label else f"api ({addr})"


def _burner(burner_id: str) -> str:
    service = _service()
    if burner_id not in service.controller.burners:
        raise ApiError(404, f"unknown burner {burner_id!r}; configured burners: "
                            f"{', '.join(service.controller.burners)}", code="unknown_burner", field="burner_id")
    return burner_id


def _scheduler_info(service: StoveService) -> SchedulerOut:
    status = service.watchdog()
    return SchedulerOut(ok=status["ok"], message=status["message"], pid=os.getpid(),
                        this_process_is_leader=service.scheduler.is_leader, leader_pid=status["leader_pid"],
                        epoch=status["epoch"], lease_age_s=status["lease_age_s"],
                        lease_expires_in_s=status["lease_expires_in_s"], lease_s=service.settings.lease_s,
                        heartbeat_age_s=status["lease_age_s"])


def _command_out(cmd: Any, joined: bool) -> CommandOut:
    return CommandOut(id=cmd.id, kind=cmd.kind, status=cmd.status, requested_by=cmd.requested_by,
                      delivered_at=cmd.delivered_at, result=cmd.result, joined=joined)


def _run_command(burner_id: str, kind: str) -> tuple[CommandResultOut, int]:
    """Queue (or join) a shutoff/restore, wait for its delivery, answer 200, 202 (still retrying) or 502."""
    burner = _burner(burner_id)
    service = _service()
    ctl = service.controller
    try:
        ticket = ctl.shutoff_now(burner, _who()) if kind == "shutoff" else ctl.restore(burner, _who())
    except Conflict as exc:
        raise ApiError(409, str(exc), code="conflict") from None
    cmd = ctl.wait_for(ticket.command_id, service.settings.request_wait_s)
    status = ctl.status(burner)
    out = _command_out(cmd, ticket.joined)
    if cmd.status == "failed":  # the result already says "shutoff NOT delivered ..." / "restore failed: ..."
        raise ApiError(502, cmd.result or f"{kind} failed", code=f"{kind}_failed")
    if cmd.status == "superseded":
        return CommandResultOut(message=f"restore superseded: {cmd.result}", command=out, burner=status), 200
    if kind == "shutoff" and cmd.delivered_at is not None:
        message = f"cut delivered at {iso(cmd.delivered_at)} (flame state unknown: the relay cannot see the flame)"
        return CommandResultOut(message=message, command=out, burner=status), 200
    if kind == "restore" and cmd.status == "done":
        return CommandResultOut(message=cmd.result or "restored", command=out, burner=status), 200
    message = (f"{kind} #{cmd.id} accepted, not confirmed yet ({cmd.status}); delivery is being retried: "
               "watch GET /api/stove/burners")
    return CommandResultOut(message=message, command=out, burner=status), 202


# ---------------------------------------------------------------- endpoints
NAMES_NOTE = ("Without a token it answers everyone with states and times only (name and address fields null); "
              "with a valid bearer token, names too. A wrong token is refused (403).")


@bp.api("GET", "/api/stove/burners", response=BurnersOut, summary="Every burner's state, timer and last cut",
        description=NAMES_NOTE, errors={403: "wrong bearer token (send none to read without names)"})
def list_burners() -> BurnersOut:
    names = _optional_token()
    service = _service()
    return BurnersOut(burners=[BurnerOut(**s) for s in service.controller.statuses(names=names)],
                      server_time=service.clock.now(), adapter=service.adapter.kind,
                      timer_max_min=service.settings.controller.timer_max_min, scheduler=_scheduler_info(service))


@bp.api("GET", "/api/stove/whoami", security=["bearer"], response=WhoAmIOut,
        summary="Check a token: whose it is (a person's own, or the shared one)", errors=AUTH_ERRORS)
def whoami() -> WhoAmIOut:
    person = g.get("stove_person")
    return WhoAmIOut(person=person, kind="person" if person else "shared")


@bp.api("POST", "/api/stove/burners/<burner_id>/shutoff", security=["bearer"], response=CommandResultOut,
        summary="Cut the gas of a burner now (idempotent; always wins)",
        description="Queues a cut pulse, or joins the one already open, and waits until the loop break is "
                    "confirmed: 200 'cut delivered at T'. 202 if still being retried after STOVE_REQUEST_WAIT_S; "
                    "502 if it could not be delivered (the burner is then in FAULT and an alert was raised).",
        errors={**AUTH_ERRORS, 502: "shutoff not delivered: device unreachable or relay stuck",
                503: "the database is unavailable"},
        extra_responses=STILL_RETRYING)
def shutoff(burner_id: str):
    return _run_command(burner_id, "shutoff")


@bp.api("POST", "/api/stove/burners/<burner_id>/restore", security=["bearer"], response=CommandResultOut,
        summary="Close the loop again so the burner can be lit by hand (never opens the gas)",
        errors={**AUTH_ERRORS, 409: "a cut is in progress", 502: "restore failed: relay still cut or unreachable",
                503: "the database is unavailable"},
        extra_responses=STILL_RETRYING)
def restore(burner_id: str):
    return _run_command(burner_id, "restore")


@bp.api("POST", "/api/stove/burners/<burner_id>/timer", security=["bearer"], body=TimerIn, response=TimerOut,
        summary="Arm (or re-arm) a shutoff timer",
        errors={**AUTH_ERRORS, 409: "a cut is queued or in progress", 422: "minutes not > 0 or over the cap",
                503: "the database is unavailable"})
def arm_timer(burner_id: str, body: TimerIn) -> TimerOut:
    burner = _burner(burner_id)
    ctl = _service().controller
    try:
        ctl.arm_timer(burner, body.minutes, _who())
    except InvalidDuration as exc:
        raise ApiError(422, str(exc), field="minutes") from None
    except Conflict as exc:
        raise ApiError(409, str(exc), code="conflict") from None
    status = BurnerOut(**ctl.status(burner))
    return TimerOut(message=f"shutoff timer armed: due at {status.timer_deadline}", burner=status)


@bp.api("DELETE", "/api/stove/burners/<burner_id>/timer", security=["bearer"], response=CancelOut,
        summary="Cancel a burner's timer", errors={**AUTH_ERRORS, 503: "the database is unavailable"})
def cancel_timer(burner_id: str) -> CancelOut:
    burner = _burner(burner_id)
    ctl = _service().controller
    _, cancelled = ctl.cancel_timer(burner, _who())
    message = "timer cancelled" if cancelled else "no timer was armed"
    return CancelOut(cancelled=cancelled, message=message, burner=BurnerOut(**ctl.status(burner)))


@bp.api("GET", "/api/stove/audit", security=["bearer"], query=AuditQuery, response=AuditOut,
        summary="The audit log: who did what, when, with what result (newest first)",
        description="Accepted actions and what the scheduler did. Kept at least STOVE_AUDIT_KEEP_DAYS days and "
                    "at least the newest STOVE_AUDIT_MIN_ROWS rows; refused requests are counted apart "
                    "(/api/stove/refusals), so they cannot push these out.",
        errors={**AUTH_ERRORS, 404: "unknown burner", 422: "limit over the cap"})
def audit(query: AuditQuery) -> AuditOut:
    if query.burner is not None:
        _burner(query.burner)
    rows = _service().store.list_audit(limit=query.limit, burner=query.burner, before_id=query.before_id)
    return AuditOut(entries=[AuditRow(**r, at_iso=iso(r["at"])) for r in rows])


@bp.api("GET", "/api/stove/refusals", security=["bearer"], query=RefusalsQuery, response=RefusalsOut,
        summary="Refused requests (no or a wrong token), counted per client, minute, endpoint and reason",
        description="The newest STOVE_REFUSALS_MAX_ROWS counters are kept; counts are written about once a "
                    "second, so the last second may not show yet.",
        errors={**AUTH_ERRORS, 422: "limit over the cap"})
def refusals(query: RefusalsQuery) -> RefusalsOut:
    service = _service()
    service.refusals.flush()
    rows = service.store.list_refusals(limit=query.limit)
    return RefusalsOut(refusals=[RefusalRow(client=r["client"], minute=iso(r["minute"] * 60.0), endpoint=r["endpoint"],
                                            reason=r["reason"], count=r["count"]) for r in rows])


@bp.api("GET", "/api/stove/health", response=HealthOut,
        summary="Relay health, the scheduler's lease (watchdog) and recent alerts",
        description=NAMES_NOTE, errors={403: "wrong bearer token (send none to read without names)"})
def health() -> HealthOut:
    names = _optional_token()
    service = _service()
    h = service.adapter.health()
    scheduler = _scheduler_info(service)
    alerts = [AlertRow(id=a["id"], at=a["at"], burner=a["burner"], message=a["message"],
                       who=a["who"] if names else None, pushed=bool(a["pushed"]))
              for a in service.store.list_alerts(20)]
    return HealthOut(adapter=service.adapter.kind, device="ok" if h.ok else "error", detail=h.detail,
                     scheduler=scheduler, alerts=alerts)


@bp.get("/stove")
def page():
    service = _service()
    ext = current_app.extensions["stove"]
    source = ext["token_source"]
    return render_template("stove/index.html", burners=service.controller.burners,
                           timer_max_min=service.settings.controller.timer_max_min,
                           hold_s=service.settings.controller.hold_s, adapter=service.adapter.kind,
                           token_file=None if source == "STOVE_API_TOKEN" else source,
                           lease_s=service.settings.lease_s)
