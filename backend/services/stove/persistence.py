"""SQLite persistence: burner states, timers as absolute deadlines, the command queue, alerts and
the audit log.

The database is also the coordination point between worker processes: web workers only write
commands and timers here; the single scheduler (see scheduler.py) executes them. Every write is a
short ``BEGIN IMMEDIATE`` transaction, so concurrent writers from threads or processes serialise.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS burners (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    timer_deadline REAL,
    timer_armed_by TEXT,
    timer_armed_at REAL,
    last_cut_at REAL,
    last_restore_at REAL,
    relay_state TEXT NOT NULL DEFAULT 'unknown',
    relay_checked_at REAL,
    fault TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    burner TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at REAL NOT NULL,
    started_at REAL,
    delivered_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT
);
CREATE INDEX IF NOT EXISTS commands_open ON commands (burner, status);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    burner TEXT,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_burner ON audit (burner, id);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    burner TEXT,
    message TEXT NOT NULL,
    pushed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Command statuses. "pending"/"running" are open; "delivered" means the loop break was confirmed
# (the rest of the pulse is still running); the others are final.
OPEN_STATUSES = ("pending", "running", "delivered")
FINAL_STATUSES = ("done", "failed", "superseded")


@dataclass
class BurnerRow:
    id: str
    state: str
    timer_deadline: float | None
    timer_armed_by: str | None
    timer_armed_at: float | None
    last_cut_at: float | None
    last_restore_at: float | None
    relay_state: str
    relay_checked_at: float | None
    fault: str | None
    updated_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CommandRow:
    id: int
    burner: str
    kind: str
    status: str
    requested_by: str
    requested_at: float
    started_at: float | None
    delivered_at: float | None
    finished_at: float | None
    attempts: int
    result: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StoveStore:
    """Thin data access over one SQLite file. Opens a connection per operation (thread/process safe)."""

    def __init__(self, path: str, *, audit_max_rows: int = 100_000) -> None:
        self.path = path
        self.audit_max_rows = int(audit_max_rows)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: takes the write lock up front, so read-modify-write
        sequences cannot interleave between threads or processes)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    # ---- burners ----
    def sync_burners(self, ids: list[str], now: float) -> None:
        with self.tx() as conn:
            for b in ids:
                conn.execute(
                    "INSERT OR IGNORE INTO burners (id, state, updated_at) VALUES (?, 'READY', ?)", (b, now))

    @staticmethod
    def burner(conn: sqlite3.Connection, burner: str) -> BurnerRow | None:
        row = conn.execute("SELECT * FROM burners WHERE id = ?", (burner,)).fetchone()
        return BurnerRow(**dict(row)) if row else None

    def get_burner(self, burner: str) -> BurnerRow | None:
        with self.read() as conn:
            return self.burner(conn, burner)

    def list_burners(self, ids: list[str]) -> list[BurnerRow]:
        with self.read() as conn:
            rows = {r["id"]: BurnerRow(**dict(r)) for r in conn.execute("SELECT * FROM burners")}
        return [rows[b] for b in ids if b in rows]

    @staticmethod
    def update_burner(conn: sqlite3.Connection, burner: str, now: float, **fields: Any) -> None:
        allowed = set(BurnerRow.__dataclass_fields__) - {"id", "updated_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown burner fields {sorted(unknown)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        sep = ", " if cols else ""
        conn.execute(f"UPDATE burners SET {cols}{sep}updated_at = ? WHERE id = ?",
                     (*fields.values(), now, burner))

    def due_timers(self, now: float) -> list[BurnerRow]:
        with self.read() as conn:
            return [BurnerRow(**dict(r)) for r in conn.execute(
                "SELECT * FROM burners WHERE timer_deadline IS NOT NULL AND timer_deadline <= ?", (now,))]

    def next_deadline(self) -> float | None:
        with self.read() as conn:
            row = conn.execute("SELECT MIN(timer_deadline) FROM burners").fetchone()
        return row[0]

    # ---- commands ----
    @staticmethod
    def open_command(conn: sqlite3.Connection, burner: str, kind: str) -> CommandRow | None:
        marks = ",".join("?" * len(OPEN_STATUSES))
        row = conn.execute(
            f"SELECT * FROM commands WHERE burner = ? AND kind = ? AND status IN ({marks}) ORDER BY id LIMIT 1",
            (burner, kind, *OPEN_STATUSES)).fetchone()
        return CommandRow(**dict(row)) if row else None

    @staticmethod
    def insert_command(conn: sqlite3.Connection, burner: str, kind: str, who: str, now: float) -> int:
        cur = conn.execute(
            "INSERT INTO commands (burner, kind, status, requested_by, requested_at) VALUES (?, ?, 'pending', ?, ?)",
            (burner, kind, who, now))
        return int(cur.lastrowid)

    @staticmethod
    def update_command(conn: sqlite3.Connection, command_id: int, **fields: Any) -> None:
        allowed = set(CommandRow.__dataclass_fields__) - {"id", "burner", "kind"}
        if set(fields) - allowed:
            raise ValueError(f"unknown command fields {sorted(set(fields) - allowed)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        conn.execute(f"UPDATE commands SET {cols} WHERE id = ?", (*fields.values(), command_id))

    def get_command(self, command_id: int) -> CommandRow | None:
        with self.read() as conn:
            row = conn.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        return CommandRow(**dict(row)) if row else None

    def claim_next_command(self, burner: str, now: float) -> CommandRow | None:
        """Mark the next pending command of a burner running; shutoffs go before restores."""
        with self.tx() as conn:
            row = conn.execute(
                "SELECT * FROM commands WHERE burner = ? AND status = 'pending' "
                "ORDER BY CASE kind WHEN 'shutoff' THEN 0 ELSE 1 END, id LIMIT 1", (burner,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE commands SET status = 'running', started_at = ? WHERE id = ?", (now, row["id"]))
            cmd = CommandRow(**dict(row))
            cmd.status, cmd.started_at = "running", now
            return cmd

    def burners_with_pending(self) -> list[str]:
        with self.read() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT burner FROM commands WHERE status = 'pending'")]

    def requeue_running(self, now: float) -> tuple[int, list[str]]:
        """After a scheduler takeover: commands the dead scheduler left half-done run again from the start
        (fail toward cutting: a shutoff that may not have completed is delivered again). Burners it left
        mid-sequence go back to their resting state, from which the requeued command starts over.
        Returns (requeued commands, interrupted burners)."""
        with self.tx() as conn:
            cur = conn.execute(
                "UPDATE commands SET status = 'pending' WHERE status IN ('running', 'delivered')")
            interrupted = [r[0] for r in conn.execute(
                "SELECT id FROM burners WHERE state IN ('CUTTING', 'RESTORING')")]
            conn.execute(
                "UPDATE burners SET state = CASE WHEN timer_deadline IS NULL THEN 'READY' ELSE 'TIMER_ARMED' END, "
                "relay_state = 'unknown', updated_at = ? WHERE state IN ('CUTTING', 'RESTORING')", (now,))
            return cur.rowcount, interrupted

    def count_commands(self, burner: str | None = None, kind: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM commands WHERE 1=1", []
        if burner:
            sql += " AND burner = ?"
            args.append(burner)
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        with self.read() as conn:
            return int(conn.execute(sql, args).fetchone()[0])

    # ---- audit ----
    def audit(self, conn: sqlite3.Connection | None, *, at: float, who: str, action: str, result: str,
              burner: str | None = None, detail: str | None = None) -> None:
        if conn is None:
            with self.tx() as c:
                self._audit(c, at, who, burner, action, result, detail)
        else:
            self._audit(conn, at, who, burner, action, result, detail)

    def _audit(self, conn: sqlite3.Connection, at: float, who: str, burner: str | None, action: str,
               result: str, detail: str | None) -> None:
        cur = conn.execute(
            "INSERT INTO audit (at, who, burner, action, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (at, who[:200], burner, action, result[:500], detail[:2000] if detail else None))
        # Bounded growth: prune the oldest rows every 100 inserts.
        if cur.lastrowid % 100 == 0:
            conn.execute("DELETE FROM audit WHERE id <= ?", (cur.lastrowid - self.audit_max_rows,))

    def list_audit(self, *, limit: int, burner: str | None = None, before_id: int | None = None) -> list[dict]:
        sql, args = "SELECT * FROM audit WHERE 1=1", []
        if burner is not None:
            sql += " AND burner = ?"
            args.append(burner)
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self.read() as conn:
            return [dict(r) for r in conn.execute(sql, args)]

    # ---- alerts ----
    def add_alert(self, at: float, burner: str | None, message: str) -> int:
        with self.tx() as conn:
            cur = conn.execute("INSERT INTO alerts (at, burner, message) VALUES (?, ?, ?)", (at, burner, message))
            self._audit(conn, at, "system", burner, "alert", "raised", message)
            return int(cur.lastrowid)

    def mark_alert_pushed(self, alert_id: int) -> None:
        with self.tx() as conn:
            conn.execute("UPDATE alerts SET pushed = 1 WHERE id = ?", (alert_id,))

    def list_alerts(self, limit: int = 50) -> list[dict]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))]

    # ---- meta ----
    def set_meta(self, **values: str) -> None:
        with self.tx() as conn:
            for k, v in values.items():
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (k, str(v)))

    def get_meta(self) -> dict[str, str]:
        with self.read() as conn:
            return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
