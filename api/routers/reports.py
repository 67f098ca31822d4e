"""The season report: what worked (core.season has the rules and their definitions).

`GET /api/v1/reports/season?start=2026-11-01&end=2027-03-31` for the nights (roads) and days (damp) from start
to end, both included. Admin gets both parts, highways the roads, an officer the damp part of their patch;
a tenant 403. `format=csv` (or `Accept: text/csv`) with `table=routes|nights|patches|officers|homes` gives
one table as CSV. The what-if (the same nights under another policy, core.gritting.whatif) is computed when asked
for: `what_if_trigger_c=1.0` (the policy in force with that trigger), or POST /reports/season/what-if with a policy
as JSON; otherwise `what_if.status` is "not_computed".
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from alerts import whatif as whatif_job
from alerts.nowcast_backtest import FIRST_DATE, LAST_DATE, policy_in_force
from api.deps import Conn, SettingsDep, require
from api.row_models import UtcTime
from core import season
from core.gritting.policy import GrittingPolicy
from core.model import Principal
from core.timeparse import utc_z
from store import season as store

router = APIRouter(tags=["reports"])
Reader = Annotated[Principal, Depends(require("admin", "highways", "officer"))]
MAX_NIGHTS = 400
Table = Literal["routes", "nights", "patches", "officers", "homes"]


class ResponseTimes(BaseModel):
    """Minutes from a decision's issue, over the decisions that got that far."""

    n: int
    median_min: int | None
    p90_min: int | None = Field(description="90th percentile, nearest rank")


class Responses(BaseModel):
    """Response times: to the first acknowledgement by a person, to the first run's start and completion."""

    acknowledged: ResponseTimes
    started: ResponseTimes
    completed: ResponseTimes


class RoadCounts(BaseModel):
    """What happened on the roads over the period's nights."""

    nights: int
    nights_with_data: int = Field(description="nights with at least one road surface temperature reading")
    ice_nights: int = Field(description="nights with road surface temperature at or below 0 °C at a station")
    decisions_issued: int
    treatment_decisions: int = Field(description="decisions that asked crews to treat")
    acknowledged: int = Field(description="decisions acknowledged by a person, or carried over acknowledged")
    runs_completed: int
    runs_discretionary: int = Field(description="completed runs the decision did not ask for")
    runs_cancelled: int
    treated_in_time: int = Field(description="ice nights with a run completed before the first freeze")
    missed: int = Field(description="ice nights with no run completed before the first freeze")
    treated_late: int = Field(description="missed nights with a run completed after the freeze")
    needless: int = Field(description="nights with a completed run and no ice observed")
    salt_t: float = Field(description="tonnes: recorded plus estimated")
    salt_recorded_t: float
    salt_estimated_t: float = Field(description="spread rate x route length x treated width")
    runs_salt_unknown: int = Field(description="runs with neither tonnes nor a spread rate nor a route length")
    response: Responses


class RouteRow(RoadCounts):
    """One route over the period."""

    route_id: str
    route_name: str
    length_km: float | None = Field(description="geodesic length of the route's geometry")


class RoadTotal(RoadCounts):
    """Every route together (counts are route-nights)."""

    nights_any_ice: int = Field(description="nights with ice observed on any route")


class NightRow(BaseModel):
    """A route's night that had ice or a run."""

    night: date = Field(description="the night from noon of this day to noon of the next, local time")
    route_id: str
    route_name: str
    outcome: Literal["treated_in_time", "missed", "needless", "no_ice", "no_data"]
    first_ice_at: UtcTime | None
    min_rst: float | None = Field(description="lowest road surface temperature of the night, °C")
    runs_completed: int
    first_completed_at: UtcTime | None


class RoadsPart(BaseModel):
    """The roads: per route, in total, and night by night."""

    nights: int
    treated_width_m: float
    treated_width_source: str
    routes: list[RouteRow]
    total: RoadTotal
    nights_detail: list[NightRow]


class StepCounts(BaseModel):
    """Awaab's Law steps due in the period, by outcome."""

    on_time: int
    late: int
    overdue: int = Field(description="not done, and past the deadline now")
    open: int = Field(description="not done, deadline still to come")
    not_needed: int = Field(description="the case was closed before the step was done")


class ComplianceRow(StepCounts):
    """One patch, officer or the total; `steps` per step (emergency, investigate, summary, ...)."""

    name: str
    steps: dict[str, StepCounts]


