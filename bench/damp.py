"""Damp sweep: one DampEvaluator sweep over 100,000 homes with 30 days of hourly readings each.

Method: a fresh database (created and dropped here) on the PostgreSQL at PLACEWATCH_BENCH_DATABASE_URL
(default: the local server), plain PostgreSQL migrations; homes, devices and series loaded with COPY; the
hourly rollup (readings_hourly: what the evaluator reads) written with binary COPY, hour by hour across all
series as ingest's rollup lays it out, not clustered by series. Each home has one room sensor
(temperature and humidity, 720 hourly means each) and an outdoor feed from one of `--stations` road
stations. Households are a mix: most dry and warm, some cold and damp, some borderline, some whose
sensor has been silent for the last 8 days. Then one sweep, timed, with a counting stand-in for the
MQTT publisher (the broker is not what is measured), at a fixed January time so every rule applies.

On TimescaleDB (--engine timescale or both, on --timescale-url, default PLACEWATCH_BENCH_TIMESCALE_URL) the hourly
rollup is a continuous aggregate: the same means are written as raw readings (one a series and hour, the value the
mean), the aggregate is refreshed as its policy does, and closed days are packed from readings_hourly as the
scheduler's leader does on both engines. With both engines the results (levels, cases) must agree and the figures
are printed side by side.

    python -m bench.damp [--homes 100000] [--workers 2] [--chunk 1000] [--sweeps 1] [--keep] [--database NAME --reset]
                         [--engine native|timescale|both] [--timescale-url URL]

Target: 100,000 homes in about 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pydantic import SecretStr

from alerts.context import AlertContext
from alerts.damp import DampEvaluator
from bench.engines import add_engine_args, engines_of, print_side_by_side
from placewatch.settings import Settings
from store import hourly_days, rollup
from store.db import connect, open_pool
from store.migrate import engine as store_engine
from store.migrate import migrate
from tests.services import TIMESCALEDB_SETTING, refresh_hourly

ADMIN_DSN = os.environ.get("PLACEWATCH_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2027, 1, 20, 10, 10, tzinfo=UTC)  # heating season: every rule applies
DAYS = 30
TARGET_S = 60.0
PROFILES = {  # share, indoor temperature C (low, high), humidity % (low, high)
    "warm_dry": (0.60, (19.5, 22.0), (42.0, 56.0)),
    "borderline": (0.15, (18.5, 20.5), (58.0, 66.0)),
    "cold": (0.05, (15.0, 17.0), (48.0, 56.0)),
    "cold_damp": (0.15, (14.5, 17.0), (74.0, 86.0)),
    "silent": (0.05, (19.5, 21.5), (45.0, 55.0)),  # sensor silent for the last 8 days
}
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_ROW = np.dtype(
    [
        ("nf", ">i2"),
        ("l1", ">i4"),
        ("sid", ">i4"),
        ("l2", ">i4"),
        ("hour", ">i8"),
        ("l3", ">i4"),
        ("n", ">i8"),
        ("l4", ">i4"),
        ("total", ">f8"),
        ("l5", ">i4"),
        ("vmin", ">f8"),
        ("l6", ">i4"),
        ("vmax", ">f8"),
    ]
)
_RAW_ROW = np.dtype(
    [("nf", ">i2"), ("l1", ">i4"), ("sid", ">i4"), ("l2", ">i4"), ("ts", ">i8"), ("l3", ">i4"), ("value", ">f8")]
)


class CountingPublisher:
    """Stands in for AlertPublisher: counts what would be published."""

    def __init__(self) -> None:
        self.sent = 0
        self.cleared = 0

    def publish(self, kind: str, ident: str, body: dict[str, Any] | None, *, timeout: float = 10.0) -> bool:
        """Count one alert."""
        if body is None:
            self.cleared += 1
        else:
            self.sent += 1
        return True


def _dsn_for(name: str, admin: str = ADMIN_DSN) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **info)


def _copy_text(conn: psycopg.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor().copy(sql) as copy:
        for r in rows:
            copy.write_row(r)


def _registry(conn: psycopg.Connection, homes: int, stations: int, profile: np.ndarray) -> dict[str, np.ndarray]:
    """Homes, devices and series by COPY; the series ids of each home's sensor and station."""
    names = list(PROFILES)
    station_ids = [f"bench-station-{i:04d}" for i in range(stations)]
    home_ids = [f"bench-home-{i:06d}" for i in range(homes)]
    _copy_text(
        conn,
        "COPY devices (id, kind, name) FROM STDIN",
        [(s, "road_station", f"Bench station {i}") for i, s in enumerate(station_ids)],
    )
    _copy_text(
        conn,
        "COPY homes (id, address, patch, outdoor, properties) FROM STDIN",
        [
            (
                h,
                f"{i + 1} Bench Street",
                f"patch-{i % 40:02d}",
                station_ids[i % stations],
                f'{{"bench_profile": "{names[profile[i]]}"}}',
            )
            for i, h in enumerate(home_ids)
        ],
    )
    _copy_text(
        conn,
        "COPY devices (id, kind, home_id, room, expected_interval_s) FROM STDIN",
        [(f"bench-sensor-{i:06d}", "home_sensor", h, "bedroom", 300) for i, h in enumerate(home_ids)],
    )
    wanted = [(s, "air_temperature") for s in station_ids]
    wanted += [(f"bench-sensor-{i:06d}", m) for i in range(homes) for m in ("temperature", "relative_humidity")]
    _copy_text(conn, "COPY series (device_id, metric) FROM STDIN", wanted)
    ids = {(d, m): sid for sid, d, m in conn.execute("SELECT id, device_id, metric FROM series")}
    return {
        "station": np.array([ids[(s, "air_temperature")] for s in station_ids], dtype=np.int32),
        "temperature": np.array([ids[(f"bench-sensor-{i:06d}", "temperature")] for i in range(homes)], dtype=np.int32),
        "humidity": np.array(
            [ids[(f"bench-sensor-{i:06d}", "relative_humidity")] for i in range(homes)], dtype=np.int32
        ),
    }


