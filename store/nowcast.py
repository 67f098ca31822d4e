"""The learned nowcast in PostgreSQL: the pooled models fitted on the store's own nights, each station's learning,
and road stations' readings as the arrays core.gritting.learned works on.

station_series reads a winter of 10-minute readings of a hundred stations in one query that packs each series'
times and values into bytes, read by numpy: no Python object per reading. JSON has no NaN, so the parameters'
non-finite numbers are stored as null and read back as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import psycopg
from psycopg.types.json import Jsonb

from core.gritting import learned

METRICS = {"road_surface_temperature": "rst", "air_temperature": "air", "dew_point": "dew"}


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(_finite(value), dumps=lambda v: orjson.dumps(v).decode())


def _finite(value: Any) -> Any:
    """NaN and infinities as null, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _nan(value: Any) -> Any:
    """null inside lists back to NaN, at any depth (mappings' own null values stay None)."""
    if isinstance(value, list):
        return [math.nan if v is None else _nan(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan(v) for k, v in value.items()}
    return value


# -- pooled models ----------------------------------------------------------------------------------------------


def save_model(conn: psycopg.Connection, model: learned.NowcastModel) -> int:
    """Store a pooled model fitted on the store's own nights (it is in force from now); its id."""
    row = conn.execute(
        "INSERT INTO nowcast_models (fitted_at, params, trained_on) VALUES (%s, %s, %s) RETURNING id",
        (model.fitted_at, _jsonb(model.to_json()), _jsonb(dict(model.trained_on))),
    ).fetchone()
    assert row is not None
    return int(row[0])


def latest_model(conn: psycopg.Connection) -> learned.NowcastModel | None:
    """The newest pooled model fitted on the store's own nights, without station learning; None when there is
    none yet (callers then use learned.load_default())."""
    row = conn.execute("SELECT params FROM nowcast_models ORDER BY fitted_at DESC, id DESC LIMIT 1").fetchone()
    return None if row is None else learned.NowcastModel.from_json(_nan(row[0]))


def latest_model_fitted_at(conn: psycopg.Connection) -> datetime | None:
    """When the newest stored pooled model was fitted (None: none stored): a cheap check before reloading it."""
    row = conn.execute("SELECT max(fitted_at) FROM nowcast_models").fetchone()
    return None if row is None else row[0]


# -- each station's learning ------------------------------------------------------------------------------------


def save_stations(
    conn: psycopg.Connection,
    learning: Mapping[str, learned.StationLearning],
    *,
    fitted_at: datetime,
    model_fitted_at: datetime,
    forget: Sequence[str] = (),
) -> int:
    """Store (replace) each station's learning, and drop the learning of the stations in `forget`; the number
    of stations stored. One transaction: a reader sees the old learning or the new, never half of it."""
    rows = [(sid, fitted_at, model_fitted_at, _jsonb(learned.station_to_json(s))) for sid, s in learning.items()]
    with conn.transaction():
        if forget:
            conn.execute("DELETE FROM nowcast_stations WHERE station_id = ANY(%s)", (list(forget),))
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO nowcast_stations (station_id, fitted_at, model_fitted_at, params)
                   SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM devices WHERE id = %s)
                   ON CONFLICT (station_id) DO UPDATE SET fitted_at = excluded.fitted_at,
                       model_fitted_at = excluded.model_fitted_at, params = excluded.params""",
                [(*r, r[0]) for r in rows],
            )
    return len(rows)


def load_stations(
    conn: psycopg.Connection, station_ids: Sequence[str] | None = None
) -> dict[str, learned.StationLearning]:
    """The stored learning of these stations (all with None); stations without any are left out."""
    rows = conn.execute(
        "SELECT station_id, params FROM nowcast_stations WHERE %(ids)s::text[] IS NULL OR station_id = ANY(%(ids)s)",
        {"ids": None if station_ids is None else list(station_ids)},
    )
    return {sid: learned.station_from_json(_nan(params)) for sid, params in rows}


def stations_fitted(conn: psycopg.Connection, station_ids: Sequence[str] | None = None) -> dict[str, datetime]:
    """When each station's stored learning was fitted."""
    rows = conn.execute(
        """SELECT station_id, fitted_at FROM nowcast_stations
           WHERE %(ids)s::text[] IS NULL OR station_id = ANY(%(ids)s)""",
        {"ids": None if station_ids is None else list(station_ids)},
    )
    return {sid: at for sid, at in rows}