class Compliance(BaseModel):
    """Awaab's Law steps due in the period: per patch, per responsible officer, in total."""

    by_patch: list[ComplianceRow]
    by_officer: list[ComplianceRow]
    total: ComplianceRow


class WorksWindow(BaseModel):
    """Four weeks of a home's readings."""

    hours_above_70: int = Field(description="hours with RH above 70 % in any room")
    hours_above_80: int = Field(description="hours with RH above 80 % in any room")
    peak_mould_index: float = Field(description="highest VTT mould index on the estimated wall surface")
    coverage: float = Field(description="share of the hours with readings")
    complete: bool | None = Field(None, description="after window: the four weeks are over")


class WorksHome(BaseModel):
    """A home whose works were completed in the period: four weeks before against four weeks after."""

    case_id: int
    home_id: str
    address: str | None
    patch: str | None
    officer: str | None
    works_completed_at: UtcTime
    before: WorksWindow
    after: WorksWindow
    judged: bool = Field(description="both windows have readings in at least 70 % of their hours")
    improved: bool


class WorksSummary(BaseModel):
    """How many homes with works improved."""

    homes: int
    judged: int
    improved: int


class DampPart(BaseModel):
    """Damp and mould: Awaab's Law steps, and the effect of works."""

    compliance: Compliance
    works: list[WorksHome]
    works_summary: WorksSummary


class WhatIfCounts(BaseModel):
    """Route-nights under one policy, over the nights the data covers."""

    treated: int = Field(description="route-nights the policy would have treated")
    missed: int = Field(description="nights of ice risk it would have left untreated")
    needless: int = Field(description="treatments on nights with no ice risk")
    salt_t: float = Field(description="treatments x the policy's precautionary rate x route length x treated width")


class WhatIfRow(BaseModel):
    """One route, or every route together, under both policies."""

    route_nights: int
    covered: int = Field(description="route-nights with a nowcast projection at an evening hour and readings")
    not_covered: int = Field(description="route-nights counted for neither policy: no projection or no readings")
    ice_nights: int = Field(description="covered nights with road surface temperature at or below 0 °C")
    in_force: WhatIfCounts
    other: WhatIfCounts
    treatments_saved: int = Field(description="treated in force - treated under the other policy")
    misses_added: int = Field(description="missed under the other policy - missed in force")
    salt_saved_t: float | None = Field(description="None when a treated route has no length")


class WhatIfRoute(WhatIfRow):
    """One route."""

    route_id: str
    route_name: str
    length_km: float | None


class WhatIfSide(BaseModel):
    """What the what-if uses of a policy."""

    trigger_c: float
    trigger_inclusive: bool
    rate_g_m2: float = Field(description="the warmest row of its spread matrix, dry or damp road, all passes")


class WhatIf(BaseModel):
    """The same period under another policy (core.gritting.whatif); not computed until asked for."""

    status: Literal["not_computed", "computed"]
    text: str
    policy: str | None = None
    treatments_saved: int | None = None
    misses_added: int | None = None
    salt_saved_t: float | None = None
    tz: str | None = None
    issue_hours: list[int] | None = Field(default=None, description="local hours the nowcast was replayed at")
    horizon_hours: int | None = Field(default=None, description="hours ahead each projected minimum covers")
    nights: int | None = None
    in_force: WhatIfSide | None = None
    other: WhatIfSide | None = None
    treated_width_m: float | None = None
    routes: list[WhatIfRoute] | None = None
    total: WhatIfRow | None = None
    definition: str | None = None


class SeasonReport(BaseModel):
    """What worked over a period."""

    start: date
    end: date
    zone: str
    generated_at: UtcTime
    definitions: dict[str, str]
    roads: RoadsPart | None = Field(None, description="admin and highways")
    damp: DampPart | None = Field(None, description="admin, and an officer for their patch")
    what_if: WhatIf


WHAT_IF_NOT_COMPUTED = WhatIf(
    status="not_computed",
    text="Not computed: ask for the what-if with another trigger (what_if_trigger_c) or another policy file "
    "(POST /api/v1/reports/season/what-if).",
)
ROADS_ONLY = "the what-if is about the roads: it is for highways staff and admins"


