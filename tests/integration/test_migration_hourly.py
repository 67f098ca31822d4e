"""Migration 0024 on a database with data: the hourly rollup reads the same after it as before."""

from __future__ import annotations

import pytest

from store.db import connect
from store.migrate import available
from tests.services import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.engine("native")]


def test_moving_each_series_newest_hour_into_its_row_changes_nothing_readings_hourly_says():
    with fresh_database() as dsn, connect(dsn, autocommit=True) as conn:
        native = [m for m in available() if m.engine in (None, "native")]
        for m in native:
            if m.version < 24:
                conn.execute(m.path.read_text())  # type: ignore[arg-type]
        conn.execute("INSERT INTO devices (id) VALUES ('d1'), ('d2')")
        conn.execute("INSERT INTO series (device_id, metric) VALUES ('d1', 't'), ('d2', 't'), ('d1', 'rh')")
        conn.execute(
            """INSERT INTO readings_hourly (series_id, hour, n, total, vmin, vmax) VALUES
               (1, '2026-01-01 00:00Z', 2, 4, 1, 3), (1, '2026-01-01 01:00Z', 1, 5, 5, 5),
               (2, '2026-01-01 03:00Z', 3, 3, 1, 1)"""
        )
        before = conn.execute("SELECT * FROM readings_hourly ORDER BY 1, 2").fetchall()
        for m in native:
            if m.version >= 24:
                conn.execute(m.path.read_text())  # type: ignore[arg-type]
        assert conn.execute("SELECT * FROM readings_hourly ORDER BY 1, 2").fetchall() == before
        # Each series' newest hour is in its row, the older ones in the table; a series without hours has none.
        rows = conn.execute("SELECT id, hour_start IS NOT NULL, hour_n FROM series ORDER BY id").fetchall()
        assert rows == [(1, True, 1), (2, True, 3), (3, False, None)]
        assert conn.execute("SELECT series_id, n FROM readings_hourly_closed").fetchall() == [(1, 2)]
