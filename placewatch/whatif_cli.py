"""`placewatch whatif gritting`: the season report's what-if over stored readings (the same answer as
POST /api/v1/reports/season/what-if): the same nights under another gritting policy file against the policy in
force, per route and in total."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from placewatch.nowcast_cli import _date
from placewatch.settings import Settings


def register(sub: Any) -> None:
    """Add the `whatif` command group."""
    group = sub.add_parser("whatif", help="the same nights under another policy")
    g = group.add_subparsers(dest="whatif_command", required=True).add_parser(
        "gritting",
        help="treatments saved and misses added under another gritting policy file, over stored readings",
        description="The nowcast is replayed each evening hour from 17:00 to 23:00 local time as it would have run, "
        "projecting the lowest road surface temperature of the next 12 hours; each policy treats a route on a night "
        "when a station of the route is projected at or below its trigger. Ice risk: a station of the route read "
        "0 °C or below during the night. Nights without a projection or readings are not covered.",
    )
    for flag, words in (("--start", "first night, YYYY-MM-DD"), ("--end", "last night, included")):
        g.add_argument(flag, required=True, type=_date, help=words)
    g.add_argument("--policy", required=True, type=Path, help="the other gritting policy (JSON, as the policy file)")
    g.add_argument("--tz", default=None, help="IANA time zone of the nights (default: PLACEWATCH_LOCAL_ZONE)")
    g.add_argument("--json", action="store_true", help="print the JSON of POST /api/v1/reports/season/what-if")
    g.set_defaults(fn=cmd_whatif_gritting)


def cmd_whatif_gritting(settings: Settings, args: argparse.Namespace) -> int:
    """Print the what-if; 0 when it ran, 1 when the request was refused, 2 when a policy cannot be read."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from alerts import nowcast_backtest as nb
    from alerts import whatif
    from core.model import Principal
    from store.db import connect

    try:
        in_force = nb.policy_in_force(settings)
        other, name = whatif.from_file(args.policy)
    except ValueError as exc:
        print(f"placewatch whatif gritting: {exc}", file=sys.stderr)
        return 2
    zone_name = (args.tz or "").strip() or settings.local_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        print(f"placewatch whatif gritting: unknown time zone {zone_name!r}", file=sys.stderr)
        return 1
    if not (nb.FIRST_DATE <= args.start <= args.end <= nb.LAST_DATE) or (args.end - args.start).days + 1 > nb.MAX_DAYS:
        print(
            f"placewatch whatif gritting: give an end on or after the start, at most {nb.MAX_DAYS} nights, "
            f"from {nb.FIRST_DATE.year} to {nb.LAST_DATE.year}",
            file=sys.stderr,
        )
        return 1
    with connect(settings.dsn()) as conn:
        result = whatif.compute(
            conn, Principal("cli", "admin"), start=args.start, end=args.end, zone=zone, in_force=in_force,
            other=other, other_name=name, width_m=settings.treated_width_m,
        )  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(whatif.table(result))
    return 0
