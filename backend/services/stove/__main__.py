"""Run the stove scheduler on its own: ``python -m backend.services.stove [--set KEY=VALUE ...]``.

Settings come from backend/config.py, the environment, then ``--set`` (text, parsed exactly like an
environment variable). A bad setting prints one line and exits with status 2. Useful when the web workers
run with STOVE_SCHEDULER=0, and it is what the restart tests kill with SIGKILL. It competes for the same
leadership as the web workers, so running it next to them is safe too.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from backend.config import DEFAULTS, exit_on_config_error, load_config
from backend.services.stove.service import StoveService, StoveSettings


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.services.stove", description=__doc__)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a STOVE_* setting (written as its environment variable would be)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or key not in DEFAULTS or not key.startswith("STOVE_"):
            parser.error(f"--set expects STOVE_KEY=VALUE with a known key, not {item!r}")
        overrides[key] = raw
    config = load_config(overrides, overrides_source="--set option")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = StoveService(StoveSettings.from_config(config))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    print(f"stove scheduler running (db {service.settings.db_path})", flush=True)
    while not stop.wait(service.settings.poll_s):
        service.start()  # the loop never ends by itself; should it ever, it is started again
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
