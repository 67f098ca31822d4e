"""Gritting for highways staff and admins: routes with their current decision, decisions with their history,
the duty officer's acknowledge / start / complete / cancel, road forecasts in, and a CAP 1.2 feed out.

Officers and tenants get 403 on every endpoint here (and the store's queries return nothing to them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from alerts import cap
from api.deps import Conn, require
from api.row_models import RowModels
from core.gritting import Forecast
from core.gritting.lifecycle import LifecycleConflict, figures_refusal
from core.gritting.vocab import CrewAction, DecisionStatus, GrittingAction
from core.model import Principal
from core.timeparse import parse_any
from store import gritting as store

router = APIRouter(tags=["gritting"])
Highways = Annotated[Principal, Depends(require("admin", "highways"))]

Precipitation = Literal["none", "rain", "sleet", "snow", "freezing_rain"]


# The answers are the store's rows (store.gritting), each said once there; these are their models, under the
# names the OpenAPI schema has always given them.
MODELS = RowModels(
    {
        store.DecisionRow: "DecisionOut",
        store.DecisionCard: "CurrentDecision",
        store.DecisionDetail: "DecisionDetail",
        store.RunRow: "RunOut",
        store.EventRow: "EventOut",
        store.RouteView: "RouteOut",
        store.LoadedForecast: "LoadedForecast",
    }
)
DecisionOut = MODELS[store.DecisionRow]
CurrentDecision = MODELS[store.DecisionCard]
DecisionDetail = MODELS[store.DecisionDetail]
RunOut = MODELS[store.RunRow]
EventOut = MODELS[store.EventRow]
RouteOut = MODELS[store.RouteView]
LoadedForecastOut = MODELS[store.LoadedForecast]


class ActionBody(BaseModel):
    """What the crews did: a note (recorded in the history with the user and the time), when it happened
    (default now), the reason for a treatment the decision did not ask for, and the run's figures (on start
    or complete; what is left out keeps what was given before)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    note: str | None = Field(None, max_length=2000)
    at: AwareDatetime | None = Field(None, description="when it happened (default: now; never in the future)")
    reason: str | None = Field(None, max_length=2000, description="why treat when the decision did not ask for it")
    spread_rate_g_m2: float | None = Field(None, gt=0, le=100, description="spread rate actually used, g/m²")
    tonnes: float | None = Field(None, ge=0, le=1000, description="salt used on the run, tonnes")
    vehicle: str | None = Field(None, max_length=200)
    crew: str | None = Field(None, max_length=500)


