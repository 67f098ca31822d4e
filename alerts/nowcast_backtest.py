"""The nowcast backtest over stored readings (CONTRACT.md, Evaluation): what GET /api/v1/evaluation/nowcast answers
and `placewatch backtest gritting` prints, computed here once for both.

The request is checked first (bad values refused with the reason in words: BadRequest), then the road stations'
readings from HISTORY_DAYS before the start (what the model could have learned by then) to two days after the end
(the last evening's horizons) are replayed by core.gritting.backtest: at each issue time the nowcast uses only
what was known then, and is scored with persistence and a straight-line trend on the same issue times. A call is
the policy's trigger (the policy in force: the same file the gritting evaluator reads).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from alerts.nowcast_fit import HISTORY_DAYS  # the nights the daily learning reads: the backtest reads as many
from core.gritting import backtest, learned
from core.gritting._text import temp
from core.gritting.policy import GrittingPolicy
from placewatch.settings import Settings

MAX_DAYS = 400
DEFAULT_HORIZONS = "3,6"
DEFAULT_ISSUE_HOURS = "17-23"
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2199, 12, 31)


class BadRequest(ValueError):
    """A request that cannot be answered; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class Request:
    """A checked backtest request."""

    start: date
    end: date
    horizons: tuple[int, ...]
    issue_hours: tuple[int, ...]
    tz: ZoneInfo
    stations: tuple[str, ...] | None


def request(
    start: date,
    end: date,
    *,
    horizons: str | None = None,
    issue_hours: str | None = None,
    tz: str | None = None,
    stations: str | None = None,
    default_zone: str = "Europe/London",
) -> Request:
    """The request checked, or BadRequest with the reason."""
    for d in (start, end):
        if not FIRST_DATE <= d <= LAST_DATE:
            raise BadRequest(f"{d.isoformat()} is out of range: give dates from {FIRST_DATE.year} to {LAST_DATE.year}")
    if end < start:
        raise BadRequest(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadRequest(f"the period is {(end - start).days + 1} days, longer than {MAX_DAYS}: ask for a shorter one")
    zone_name = (tz or "").strip() or default_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(
            f"unknown time zone {zone_name!r}: give an IANA zone such as Europe/London or America/Denver"
        ) from None
    try:
        hours = backtest.hour_range(issue_hours or DEFAULT_ISSUE_HOURS)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    ids = None
    if stations is not None and stations.strip():
        ids = tuple(dict.fromkeys(s.strip() for s in stations.split(",") if s.strip()))
    return Request(start, end, _horizons(horizons or DEFAULT_HORIZONS), hours, zone, ids)


def _horizons(text: str) -> tuple[int, ...]:
    longest = learned.HORIZONS[-1]
    try:
        hours = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise BadRequest(f"horizons {text!r}: give whole hours ahead, 1 to {longest}, as 3,6") from None
    for h in hours:
        if h < 1 or h > longest:
            raise BadRequest(f"horizon {h} h: the nowcast projects 1 to {longest} hours ahead")
    return tuple(sorted(set(hours)))


def policy_in_force(settings: Settings, path: Path | None = None) -> GrittingPolicy:
    """The gritting policy the evaluator decides by (PLACEWATCH_GRITTING_POLICY_FILE), or the one in `path`."""
    from alerts.gritting import load_policy

    return load_policy(path if path is not None else settings.gritting_policy_file, settings.winter_policy_name)


def evaluate(conn: psycopg.Connection, req: Request, policy: GrittingPolicy) -> dict[str, Any]:
    """The backtest's answer: the contract's evaluation and what the replay learned on the way."""
    from store import nowcast as store

    if req.stations is not None:
        known = store.road_stations(conn, req.stations)
        unknown = [s for s in req.stations if s not in known]
        if unknown:
            raise BadRequest(f"no road station {', '.join(unknown)} in the registry")
    since = datetime.combine(req.start - timedelta(days=HISTORY_DAYS), time(0), tzinfo=req.tz)
    until = datetime.combine(req.end + timedelta(days=2), time(0), tzinfo=req.tz)
    series = store.station_series(
        conn, station_ids=None if req.stations is None else list(req.stations), since=since, until=until
    )
    default = learned.load_default()
    trigger, inclusive = policy.trigger_rst_c, policy.trigger_inclusive
    fits: tuple[str, ...] = ()
    learning = 0
    seen_ids: set[str] = set()
    if not any(not s.empty for s in series):
        out = backtest.empty_evaluation(req.horizons, trigger)
    else:
        try:
            r = backtest.replay(
                series,
                start=req.start,
                end=req.end,
                horizons=req.horizons,
                issue_hours=req.issue_hours,
                tz=req.tz,
                default=default,
                fit=learned.fit_at,
            )
        except ValueError as exc:  # a horizon the model does not project
            raise BadRequest(str(exc)) from None
        out = (
            backtest.evaluation(r, trigger, inclusive)
            if len(r.examples)
            else backtest.empty_evaluation(req.horizons, trigger)
        )
        fits, learning = r.pooled_fits, r.stations_learning
        seen_ids = set(r.examples.station.tolist())
    return out | {
        "start": req.start.isoformat(),
        "end": req.end.isoformat(),
        "tz": req.tz.key,
        "issue_hours": list(req.issue_hours),
        "trigger_inclusive": inclusive,
        "default_model_fitted_at": default.fitted_at.isoformat(),
        "default_in_sample": in_sample(default, seen_ids, req.start, req.end),
        "pooled_refits": list(fits),
        "stations_learning": learning,
    }


def in_sample(default: learned.NowcastModel, scored: set[str], start: date, end: date) -> list[str]:
    """Scored stations whose nights in this period the shipped default was fitted on: their figures are in-sample
    (optimistic), and the answer says so rather than claim more than the data shows."""
    t = default.trained_on
    if not t.get("from") or not t.get("to"):
        return []
    first = datetime.fromisoformat(str(t["from"]).replace("Z", "+00:00")).date()
    last = datetime.fromisoformat(str(t["to"]).replace("Z", "+00:00")).date()
    if end < first or start > last:
        return []
    return sorted(scored & {str(x) for x in t.get("station_ids", ())})


# -- for a person ------------------------------------------------------------------------------------------------

_ROWS = (
    ("nowcast", None),
    ("persistence", "persistence"),
    ("straight-line trend", "linear_trend"),
    ("perfect forecast", "ceiling"),
)


def _cell(v: Any, width: int, digits: int = 2) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:.{digits}f}".rjust(width)
    return f"{v:,}".rjust(width)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _hours(hours: Sequence[int]) -> str:
    if len(hours) > 1 and all((b - a) % 24 == 1 for a, b in itertools.pairwise(hours)):
        return f"{hours[0]:02d}:00 to {hours[-1]:02d}:00"
    return ", ".join(f"{h:02d}:00" for h in hours)


