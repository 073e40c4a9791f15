"""HTTP API: success and every kind of bad input per endpoint, auth, the generated token, and 100
concurrent shutoff requests over real HTTP."""

from __future__ import annotations

import os
import stat
import threading

import pytest
import requests
from werkzeug.serving import make_server

from backend import create_app
from backend.services.stove.blueprint import get_service
from tests.conftest import config_for_tests as make_config
from tests.stove.conftest import AUTH, FAST

PATHS = [
    ("POST", "/api/stove/burners/left/shutoff", None),
    ("POST", "/api/stove/burners/left/restore", None),
    ("POST", "/api/stove/burners/left/timer", {"minutes": 5}),
    ("DELETE", "/api/stove/burners/left/timer", None),
    ("GET", "/api/stove/audit", None),
]


def sim(app):
    return get_service(app).adapter.stove


def service(app):
    return get_service(app)


def wait_ready(client, burner="left"):
    import time

    for _ in range(300):
        state = next(b for b in client.get("/api/stove/burners").json["burners"] if b["id"] == burner)["state"]
        if state in ("READY", "TIMER_ARMED", "FAULT"):
            return state
        time.sleep(0.02)
    raise AssertionError("burner never settled")


def test_list_burners(stove_client):
    r = stove_client.get("/api/stove/burners")
    assert r.status_code == 200
    body = r.json
    assert [b["id"] for b in body["burners"]] == ["left", "right"]
    assert all(b["state"] == "READY" and b["flame"] == "unknown" for b in body["burners"])
    assert body["adapter"] == "simulated" and body["timer_max_min"] == 240.0


