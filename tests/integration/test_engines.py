"""Both time-series engines answer the same: late readings are read back at once by every reader of hourly data,
bucket sizes agree with the raw readings, and the engine setting is honoured or refused with the fix.

Run on TimescaleDB with PLACEWATCH_TEST_ENGINE=timescale (or both) and PLACEWATCH_TEST_DATABASE_URL pointing at a
server that preloads it (see README, "Running the tests on TimescaleDB").
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from core.model import Reading
from store import damp as damp_store
from store import hourly_days, queries
from store.db import connect
from store.migrate import EngineError, engine, migrate, timescaledb_state
from store.writer import Batch, Writer
from tests.conftest import wait_until
from tests.helpers import home, load, sensor
from tests.services import fresh_database, refresh_hourly

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


def materialise(conn: psycopg.Connection, until: datetime) -> None:
    """What the refresh policy does for hours before `until` (TimescaleDB); the native rollup is always written."""
    if engine(conn) == "timescale":
        refresh_hourly(conn, None, until)


def _materialised_mean(conn: psycopg.Connection, series_id: int, hour: datetime) -> float | None:
    """The mean the aggregate itself holds for an hour (the rollup table on plain PostgreSQL)."""
    table = "readings_hourly_cagg" if engine(conn) == "timescale" else "readings_hourly"
    row = conn.execute(
        f"SELECT total / n FROM {table} WHERE series_id = %s AND hour = %s", (series_id, hour)
    ).fetchone()
    return None if row is None else float(row[0])


def _stored(db: psycopg.Connection, dev: str) -> int:
    """Raw readings of a device committed so far."""
    sql = "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s"
    return int(db.execute(sql, (dev,)).fetchone()[0])  # type: ignore[index]


def test_a_late_reading_into_a_materialised_hour_is_read_back_at_once(
    database_url, db, ingest, publisher, api_url, token_for, uid
):
    dev, hid = f"late-{uid}", f"hl-{uid}"
    load(database_url, home(hid), sensor(dev, hid))
    ingest()
    now = datetime.now(UTC)
    old = (now - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)  # a closed, packed day
    recent = (now - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    topic = f"placewatch/v1/devices/{dev}/readings"

    def iso(t: datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    first = [
        {"ts": iso(t + timedelta(minutes=10)), "values": {"temperature": 20.0, "relative_humidity": 60.0}}
        for t in (old, recent)
    ]
    publisher.publish(topic, json.dumps(first))
    wait_until(lambda: _stored(db, dev) == 4)
    sid = db.execute("SELECT id FROM series WHERE device_id = %s AND metric = 'temperature'", (dev,)).fetchone()[0]
    materialise(db, recent + HOUR)
    hourly_days.pack(db, now)  # the leader packs closed days (both engines): the late reading must reach past them
    packed = "SELECT count(*) FROM hourly_days WHERE series_id = %s AND means IS NOT NULL"
    assert db.execute(packed, (sid,)).fetchone()[0] >= 1
    assert _materialised_mean(db, sid, old) == 20.0 and _materialised_mean(db, sid, recent) == 20.0

    # Late and re-sent: a new reading in each materialised hour, and the first message again.
    late = [
        {"ts": iso(t + timedelta(minutes=40)), "values": {"temperature": 30.0, "relative_humidity": 70.0}}
        for t in (old, recent)
    ]
    publisher.publish(topic, json.dumps(late))
    publisher.publish(topic, json.dumps(first))
    wait_until(lambda: _stored(db, dev) == 8)
    stale = "SELECT count(*) FROM hourly_days WHERE series_id = %s AND day = %s AND means IS NULL"
    assert db.execute(stale, (sid, old.date())).fetchone()[0] == 1  # ingest marked the packed day in its transaction
    # Read back at once: no refresh, no packing again, no waiting.
    headers = token_for("admin")
    url = f"{api_url}/api/v1/devices/{quote(dev, safe='')}/readings"
    for start, end, bucket in (
        (old, old + HOUR, "1h"),
        (recent, recent + HOUR, "1h"),
        (old + timedelta(minutes=5), old + HOUR, "1h"),
    ):
        params = {"metric": "temperature", "start": iso(start), "end": iso(end), "bucket": bucket}
        pts = httpx.get(url, params=params, headers=headers).json()["points"]
        assert [(p["count"], p["avg"], p["min"], p["max"]) for p in pts] == [(2, 25.0, 20.0, 30.0)], (bucket, pts)
    day = old.astimezone(ZoneInfo("Europe/London")).replace(hour=0)
    params = {
        "metric": "temperature",
        "start": iso(day.astimezone(UTC)),
        "end": iso((day + timedelta(days=1)).astimezone(UTC)),
        "bucket": "1d",
    }
    pts = httpx.get(url, params=params, headers=headers).json()["points"]
    assert [(p["count"], p["avg"]) for p in pts] == [(2, 25.0)]

    start = recent + HOUR - timedelta(days=30)
    inputs = damp_store.hourly_inputs(db, [hid], start, recent + HOUR)
    temps = inputs.series(sid)
    assert temps is not None
    at = {t: temps[int((t - start) / HOUR)] for t in (old, recent)}
    assert at == {old: 25.0, recent: 25.0}
    rh_sid = db.execute(
        "SELECT id FROM series WHERE device_id = %s AND metric = 'relative_humidity'", (dev,)
    ).fetchone()[0]
    humid = inputs.series(rh_sid)
    assert humid is not None and humid[int((old - start) / HOUR)] == 65.0
    if engine(db) == "timescale":
        # The aggregate itself still holds the old means: what made the reading visible is readings_hourly.
        assert _materialised_mean(db, sid, old) == 20.0
        materialise(db, recent + HOUR)
        assert _materialised_mean(db, sid, old) == 25.0 and _materialised_mean(db, sid, recent) == 25.0
    again = damp_store.hourly_inputs(db, [hid], start, recent + HOUR).series(sid)
    assert again is not None and again[int((old - start) / HOUR)] == 25.0


BUCKETS = [
    timedelta(minutes=15),
    timedelta(minutes=90),
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
]


def _raw_buckets(
    conn: psycopg.Connection, sid: int, start: datetime, end: datetime, bucket: timedelta, zone: str
) -> list[tuple[datetime, float, float, float, int]]:
    """The buckets computed in Python from the raw readings: the answer every engine must give."""
    tz = ZoneInfo(zone)
    origin_utc = datetime(2000, 1, 3, tzinfo=UTC)
    out: dict[datetime, list[float]] = {}
    for ts, value in conn.execute(
        "SELECT ts, value FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s ORDER BY ts", (sid, start, end)
    ):
        if bucket >= timedelta(days=1):
            local = ts.astimezone(tz).replace(tzinfo=None)
            k_local = datetime(2000, 1, 3) + (local - datetime(2000, 1, 3)) // bucket * bucket
            k = k_local.replace(tzinfo=tz).astimezone(UTC)
        else:
            k = origin_utc + (ts - origin_utc) // bucket * bucket
        out.setdefault(k, []).append(value)
    return [(k, sum(v) / len(v), min(v), max(v), len(v)) for k, v in sorted(out.items())]


@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Kolkata"])
def test_every_bucket_size_answers_as_the_raw_readings_say(db, uid, database_url, zone):
    dev = f"buckets-{uid}"
    load(database_url, sensor(dev, f"hb-{uid}"), home(f"hb-{uid}"))
    # Every 7 minutes across the end of British Summer Time (25 October 2026), with a gap of a day.
    start = datetime(2026, 10, 20, tzinfo=UTC)
    rows = [
        Reading(dev, "temperature", start + timedelta(minutes=7 * i), round(15 + (i % 37) * 0.25, 2))
        for i in range(8 * 24 * 60 // 7)
        if not 3 * 24 * 60 <= 7 * i < 4 * 24 * 60
    ]
    with connect(database_url, autocommit=True) as conn:
        Writer(conn, engine=engine(conn)).write(Batch(readings=rows))
    sid = db.execute("SELECT id FROM series WHERE device_id = %s", (dev,)).fetchone()[0]
    materialise(db, start + timedelta(days=5))  # materialised for the first five days, not the rest
    end = start + timedelta(days=8)
    for bucket in BUCKETS:
        for lo, hi in ((start, end), (start + 5 * HOUR, end - 7 * HOUR), (start + timedelta(minutes=30), end)):
            got = queries.bucket_points(db, sid, lo, hi, bucket, zone=zone, categorical=False)
            want = _raw_buckets(db, sid, lo, hi, bucket, zone)
            assert [(g.ts, g.count) for g in got] == [(w[0], w[4]) for w in want], (bucket, lo, hi)
            for g, w in zip(got, want, strict=True):
                assert math.isclose(g.avg, w[1], abs_tol=1e-9) and (g.min, g.max) == (w[2], w[3]), (bucket, g, w)


def test_on_refuses_a_server_without_timescaledb_and_auto_uses_plain_postgresql():
    with fresh_database() as dsn, connect(dsn, autocommit=True) as conn:
        if timescaledb_state(conn) != "missing":
            pytest.skip("this server has TimescaleDB installed")
        with pytest.raises(EngineError, match="not installed"):
            migrate(conn, timescaledb="on")
        assert migrate(conn, timescaledb="auto") and engine(conn) == "native"
        with pytest.raises(EngineError, match="set up on plain PostgreSQL"):
            migrate(conn, timescaledb="on")  # and a database set up on plain PostgreSQL stays refused


@pytest.mark.engine("timescale")
def test_on_refuses_a_native_database_on_a_timescaledb_server():
    with fresh_database() as dsn, connect(dsn, autocommit=True) as conn:
        assert timescaledb_state(conn) == "ready"
        migrate(conn, timescaledb="off")
        assert engine(conn) == "native"
        with pytest.raises(EngineError, match="set up on plain PostgreSQL"):
            migrate(conn, timescaledb="on")
        migrate(conn, timescaledb="auto")  # a database keeps its engine
        assert engine(conn) == "native"