def _load_hours(
    dsn: str, hour_indices: list[int], start_us: int, arrays: dict[str, np.ndarray], raw: bool = False
) -> int:
    """Binary COPY of the hourly rollup rows of these hours, for every series (one loader process); with `raw`
    (TimescaleDB, where the rollup is a continuous aggregate) one raw reading a series and hour, the mean."""
    t_sid, rh_sid, st_sid = arrays["temperature"], arrays["humidity"], arrays["station"]
    t_base, rh_base, phase, silent_from = arrays["t_base"], arrays["rh_base"], arrays["phase"], arrays["silent_from"]
    st_base = arrays["st_base"]
    homes = len(t_sid)
    rows = 0
    with connect(dsn, autocommit=True) as conn:
        target = "readings (series_id, ts, value)" if raw else "readings_hourly_closed"
        with conn.cursor().copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_HEADER)
            for h in hour_indices:
                rng = np.random.default_rng(h)
                hod = h % 24
                day = np.sin(2 * np.pi * (hod - 9) / 24)  # warmest mid-afternoon
                weather = 2.0 * np.sin(2 * np.pi * h / (24 * 4.3))
                alive = h < silent_from
                n_alive = int(alive.sum())
                t = t_base + 0.8 * day + 0.3 * rng.standard_normal(homes)
                rh = (
                    rh_base - 3.0 * day + 0.3 * weather + 1.5 * rng.standard_normal(homes) + 2.0 * np.sin(phase + h / 7)
                )
                rh = np.clip(rh, 5.0, 99.0)
                st = st_base + 3.0 * day + weather + 0.5 * rng.standard_normal(len(st_sid))
                sid = np.concatenate([t_sid[alive], rh_sid[alive], st_sid])
                mean = np.concatenate([t[alive], rh[alive], st])
                if raw:
                    one = np.zeros(len(sid), dtype=_RAW_ROW)
                    one["nf"], one["l1"], one["l2"], one["l3"] = 3, 4, 8, 8
                    one["sid"], one["ts"], one["value"] = sid, start_us + h * 3_600_000_000, mean
                    copy.write(one.tobytes())
                    rows += len(one)
                    continue
                block = np.zeros(2 * n_alive + len(st_sid), dtype=_ROW)
                block["nf"] = 6
                block["l1"] = 4
                block["sid"] = sid
                block["l2"] = block["l3"] = block["l4"] = block["l5"] = block["l6"] = 8
                block["hour"] = start_us + h * 3_600_000_000
                block["n"] = 12
                block["total"] = 12 * mean
                block["vmin"] = mean - 0.3
                block["vmax"] = mean + 0.3
                copy.write(block.tobytes())
                rows += len(block)
            copy.write(b"\xff\xff")
    return rows


