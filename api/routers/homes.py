"""Homes: the officer's work list (most at risk first) and one home with its sensors, damp and mould level,
why, advice for the tenant and what the landlord is doing about it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import Conn, SettingsDep
from api.routers.council import Contact, contact
from api.routers.damp import CaseSummary, HomeCase, HomeReader, text_param
from core.cases import case_summary, next_visit, tenant_deadline
from core.damp import NOT_ASSESSED, Assessment, DampLevel, Level, tenant_advice
from core.devices import DeviceStatus, device_status
from core.timeparse import utc_z_or_none
from store import damp as damp_store

router = APIRouter(prefix="/homes", tags=["damp"])
# A home's level: its damp level, or not_assessed when it was never evaluated.
ShownLevel = DampLevel | Literal["not_assessed"]


class HomeListItem(BaseModel):
    """A line of the officer's work list."""

    id: str
    address: str | None
    patch: str | None
    level: ShownLevel
    assessed_at: str | None
    worst_room: str | None
    reason: str | None = Field(description="the main reason for the level")
    case: CaseSummary | None


class SensorView(BaseModel):
    """A sensor of the home (or its outdoor feed), with whether it is heard from and its latest values."""

    id: str
    kind: str
    name: str | None
    room: str | None
    status: DeviceStatus
    last_seen: str | None
    latest: dict[str, Any] | None


class OutdoorView(BaseModel):
    """The device giving the home's outdoor temperature: a sensor's fields when it is known, only its id otherwise."""

    id: str
    kind: str | None = None
    name: str | None = None
    room: str | None = None
    status: DeviceStatus | None = None
    last_seen: str | None = None
    latest: dict[str, Any] | None = None
    how: Literal["configured", "nearest station"]
    distance_km: float | None


class Held(BaseModel):
    """The level held by hysteresis, and when the readings last supported it."""

    level: DampLevel
    since: str | None


class HomeEvidence(BaseModel):
    """What the level rests on: the stored assessment, its policy, window and inputs."""

    assessment_id: int | None
    figures_at: str | None
    policy_id: str | None
    window: dict[str, Any] | None
    inputs: dict[str, Any] | None


class HomeDamp(BaseModel):
    """The home's damp and mould level and why; a home never assessed has only its level and reason."""

    level: ShownLevel
    reasons: list[str]
    raw_level: DampLevel | None = None
    assessed_at: str | None = None
    worst_room: str | None = None
    coverage: float | None = None
    figures: dict[str, Any] | None = None
    findings: list[dict[str, Any]] | None = None
    notes: list[str] | None = None
    outdoor_source: str | None = None
    held: Held | None = None
    evidence: HomeEvidence | None = None


class HomeView(BaseModel):
    """A home, its sensors, its damp and mould level and why, advice for the tenant, its open case and whom to call."""

    id: str
    address: str | None
    patch: str | None
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None
    sensors: list[SensorView]
    outdoor: OutdoorView | None
    damp: HomeDamp
    advice: list[str]
    case: HomeCase | None
    contact: Contact


