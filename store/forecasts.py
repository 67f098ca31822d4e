"""Forecasts fetched from providers, in PostgreSQL: where each route's stations stand, the hourly weather fetched for
them, the fitted road-minus-air offsets and the history they are fitted from, each provider's state, and what the
highways page and /metrics show about forecasts. The forecasts themselves are stored by store.gritting.load_forecasts,
as every forecast is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from core.gritting.road_from_air import HourlyWeather, OffsetCell, RoadOffsets
from core.model import Principal
from store.gritting import ROUTE_SCOPE
from store.rows import MappingRow, typed

POOLED = "*"


@dataclass(frozen=True, slots=True)
class StationPlace:
    """A road station that represents a route, where it stands."""

    route_id: str
    station_id: str
    lon: float
    lat: float


def route_station_places(conn: psycopg.Connection) -> list[StationPlace]:
    """Every (route, station) whose station has a Point in the registry, by route then station."""
    rows = conn.execute(
        """SELECT rs.route_id, d.id, (d.geometry->'coordinates'->>0)::float8, (d.geometry->'coordinates'->>1)::float8
           FROM route_stations rs JOIN devices d ON d.id = rs.device_id
           WHERE d.geometry->>'type' = 'Point' AND jsonb_array_length(d.geometry->'coordinates') >= 2
           ORDER BY rs.route_id, d.id"""
    ).fetchall()
    return [StationPlace(r[0], r[1], r[2], r[3]) for r in rows]


def record_hours(
    conn: psycopg.Connection,
    *,
    provider: str,
    fetched_at: datetime,
    hours: Iterable[tuple[str, HourlyWeather, float]],
) -> int:
    """Keep each station's hourly weather as last fetched (with the derived road temperature); returns rows."""
    rows = [
        {"sid": sid, "ts": w.ts.isoformat(), "air": w.air_temperature, "dew": w.dew_point, "cloud": w.cloud_cover,
         "wind": w.wind_speed, "rain": w.precipitation_mm, "snow": w.snow_mm, "kind": w.precipitation, "rst": rst}
        for sid, w, rst in hours
    ]  # fmt: skip
    if not rows:
        return 0
    with conn.transaction():
        cur = conn.execute(
            """INSERT INTO forecast_hours (station_id, valid_at, provider, fetched_at, air_temperature, dew_point,
                 cloud_cover, wind_speed, precipitation_mm, snow_mm, precipitation, road_surface_temperature)
               SELECT x.sid, x.ts::timestamptz, %s, %s, x.air, x.dew, x.cloud, x.wind, x.rain, x.snow, x.kind, x.rst
               FROM jsonb_to_recordset(%s::jsonb) AS x(sid text, ts text, air float8, dew float8, cloud float8,
                    wind float8, rain float8, snow float8, kind text, rst float8)
               WHERE EXISTS (SELECT 1 FROM devices d WHERE d.id = x.sid)
               ON CONFLICT (station_id, valid_at) DO UPDATE SET provider = excluded.provider,
                 fetched_at = excluded.fetched_at, air_temperature = excluded.air_temperature,
                 dew_point = excluded.dew_point, cloud_cover = excluded.cloud_cover, wind_speed = excluded.wind_speed,
                 precipitation_mm = excluded.precipitation_mm, snow_mm = excluded.snow_mm,
                 precipitation = excluded.precipitation,
                 road_surface_temperature = excluded.road_surface_temperature""",
            (
                provider,
                fetched_at,
                orjson.dumps(rows).decode(),
            ),
        )  # fmt: skip
        return cur.rowcount


# -- the road-minus-air fit ------------------------------------------------------------------------------


