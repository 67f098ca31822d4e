"""Packed days of the hourly rollup (store.hourly_days) against real PostgreSQL: what readers get from packed days
is exactly what the rollup says, before and after late readings change a packed day, and when a late reading
lands while its day is being packed; ingest marks only days it may have packed; the scheduler's evaluator packs.
Each test has a database of its own: packing covers every series of a database."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from alerts.context import AlertContext
from alerts.maintenance import PackingEvaluator
from alerts.scheduler import default_evaluators
from core.model import Reading
from placewatch.settings import Settings
from store import hourly_days
from store.db import connect, open_pool
from store.migrate import engine, migrate
from store.writer import Batch, Writer
from tests.helpers import load, station
from tests.services import fresh_database

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0)
DEVICES = ("pack-1", "pack-2", "pack-3")


@pytest.fixture
def dsn() -> Iterator[str]:
    """A database of its own with 40 days of readings from three stations, with gaps, written by ingest's writer."""
    with fresh_database() as url:
        with connect(url) as conn:
            migrate(conn, timescaledb="off")
        load(url, *(station(d) for d in DEVICES))
        r = random.Random(7)
        rows = []
        for d in DEVICES:
            for minutes in range(0, 40 * 24 * 60, 20):
                if r.random() < 0.15 or (d == "pack-3" and 10 * 1440 < minutes < 12 * 1440):
                    continue  # gaps, and two whole days without pack-3
                ts = NOW - timedelta(days=40) + timedelta(minutes=minutes)
                rows.append(Reading(d, "air_temperature", ts, round(r.uniform(-8.0, 12.0), 2)))
                if minutes % 60 == 0:
                    rows.append(Reading(d, "relative_humidity", ts, round(r.uniform(40.0, 99.0), 1)))
        with connect(url, autocommit=True) as conn:
            Writer(conn, engine=engine(conn)).write(Batch(readings=rows))
        yield url


def _series(conn: Any) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM series ORDER BY id")]


