"""The TimescaleDB-only code: retention policy and the refresh window it moves, the Timescale branch of the
retention evaluator, the row-count estimate over chunks, and `auto` on a server that has TimescaleDB installed
but not preloaded. Each test has a database of its own: retention drops chunks, whoever wrote them.

Runs with PLACEWATCH_TEST_ENGINE=timescale (or both); the not-preloaded test also needs PLACEWATCH_TEST_PG_BINDIR,
the bin directory of a PostgreSQL with TimescaleDB installed (it starts a throwaway server there without it).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from alerts.context import AlertContext
from alerts.maintenance import RetentionEvaluator
from core.model import Reading
from placewatch.embedded import free_port
from placewatch.settings import Settings
from store.db import connect, open_pool
from store.maintenance import refresh_window_days, retention_policy_days, set_retention_policy
from store.metrics import EXACT_BELOW, estimate_rows
from store.migrate import EngineError, engine, migrate, timescaledb_state
from store.writer import Batch, Writer
from tests.conftest import wait_until
from tests.helpers import load, station
from tests.services import fresh_database, refresh_hourly

pytestmark = [pytest.mark.integration, pytest.mark.engine("timescale")]
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
OLD = 2_500  # readings 100 days ago, one a minute
RECENT = 10  # readings yesterday


@pytest.fixture
def tsdb() -> Iterator[str]:
    """A database of its own on TimescaleDB, with a station and old and recent readings."""
    with fresh_database() as url:
        with connect(url) as conn:
            migrate(conn, timescaledb="on")
            assert engine(conn) == "timescale"
        load(url, station("ts-1"))
        with connect(url, autocommit=True) as conn:
            old = NOW - timedelta(days=100)
            recent = NOW - timedelta(days=1)
            rows = [Reading("ts-1", "air_temperature", old + timedelta(minutes=i), float(i % 7)) for i in range(OLD)]
            rows += [Reading("ts-1", "air_temperature", recent + timedelta(minutes=i), 1.0) for i in range(RECENT)]
            Writer(conn, engine="timescale").write(Batch(readings=rows))
        yield url


def _sweep(dsn: str, days: int) -> None:
    settings = Settings(database_url=dsn, retention_days=days)
    pool = open_pool(dsn, max_size=2)
    try:
        RetentionEvaluator(settings).sweep(AlertContext(settings=settings, pool=pool, publisher=None))  # type: ignore[arg-type]
    finally:
        pool.close()


def _counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    """(raw readings older than 30 days, newer raw readings, readings counted by the hourly rollup)."""
    cutoff = NOW - timedelta(days=30)
    old = conn.execute("SELECT count(*) FROM readings WHERE ts < %s", (cutoff,)).fetchone()[0]  # type: ignore[index]
    new = conn.execute("SELECT count(*) FROM readings WHERE ts >= %s", (cutoff,)).fetchone()[0]  # type: ignore[index]
    rolled = conn.execute("SELECT coalesce(sum(n), 0) FROM readings_hourly").fetchone()[0]  # type: ignore[index]
    return int(old), int(new), int(rolled)


def test_retention_moves_the_refresh_window_both_ways(tsdb):
    with connect(tsdb, autocommit=True) as conn:
        assert retention_policy_days(conn) is None and refresh_window_days(conn) is None
        assert not set_retention_policy(conn, 0)
        assert set_retention_policy(conn, 30)
        assert retention_policy_days(conn) == 30 and math.isclose(refresh_window_days(conn) or 0, 30 - 1 / 24)
        assert not set_retention_policy(conn, 30)
        assert set_retention_policy(conn, 10)
        assert retention_policy_days(conn) == 10 and math.isclose(refresh_window_days(conn) or 0, 10 - 1 / 24)
        assert set_retention_policy(conn, 0)
        assert retention_policy_days(conn) is None and refresh_window_days(conn) is None
        # A database that an earlier version left with no retention but the narrowed window is put right.
        conn.execute("SELECT remove_continuous_aggregate_policy('readings_hourly_cagg')")
        conn.execute(
            """SELECT add_continuous_aggregate_policy('readings_hourly_cagg',
                   start_offset => interval '29 days 23 hours',
                   end_offset => interval '1 hour', schedule_interval => interval '5 minutes')"""
        )
        assert set_retention_policy(conn, 0) and refresh_window_days(conn) is None
        jobs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchone()[0]
        assert jobs == 1


def test_the_retention_evaluator_sets_the_policy_and_the_hourly_rollup_keeps_dropped_hours(tsdb):
    with connect(tsdb, autocommit=True) as conn:
        refresh_hourly(conn, None, NOW - timedelta(hours=1))
        assert _counts(conn) == (OLD, RECENT, OLD + RECENT)
    _sweep(tsdb, 0)  # the default: no policy
    with connect(tsdb, autocommit=True) as conn:
        assert retention_policy_days(conn) is None
    _sweep(tsdb, 30)
    with connect(tsdb, autocommit=True) as conn:
        assert retention_policy_days(conn) == 30
        job = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        ).fetchone()[0]
        conn.execute("CALL run_job(%s)", (job,))  # what the background job does on its schedule
        assert _counts(conn) == (0, RECENT, OLD + RECENT)  # raw chunks dropped, every hour of them kept
        old_start = NOW - timedelta(days=100)
        hours = conn.execute("SELECT count(*) FROM readings_hourly WHERE hour < %s", (NOW - timedelta(days=30),))
        assert hours.fetchone()[0] == len({(old_start + timedelta(minutes=i)).replace(minute=0) for i in range(OLD)})
        # A late reading into a kept hour is read back at once, next to the hours whose raw chunks are gone.
        Writer(conn, engine="timescale").write(
            Batch(readings=[Reading("ts-1", "air_temperature", NOW - timedelta(days=1, minutes=-30), 11.0)])
        )
        assert _counts(conn) == (0, RECENT + 1, OLD + RECENT + 1)
        # The policy's own refresh over its narrowed window drops nothing either.
        refresh = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchone()[0]
        refresh_hourly(conn, None, None, call=f"CALL run_job({int(refresh)})")
        assert _counts(conn) == (0, RECENT + 1, OLD + RECENT + 1)
    _sweep(tsdb, 0)  # a new process with retention back to 0 (the evaluator sets the policy once per process)
    with connect(tsdb, autocommit=True) as conn:
        assert retention_policy_days(conn) is None and refresh_window_days(conn) is None


def test_the_row_count_estimate_covers_the_chunks_compressed_or_not(tsdb):
    with connect(tsdb, autocommit=True) as conn:
        assert estimate_rows(conn, "readings") == OLD + RECENT  # small: counted exactly
        sid = conn.execute("SELECT id FROM series WHERE device_id = 'ts-1'").fetchone()[0]
        extra = EXACT_BELOW + 20_000
        start = NOW - timedelta(days=60)
        conn.execute(
            """INSERT INTO readings (series_id, ts, value)
               SELECT %s, %s + make_interval(secs => g * 30), g %% 13 FROM generate_series(1, %s) g""",
            (sid, start, extra),
        )
        total = OLD + RECENT + extra

        def close() -> bool:  # within 10 %, as /metrics promises past EXACT_BELOW
            estimate = estimate_rows(conn, "readings")
            return estimate is not None and abs(estimate - total) < total * 0.1

        # Never analysed (autovacuum has not come round yet): the estimate follows the inserts within seconds.
        wait_until(close)
        conn.execute(
            "SELECT compress_chunk(c) FROM show_chunks('readings', older_than => %s) c", (NOW - timedelta(days=14),)
        )
        wait_until(close)  # compressed, not analysed
        conn.execute("ANALYZE readings")
        assert close(), (estimate_rows(conn, "readings"), total)
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings' AND is_compressed"
        ).fetchone()[0]
        assert compressed >= 2


BINDIR = os.environ.get("PLACEWATCH_TEST_PG_BINDIR")


@pytest.mark.skipif(not BINDIR, reason="PLACEWATCH_TEST_PG_BINDIR (a PostgreSQL with TimescaleDB installed) not set")
def test_auto_reports_timescaledb_installed_but_not_preloaded_and_on_refuses_with_the_fix(caplog):
    assert BINDIR is not None
    root = Path(tempfile.mkdtemp(prefix="pw-notpreloaded-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run(
        [*as_user, f"{BINDIR}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"
    subprocess.run(
        [*as_user, f"{BINDIR}/pg_ctl", "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with connect(dsn, autocommit=True) as conn:
            assert timescaledb_state(conn) == "not preloaded"
            with caplog.at_level(logging.WARNING, logger="store.migrate"):
                migrate(conn, timescaledb="auto")
            assert engine(conn) == "native" and conn.execute("SELECT 1").fetchone() == (1,)
            assert any("shared_preload_libraries" in r.getMessage() for r in caplog.records)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("CREATE DATABASE fresh")
        with connect(f"postgresql://postgres@127.0.0.1:{port}/fresh", autocommit=True) as conn:
            with pytest.raises(EngineError, match="shared_preload_libraries"):
                migrate(conn, timescaledb="on")
            assert not conn.closed
    finally:
        subprocess.run([*as_user, f"{BINDIR}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