def table(result: dict[str, Any]) -> str:
    """The answer as a table per horizon, for `placewatch backtest gritting`."""
    word = "at or below" if result.get("trigger_inclusive", True) else "below"
    lines = [
        f"Nowcast backtest {result['start']} to {result['end']}, issued each hour {_hours(result['issue_hours'])} "
        f"({result['tz']}): {result['stations']} stations, {result['issues']:,} issue times",
        f"Event: observed road surface temperature at or below {temp(backtest.EVENT_C)}; call: projected {word} "
        f"{temp(result['trigger_c'])} (the policy's trigger)",
        f"Learning: shipped default fitted {result['default_model_fitted_at'][:10]}; "
        + (
            f"refitted on the stored nights {_times(len(result['pooled_refits']))}"
            if result["pooled_refits"]
            else "not refitted (too few stored nights)"
        )
        + f"; {result['stations_learning']} stations with their own correction by the end",
    ]
    if result.get("default_in_sample"):
        lines.append(
            f"In-sample: the shipped default was fitted on these nights of {len(result['default_in_sample'])} of "
            "these stations, so their figures are optimistic; judge the model on other stations or other periods "
            "(bench.nowcast scores the shared stations leave-stations-out)."
        )
    head = (
        f"{'':<20}{'n':>7}{'MAE °C':>8}{'bias °C':>9}{'hits':>6}{'misses':>8}{'false alarms':>14}"
        f"{'correct neg.':>14}{'POD':>6}{'FAR':>6}{'CSI':>6}"
    )
    for h in result["horizons"]:
        lines += ["", f"{h['hours']} h ahead", head]
        for name, key in _ROWS:
            row = h if key is None else h[key] if key == "ceiling" else h["baselines"][key]
            lines.append(
                f"{name:<20}{_cell(row['n'], 7)}{_cell(row['mae_c'], 8)}{_cell(row['bias_c'], 9)}"
                f"{_cell(row['hits'], 6)}{_cell(row['misses'], 8)}{_cell(row['false_alarms'], 14)}"
                f"{_cell(row['correct_negatives'], 14)}{_cell(row['pod'], 6)}{_cell(row['far'], 6)}"
                f"{_cell(row['csi'], 6)}"
            )
    lines += [
        "",
        "Perfect forecast: the observed minimum itself. With a trigger above 0 °C it still calls the nights that "
        "stayed just above freezing (false alarms bought as a margin of safety): no forecast scores a lower FAR or "
        "a higher CSI than that row.",
    ]
    if not result["issues"]:
        lines += ["", "Nothing to score: no road surface temperature readings for these stations in the period."]
    return "\n".join(lines)