def _create_chunks(conn: psycopg.Connection, series_id: int, start: datetime, end: datetime) -> None:
    """TimescaleDB: create every chunk of readings that [start, end) falls in, committed before the loaders start.

    A transaction that creates a chunk keeps it locked (ShareUpdateExclusiveLock) until it commits, so a loader
    whose rows fall in a chunk that another loader's COPY created waits for that whole COPY (one transaction) to
    end. Meanwhile its backend reads nothing, the loader's unsent rows fill the socket, and after 30 s without an
    acknowledgement the loader's kernel resets the connection (tcp_user_timeout in store.db.CONNECT_KWARGS): the
    waiting backend then reads the rows it had received (about 3,856) and meets the reset. With the chunks already
    there, the loaders take no lock that conflicts and run side by side. One reading an hour, removed again in the
    same transaction: the chunks stay, empty."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT %s, g, 0 FROM generate_series("
            "%s::timestamptz, %s::timestamptz, interval '1 hour') g",
            (series_id, start, end - timedelta(hours=1)),
        )
        conn.execute("DELETE FROM readings WHERE series_id = %s", (series_id,))


def build(dsn: str, homes: int, stations: int, loaders: int, engine: str = "native") -> dict[str, Any]:
    """Create the registry and the 30 days of hourly means; return the profile of each home and timings."""
    rng = np.random.default_rng(2027)
    names = list(PROFILES)
    shares = np.array([PROFILES[n][0] for n in names])
    profile = rng.choice(len(names), size=homes, p=shares / shares.sum())
    t_base = np.empty(homes)
    rh_base = np.empty(homes)
    for i, n in enumerate(names):
        sel = profile == i
        (t0, t1), (r0, r1) = PROFILES[n][1], PROFILES[n][2]
        t_base[sel] = rng.uniform(t0, t1, sel.sum())
        rh_base[sel] = rng.uniform(r0, r1, sel.sum())
    hours = DAYS * 24
    end = NOW.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    silent_from = np.where(profile == names.index("silent"), hours - 8 * 24, hours)

    t0 = time.perf_counter()
    raw = engine == "timescale"
    with connect(dsn, autocommit=True) as conn:
        migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])  # refuses a server that cannot give this engine
        assert store_engine(conn) == engine
        series = _registry(conn, homes, stations, profile)
        if not raw:
            # A load, not a measurement: no WAL for the rollup and its key built once at the end.
            conn.execute("ALTER TABLE readings_hourly_closed SET UNLOGGED")
            conn.execute("ALTER TABLE readings_hourly_closed DROP CONSTRAINT readings_hourly_closed_pkey")
    t_registry = time.perf_counter() - t0
    arrays = series | {
        "t_base": t_base,
        "rh_base": rh_base,
        "phase": rng.uniform(0, 2 * np.pi, homes),
        "silent_from": silent_from,
        "st_base": rng.uniform(2.0, 6.0, stations),
    }
    start_us = int((start - _PG_EPOCH).total_seconds()) * 1_000_000
    if raw:
        with connect(dsn, autocommit=True) as conn:
            _create_chunks(conn, int(series["station"][0]), start, end)
    parts = [list(range(hours))[i::loaders] for i in range(loaders)]
    t1 = time.perf_counter()
    with ProcessPoolExecutor(loaders, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = sum(
            pool.map(_load_hours, [dsn] * loaders, parts, [start_us] * loaders, [arrays] * loaders, [raw] * loaders)
        )
    t_copy = time.perf_counter() - t1
    t2 = time.perf_counter()
    with connect(dsn, autocommit=True) as conn:
        if raw:
            # What the refresh policy has done by NOW (an hour behind it); NOW is ahead of the wall clock, so the
            # policy's own job, which is relative to the clock, would stop short.
            refresh_hourly(conn, None, end)
            conn.execute("VACUUM ANALYZE")
            size = conn.execute(
                "SELECT pg_size_pretty(hypertable_size('readings') + hypertable_size(format("
                "'_timescaledb_internal._materialized_hypertable_%s', (SELECT mat_hypertable_id FROM "
                "_timescaledb_catalog.continuous_agg WHERE user_view_name = 'readings_hourly_cagg'))::regclass))"
            ).fetchone()
        else:
            conn.execute("ALTER TABLE readings_hourly_closed ADD PRIMARY KEY (series_id, hour)")
            # The loaded hours are read from readings_hourly_closed once the rollup's watermark has passed them,
            # as the scheduler's move would have by NOW.
            rollup.advance(conn, end, lag=timedelta(0))
            conn.execute("VACUUM ANALYZE")
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('readings_hourly_closed'))").fetchone()
    t_index = time.perf_counter() - t2
    return {
        "profile": Counter(names[p] for p in profile),
        "rows": rows,
        "registry_s": t_registry,
        "copy_s": t_copy,
        "index_s": t_index,
        "size": size[0] if size else "?",
    }


class BackendCpu:
    """CPU seconds used by the PostgreSQL backends serving a database, sampled from /proc (local server only)."""

    def __init__(self, dsn: str, dbname: str) -> None:
        self.dsn, self.dbname = dsn, dbname
        self.seen: dict[int, float] = {}
        self.available = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float | None:
        """The total, or None when the server's processes cannot be read."""
        return sum(self.seen.values()) if self.available else None

    def _run(self) -> None:
        with connect(self.dsn, autocommit=True) as conn:
            while True:
                pids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (self.dbname,),
                    )
                ]
                for pid in pids:
                    try:
                        self.seen[pid] = cpu_seconds(pid)
                    except FileNotFoundError:
                        pass  # the backend ended between the listing and the reading
                    except (OSError, IndexError, ValueError):
                        self.available = False  # not a local server, or not ours to read
                if self._stop.wait(0.25):
                    return


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process (from /proc); with `reaped_children`, of its children that it has
    waited for too."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu() -> dict[int, float]:
    """CPU seconds of each living child of this process, with the children it has waited for: the sweep's workers
    are forked from a fork server (alerts.damp._worker_context), a child of ours, not children of ours."""
    out: dict[int, float] = {}
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == me:
                pid = int(stat.parent.name)
                out[pid] = cpu_seconds(pid, reaped_children=True)
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile
    return out


