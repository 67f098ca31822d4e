"""Reads for the open data: road stations with their latest values, each route's current gritting status,
and home readings and damp levels only as aggregates per patch, never a home's id, address or place.

Nothing here takes a Principal: everything it returns is public. Staff names (status_by, event actors and
notes) are never selected, and the per-patch aggregate is computed in SQL and withheld for any patch with
fewer than `min_homes` homes with data, so small areas never leave the database.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg

from store.rows import typed, typed_with

# Levels a home can be at for the open data: the judged levels plus the two "no level" states.
AREA_LEVELS = ("red", "watch", "advice", "green", "insufficient_data", "not_assessed")


@dataclass(frozen=True, slots=True)
class RoadStation:
    """A registered road station with its latest values and the routes it represents."""

    id: str
    name: str | None
    geometry: dict[str, Any] | None
    road_surface_temperature: float | None
    road_surface_temperature_at: datetime | None
    surface_state: str | None
    surface_state_at: datetime | None
    air_temperature: float | None
    air_temperature_at: datetime | None
    routes: list[str]


@dataclass(frozen=True, slots=True)
class CurrentDecision:
    """A route's current gritting decision: action, rate, times and status. Only what the open data may publish
    of store.gritting's decision: no names of staff (status_by, the history)."""

    id: int
    action: str
    spread_rate_g_m2: float | None
    passes: int
    spread_type: str
    call_out_by: datetime | None
    start_by: datetime | None
    complete_by: datetime | None
    treat_now: bool
    min_rst: float | None
    min_rst_at: datetime | None
    issued_at: datetime
    status: str
    status_at: datetime
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class RouteStatus:
    """A route, its stations, when it was last evaluated and its current decision (None before the first)."""

    id: str
    name: str | None
    priority: int
    geometry: dict[str, Any] | None
    stations: list[str]
    evaluated_at: datetime | None
    decision: CurrentDecision | None


@dataclass(frozen=True, slots=True)
class Area:
    """A patch: its homes, how many have readings in the window, how many of those are at each level (and not
    assessed), and their mean room temperature and humidity."""

    patch: str
    homes: int
    homes_with_data: int
    red: int
    watch: int
    advice: int
    green: int
    insufficient_data: int
    not_assessed: int
    mean_temperature: float | None
    mean_relative_humidity: float | None

    def count(self, level: str) -> int:
        """Homes with data at this level (one of AREA_LEVELS)."""
        return int(getattr(self, level))


_DECISION = ", ".join(f"d.{f.name} AS decision_{f.name}" for f in fields(CurrentDecision))


def road_stations(conn: psycopg.Connection) -> list[RoadStation]:
    """Registered road stations with their latest road surface temperature, surface state, air temperature and
    the routes they represent."""
    return list(
        typed(conn, RoadStation).execute(
            """SELECT d.id, d.name, d.geometry,
                      rst.last_value AS road_surface_temperature, rst.last_ts AS road_surface_temperature_at,
                      ss.last_label AS surface_state, ss.last_ts AS surface_state_at,
                      air.last_value AS air_temperature, air.last_ts AS air_temperature_at,
                      coalesce((SELECT array_agg(rs.route_id ORDER BY rs.route_id)
                                FROM route_stations rs WHERE rs.device_id = d.id), '{}') AS routes
               FROM devices d
               LEFT JOIN series_latest rst ON rst.device_id = d.id AND rst.metric = 'road_surface_temperature'
               LEFT JOIN series_latest ss ON ss.device_id = d.id AND ss.metric = 'surface_state'
               LEFT JOIN series_latest air ON air.device_id = d.id AND air.metric = 'air_temperature'
               WHERE d.kind = 'road_station' AND d.source = 'registry' AND d.home_id IS NULL
               ORDER BY d.id"""
        )
    )


