"""The two stores keep the same contract: exactly-once claims, owner-guarded final states."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from backend.jobs.execute import recover
from backend.jobs.records import HOST, new_owner, owner_is_dead, release_owner
from backend.jobs.store_redis import RedisStore
from backend.jobs.store_sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "jobs.sqlite3", tmp_path / "results", inline_limit=100)
    else:
        server = request.getfixturevalue("redis_server")
        s = RedisStore(server.url, prefix=f"unit-{uuid.uuid4().hex[:8]}", inline_limit=100)
    yield s
    s.close()


def new(store, kind: str = "k.a", **params) -> str:
    job_id = uuid.uuid4().hex
    store.create(job_id, kind, params)
    return job_id


def dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


def test_create_get_list(store):
    ids = [new(store, n=i) for i in range(3)]
    job = store.get(ids[0])
    assert (job.status, job.progress, job.params, job.runs) == ("queued", 0.0, {"n": 0}, 0)
    assert store.get("0" * 32) is None
    assert [j.id for j in store.list(limit=10)] == ids[::-1]
    assert [j.id for j in store.list(limit=2)] == ids[:0:-1]
    assert store.count_pending() == 3
    assert store.queued_ids() == ids


def test_each_job_is_claimed_exactly_once_under_contention(store):
    ids = {new(store) for _ in range(60)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        owner = new_owner()
        while (job := store.claim(None, owner)) is not None:
            with lock:
                claimed.append(job.id)
        release_owner(owner)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    assert all(store.get(i).runs == 1 and store.get(i).status == "running" for i in ids)
    assert store.claim(next(iter(ids)), "someone:1:x") is None  # a second delivery finds it taken


def test_claim_only_registered_kinds(store):
    other = new(store, kind="other.kind")
    mine = new(store, kind="k.a")
    job = store.claim(None, "o:1:x", kinds={"k.a"})
    assert job.id == mine
    assert store.claim(None, "o:1:x", kinds={"k.a"}) is None
    assert store.claim(None, "o:1:x", kinds=set()) is None
    assert store.get(other).status == "queued"


def test_progress_cancel_and_owner_guard(store):
    job_id = new(store)
    store.claim(job_id, "me:1:a")
    assert store.report(job_id, "me:1:a", 0.25, "a quarter") is False
    job = store.get(job_id)
    assert (job.progress, job.message) == (0.25, "a quarter") and job.heartbeat_at is not None
    assert store.report(job_id, "you:2:b", 0.9, "not mine") is True  # someone else's job: stop
    assert store.get(job_id).progress == 0.25
    cancelled = store.request_cancel(job_id)
    assert cancelled.status == "running" and cancelled.cancel_requested
    assert store.report(job_id, "me:1:a", 0.5, "") is True
    assert store.finish(job_id, "you:2:b", "cancelled", error="x") is False
    assert store.finish(job_id, "me:1:a", "cancelled", error="cancelled while running") is True
    assert store.get(job_id).status == "cancelled"
    assert store.finish(job_id, "me:1:a", "done", result_json=b"{}") is False  # final means final
    assert store.request_cancel(job_id).status == "cancelled"
    assert store.request_cancel("9" * 32) is None
    assert store.count_pending() == 0


def test_cancel_queued_job_is_final_and_unclaimable(store):
    job_id = new(store)
    job = store.request_cancel(job_id)
    assert (job.status, job.error, job.started_at) == ("cancelled", "cancelled before it started", None)
    assert store.claim(job_id, "me:1:a") is None
    assert store.claim(None, "me:1:a") is None


def test_results_inline_or_aside(store):
    small, large = new(store), new(store)
    for job_id in (small, large):
        store.claim(job_id, "me:1:a")
    assert store.finish(small, "me:1:a", "done", result_json=b'{"a":1}')
    payload = b'{"blob":"' + b"x" * 500 + b'"}'
    assert store.finish(large, "me:1:a", "done", result_json=payload)
    s, big = store.get(small), store.get(large)
    assert (s.result, s.result_external, s.result_bytes, s.progress) == ({"a": 1}, False, 7, 1.0)
    assert (big.result, big.result_external, big.result_bytes) == (None, True, len(payload))
    assert store.read_result(small) == b'{"a":1}'
    assert store.read_result(large) == payload
    assert store.read_result("1" * 32) is None


def test_prune_keeps_newest_finished(store):
    ids = [new(store) for _ in range(5)]
    for job_id in ids:
        store.claim(job_id, "me:1:a")
        store.finish(job_id, "me:1:a", "done", result_json=b'{"blob":"' + b"y" * 200 + b'"}')
    running = new(store)
    store.claim(running, "me:1:a")
    assert store.prune(2) == 3
    assert [store.get(i) is None for i in ids] == [True, True, True, False, False]
    assert store.read_result(ids[-1]) is not None
    assert store.get(running).status == "running"
    if isinstance(store, SqliteStore):
        assert sorted(p.name for p in store.result_dir.iterdir()) == sorted(f"{i}.json" for i in ids[-2:])


def test_recover_fails_jobs_of_dead_or_silent_workers_only(store):
    live = new_owner()
    dead_here = f"{HOST}:{dead_pid()}:gone"
    gone_in_this_process = new_owner()
    release_owner(gone_in_this_process)
    elsewhere = "another-host:123:abc"
    ids = {name: new(store) for name in ("live", "dead", "released", "elsewhere")}
    store.claim(ids["live"], live)
    store.claim(ids["dead"], dead_here)
    store.claim(ids["released"], gone_in_this_process)
    store.claim(ids["elsewhere"], elsewhere)

    assert sorted(recover(store, stale_s=60)) == sorted([ids["dead"], ids["released"]])
    assert store.get(ids["dead"]).error.startswith("interrupted: the process running it stopped")
    assert store.get(ids["live"]).status == "running"
    assert store.get(ids["elsewhere"]).status == "running"  # another host: only its heartbeat tells

    time.sleep(0.3)
    store.report(ids["live"], live, None, None)  # the live worker keeps beating
    assert recover(store, stale_s=0.2) == [ids["elsewhere"]]
    assert "no heartbeat from its worker" in store.get(ids["elsewhere"]).error
    assert store.get(ids["live"]).status == "running"
    release_owner(live)


def test_owner_liveness():
    owner = new_owner()
    assert not owner_is_dead(owner)
    release_owner(owner)
    assert owner_is_dead(owner)
    assert owner_is_dead(f"{HOST}:{dead_pid()}:x")
    assert not owner_is_dead(f"{HOST}:1:x")  # pid 1 exists
    assert not owner_is_dead("elsewhere:1:x")
    assert owner_is_dead(None)


def test_sqlite_files_are_private_whatever_the_umask(tmp_path):
    import stat

    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "fresh" / "jobs.sqlite3"
        SqliteStore(path, tmp_path / "fresh" / "results", inline_limit=100).close()
        os.chmod(path, 0o644)  # as an older version left it
        SqliteStore(path, tmp_path / "fresh" / "results", inline_limit=100).close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(tmp_path / "fresh").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "fresh" / "results").st_mode) == 0o700
    for name in ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"):
        if (tmp_path / "fresh" / name).exists():
            assert stat.S_IMODE(os.stat(tmp_path / "fresh" / name).st_mode) == 0o600, name
