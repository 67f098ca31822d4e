"""Run the fault-injection suite from the command line: `python -m tests.faults.run [--seed N]`.

Prints `lost=N doubled=M` (and the details) and exits 0 only when both are 0 and nothing else went wrong.
"""

from __future__ import annotations

import argparse
import signal
import sys

from tests.faults.harness import run


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the result; the exit code says whether the store is exact."""
    p = argparse.ArgumentParser(prog="python -m tests.faults.run", description=__doc__)
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--per-device", type=int, default=1000, help="timestamps per device (readings = devices x this)")
    p.add_argument("--seconds", type=float, default=150.0, help="how long publishing takes")
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs of ingest while publishing")
    p.add_argument("--db-down", type=float, default=60.0, help="seconds PostgreSQL is stopped (0: never)")
    p.add_argument("--seed", type=int, help="repeat a run's schedule")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    args = p.parse_args(argv)
    # SIGTERM (a CI timeout) raises SystemExit, so the private PostgreSQL and Mosquitto are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(
        devices=args.devices,
        per_device=args.per_device,
        seconds=args.seconds,
        kills=args.kills,
        db_down=args.db_down,
        seed=args.seed,
        keep=args.keep,
    )
    print(result.summary(), flush=True)
    for i, why in enumerate(result.unexpected_exits, 1):
        print(f"--- ingest exit {i} not caused by the run ---\n{why}", flush=True)
    if not result.ok:
        print(f"--- last ingest log ---\n{result.log_tail}", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