def gritting_status(conn: psycopg.Connection) -> list[RouteStatus]:
    """Every route, highest priority first, with its current decision's action, rate, times and status
    (no names of staff: status_by and the history are left out)."""
    return list(
        typed_with(conn, RouteStatus, "decision", CurrentDecision, "decision_").execute(
            f"""SELECT r.id, r.name, r.priority, r.geometry,
                      coalesce((SELECT array_agg(rs.device_id ORDER BY rs.device_id)
                                FROM route_stations rs WHERE rs.route_id = r.id), '{{}}') AS stations,
                      st.evaluated_at, {_DECISION}
               FROM routes r
               LEFT JOIN gritting_route_state st ON st.route_id = r.id
               LEFT JOIN gritting_decisions d ON d.id = st.decision_id
               ORDER BY r.priority, r.id"""
        )
    )


_AREAS = """
WITH room_series AS (
    SELECT h.id AS home_id, h.patch, s.id AS series_id, s.metric
    FROM homes h
    JOIN devices d ON d.home_id = h.id AND d.id IS DISTINCT FROM h.outdoor
    JOIN series s ON s.device_id = d.id AND s.metric IN ('temperature', 'relative_humidity')
    WHERE h.patch IS NOT NULL
), home_means AS (
    SELECT r.home_id, r.patch,
           sum(x.total) FILTER (WHERE r.metric = 'temperature')
             / nullif(sum(x.n) FILTER (WHERE r.metric = 'temperature'), 0) AS temperature,
           sum(x.total) FILTER (WHERE r.metric = 'relative_humidity')
             / nullif(sum(x.n) FILTER (WHERE r.metric = 'relative_humidity'), 0) AS relative_humidity
    FROM room_series r
    JOIN readings_hourly x ON x.series_id = r.series_id AND x.hour >= %(since)s AND x.hour < %(until)s AND x.n > 0
    GROUP BY r.home_id, r.patch
), areas AS (
    SELECT p.patch, p.homes, count(m.home_id) AS homes_with_data,
           count(m.home_id) FILTER (WHERE s.level = 'red') AS red,
           count(m.home_id) FILTER (WHERE s.level = 'watch') AS watch,
           count(m.home_id) FILTER (WHERE s.level = 'advice') AS advice,
           count(m.home_id) FILTER (WHERE s.level = 'green') AS green,
           count(m.home_id) FILTER (WHERE s.level = 'insufficient_data') AS insufficient_data,
           count(m.home_id) FILTER (WHERE s.level IS NULL) AS not_assessed,
           avg(m.temperature) AS mean_temperature, avg(m.relative_humidity) AS mean_relative_humidity
    FROM (SELECT patch, count(*) AS homes FROM homes WHERE patch IS NOT NULL GROUP BY patch) p
    LEFT JOIN home_means m ON m.patch = p.patch
    LEFT JOIN damp_home_state s ON s.home_id = m.home_id
    GROUP BY p.patch, p.homes
)
"""


def homes_by_area(
    conn: psycopg.Connection, *, since: datetime, until: datetime, min_homes: int
) -> tuple[list[Area], int]:
    """Per patch with at least min_homes homes with readings in [since, until): the number of homes, how many
    are at each level, and the mean room temperature and humidity (each home weighs the same); and the number
    of patches withheld for having fewer."""
    if min_homes < 1:
        raise ValueError("min_homes must be at least 1")
    params = {"since": since, "until": until, "min": min_homes}
    published = _AREAS + "SELECT * FROM areas WHERE homes_with_data >= %(min)s ORDER BY patch"
    rows = list(typed(conn, Area).execute(published, params))
    withheld = conn.execute(_AREAS + "SELECT count(*) FROM areas WHERE homes_with_data < %(min)s", params).fetchone()
    return rows, int(withheld[0]) if withheld else 0


def areas_version(conn: psycopg.Connection) -> tuple[Any, ...]:
    """Something that changes when homes or their levels change: the key under which the aggregate is cached."""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM homes), (SELECT max(assessed_at) FROM damp_home_state),
                  (SELECT count(*) FROM damp_home_state)"""
    ).fetchone()
    return tuple(row) if row else ()
