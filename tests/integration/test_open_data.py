"""The open data keeps its public shape (docs/CONTRACT.md, Open data): the keys of roads, gritting and
homes-by-area as JSON and GeoJSON, the CSV columns, times in UTC with a Z, the cache and CORS headers, and no
names of staff. Against the real API and PostgreSQL, with a station, a route and its current decision, and a patch
of five homes with readings."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.model import Reading
from store.db import connect
from tests.e2e.world import forget_readings, write
from tests.helpers import home, load, route, sensor, station

STATION_KEYS = [
    "id",
    "name",
    "road_surface_temperature",
    "road_surface_temperature_at",
    "surface_state",
    "surface_state_at",
    "air_temperature",
    "air_temperature_at",
    "routes",
]
ROAD_COLUMNS = (
    "id,name,lon,lat,road_surface_temperature,road_surface_temperature_at,surface_state,air_temperature,"
    "air_temperature_at,routes"
)
ROUTE_KEYS = {"id", "name", "priority", "stations", "evaluated_at", "decision"}
DECISION_KEYS = {
    "id", "action", "spread_rate_g_m2", "passes", "spread_type", "treat_now", "call_out_by", "start_by",
    "complete_by", "min_rst", "min_rst_at", "issued_at", "status", "status_at", "reasons",
}  # fmt: skip
GRITTING_COLUMNS = (
    "id,name,priority,action,status,spread_rate_g_m2,passes,spread_type,call_out_by,start_by,complete_by,"
    "issued_at,status_at,evaluated_at,stations"
)
LEVELS = ["red", "watch", "advice", "green", "insufficient_data", "not_assessed"]
AREA_COLUMNS = (
    "area,homes,homes_with_data,"
    + ",".join(f"share_{level}" for level in LEVELS)
    + ",mean_temperature,mean_relative_humidity,window_start,window_end"
)


def _z(text: str | None) -> bool:
    """A time as every response writes it: RFC 3339, UTC, Z."""
    return text is not None and text.endswith("Z") and datetime.fromisoformat(text).utcoffset() == timedelta(0)


def _csv(r: httpx.Response) -> tuple[str, list[dict[str, str]]]:
    header = r.text.split("\n", 1)[0]
    return header, list(csv.DictReader(io.StringIO(r.text)))


@pytest.fixture(scope="module")
def town(database_url: str) -> Any:
    uid = uuid.uuid4().hex[:6]
    st, rid, patch = f"od-st-{uid}", f"od-r-{uid}", f"od-patch-{uid}"
    homes = [f"od-{uid}-{i}" for i in range(5)]
    rooms = [f"{h}/bedroom" for h in homes]
    load(
        database_url,
        station(st, lon=-1.71, lat=52.61),
        route(rid, [st]),
        *[home(h, patch) for h in homes],
        *[sensor(d, h) for d, h in zip(rooms, homes, strict=True)],
    )
    now = datetime.now(UTC).replace(microsecond=0)
    readings = [Reading(st, "road_surface_temperature", now - timedelta(minutes=m), 0.4 + m / 100) for m in (20, 10)]
    readings += [Reading(st, "air_temperature", now - timedelta(minutes=10), 1.5)]
    readings += [Reading(st, "surface_state", now - timedelta(minutes=10), None, "wet")]
    for i, dev in enumerate(rooms):
        for hours in range(1, 25):
            t = now - timedelta(hours=hours)
            readings += [Reading(dev, "temperature", t, 18.0 + i), Reading(dev, "relative_humidity", t, 60.0 + i)]
    write(database_url, readings)
    issued = now - timedelta(hours=1)
    with connect(database_url) as conn:  # the route's current decision, as alerts.gritting leaves it
        (did,) = conn.execute(
            """INSERT INTO gritting_decisions (route_id, action, rule, spread_rate_g_m2, passes, spread_type,
                   call_out_by, start_by, complete_by, treat_now, min_rst, min_rst_at, reasons, message, confidence,
                   material_key, evidence, issued_at, status, status_at, status_by)
               VALUES (%s, 'precautionary_salt', 'test', 10.0, 1, 'dry', %s, %s, %s, false, -0.5, %s,
                       '["Road below zero by 03:00"]', 'Salt', 0.8, '{}', '{}', %s, 'acknowledged', %s,
                       'duty officer Jo Bloggs') RETURNING id""",
            (rid, issued + timedelta(hours=2), issued + timedelta(hours=3), issued + timedelta(hours=5),
             issued + timedelta(hours=6), issued, issued + timedelta(minutes=5)),
        ).fetchone()  # fmt: skip
        conn.execute(
            "INSERT INTO gritting_route_state (route_id, decision_id, evaluated_at) VALUES (%s, %s, %s)",
            (rid, did, now),
        )
        conn.commit()
    yield {"station": st, "route": rid, "patch": patch, "decision": did}
    forget_readings(database_url, [st, *rooms])


def test_roads_keep_their_keys_columns_and_z_times(api_url: str, town: Any) -> None:
    body = httpx.get(api_url + "/open-data/roads.json")
    assert body.status_code == 200
    assert body.headers["cache-control"] == "public, max-age=60" and body.headers["access-control-allow-origin"] == "*"
    roads = body.json()
    assert set(roads) == {"generated_at", "unit", "stations"} and roads["unit"] == "degC" and _z(roads["generated_at"])
    (s,) = [s for s in roads["stations"] if s["id"] == town["station"]]
    assert set(s) == {*STATION_KEYS, "lon", "lat"}
    assert (s["lon"], s["lat"], s["road_surface_temperature"], s["surface_state"], s["air_temperature"]) == (
        -1.71, 52.61, 0.5, "wet", 1.5,
    )  # fmt: skip
    assert s["routes"] == [town["route"]]
    assert all(_z(s[k]) for k in ("road_surface_temperature_at", "surface_state_at", "air_temperature_at"))

    geo = httpx.get(api_url + "/open-data/roads.geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")
    assert geo.headers["cache-control"] == "public, max-age=60"
    fc = geo.json()
    assert set(fc) == {"type", "generated_at", "features"} and fc["type"] == "FeatureCollection"
    (f,) = [f for f in fc["features"] if f["id"] == town["station"]]
    assert f == {
        "type": "Feature",
        "id": town["station"],
        "geometry": {"type": "Point", "coordinates": [-1.71, 52.61]},
        "properties": {k: s[k] for k in STATION_KEYS},
    }

    table = httpx.get(api_url + "/open-data/roads.csv")
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    assert table.headers["content-disposition"] == 'attachment; filename="placewatch-roads.csv"'
    header, rows = _csv(table)
    assert header == ROAD_COLUMNS
    (row,) = [r for r in rows if r["id"] == town["station"]]
    assert row["routes"] == town["route"] and row["road_surface_temperature_at"] == s["road_surface_temperature_at"]
    assert row["lon"] == "-1.71" and row["road_surface_temperature"] == "0.5"


def test_gritting_keeps_its_keys_columns_and_z_times_and_names_no_staff(api_url: str, town: Any) -> None:
    body = httpx.get(api_url + "/open-data/gritting.json")
    assert "Jo Bloggs" not in body.text and "status_by" not in body.text
    grit = body.json()
    assert set(grit) == {"generated_at", "routes"} and _z(grit["generated_at"])
    (r,) = [r for r in grit["routes"] if r["id"] == town["route"]]
    assert set(r) == ROUTE_KEYS and set(r["decision"]) == DECISION_KEYS
    d = r["decision"]
    assert (d["id"], d["action"], d["status"], d["spread_rate_g_m2"], d["passes"], d["min_rst"]) == (
        town["decision"], "precautionary_salt", "acknowledged", 10.0, 1, -0.5,
    )  # fmt: skip
    assert d["reasons"] == ["Road below zero by 03:00"] and d["treat_now"] is False
    times = ("call_out_by", "start_by", "complete_by", "min_rst_at", "issued_at", "status_at")
    assert all(_z(d[k]) for k in times) and _z(r["evaluated_at"])
    assert r["stations"] == [town["station"]] and r["priority"] == 1
    without = [x for x in grit["routes"] if x["decision"] is None]
    assert all(set(x) == ROUTE_KEYS for x in without)

    fc = httpx.get(api_url + "/open-data/gritting.geojson")
    assert fc.headers["content-type"].startswith("application/geo+json")
    (f,) = [f for f in fc.json()["features"] if f["id"] == town["route"]]
    assert set(f) == {"type", "id", "geometry", "properties"} and f["geometry"]["type"] == "LineString"
    assert f["properties"] == r

    header, rows = _csv(httpx.get(api_url + "/open-data/gritting.csv"))
    assert header == GRITTING_COLUMNS
    # A row is a route: its id is the route's, not its decision's (it was the decision's until December 2026).
    (row,) = [x for x in rows if x["id"] == town["route"]]
    assert row["name"] == r["name"]
    assert row["action"] == "precautionary_salt" and row["issued_at"] == d["issued_at"]
    assert row["stations"] == town["station"] and row["evaluated_at"] == r["evaluated_at"]


def test_homes_by_area_keep_their_keys_and_columns(api_url: str, town: Any) -> None:
    body = httpx.get(api_url + "/open-data/homes-by-area.json").json()
    assert set(body) == {"generated_at", "window", "min_homes", "withheld_areas", "levels", "units", "areas"}
    assert _z(body["generated_at"]) and _z(body["window"]["start"]) and _z(body["window"]["end"])
    assert body["levels"] == LEVELS and body["min_homes"] == 5
    assert body["units"] == {"mean_temperature": "degC", "mean_relative_humidity": "%"}
    (a,) = [a for a in body["areas"] if a["area"] == town["patch"]]
    assert a == {
        "area": town["patch"],
        "homes": 5,
        "homes_with_data": 5,
        "share": dict.fromkeys(LEVELS, 0.0) | {"not_assessed": 1.0},
        "mean_temperature": 20.0,
        "mean_relative_humidity": 62.0,
    }
    header, rows = _csv(httpx.get(api_url + "/open-data/homes-by-area.csv"))
    assert header == AREA_COLUMNS
    (row,) = [r for r in rows if r["area"] == town["patch"]]
    assert row["share_not_assessed"] == "1.0" and row["window_start"] == body["window"]["start"]
    assert json.loads(row["homes"]) == 5
