"""Read queries at scale: 50 million readings loaded with COPY, then the API's queries against the same
queries without the rollups (the hourly rollup, and each series' latest value).

On each engine asked for, what production would see: on plain PostgreSQL the rollup as ingest keeps it; on
TimescaleDB the continuous aggregate refreshed and the chunks older than 14 days compressed by running the
policies' own jobs. With both, the figures are printed side by side. TimescaleDB also shows what a late reading
costs: the same query read back at once through readings_hourly (the affected hour from raw readings, migration
0015) against refreshing the aggregate for that hour.

    python -m bench.queries [--readings 50000000] [--devices 100000] [--runs 20]
                            [--engine native|timescale|both] [--timescale-url URL]

--engine (default PLACEWATCH_BENCH_ENGINE, else native): native runs on PLACEWATCH_TEST_DATABASE_URL's server
(as make test does), timescale on --timescale-url (default PLACEWATCH_BENCH_TIMESCALE_URL), a server with
TimescaleDB preloaded; a server without it is refused, never measured as plain PostgreSQL.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from api.routers.devices import device_list_json
from bench.common import Figure, print_table
from bench.engines import add_engine_args, engines_of, print_side_by_side
from core.model import Principal
from placewatch.settings import Settings
from store import queries
from store.db import connect
from store.migrate import engine, migrate
from tests.services import TIMESCALEDB_SETTING, fresh_database, refresh_hourly

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
                """INSERT INTO readings_hourly_closed (series_id, hour, n, total, vmin, vmax)
                   SELECT series_id, date_trunc('hour', ts), count(*), sum(value), min(value), max(value)
                   FROM readings GROUP BY 1, 2"""
            )
        conn.execute(  # each device's state as ingest keeps it (migration 0026): its metrics' latest readings
            """INSERT INTO device_state AS d (device_id, max_ts, latest)
               SELECT s.device_id, max(l.ts),
                      jsonb_object_agg(s.metric, jsonb_build_object('ts', l.ts, 'value', l.value))
               FROM series s JOIN (SELECT DISTINCT ON (series_id) series_id, ts, value FROM readings
                                   ORDER BY series_id, ts DESC) l ON l.series_id = s.id
               GROUP BY s.device_id
               ON CONFLICT (device_id) DO UPDATE SET max_ts = excluded.max_ts, latest = excluded.latest"""
        )
        conn.commit()
        conn.autocommit = True
        if engine(conn) == "timescale":
            print(f"  latest values in {time.perf_counter() - t0:.0f} s", flush=True)
            run_policies(conn)
            t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  rollups and analyse in {time.perf_counter() - t0:.0f} s", flush=True)
        return int(year_series)


def run_policies(conn: psycopg.Connection) -> None:
    """TimescaleDB: run the continuous aggregate's refresh policy and the compression policy now, as their
    background jobs would have done by the time the data is this old (autocommit connection)."""
    for proc in ("policy_refresh_continuous_aggregate", "policy_compression"):
        t0 = time.perf_counter()
        for (job,) in conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s ORDER BY job_id", (proc,)
        ).fetchall():
            refresh_hourly(conn, None, None, call=f"CALL run_job({int(job)})")  # waits out the job's own run
        print(f"  {proc} job run in {time.perf_counter() - t0:.0f} s", flush=True)


def _timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm the cache: the figure is a warm, steady-state query
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def measure(admin: str | None, eng: str, a: argparse.Namespace) -> dict[str, float]:
    """Load a fresh database on this engine and time the queries (milliseconds, medians of warm runs)."""
    print(f"query bench on {eng}: {a.readings:,} readings, {a.devices:,} devices", flush=True)
    out: dict[str, float] = {}
    with fresh_database(admin) as dsn:
        with connect(dsn) as conn:
            migrate(conn, timescaledb=TIMESCALEDB_SETTING[eng])  # refuses a server that cannot give this engine
            assert engine(conn) == eng
        sid = _load(dsn, readings=a.readings, devices=a.devices)
        end = YEAR_START + timedelta(days=365)
        with connect(dsn, autocommit=True) as conn:

            def year_hourly() -> list[queries.Bucket]:
                return queries.bucket_points(
                    conn, sid, YEAR_START, end, timedelta(hours=1), zone="Europe/London", categorical=False
                )

            out["year_rollup"] = _timed(year_hourly, a.runs)
            out["year_raw"] = _timed(
                lambda: conn.execute(
                    """SELECT date_bin('1 hour', ts, '2000-01-03 00:00+00') AS k, avg(value), min(value), max(value),
                          count(value) FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s
                   GROUP BY k ORDER BY k""",
                    (sid, YEAR_START, end),
                ).fetchall(),
                max(3, a.runs // 4),
            )
            out["points"] = len(year_hourly())
            # Each device's latest readings as ingest keeps them (migration 0026: one row a device, read as JSON text
            # as the device list passes it on), and by series through the series_latest view (open data, health).
            out["latest"] = _timed(
                lambda: conn.execute("SELECT device_id, latest::text FROM device_state").fetchall(), a.runs
            )
            out["latest_series"] = _timed(
                lambda: conn.execute("SELECT device_id, metric, last_ts, last_value FROM series_latest").fetchall(),
                a.runs,
            )
            out["latest_raw"] = _timed(
                lambda: conn.execute(
                    """SELECT s.device_id, s.metric, r.ts, r.value FROM series s
                   CROSS JOIN LATERAL (SELECT ts, value FROM readings WHERE series_id = s.id
                                       ORDER BY ts DESC LIMIT 1) r"""
                ).fetchall(),
                max(3, a.runs // 4),
            )
            settings = Settings()
            out["api_devices"] = _timed(
                lambda: device_list_json(conn, ADMIN, settings, after=None, limit=None), max(3, a.runs // 4)
            )
            out["api_page"] = _timed(lambda: device_list_json(conn, ADMIN, settings, after=None, limit=1000), a.runs)
            if eng == "timescale":
                out |= _late_reading(conn, sid, year_hourly, a.runs)
    return out


def _late_reading(conn: psycopg.Connection, sid: int, year_hourly, runs: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """A late reading into a materialised (and compressed) hour mid-year: the year's hourly query read back at
    once (the hour from raw readings) against refreshing the aggregate for that hour, the other way to show it."""
    hour = YEAR_START + timedelta(days=180, hours=5)
    before = {b.ts: b for b in year_hourly()}[hour]
    conn.execute(
        "INSERT INTO readings (series_id, ts, value) VALUES (%s, %s, 99.0)", (sid, hour + timedelta(seconds=30))
    )
    pending = _timed(year_hourly, runs)
    after = {b.ts: b for b in year_hourly()}[hour]
    if (after.count, after.max) != (before.count + 1, 99.0):
        raise AssertionError(f"the late reading is not read back at once: {before} -> {after}")
    t0 = time.perf_counter()
    refresh_hourly(conn, hour, hour + timedelta(hours=1))
    refresh = (time.perf_counter() - t0) * 1000
    return {"late_pending": pending, "late_refresh": refresh}


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the query benchmark on the engines asked for and print their tables (side by side for both)."""
    ap = argparse.ArgumentParser(prog="python -m bench.queries")
    ap.add_argument("--readings", type=int, default=50_000_000)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    add_engine_args(ap)
    a = ap.parse_args(argv)
    runs = engines_of(ap, a)
    engines = [eng for eng, _ in runs]
    results = {eng: measure(admin, eng, a) for eng, admin in runs}
    figures: list[Figure] = []
    for eng, m in results.items():
        tag = f" [{eng}]" if len(engines) > 1 or eng != "native" else ""
        figures += [
            Figure(
                f"one sensor, a year in hourly buckets (rollup){tag}",
                m["year_rollup"],
                "ms",
                f"same from raw readings {m['year_raw']:,.0f} ms",
                m["year_rollup"] / m["year_raw"],
                "< 50 ms",
                m["year_rollup"] < 50,
            ),
            Figure(
                f"latest reading of every device ({a.devices:,}){tag}",
                m["latest"],
                "ms",
                f"from raw readings {m['latest_raw']:,.0f} ms",
                m["latest"] / m["latest_raw"],
                "< 200 ms",
                m["latest"] < 200,
            ),
            Figure(
                f"  the same by series (series_latest view){tag}",
                m["latest_series"],
                "ms",
                f"from raw readings {m['latest_raw']:,.0f} ms",
                m["latest_series"] / m["latest_raw"],
                "",
                None,
            ),
            Figure(
                f"GET /api/v1/devices body, all {a.devices:,} devices (admin){tag}",
                m["api_devices"],
                "ms",
                "latest-value query above",
                m["api_devices"] / m["latest"],
                "",
                None,
            ),
            Figure(
                f"GET /api/v1/devices?limit=1000 body (one page){tag}",
                m["api_page"],
                "ms",
                "all devices, above",
                m["api_page"] / m["api_devices"],
                "",
                None,
            ),
        ]
        if "late_pending" in m:
            figures.append(
                Figure(
                    f"the year's hourly buckets with a late reading pending{tag}",
                    m["late_pending"],
                    "ms",
                    f"refreshing the aggregate for its hour {m['late_refresh']:,.0f} ms",
                    m["late_pending"] / m["year_rollup"],
                    "< 50 ms",
                    m["late_pending"] < 50,
                )
            )
        print(f"  hourly points returned on {eng}: {int(m['points']):,}")
    print_table("queries", figures)
    if len(engines) > 1:
        _side_by_side(results)
    return figures


def _side_by_side(results: dict[str, dict[str, float]]) -> None:
    """The figures of both engines in one table."""
    names = {
        "year_rollup": "a year of hourly buckets (rollup), ms",
        "year_raw": "the same from raw readings, ms",
        "latest": "latest reading of every device, ms",
        "latest_series": "the same by series (series_latest), ms",
        "latest_raw": "the same from raw readings, ms",
        "api_devices": "GET /api/v1/devices body, all, ms",
        "api_page": "GET /api/v1/devices, one page, ms",
        "late_pending": "hourly buckets, a late reading pending, ms",
        "late_refresh": "refresh of that hour instead, ms",
    }
    cell = {e: {k: f"{v:,.1f}" for k, v in results[e].items()} for e in ("native", "timescale")}
    rows = [(label, cell["native"].get(key, ""), cell["timescale"].get(key, "")) for key, label in names.items()]
    print_side_by_side("queries on both engines", rows)


if __name__ == "__main__":
    main()
