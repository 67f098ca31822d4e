"""The engine a benchmark runs on: --engine native|timescale|both and --timescale-url, and both side by side.

Plain PostgreSQL runs on the benchmark's usual server; TimescaleDB on --timescale-url (default
PLACEWATCH_BENCH_TIMESCALE_URL), a server with TimescaleDB preloaded. Migrations are asked for the engine with
PLACEWATCH_TIMESCALEDB on or off (tests.services.TIMESCALEDB_SETTING), so a server without TimescaleDB is refused,
never measured as plain PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence


def add_engine_args(ap: argparse.ArgumentParser) -> None:
    """--engine and --timescale-url."""
    ap.add_argument(
        "--engine",
        choices=["native", "timescale", "both"],
        default=os.environ.get("PLACEWATCH_BENCH_ENGINE", "native"),
        help="plain PostgreSQL, TimescaleDB or both side by side (default PLACEWATCH_BENCH_ENGINE, else native)",
    )
    ap.add_argument(
        "--timescale-url",
        default=os.environ.get("PLACEWATCH_BENCH_TIMESCALE_URL"),
        help="a PostgreSQL server with TimescaleDB preloaded (default PLACEWATCH_BENCH_TIMESCALE_URL)",
    )


def engines_of(ap: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(engine, admin URL or None for the usual server) for each engine asked for."""
    names = ["native", "timescale"] if args.engine == "both" else [args.engine]
    if "timescale" in names and not args.timescale_url:
        ap.error("--engine timescale needs --timescale-url (or PLACEWATCH_BENCH_TIMESCALE_URL): a TimescaleDB server")
    return [(name, args.timescale_url if name == "timescale" else None) for name in names]


def print_side_by_side(title: str, rows: Sequence[tuple[str, str, str]]) -> None:
    """(figure, plain PostgreSQL, TimescaleDB) rows as one table."""
    print(f"\n## {title}\n")
    print(f"| {'figure':<44} | {'plain PostgreSQL':>16} | {'TimescaleDB':>16} |")
    print(f"|{'-' * 46}|{'-' * 18}|{'-' * 18}|")
    for name, native, timescale in rows:
        print(f"| {name:<44} | {native:>16} | {timescale:>16} |")
