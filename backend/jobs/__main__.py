"""``python -m backend.jobs``: run a task here, or on a server, with a tqdm progress bar.

    python -m backend.jobs kinds
    python -m backend.jobs run jobs.demo_sleep --params '{"steps": 20, "step_s": 0.1}'
    python -m backend.jobs watch --server http://127.0.0.1:5000 jobs.demo_sleep --params '{"steps": 20}'

The result is printed as JSON on stdout (the bar goes to stderr). Workers: ``python -m backend.jobs.worker``.
"""

from __future__ import annotations

import argparse
import json
import sys

from backend.config import exit_on_config_error, load_config
from backend.jobs.local import RemoteJobError, import_task_modules, run_task, watch_remote
from backend.jobs.manager import JobError
from backend.jobs.registry import TASKS


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.jobs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("kinds", help="list the job kinds")
    for name, help_text in (("run", "run a task in this process"), ("watch", "run a task on a backend server")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("kind")
        cmd.add_argument("--params", default="{}", help="the params as a JSON object")
        if name == "watch":
            cmd.add_argument("--server", default="http://127.0.0.1:5000")
    args = parser.parse_args(argv)

    import_task_modules(load_config().get("JOBS_TASK_MODULES") or [])
    if args.command == "kinds":
        for kind in sorted(TASKS):
            print(f"{kind}\t{TASKS[kind].summary}")
        return 0
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        parser.error(f"--params is not valid JSON: {exc}")
    try:
        if args.command == "run":
            result = run_task(args.kind, params)
        else:
            result = watch_remote(args.server, args.kind, params)
    except (JobError, RemoteJobError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