# -- road stations' readings as arrays --------------------------------------------------------------------------


def road_stations(conn: psycopg.Connection, station_ids: Sequence[str] | None = None) -> dict[str, str | None]:
    """The road stations of the registry (these ids only, when given) and their names."""
    rows = conn.execute(
        """SELECT id, coalesce(nullif(btrim(name), ''), nullif(btrim(properties->>'name'), '')) FROM devices
           WHERE kind = 'road_station' AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s)) ORDER BY id""",
        {"ids": None if station_ids is None else list(station_ids)},
    )
    return {sid: name for sid, name in rows}


def station_positions(conn: psycopg.Connection, station_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
    """(latitude, longitude) of each of these stations whose registry geometry is a point (GeoJSON: longitude
    first); stations without one are left out."""
    rows = conn.execute(
        """SELECT id, (geometry->'coordinates'->>1)::float8, (geometry->'coordinates'->>0)::float8 FROM devices
           WHERE id = ANY(%s) AND geometry->>'type' = 'Point'
             AND jsonb_typeof(geometry->'coordinates'->0) = 'number'
             AND jsonb_typeof(geometry->'coordinates'->1) = 'number'""",
        (list(station_ids),),
    )
    return {sid: (lat, lon) for sid, lat, lon in rows if abs(lat) <= 90.0 and abs(lon) <= 180.0}


def station_series(
    conn: psycopg.Connection, *, station_ids: list[str] | None, since: datetime, until: datetime
) -> list[learned.Series]:
    """Road surface temperature, air temperature and dew point of road stations (all, or these ids) in
    [since, until], one Series per station with any of them (by id), at the station's position in the registry.
    Values are checked as learned.series checks them (implausible ones dropped)."""
    # One row per series, its times (epoch seconds) and values packed as big-endian int8 and float8 bytes.
    rows = conn.execute(
        """SELECT d.id, s.metric,
                  CASE WHEN d.geometry->>'type' = 'Point' AND jsonb_typeof(d.geometry->'coordinates'->0) = 'number'
                        AND jsonb_typeof(d.geometry->'coordinates'->1) = 'number'
                       THEN (d.geometry->'coordinates'->>1)::float8 END,
                  CASE WHEN d.geometry->>'type' = 'Point' AND jsonb_typeof(d.geometry->'coordinates'->0) = 'number'
                        AND jsonb_typeof(d.geometry->'coordinates'->1) = 'number'
                       THEN (d.geometry->'coordinates'->>0)::float8 END,
                  r.t, r.v
           FROM devices d
           JOIN series s ON s.device_id = d.id
           CROSS JOIN LATERAL (
               SELECT string_agg(int8send(floor(date_part('epoch', x.ts))::int8), ''::bytea) AS t,
                      string_agg(float8send(x.value), ''::bytea) AS v
               FROM readings x
               WHERE x.series_id = s.id AND x.ts >= %(since)s AND x.ts <= %(until)s AND x.value IS NOT NULL
           ) r
           WHERE d.kind = 'road_station' AND s.metric = ANY(%(metrics)s)
             AND (%(ids)s::text[] IS NULL OR d.id = ANY(%(ids)s))
           ORDER BY d.id, s.metric""",
        {
            "metrics": list(METRICS),
            "ids": None if station_ids is None else list(station_ids),
            "since": since,
            "until": until,
        },
    ).fetchall()
    stations: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    position: dict[str, tuple[float | None, float | None]] = {}
    for device, metric, lat, lon, t, v in rows:
        ts = np.frombuffer(t or b"", dtype=">i8").astype(np.int64)
        order = np.argsort(ts, kind="stable")  # both aggregates saw the rows in one order, not always by time
        vs = np.frombuffer(v or b"", dtype=">f8").astype(np.float64)
        stations.setdefault(device, {})[METRICS[metric]] = (ts[order], vs[order])
        position[device] = (lat, lon)
    out = []
    for device in sorted(stations):
        lat, lon = position[device]
        out.append(learned.series(device, stations[device], lat=lat, lon=lon))  # type: ignore[arg-type]
    return out
