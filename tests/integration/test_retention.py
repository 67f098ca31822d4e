"""PLACEWATCH_RETENTION_DAYS on plain PostgreSQL: old raw readings go in bounded chunks, the hourly rollup stays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.context import AlertContext
from alerts.maintenance import RetentionEvaluator
from alerts.scheduler import default_evaluators
from core.model import Reading
from placewatch.settings import Settings
from store.db import connect, open_pool
from store.maintenance import delete_old_dead_letters, delete_old_readings
from store.migrate import engine, migrate
from store.writer import Batch, Writer
from tests.helpers import load, station
from tests.services import fresh_database

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
OLD = 2_500  # readings 100 days ago, one a minute
RECENT = 10  # readings yesterday


@pytest.fixture
def dsn() -> Iterator[str]:
    """A database of its own: retention deletes everything old, whoever wrote it."""
    with fresh_database() as url:
        with connect(url) as conn:
            migrate(conn, timescaledb="off")
        load(url, station("ret-1"))
        with connect(url, autocommit=True) as conn:
            writer = Writer(conn, engine=engine(conn))
            old = NOW - timedelta(days=100)
            recent = NOW - timedelta(days=1)
            rows = [Reading("ret-1", "air_temperature", old + timedelta(minutes=i), float(i % 7)) for i in range(OLD)]
            rows += [Reading("ret-1", "air_temperature", recent + timedelta(minutes=i), 1.0) for i in range(RECENT)]
            writer.write(Batch(readings=rows))
        yield url


def _counts(conn: Any) -> tuple[int, int, int]:
    """(raw readings older than 30 days, newer raw readings, readings counted by the hourly rollup)."""
    cutoff = NOW - timedelta(days=30)
    old = conn.execute("SELECT count(*) FROM readings WHERE ts < %s", (cutoff,)).fetchone()[0]
    new = conn.execute("SELECT count(*) FROM readings WHERE ts >= %s", (cutoff,)).fetchone()[0]
    rolled = conn.execute("SELECT coalesce(sum(n), 0) FROM readings_hourly").fetchone()[0]
    return int(old), int(new), int(rolled)


def test_old_raw_readings_are_deleted_chunk_by_chunk_and_the_hourly_rollup_stays(dsn):
    with connect(dsn, autocommit=True) as conn:
        assert _counts(conn) == (OLD, RECENT, OLD + RECENT)
        cutoff = NOW - timedelta(days=30)
        first = delete_old_readings(conn, before=cutoff, chunk_rows=1000, max_chunks=1)
        assert (first.rows, first.chunks, first.finished) == (1000, 1, False)  # budget spent, more to do
        rest = delete_old_readings(conn, before=cutoff, chunk_rows=1000)
        assert (rest.rows, rest.finished) == (OLD - 1000, True)
        assert _counts(conn) == (0, RECENT, OLD + RECENT)
        hours = conn.execute("SELECT count(*) FROM readings_hourly WHERE hour < %s", (cutoff,)).fetchone()[0]
        old_start = NOW - timedelta(days=100)
        expected = {(old_start + timedelta(minutes=i)).replace(minute=0) for i in range(OLD)}
        assert hours == len(expected)  # every old hour still has its min, max, mean and count


def _sweep(dsn: str, days: int, *, dead_letter_days: int = 90) -> None:
    settings = Settings(database_url=dsn, retention_days=days, dead_letter_retention_days=dead_letter_days)
    pool = open_pool(dsn, max_size=2)
    try:
        RetentionEvaluator(settings).sweep(AlertContext(settings=settings, pool=pool, publisher=None))  # type: ignore[arg-type]
    finally:
        pool.close()


def test_the_retention_evaluator_keeps_the_configured_days_of_raw_readings(dsn):
    _sweep(dsn, 0)  # the default: keep everything
    with connect(dsn) as conn:
        assert _counts(conn) == (OLD, RECENT, OLD + RECENT)
    _sweep(dsn, 30)
    with connect(dsn) as conn:
        assert _counts(conn) == (0, RECENT, OLD + RECENT)
        latest = conn.execute("SELECT last_ts FROM series_latest WHERE device_id = 'ret-1'").fetchone()[0]
        assert latest == NOW - timedelta(days=1) + timedelta(minutes=RECENT - 1)


def test_the_scheduler_runs_retention_with_the_other_evaluators():
    names = [e.name for e in default_evaluators(Settings(retention_days=90))]
    assert "retention" in names


def test_dead_letters_older_than_their_retention_go_oldest_first_in_chunks_and_newer_ones_stay(dsn):
    with connect(dsn, autocommit=True) as conn:
        for days, count in ((200, 30), (100, 20), (10, 5)):
            conn.execute(
                """INSERT INTO dead_letters (received_at, topic, payload, reason, device_id, format)
                   SELECT %s - make_interval(mins => g), 'placewatch/v1/readings/x', '\\x00', 'bad json', 'x', 'native'
                   FROM generate_series(1, %s) g""",
                (NOW - timedelta(days=days), count),
            )
        first = delete_old_dead_letters(conn, before=NOW - timedelta(days=90), chunk_rows=7, max_seconds=0.0)
        assert (first.rows, first.finished) == (7, False)  # the time budget ends a pass after its first chunk
        oldest_left = conn.execute("SELECT min(received_at) FROM dead_letters").fetchone()[0]
        assert oldest_left > NOW - timedelta(days=200, minutes=24)  # the 7 oldest went first
    _sweep(dsn, 0, dead_letter_days=0)  # 0 keeps them all
    with connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 48
    _sweep(dsn, 0, dead_letter_days=90)
    with connect(dsn) as conn:
        left = conn.execute("SELECT count(*), min(received_at) FROM dead_letters").fetchone()
        assert left[0] == 5 and left[1] >= NOW - timedelta(days=10, minutes=5)
        assert _counts(conn) == (OLD, RECENT, OLD + RECENT)  # raw readings kept: their retention is 0
