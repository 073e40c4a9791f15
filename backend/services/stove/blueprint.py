"""HTTP for the stove shutoff: the JSON API under /api/stove and the /stove page.

Mutating endpoints (and the audit log, which names people) need ``Authorization: Bearer <token>``:
401 without a bearer token, 403 with a wrong one. The token is STOVE_API_TOKEN, or one generated on
first start into STOVE_TOKEN_FILE (its path is logged; the secret never is, and never reaches a page), or a
person's own token from STOVE_API_TOKENS, which the audit log then records by that person's name.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
from typing import Any, Literal

from flask import Flask, current_app, g, render_template, request
from pydantic import BaseModel, ConfigDict, Field

from backend.services.stove.controller import Conflict, InvalidDuration, UnknownBurner, iso
from backend.services.stove.service import StoveService, StoveSettings, resolve_api_token
from backend.web.api import ApiBlueprint
from backend.web.caps import capped_by
from backend.web.errors import ApiError
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
    timer_armed_by: str | None
    cut_delivered_at: str | None
    last_restore_at: str | None
    relay_state: Literal["conducting", "cut", "unknown"]
    relay_checked_at: str | None
    fault: str | None


class BurnersOut(BaseModel):
    burners: list[BurnerOut]
    server_time: float = Field(description="server clock (epoch seconds), for client-side countdowns")
    adapter: str
    timer_max_min: float
    scheduler: dict[str, Any]


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
                           json_schema_extra=capped_by("STOVE_TIMER_MAX_MIN"))


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
        json_schema_extra=capped_by("STOVE_AUDIT_PAGE_MAX"),
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
    pushed: bool


class HealthOut(BaseModel):
    adapter: str
    device: Literal["ok", "error"]
    detail: str
    scheduler: dict[str, Any]
    alerts: list[AlertRow]


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


# Endpoints behind the bearer token. Checked before the request body is even parsed, so an anonymous
# caller learns nothing (not even validation details).
_PROTECTED = {"stove.shutoff", "stove.restore", "stove.arm_timer", "stove.cancel_timer"}


@bp.before_request
def _ensure_started_and_authorised() -> None:
    service = _service()
    if current_app.config["STOVE_SCHEDULER"]:
        service.start()  # no-op when running; restarts it in a worker forked after the app was built
    if request.endpoint in _PROTECTED or (
            request.endpoint == "stove.audit" and current_app.config["STOVE_AUDIT_REQUIRES_AUTH"]):
        _require_token()


# ---------------------------------------------------------------- helpers
def _require_token() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        _audit_denied("no bearer token")
        raise ApiError(401, "authentication required: send 'Authorization: Bearer <STOVE_API_TOKEN>'",
                       code="unauthorized")
    given_bytes = given.strip().encode()
    ext = current_app.extensions["stove"]
    matched = hmac.compare_digest(given_bytes, ext["token"].encode())
    person = None
    for name, token in ext["person_tokens"].items():  # compare with every token: no early exit to time
        if hmac.compare_digest(given_bytes, token.encode()):
            person = name
    if not matched and person is None:
        _audit_denied("wrong bearer token")
        raise ApiError(403, "the bearer token is not valid for this stove", code="forbidden")
    g.stove_person = person


def _audit_denied(why: str) -> None:
    service = _service()
    service.store.audit(None, at=service.clock.now(), who=_who(), action=f"{request.method} {request.path}"[:120],
                        result=f"denied: {why}")


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


def _scheduler_info(service: StoveService) -> dict[str, Any]:
    meta = service.store.get_meta()
    beat = float(meta["leader_heartbeat"]) if "leader_heartbeat" in meta else None
    return {
        "pid": os.getpid(),
        "this_process_is_leader": service.scheduler.is_leader,
        "leader_pid": int(meta["leader_pid"]) if "leader_pid" in meta else None,
        "heartbeat_age_s": None if beat is None else round(max(0.0, service.clock.now() - beat), 3),
    }


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
@bp.api("GET", "/api/stove/burners", response=BurnersOut, summary="Every burner's state, timer and last cut")
def list_burners() -> BurnersOut:
    service = _service()
    return BurnersOut(burners=[BurnerOut(**s) for s in service.controller.statuses()], server_time=service.clock.now(),
                      adapter=service.adapter.kind, timer_max_min=service.settings.controller.timer_max_min,
                      scheduler=_scheduler_info(service))


@bp.api("POST", "/api/stove/burners/<burner_id>/shutoff", security=["bearer"], response=CommandResultOut,
        summary="Cut the gas of a burner now (idempotent; always wins)",
        description="Queues a cut pulse, or joins the one already open, and waits until the loop break is "
                    "confirmed: 200 'cut delivered at T'. 202 if still being retried after STOVE_REQUEST_WAIT_S; "
                    "502 if it could not be delivered (the burner is then in FAULT and an alert was raised).",
        errors={**AUTH_ERRORS, 502: "shutoff not delivered: device unreachable or relay stuck"},
        extra_responses=STILL_RETRYING)
def shutoff(burner_id: str):
    return _run_command(burner_id, "shutoff")


@bp.api("POST", "/api/stove/burners/<burner_id>/restore", security=["bearer"], response=CommandResultOut,
        summary="Close the loop again so the burner can be lit by hand (never opens the gas)",
        errors={**AUTH_ERRORS, 409: "a cut is in progress", 502: "restore failed: relay still cut or unreachable"},
        extra_responses=STILL_RETRYING)
def restore(burner_id: str):
    return _run_command(burner_id, "restore")


@bp.api("POST", "/api/stove/burners/<burner_id>/timer", security=["bearer"], body=TimerIn, response=TimerOut,
        summary="Arm (or re-arm) a shutoff timer",
        errors={**AUTH_ERRORS, 409: "a cut is queued or in progress", 422: "minutes not > 0 or over the cap"})
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


@bp.api("DELETE", "/api/stove/burners/<burner_id>/timer", security=["bearer"], response=CancelOut, summary="Cancel a burner's timer",
        errors=AUTH_ERRORS)
def cancel_timer(burner_id: str) -> CancelOut:
    burner = _burner(burner_id)
    ctl = _service().controller
    try:
        _, cancelled = ctl.cancel_timer(burner, _who())
    except UnknownBurner as exc:  # pragma: no cover - _burner already checked
        raise ApiError(404, str(exc)) from None
    message = "timer cancelled" if cancelled else "no timer was armed"
    return CancelOut(cancelled=cancelled, message=message, burner=BurnerOut(**ctl.status(burner)))


@bp.api("GET", "/api/stove/audit", security=["bearer"], query=AuditQuery, response=AuditOut,
        summary="The audit log: who did what, when, with what result (newest first)",
        errors={401: "no bearer token", 403: "wrong bearer token", 404: "unknown burner", 422: "limit over the cap"})
def audit(query: AuditQuery) -> AuditOut:
    if query.burner is not None:
        _burner(query.burner)
    rows = _service().store.list_audit(limit=query.limit, burner=query.burner, before_id=query.before_id)
    return AuditOut(entries=[AuditRow(**r, at_iso=iso(r["at"])) for r in rows])


@bp.api("GET", "/api/stove/health", response=HealthOut, summary="Relay health, scheduler leader and recent alerts")
def health() -> HealthOut:
    service = _service()
    h = service.adapter.health()
    alerts = [AlertRow(id=a["id"], at=a["at"], burner=a["burner"], message=a["message"], pushed=bool(a["pushed"]))
              for a in service.store.list_alerts(20)]
    return HealthOut(adapter=service.adapter.kind, device="ok" if h.ok else "error", detail=h.detail,
                     scheduler=_scheduler_info(service), alerts=alerts)


@bp.get("/stove")
def page():
    service = _service()
    return render_template("stove/index.html", burners=service.controller.burners,
                           timer_max_min=service.settings.controller.timer_max_min,
                           hold_s=service.settings.controller.hold_s, adapter=service.adapter.kind)
