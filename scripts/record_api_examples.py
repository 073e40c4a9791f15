"""Record the response examples of the OpenAPI document: send every request example to a fresh backend.

    PYTHONPATH=. .venv/bin/python scripts/record_api_examples.py [--check]

Reads backend/web/api_examples.json (request examples written by hand), sends each operation's example to a
testing app (files in a temporary folder, the simulated stove, jobs run in-process) and writes what a 2xx answer
was back into the file as that operation's "response". Job ids in the path examples become the ids of the jobs
this run started, so every example in the viewer belongs to one consistent session. --check only reports the
operations whose example does not get a 2xx answer (exit 1 if any). Run it after changing a request example or a
response model; tests/web/test_api_examples.py checks the recorded answers against the response models.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import create_app  # noqa: E402
from backend.web import examples  # noqa: E402
from backend.web.api import JSON_BODY  # noqa: E402
from backend.web.openapi import build_openapi  # noqa: E402
from tests.conftest import config_for_tests  # noqa: E402

LONG_JOB = {"kind": "jobs.demo_sleep", "params": {"steps": 50, "step_s": 0.2}}  # still running when cancelled
LARGEST_RECORDED = 6000  # characters of JSON; a larger answer is left out of the document (the schema says it)


def _wait_done(client, status_url: str, headers: dict) -> dict:
    for _ in range(600):
        job = client.get(status_url, headers=headers).json
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise SystemExit(f"job {status_url} did not finish in 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report examples without a 2xx answer")
    args = parser.parse_args()

    token = secrets.token_urlsafe(24)
    tmp = Path(tempfile.mkdtemp(prefix="api-examples-"))
    app = create_app(config_for_tests(tmp, STOVE_API_TOKEN=token, VALIDATE_RESPONSES=True))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    declared = json.loads(examples.EXAMPLES_FILE.read_text(encoding="utf-8"))

    # One finished job for the job paths, and one running job for the cancel example.
    submitted = client.post("/api/jobs", json=declared["POST /api/jobs"]["request"], headers=headers)
    finished = _wait_done(client, submitted.json["status_url"], headers)
    running = client.post("/api/jobs", json=LONG_JOB, headers=headers).json

    document = build_openapi(app)
    failures, recorded = [], 0
    # In the file's order (the stove's timer before its cut, its restore last); operations it lacks at the end.
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]
    position = {key: index for index, key in enumerate(declared)}
    operations.sort(key=lambda item: position.get(examples.operation_key(item[1], item[0]), len(position)))
    for path, method, op in tqdm(operations, desc="operations", unit="op"):
        key = examples.operation_key(method, path)
        entry = declared.setdefault(key, {})
        path_values = {p["name"]: p.get("example") for p in op.get("parameters", []) if p["in"] == "path"}
        query = {p["name"]: p["example"] for p in op.get("parameters", []) if p["in"] == "query" and "example" in p}
        if "{job_id}" in path:
            # this run's jobs: the finished one, or the running one to cancel; their key reads them
            job = running if method == "delete" else finished
            path_values["job_id"] = job["id"]
            entry.setdefault("path", {})["job_id"] = job["id"]
            key_param = parse_qs(urlsplit(job["status_url"]).query).get("key")
            if key_param:
                query["key"] = key_param[0]
                entry.setdefault("query", {})["key"] = key_param[0]
        url = path
        for name, value in path_values.items():
            url = url.replace("{" + name + "}", str(value))
        if query:
            url += "?" + urlencode(query, doseq=True)
        media = op.get("requestBody", {}).get("content", {}).get(JSON_BODY)
        body = media.get("example") if media else None
        # the submission of the job the job paths show, so that their ids and keys agree
        answer = submitted if key == "POST /api/jobs" else client.open(url, method=method.upper(), json=body,
                                                                        headers=headers)
        for _ in range(20):  # 409: the previous example's command (a stove cut) is still under way
            if answer.status_code != 409:
                break
            time.sleep(0.25)
            answer = client.open(url, method=method.upper(), json=body, headers=headers)
        if not 200 <= answer.status_code < 300:
            failures.append(f"{key}: {answer.status_code} {answer.get_data(as_text=True)[:200]}")
            continue
        if args.check or not answer.is_json or "content" not in op["responses"].get(str(answer.status_code), {}):
            continue
        text = json.dumps(answer.json, ensure_ascii=False)
        if len(text) > LARGEST_RECORDED:
            entry.pop("response", None)
            print(f"{key}: answer of {len(text)} characters left out (over {LARGEST_RECORDED})")
            continue
        entry["response"] = answer.json
        recorded += 1

    for hook in app.extensions.get("shutdown_hooks", []):
        hook()
    for line in failures:
        print("no 2xx:", line)
    if args.check:
        print(f"{len(operations) - len(failures)}/{len(operations)} examples answered 2xx")
        return 1 if failures else 0
    examples.EXAMPLES_FILE.write_text(_dump({key: entry for key, entry in declared.items() if entry}), encoding="utf-8")
    print(f"recorded {recorded} responses into {examples.EXAMPLES_FILE.relative_to(ROOT)}; {len(failures)} failed")
    return 1 if failures else 0


def _dump(declared: dict) -> str:
    """One operation per block, its parts on their own lines: diffs stay readable."""
    blocks = []
    for key, entry in declared.items():
        parts = ",\n".join(f"    {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}"
                           for name, value in entry.items())
        blocks.append(f"  {json.dumps(key)}: {{\n{parts}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


if __name__ == "__main__":
    sys.exit(main())
