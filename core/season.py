"""Season report: what worked (DOMAIN.md section 5). Pure rules over what store.season reads.

Roads, per route and in total, for the nights of a period:

- A **night** runs from 12:00 to 12:00 the next day in the council's time zone, and is named by its first day
  (the night of Thursday 15 January runs from Thursday noon to Friday noon): an evening's decisions, the
  crews' runs and the morning's frost fall in the same night.
- **Ice risk observed** on a route's night: the road surface temperature at one of the route's stations was
  at or below 0 °C (ICE_RST_C) at some reading of the night. The night's freeze time is the first such reading.
- **Treated in time**: a run on the route completed that night at or before the freeze time. **Missed**: ice
  observed and no run completed in time (**treated late** counts the missed nights with a run completed after
  the freeze). **Needless**: a run completed on a night with no ice observed. A night with no station
  reading at all is "no data", never "no ice".
- **Decisions** issued in the period; **acknowledged** by a person (or by the carried-over acknowledgement of
  the decision they replaced). **Response times** per decision, in minutes from its issue: to the first
  acknowledgement (or run start) by a person, to the start of the first run started under it, and to that
  run's completion; median and 90th percentile (nearest rank).
- **Salt** per completed run: the tonnes the crew recorded; else spread rate (the one used, else the one
  decided) x route length x treated width. The length is the geodesic length of the route's geometry on the
  WGS 84 ellipsoid; the treated width a setting (default 7.3 m: TREATED_WIDTH_SOURCE).

Damp: each Awaab's Law step (core.cases.STEPS) whose deadline falls in the period is on time, late, still
open and overdue, still open and not yet due, or not needed (the case was closed first); per patch, per
responsible officer and in total. For homes whose works were completed in the period: hours above 70 % and
80 % RH (in any room) and the peak mould index over the four weeks before against the four weeks after; a home
improved when, with both windows measured (coverage), its hours above 70 % fell and its peak mould index did
not rise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geographiclib.geodesic import Geodesic

from core.cases import STEPS, steps
from core.damp import DampPolicy
from core.gritting.vocab import TREATING
from core.mould import mould_index
from core.physics import rh_at, surface_temperature

ICE_RST_C = 0.0
NIGHT_STARTS = time(12, 0)
DEFAULT_TREATED_WIDTH_M = 7.3
TREATED_WIDTH_SOURCE = (
    "the width of a standard two-lane single carriageway, two 3.65 m lanes (Design Manual for Roads and Bridges "
    "CD 127, cross-sections and headrooms)"
)
WORKS_WINDOW = timedelta(days=28)
HUMID_RH = (70.0, 80.0)
OUTCOMES = ("treated_in_time", "missed", "needless", "no_ice", "no_data")
STEP_OUTCOMES = ("on_time", "late", "overdue", "open", "not_needed")
_DAY = timedelta(days=1)

# What each figure means, for the page and the API (the module text is the long form).
DEFINITIONS = {
    "night": "A night runs from 12:00 to 12:00 the next day, local time, and is named by its first day.",
    "ice_risk": "Ice risk observed: a station of the route read a road surface temperature at or below 0 °C "
    "during the night; the freeze time is the first such reading.",
    "treated_in_time": "A treatment run on the route was completed that night at or before the freeze time.",
    "missed": "Ice risk observed and no run completed by the freeze time (treated late: a run completed after it).",
    "needless": "A run was completed on a night with no ice risk observed.",
    "acknowledged": "Decisions acknowledged by a person, or re-issued asking the same and keeping the "
    "acknowledgement of the one they replaced.",
    "response_times": "Minutes from a decision's issue to its first acknowledgement (or run start) by a person, "
    "to the start of the first run started under it, and to that run's completion: median and 90th percentile.",
    "salt": "Tonnes the crew recorded; otherwise the spread rate used (else the one decided) x the route's "
    "geodesic length x the treated width.",
    "awaabs_law_steps": "Each step (investigate, written summary, safety work, preventative work begun and "
    "physically started, emergency) whose deadline falls in the period: on time, late, still open and overdue, "
    "still open and not yet due, or not needed because the case closed first.",
    "works": "Homes whose works were recorded as completed in the period: hours above 70 % and 80 % RH in any "
    "room and the peak mould index on the estimated wall surface, four weeks before against four weeks after; "
    "improved when both windows have readings in at least 70 % of their hours, the hours above 70 % fell and "
    "the peak mould index did not rise.",
}


# -- nights ----------------------------------------------------------------------------------------------


def night_of(at: datetime, zone: ZoneInfo) -> date:
    """The night a moment belongs to, named by its first day (noon to noon, local time)."""
    local = at.astimezone(zone)
    return local.date() if local.time() >= NIGHT_STARTS else local.date() - _DAY


def night_bounds(night: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The night's start and end (aware, in the zone): noon of its day to noon of the next."""
    return datetime.combine(night, NIGHT_STARTS, zone), datetime.combine(night + _DAY, NIGHT_STARTS, zone)