def _as_dict(got: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[tuple[int, int], float]:
    sid, hour_us, value = got
    out = {(int(s), int(h)): float(v) for s, h, v in zip(sid, hour_us, value, strict=True)}
    assert len(out) == len(sid)  # no hour twice
    return out


def _read(conn: Any, start: datetime, end: datetime) -> tuple[dict[Any, float], dict[Any, float]]:
    """(what readers get, what the rollup alone says) for every series over [start, end), in one snapshot."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        ids = _series(conn)
        return _as_dict(hourly_days.means(conn, ids, start, end)), _as_dict(
            hourly_days.hourly_means(conn, ids, start, end)
        )


def _write(conn: Any, *readings: Reading) -> None:
    Writer(conn, engine=engine(conn)).write(Batch(readings=list(readings)))


def test_packed_days_give_exactly_what_the_rollup_says(dsn):
    with connect(dsn, autocommit=True) as conn:
        done = hourly_days.pack(conn, NOW)
        assert done.finished and done.days == hourly_days.KEEP_DAYS
        last = hourly_days.last_packable(NOW)
        assert hourly_days.packed_range(conn) == (last - timedelta(days=hourly_days.KEEP_DAYS - 1), last)
        assert (NOW - datetime(last.year, last.month, last.day, tzinfo=UTC)) >= hourly_days.PACK_AFTER + timedelta(
            days=1
        )
        packed = conn.execute("SELECT count(*) FROM hourly_days WHERE means IS NOT NULL").fetchone()[0]
        assert packed >= 2 * 36  # two metrics a station, every day with readings (38 or 39 of the 40)
        for start, end in (
            (HOUR - timedelta(days=30), HOUR),
            (HOUR - timedelta(days=45, hours=5), HOUR - timedelta(hours=7)),
        ):
            got, rollup = _read(conn, start, end)
            assert len(rollup) > 1000
            assert got == rollup
        again = hourly_days.pack(conn, NOW)
        assert (again.days, again.repacked) == (0, 0)  # nothing due


def test_a_late_reading_marks_its_packed_day_stale_and_it_is_packed_again(dsn):
    with connect(dsn, autocommit=True) as conn:
        hourly_days.pack(conn, NOW)
        late = (HOUR - timedelta(days=5)).replace(hour=3)
        day = late.date()
        before = conn.execute(
            "SELECT h.version FROM hourly_days h JOIN series s ON s.id = h.series_id "
            "WHERE s.device_id = 'pack-1' AND s.metric = 'air_temperature' AND h.day = %s",
            (day,),
        ).fetchone()[0]
        _write(conn, Reading("pack-1", "air_temperature", late + timedelta(seconds=17), 55.5))
        row = conn.execute(
            "SELECT h.means, h.version FROM hourly_days h JOIN series s ON s.id = h.series_id "
            "WHERE s.device_id = 'pack-1' AND s.metric = 'air_temperature' AND h.day = %s",
            (day,),
        ).fetchone()
        assert row == (None, before + 1)
        got, rollup = _read(conn, HOUR - timedelta(days=30), HOUR)
        assert got == rollup  # the stale day is read from the rollup, with the late reading in its mean
        done = hourly_days.pack(conn, NOW)
        assert done.repacked == 1
        assert conn.execute("SELECT count(*) FROM hourly_days WHERE means IS NULL").fetchone()[0] == 0
        got, rollup = _read(conn, HOUR - timedelta(days=30), HOUR)
        assert got == rollup


def test_a_late_reading_that_lands_while_its_day_is_packed_is_not_lost(dsn, monkeypatch):
    late = (HOUR - timedelta(days=3)).replace(hour=11)
    real = hourly_days.hourly_means
    landed: list[bool] = []

    def meanwhile(conn: Any, series_ids: Any, start: datetime, end: datetime) -> Any:
        if not landed and start <= late < end:
            with connect(dsn, autocommit=True) as other:  # ingest commits after the packing read its versions
                _write(other, Reading("pack-2", "air_temperature", late + timedelta(minutes=7), 77.0))
            landed.append(True)
        return real(conn, series_ids, start, end)

    monkeypatch.setattr(hourly_days, "hourly_means", meanwhile)
    with connect(dsn, autocommit=True) as conn:
        done = hourly_days.pack(conn, NOW)
        assert landed
        # The day's first packing did not see the reading and did not overwrite its mark, so the same pass
        # packed that series-day again from the stale marks, this time with the reading.
        assert done.repacked == 1
        assert conn.execute("SELECT count(*) FROM hourly_days WHERE means IS NULL").fetchone()[0] == 0
        got, rollup = _read(conn, HOUR - timedelta(days=30), HOUR)
        assert got == rollup
        sid = conn.execute("SELECT id FROM series WHERE device_id = 'pack-2' AND metric = 'air_temperature'").fetchone()
        mean = conn.execute(
            "SELECT avg(value) FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s",
            (sid[0], late, late + timedelta(hours=1)),
        ).fetchone()[0]
        hour_us = (late - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        assert got[(sid[0], hour_us)] == pytest.approx(mean)
        assert mean > 12.0  # 77 is in it


def test_ingest_marks_only_readings_over_a_day_old(dsn):
    with connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE hourly_days")
        _write(conn, Reading("pack-3", "air_temperature", NOW - timedelta(hours=2, seconds=-7), 1.0))
        assert conn.execute("SELECT count(*) FROM hourly_days").fetchone()[0] == 0
        _write(conn, Reading("pack-3", "air_temperature", NOW - timedelta(hours=30, seconds=-7), 1.0))
        assert conn.execute("SELECT count(*), min(version), bool_and(means IS NULL) FROM hourly_days").fetchone() == (
            1,
            1,
            True,
        )


def test_the_scheduler_packs_and_packing_keeps_its_range(dsn):
    assert "hourly_days" in [e.name for e in default_evaluators(Settings())]
    settings = Settings(database_url=dsn)
    pool = open_pool(dsn, max_size=2)
    try:
        ctx = AlertContext(settings=settings, pool=pool, publisher=None)  # type: ignore[arg-type]
        ctx.now = lambda: NOW  # type: ignore[method-assign]
        PackingEvaluator(settings).sweep(ctx)
        with pool.connection() as conn:
            assert not conn.autocommit  # handed back as it was lent
            span = hourly_days.packed_range(conn)
        assert span is not None and span[1] == hourly_days.last_packable(NOW)
        # Ten days later the range moves on: ten new days packed, ten old ones dropped.
        later = NOW + timedelta(days=10)
        ctx.now = lambda: later  # type: ignore[method-assign]
        PackingEvaluator(settings).sweep(ctx)
        with pool.connection() as conn:
            first, last = hourly_days.packed_range(conn) or (None, None)
            assert last == hourly_days.last_packable(later)
            assert first == last - timedelta(days=hourly_days.KEEP_DAYS - 1)
            oldest = conn.execute("SELECT min(day) FROM hourly_days").fetchone()[0]
            assert oldest >= first
    finally:
        pool.close()
