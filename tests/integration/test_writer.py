"""The COPY writer against a real PostgreSQL: duplicates never double rows or rollups, on either path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.model import Reading
from store.db import connect
from store.migrate import engine
from store.writer import Batch, Writer
from tests.helpers import load, station

pytestmark = pytest.mark.integration
T0 = datetime(2026, 2, 1, 6, 0, tzinfo=UTC)


def _rows(dev: str, minutes: range, value: float = 1.0) -> list[Reading]:
    return [Reading(dev, "air_temperature", T0 + timedelta(minutes=m), value + m, None) for m in minutes]


def test_redelivered_and_in_batch_duplicates_are_stored_once_with_correct_rollups(database_url, db, uid):
    dev = f"w-{uid}"
    load(database_url, station(dev))
    with connect(database_url, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn))
        first = w.write(Batch(readings=_rows(dev, range(0, 30))))  # fast path
        assert (first.inserted, first.duplicates) == (30, 0)
        again = w.write(Batch(readings=_rows(dev, range(20, 90))))  # overlaps: the conflict path
        assert (again.inserted, again.duplicates) == (60, 10)
        inner = w.write(Batch(readings=_rows(dev, range(90, 95)) + _rows(dev, range(90, 95))))  # duplicates inside
        assert (inner.inserted, inner.duplicates) == (5, 5)
    total = db.execute(
        "SELECT count(*), sum(value) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
    ).fetchone()
    assert total[0] == 95 and total[1] == pytest.approx(sum(1.0 + m for m in range(95)))
    if engine(db) == "native":
        hourly = db.execute(
            """SELECT h.hour, h.n, h.total, h.vmin, h.vmax FROM readings_hourly h JOIN series s ON s.id = h.series_id
               WHERE s.device_id = %s ORDER BY h.hour""",
            (dev,),
        ).fetchall()
        assert [(n, vmin, vmax) for _, n, _, vmin, vmax in hourly] == [(60, 1.0, 60.0), (35, 61.0, 95.0)]
        assert hourly[0][2] == pytest.approx(sum(1.0 + m for m in range(60)))
    last = db.execute("SELECT last_ts, last_value FROM series WHERE device_id = %s", (dev,)).fetchone()
    assert last == (T0 + timedelta(minutes=94), 95.0)
