"""Jobs kept in Redis: the Celery backend's shared state, reachable from workers on any machine.

The same contract as ``SqliteStore``: each state change is one Lua script (atomic in Redis) guarded
by status and owner, so a job is claimed once even when its Celery message is delivered twice, and
a worker that lost its job cannot overwrite the final state. Large results are stored aside under
their own key (workers elsewhere share no file system with the web server) and served by the API.

Keys, under ``prefix``: ``job:<id>`` (hash), ``index`` / ``queued`` / ``finished`` (sorted sets by
submission order), ``running`` (set), ``result:<id>`` (large result), ``seq`` (counter).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

import redis

from backend.jobs.records import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRecord

_CREATE = """
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'kind', ARGV[2], 'params', ARGV[3], 'status', 'queued',
  'progress', '0', 'message', '', 'created_at', ARGV[4], 'runs', '0', 'cancel_requested', '0', 'seq', seq,
  'client', ARGV[5])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return seq
"""

# KEYS: job, queued, running. ARGV: id, owner, now
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[2], 'started_at', ARGV[3],
  'heartbeat_at', ARGV[3], 'message', '')
redis.call('HINCRBY', KEYS[1], 'runs', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: job. ARGV: owner, now, progress ('' = heartbeat only), message
_REPORT = """
local st = redis.call('HMGET', KEYS[1], 'status', 'owner', 'cancel_requested')
if st[1] ~= 'running' or st[2] ~= ARGV[1] then return 1 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[3], 'message', ARGV[4]) end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[2])
if st[3] == '1' then return 1 end
return 0
"""

# KEYS: job, running, finished, result. ARGV: id, owner, status, now, result, external(0/1),
# result_bytes, error ('' = none)
_FINISH = """
local st = redis.call('HMGET', KEYS[1], 'status', 'owner', 'seq')
if st[1] ~= 'running' or (st[2] or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finished_at', ARGV[4])
if ARGV[3] == 'done' then
  redis.call('HSET', KEYS[1], 'progress', '1', 'result_bytes', ARGV[7])
  if ARGV[6] == '1' then
    redis.call('SET', KEYS[4], ARGV[5])
    redis.call('HSET', KEYS[1], 'result_ext', '1')
  else
    redis.call('HSET', KEYS[1], 'result', ARGV[5])
  end
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[8]) end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], st[3], ARGV[1])
return 1
"""

# KEYS: job, queued, finished. ARGV: id, now, reason
_CANCEL = """
local st = redis.call('HMGET', KEYS[1], 'status', 'seq')
if not st[1] then return false end
if st[1] == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'error', ARGV[3], 'finished_at', ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], st[2], ARGV[1])
elseif st[1] == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1')
end
return st[1]
"""


def _float(value: str | None) -> float | None:
    return None if value in (None, "") else float(value)


class RedisStore:
    def __init__(self, url: str, *, prefix: str, inline_limit: int) -> None:
        self.url = url
        self.prefix = prefix
        self.inline_limit = inline_limit
        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.raw = redis.Redis.from_url(url)  # bytes in and out, for result blobs
        self._create = self.r.register_script(_CREATE)
        self._claim = self.r.register_script(_CLAIM)
        self._report = self.r.register_script(_REPORT)
        self._finish = self.raw.register_script(_FINISH)
        self._cancel = self.r.register_script(_CANCEL)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def close(self) -> None:
        self.r.close()
        self.raw.close()

    def _record(self, h: dict[str, str]) -> JobRecord:
        result = json.loads(h["result"]) if h.get("result") else None
        return JobRecord(
            id=h["id"],
            kind=h["kind"],
            params=json.loads(h["params"]),
            status=h["status"],
            progress=float(h.get("progress") or 0),
            message=h.get("message", ""),
            result=result,
            result_bytes=int(h["result_bytes"]) if h.get("result_bytes") else None,
            result_external=h.get("result_ext") == "1",
            error=h.get("error") or None,
            created_at=float(h["created_at"]),
            started_at=_float(h.get("started_at")),
            finished_at=_float(h.get("finished_at")),
            heartbeat_at=_float(h.get("heartbeat_at")),
            owner=h.get("owner") or None,
            runs=int(h.get("runs") or 0),
            cancel_requested=h.get("cancel_requested") == "1",
            client=h.get("client", ""),
        )

    def _many(self, ids: list[str]) -> list[JobRecord]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self._k("job", job_id))
        return [self._record(h) for h in pipe.execute() if h]

    # -- API used by the manager and the workers --------------------------------------------------

    def create(self, job_id: str, kind: str, params: dict[str, Any], *, client: str = "") -> JobRecord:
        self._create(
            keys=[self._k("job", job_id), self._k("index"), self._k("queued"), self._k("seq")],
            args=[job_id, kind, json.dumps(params), repr(time.time()), client],
        )
        record = self.get(job_id)
        assert record is not None
        return record

    def get(self, job_id: str) -> JobRecord | None:
        h = self.r.hgetall(self._k("job", job_id))
        return self._record(h) if h else None

    def list(self, *, limit: int, status: str | None = None, kind: str | None = None,
             client: str | None = None) -> list[JobRecord]:
        if not status and not kind and client is None:
            return self._many(self.r.zrevrange(self._k("index"), 0, limit - 1))
        out: list[JobRecord] = []
        start, batch = 0, 500
        while len(out) < limit:
            ids = self.r.zrevrange(self._k("index"), start, start + batch - 1)
            if not ids:
                break
            out += [j for j in self._many(ids) if (not status or j.status == status) and (not kind or j.kind == kind)
                    and (client is None or j.client == client)]
            start += batch
        return out[:limit]

    def count_pending(self, *, client: str | None = None) -> int:
        if client is not None:
            pending = self.r.zrange(self._k("queued"), 0, -1) + sorted(self.r.smembers(self._k("running")))
            pipe = self.r.pipeline(transaction=False)
            for job_id in pending:
                pipe.hget(self._k("job", job_id), "client")
            return sum(1 for owner in pipe.execute() if owner == client)
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(self._k("queued"))
        pipe.scard(self._k("running"))
        queued, running = pipe.execute()
        return int(queued) + int(running)

    def running(self) -> list[JobRecord]:
        return self._many(sorted(self.r.smembers(self._k("running"))))

    def queued_ids(self) -> list[str]:
        return list(self.r.zrange(self._k("queued"), 0, -1))

    def claim(self, job_id: str | None, owner: str, kinds: Collection[str] | None = None) -> JobRecord | None:
        candidates = [job_id] if job_id is not None else self.r.zrange(self._k("queued"), 0, 50)
        for candidate in candidates:
            if job_id is None and kinds is not None and self.r.hget(self._k("job", candidate), "kind") not in kinds:
                continue
            ok = self._claim(
                keys=[self._k("job", candidate), self._k("queued"), self._k("running")],
                args=[candidate, owner, repr(time.time())],
            )
            if ok:
                return self.get(candidate)
        return None

    def report(self, job_id: str, owner: str, progress: float | None, message: str | None) -> bool:
        stop = self._report(
            keys=[self._k("job", job_id)],
            args=[owner, repr(time.time()), "" if progress is None else repr(float(progress)), message or ""],
        )
        return bool(stop)

    def finish(
        self, job_id: str, owner: str, status: str, *, result_json: bytes | None = None, error: str | None = None
    ) -> bool:
        external = status == DONE and result_json is not None and len(result_json) > self.inline_limit
        ok = self._finish(
            keys=[self._k("job", job_id), self._k("running"), self._k("finished"), self._k("result", job_id)],
            args=[
                job_id,
                owner or "",
                status,
                repr(time.time()),
                result_json or b"",
                "1" if external else "0",
                str(len(result_json)) if result_json is not None else "",
                error or "",
            ],
        )
        return bool(ok)

    def request_cancel(self, job_id: str, reason: str = "cancelled before it started") -> JobRecord | None:
        prior = self._cancel(
            keys=[self._k("job", job_id), self._k("queued"), self._k("finished")],
            args=[job_id, repr(time.time()), reason],
        )
        return None if prior is None else self.get(job_id)

    def fail_interrupted(self, job_id: str, owner: str | None, reason: str) -> bool:
        return self.finish(job_id, owner or "", FAILED, error=reason)

    def read_result(self, job_id: str) -> bytes | None:
        record = self.get(job_id)
        if record is None or record.status != DONE:
            return None
        if record.result_external:
            return self.raw.get(self._k("result", job_id))
        h = self.raw.hget(self._k("job", job_id), "result")
        return h if h else None

    def prune(self, keep: int, max_bytes: int | None = None) -> int:
        old = self.r.zrange(self._k("finished"), 0, -(keep + 1))
        if max_bytes is not None:
            kept = self.r.zrevrange(self._k("finished"), 0, keep - 1)  # newest first
            pipe = self.r.pipeline(transaction=False)
            for job_id in kept:
                pipe.hget(self._k("job", job_id), "result_bytes")
            total = 0
            for job_id, size in zip(kept, pipe.execute(), strict=True):
                total += int(size or 0)
                if total > max_bytes:
                    old.append(job_id)
        if not old:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for job_id in old:
            pipe.delete(self._k("job", job_id), self._k("result", job_id))
            pipe.zrem(self._k("index"), job_id)
            pipe.zrem(self._k("finished"), job_id)
        pipe.execute()
        return len(old)


__all__ = ["RedisStore", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"]