def sweep(dsn: str, dbname: str, workers: int, chunk: int, sweeps: int) -> list[dict[str, Any]]:
    """Run DampEvaluator sweeps at NOW; the figures of each, with the CPU seconds of every process involved."""
    settings = Settings(database_url=SecretStr(dsn))
    pool = open_pool(dsn, max_size=2)
    publisher = CountingPublisher()
    ctx = AlertContext(settings=settings, pool=pool, publisher=publisher, now=lambda: NOW)  # type: ignore[arg-type]
    evaluator = DampEvaluator(settings, workers=workers, chunk_homes=chunk)
    evaluator.wait_ready()  # its fork server starts with the service, long before a running service's first sweep
    out = []
    try:
        for _ in range(sweeps):
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            self0 = resource.getrusage(resource.RUSAGE_SELF)
            living0 = children_cpu()
            load = os.getloadavg()[0]
            with BackendCpu(dsn, dbname) as server:
                t0 = time.perf_counter()
                evaluator.sweep(ctx)
                seconds = time.perf_counter() - t0
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            self1 = resource.getrusage(resource.RUSAGE_SELF)
            python_cpu = (
                (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime)
                + (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime)
                + sum(cpu - living0.get(pid, 0.0) for pid, cpu in children_cpu().items())
            )
            out.append(
                (evaluator.last_sweep or {})
                | {"wall_s": seconds, "python_cpu_s": python_cpu, "server_cpu_s": server.seconds, "load": load}
            )
        with pool.connection() as conn:
            levels: dict[str, int] = dict(
                conn.execute("SELECT level, count(*) FROM damp_home_state GROUP BY 1 ORDER BY 1").fetchall()
            )
            cases = conn.execute("SELECT count(*) FROM damp_cases").fetchone()
        if out:
            out[-1] |= {"levels": levels, "cases": cases[0] if cases else 0, "published": publisher.sent}
    finally:
        pool.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Build, sweep, report, drop; on each engine asked for, then both side by side."""
    ap = argparse.ArgumentParser(prog="python -m bench.damp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--homes", type=int, default=100_000)
    ap.add_argument("--stations", type=int, default=200)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="evaluator processes (default: cores)")
    ap.add_argument("--chunk", type=int, default=1000, help="homes per evaluation chunk")
    ap.add_argument("--sweeps", type=int, default=1, help="sweeps to run (the second shows the steady state)")
    ap.add_argument("--loaders", type=int, default=2, help="COPY processes for the data")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards (its name is printed)")
    ap.add_argument("--database", help="sweep a database kept by an earlier --keep run instead of building one")
    ap.add_argument("--reset", action="store_true", help="with --database: forget earlier sweeps' results first")
    add_engine_args(ap)
    args = ap.parse_args(argv)
    runs = engines_of(ap, args)
    engines = [eng for eng, _ in runs]
    if args.database and len(engines) > 1:
        ap.error("--database sweeps one kept database: give its --engine")
    if args.database and not args.database.startswith("pw_bench_damp_"):
        ap.error("--database must name a pw_bench_damp_* database")
    done = {eng: run(args, eng, admin or ADMIN_DSN) for eng, admin in runs}
    if len(done) > 1:
        native, timescale = done["native"], done["timescale"]
        rows = [
            (label, f"{native.get(key, 0):.1f}", f"{timescale.get(key, 0):.1f}")
            for key, label in (
                ("first_s", "first sweep, s"),
                ("first_idle_s", "first sweep's CPU over 2 idle cores, s"),
                ("last_s", "last sweep, s"),
                ("target_s", "target, s"),
            )
        ]
        rows += [(key, str(native.get(key)), str(timescale.get(key))) for key in ("levels", "cases")]
        print_side_by_side("damp sweep on both engines", rows)
        same = native.get("levels") == timescale.get("levels") and native.get("cases") == timescale.get("cases")
        print(f"\nsame levels and cases on both engines: {'yes' if same else 'NO'}")
        if not same:
            return 1
    return 0


def run(args: argparse.Namespace, engine: str, admin: str) -> dict[str, Any]:
    """Build (or reuse), pack as the engine's leader would, sweep and report on one engine; its summary."""
    summary: dict[str, Any] = {}
    name = args.database or f"pw_bench_damp_{uuid.uuid4().hex[:8]}"
    dsn = _dsn_for(name, admin)
    if not args.database:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    print(f"\n==== damp sweep on {engine}")
    try:
        if not args.database:
            print(f"database {name}: {args.homes:,} homes x {DAYS} days of hourly means, {args.stations} stations")
            sys.stdout.flush()
            built = build(dsn, args.homes, args.stations, args.loaders, engine)
            print(
                f"loaded {built['rows']:,} hourly rows ({built['size']}) in {built['copy_s']:.0f} s COPY "
                f"+ {built['index_s']:.0f} s key and analyse (registry {built['registry_s']:.1f} s); "
                f"households: {dict(built['profile'])}"
            )
            sys.stdout.flush()
        if args.database:
            with connect(dsn, autocommit=True) as conn:
                migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])  # migrations added since it was built
                if args.reset:
                    conn.execute("TRUNCATE damp_case_events, damp_cases, damp_home_state, damp_assessments")
        # What the scheduler's leader does as days close (store.hourly_days): here every due day at once.
        with connect(dsn, autocommit=True) as conn:
            if store_engine(conn) != engine:
                raise SystemExit(f"database {name} was built on {store_engine(conn)}, not {engine}")
        with connect(dsn, autocommit=True) as conn:
            t0 = time.perf_counter()
            packed = hourly_days.pack(conn, NOW, max_seconds=3600.0)
            conn.execute("VACUUM ANALYZE hourly_days")
            print(f"packed {packed.days} closed days (store.hourly_days) in {time.perf_counter() - t0:.0f} s")
            sys.stdout.flush()
        results = sweep(dsn, name, args.workers, args.chunk, args.sweeps)
        for i, r in enumerate(results, start=1):
            homes_s = r["homes"] / r["wall_s"] if r["wall_s"] else 0.0
            print(
                f"\nsweep {i}: {r['homes']:,} homes in {r['wall_s']:.1f} s = {homes_s:,.0f} homes/s "
                f"({args.workers} worker process{'es' if args.workers > 1 else ''}, chunks of {args.chunk}; "
                f"load average {r['load']:.1f} when it started)\n"
                f"  {r['hourly_rows']:,} hourly rows read; {r['assessments_stored']:,} assessments stored; "
                f"{r['cases_opened']:,} cases opened; {r['alerts_published']:,} alerts "
                f"(judging and storing {r['judging_seconds']:.1f} s, escalating and publishing "
                f"{r['seconds'] - r['judging_seconds']:.1f} s)"
            )
            server = r["server_cpu_s"]
            cpu = r["python_cpu_s"] + (server or 0.0)
            print(
                f"  CPU: {r['python_cpu_s']:.1f} s in Python (evaluator processes), "
                + (f"{server:.1f} s in PostgreSQL; " if server is not None else "PostgreSQL not measured; ")
                + f"{cpu / r['homes'] * 1000:.2f} ms of CPU a home; {cpu / 2:.1f} s on 2 otherwise idle cores"
            )
            if r.get("worker_peak_rss_mb"):
                print(f"  peak RSS of a worker process: {r['worker_peak_rss_mb']:.0f} MB")
        if results:
            last, first = results[-1], results[0]
            print(f"\nlevels: {last['levels']}; cases: {last['cases']:,}")
            print(
                f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
                "(it also built the data)"
            )
            target = TARGET_S * first["homes"] / 100_000
            verdict = "within" if first["wall_s"] <= target else "over"
            idle = (first["python_cpu_s"] + (first["server_cpu_s"] or 0.0)) / 2
            print(
                f"target: {TARGET_S:.0f} s for 100,000 homes on 2 cores, so {target:.1f} s for {first['homes']:,}; "
                f"first sweep {first['wall_s']:.1f} s, {verdict} ({engine}); its CPU over 2 otherwise idle cores "
                f"{idle:.1f} s (load average {first['load']:.1f}: on a busy machine compare this)"
            )
            summary = {
                "first_s": first["wall_s"],
                "first_idle_s": idle,
                "last_s": last["wall_s"],
                "target_s": target,
                "levels": last["levels"],
                "cases": last["cases"],
            }
    finally:
        if args.keep or args.database:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return summary


if __name__ == "__main__":
    sys.exit(main())
