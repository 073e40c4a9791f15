"""SQLite persistence: burner states, timers as absolute deadlines, the command queue, alerts, the
audit log, refusal counters and the scheduler's lease.

The database is also the coordination point between worker processes: web workers only write
commands and timers here; the single scheduler (see scheduler.py) executes them. Every write is a
short ``BEGIN IMMEDIATE`` transaction, so concurrent writers from threads or processes serialise.
Leadership is the ``leader`` row (holder, epoch, expiry); a write made for a leader passes a ``fence``
that checks, inside the same transaction, that the row still names that leader and epoch.

The database files are created 0600 (they hold names and addresses).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from backend.private_files import private_sqlite_file

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
    updated_at REAL NOT NULL,
    last_user_action_at REAL
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
    result TEXT,
    epoch INTEGER,
    sending_at REAL,
    pulse_done_at REAL
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
    pushed INTEGER NOT NULL DEFAULT 0,
    who TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    client TEXT NOT NULL,
    minute INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (client, minute, endpoint, reason)
);
CREATE INDEX IF NOT EXISTS refusals_minute ON refusals (minute);
CREATE TABLE IF NOT EXISTS leader (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT,
    epoch INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL DEFAULT 0,
    renewed_at REAL,
    acquired_at REAL,
    has_flock INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO leader (id, epoch, expires_at) VALUES (1, 0, 0);
"""

# Columns added after the first release: (table, column, declaration) for databases created before them.
MIGRATIONS = [
    ("commands", "epoch", "INTEGER"),
    ("commands", "sending_at", "REAL"),
    ("commands", "pulse_done_at", "REAL"),
    ("burners", "last_user_action_at", "REAL"),
    ("alerts", "who", "TEXT"),
]
DAY_S = 86_400.0

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
    last_user_action_at: float | None = None

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
    epoch: int | None = None
    sending_at: float | None = None
    pulse_done_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LeaseRow:
    holder: str | None
    epoch: int
    expires_at: float
    renewed_at: float | None
    acquired_at: float | None
    has_flock: bool


Fence = Callable[[sqlite3.Connection], None]


