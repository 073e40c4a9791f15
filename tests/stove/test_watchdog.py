"""The watchdog users can see: a stale lease is an alert on /api/stove/health and /api/stove/burners, pushed once
through the webhook and Home Assistant's notify service; alerts survive a database that is down."""

from __future__ import annotations

import sqlite3
import time

from backend import create_app
from backend.config import load_config
from backend.services.stove.blueprint import get_service
from backend.services.stove.clock import FakeClock
from backend.services.stove.controller import Alerter
from backend.services.stove.persistence import StoveStore
from backend.services.stove.service import StoveService, StoveSettings
from tests.conftest import config_for_tests as make_config
from tests.stove.chaos import wait_until
from tests.stove.fake_ha import FakeHomeAssistant
from tests.stove.test_service import Receiver

QUICK = {"STOVE_CUT_HOLD_S": 0.3, "STOVE_VALVE_RELEASE_S": 0.1, "STOVE_SIM_RELEASE_S": 0.1, "STOVE_POLL_S": 0.05,
         "STOVE_LEASE_S": 0.2, "STOVE_RETRY_BASE_S": 0.02, "STOVE_RETRY_MAX_S": 0.05}
TOKEN = "test-token-0123456789"


def test_no_scheduler_anywhere_is_flagged_and_pushed_once(tmp_path):
    receiver = Receiver()
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN=TOKEN, STOVE_SCHEDULER=False,
                                 STOVE_ALERT_WEBHOOK=receiver.url, **QUICK))
    try:
        client = app.test_client()
        first = client.get("/api/stove/health").json["scheduler"]
        assert first["ok"] is True and first["message"] == "waiting for a scheduler to take the lease"
        time.sleep(2 * 0.2 + 0.1)  # the grace a starting process gives: 2 x STOVE_LEASE_S
        for _ in range(3):
            health = client.get("/api/stove/health").json
            burners = client.get("/api/stove/burners").json
        assert health["scheduler"]["ok"] is False and burners["scheduler"]["ok"] is False
        assert "no scheduler holds the lease: armed timers will not fire" in health["scheduler"]["message"]
        assert [a["message"] for a in health["alerts"]] == [
            "watchdog: no scheduler holds the lease: armed timers will not fire"]
        assert len(receiver.received) == 1, "pushed once, however many requests notice it"
    finally:
        receiver.close()
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_a_leader_that_stopped_renewing_is_flagged(tmp_path):
    app = create_app(make_config(tmp_path, STOVE_API_TOKEN=TOKEN, STOVE_SCHEDULER=False, **QUICK))
    try:
        client = app.test_client()
        store = get_service(app).store
        now = time.time()
        with store.tx() as conn:  # what a frozen leader leaves behind
            conn.execute("UPDATE leader SET holder = 'kitchen:4242:abc', epoch = 7, renewed_at = ?, expires_at = ?",
                         (now - 10, now - 9.8))
        time.sleep(0.45)
        scheduler = client.get("/api/stove/health").json["scheduler"]
        assert scheduler["ok"] is False and scheduler["leader_pid"] == 4242 and scheduler["epoch"] == 7
        assert "has not been renewed for 10." in scheduler["message"] and scheduler["lease_age_s"] >= 10
        # a live scheduler takes over (its lease expired), and the flag clears
        get_service(app).start()
        wait_until(lambda: client.get("/api/stove/health").json["scheduler"]["ok"], 10, "a new leader")
        assert client.get("/api/stove/burners").json["scheduler"]["epoch"] == 8
    finally:
        for hook in app.extensions["shutdown_hooks"]:
            hook()


def test_home_assistant_notify_gets_the_alerts(tmp_path):
    token = "ha-long-lived-token-0123456789"
    fake = FakeHomeAssistant(token, ["switch.stove_relay_1", "switch.stove_relay_2"])
    try:
        fake.broken.add("switch.stove_relay_1")
        cfg = load_config({"STOVE_DB": str(tmp_path / "s.sqlite3"), "STOVE_ADAPTER": "home_assistant",
                           "STOVE_HA_URL": fake.url, "STOVE_HA_TOKEN": token, "STOVE_HA_NOTIFY": "notify.mobile_app_x",
                           "STOVE_RETRY_ATTEMPTS": 2, **QUICK}, environ={})
        svc = StoveService(StoveSettings.from_config(cfg))
        svc.controller.shutoff_now("left", "alice")
        assert svc.controller.execute_next("left").status == "failed"
        assert len(fake.notifications) == 1
        note = fake.notifications[0]
        assert note["service"] == "mobile_app_x" and note["title"] == "Stove alert (left)"
        assert "shutoff NOT delivered" in note["message"]
        assert svc.store.list_alerts()[0]["pushed"] == 1
    finally:
        fake.close()


def test_an_alert_raised_while_the_database_is_down_is_pushed_then_stored(tmp_path):
    store = StoveStore(str(tmp_path / "s.sqlite3"))
    pushed: list = []
    alerter = Alerter(store, FakeClock(), pushed.append)
    real = store.add_alert

    def down(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    store.add_alert = down
    alerter.alert(None, "scheduler failing")
    assert [p["message"] for p in pushed] == ["scheduler failing"] and alerter.unstored == 1
    store.add_alert = real
    alerter.flush()
    assert alerter.unstored == 0
    stored = store.list_alerts()
    assert [(a["message"], a["pushed"]) for a in stored] == [("scheduler failing", 1)]