def period_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The span of the nights from `start` to `end`, both included, in UTC; ValueError when end is before start."""
    if end < start:
        raise ValueError(f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return night_bounds(start, zone)[0].astimezone(UTC), night_bounds(end, zone)[1].astimezone(UTC)


def day_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Midnight at the start of `start` to midnight after `end` (in UTC): the days of a period, for damp deadlines."""
    if end < start:
        raise ValueError(f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return (
        datetime.combine(start, time(0), zone).astimezone(UTC),
        datetime.combine(end + _DAY, time(0), zone).astimezone(UTC),
    )


# -- route length and salt ---------------------------------------------------------------------------------

_WGS84 = Geodesic.WGS84


def _lines(geometry: Mapping[str, Any]) -> list[Sequence[Sequence[float]]]:
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "LineString" and isinstance(coords, list):
        return [coords]
    if kind == "MultiLineString" and isinstance(coords, list):
        return [c for c in coords if isinstance(c, list)]
    if kind == "GeometryCollection":
        return [line for g in geometry.get("geometries") or [] if isinstance(g, Mapping) for line in _lines(g)]
    return []


def route_length_m(geometry: Mapping[str, Any] | None) -> float | None:
    """The geodesic length of a route's LineString or MultiLineString (WGS 84 ellipsoid), metres; None when the
    geometry has no line."""
    if not geometry:
        return None
    total, any_segment = 0.0, False
    for line in _lines(geometry):
        for a, b in itertools.pairwise(line):
            got = _WGS84.Inverse(float(a[1]), float(a[0]), float(b[1]), float(b[0]), Geodesic.DISTANCE)
            total += float(got["s12"])
            any_segment = True
    return total if any_segment else None


def run_salt(
    tonnes: float | None, rate_used: float | None, rate_decided: float | None, length_m: float | None, width_m: float
) -> tuple[float | None, str]:
    """A run's salt in tonnes and how it was known: 'recorded', 'estimated' (rate x length x width) or 'unknown'."""
    if tonnes is not None:
        return tonnes, "recorded"
    rate = rate_used if rate_used is not None else rate_decided
    if rate is None or length_m is None:
        return None, "unknown"
    return rate * length_m * width_m / 1e6, "estimated"  # g/m² x m² = g; 10^6 g to the tonne


# -- what the store gives ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteRec:
    """A route: its stations and the geometry it is drawn with."""

    id: str
    name: str
    stations: tuple[str, ...]
    geometry: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class StationHour:
    """One hour of a station's road surface temperature: its lowest value, and the first reading at or below
    ICE_RST_C in it (None when none was, or when only the hourly rollup is left: then the hour's start)."""

    station: str
    hour: datetime
    min_rst: float
    first_ice_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DecisionRec:
    """A decision issued in the period, with what people did about it."""

    id: int
    route_id: str
    action: str
    issued_at: datetime
    acknowledged_at: datetime | None  # first acknowledgement or run start by a person
    carried_over: bool  # took over the acknowledgement (or run) of the decision it replaced
    started_at: datetime | None  # first run started under it
    completed_at: datetime | None  # that run's completion


@dataclass(frozen=True, slots=True)
class RunRec:
    """A treatment run that finished (completed or cancelled) or is out."""

    id: int
    route_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    discretionary: bool
    spread_rate_g_m2: float | None  # used
    decided_rate_g_m2: float | None  # asked for by the decision it started under
    tonnes: float | None


# -- roads ------------------------------------------------------------------------------------------------


def _minutes(a: datetime, b: datetime | None) -> float | None:
    return None if b is None else max((b - a).total_seconds() / 60.0, 0.0)


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def response(values: Iterable[float | None]) -> dict[str, Any]:
    """n, median and 90th percentile of response times in minutes (rounded to whole minutes)."""
    got = [v for v in values if v is not None]
    med, p90 = nearest_rank(got, 0.5), nearest_rank(got, 0.9)
    return {
        "n": len(got),
        "median_min": None if med is None else round(med),
        "p90_min": None if p90 is None else round(p90),
    }


@dataclass(frozen=True, slots=True)
class StationNights:
    """Per (station, night): whether it reported, its first reading at or below ICE_RST_C (ice risk observed)
    and its lowest road surface temperature."""

    reported: set[tuple[str, date]]
    first_ice: dict[tuple[str, date], datetime]
    lowest: dict[tuple[str, date], float]


def station_nights(hours: Iterable[StationHour], *, lo: datetime, hi: datetime, zone: ZoneInfo) -> StationNights:
    """The ice-risk rule, night by night, over the station hours in [lo, hi): the one place it is decided (the
    roads report and the gritting what-if both call it)."""
    reported: set[tuple[str, date]] = set()
    first_ice: dict[tuple[str, date], datetime] = {}
    lowest: dict[tuple[str, date], float] = {}
    nights: dict[datetime, date] = {}  # every station reports the same hours: each is placed in its night once
    for h in hours:
        if not lo <= h.hour < hi:
            continue
        night = nights.get(h.hour)
        if night is None:
            night = nights[h.hour] = night_of(h.hour, zone)
        key = (h.station, night)
        reported.add(key)
        lowest[key] = min(h.min_rst, lowest.get(key, h.min_rst))
        if h.min_rst <= ICE_RST_C:
            at = h.first_ice_at or h.hour
            if key not in first_ice or at < first_ice[key]:
                first_ice[key] = at
    return StationNights(reported, first_ice, lowest)


def _night_outcome(first_ice: datetime | None, has_data: bool, finished: Sequence[datetime]) -> str:
    if first_ice is not None:
        return "treated_in_time" if any(f <= first_ice for f in finished) else "missed"
    if finished:
        return "needless"
    return "no_ice" if has_data else "no_data"


def _blank() -> dict[str, Any]:
    return {
        "nights": 0,
        "nights_with_data": 0,
        "ice_nights": 0,
        "decisions_issued": 0,
        "treatment_decisions": 0,
        "acknowledged": 0,
        "runs_completed": 0,
        "runs_discretionary": 0,
        "runs_cancelled": 0,
        "treated_in_time": 0,
        "missed": 0,
        "treated_late": 0,
        "needless": 0,
        "salt_t": 0.0,
        "salt_recorded_t": 0.0,
        "salt_estimated_t": 0.0,
        "runs_salt_unknown": 0,
    }


def roads_report(
    routes: Sequence[RouteRec],
    hours: Iterable[StationHour],
    decisions: Iterable[DecisionRec],
    runs: Iterable[RunRec],
    *,
    start: date,
    end: date,
    zone: ZoneInfo,
    width_m: float = DEFAULT_TREATED_WIDTH_M,
) -> dict[str, Any]:
    """The roads part of the season report: per route, in total, and the nights that had ice or a run."""
    if not width_m > 0:
        raise ValueError(f"the treated width must be above 0 m, got {width_m}")
    lo, hi = period_bounds(start, end, zone)
    n_nights = (end - start).days + 1
    sn = station_nights(hours, lo=lo, hi=hi, zone=zone)
    reported, first_ice, lowest = sn.reported, sn.first_ice, sn.lowest
    by_route_runs: dict[str, list[RunRec]] = {}
    for r in runs:
        by_route_runs.setdefault(r.route_id, []).append(r)
    by_route_decisions: dict[str, list[DecisionRec]] = {}
    for d in decisions:
        if lo <= d.issued_at < hi:
            by_route_decisions.setdefault(d.route_id, []).append(d)

    total = _blank()
    total_resp: dict[str, list[float | None]] = {"acknowledged": [], "started": [], "completed": []}
    ice_any: set[date] = set()
    out_routes, out_nights = [], []
    for route in routes:
        row = _blank()
        length = route_length_m(route.geometry)
        # Nights of the route.
        completed_by_night: dict[date, list[datetime]] = {}
        for r in by_route_runs.get(route.id, []):
            if r.finished_at is None or not lo <= r.finished_at < hi:
                continue
            if r.status == "cancelled":
                row["runs_cancelled"] += 1
                continue
            if r.status != "completed":
                continue
            completed_by_night.setdefault(night_of(r.finished_at, zone), []).append(r.finished_at)
            row["runs_completed"] += 1
            row["runs_discretionary"] += int(r.discretionary)
            salt, how = run_salt(r.tonnes, r.spread_rate_g_m2, r.decided_rate_g_m2, length, width_m)
            if salt is None:
                row["runs_salt_unknown"] += 1
            else:
                row["salt_t"] += salt
                row[f"salt_{how}_t"] += salt
        for i in range(n_nights):
            night = start + timedelta(days=i)
            keys = [(s, night) for s in route.stations]
            freezes = [first_ice[k] for k in keys if k in first_ice]
            ice = min(freezes) if freezes else None
            has_data = any(k in reported for k in keys)
            finished = sorted(completed_by_night.get(night, []))
            outcome = _night_outcome(ice, has_data, finished)
            row["nights"] += 1
            row["nights_with_data"] += int(has_data)
            if ice is not None:
                row["ice_nights"] += 1
                ice_any.add(night)
            if outcome in ("treated_in_time", "missed", "needless"):
                row[outcome] += 1
            if outcome == "missed" and finished:
                row["treated_late"] += 1
            if ice is not None or finished:
                lows = [lowest[k] for k in keys if k in lowest]
                out_nights.append(
                    {
                        "night": night.isoformat(),
                        "route_id": route.id,
                        "route_name": route.name,
                        "outcome": outcome,
                        "first_ice_at": ice,
                        "min_rst": min(lows) if lows else None,
                        "runs_completed": len(finished),
                        "first_completed_at": finished[0] if finished else None,
                    }
                )
        resp: dict[str, list[float | None]] = {"acknowledged": [], "started": [], "completed": []}
        for d in by_route_decisions.get(route.id, []):
            row["decisions_issued"] += 1
            row["treatment_decisions"] += int(d.action in TREATING)
            row["acknowledged"] += int(d.acknowledged_at is not None or d.carried_over)
            resp["acknowledged"].append(_minutes(d.issued_at, d.acknowledged_at))
            resp["started"].append(_minutes(d.issued_at, d.started_at))
            resp["completed"].append(_minutes(d.issued_at, d.completed_at))
        for k, v in resp.items():
            total_resp[k] += v
        for k, v in row.items():
            total[k] += v
        out_routes.append(
            {
                "route_id": route.id,
                "route_name": route.name,
                "length_km": None if length is None else round(length / 1000.0, 3),
                **_rounded(row),
                "response": {k: response(v) for k, v in resp.items()},
            }
        )
    total["nights_any_ice"] = len(ice_any)
    return {
        "nights": n_nights,
        "treated_width_m": width_m,
        "treated_width_source": TREATED_WIDTH_SOURCE if width_m == DEFAULT_TREATED_WIDTH_M else "configured",
        "routes": out_routes,
        "total": {**_rounded(total), "response": {k: response(v) for k, v in total_resp.items()}},
        "nights_detail": sorted(out_nights, key=lambda n: (n["night"], n["route_id"])),
    }


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


# -- damp: Awaab's Law steps -------------------------------------------------------------------------------


def step_outcomes(case: Mapping[str, Any], *, lo: datetime, hi: datetime, now: datetime) -> list[tuple[str, str]]:
    """(step, outcome) for each step of the case whose deadline falls in [lo, hi); outcomes in STEP_OUTCOMES."""
    out = []
    for name, due, done in steps(case):
        if due is None or not lo <= due < hi:
            continue
        if done is not None:
            out.append((name, "on_time" if done <= due else "late"))
        elif case["closed_at"] is not None:
            out.append((name, "not_needed"))
        else:
            out.append((name, "overdue" if due < now else "open"))
    return out


def _step_table() -> dict[str, dict[str, int]]:
    return {name: dict.fromkeys(STEP_OUTCOMES, 0) for name, _, _ in STEPS}


def damp_compliance(cases: Iterable[Mapping[str, Any]], *, lo: datetime, hi: datetime, now: datetime) -> dict[str, Any]:
    """Awaab's Law steps due in [lo, hi): per patch (case key 'patch'), per responsible officer ('officer'),
    in total; each a table step -> outcome -> count, with the outcomes summed over steps."""
    groups: dict[str, dict[str, dict[str, dict[str, int]]]] = {"patch": {}, "officer": {}}
    total = _step_table()
    for case in cases:
        got = step_outcomes(case, lo=lo, hi=hi, now=now)
        if not got:
            continue
        keys = {"patch": case.get("patch") or "(no patch)", "officer": case.get("officer") or "(no officer)"}
        for by, key in keys.items():
            table = groups[by].setdefault(key, _step_table())
            for step, outcome in got:
                table[step][outcome] += 1
        for step, outcome in got:
            total[step][outcome] += 1

    def view(name: str, table: dict[str, dict[str, int]]) -> dict[str, Any]:
        sums = {o: sum(t[o] for t in table.values()) for o in STEP_OUTCOMES}
        return {"name": name, "steps": table, **sums}

    return {
        "by_patch": [view(k, v) for k, v in sorted(groups["patch"].items())],
        "by_officer": [view(k, v) for k, v in sorted(groups["officer"].items())],
        "total": view("total", total),
    }


# -- damp: before and after the works ------------------------------------------------------------------------


def _window(
    rooms: Sequence[tuple[Sequence[float], Sequence[float]]], hours: range, months: Sequence[int], policy: DampPolicy
) -> dict[str, Any]:
    above = dict.fromkeys(HUMID_RH, 0)
    measured = 0
    peak = 0.0
    for i in hours:
        now_rh = [rh[i] for _, rh in rooms if not math.isnan(rh[i])]
        if now_rh:
            measured += 1
            for limit in HUMID_RH:
                above[limit] += int(max(now_rh) > limit)
    typical = policy.default_outdoor_by_month
    for temps, rhs in rooms:
        tsi, srh = [], []
        for i in hours:
            t, rh = temps[i], rhs[i]
            if math.isnan(t) or math.isnan(rh):
                tsi.append(math.nan)
                srh.append(math.nan)
                continue
            ts = t if typical is None else surface_temperature(t, typical[months[i] - 1], policy.f_rsi)
            tsi.append(ts)
            srh.append(min(rh_at(t, rh, ts), 100.0))
        if any(not math.isnan(v) for v in srh):
            peak = max(peak, max(mould_index(tsi, srh, cls=policy.mould_class, cmat=policy.mould_cmat), default=0.0))
    return {
        "hours_above_70": above[HUMID_RH[0]],
        "hours_above_80": above[HUMID_RH[1]],
        "peak_mould_index": round(peak, 3),
        "coverage": round(measured / len(hours), 3) if len(hours) else 0.0,
    }


def works_hours(works_at: datetime) -> tuple[datetime, int]:
    """The first hour of a home's before-and-after series (WORKS_WINDOW before the hour of the works) and the
    number of hours in each window."""
    hour = works_at.replace(minute=0, second=0, microsecond=0)
    return hour - WORKS_WINDOW, int(WORKS_WINDOW.total_seconds() // 3600)


def works_effect(
    rooms: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    works_at: datetime,
    now: datetime,
    zone: ZoneInfo,
    policy: DampPolicy | None = None,
) -> dict[str, Any]:
    """One home before and after its works: rooms are hourly (temperature, RH) series (NaN: no reading) over
    the two windows of works_hours (before: the WORKS_WINDOW up to the hour of the works; after: from it).
    The wall surface for the mould index uses the typical outdoor temperature of each month
    (policy.default_outdoor_by_month), so the two windows compare the home, not the weather."""
    policy = policy or DampPolicy()
    first, n = works_hours(works_at)
    if any(len(t) != 2 * n or len(rh) != 2 * n for t, rh in rooms):
        raise ValueError(f"each room needs {2 * n} hourly values, from {WORKS_WINDOW.days} days before the works")
    months = [(first + timedelta(hours=i)).astimezone(zone).month for i in range(2 * n)]
    before = _window(rooms, range(0, n), months, policy)
    after = _window(rooms, range(n, 2 * n), months, policy)
    after["complete"] = now >= first + 2 * n * timedelta(hours=1)
    judged = before["coverage"] >= policy.min_coverage and after["coverage"] >= policy.min_coverage
    improved = (
        judged
        and after["hours_above_70"] < before["hours_above_70"]
        and after["peak_mould_index"] <= before["peak_mould_index"]
    )
    return {"before": before, "after": after, "judged": judged, "improved": improved}