class StoveStore:
    """Thin data access over one SQLite file. Opens a connection per operation (thread/process safe)."""

    def __init__(self, path: str, *, audit_keep_days: float = 365.0, audit_min_rows: int = 10_000,
                 refusals_max_rows: int = 100_000) -> None:
        self.path = path
        self.audit_keep_days = float(audit_keep_days)
        self.audit_min_rows = int(audit_min_rows)
        self.refusals_max_rows = int(refusals_max_rows)
        private_sqlite_file(path)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            self._migrate(conn)
        finally:
            conn.close()
        # An idle connection kept open for the store's life. With it, no other connection is ever "the last
        # one to close" the database, which takes an exclusive lock to checkpoint and delete the WAL: a process
        # frozen (SIGSTOP) during that cleanup would block every reader and writer of every process.
        self._anchor = sqlite3.connect(path, check_same_thread=False)
        self._anchor.execute("SELECT COUNT(*) FROM leader").fetchall()  # finished: no read transaction stays open

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        for table, column, declaration in MIGRATIONS:
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def _connect(self, timeout_s: float = 30.0) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def tx(self, fence: Fence | None = None, *, timeout_s: float = 30.0) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: takes the write lock up front, so read-modify-write
        sequences cannot interleave between threads or processes). ``fence(conn)`` runs first and may
        refuse the whole transaction (a leader that is no longer the leader writes nothing)."""
        conn = self._connect(timeout_s)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if fence is not None:
                    fence(conn)
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def read(self, *, timeout_s: float = 30.0) -> Iterator[sqlite3.Connection]:
        conn = self._connect(timeout_s)
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
            return self.get_command_in(conn, command_id)

    @staticmethod
    def get_command_in(conn: sqlite3.Connection, command_id: int) -> CommandRow | None:
        row = conn.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        return CommandRow(**dict(row)) if row else None

    def count_open_running(self, burners: Iterable[str]) -> int:
        """Commands of these burners that a scheduler has started and not finished."""
        chosen = list(burners)
        if not chosen:
            return 0
        with self.read() as conn:
            return int(conn.execute(
                f"SELECT COUNT(*) FROM commands WHERE status IN ('running', 'delivered') "
                f"AND burner IN ({','.join('?' * len(chosen))})", chosen).fetchone()[0])

    def claim_next_command(self, burner: str, now: float, *, fence: Fence | None = None,
                           epoch: int | None = None) -> CommandRow | None:
        """Mark the next pending command of a burner running (under the leader's epoch); shutoffs go first."""
        with self.tx(fence) as conn:
            row = conn.execute(
                "SELECT * FROM commands WHERE burner = ? AND status = 'pending' "
                "ORDER BY CASE kind WHEN 'shutoff' THEN 0 ELSE 1 END, id LIMIT 1", (burner,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE commands SET status = 'running', started_at = ?, epoch = ? WHERE id = ?",
                         (now, epoch, row["id"]))
            cmd = CommandRow(**dict(row))
            cmd.status, cmd.started_at, cmd.epoch = "running", now, epoch
            return cmd

    def burners_with_pending(self) -> list[str]:
        with self.read() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT burner FROM commands WHERE status = 'pending'")]

    @staticmethod
    def requeue_running(conn: sqlite3.Connection, now: float,
                        burners: Iterable[str] | None = None) -> tuple[int, list[str]]:
        """After a scheduler takeover (or a worker that died): commands left half-done run again (fail
        toward cutting: a shutoff that may not have completed is delivered again, unless its pulse was
        recorded as finished). Burners left mid-sequence go back to their resting state, from which the
        requeued command starts over. ``burners`` limits it to those. Returns (requeued, interrupted burners)."""
        where, args = "", []
        if burners is not None:
            chosen = list(burners)
            if not chosen:
                return 0, []
            where = f" AND burner IN ({','.join('?' * len(chosen))})"
            args = chosen
        cur = conn.execute(
            f"UPDATE commands SET status = 'pending' WHERE status IN ('running', 'delivered'){where}", args)
        bwhere = where.replace("burner IN", "id IN")
        interrupted = [r[0] for r in conn.execute(
            f"SELECT id FROM burners WHERE state IN ('CUTTING', 'RESTORING'){bwhere}", args)]
        conn.execute(
            "UPDATE burners SET state = CASE WHEN timer_deadline IS NULL THEN 'READY' ELSE 'TIMER_ARMED' END, "
            f"relay_state = 'unknown', updated_at = ? WHERE state IN ('CUTTING', 'RESTORING'){bwhere}",
            (now, *args))
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
        # Bounded growth, every 100 inserts: a row goes only when it is older than audit_keep_days AND
        # not among the newest audit_min_rows. Only accepted actions and the system write here (refusals
        # are counted in their own table), so nobody without a token can push a row out.
        if cur.lastrowid % 100 == 0:
            self.prune_audit(conn, at)

    def prune_audit(self, conn: sqlite3.Connection, now: float) -> int:
        newest_kept = conn.execute("SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?",
                                   (self.audit_min_rows - 1,)).fetchone()
        if newest_kept is None:
            return 0
        return conn.execute("DELETE FROM audit WHERE id < ? AND at < ?",
                            (newest_kept[0], now - self.audit_keep_days * DAY_S)).rowcount

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
    def add_alert(self, at: float, burner: str | None, message: str, who: str | None = None, *,
                  pushed: bool = False) -> int:
        with self.tx() as conn:
            cur = conn.execute("INSERT INTO alerts (at, burner, message, who, pushed) VALUES (?, ?, ?, ?, ?)",
                               (at, burner, message, who, int(pushed)))
            self._audit(conn, at, "system", burner, "alert", "raised",
                        message + (f" (requested by {who})" if who else ""))
            return int(cur.lastrowid)

    def mark_alert_pushed(self, alert_id: int) -> None:
        with self.tx() as conn:
            conn.execute("UPDATE alerts SET pushed = 1 WHERE id = ?", (alert_id,))

    def list_alerts(self, limit: int = 50) -> list[dict]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))]

    # ---- refusals (counted per client, minute, endpoint and reason; never in the audit log) ----
    def add_refusals(self, counts: dict[tuple[str, int, str, str], int]) -> None:
        """Add buffered refusal counts, then keep only the newest ``refusals_max_rows`` counters."""
        if not counts:
            return
        with self.tx() as conn:
            conn.executemany(
                "INSERT INTO refusals (client, minute, endpoint, reason, count) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (client, minute, endpoint, reason) DO UPDATE SET count = count + excluded.count",
                [(*key, n) for key, n in counts.items()])
            oldest_kept = conn.execute("SELECT minute FROM refusals ORDER BY minute DESC LIMIT 1 OFFSET ?",
                                       (self.refusals_max_rows - 1,)).fetchone()
            if oldest_kept is not None:
                conn.execute("DELETE FROM refusals WHERE minute < ?", (oldest_kept[0],))

    def list_refusals(self, *, limit: int, since_minute: int = 0) -> list[dict]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT * FROM refusals WHERE minute >= ? ORDER BY minute DESC, count DESC LIMIT ?",
                (since_minute, int(limit)))]

    # ---- the leader lease ----
    @staticmethod
    def lease(conn: sqlite3.Connection) -> LeaseRow:
        row = conn.execute("SELECT * FROM leader WHERE id = 1").fetchone()
        return LeaseRow(holder=row["holder"], epoch=int(row["epoch"]), expires_at=float(row["expires_at"]),
                        renewed_at=row["renewed_at"], acquired_at=row["acquired_at"], has_flock=bool(row["has_flock"]))

    def get_lease(self, *, timeout_s: float = 30.0) -> LeaseRow:
        with self.read(timeout_s=timeout_s) as conn:
            return self.lease(conn)

    def claim_lease(self, holder: str, now: float, lease_s: float, *, has_flock: bool,
                    timeout_s: float = 30.0) -> int | None:
        """Become the leader if the lease is free: nobody holds it, it expired, or its holder held the
        flock that we hold now (so that holder is gone). Returns the new, higher epoch, or None."""
        with self.tx(timeout_s=timeout_s) as conn:
            row = self.lease(conn)
            free = row.holder is None or row.expires_at < now or (has_flock and row.has_flock)
            if not free:
                return None
            epoch = row.epoch + 1
            conn.execute("UPDATE leader SET holder = ?, epoch = ?, expires_at = ?, renewed_at = ?, acquired_at = ?, "
                         "has_flock = ? WHERE id = 1", (holder, epoch, now + lease_s, now, now, int(has_flock)))
            return epoch

    def renew_lease(self, holder: str, epoch: int, now: float, lease_s: float, *, has_flock: bool,
                    timeout_s: float = 30.0) -> bool:
        """Extend our lease; False when another process has taken it (or a newer epoch exists)."""
        with self.tx(timeout_s=timeout_s) as conn:
            return conn.execute(
                "UPDATE leader SET expires_at = ?, renewed_at = ?, has_flock = ? WHERE id = 1 AND holder = ? "
                "AND epoch = ?", (now + lease_s, now, int(has_flock), holder, epoch)).rowcount == 1

    def release_lease(self, holder: str, epoch: int, *, timeout_s: float = 30.0) -> bool:
        with self.tx(timeout_s=timeout_s) as conn:
            return conn.execute("UPDATE leader SET holder = NULL, expires_at = 0, has_flock = 0 "
                                "WHERE id = 1 AND holder = ? AND epoch = ?", (holder, epoch)).rowcount == 1

    def claim_once(self, key: str, value: str) -> bool:
        """Record ``key = value`` unless it is already so; True for the one caller that changed it
        (e.g. the one process that pushes an alert about a stale lease)."""
        with self.tx() as conn:
            return conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                                "SET value = excluded.value WHERE value != excluded.value", (key, value)).rowcount == 1

    # ---- meta ----
    def set_meta(self, **values: str) -> None:
        with self.tx() as conn:
            for k, v in values.items():
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (k, str(v)))

    def get_meta(self) -> dict[str, str]:
        with self.read() as conn:
            return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