class TracePoint(BaseModel):
    """One point of a forecast road surface temperature curve."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ts: AwareDatetime
    rst: float = Field(ge=-60, le=80)


class ForecastItem(BaseModel):
    """A road forecast for some routes (`route_ids`) or every route of a forecast domain (`domain`,
    the routes' `properties.domain` in the registry)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    route_ids: list[str] | None = Field(None, min_length=1)
    domain: str | None = Field(None, min_length=1)
    issued_at: AwareDatetime | None = Field(None, description="defaults to the load's issued_at")
    min_rst: float | None = Field(None, ge=-60, le=80, description="forecast minimum RST, degC")
    min_rst_at: AwareDatetime | None = None
    precipitation: Precipitation = "none"
    precipitation_mm: float | None = Field(None, ge=0, description="snow: the amount (light snow is under 10 mm)")
    precipitation_start: AwareDatetime | None = None
    precipitation_end: AwareDatetime | None = None
    dew_point: float | None = Field(None, ge=-80, le=60, description="near the time of the minimum, degC")
    rst_trace: list[TracePoint] = Field(default_factory=list, description="forecast RST curve, when given")

    @model_validator(mode="after")
    def _one_target(self) -> ForecastItem:
        if (self.route_ids is None) == (self.domain is None):
            raise ValueError("give either route_ids or domain")
        return self


class ForecastLoad(BaseModel):
    """Road forecasts as a provider issues them (around 06:00, 12:00 and 18:00, covering 36 hours).

    Example: `{"issued_at": "2026-01-15T12:00:00Z", "source": "Met Office OpenRoad", "forecasts": [
    {"domain": "B", "min_rst": -3.2, "min_rst_at": "2026-01-16T04:00:00Z", "dew_point": -2.5},
    {"route_ids": ["P1", "P2"], "min_rst": -1.0, "min_rst_at": "2026-01-16T05:00:00Z",
     "precipitation": "snow", "precipitation_mm": 4, "precipitation_start": "2026-01-16T01:00:00Z"}]}`
    """

    model_config = ConfigDict(extra="forbid")
    issued_at: AwareDatetime
    source: str | None = Field(None, max_length=200)
    forecasts: list[ForecastItem] = Field(min_length=1, max_length=10_000)


class ForecastLoaded(BaseModel):
    """What a forecast load stored."""

    loaded: int
    forecasts: list[LoadedForecastOut]  # type: ignore[valid-type]
    routes: list[str]


def forecast_inputs(load: ForecastLoad) -> list[store.ForecastInput]:
    """The load as store inputs, each checked by core's Forecast; ValueError names the bad item."""
    out = []
    for i, item in enumerate(load.forecasts):
        issued = (item.issued_at or load.issued_at).astimezone(UTC)
        trace = tuple((p.ts.astimezone(UTC), p.rst) for p in item.rst_trace)
        try:
            forecast = Forecast(
                issued_at=issued,
                min_rst=item.min_rst,
                min_rst_at=item.min_rst_at,
                precipitation=item.precipitation,
                precipitation_mm=item.precipitation_mm,
                precipitation_start=item.precipitation_start,
                precipitation_end=item.precipitation_end,
                dew_point=item.dew_point,
                rst_trace=trace,
            )
        except ValueError as exc:
            raise ValueError(f"forecasts[{i}]: {exc}") from None
        out.append(
            store.ForecastInput(
                forecast=forecast, route_ids=tuple(item.route_ids or ()), domain=item.domain, source=load.source
            )
        )
    return out


# -- routes -----------------------------------------------------------------------------------------


@router.get("/routes", summary="Routes with their current gritting decision", response_model=list[RouteOut])
def list_routes(user: Highways, conn: Conn) -> list[store.RouteView]:
    """Every route, highest priority first, each with its current decision (null before the first)."""
    return store.list_routes(conn, user)


@router.get("/routes/{route_id:path}", summary="One route with its current gritting decision", response_model=RouteOut)
def get_route(route_id: str, user: Highways, conn: Conn) -> store.RouteView:
    """One route, else 404."""
    rows = store.list_routes(conn, user, route_id=route_id)
    if not rows:
        raise HTTPException(404, detail=f"no route {route_id!r}")
    return rows[0]


# -- decisions --------------------------------------------------------------------------------------


def _names(values: list[str] | None, allowed: type[StrEnum], what: str) -> list[str] | None:
    if not values:
        return None
    names = [v.strip() for value in values for v in value.split(",") if v.strip()]
    known = {a.value for a in allowed}
    bad = [n for n in names if n not in known]
    if bad:
        raise HTTPException(422, detail=f"unknown {what} {', '.join(bad)}; one of {', '.join(allowed)}")
    return names or None


@router.get(
    "/gritting/decisions",
    summary="Gritting decisions, newest first (filters: route_id, status, action, since)",
    response_model=list[DecisionOut],
)
def list_decisions(
    user: Highways,
    conn: Conn,
    route_id: str | None = None,
    status: Annotated[list[str] | None, Query(description="e.g. issued,escalated (repeat or comma-separate)")] = None,
    action: Annotated[list[str] | None, Query(description="e.g. precautionary_salt,salt")] = None,
    since: Annotated[str | None, Query(description="issued at or after (RFC 3339 or epoch ms)")] = None,
    before_id: Annotated[int | None, Query(description="page on: decisions with a smaller id")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[store.DecisionRow]:
    """Decisions the caller may see."""
    since_ts = None
    if since:
        try:
            since_ts = parse_any(int(since) if since.isdigit() else since)
        except ValueError as exc:
            raise HTTPException(422, detail=f"since: {exc}") from None
    return store.list_decisions(
        conn,
        user,
        route_id=route_id,
        statuses=_names(status, DecisionStatus, "status"),
        actions=_names(action, GrittingAction, "action"),
        since=since_ts,
        before_id=before_id,
        limit=limit,
    )


@router.get("/gritting/decisions/{decision_id}", summary="One decision with its history", response_model=DecisionDetail)
def get_decision(decision_id: int, user: Highways, conn: Conn) -> store.DecisionDetail:
    """One decision with its history and evidence, else 404."""
    row = store.get_decision(conn, user, decision_id)
    if row is None:
        raise HTTPException(404, detail=f"no gritting decision {decision_id}")
    return row


_FIGURES = ("spread_rate_g_m2", "tonnes", "vehicle", "crew")
_FUTURE_SLACK = timedelta(minutes=2)


def _act(
    decision_id: int, action: CrewAction, user: Principal, conn: Any, body: ActionBody | None
) -> store.DecisionDetail:
    body = body or ActionBody()
    now = datetime.now(UTC)
    at = body.at.astimezone(UTC) if body.at is not None else now
    if at > now + _FUTURE_SLACK:
        raise HTTPException(422, detail="at: that time is still to come; record what the crews did once done")
    refusal = figures_refusal(action, figures_given=any(getattr(body, f) is not None for f in _FIGURES))
    if refusal is not None:
        raise HTTPException(422, detail=refusal)
    figures = store.RunFigures(
        body.spread_rate_g_m2, body.tonnes, (body.vehicle or "").strip() or None, (body.crew or "").strip() or None
    )
    try:
        row = store.act(
            conn, user, decision_id=decision_id, action=action, at=min(at, now), now=now, note=body.note,
            reason=body.reason, figures=figures,
        )  # fmt: skip
    except LifecycleConflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    if row is None:
        raise HTTPException(404, detail=f"no gritting decision {decision_id}")
    return row


# What people record: one path each, one handler shape, recorded with who, when and the note.
ACTIONS: dict[str, tuple[CrewAction, str]] = {
    "acknowledge": (
        CrewAction.ACKNOWLEDGE,
        "The duty officer has seen the decision (issued or escalated -> acknowledged)",
    ),
    "start": (
        CrewAction.START,
        "A treatment run has started (a second run after a completed one; on a None or Monitor decision, at the "
        "officer's discretion with a reason) -> in_progress",
    ),
    "complete": (
        CrewAction.COMPLETE,
        "The run out is complete, with its spread rate, tonnes, vehicle and crew -> completed",
    ),
    "cancel-run": (
        CrewAction.CANCEL_RUN,
        "The run out was called back (-> completed if an earlier run was, else acknowledged)",
    ),
    "run-figures": (
        CrewAction.AMEND,
        "Correct the figures of the latest completed run (tonnes weighed at the depot, say); recorded as a note",
    ),
    "cancel": (
        CrewAction.CANCEL,
        "Cancel the decision (any active status -> cancelled; a run out is cancelled with it)",
    ),
    "note": (CrewAction.NOTE, "Add a note to the decision's history"),
}


def _action_handler(action: CrewAction) -> Any:
    def handler(decision_id: int, user: Highways, conn: Conn, body: ActionBody | None = None) -> store.DecisionDetail:
        return _act(decision_id, action, user, conn, body)

    handler.__name__ = action.value
    handler.__doc__ = f"{action.replace('_', ' ').capitalize()}: recorded with who, when and the note."
    return handler


for _path, (_action, _summary) in ACTIONS.items():
    router.post(
        f"/gritting/decisions/{{decision_id}}/{_path}",
        summary=_summary,
        response_model=DecisionDetail,
        responses={409: {"description": "the decision or its runs do not allow it now; the detail says why"}},
    )(_action_handler(_action))


# -- forecasts in -----------------------------------------------------------------------------------


@router.put(
    "/gritting/forecast",
    summary="Load road forecasts for routes or whole forecast domains (they lead over station nowcasts)",
    response_model=ForecastLoaded,
)
def put_forecast(load: ForecastLoad, user: Highways, conn: Conn) -> dict[str, Any]:
    """Store the forecasts (all or nothing) and have the affected routes re-evaluated."""
    try:
        inputs = forecast_inputs(load)
        stored = store.load_forecasts(conn, inputs, loaded_by=user.name)
    except store.UnknownRoutes as exc:
        raise HTTPException(422, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    routes = sorted({r for f in stored for r in f.routes})
    return {"loaded": len(stored), "forecasts": stored, "routes": routes}


# -- CAP out ----------------------------------------------------------------------------------------


def _sender(request: Request) -> str:
    return f"placewatch@{request.url.hostname or 'localhost'}"


@router.get(
    "/gritting/cap.xml",
    summary="CAP 1.2 alerts of the active gritting decisions, as an Atom feed",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def cap_feed(request: Request, user: Highways, conn: Conn) -> Response:
    """One entry per route whose current decision is active (or recently cancelled or cleared)."""
    now = datetime.now(UTC)
    sender = _sender(request)
    body = cap.feed_xml(store.cap_decisions(conn, user), sender=sender, now=now, feed_id=f"{sender},gritting-decisions")
    return Response(body, media_type="application/xml")


@router.get(
    "/gritting/decisions/{decision_id}/cap.xml",
    summary="One decision as a CAP 1.2 alert",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {}}}},
)
def cap_alert(decision_id: int, request: Request, user: Highways, conn: Conn) -> Response:
    """The decision's CAP alert (msgType Alert, Update or Cancel), else 404."""
    rows = store.cap_decisions(conn, user, decision_id=decision_id)
    if not rows:
        raise HTTPException(404, detail=f"no gritting decision {decision_id}")
    body = cap.alert_xml(rows[0], sender=_sender(request), now=datetime.now(UTC))
    return Response(body, media_type="application/cap+xml")
