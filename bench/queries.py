"""Read queries at scale: 50 million readings loaded with COPY, then the API's queries against the same
queries without the rollups (the hourly rollup, and each series' latest value).

    python -m bench.queries [--readings 50000000] [--devices 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from api.routers.devices import device_list_json
from bench.common import Figure, print_table
from core.model import Principal
from placewatch.settings import Settings
from store import queries
from store.db import connect
from store.migrate import engine, migrate
from tests.services import fresh_database

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
ADMIN = Principal(name="bench", role="admin")


def _load(dsn: str, *, readings: int, devices: int) -> int:
    """Devices with a temperature series each; one of them a year of minute readings; the rest spread over them."""
    with connect(dsn) as conn:
        cur = conn.cursor()
        with cur.copy("COPY devices (id, kind) FROM STDIN") as cp:
            for i in range(devices):
                cp.write_row((f"dev-{i:06d}", "home_sensor"))
        with cur.copy("COPY series (device_id, metric) FROM STDIN") as cp:
            for i in range(devices):
                cp.write_row((f"dev-{i:06d}", "temperature"))
        conn.commit()
        year_series = conn.execute("SELECT id FROM series WHERE device_id = 'dev-000000'").fetchone()[0]  # type: ignore[index]
        first = int(conn.execute("SELECT min(id) FROM series").fetchone()[0])  # type: ignore[index]
        year_rows = 365 * 24 * 60
        rest = max(readings - year_rows, 0)
        per_series = max(rest // max(devices - 1, 1), 1)
        step = timedelta(days=365) / per_series
        t0 = time.perf_counter()
        written = 0
        with cur.copy("COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "timestamptz", "float8"])
            for m in range(year_rows):
                cp.write_row((year_series, YEAR_START + timedelta(minutes=m), 18.0 + (m % 600) / 100))
            written += year_rows
            for k in range(1, devices):
                sid = first + k
                for j in range(per_series):
                    cp.write_row((sid, YEAR_START + step * j, 15.0 + (j % 97) / 10))
                written += per_series
                if written >= readings:
                    break
        conn.commit()
        print(f"  loaded {written:,} readings with COPY in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        if engine(conn) == "native":
            conn.execute(
                """INSERT INTO readings_hourly (series_id, hour, n, total, vmin, vmax)
                   SELECT series_id, date_trunc('hour', ts), count(*), sum(value), min(value), max(value)
                   FROM readings GROUP BY 1, 2"""
            )
        conn.execute(
            """UPDATE series s SET last_ts = l.ts, last_value = l.value FROM (
                   SELECT DISTINCT ON (series_id) series_id, ts, value FROM readings ORDER BY series_id, ts DESC) l
               WHERE s.id = l.series_id"""
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        print(f"  rollups and analyse in {time.perf_counter() - t0:.0f} s", flush=True)
        return int(year_series)


def _timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm the cache: the figure is a warm, steady-state query
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the query benchmark and print its table."""
    ap = argparse.ArgumentParser(prog="python -m bench.queries")
    ap.add_argument("--readings", type=int, default=50_000_000)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args(argv)
    print(f"query bench: {a.readings:,} readings, {a.devices:,} devices", flush=True)
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn)
        sid = _load(dsn, readings=a.readings, devices=a.devices)
        end = YEAR_START + timedelta(days=365)
        with connect(dsn, autocommit=True) as conn:
            year_rollup = _timed(
                lambda: queries.bucket_points(
                    conn, sid, YEAR_START, end, timedelta(hours=1), zone="Europe/London", categorical=False
                ),
                a.runs,
            )
            year_raw = _timed(
                lambda: conn.execute(
                    """SELECT date_bin('1 hour', ts, '2000-01-03 00:00+00') AS k, avg(value), min(value), max(value),
                          count(value) FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s
                   GROUP BY k ORDER BY k""",
                    (sid, YEAR_START, end),
                ).fetchall(),
                max(3, a.runs // 4),
            )
            n_points = len(
                queries.bucket_points(
                    conn, sid, YEAR_START, end, timedelta(hours=1), zone="Europe/London", categorical=False
                )
            )
            latest = _timed(
                lambda: conn.execute(
                    "SELECT device_id, metric, last_ts, last_value FROM series WHERE last_ts IS NOT NULL"
                ).fetchall(),
                a.runs,
            )
            latest_raw = _timed(
                lambda: conn.execute(
                    """SELECT s.device_id, s.metric, r.ts, r.value FROM series s
                   CROSS JOIN LATERAL (SELECT ts, value FROM readings WHERE series_id = s.id
                                       ORDER BY ts DESC LIMIT 1) r"""
                ).fetchall(),
                max(3, a.runs // 4),
            )
            settings = Settings()
            api_devices = _timed(
                lambda: device_list_json(conn, ADMIN, settings, after=None, limit=None), max(3, a.runs // 4)
            )
            api_page = _timed(lambda: device_list_json(conn, ADMIN, settings, after=None, limit=1000), a.runs)
    figures = [
        Figure(
            "one sensor, a year in hourly buckets (rollup)",
            year_rollup,
            "ms",
            f"same from raw readings {year_raw:,.0f} ms",
            year_rollup / year_raw,
            "< 50 ms",
            year_rollup < 50,
        ),
        Figure(
            f"latest reading of every device ({a.devices:,})",
            latest,
            "ms",
            f"from raw readings {latest_raw:,.0f} ms",
            latest / latest_raw,
            "< 200 ms",
            latest < 200,
        ),
        Figure(
            f"GET /api/v1/devices body, all {a.devices:,} devices (admin)",
            api_devices,
            "ms",
            "latest-value query above",
            api_devices / latest,
            "",
            None,
        ),
        Figure(
            "GET /api/v1/devices?limit=1000 body (one page)",
            api_page,
            "ms",
            "all devices, above",
            api_page / api_devices,
            "",
            None,
        ),
    ]
    print(f"  hourly points returned: {n_points:,}")
    print_table("queries", figures)
    return figures


if __name__ == "__main__":
    main()
