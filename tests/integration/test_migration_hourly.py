"""Migrations 0024, 0026 and 0027 on a database with data: the hourly rollup, each series' latest reading and
when each device was last seen read the same after them as before."""

from __future__ import annotations

import pytest

from store.db import connect
from store.migrate import available
from tests.services import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.engine("native")]


def test_the_rollup_and_latest_values_read_the_same_after_the_state_leaves_the_series_rows():
    with fresh_database() as dsn, connect(dsn, autocommit=True) as conn:
        native = [m for m in available() if m.engine in (None, "native")]

        def apply(lo: int, hi: int) -> None:
            for m in native:
                if lo <= m.version < hi:
                    conn.execute(m.path.read_text())  # type: ignore[arg-type]

        apply(0, 24)
        conn.execute(
            "INSERT INTO devices (id, last_seen) VALUES ('d1', NULL), ('d2', '2026-01-01 05:00Z'), ('d3', NULL)"
        )
        conn.execute("INSERT INTO series (device_id, metric) VALUES ('d1', 't'), ('d2', 't'), ('d1', 'rh')")
        conn.execute(
            """INSERT INTO readings_hourly (series_id, hour, n, total, vmin, vmax) VALUES
               (1, '2026-01-01 00:00Z', 2, 4, 1, 3), (1, '2026-01-01 01:00Z', 1, 5, 5, 5),
               (2, '2026-01-01 03:00Z', 3, 3, 1, 1)"""
        )
        before = conn.execute("SELECT * FROM readings_hourly ORDER BY 1, 2").fetchall()
        apply(24, 26)
        assert conn.execute("SELECT * FROM readings_hourly ORDER BY 1, 2").fetchall() == before
        # The state as 0023 and 0024 kept it in the series rows: latest values (one a label), when last seen.
        conn.execute(
            """UPDATE series SET last_ts = '2026-01-01 01:30Z', last_value = 5, seen_at = '2026-01-01 01:31Z'
               WHERE id = 1"""
        )
        conn.execute("UPDATE series SET last_ts = '2026-01-01 03:10Z', last_label = 'wet' WHERE id = 2")
        seen_before = conn.execute("SELECT id, last_seen FROM device_seen ORDER BY id").fetchall()
        apply(26, 10_000)
        assert conn.execute("SELECT * FROM readings_hourly ORDER BY 1, 2").fetchall() == before
        assert conn.execute("SELECT id, last_seen FROM device_seen ORDER BY id").fetchall() == seen_before
        latest = conn.execute(
            "SELECT id, last_ts::text, last_value, last_label FROM series_latest ORDER BY id"
        ).fetchall()
        assert latest == [(1, "2026-01-01 01:30:00+00", 5.0, None), (2, "2026-01-01 03:10:00+00", None, "wet")]
        # Every hour is closed now, the series' current ones too; the watermark starts at the current hour.
        assert conn.execute("SELECT series_id, hour, n FROM readings_hourly_closed ORDER BY 1, 2").fetchall() == [
            (r[0], r[1], r[2]) for r in before
        ]
        wm = conn.execute("SELECT wm FROM hourly_watermark").fetchone()[0]
        assert wm > before[-1][1] and wm == wm.replace(minute=0, second=0, microsecond=0)
        columns = {r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'series'::regclass")}
        assert not columns & {"last_ts", "last_value", "seen_at", "prev_ts", "hour_start", "hour_n", "closed_hour"}
