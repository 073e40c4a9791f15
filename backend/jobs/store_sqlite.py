"""Jobs kept in one SQLite file: the embedded backend's queue, progress and results.

Every state change is one guarded UPDATE (``WHERE status=... AND owner=...``), so any number of
threads and processes on this machine can share the file: a queued job is claimed exactly once, and
a worker that lost its job (cancelled, or declared interrupted) cannot overwrite the final state.
Results over ``inline_limit`` bytes go to ``<result_dir>/<id>.json`` and the row links to them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from backend.jobs.records import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRecord
from backend.private_files import private_dir, private_sqlite_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    result TEXT,
    result_file TEXT,
    result_bytes INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    owner TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    client TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_status_seq ON jobs (status, seq);
"""


class SqliteStore:
    def __init__(self, db_path: str | os.PathLike, result_dir: str | os.PathLike, *, inline_limit: int) -> None:
        self.db_path = str(db_path)
        self.result_dir = Path(result_dir)
        self.inline_limit = inline_limit
        private_sqlite_file(self.db_path)  # job parameters and results are the client's own
        private_dir(self.result_dir)
        self._local = threading.local()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor the reverse
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if "client" not in columns:  # a database from before jobs had owners
            conn.execute("ALTER TABLE jobs ADD COLUMN client TEXT NOT NULL DEFAULT ''")
        conn.execute("CREATE INDEX IF NOT EXISTS jobs_client_status ON jobs (client, status)")

    # -- connections ------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never reuse a connection across fork()
            # Autocommit mode; writes that must be atomic use BEGIN IMMEDIATE in _tx.
            conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, *_: Any) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> SqliteStore._Tx:
        return SqliteStore._Tx(self._conn())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    # -- rows -------------------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row) -> JobRecord:
        external = row["result_file"] is not None
        result = None
        if row["result"] is not None:
            result = json.loads(row["result"])
        return JobRecord(
            id=row["id"],
            kind=row["kind"],
            params=json.loads(row["params"]),
            status=row["status"],
            progress=row["progress"],
            message=row["message"],
            result=result,
            result_bytes=row["result_bytes"],
            result_external=external,
            error=row["error"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            heartbeat_at=row["heartbeat_at"],
            owner=row["owner"],
            runs=row["runs"],
            cancel_requested=bool(row["cancel_requested"]),
            client=row["client"],
        )

    # -- API used by the manager and the workers --------------------------------------------------

    def create(self, job_id: str, kind: str, params: dict[str, Any], *, client: str = "") -> JobRecord:
        self._conn().execute(
            "INSERT INTO jobs (id, kind, params, status, created_at, client) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, kind, json.dumps(params), QUEUED, time.time(), client),
        )
        record = self.get(job_id)
        assert record is not None
        return record

    def get(self, job_id: str) -> JobRecord | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._record(row) if row else None

    def list(self, *, limit: int, status: str | None = None, kind: str | None = None,
             client: str | None = None) -> list[JobRecord]:
        where, args = [], []
        if client is not None:
            where.append("client = ?")
            args.append(client)
        if status:
            where.append("status = ?")
            args.append(status)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?"
        return [self._record(r) for r in self._conn().execute(sql, (*args, limit))]

    def count_pending(self, *, client: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", [QUEUED, RUNNING]
        if client is not None:
            sql += " AND client = ?"
            args.append(client)
        return int(self._conn().execute(sql, args).fetchone()[0])

    def running(self) -> list[JobRecord]:
        return [self._record(r) for r in self._conn().execute("SELECT * FROM jobs WHERE status = ?", (RUNNING,))]

    def queued_ids(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT id FROM jobs WHERE status = ? ORDER BY seq", (QUEUED,))]

    def claim(self, job_id: str | None, owner: str, kinds: Collection[str] | None = None) -> JobRecord | None:
        """Move one queued job (the given one, or the oldest of ``kinds``) to running for ``owner``.

        ``kinds`` lets a pool skip jobs whose task module this process has not imported (yet).
        """
        now = time.time()
        with self._tx() as db:
            if job_id is None:
                kind_sql, args = "", [QUEUED]
                if kinds is not None:
                    if not kinds:
                        return None
                    kind_sql = f" AND kind IN ({','.join('?' * len(kinds))})"
                    args += list(kinds)
                sql = f"SELECT id FROM jobs WHERE status = ?{kind_sql} ORDER BY seq LIMIT 1"
                row = db.execute(sql, args).fetchone()
                if row is None:
                    return None
                job_id = row[0]
            cur = db.execute(
                "UPDATE jobs SET status = ?, owner = ?, started_at = ?, heartbeat_at = ?, runs = runs + 1,"
                " message = '' WHERE id = ? AND status = ?",
                (RUNNING, owner, now, now, job_id, QUEUED),
            )
            if cur.rowcount != 1:
                return None
        return self.get(job_id)

    def report(self, job_id: str, owner: str, progress: float | None, message: str | None) -> bool:
        """Record progress and a heartbeat; True when the worker should stop (cancelled or lost the job)."""
        now = time.time()
        conn = self._conn()
        if progress is None:
            conn.execute(
                "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = ? AND owner = ?",
                (now, job_id, RUNNING, owner),
            )
        else:
            conn.execute(
                "UPDATE jobs SET progress = ?, message = ?, heartbeat_at = ? WHERE id = ? AND status = ? AND owner = ?",
                (progress, message or "", now, job_id, RUNNING, owner),
            )
        row = conn.execute("SELECT status, owner, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is None or row["status"] != RUNNING or row["owner"] != owner or bool(row["cancel_requested"])

    def finish(
        self, job_id: str, owner: str, status: str, *, result_json: bytes | None = None, error: str | None = None
    ) -> bool:
        """Set the final state if ``owner`` still runs the job; False when it no longer does."""
        inline, result_file, size = None, None, None
        if status == DONE and result_json is not None:
            size = len(result_json)
            if size > self.inline_limit:
                result_file = f"{job_id}.json"
                tmp = self.result_dir / f".{job_id}.tmp"
                tmp.write_bytes(result_json)
                os.replace(tmp, self.result_dir / result_file)  # atomic: never a half-written result
            else:
                inline = result_json.decode("utf-8")
        progress_sql = ", progress = 1.0" if status == DONE else ""
        cur = self._conn().execute(
            f"UPDATE jobs SET status = ?, result = ?, result_file = ?, result_bytes = ?, error = ?,"
            f" finished_at = ?{progress_sql} WHERE id = ? AND status = ? AND owner = ?",
            (status, inline, result_file, size, error, time.time(), job_id, RUNNING, owner),
        )
        if cur.rowcount != 1:
            if result_file:
                (self.result_dir / result_file).unlink(missing_ok=True)
            return False
        return True

    def request_cancel(self, job_id: str, reason: str = "cancelled before it started") -> JobRecord | None:
        """Queued: cancelled at once. Running: flagged; the task stops at its next progress call."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row["status"] == QUEUED:
                db.execute(
                    "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                    (CANCELLED, reason, time.time(), job_id),
                )
            elif row["status"] == RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def fail_interrupted(self, job_id: str, owner: str | None, reason: str) -> bool:
        cur = self._conn().execute(
            "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ? AND owner IS ?",
            (FAILED, reason, time.time(), job_id, RUNNING, owner),
        )
        return cur.rowcount == 1

    def read_result(self, job_id: str) -> bytes | None:
        row = self._conn().execute(
            "SELECT status, result, result_file FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None or row["status"] != DONE:
            return None
        if row["result_file"] is not None:
            path = self.result_dir / row["result_file"]
            return path.read_bytes() if path.exists() else None
        return None if row["result"] is None else row["result"].encode("utf-8")

    def prune(self, keep: int, max_bytes: int | None = None) -> int:
        """Delete all but the newest ``keep`` finished jobs (and their result files); then, oldest first, finished
        jobs until their results take at most ``max_bytes``."""
        conn = self._conn()
        rows = conn.execute(
            "SELECT id, result_file FROM jobs WHERE status IN (?, ?, ?) ORDER BY seq DESC LIMIT -1 OFFSET ?",
            (DONE, FAILED, CANCELLED, keep),
        ).fetchall()
        if max_bytes is not None:
            kept = conn.execute(
                "SELECT id, result_file, COALESCE(result_bytes, 0) AS size FROM jobs WHERE status IN (?, ?, ?)"
                " ORDER BY seq DESC LIMIT ?", (DONE, FAILED, CANCELLED, keep),
            ).fetchall()
            total = 0
            for row in kept:  # newest first: the budget keeps the newest results
                total += row["size"]
                if total > max_bytes:
                    rows.append(row)
        for row in rows:
            conn.execute("DELETE FROM jobs WHERE id = ?", (row["id"],))
            if row["result_file"]:
                (self.result_dir / row["result_file"]).unlink(missing_ok=True)
        return len(rows)
