"""Reads for the API. Every query that returns devices or homes takes the Principal and limits rows in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import psycopg

from core.model import Principal
from store.rows import typed

# Which devices a principal may see, as a WHERE fragment over devices d (parameters: role, home, patch).
DEVICE_SCOPE = """(%(role)s = 'admin'
   OR (%(role)s = 'highways' AND d.kind = 'road_station')
   OR (%(role)s = 'officer' AND d.home_id IN (SELECT h.id FROM homes h WHERE h.patch = %(patch)s))
   OR (%(role)s = 'tenant' AND d.home_id = %(home)s))"""


def scope_params(p: Principal) -> dict[str, Any]:
    """Parameters for the scope fragments."""
    return {"role": p.role, "home": p.home_id, "patch": p.patch}


def ping(conn: psycopg.Connection) -> bool:
    """True when the database answers."""
    return conn.execute("SELECT 1").fetchone() == (1,)


class DeviceRow(NamedTuple):
    """A device as the API lists it, with its latest value per metric ({metric: {ts, value}}). A named tuple,
    not a frozen dataclass: the list is read for a whole fleet (100,000 devices), and a tuple is made in a third
    of the time (GET /api/v1/devices took 15-20 % more CPU with a frozen dataclass made positionally)."""

    id: str
    kind: str
    name: str | None
    model: str | None
    format: str | None
    home_id: str | None
    room: str | None
    expected_interval_s: int | None
    geometry: Any  # GeoJSON geometry (None: no place); JSON text with raw_json
    source: str
    reported_status: str | None
    status_at: datetime | None
    last_seen: datetime | None
    latest: Any  # {metric: {"ts", "value"}}; JSON text with raw_json


def devices(
    conn: psycopg.Connection,
    p: Principal,
    *,
    device_id: str | None = None,
    after: str | None = None,
    limit: int | None = None,
    raw_json: bool = False,
) -> list[DeviceRow]:
    """Devices visible to p (one if device_id is given), with their metrics and latest values, by id.

    after and limit page through them (ids greater than after, at most limit). With raw_json, `latest`
    and `geometry` stay JSON text, for a caller that writes them out as they are.
    """
    params = scope_params(p) | {"id": device_id, "after": after, "limit": limit}
    cast = "::text" if raw_json else ""
    rows = typed(conn, DeviceRow).execute(
        f"""SELECT d.id, d.kind, d.name, d.model, d.format, d.home_id, d.room, d.expected_interval_s,
                   d.geometry{cast} AS geometry, d.source, d.status AS reported_status, d.status_at,
                   seen_last(d.last_seen, l.seen_at) AS last_seen,
                   coalesce(l.latest, '{{}}'::jsonb){cast} AS latest
            FROM devices d
            LEFT JOIN device_state l ON l.device_id = d.id
            WHERE {DEVICE_SCOPE} AND (%(id)s::text IS NULL OR d.id = %(id)s)
              AND (%(after)s::text IS NULL OR d.id > %(after)s)
            ORDER BY d.id
            LIMIT %(limit)s""",
        params,
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class Series:
    """A device's metric as stored."""

    id: int
    device_id: str
    metric: str


def series_for(conn: psycopg.Connection, p: Principal, device_id: str) -> list[Series] | None:
    """The device's series if p may see the device, else None (the API answers 404 either way)."""
    params = scope_params(p) | {"id": device_id}
    rows = conn.execute(
        f"""SELECT s.id, d.id, s.metric FROM devices d LEFT JOIN series s ON s.device_id = d.id
            WHERE d.id = %(id)s AND {DEVICE_SCOPE} ORDER BY s.metric""",
        params,
    ).fetchall()
    if not rows:
        return None
    return [Series(r[0], r[1], r[2]) for r in rows if r[0] is not None]


