"""The season report's what-if over stored readings (core.gritting.whatif has the rules): what
GET /api/v1/reports/season?what_if_trigger_c=, POST /api/v1/reports/season/what-if and `placewatch whatif gritting`
answer, computed here once for all three.

The routes' stations' readings from HISTORY_DAYS before the start (what the model could have learned by then) to
two days after the end are replayed by core.gritting.backtest as alerts.nowcast_backtest replays them, at the
evening issue hours (core.gritting.whatif.ISSUE_HOURS, local time) with the projection HORIZON_H hours ahead;
the ice-risk nights come from the hourly road surface temperatures the season report reads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from alerts.nowcast_backtest import HISTORY_DAYS
from core import season
from core.gritting import backtest, learned, whatif
from core.gritting._text import temp
from core.gritting.policy import GrittingPolicy
from core.model import Principal
from store import nowcast as nowcast_store
from store import season as season_store


def with_trigger(policy: GrittingPolicy, trigger_c: float) -> tuple[GrittingPolicy, str]:
    """The policy in force with another trigger, and its name in words."""
    return dataclasses.replace(policy, trigger_rst_c=float(trigger_c)), f"the trigger at {temp(trigger_c)}"


def from_values(values: Any, name: str | None = None) -> tuple[GrittingPolicy, str]:
    """A policy from a JSON object of GrittingPolicy fields (as the policy file holds them), and its name: the
    file's own `name`, else `name`, else 'the other policy'. ValueError in words when it cannot be read."""
    if not isinstance(values, Mapping):
        raise ValueError("expected a JSON object of policy values, as the gritting policy file holds them")
    policy = GrittingPolicy.from_mapping(values)
    return policy, str(values.get("name") or name or "the other policy")


def from_file(path: Path) -> tuple[GrittingPolicy, str]:
    """A policy file (JSON, as the gritting evaluator reads it) and its name (its `name`, else the file name)."""
    try:
        return from_values(json.loads(Path(path).read_text(encoding="utf-8")), Path(path).name)
    except (OSError, ValueError) as exc:
        raise ValueError(f"gritting policy file {path}: {exc}") from None


def _empty_replay(horizons: tuple[int, ...]) -> backtest.Replay:
    ex = learned.Examples.concat([], horizons)
    none = np.zeros((0, len(horizons)))
    return backtest.Replay(ex, horizons, none, none, none, (), 0)


def compute(
    conn: psycopg.Connection,
    user: Principal,
    *,
    start: date,
    end: date,
    zone: ZoneInfo,
    in_force: GrittingPolicy,
    other: GrittingPolicy,
    other_name: str | None,
    width_m: float,
) -> dict[str, Any]:
    """The what-if as the season report's `what_if` (status "computed"), over the routes `user` may see."""
    routes = season_store.routes(conn, user)
    stations = sorted({s for r in routes for s in r.stations})
    horizons = (1, whatif.HORIZON_H)  # 1 h keeps every issue time with a reading after it; 12 h is the one used
    issue_hours = backtest.hour_range(whatif.ISSUE_HOURS)
    replay = _empty_replay(horizons)
    if stations:
        since = datetime.combine(start - timedelta(days=HISTORY_DAYS), time(0), tzinfo=zone)
        until = datetime.combine(end + timedelta(days=2), time(0), tzinfo=zone)
        series = nowcast_store.station_series(conn, station_ids=stations, since=since, until=until)
        if any(not s.empty for s in series):
            replay = backtest.replay(
                series,
                start=start,
                end=end,
                horizons=horizons,
                issue_hours=issue_hours,
                tz=zone,
                default=learned.load_default(),
                fit=learned.fit_at,
            )
    lo, hi = season.period_bounds(start, end, zone)
    hours = season_store.station_hours(conn, stations, lo=lo, hi=hi)
    result = whatif.compare(
        routes,
        replay,
        hours,
        in_force=whatif.Side.of(in_force),
        other=whatif.Side.of(other),
        start=start,
        end=end,
        zone=zone,
        width_m=width_m,
    )
    t = result["total"]
    return result | {
        "status": "computed",
        "text": whatif.words(result, other_name=other_name),
        "policy": other_name or f"the trigger at {temp(other.trigger_rst_c)}",
        "treatments_saved": t["treatments_saved"],
        "misses_added": t["misses_added"],
        "salt_saved_t": t["salt_saved_t"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "tz": zone.key,
        "issue_hours": list(issue_hours),
    }


def table(result: dict[str, Any]) -> str:
    """The what-if for a person, per route, for `placewatch whatif gritting`."""
    a, b = result["in_force"], result["other"]
    lines = [
        result["text"],
        "",
        f"Issued each hour {result['issue_hours'][0]:02d}:00 to {result['issue_hours'][-1]:02d}:00 ({result['tz']}),"
        f" projecting {result['horizon_hours']} h ahead; in force: trigger {temp(a['trigger_c'])},"
        f" {a['rate_g_m2']:g} g/m²; other: trigger {temp(b['trigger_c'])}, {b['rate_g_m2']:g} g/m²",
        "",
        f"{'route':<24}{'covered':>8}{'not cov.':>9}{'ice':>5}{'treated':>13}{'missed':>11}{'needless':>11}"
        f"{'saved':>7}{'misses +':>9}{'salt saved t':>13}",
    ]
    for r in [*result["routes"], {**result["total"], "route_name": "All routes"}]:
        x, y = r["in_force"], r["other"]
        salt = "-" if r["salt_saved_t"] is None else f"{r['salt_saved_t']:.1f}"
        lines.append(
            f"{str(r['route_name'])[:23]:<24}{r['covered']:>8}{r['not_covered']:>9}{r['ice_nights']:>5}"
            f"{x['treated']:>6} -> {y['treated']:<3}{x['missed']:>4} -> {y['missed']:<3}"
            f"{x['needless']:>4} -> {y['needless']:<3}{r['treatments_saved']:>7}{r['misses_added']:>9}{salt:>13}"
        )
    return "\n".join(lines)