def offset_history(
    conn: psycopg.Connection, *, since: datetime, zone: str
) -> dict[str, list[tuple[int, float | None, float]]]:
    """Each station's hourly (local hour, forecast cloud cover % or None, mean road minus mean air) since `since`,
    from the hourly rollup of its air_temperature and road_surface_temperature and the cloud fetched for that hour."""
    rows = conn.execute(
        """SELECT a.device_id, extract(hour FROM ha.hour AT TIME ZONE %(zone)s)::int, fh.cloud_cover,
                  hr.total / hr.n - ha.total / ha.n
           FROM series a
           JOIN series r ON r.device_id = a.device_id AND r.metric = 'road_surface_temperature'
           JOIN readings_hourly ha ON ha.series_id = a.id AND ha.hour >= %(since)s AND ha.n > 0
           JOIN readings_hourly hr ON hr.series_id = r.id AND hr.hour = ha.hour AND hr.n > 0
           LEFT JOIN forecast_hours fh ON fh.station_id = a.device_id AND fh.valid_at = ha.hour
           WHERE a.metric = 'air_temperature'
             AND a.device_id IN (SELECT id FROM devices WHERE kind = 'road_station')""",
        {"since": since, "zone": zone},
    ).fetchall()
    out: dict[str, list[tuple[int, float | None, float]]] = {}
    for sid, hour, cloud, diff in rows:
        out.setdefault(sid, []).append((int(hour), cloud, float(diff)))
    return out


def save_offsets(conn: psycopg.Connection, *, fitted_at: datetime, fits: dict[str, RoadOffsets]) -> None:
    """Replace the fitted offsets (station ids, and POOLED for all stations together)."""
    with conn.transaction():
        conn.execute("DELETE FROM road_offsets")
        for sid, fit in fits.items():
            cells = [[h, c, cell.offset_c, cell.hours] for (h, c), cell in sorted(fit.cells.items())]
            conn.execute(
                "INSERT INTO road_offsets (station_id, fitted_at, hours, cells) VALUES (%s, %s, %s, %s)",
                (sid, fitted_at, fit.hours, Jsonb(cells)),
            )


def load_offsets(conn: psycopg.Connection) -> tuple[datetime | None, dict[str, RoadOffsets]]:
    """(when they were fitted, the offsets by station id and POOLED)."""
    fitted: datetime | None = None
    out: dict[str, RoadOffsets] = {}
    for sid, at, cells in conn.execute("SELECT station_id, fitted_at, cells FROM road_offsets"):
        fitted = at if fitted is None or at > fitted else fitted
        out[sid] = RoadOffsets({(int(h), str(c)): OffsetCell(float(v), int(n)) for h, c, v, n in cells})
    return fitted, out


# -- each provider's state ----------------------------------------------------------------------------------


