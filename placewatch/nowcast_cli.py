"""`placewatch backtest gritting` (how good the nowcast's calls were over stored readings: the same answer as
GET /api/v1/evaluation/nowcast) and `placewatch nowcast fit` (the daily learning, run once now).

Both find the embedded database of a running `placewatch run` from the same directory, as every command does.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from placewatch.settings import Settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-MM-DD") from None


def _moment(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: give ISO 8601, e.g. 2026-01-15T12:00Z") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone: add one, e.g. Z or +01:00")
    return at


def register(sub: Any) -> None:
    """Add the `backtest` and `nowcast` command groups."""
    bt = sub.add_parser("backtest", help="how good past decisions' inputs were").add_subparsers(
        dest="backtest_command", required=True
    )
    g = bt.add_parser(
        "gritting",
        help="replay the road surface temperature nowcast over stored readings and score its frost calls",
        description="At each issue time (each local hour of --issue-hours on each date from --start to --end) the "
        "nowcast uses only what was known then; it is scored against the observed minimum road surface "
        "temperature over each horizon, beside persistence and a straight-line trend. Event: observed at or "
        "below 0 °C; call: projected at or below the policy's trigger.",
    )
    g.add_argument("--start", required=True, type=_date, help="first local date, YYYY-MM-DD")
    g.add_argument("--end", required=True, type=_date, help="last local date, included")
    g.add_argument("--policy", type=Path, help="gritting policy JSON (default: PLACEWATCH_GRITTING_POLICY_FILE)")
    g.add_argument("--stations", help="road station ids, as a,b (default: all)")
    g.add_argument("--horizons", default=None, help="hours ahead, 1 to 15 (default 3,6)")
    g.add_argument("--issue-hours", default=None, help="local hours of issue: 17-23, 22-2 or 17,19,21 (default 17-23)")
    g.add_argument("--tz", default=None, help="IANA time zone (default: PLACEWATCH_LOCAL_ZONE)")
    g.add_argument("--json", action="store_true", help="print the JSON of GET /api/v1/evaluation/nowcast")
    g.set_defaults(fn=cmd_backtest_gritting)

    nc = sub.add_parser("nowcast", help="the learned road surface temperature nowcast").add_subparsers(
        dest="nowcast_command", required=True
    )
    f = nc.add_parser(
        "fit",
        help="run the daily learning now (it runs by itself at noon local) and say what it learned",
        description="Reads the road stations' last 120 days, refits the pooled nowcast on them when enough nights "
        "are stored and the last fit is a week old, and stores what each station's own nights taught.",
    )
    f.add_argument("--stations", help="only these road stations, as a,b (default: all)")
    f.add_argument("--at", type=_moment, help="learn as of this time (ISO 8601 with a zone; default now)")
    f.set_defaults(fn=cmd_nowcast_fit)


def cmd_backtest_gritting(settings: Settings, args: argparse.Namespace) -> int:
    """Print the backtest; 0 when it ran, 1 when the request was refused, 2 when the policy cannot be read."""
    from alerts import nowcast_backtest as nb
    from store.db import connect

    try:
        policy = nb.policy_in_force(settings, args.policy)
    except ValueError as exc:
        print(f"placewatch backtest gritting: {exc}", file=sys.stderr)
        return 2
    try:
        req = nb.request(
            args.start,
            args.end,
            horizons=args.horizons,
            issue_hours=args.issue_hours,
            tz=args.tz,
            stations=args.stations,
            default_zone=settings.local_zone,
        )
        with connect(settings.dsn()) as conn:
            result = nb.evaluate(conn, req, policy)
    except nb.BadRequest as exc:
        print(f"placewatch backtest gritting: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(nb.table(result))
    return 0


def cmd_nowcast_fit(settings: Settings, args: argparse.Namespace) -> int:
    """Run the learning once and print what it did."""
    from zoneinfo import ZoneInfo

    from alerts.nowcast_fit import fit_once
    from store.db import connect

    ids = [s.strip() for s in args.stations.split(",") if s.strip()] if args.stations else None
    with connect(settings.dsn()) as conn:
        outcome = fit_once(conn, now=args.at or datetime.now(UTC), zone=ZoneInfo(settings.local_zone), station_ids=ids)
        conn.commit()
    print("\n".join(outcome.lines()))
    return 0
