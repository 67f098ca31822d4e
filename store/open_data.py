"""Reads for the open data: road stations with their latest values, each route's current gritting status,
and home readings and damp levels only as aggregates per patch, never a home's id, address or place.

Nothing here takes a Principal: everything it returns is public. Staff names (status_by, event actors and
notes) are never selected, and the per-patch aggregate is computed in SQL and withheld for any patch with
fewer than `min_homes` homes with data, so small areas never leave the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

# Levels a home can be at for the open data: the judged levels plus the two "no level" states.
AREA_LEVELS = ("red", "watch", "advice", "green", "insufficient_data", "not_assessed")


def road_stations(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Registered road stations with their latest road surface temperature, surface state, air temperature and
    the routes they represent."""
    return list(
        conn.cursor(row_factory=dict_row).execute(
            """SELECT d.id, d.name, d.geometry,
                      rst.last_value AS road_surface_temperature, rst.last_ts AS road_surface_temperature_at,
                      ss.last_label AS surface_state, ss.last_ts AS surface_state_at,
                      air.last_value AS air_temperature, air.last_ts AS air_temperature_at,
                      coalesce((SELECT array_agg(rs.route_id ORDER BY rs.route_id)
                                FROM route_stations rs WHERE rs.device_id = d.id), '{}') AS routes
               FROM devices d
               LEFT JOIN series rst ON rst.device_id = d.id AND rst.metric = 'road_surface_temperature'
               LEFT JOIN series ss ON ss.device_id = d.id AND ss.metric = 'surface_state'
               LEFT JOIN series air ON air.device_id = d.id AND air.metric = 'air_temperature'
               WHERE d.kind = 'road_station' AND d.source = 'registry' AND d.home_id IS NULL
               ORDER BY d.id"""
        )
    )


def gritting_status(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every route, highest priority first, with its current decision's action, rate, times and status
    (no names of staff: status_by and the history are left out)."""
    return list(
        conn.cursor(row_factory=dict_row).execute(
            """SELECT r.id, r.name, r.priority, r.geometry,
                      coalesce((SELECT array_agg(rs.device_id ORDER BY rs.device_id)
                                FROM route_stations rs WHERE rs.route_id = r.id), '{}') AS stations,
                      st.evaluated_at, d.id AS decision_id, d.action, d.spread_rate_g_m2, d.passes, d.spread_type,
                      d.call_out_by, d.start_by, d.complete_by, d.treat_now, d.min_rst, d.min_rst_at,
                      d.issued_at, d.status, d.status_at, d.reasons
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
) -> tuple[list[dict[str, Any]], int]:
    """Per patch with at least min_homes homes with readings in [since, until): the number of homes, how many
    are at each level, and the mean room temperature and humidity (each home weighs the same); and the number
    of patches withheld for having fewer."""
    if min_homes < 1:
        raise ValueError("min_homes must be at least 1")
    params = {"since": since, "until": until, "min": min_homes}
    cur = conn.cursor(row_factory=dict_row)
    rows = list(cur.execute(_AREAS + "SELECT * FROM areas WHERE homes_with_data >= %(min)s ORDER BY patch", params))
    withheld = cur.execute(
        _AREAS + "SELECT count(*) AS n FROM areas WHERE homes_with_data < %(min)s", params
    ).fetchone()
    return rows, int(withheld["n"]) if withheld else 0


def areas_version(conn: psycopg.Connection) -> tuple[Any, ...]:
    """Something that changes when homes or their levels change: the key under which the aggregate is cached."""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM homes), (SELECT max(assessed_at) FROM damp_home_state),
                  (SELECT count(*) FROM damp_home_state)"""
    ).fetchone()
    return tuple(row) if row else ()
