"""Fuzz every declared endpoint with schemathesis against the live app on loopback.

Fails (exit 1) on any 5xx or any response that contradicts its declared schema, status or content type.
Bounded: a fixed number of examples per operation, a fixed seed, loopback only.

    python scripts/api_fuzz.py [--examples 30]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import create_app  # noqa: E402
from tests.conftest import config_for_tests  # noqa: E402

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("API_FUZZ_EXAMPLES", 30)))
    parser.add_argument("--seed", type=int, default=20241016)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="api-fuzz-"))
    token = secrets.token_urlsafe(16)
    # Jobs the fuzzer submits do run (every job kind is bounded by the caps in config).
    app = create_app(config_for_tests(tmp, VALIDATE_RESPONSES=False, STOVE_API_TOKEN=token))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would bury the summary
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.port}"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}/api/openapi.json",
        "--url", url,
        "--checks", CHECKS,
        "--max-examples", str(args.examples),
        "--seed", str(args.seed),
        "--workers", "2",
        "--request-timeout", "60",
        "--header", f"Authorization: Bearer {token}",
        "--generation-database", "none",
        "--no-color",
        "--suppress-health-check", "too_slow,filter_too_much,data_too_large",
    ]
    print(f"schemathesis against {url} ({args.examples} examples per operation, seed {args.seed})", flush=True)
    try:
        done = subprocess.run(command, cwd=tmp, env={**os.environ, "SCHEMATHESIS_HOOKS": ""}, timeout=900)
        code = done.returncode
    except subprocess.TimeoutExpired:
        print("api_fuzz: schemathesis did not finish within 900 s", file=sys.stderr)
        code = 1
    finally:
        server.shutdown()
        for hook in app.extensions.get("shutdown_hooks", []):
            hook()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"api_fuzz: {'no 5xx and no schema violations' if code == 0 else 'FAILED'} (exit {code})", flush=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
