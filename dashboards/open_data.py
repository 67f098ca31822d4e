"""Open data, no token needed: road temperatures, gritting status, and homes only as aggregates by area.

Outside /api/v1 on purpose: every /api/v1 endpoint needs a bearer token (the contract). Nothing here can
identify a home: no id, address or place, and an area with fewer than MIN_HOMES homes with data is withheld.
Every JSON answer is a response model (times through core.timeparse.utc_z); the CSVs are made from the same models.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Conn
from api.row_models import RowModels, UtcTime
from core.timeparse import utc_z_or_none
from store import open_data as store

router = APIRouter(prefix="/open-data", tags=["open data"])

MIN_HOMES = 5  # an area with fewer homes with data is withheld: small numbers could point to a home
WINDOW = timedelta(days=7)
AREAS_MAX_AGE_S = 300.0  # the aggregate is recomputed when homes or levels change, else at most this often
HEADERS = {"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"}


class GeoJSONResponse(JSONResponse):
    """JSON as application/geo+json."""

    media_type = "application/geo+json"


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


def _point(geometry: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    if not geometry or geometry.get("type") != "Point":
        return None, None
    lon, lat = geometry["coordinates"][:2]
    return float(lon), float(lat)


def _public(response: Response) -> None:
    """Anyone may cache the open data for a minute, and read it from any page."""
    response.headers.update(HEADERS)


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (text starting = + - @ gets a leading quote)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(name: str, columns: list[str], rows: Iterable[Mapping[str, Any]]) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers=HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'},
    )


P = TypeVar("P", bound=BaseModel)


class Feature(BaseModel, Generic[P]):
    """A GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] = Field(description="GeoJSON geometry")
    properties: P


class FeatureCollection(BaseModel, Generic[P]):
    """A GeoJSON FeatureCollection, with when it was made."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    generated_at: UtcTime
    features: list[Feature[P]]


# -- roads ------------------------------------------------------------------------------------------


class StationProperties(BaseModel):
    """A road station's latest values (degC) and the routes it represents."""

    id: str
    name: str | None
    road_surface_temperature: float | None
    road_surface_temperature_at: UtcTime | None
    surface_state: str | None
    surface_state_at: UtcTime | None
    air_temperature: float | None
    air_temperature_at: UtcTime | None
    routes: list[str]


class Station(StationProperties):
    """A road station with its place."""

    lon: float | None
    lat: float | None


class Roads(BaseModel):
    """Every road station."""

    generated_at: UtcTime
    unit: Literal["degC"] = "degC"
    stations: list[Station]


def _stations(conn: Any) -> list[Station]:
    out = []
    for r in store.road_stations(conn):
        lon, lat = _point(r.geometry)
        out.append(
            Station(
                id=r.id,
                name=r.name,
                lon=lon,
                lat=lat,
                road_surface_temperature=_round(r.road_surface_temperature, 2),
                road_surface_temperature_at=r.road_surface_temperature_at,
                surface_state=r.surface_state,
                surface_state_at=r.surface_state_at,
                air_temperature=_round(r.air_temperature, 2),
                air_temperature_at=r.air_temperature_at,
                routes=r.routes,
            )
        )
    return out


ROAD_COLUMNS = [
    "id",
    "name",
    "lon",
    "lat",
    "road_surface_temperature",
    "road_surface_temperature_at",
    "surface_state",
    "air_temperature",
    "air_temperature_at",
    "routes",
]


@router.get(
    "/roads.json",
    response_model=Roads,
    summary="Road stations with their latest road surface temperature (open data)",
)
def roads_json(conn: Conn, response: Response) -> Roads:
    """Each road station: id, name, lon/lat, latest road surface temperature (degC) and when, surface state,
    air temperature and the routes it represents."""
    _public(response)
    return Roads(generated_at=datetime.now(UTC), stations=_stations(conn))


