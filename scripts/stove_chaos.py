"""Measure the stove scheduler's lateness under chaos, with real processes (the scenarios of the test suite,
tests/stove/chaos.py, repeated): database failures of every kind, descriptor exhaustion, a leader frozen
(SIGSTOP) or killed (SIGKILL) while a timer falls due or inside the cut pulse, two and three processes.

    PYTHONPATH=. .venv/bin/python scripts/stove_chaos.py --runs 3

Prints, per scenario, the promise and the median and worst lateness over the runs: from the deadline to the
firing (written in the database) and to the cut reaching the relay, and the cuts counted at the relay.
Settings: STOVE_LEASE_S=1, STOVE_POLL_S=0.05, a database failure lasts 0.8 s from 0.4 s before the deadline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from tqdm import tqdm

from tests.stove.chaos import (
    LEASE_S,
    POLL_S,
    db_faults,
    sigkill_idle,
    sigkill_in_pulse,
    sigstop_idle,
    sigstop_in_pulse,
)

KINDS = ["connect", "tx", "read", "next_deadline", "due_timers", "renew_lease", "claim_next_command",
         "burners_with_pending", "count_open_running", "descriptors"]
FAULT_PROMISE = f"<= {0.4 + LEASE_S / 3 + POLL_S:.2f} s after the deadline (failure ends 0.4 s after it)"
FREEZE_PROMISE = f"<= LEASE + POLL = {LEASE_S + POLL_S:.2f} s"


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f} {max(values):6.3f}" if values else "     -      -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, dict] = {}

    def record(name: str, promise: str, fire: float | None, cut: float | None, cuts: int) -> None:
        row = rows.setdefault(name, {"promise": promise, "fire": [], "cut": [], "cuts": set()})
        if fire is not None:
            row["fire"].append(fire)
        if cut is not None:
            row["cut"].append(cut)
        row["cuts"].add(cuts)

    steps = args.runs * 6
    with tqdm(total=steps, desc="chaos scenarios") as bar:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                for kind, o in db_faults(Path(tmp), KINDS, 0.8, nofile=128).items():
                    if kind != "after":
                        record(f"db failure: {kind}", FAULT_PROMISE, o.lateness_s, o.notes["cut_lateness_s"],
                               o.relay_cuts)
            bar.update()
            with tempfile.TemporaryDirectory() as tmp:
                o = sigstop_idle(Path(tmp), processes=2)
                record("SIGSTOP leader, 2 processes", FREEZE_PROMISE, o.lateness_s, o.notes["cut_lateness_s"],
                       o.relay_cuts)
            bar.update()
            with tempfile.TemporaryDirectory() as tmp:
                o = sigstop_idle(Path(tmp), processes=3, home_assistant=True)
                record("SIGSTOP leader, 3 processes, Home Assistant", FREEZE_PROMISE, o.lateness_s,
                       o.notes["cut_lateness_s"], o.relay_cuts)
            bar.update()
            with tempfile.TemporaryDirectory() as tmp:
                o = sigkill_idle(Path(tmp))
                record("SIGKILL leader, 2 processes (flock)", FREEZE_PROMISE, o.lateness_s,
                       o.notes["cut_lateness_s"], o.relay_cuts)
            bar.update()
            with tempfile.TemporaryDirectory() as tmp:
                o = sigstop_in_pulse(Path(tmp))
                record("SIGSTOP inside the pulse: cut again after", FREEZE_PROMISE, None,
                       o.notes["redelivered_after_freeze_s"], o.relay_cuts)
            bar.update()
            with tempfile.TemporaryDirectory() as tmp:
                o = sigkill_in_pulse(Path(tmp))
                record("SIGKILL inside the pulse: cut again after", FREEZE_PROMISE, None,
                       o.notes["redelivered_after_kill_s"], o.relay_cuts)
            bar.update()
    print(f"\n{args.runs} run(s) each; lateness in seconds (median, worst); cuts = cuts at the relay per run")
    print(f"{'scenario':46} {'promise':52} {'fired':>13} {'cut at relay':>13} cuts")
    for name, row in rows.items():
        cuts = ",".join(str(c) for c in sorted(row["cuts"]))
        print(f"{name:46} {row['promise']:52} {fmt(row['fire']):>13} {fmt(row['cut']):>13} {cuts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
