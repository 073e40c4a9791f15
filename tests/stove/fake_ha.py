"""A fake Home Assistant REST API on a loopback port: switch entities, their state, a notify service.

It is "the relay" shared by every process under test: each ``switch.turn_on``/``turn_off`` is journalled,
so a test counts the cuts that reached it whichever scheduler sent them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHomeAssistant:
    def __init__(self, token: str, entities: list[str]) -> None:
        self.token = token
        self.states = dict.fromkeys(entities, "off")  # NC wiring: "off" = loop conducting
        self.writes: list[tuple[float, str, str]] = []  # (time, entity, "turn_on" | "turn_off")
        self.notifications: list[dict] = []
        self.broken: set[str] = set()  # entities whose calls answer HTTP 500
        self.calls: list[tuple[str, str, dict | None]] = []  # (method, path, body) of every request
        self.delay_s = 0.0  # every authorised request waits this long (timeouts)
        self.fail_status = 0  # when set, every authorised request answers this status
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._send(401, {"message": "unauthorized"})
                    return False
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.fail_status:
                    self._send(fake.fail_status, {"message": "boom"})
                    return False
                return True

            def do_GET(self):
                fake.calls.append(("GET", self.path, None))
                if not self._authorised():
                    return
                if self.path == "/api/":
                    return self._send(200, {"message": "API running."})
                found = re.fullmatch(r"/api/states/(.+)", self.path)
                if found and found.group(1) in fake.states:
                    if found.group(1) in fake.broken:
                        return self._send(500, {"message": "broken"})
                    with fake.lock:
                        return self._send(200, {"entity_id": found.group(1), "state": fake.states[found.group(1)]})
                self._send(404, {"message": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.calls.append(("POST", self.path, body))
                if not self._authorised():
                    return
                found = re.fullmatch(r"/api/services/switch/(turn_on|turn_off)", self.path)
                if found:
                    entity = body.get("entity_id")
                    if entity not in fake.states:
                        return self._send(400, {"message": "unknown entity"})
                    if entity in fake.broken:
                        return self._send(500, {"message": "broken"})
                    with fake.lock:
                        fake.states[entity] = "on" if found.group(1) == "turn_on" else "off"
                        fake.writes.append((time.time(), entity, found.group(1)))
                    return self._send(200, [])
                found = re.fullmatch(r"/api/services/notify/([a-z0-9_]+)", self.path)
                if found:
                    with fake.lock:
                        fake.notifications.append({"service": found.group(1), **body})
                    return self._send(200, [])
                self._send(404, {"message": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def cuts(self, entity: str) -> list[float]:
        """Times the loop of ``entity`` was opened (NC wiring: turn_on cuts)."""
        with self.lock:
            return [t for t, e, service in self.writes if e == entity and service == "turn_on"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