@router.get(
    "",
    response_model=list[HomeListItem],
    response_model_exclude_unset=True,
    summary="Homes the caller may see, most at risk first, then by the soonest case deadline",
)
def list_homes(
    user: HomeReader,
    conn: Conn,
    level: Annotated[str | None, Query(description="only homes at this level")] = None,
    patch: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[HomeListItem]:
    """The work list: level, worst room, the main reason, and the open case with its next step and days left."""
    if level is not None and level not in tuple(DampLevel):
        raise HTTPException(422, detail=f"level must be one of {', '.join(DampLevel)}")
    now = datetime.now(UTC)
    out: list[HomeListItem] = []
    for r in damp_store.list_homes(conn, user, level=level, patch=text_param(patch, "patch"), limit=limit):
        case = r.case
        item = {
            "id": r.id,
            "address": r.address,
            "patch": r.patch,
            "level": r.level or NOT_ASSESSED,
            "assessed_at": utc_z_or_none(r.assessed_at),
            "worst_room": r.worst_room,
            "reason": r.reasons[0] if r.reasons else None,
            "case": None if case is None else case_summary(case, now),
        }
        out.append(HomeListItem.model_validate(item))
    return out


def _assessment(row: damp_store.HomeDetail, level: Level) -> Assessment:
    """The stored assessment, enough of it for core.damp.tenant_advice."""
    ev = row.evidence or {}
    return Assessment(
        level=level,
        reasons=tuple(row.reasons or ()),
        figures=ev.get("figures", {}),
        worst_room=row.worst_room,
        coverage=float(row.coverage or 0.0),
        advice=tuple(ev.get("advice", ())),
        assessed_at=row.assessment_at,
    )


@router.get(
    "/{home_id:path}",
    response_model=HomeView,
    response_model_exclude_unset=True,
    summary="A home, its sensors, its damp and mould level and why, advice for the tenant",
)
def get_home(home_id: str, user: HomeReader, conn: Conn, settings: SettingsDep) -> HomeView:
    """One home the caller may see (a tenant: only their own; an officer: their patch), else 404."""
    row = None if "\x00" in home_id else damp_store.get_home(conn, user, home_id)
    if row is None:
        raise HTTPException(404, detail=f"no home {home_id!r}")
    now = datetime.now(UTC)
    sensors = []
    # The outdoor feed: the device the registry names, else the nearest road station the evaluator used.
    feed = ((row.evidence or {}).get("inputs") or {}).get("outdoor") or {}
    outdoor_id = row.outdoor or feed.get("device_id")
    outdoor: dict[str, Any] | None = {"id": outdoor_id} if outdoor_id else None
    for d in damp_store.home_devices(conn, home_id, outdoor_id):
        view = {
            "id": d.id,
            "kind": d.kind,
            "name": d.name,
            "room": d.room,
            "status": device_status(
                d.reported_status,
                d.last_seen,
                d.expected_interval_s,
                now,
                default_interval_s=settings.default_interval_seconds,
                stale_factor=settings.stale_after_factor,
            ),
            "last_seen": utc_z_or_none(d.last_seen),
            "latest": d.latest,
        }
        if d.outdoor:
            outdoor = view
        else:
            sensors.append(view)
    case = damp_store.open_case_for(conn, home_id)
    if row.level is None:
        damp: dict[str, Any] = {
            "level": NOT_ASSESSED,
            "reasons": ["Not assessed yet: the home's sensors have not been evaluated."],
        }
        advice: list[str] = []
    else:
        ev = row.evidence or {}
        damp = {
            "level": row.level,
            "raw_level": row.raw_level,
            "assessed_at": utc_z_or_none(row.assessed_at),
            "reasons": list(row.reasons or []),
            "worst_room": row.worst_room,
            "coverage": row.coverage,
            "figures": ev.get("figures"),
            "findings": ev.get("findings"),
            "notes": ev.get("notes"),
            "outdoor_source": ev.get("outdoor_source"),
            "held": None
            if row.hold_level is None
            else {"level": row.hold_level, "since": utc_z_or_none(row.hold_since)},
            "evidence": {
                "assessment_id": row.assessment_id,
                "figures_at": utc_z_or_none(row.assessment_at),
                "policy_id": row.policy_id,
                "window": ev.get("window"),
                "inputs": ev.get("inputs"),
            },
        }
        advice = tenant_advice(
            _assessment(row, row.level),
            None if case is None else case.status,
            deadline=None if case is None else tenant_deadline(case),
        )
    home = {
        "id": row.id,
        "address": row.address,
        "patch": row.patch,
        "geometry": row.geometry,
        "properties": row.properties,
        "sensors": sensors,
        "outdoor": None
        if outdoor is None
        else outdoor
        | {"how": "configured" if row.outdoor else "nearest station", "distance_km": feed.get("distance_km")},
        "damp": damp,
        "advice": advice,
        "case": None if case is None else case_summary(case, now) | {"next_visit": next_visit(case, now)},
        "contact": contact(settings).model_dump(),
    }
    return HomeView.model_validate(home)
