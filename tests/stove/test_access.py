"""Who may do and see what: protection declared once, names only with a token, whoami, refusals counted apart
so they cannot erase the audit log, private files, and a database failure answered 503, never 500."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time

import pytest
from flask import Flask

from backend import create_app
from backend.services.stove.blueprint import get_service
from backend.web.api import ApiBlueprint
from tests.conftest import config_for_tests as make_config
from tests.stove.chaos import wait_until
from tests.stove.conftest import AUTH, FAST

ANN = "ann-token-0123456789abcdef"
PERSON = {"Authorization": f"Bearer {ANN}"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def people_app(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789", STOVE_API_TOKENS={"ann": ANN},
                                 **FAST))
    yield app
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()


def stove_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("stove."):
            yield rule


def test_every_mutating_stove_route_is_declared_protected_and_refuses_no_token(stove_app, stove_client):
    spec = stove_client.get("/api/openapi.json").json["paths"]
    mutating = [(rule, method) for rule in stove_rules(stove_app) for method in rule.methods & MUTATING]
    assert len(mutating) >= 4
    for rule, method in mutating:
        view = stove_app.view_functions[rule.endpoint]
        assert view.api_spec.security == ("bearer",), f"{method} {rule.rule} is not declared protected"
        path = re.sub(r"<(?:[a-z]+:)?burner_id>", "left", rule.rule)
        r = stove_client.open(path, method=method, json={"minutes": 1})
        assert r.status_code == 401, f"{method} {path} answered {r.status_code} without a token"
        r = stove_client.open(path, method=method, json={"minutes": 1}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 403
        doc_path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        assert spec[doc_path][method.lower()]["security"] == [{"bearer": []}]


def test_a_declared_scheme_without_a_check_stops_the_app():
    bp = ApiBlueprint("unguarded", __name__)

    @bp.api("POST", "/api/unguarded", security=["bearer"])
    def unguarded():
        return {}

    with pytest.raises(ValueError, match="declares security it does not enforce: POST /api/unguarded"):
        Flask(__name__).register_blueprint(bp)
    bp.security_scheme("bearer")(lambda: None)
    Flask(__name__).register_blueprint(bp)


def test_cors_preflight_is_neither_refused_nor_counted(stove_app, stove_client):
    stove_client.get("/api/stove/burners")
    store = get_service(stove_app).store
    # the lease is held a moment before the new leader writes its scheduler_start row: wait for the row itself
    wait_until(lambda: any(row["action"] == "scheduler_start" for row in store.list_audit(limit=100)), 20,
               "the scheduler started and audited it")
    before = store.list_audit(limit=100)
    r = stove_client.options("/api/stove/burners/left/shutoff", headers={
        "Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200 and "POST" in r.headers["Allow"]
    get_service(stove_app).refusals.flush()
    assert get_service(stove_app).store.list_refusals(limit=10) == []
    assert get_service(stove_app).store.list_audit(limit=100) == before


def test_names_and_addresses_only_with_a_token(people_app):
    client = people_app.test_client()
    client.post("/api/stove/burners/left/timer", json={"minutes": 5}, headers={**PERSON, "X-Stove-Actor": "tablet"})
    get_service(people_app).adapter.stove.set_stuck("right", "conducting")
    assert client.post("/api/stove/burners/right/shutoff", headers=PERSON).status_code == 502
    anonymous = client.get("/api/stove/burners").json
    assert [b["timer_armed_by"] for b in anonymous["burners"]] == [None, None]
    assert anonymous["burners"][0]["timer_deadline"] is not None, "states and times stay public"
    named = client.get("/api/stove/burners", headers=PERSON).json
    assert named["burners"][0]["timer_armed_by"] == "[ann] via tablet (127.0.0.1)"
    alerts = client.get("/api/stove/health").json["alerts"]
    assert alerts and all(a["who"] is None for a in alerts)
    assert all("ann" not in a["message"] and "127.0.0.1" not in a["message"] for a in alerts)
    alerts = client.get("/api/stove/health", headers=AUTH).json["alerts"]
    assert any(a["who"] == "[ann] (127.0.0.1)" for a in alerts)
    # a wrong token is refused, not read as anonymous; another scheme is simply no token
    assert client.get("/api/stove/burners", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.get("/api/stove/health", headers={"Authorization": "Bearer nope"}).status_code == 403
    basic = client.get("/api/stove/burners", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 200 and basic.json["burners"][0]["timer_armed_by"] is None


def test_whoami(people_app):
    client = people_app.test_client()
    assert client.get("/api/stove/whoami", headers=AUTH).json == {"person": None, "kind": "shared"}
    assert client.get("/api/stove/whoami", headers=PERSON).json == {"person": "ann", "kind": "person"}
    r = client.get("/api/stove/whoami")
    assert r.status_code == 401 and r.json["code"] == "unauthorized"
    assert client.get("/api/stove/whoami", headers={"Authorization": f"Bearer {ANN}x"}).status_code == 403
    assert client.get("/api/stove/whoami", headers={"Authorization": f"Token {ANN}"}).status_code == 401


def test_a_refusal_flood_cannot_erase_accepted_actions(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789", STOVE_AUDIT_MIN_ROWS=100,
                                 STOVE_REFUSALS_MAX_ROWS=100, **FAST))
    try:
        client = app.test_client()
        service = get_service(app)
        writes = []
        real_add = service.store.add_refusals
        service.store.add_refusals = lambda counts: (writes.append(sum(counts.values())), real_add(counts))[1]
        assert client.post("/api/stove/burners/left/timer", json={"minutes": 9}, headers=AUTH).status_code == 200
        accepted = [r["id"] for r in service.store.list_audit(limit=1000) if r["action"] == "arm_timer"]
        started = time.monotonic()
        for i in range(400):  # the old log kept 100 rows here: 400 refusals would have erased the action
            headers = {"Authorization": "Bearer wrong"} if i % 2 else {}
            assert client.post("/api/stove/burners/left/shutoff", headers=headers).status_code in (401, 403)
        elapsed = time.monotonic() - started
        service.refusals.flush()
        rows = service.store.list_audit(limit=1000)
        assert [r["id"] for r in rows if r["action"] == "arm_timer"] == accepted
        assert not any("denied" in r["result"] for r in rows)
        counted = service.store.list_refusals(limit=100)
        assert sum(r["count"] for r in counted) == 400 and {r["reason"] for r in counted} == {
            "no bearer token", "wrong bearer token"}
        # rate-limited: about one write a second, not one per refused request
        assert sum(writes) == 400 and len(writes) <= elapsed / service.refusals.flush_s + 2
    finally:
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_refusal_counters_are_bounded(tmp_path):
    from backend.services.stove.persistence import StoveStore

    store = StoveStore(str(tmp_path / "s.sqlite3"), refusals_max_rows=100)
    for minute in range(300):
        store.add_refusals({(f"10.0.0.{minute % 7}", minute, "stove.shutoff", "no bearer token"): 3})
    rows = store.list_refusals(limit=1000)
    assert len(rows) == 100 and rows[0]["minute"] == 299 and rows[-1]["minute"] == 200


def test_files_are_private(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789",
                                 INSTANCE_DIR=str(tmp_path / "fresh" / "instance"), STOVE_DB="", **FAST))
    try:
        app.test_client().post("/api/stove/burners/left/timer", json={"minutes": 3}, headers=AUTH)
        wait_until(lambda: get_service(app).scheduler.is_leader, 20, "the scheduler took the lease (and the lock)")
        instance = tmp_path / "fresh" / "instance"
        assert stat.S_IMODE(os.stat(instance).st_mode) == 0o700
        for name in ("stove.sqlite3", "stove.sqlite3-wal", "stove.sqlite3.lock"):
            path = instance / name
            if path.exists() or name != "stove.sqlite3-wal":
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, name
    finally:
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_an_existing_database_readable_by_others_is_tightened(tmp_path):
    from backend.services.stove.persistence import StoveStore

    path = tmp_path / "old.sqlite3"
    StoveStore(str(path))
    os.chmod(path, 0o644)
    StoveStore(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_database_failure_is_503_not_500(stove_app, stove_client):
    service = get_service(stove_app)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    service.store.list_burners = broken
    r = stove_client.get("/api/stove/burners")
    assert r.status_code == 503 and r.json["code"] == "database_unavailable"
    service.controller.arm_timer = broken
    r = stove_client.post("/api/stove/burners/left/timer", json={"minutes": 2}, headers=AUTH)
    assert r.status_code == 503


@pytest.mark.parametrize("body", [{"minutes": 1e308}, {"minutes": -1e308}, {"minutes": -0.0}, {"minutes": 10**400}])
def test_huge_and_negative_timers_are_422(stove_client, body):
    r = stove_client.post("/api/stove/burners/left/timer", json=body, headers=AUTH)
    assert r.status_code in (400, 422) and r.json["status"] == r.status_code
