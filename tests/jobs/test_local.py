"""Scripts: tasks run here with a tqdm bar, or on a server while a tqdm bar follows them."""

from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server

from backend import create_app
from backend.jobs.__main__ import main
from backend.jobs.local import RemoteJobError, TqdmContext, run_task, watch_remote
from backend.jobs.manager import InvalidParams, UnknownKind
from tests.conftest import config_for_tests as make_config


def test_run_task_shows_a_tqdm_bar(capsys):
    result = run_task("jobs.demo_sleep", {"steps": 4, "step_s": 0}, mininterval=0)
    assert result == {"steps": 4, "slept_s": 0.0, "payload": ""}
    err = capsys.readouterr().err
    assert "jobs.demo_sleep: 100%" in err and "finished" in err


def test_run_task_with_own_context_and_validation():
    ctx = TqdmContext("t", disable=True)
    run_task("jobs.demo_sleep", {"steps": 2, "step_s": 0}, ctx=ctx)
    assert [f for f, _ in ctx.updates] == [0.0, 0.5, 1.0]
    with pytest.raises(InvalidParams, match="steps must be at least 1"):
        run_task("jobs.demo_sleep", {"steps": 0})
    with pytest.raises(UnknownKind):
        run_task("no.such")


def test_cli_run_and_kinds(capsys):
    assert main(["run", "jobs.demo_sleep", "--params", '{"steps": 2, "step_s": 0}']) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"steps": 2, "slept_s": 0.0, "payload": ""}
    assert main(["kinds"]) == 0
    assert "jobs.demo_sleep\tSleep in steps" in capsys.readouterr().out
    assert main(["run", "jobs.demo_sleep", "--params", '{"steps": -1}']) == 1
    assert "steps must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "jobs.demo_sleep", "--params", "{oops"])


@pytest.fixture
def server(tmp_path):
    app = create_app(make_config(tmp_path, JOBS_INLINE_RESULT_BYTES=1000))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.port}"
    httpd.shutdown()
    for hook in app.extensions["shutdown_hooks"]:
        hook()


def test_watch_remote_follows_a_job_on_the_server(server, capsys):
    result = watch_remote(server, "jobs.demo_sleep", {"steps": 3, "step_s": 0.05}, poll_s=0.02, mininterval=0)
    assert result["steps"] == 3
    assert "100%" in capsys.readouterr().err
    big = watch_remote(server, "jobs.demo_sleep", {"steps": 1, "step_s": 0, "payload_kb": 2}, poll_s=0.02)
    assert len(big["payload"]) == 2048  # stored aside on the server, fetched from result_url
    assert main(["watch", "--server", server, "jobs.demo_sleep", "--params", '{"steps": 1, "step_s": 0}']) == 0


def test_watch_remote_reports_failures(server):
    with pytest.raises(RemoteJobError, match="failed: RuntimeError: demo failure at step 1"):
        watch_remote(server, "jobs.demo_sleep", {"steps": 2, "step_s": 0, "fail_at": 1}, poll_s=0.02)
    with pytest.raises(RemoteJobError, match=r"refused the job \(422\)"):
        watch_remote(server, "jobs.demo_sleep", {"steps": 0})
    with pytest.raises(TimeoutError):
        watch_remote(server, "jobs.demo_sleep", {"steps": 100, "step_s": 0.05}, poll_s=0.02, timeout_s=0.2)
