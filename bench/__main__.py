"""`make bench`: every benchmark in turn, each printing its figures against its reference, then a summary.

    python -m bench [--quick] [--only ingest,decisions,queries,memory,damp,cluster]

--quick runs smaller sizes (minutes rather than tens of minutes) for a first look; the targets are for
the full sizes.
"""

from __future__ import annotations

import argparse
import time
import traceback

from bench.common import Figure, print_table

FULL: dict[str, list[str]] = {
    "ingest": [],
    "decisions": [],
    "queries": [],
    "memory": [],
    "damp": [],
    "cluster": [],
}
QUICK: dict[str, list[str]] = {
    "ingest": ["--messages", "50000", "--naive", "3000", "--batch-messages", "1000"],
    "decisions": ["--iterations", "20", "--routes", "300"],
    "queries": ["--readings", "5000000", "--devices", "20000", "--runs", "5"],
    "memory": ["--messages", "50000"],
    "damp": ["--homes", "10000"],
    "cluster": ["--messages", "10000", "--iterations", "10"],
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit 1 if one of them failed to run (a missed target is reported, not an error)."""
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(FULL))
    a = ap.parse_args(argv)
    sizes = QUICK if a.quick else FULL
    summary: list[Figure] = []
    failed = []
    for name in [n.strip() for n in a.only.split(",") if n.strip()]:
        started = time.monotonic()
        print(f"\n==== bench.{name} {' '.join(sizes[name])}", flush=True)
        try:
            module = __import__(f"bench.{name}", fromlist=["main"])
            result = module.main(sizes[name])
            if isinstance(result, list):
                summary += [f for f in result if isinstance(f, Figure)]
        except Exception:  # one benchmark failing must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"==== bench.{name}: {time.monotonic() - started:.0f} s", flush=True)
    if summary:
        print_table("summary of every figure", summary)
    if failed:
        print(f"\nbenchmarks that did not run to the end: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
