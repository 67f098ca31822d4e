"""Open data, no token needed: road temperatures, gritting status, and homes only as aggregates by area.

Outside /api/v1 on purpose: every /api/v1 endpoint needs a bearer token (the contract). Nothing here can
identify a home: no id, address or place, and an area with fewer than MIN_HOMES homes with data is withheld.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import Conn
from core.timeparse import utc_z, utc_z_or_none
from store import open_data as store

router = APIRouter(prefix="/open-data", tags=["open data"])

MIN_HOMES = 5  # an area with fewer homes with data is withheld: small numbers could point to a home
WINDOW = timedelta(days=7)
AREAS_MAX_AGE_S = 300.0  # the aggregate is recomputed when homes or levels change, else at most this often
HEADERS = {"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"}
GEOJSON = "application/geo+json"


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


def _point(geometry: dict[str, Any] | None) -> tuple[float | None, float | None]:
    if not geometry or geometry.get("type") != "Point":
        return None, None
    lon, lat = geometry["coordinates"][:2]
    return float(lon), float(lat)


def _json(body: Any, media_type: str = "application/json") -> JSONResponse:
    return JSONResponse(body, media_type=media_type, headers=HEADERS)


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (text starting = + - @ gets a leading quote)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(name: str, columns: list[str], rows: list[dict[str, Any]]) -> Response:
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


def _feature_collection(features: list[dict[str, Any]], generated_at: str) -> dict[str, Any]:
    return {"type": "FeatureCollection", "generated_at": generated_at, "features": features}


# -- roads ------------------------------------------------------------------------------------------


def _stations(conn: Any) -> list[dict[str, Any]]:
    out = []
    for r in store.road_stations(conn):
        lon, lat = _point(r["geometry"])
        out.append(
            {
                "id": r["id"],
                "name": r["name"],
                "lon": lon,
                "lat": lat,
                "road_surface_temperature": _round(r["road_surface_temperature"], 2),
                "road_surface_temperature_at": utc_z_or_none(r["road_surface_temperature_at"]),
                "surface_state": r["surface_state"],
                "surface_state_at": utc_z_or_none(r["surface_state_at"]),
                "air_temperature": _round(r["air_temperature"], 2),
                "air_temperature_at": utc_z_or_none(r["air_temperature_at"]),
                "routes": list(r["routes"]),
            }
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


@router.get("/roads.json", summary="Road stations with their latest road surface temperature (open data)")
def roads_json(conn: Conn) -> JSONResponse:
    """Each road station: id, name, lon/lat, latest road surface temperature (degC) and when, surface state,
    air temperature and the routes it represents."""
    return _json({"generated_at": utc_z(datetime.now(UTC)), "unit": "degC", "stations": _stations(conn)})


@router.get("/roads.csv", summary="Road stations with their latest road surface temperature, as CSV (open data)")
def roads_csv(conn: Conn) -> Response:
    """The same as roads.json, one row per station (routes separated by ';')."""
    rows = [s | {"routes": ";".join(s["routes"])} for s in _stations(conn)]
    return _csv("placewatch-roads.csv", ROAD_COLUMNS, rows)


@router.get("/roads.geojson", summary="Road stations as a GeoJSON FeatureCollection of Points (open data)")
def roads_geojson(conn: Conn) -> JSONResponse:
    """One Point feature per station with a place; the properties are those of roads.json."""
    features = [
        {
            "type": "Feature",
            "id": s["id"],
            "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
            "properties": {k: v for k, v in s.items() if k not in ("lon", "lat")},
        }
        for s in _stations(conn)
        if s["lon"] is not None
    ]
    return _json(_feature_collection(features, utc_z(datetime.now(UTC))), GEOJSON)


# -- gritting ---------------------------------------------------------------------------------------


def _routes(conn: Any) -> list[dict[str, Any]]:
    out = []
    for r in store.gritting_status(conn):
        decision = None
        if r["decision_id"] is not None:
            decision = {
                "id": r["decision_id"],
                "action": r["action"],
                "spread_rate_g_m2": r["spread_rate_g_m2"],
                "passes": r["passes"],
                "spread_type": r["spread_type"],
                "treat_now": r["treat_now"],
                "call_out_by": utc_z_or_none(r["call_out_by"]),
                "start_by": utc_z_or_none(r["start_by"]),
                "complete_by": utc_z_or_none(r["complete_by"]),
                "min_rst": _round(r["min_rst"], 2),
                "min_rst_at": utc_z_or_none(r["min_rst_at"]),
                "issued_at": utc_z_or_none(r["issued_at"]),
                "status": r["status"],
                "status_at": utc_z_or_none(r["status_at"]),
                "reasons": list(r["reasons"] or []),
            }
        out.append(
            {
                "id": r["id"],
                "name": r["name"],
                "priority": r["priority"],
                "stations": list(r["stations"]),
                "evaluated_at": utc_z_or_none(r["evaluated_at"]),
                "decision": decision,
                "geometry": r["geometry"],
            }
        )
    return out


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


@router.get("/gritting.json", summary="Each route's current gritting action, rate, times and status (open data)")
def gritting_json(conn: Conn) -> JSONResponse:
    """Routes, highest priority first, with the current decision (null before the first); no names of staff."""
    routes = [{k: v for k, v in r.items() if k != "geometry"} for r in _routes(conn)]
    return _json({"generated_at": utc_z(datetime.now(UTC)), "routes": routes})


@router.get("/gritting.csv", summary="Each route's current gritting action and status, as CSV (open data)")
def gritting_csv(conn: Conn) -> Response:
    """One row per route (stations separated by ';')."""
    rows = []
    for r in _routes(conn):
        d = r["decision"] or {}
        rows.append(
            {k: r[k] for k in ("id", "name", "priority", "evaluated_at")}
            | {k: d.get(k) for k in GRITTING_COLUMNS if k in d}
            | {"stations": ";".join(r["stations"])}
        )
    return _csv("placewatch-gritting.csv", GRITTING_COLUMNS, rows)


@router.get("/gritting.geojson", summary="Routes with their gritting status as GeoJSON LineStrings (open data)")
def gritting_geojson(conn: Conn) -> JSONResponse:
    """One feature per route with a geometry; properties as in gritting.json."""
    features = [
        {
            "type": "Feature",
            "id": r["id"],
            "geometry": r["geometry"],
            "properties": {k: v for k, v in r.items() if k != "geometry"},
        }
        for r in _routes(conn)
        if r["geometry"]
    ]
    return _json(_feature_collection(features, utc_z(datetime.now(UTC))), GEOJSON)


# -- homes, only by area ----------------------------------------------------------------------------


def _areas(request: Request, conn: Any) -> dict[str, Any]:
    """The aggregate, cached on the app: recomputed when homes or their levels change, or after AREAS_MAX_AGE_S."""
    version = store.areas_version(conn)
    cached = getattr(request.app.state, "open_data_areas", None)
    if cached is not None and cached[0] == version and time.monotonic() - cached[1] < AREAS_MAX_AGE_S:
        return dict(cached[2])
    now = datetime.now(UTC)
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - WINDOW
    rows, withheld = store.homes_by_area(conn, since=since, until=until, min_homes=MIN_HOMES)
    areas = []
    for r in rows:
        n = int(r["homes_with_data"])
        areas.append(
            {
                "area": r["patch"],
                "homes": int(r["homes"]),
                "homes_with_data": n,
                "share": {level: round(int(r[level]) / n, 3) for level in store.AREA_LEVELS},
                "mean_temperature": _round(r["mean_temperature"], 1),
                "mean_relative_humidity": _round(r["mean_relative_humidity"], 1),
            }
        )
    body = {
        "generated_at": utc_z_or_none(now),
        "window": {"start": utc_z_or_none(since), "end": utc_z_or_none(until)},
        "min_homes": MIN_HOMES,
        "withheld_areas": withheld,
        "levels": list(store.AREA_LEVELS),
        "units": {"mean_temperature": "degC", "mean_relative_humidity": "%"},
        "areas": areas,
    }
    request.app.state.open_data_areas = (version, time.monotonic(), body)
    return body


@router.get(
    "/homes-by-area.json",
    summary="Homes by housing patch: share at each damp and mould level, mean temperature and humidity (open data)",
)
def homes_by_area_json(request: Request, conn: Conn) -> JSONResponse:
    """Per patch with at least five homes with readings in the last 7 days: homes, the share at each level and
    the mean room temperature and humidity. Smaller patches are withheld and only counted."""
    return _json(_areas(request, conn))


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
    rows = [
        {k: v for k, v in a.items() if k != "share"}
        | {f"share_{level}": a["share"][level] for level in store.AREA_LEVELS}
        | {"window_start": body["window"]["start"], "window_end": body["window"]["end"]}
        for a in body["areas"]
    ]
    return _csv("placewatch-homes-by-area.csv", AREA_COLUMNS, rows)