def record_attempt(
    conn: psycopg.Connection,
    *,
    provider: str,
    at: datetime,
    ok: bool,
    error: str | None,
    stations: int,
    stations_failed: int,
    routes: int,
    issued_at: datetime | None,
) -> None:
    """Note one fetch: a success (some stations may still have failed: `error` says which) or a failure (why)."""
    with conn.transaction():
        conn.execute(
            """INSERT INTO forecast_provider_status AS s (provider, last_attempt_at, last_success_at, last_error,
                 last_error_at, consecutive_failures, attempts, failures, stations, stations_failed, routes,
                 last_issued_at)
               VALUES (%(p)s, %(at)s, CASE WHEN %(ok)s THEN %(at)s END, %(error)s,
                       CASE WHEN %(error)s::text IS NOT NULL THEN %(at)s END,
                       CASE WHEN %(ok)s THEN 0 ELSE 1 END, 1, CASE WHEN %(ok)s THEN 0 ELSE 1 END, %(stations)s,
                       %(failed)s, %(routes)s, %(issued)s)
               ON CONFLICT (provider) DO UPDATE SET last_attempt_at = %(at)s,
                 last_success_at = CASE WHEN %(ok)s THEN %(at)s ELSE s.last_success_at END,
                 last_error = %(error)s::text,
                 last_error_at = CASE WHEN %(error)s::text IS NULL THEN s.last_error_at ELSE %(at)s END,
                 consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE s.consecutive_failures + 1 END,
                 attempts = s.attempts + 1,
                 failures = s.failures + CASE WHEN %(ok)s THEN 0 ELSE 1 END,
                 stations = %(stations)s, stations_failed = %(failed)s,
                 routes = CASE WHEN %(ok)s THEN %(routes)s ELSE s.routes END,
                 last_issued_at = coalesce(%(issued)s, s.last_issued_at)""",
            {
                "p": provider,
                "at": at,
                "ok": ok,
                "error": error,
                "stations": stations,
                "failed": stations_failed,
                "routes": routes,
                "issued": issued_at,
            },
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderStatus(MappingRow):
    """A forecast provider's last fetch (forecast_provider_status; /metrics reads it as a mapping)."""

    provider: str
    last_attempt_at: datetime
    last_success_at: datetime | None
    last_error: str | None = field(
        metadata={"description": "why the last fetch failed, or which stations it could not serve"}
    )
    last_error_at: datetime | None
    consecutive_failures: int
    attempts: int
    failures: int
    stations: int
    stations_failed: int
    routes: int = field(metadata={"description": "routes the last good fetch gave a forecast"})
    last_issued_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteForecast(MappingRow):
    """A route's newest forecast, from a provider, a file or the API (or none)."""

    route_id: str
    name: str
    forecast_id: int | None
    issued_at: datetime | None
    source: str | None
    loaded_by: str | None
    min_rst: float | None
    min_rst_at: datetime | None
    precipitation: str | None


def provider_status(conn: psycopg.Connection) -> list[ProviderStatus]:
    """Every provider that has been tried, by name."""
    columns = ", ".join(f.name for f in fields(ProviderStatus))
    return (
        typed(conn, ProviderStatus)
        .execute(f"SELECT {columns} FROM forecast_provider_status ORDER BY provider")
        .fetchall()
    )


def route_forecasts(conn: psycopg.Connection, p: Principal) -> list[RouteForecast]:
    """Each route p may see with its newest forecast (or None): id, issued_at, source, loaded_by, min_rst(_at)."""
    return (
        typed(conn, RouteForecast)
        .execute(
            f"""SELECT r.id AS route_id, r.name, f.id AS forecast_id, f.issued_at, f.source, f.loaded_by, f.min_rst,
                       f.min_rst_at, f.precipitation
                FROM routes r
                LEFT JOIN LATERAL (
                  SELECT fr.forecast_id FROM gritting_forecast_routes fr WHERE fr.route_id = r.id
                  ORDER BY fr.issued_at DESC, fr.by_route DESC, fr.forecast_id DESC LIMIT 1) n ON true
                LEFT JOIN gritting_forecasts f ON f.id = n.forecast_id
                WHERE {ROUTE_SCOPE}
                ORDER BY r.priority, r.id""",
            {"role": p.role},
        )
        .fetchall()
    )


def forecast_figures(conn: psycopg.Connection, *, now: datetime, max_age_hours: float) -> dict[str, Any]:
    """For /metrics: providers' state and how many routes have no forecast young enough to be used."""
    if conn.execute("SELECT to_regclass('forecast_provider_status') IS NULL").fetchone() == (True,):
        return {"providers": [], "routes": 0, "routes_without": 0}
    providers = provider_status(conn)
    row = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE n.issued_at IS NULL OR n.issued_at < %s)
           FROM routes r LEFT JOIN LATERAL (SELECT max(fr.issued_at) AS issued_at FROM gritting_forecast_routes fr
                                           WHERE fr.route_id = r.id) n ON true""",
        (now - timedelta(hours=max_age_hours),),
    ).fetchone()
    assert row is not None
    return {"providers": providers, "routes": int(row[0]), "routes_without": int(row[1])}


__all__: Sequence[str] = (
    "POOLED",
    "ProviderStatus",
    "RouteForecast",
    "StationPlace",
    "forecast_figures",
    "load_offsets",
    "offset_history",
    "provider_status",
    "record_attempt",
    "record_hours",
    "route_forecasts",
    "route_station_places",
    "save_offsets",
)