def _period(start: date, end: date) -> None:
    if end < start:
        raise HTTPException(422, detail=f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    if (end - start).days + 1 > MAX_NIGHTS:
        raise HTTPException(422, detail=f"the period is longer than {MAX_NIGHTS} days: ask for a shorter one")


def build(
    conn: Any, user: Principal, *, start: date, end: date, zone: ZoneInfo, width_m: float, now: datetime
) -> SeasonReport:
    """The report as the API answers it."""
    out: dict[str, Any] = {
        "start": start,
        "end": end,
        "zone": zone.key,
        "generated_at": now,
        "definitions": season.DEFINITIONS,
        "roads": None,
        "damp": None,
        "what_if": WHAT_IF_NOT_COMPUTED,
    }
    if user.role in ("admin", "highways"):
        lo, hi = season.period_bounds(start, end, zone)
        routes = store.routes(conn, user)
        stations = sorted({s for r in routes for s in r.stations})
        out["roads"] = season.roads_report(
            routes,
            store.station_hours(conn, stations, lo=lo, hi=hi),
            store.decisions(conn, user, lo=lo, hi=hi),
            store.runs(conn, user, lo=lo, hi=hi),
            start=start,
            end=end,
            zone=zone,
            width_m=width_m,
        )
    if user.role in ("admin", "officer"):
        lo, hi = season.day_bounds(start, end, zone)
        compliance = season.damp_compliance(store.cases_due(conn, user, lo=lo, hi=hi), lo=lo, hi=hi, now=now)
        works = []
        for w in store.works_completed(conn, user, lo=lo, hi=hi):
            first, n = season.works_hours(w.works_completed_at)
            rooms = store.room_hours(conn, w.home_id, first=first, hours=2 * n)
            effect = season.works_effect(rooms, works_at=w.works_completed_at, now=now, zone=zone)
            works.append(WorksHome.model_validate(asdict(w) | effect))
        out["damp"] = DampPart(
            compliance=Compliance.model_validate(compliance),
            works=works,
            works_summary=WorksSummary(
                homes=len(works),
                judged=sum(1 for w in works if w.judged),
                improved=sum(1 for w in works if w.improved),
            ),
        )
    return SeasonReport.model_validate(out)


@router.get(
    "/reports/season",
    summary="Season report: what worked over a period (roads, damp); CSV with format=csv or Accept: text/csv",
    response_model=SeasonReport,
    responses={200: {"content": {"text/csv": {}}}},
)
def season_report(
    request: Request,
    user: Reader,
    conn: Conn,
    settings: SettingsDep,
    start: Annotated[date, Query(description="the first night (roads) and day (damp), YYYY-MM-DD")],
    end: Annotated[date, Query(description="the last night and day, included")],
    format: Annotated[Literal["json", "csv"] | None, Query(description="csv: one table as CSV")] = None,
    table: Annotated[Table | None, Query(description="which table as CSV (default: routes, or patches)")] = None,
    what_if_trigger_c: Annotated[
        float | None,
        Query(
            ge=-10.0,
            le=10.0,
            description="compute the what-if: the policy in force with this trigger (°C road surface temperature)",
        ),
    ] = None,
) -> SeasonReport | Response:
    """The report for the caller's part: roads for admin and highways, damp for admin and officers."""
    _period(start, end)
    if what_if_trigger_c is not None and user.role not in ("admin", "highways"):
        raise HTTPException(403, detail=ROADS_ONLY)
    zone = ZoneInfo(settings.local_zone)
    report = build(conn, user, start=start, end=end, zone=zone, width_m=settings.treated_width_m, now=datetime.now(UTC))
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        return _csv(report, table)  # the tables: the what-if has none
    if what_if_trigger_c is not None:
        in_force = _policy_in_force(settings)
        other, _ = whatif_job.with_trigger(in_force, what_if_trigger_c)
        report.what_if = _what_if(conn, user, start, end, zone, settings, in_force, other, None)
    return report


def _policy_in_force(settings: Any) -> GrittingPolicy:
    try:
        return policy_in_force(settings)
    except ValueError as exc:
        raise HTTPException(500, detail=f"the policy in force cannot be read: {exc}") from None


def _what_if(
    conn: Any,
    user: Principal,
    start: date,
    end: date,
    zone: ZoneInfo,
    settings: Any,
    in_force: GrittingPolicy,
    other: GrittingPolicy,
    name: str | None,
) -> WhatIf:
    for d in (start, end):
        if not FIRST_DATE <= d <= LAST_DATE:
            raise HTTPException(
                422, detail=f"{d.isoformat()} is out of range: give dates from {FIRST_DATE.year} to {LAST_DATE.year}"
            )
    try:
        return WhatIf.model_validate(whatif_job.compute(
            conn, user, start=start, end=end, zone=zone, in_force=in_force, other=other, other_name=name,
            width_m=settings.treated_width_m,
        ))  # fmt: skip
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None


@router.post(
    "/reports/season/what-if",
    summary="The season report's what-if: the same nights under another gritting policy (JSON, as the policy "
    "file holds it)",
    response_model=WhatIf,
)
def season_what_if(
    user: Annotated[Principal, Depends(require("admin", "highways"))],
    conn: Conn,
    settings: SettingsDep,
    start: Annotated[date, Query(description="the first night, YYYY-MM-DD")],
    end: Annotated[date, Query(description="the last night, included")],
    policy: Annotated[dict[str, Any], Body(description="GrittingPolicy fields, as the gritting policy file")],
    tz: Annotated[str | None, Query(description="IANA time zone of the nights (default: the council's)")] = None,
) -> WhatIf:
    """Treatments saved, misses added and salt under `policy` against the policy in force, per route and in total."""
    _period(start, end)
    zone_name = (tz or "").strip() or settings.local_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise HTTPException(
            422, detail=f"unknown time zone {zone_name!r}: give an IANA zone such as Europe/London"
        ) from None
    try:
        other, name = whatif_job.from_values(policy, "the uploaded policy")
    except ValueError as exc:
        raise HTTPException(422, detail=f"the policy cannot be read: {exc}") from None
    in_force = _policy_in_force(settings)
    return _what_if(conn, user, start, end, zone, settings, in_force, other, name)


# -- CSV ----------------------------------------------------------------------------------------------------

_ROAD_FIELDS = [f for f in RoadCounts.model_fields if f != "response"]
_STEP_FIELDS = list(StepCounts.model_fields)


def _responses(r: Responses) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for what in ("acknowledged", "started", "completed"):
        t: ResponseTimes = getattr(r, what)
        out[f"to_{what}_n"] = t.n
        out[f"to_{what}_median_min"] = t.median_min
        out[f"to_{what}_p90_min"] = t.p90_min
    return out


def _rows(report: SeasonReport, table: Table) -> list[dict[str, Any]]:
    roads, damp = report.roads, report.damp
    if table in ("routes", "nights") and roads is None:
        raise HTTPException(403, detail="the roads part of the report is for highways staff and admins")
    if table in ("patches", "officers", "homes") and damp is None:
        raise HTTPException(403, detail="the damp part of the report is for housing officers and admins")
    if table == "routes":
        assert roads is not None
        rows = [
            {"route_id": r.route_id, "route_name": r.route_name, "length_km": r.length_km}
            | {f: getattr(r, f) for f in _ROAD_FIELDS}
            | _responses(r.response)
            for r in roads.routes
        ]
        t = roads.total
        rows.append(
            {"route_id": "", "route_name": "All routes", "length_km": None}
            | {f: getattr(t, f) for f in _ROAD_FIELDS}
            | _responses(t.response)
        )
        return rows
    if table == "nights":
        assert roads is not None
        return [n.model_dump() for n in roads.nights_detail]
    if table in ("patches", "officers"):
        assert damp is not None
        group = damp.compliance.by_patch if table == "patches" else damp.compliance.by_officer
        rows = []
        for g in [*group, damp.compliance.total]:
            row: dict[str, Any] = {"patch" if table == "patches" else "officer": g.name}
            row |= {f: getattr(g, f) for f in _STEP_FIELDS}
            for step, counts in g.steps.items():
                row |= {f"{step}_{f}": getattr(counts, f) for f in _STEP_FIELDS}
            rows.append(row)
        return rows
    assert damp is not None
    return [
        {
            "case_id": h.case_id,
            "home_id": h.home_id,
            "address": h.address,
            "patch": h.patch,
            "officer": h.officer,
            "works_completed_at": h.works_completed_at,
        }
        | {f"before_{k}": v for k, v in h.before.model_dump(exclude={"complete"}).items()}
        | {f"after_{k}": v for k, v in h.after.model_dump().items()}
        | {"judged": h.judged, "improved": h.improved}
        for h in damp.works
    ]


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, datetime):
        return utc_z(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _csv(report: SeasonReport, table: Table | None) -> Response:
    table = table or ("routes" if report.roads is not None else "patches")
    rows = _rows(report, table)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    name = f"season-{table}-{report.start.isoformat()}-{report.end.isoformat()}.csv"
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