@router.get("/roads.csv", summary="Road stations with their latest road surface temperature, as CSV (open data)")
def roads_csv(conn: Conn) -> Response:
    """The same as roads.json, one row per station (routes separated by ';')."""
    rows = [s.model_dump(mode="json") | {"routes": ";".join(s.routes)} for s in _stations(conn)]
    return _csv("placewatch-roads.csv", ROAD_COLUMNS, rows)


@router.get(
    "/roads.geojson",
    response_model=FeatureCollection[StationProperties],
    response_class=GeoJSONResponse,
    summary="Road stations as a GeoJSON FeatureCollection of Points (open data)",
)
def roads_geojson(conn: Conn, response: Response) -> FeatureCollection[StationProperties]:
    """One Point feature per station with a place; the properties are those of roads.json."""
    _public(response)
    features = [
        Feature[StationProperties](
            id=s.id,
            geometry={"type": "Point", "coordinates": [s.lon, s.lat]},
            properties=StationProperties.model_validate(s.model_dump(exclude={"lon", "lat"})),
        )
        for s in _stations(conn)
        if s.lon is not None
    ]
    return FeatureCollection[StationProperties](generated_at=datetime.now(UTC), features=features)


# -- gritting ---------------------------------------------------------------------------------------


# The decision as the open data gives it is the store's row (the fields it may publish, no names of staff).
DecisionNow = RowModels({store.CurrentDecision: "DecisionNow"})[store.CurrentDecision]


class RouteNow(BaseModel):
    """A route with its current decision (null before the first)."""

    id: str
    name: str | None
    priority: int
    stations: list[str]
    evaluated_at: UtcTime | None
    decision: DecisionNow | None  # type: ignore[valid-type]


class Gritting(BaseModel):
    """Every route, highest priority first."""

    generated_at: UtcTime
    routes: list[RouteNow]


def _routes(conn: Any) -> list[tuple[RouteNow, dict[str, Any] | None]]:
    """Each route as the open data gives it, with its geometry."""
    return [(RouteNow.model_validate(r, from_attributes=True), r.geometry) for r in store.gritting_status(conn)]


GRITTING_COLUMNS = [
    "id",
    "name",
    "priority",
    "action",
    "status",
    "spread_rate_g_m2",
    "passes",
    "spread_type",
    "call_out_by",
    "start_by",
    "complete_by",
    "issued_at",
    "status_at",
    "evaluated_at",
    "stations",
]


@router.get(
    "/gritting.json",
    response_model=Gritting,
    summary="Each route's current gritting action, rate, times and status (open data)",
)
def gritting_json(conn: Conn, response: Response) -> Gritting:
    """Routes, highest priority first, with the current decision (null before the first); no names of staff."""
    _public(response)
    return Gritting(generated_at=datetime.now(UTC), routes=[r for r, _ in _routes(conn)])


@router.get("/gritting.csv", summary="Each route's current gritting action and status, as CSV (open data)")
def gritting_csv(conn: Conn) -> Response:
    """One row per route (stations separated by ';')."""
    rows = []
    for route, _ in _routes(conn):
        r = route.model_dump(mode="json")
        d = r["decision"] or {}
        rows.append(
            {k: d[k] for k in GRITTING_COLUMNS if k in d}
            | {k: r[k] for k in ("id", "name", "priority", "evaluated_at")}  # the route's: a row is a route
            | {"stations": ";".join(route.stations)}
        )
    return _csv("placewatch-gritting.csv", GRITTING_COLUMNS, rows)


@router.get(
    "/gritting.geojson",
    response_model=FeatureCollection[RouteNow],
    response_class=GeoJSONResponse,
    summary="Routes with their gritting status as GeoJSON LineStrings (open data)",
)
def gritting_geojson(conn: Conn, response: Response) -> FeatureCollection[RouteNow]:
    """One feature per route with a geometry; properties as in gritting.json."""
    _public(response)
    features = [
        Feature[RouteNow](id=route.id, geometry=geometry, properties=route)
        for route, geometry in _routes(conn)
        if geometry
    ]
    return FeatureCollection[RouteNow](generated_at=datetime.now(UTC), features=features)