def raw_points(
    conn: psycopg.Connection, series_id: int, start: datetime, end: datetime, limit: int
) -> list[tuple[datetime, float | None, str | None]]:
    """Readings of one series in [start, end), oldest first, at most limit."""
    return conn.execute(
        """SELECT ts, value, label FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s
           ORDER BY ts LIMIT %s""",
        (series_id, start, end, limit),
    ).fetchall()


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of a series' readings: its start, mean, lowest, highest and how many (for a categorical metric
    no figures, and the commonest label)."""

    ts: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int
    mode: str | None = None


def bucket_points(
    conn: psycopg.Connection,
    series_id: int,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    *,
    zone: str,
    categorical: bool,
) -> list[Bucket]:
    """The buckets of one series with readings, oldest first; day buckets are local days in `zone`.

    Whole-hour buckets over hour-aligned ranges read the hourly rollup (on TimescaleDB too: readings_hourly is
    current there, see migration 0015), day buckets only where the zone is a whole number of hours from UTC
    throughout (an hour of the rollup then lies in one local day); anything else reads raw readings, so every
    bucket size answers as the raw readings say, on both engines.
    """
    local = bucket >= timedelta(days=1)
    if local:
        key = "date_bin(%(b)s, ts AT TIME ZONE %(z)s, '2000-01-03') AT TIME ZONE %(z)s"
    else:
        key = "date_bin(%(b)s, ts, '2000-01-03 00:00+00')"
    params = {"sid": series_id, "start": start, "end": end, "b": bucket, "z": zone}
    cur = typed(conn, Bucket, binary=True)  # a year of hours is 8,760 rows: binary times and numbers read faster
    if categorical:
        return cur.execute(
            f"""SELECT k AS ts, NULL::float8 AS avg, NULL::float8 AS min, NULL::float8 AS max, count(*) AS count,
                       mode() WITHIN GROUP (ORDER BY label) AS mode
                FROM (SELECT {key} AS k, label FROM readings
                      WHERE series_id = %(sid)s AND ts >= %(start)s AND ts < %(end)s) x
                GROUP BY k ORDER BY k""",
            params,
        ).fetchall()
    hourly = bucket % timedelta(hours=1) == timedelta(0) and _on_hour(start) and _on_hour(end)
    if hourly and local:
        hourly = _whole_hours_from_utc(zone, start, end)
    if hourly and bucket == timedelta(hours=1):
        # A bucket is a row of the rollup (one per series and hour on both engines): read as it is, not grouped.
        return cur.execute(
            """SELECT hour AS ts, total / n AS avg, vmin AS min, vmax AS max, n AS count FROM readings_hourly
               WHERE series_id = %(sid)s AND hour >= %(start)s AND hour < %(end)s AND n > 0 ORDER BY hour""",
            params,
        ).fetchall()
    if hourly:
        hkey = key.replace("ts", "hour")
        return cur.execute(
            f"""SELECT k AS ts, sum(total) / nullif(sum(n), 0) AS avg, min(vmin) AS min, max(vmax) AS max,
                       sum(n)::bigint AS count
                FROM (SELECT {hkey} AS k, n, total, vmin, vmax FROM readings_hourly
                      WHERE series_id = %(sid)s AND hour >= %(start)s AND hour < %(end)s) x
                GROUP BY k HAVING sum(n) > 0 ORDER BY k""",
            params,
        ).fetchall()
    return cur.execute(
        f"""SELECT k AS ts, avg(value) AS avg, min(value) AS min, max(value) AS max, count(value) AS count
            FROM (SELECT {key} AS k, value FROM readings
                  WHERE series_id = %(sid)s AND ts >= %(start)s AND ts < %(end)s) x
            GROUP BY k ORDER BY k""",
        params,
    ).fetchall()


def _on_hour(ts: datetime) -> bool:
    return (
        ts.minute == 0
        and ts.second == 0
        and ts.microsecond == 0
        and ts.utcoffset() is not None
        and (ts.utcoffset() or timedelta(0)) % timedelta(hours=1) == timedelta(0)
    )


def _whole_hours_from_utc(zone: str, start: datetime, end: datetime) -> bool:
    """True when `zone` is a whole number of hours from UTC at every day's start and end over [start, end] (offsets
    change at most a few times a year, and never for less than a day)."""
    tz = ZoneInfo(zone)
    t = start
    while True:
        offset = t.astimezone(tz).utcoffset() or timedelta(0)
        if offset % timedelta(hours=1):
            return False
        if t >= end:
            return True
        t = min(t + timedelta(days=1), end)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message."""

    id: int
    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    device_id: str | None
    format: str | None


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A device not in the registry that sent messages: how many, when last, and its last five."""

    device_id: str
    messages: int
    last_received: datetime
    last_topic: str
    last_payloads: list[bytes]


def dead_letters(
    conn: psycopg.Connection, *, limit: int, before_id: int | None, device_id: str | None, reason: str | None
) -> list[DeadLetter]:
    """Rejected messages, newest first (admin only: the router checks the role)."""
    return list(
        typed(conn, DeadLetter).execute(
            """SELECT id, received_at, topic, payload, reason, device_id, format FROM dead_letters
               WHERE (%(before)s::bigint IS NULL OR id < %(before)s)
                 AND (%(dev)s::text IS NULL OR device_id = %(dev)s)
                 AND (%(reason)s::text IS NULL OR reason ILIKE '%%' || %(reason)s || '%%')
               ORDER BY id DESC LIMIT %(limit)s""",
            {"before": before_id, "dev": device_id, "reason": reason, "limit": limit},
        )
    )


def quarantine(conn: psycopg.Connection, *, limit: int) -> list[Quarantined]:
    """Devices that sent messages but are not in the registry, with their last messages."""
    return list(
        typed(conn, Quarantined).execute(
            """SELECT q.device_id, count(*) AS messages, max(q.received_at) AS last_received,
                      (array_agg(q.topic ORDER BY q.id DESC))[1] AS last_topic,
                      (array_agg(q.payload ORDER BY q.id DESC))[1:5] AS last_payloads
               FROM dead_letters q
               WHERE q.device_id IS NOT NULL AND q.reason LIKE 'unknown device%%'
                 AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = q.device_id)
               GROUP BY q.device_id ORDER BY max(q.received_at) DESC LIMIT %(limit)s""",
            {"limit": limit},
        )
    )