@pytest.mark.parametrize("method, path, body", PATHS)
def test_auth_missing_is_401_and_wrong_is_403(stove_client, method, path, body):
    r = stove_client.open(path, method=method, json=body)
    assert r.status_code == 401 and r.json["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json["error"]
    r = stove_client.open(path, method=method, json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401
    r = stove_client.open(path, method=method, json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403 and r.json["error"] == "the bearer token is not valid for this stove"


def test_auth_comes_before_body_validation(stove_client):
    r = stove_client.post("/api/stove/burners/left/timer", data="{not json", content_type="application/json")
    assert r.status_code == 401


def test_refused_attempts_are_counted_apart_not_audited(stove_client):
    for _ in range(3):
        stove_client.post("/api/stove/burners/left/shutoff", headers={"Authorization": "Bearer nope"})
    stove_client.delete("/api/stove/burners/right/timer")
    r = stove_client.get("/api/stove/refusals", headers=AUTH)
    assert r.status_code == 200
    counts = {(e["endpoint"], e["reason"]): e["count"] for e in r.json["refusals"]}
    assert counts == {("stove.shutoff", "wrong bearer token"): 3, ("stove.cancel_timer", "no bearer token"): 1}
    assert all(e["client"] == "127.0.0.1" and e["minute"].endswith(":00.000Z") for e in r.json["refusals"])
    rows = stove_client.get("/api/stove/audit", headers=AUTH).json["entries"]
    assert not any("denied" in e["result"] for e in rows)


@pytest.mark.parametrize("method, suffix, body", [
    ("POST", "shutoff", None), ("POST", "restore", None), ("POST", "timer", {"minutes": 5}), ("DELETE", "timer", None)])
@pytest.mark.parametrize("bad_id", ["middle", "LEFT", "left%20", "x" * 300])
def test_unknown_burner_is_404_with_message(stove_client, method, suffix, body, bad_id):
    r = stove_client.open(f"/api/stove/burners/{bad_id}/{suffix}", method=method, json=body, headers=AUTH)
    assert r.status_code == 404
    assert r.json["code"] == "unknown_burner" and "configured burners: left, right" in r.json["error"]


def test_shutoff_delivers_and_reports_cut_not_flame(stove_app, stove_client):
    sim(stove_app).light("left")
    r = stove_client.post("/api/stove/burners/left/shutoff", headers={**AUTH, "X-Stove-Actor": "kitchen tablet"})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["message"].startswith("cut delivered at ")
    assert "unknown" in body["message"] and "off" not in body["message"].replace("cut", "")
    assert body["command"]["kind"] == "shutoff" and body["command"]["delivered_at"] is not None
    assert body["command"]["requested_by"] == "kitchen tablet (127.0.0.1)"
    assert body["burner"]["state"] in ("CUTTING", "RESTORING", "READY")
    assert wait_ready(stove_client) == "READY"
    assert not sim(stove_app).valve_open("left")
    left = stove_client.get("/api/stove/burners").json["burners"][0]
    assert "cut delivered at" in left["message"] and left["cut_delivered_at"] is not None


def test_shutoff_undeliverable_is_502_fault_and_alert(stove_app, stove_client):
    stove_client.get("/api/stove/burners")
    sim(stove_app).set_stuck("right", "conducting")
    r = stove_client.post("/api/stove/burners/right/shutoff", headers=AUTH)
    assert r.status_code == 502
    assert r.json["code"] == "shutoff_failed" and "NOT delivered" in r.json["error"]
    right = stove_client.get("/api/stove/burners").json["burners"][1]
    assert right["state"] == "FAULT" and "gas may still be flowing" in right["message"]
    health = stove_client.get("/api/stove/health").json
    assert health["alerts"][0]["burner"] == "right" and "NOT delivered" in health["alerts"][0]["message"]


def test_shutoff_still_retrying_is_202(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789",
                                    **{**FAST, "STOVE_REQUEST_WAIT_S": 0.01, "STOVE_RETRY_BASE_S": 0.2}))
    try:
        client = app.test_client()
        client.get("/api/stove/burners")
        sim(app).inject("left", "timeout", "timeout")
        r = client.post("/api/stove/burners/left/shutoff", headers=AUTH)
        assert r.status_code == 202
        assert r.json["command"]["status"] in ("pending", "running") and "being retried" in r.json["message"]
        cmd = service(app).controller.wait_for(r.json["command"]["id"], 10)
        while cmd.status == "delivered":  # the pulse itself is still running
            cmd = service(app).store.get_command(cmd.id)
        assert cmd.status == "done" and cmd.attempts == 3
        assert wait_ready(client) == "READY"
    finally:
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_timer_success_rearm_and_cancel(stove_client):
    r = stove_client.post("/api/stove/burners/right/timer", json={"minutes": 12.5}, headers=AUTH)
    assert r.status_code == 200
    b = r.json["burner"]
    assert b["state"] == "TIMER_ARMED" and 12.4 * 60 < b["seconds_left"] <= 12.5 * 60
    assert r.json["message"] == f"shutoff timer armed: due at {b['timer_deadline']}"
    r = stove_client.post("/api/stove/burners/right/timer", json={"minutes": 240}, headers=AUTH)
    assert r.status_code == 200 and r.json["burner"]["seconds_left"] > 239 * 60
    r = stove_client.delete("/api/stove/burners/right/timer", headers=AUTH)
    assert r.status_code == 200 and r.json["cancelled"] is True and r.json["burner"]["state"] == "READY"
    r = stove_client.delete("/api/stove/burners/right/timer", headers=AUTH)
    assert r.status_code == 200 and r.json == {**r.json, "cancelled": False, "message": "no timer was armed"}


@pytest.mark.parametrize("body, field, fragment", [
    ({"minutes": 0}, "minutes", "minutes must be more than 0, not 0"),
    ({"minutes": -3}, "minutes", "minutes must be more than 0, not -3"),
    ({"minutes": 240.5}, "minutes", "240.5 minutes is over the limit of 240 minutes; use at most 240 minutes"),
    ({"minutes": 1e9}, "minutes", "1,000,000,000 minutes is over the limit of 240 minutes"),
    ({"minutes": "5"}, "minutes", "minutes must be a number, not the text '5'"),
    ({"minutes": True}, "minutes", "minutes must be a number, not true"),
    ({"minutes": None}, "minutes", "minutes must be a number, not null"),
    ({}, "minutes", "minutes is required"),
    ({"minutes": 5, "seconds": 3}, "seconds", "seconds is not a field of this request; remove it"),
    ([5], None, "the body must be an object, not a list"),
])
def test_timer_bad_durations_are_422(stove_client, body, field, fragment):
    r = stove_client.post("/api/stove/burners/left/timer", json=body, headers=AUTH)
    assert r.status_code == 422, r.json
    assert r.json["field"] == field and fragment in r.json["error"]
    assert "STOVE_" not in r.json["error"]
    if "over the limit" in fragment:
        assert (r.json["limit"], r.json["limit_value"]) == ("STOVE_TIMER_MAX_MIN", 240.0)


def test_timer_bad_json_is_400_and_wrong_type_415(stove_client):
    r = stove_client.post("/api/stove/burners/left/timer", data="{minutes: 5", content_type="application/json",
                          headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in r.json["error"]
    r = stove_client.post("/api/stove/burners/left/timer", data='{"minutes": NaN}', content_type="application/json",
                          headers=AUTH)
    assert r.status_code == 400
    r = stove_client.post("/api/stove/burners/left/timer", data="minutes=5", headers=AUTH,
                          content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415


def test_timer_and_restore_during_a_cut_are_409(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789", **{**FAST, "STOVE_CUT_HOLD_S": 2.0}))
    try:
        client = app.test_client()
        assert client.post("/api/stove/burners/left/shutoff", headers=AUTH).status_code == 200
        r = client.post("/api/stove/burners/left/timer", json={"minutes": 5}, headers=AUTH)
        assert r.status_code == 409 and "in progress" in r.json["error"]
        r = client.post("/api/stove/burners/left/restore", headers=AUTH)
        assert r.status_code == 409 and r.json["code"] == "conflict"
        assert wait_ready(client) == "READY"
        assert client.post("/api/stove/burners/left/timer", json={"minutes": 5}, headers=AUTH).status_code == 200
    finally:
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_restore_success_and_stuck_cut_is_502(stove_app, stove_client):
    r = stove_client.post("/api/stove/burners/left/restore", headers=AUTH)
    assert r.status_code == 200 and r.json["command"]["status"] == "done"
    assert "can be lit by hand" in r.json["message"]
    sim(stove_app).set_stuck("left", "cut")
    r = stove_client.post("/api/stove/burners/left/restore", headers=AUTH)
    assert r.status_code == 502 and r.json["code"] == "restore_failed" and "still reads CUT" in r.json["error"]
    sim(stove_app).set_stuck("left", None)
    r = stove_client.post("/api/stove/burners/left/restore", headers=AUTH)
    assert r.status_code == 200 and r.json["burner"]["state"] == "READY"


def test_audit_lists_who_what_when_result(stove_client):
    stove_client.post("/api/stove/burners/left/timer", json={"minutes": 3}, headers={**AUTH, "X-Stove-Actor": "ann"})
    stove_client.delete("/api/stove/burners/left/timer", headers=AUTH)
    r = stove_client.get("/api/stove/audit?limit=2&burner=left", headers=AUTH)
    assert r.status_code == 200
    first, second = r.json["entries"]
    assert first["action"] == "cancel_timer" and first["who"] == "api (127.0.0.1)"
    assert second["action"] == "arm_timer" and second["who"] == "ann (127.0.0.1)"
    assert second["result"].startswith("armed: shutoff at ") and second["at_iso"].endswith("Z")
    query = f"burner=left&before_id={first['id']}&limit=1"
    older = stove_client.get(f"/api/stove/audit?{query}", headers=AUTH).json["entries"]
    assert older == [second]


@pytest.mark.parametrize("query, status, fragment", [
    ("limit=501", 422, "501 rows is over the limit of 500 rows; use at most 500 rows"),
    ("limit=0", 422, "limit must be at least 1, not 0"),
    ("limit=abc", 422, "limit must be a whole number, not the text 'abc'"),
    ("before_id=-1", 422, "before_id must be at least 1, not -1"),
    ("colour=red", 422, "colour is not a field of this request; remove it"),
    ("burner=middle", 404, "unknown burner"),
])
def test_audit_bad_queries(stove_client, query, status, fragment):
    r = stove_client.get(f"/api/stove/audit?{query}", headers=AUTH)
    assert r.status_code == status and fragment in r.json["error"]


def test_health(stove_client):
    r = stove_client.get("/api/stove/health")
    assert r.status_code == 200
    assert r.json["device"] == "ok" and r.json["adapter"] == "simulated" and r.json["alerts"] == []


def test_page_renders_without_the_secret(stove_app, stove_client):
    r = stove_client.get("/stove")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "test-token-0123456789" not in html
    assert 'data-burner="left"' in html and "sessionStorage" in html
    assert "/stove" in stove_client.get("/").get_data(as_text=True)


def test_generated_token_is_stored_private_and_reused(tmp_path):
    token_file = tmp_path / "instance" / "stove_api_token"
    cfg = make_config(tmp_path, STOVE_TOKEN_FILE="", **FAST)
    app = create_app(cfg)
    try:
        client = app.test_client()
        assert client.get("/stove").status_code == 200  # first use builds the service and the token
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert token not in client.get("/stove").get_data(as_text=True)
        assert client.delete("/api/stove/burners/left/timer",
                             headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        for hook in app.extensions["shutdown_hooks"]:
            hook()
    again = create_app(cfg)
    try:
        again.test_client().get("/api/stove/burners")
        assert again.extensions["stove"]["token"] == token
    finally:
        for hook in again.extensions["shutdown_hooks"]:
            hook()


def test_hundred_concurrent_shutoffs_make_one_cut_sequence(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789", **{**FAST, "STOVE_CUT_HOLD_S": 3.0}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.port}/api/stove/burners/left/shutoff"
    try:
        requests.get(f"http://127.0.0.1:{server.port}/api/stove/burners", timeout=10)
        sim(app).light("left")
        barrier = threading.Barrier(100)
        results: list = [None] * 100

        def fire(i: int) -> None:
            barrier.wait()
            try:
                results[i] = requests.post(url, headers=AUTH, timeout=30)
            except requests.RequestException as exc:  # recorded, then asserted below
                results[i] = exc

        threads = [threading.Thread(target=fire, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        errors = [r for r in results if not isinstance(r, requests.Response) or r.status_code != 200]
        assert errors == []
        bodies = [r.json() for r in results]
        assert len({b["command"]["id"] for b in bodies}) == 1
        assert sum(not b["command"]["joined"] for b in bodies) == 1
        assert len({b["message"] for b in bodies}) == 1 and bodies[0]["message"].startswith("cut delivered at")
        client = app.test_client()
        assert wait_ready(client) == "READY"
        assert service(app).adapter.cut_calls == [("left", 3.0)]
        assert service(app).store.count_commands(burner="left", kind="shutoff") == 1
        assert not sim(app).valve_open("left")
        accepted = [e for e in service(app).store.list_audit(limit=500, burner="left")
                    if e["action"] == "shutoff" and e["result"].startswith("accepted")]
        assert len(accepted) == 100
    finally:
        server.shutdown()
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_openapi_documents_the_stove_api(stove_client):
    paths = stove_client.get("/api/openapi.json").json["paths"]
    shutoff = paths["/api/stove/burners/{burner_id}/shutoff"]["post"]["responses"]
    assert {"200", "202", "401", "403", "404", "502"} <= set(shutoff)
    timer = paths["/api/stove/burners/{burner_id}/timer"]
    assert {"post", "delete"} <= set(timer) and "422" in timer["post"]["responses"]
    assert {"/api/stove/burners", "/api/stove/audit", "/api/stove/health"} <= set(paths)


def test_person_tokens_name_the_person_in_the_audit(tmp_path):
    ann, bob = "ann-token-0123456789abcdef", "bob-token-0123456789abcdef"
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN="test-token-0123456789",
                                 STOVE_API_TOKENS={"ann": ann, "bob@home": bob}, **FAST))
    try:
        client = app.test_client()
        r = client.post("/api/stove/burners/left/timer", json={"minutes": 3},
                        headers={"Authorization": f"Bearer {ann}", "X-Stove-Actor": "kitchen tablet"})
        assert r.status_code == 200
        assert client.delete("/api/stove/burners/left/timer", headers={"Authorization": f"Bearer {bob}"}).status_code == 200
        # The shared token still works; its label cannot pose as a person (brackets are dropped from labels).
        r = client.post("/api/stove/burners/left/timer", json={"minutes": 2},
                        headers={**AUTH, "X-Stove-Actor": "[ann]"})
        assert r.status_code == 200
        # A token that is nobody's is refused, and a person's token is not a prefix match.
        assert client.delete("/api/stove/burners/left/timer",
                             headers={"Authorization": f"Bearer {ann[:-1]}"}).status_code == 403
        entries = client.get("/api/stove/audit?limit=10", headers={"Authorization": f"Bearer {bob}"}).json
        who = [e["who"] for e in entries["entries"] if e["who"] != "system"]  # the scheduler logs its start too
        assert who == ["ann (127.0.0.1)", "[bob@home] (127.0.0.1)", "[ann] via kitchen tablet (127.0.0.1)"]
        refused = client.get("/api/stove/refusals", headers={"Authorization": f"Bearer {bob}"}).json["refusals"]
        assert [(e["endpoint"], e["reason"], e["count"]) for e in refused] == [
            ("stove.cancel_timer", "wrong bearer token", 1)]
    finally:
        service(app).stop()


@pytest.mark.parametrize(("tokens", "message"), [
    (["ann"], "STOVE_API_TOKENS must be a valid dictionary"),
    ({"ann smith": "x" * 20}, "STOVE_API_TOKENS['ann smith'] must be a person's name"),
    ({"a" * 65: "x" * 20}, f"STOVE_API_TOKENS['{'a' * 65}'] must be names of at most STOVE_ACTOR_MAX_CHARS=64"),
    ({"ann": "short"}, "STOVE_API_TOKENS['ann'] must be a token of at least 16"),
    ({"ann": " " + "x" * 20}, "STOVE_API_TOKENS['ann'] must be a token without surrounding whitespace"),
    ({"ann": 12345678901234567890}, "STOVE_API_TOKENS['ann'] must be a valid string"),
    ({"ann": "x" * 20, "bob": "x" * 20}, "STOVE_API_TOKENS['bob'] must be a token of each person's own"),
    ({"ann": "y" * 16, "bob.b": "z" * 40}, None),
    ({"ann": "shared-token-is-long-enough"}, "STOVE_API_TOKENS['ann'] must be a token of each person's own"),
])
def test_person_tokens_are_checked_at_start(tmp_path, tokens, message):
    from backend.config import ConfigError

    config = make_config(tmp_path, STOVE_API_TOKEN="shared-token-is-long-enough", STOVE_API_TOKENS=tokens, **FAST)
    if message is None:
        get_service(create_app(config)).stop()
        return
    with pytest.raises(ConfigError) as err:
        create_app(config)
    assert str(err.value).startswith(message) and "x" * 16 not in str(err.value)