# -- homes, only by area ----------------------------------------------------------------------------


class Window(BaseModel):
    """The hours the means are over: [start, end)."""

    start: UtcTime
    end: UtcTime


class AreaUnits(BaseModel):
    """The units of the means."""

    mean_temperature: Literal["degC"] = "degC"
    mean_relative_humidity: Literal["%"] = "%"


class AreaView(BaseModel):
    """A patch with at least MIN_HOMES homes with data: the share of those at each level, and their means."""

    area: str
    homes: int
    homes_with_data: int
    share: dict[str, float] = Field(description="level -> share of the homes with data, each of `levels`")
    mean_temperature: float | None
    mean_relative_humidity: float | None


class HomesByArea(BaseModel):
    """Homes by housing patch; patches with too few homes with data are withheld and only counted."""

    generated_at: UtcTime
    window: Window
    min_homes: int
    withheld_areas: int
    levels: list[str]
    units: AreaUnits = AreaUnits()
    areas: list[AreaView]


def _areas(request: Request, conn: Any) -> HomesByArea:
    """The aggregate, cached on the app: recomputed when homes or their levels change, or after AREAS_MAX_AGE_S."""
    version = store.areas_version(conn)
    cached = getattr(request.app.state, "open_data_areas", None)
    if cached is not None and cached[0] == version and time.monotonic() - cached[1] < AREAS_MAX_AGE_S:
        body: HomesByArea = cached[2]
        return body
    now = datetime.now(UTC)
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - WINDOW
    rows, withheld = store.homes_by_area(conn, since=since, until=until, min_homes=MIN_HOMES)
    areas = [
        AreaView(
            area=r.patch,
            homes=r.homes,
            homes_with_data=r.homes_with_data,
            share={level: round(r.count(level) / r.homes_with_data, 3) for level in store.AREA_LEVELS},
            mean_temperature=_round(r.mean_temperature, 1),
            mean_relative_humidity=_round(r.mean_relative_humidity, 1),
        )
        for r in rows
    ]
    body = HomesByArea(
        generated_at=now,
        window=Window(start=since, end=until),
        min_homes=MIN_HOMES,
        withheld_areas=withheld,
        levels=list(store.AREA_LEVELS),
        areas=areas,
    )
    request.app.state.open_data_areas = (version, time.monotonic(), body)
    return body


@router.get(
    "/homes-by-area.json",
    response_model=HomesByArea,
    summary="Homes by housing patch: share at each damp and mould level, mean temperature and humidity (open data)",
)
def homes_by_area_json(request: Request, conn: Conn, response: Response) -> HomesByArea:
    """Per patch with at least five homes with readings in the last 7 days: homes, the share at each level and
    the mean room temperature and humidity. Smaller patches are withheld and only counted."""
    _public(response)
    return _areas(request, conn)


AREA_COLUMNS = [
    "area",
    "homes",
    "homes_with_data",
    *[f"share_{level}" for level in store.AREA_LEVELS],
    "mean_temperature",
    "mean_relative_humidity",
    "window_start",
    "window_end",
]


@router.get("/homes-by-area.csv", summary="Homes by housing patch, as CSV (open data)")
def homes_by_area_csv(request: Request, conn: Conn) -> Response:
    """The same as homes-by-area.json, one row per published patch."""
    body = _areas(request, conn)
    window = {"window_start": utc_z_or_none(body.window.start), "window_end": utc_z_or_none(body.window.end)}
    rows = [
        a.model_dump(exclude={"share"}) | {f"share_{level}": a.share[level] for level in store.AREA_LEVELS} | window
        for a in body.areas
    ]
    return _csv("placewatch-homes-by-area.csv", AREA_COLUMNS, rows)
