"""Command line: ``python -m backend serve`` and ``python -m backend resolve "<text>"``."""

from __future__ import annotations

import argparse
import sys

from backend.config import exit_on_config_error
from backend.redirector.resolver import CONTEXTS, DEFAULT_BASE, resolve


def _serve(args: argparse.Namespace) -> int:
    import os

    from werkzeug.serving import run_simple

    from backend import create_app
    from backend.config import load_config
    from backend.web.server import Sidecars, sidecar_commands, worker_environment

    overrides = {key: value for key, value in (("HOST", args.host), ("PORT", args.port)) if value is not None}
    settings = load_config(overrides)
    # As under gunicorn: the stove scheduler and the job workers run in their own processes (WEB_SIDECARS).
    os.environ.update(worker_environment(settings))
    sidecars = Sidecars(sidecar_commands(settings)) if settings["WEB_SIDECARS"] else None
    app = create_app(overrides)
    host, port = app.config["HOST"], int(app.config["PORT"])
    if sidecars is not None:
        sidecars.start()
    print(f"Cool Papers companion backend on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if sidecars is not None:
            sidecars.stop()
    return 0


def _resolve(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    found = resolve(text, args.context, args.base)
    if found is None:
        print(f"nothing to resolve in {text[:80]!r} (context {args.context})", file=sys.stderr)
        return 1
    print(found.target)
    return 0


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the backend (embedded defaults; no other server needed)")
    serve.add_argument("--host", help="interface to listen on (default: config HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: config PORT, 5000)")
    serve.set_defaults(run=_serve)
    res = commands.add_parser("resolve", help="print the Cool Papers target of a text, id or URL")
    res.add_argument("text", nargs="+")
    res.add_argument("--context", choices=CONTEXTS, default="selection")
    res.add_argument("--base", default=DEFAULT_BASE)
    res.set_defaults(run=_resolve)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
