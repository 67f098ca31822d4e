"""The ingest writer alone on a live stream's batches: PostgreSQL's share of ingest without MQTT in the way.

A council's stream as store.writer sees it: every message of a batch from another device, one reading time each,
2 or 3 values (bench/peers/stream.py's shape). The devices are registered, then each sends once (the warm-up: the
series and the state a running deployment has), then `--rounds` rounds in which every device sends again, in
batches of `--batch` messages (what 200 ms of a 5,000 msg/s stream holds). For the measured rounds: the client's
CPU (this thread: packing the rows) and its PostgreSQL backend's (from /proc), per 1,000 messages, with the
cores and the load; then EXPLAIN (ANALYZE, BUFFERS) of one more batch's statements, statement by statement.

    python -m bench.ingest_writer [--devices 50000] [--batch 1000] [--rounds 2] [--explain]
    python -m bench.ingest_writer --devices 20000 --compare   # as shipped, without state, as before (0026)
    python -m bench.ingest_writer --passes   # the writer's own passes over a batch, one against the general ones

On plain PostgreSQL the stream's readings are after the hourly rollup's watermark (as a live stream's are), and
the figure includes moving the watermark over the hours they fill afterwards (store.rollup), per 1,000 messages.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta

from bench.common import cpu_seconds, load_now
from store import rollup
from store.db import connect
from store.writer import Batch, FastRows, Writer, _device_rows
from tests.services import fresh_database

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)


def stream_batches(devices: list[str], *, batch: int, start_us: int) -> list[Batch]:
    """One round of the stream: every device once, in batches of `batch` messages. Device k's reading time is
    start + its own phase within the hour (devices are not in step), so when rounds are an interval apart, the
    same share of the devices, interval / 1 hour, reaches a new hour in every round: what a council's stream does
    on average (every device's state rolls over to a new hour once an hour)."""
    order = list(range(len(devices)))
    random.Random(len(devices)).shuffle(order)
    out: list[Batch] = []
    for i in range(0, len(order), batch):
        fast: FastRows = []
        seen: dict[str, datetime] = {}
        for k in order[i : i + batch]:
            us = start_us + (k * 7_919 % 3_600_000) * 1_000  # a phase within the hour, in milliseconds
            rows = [("temperature", us, 17.0 + k % 600 / 100), ("relative_humidity", us, 40.0 + k % 350 / 10)]
            if k % 3 == 0:
                rows.append(("battery", us, float(100 - k % 50)))
            dev = devices[k]
            fast.append((dev, rows))
            seen[dev] = datetime.fromtimestamp(us / 1e6, UTC)
        out.append(Batch(fast=fast, seen=seen))
    return out


def prepare(dsn: str, devices: int) -> list[str]:
    """Migrate, register `devices` home sensors; their ids."""
    from store.migrate import migrate

    ids = [f"bench-w-{i:06d}" for i in range(devices)]
    with connect(dsn) as conn:
        migrate(conn, timescaledb="off")
    with connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (id, kind) SELECT unnest(%s::text[]), 'home_sensor'",
            (ids,),
        )
        conn.execute("VACUUM ANALYZE devices")
    return ids


def _start_us(rounds: int, interval_s: float) -> int:
    """The warm-up round's start: far enough back that every measured round, phases included, is before now."""
    back = (rounds + 2) * interval_s + 3600
    return (datetime.now(UTC) - _UNIX) // timedelta(microseconds=1) - int(back * 1e6)


def _writer(conn, engine: str = "native") -> Writer:  # type: ignore[no-untyped-def]
    # The times are in the past (up to a few hours): a live stream's readings are not late, so nothing is.
    return Writer(conn, engine=engine, late_after_s=10**9)


def measure(dsn: str, ids: list[str], *, batch: int, rounds: int, interval_s: float, explain: bool) -> dict[str, float]:
    """Warm up one round, then `rounds` measured rounds; core-ms per 1,000 messages, client and backend."""
    conn = connect(dsn, autocommit=True)
    writer = _writer(conn)
    backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    start = _start_us(rounds, interval_s)
    step = int(interval_s * 1e6)
    _live(conn, start)
    for b in stream_batches(ids, batch=batch, start_us=start):
        writer.write(b)
    work = [stream_batches(ids, batch=batch, start_us=start + (r + 1) * step) for r in range(rounds)]
    messages = sum(len(b.fast) for bs in work for b in bs)
    pg0, c0, t0 = cpu_seconds(backend), time.thread_time(), time.perf_counter()
    for bs in work:
        for b in bs:
            writer.write(b)
    client, pg, wall = time.thread_time() - c0, cpu_seconds(backend) - pg0, time.perf_counter() - t0
    if explain:
        _explain(conn, ids, batch=batch, start_us=start + (rounds + 1) * step)
    # The rollup's move over every hour the rounds filled (warm-up included), per 1,000 of all their messages.
    rolled = 0.0
    if rollup.watermark(conn) is not None:
        pg1 = cpu_seconds(backend)
        rollup.advance(conn, datetime.now(UTC), lag=timedelta(0))
        rolled = (cpu_seconds(backend) - pg1) * 1e6 / (messages + len(ids))
    conn.close()
    time.sleep(1.0)  # the backend's table statistics reach the cumulative views when it ends
    with connect(dsn, autocommit=True) as c:
        for row in c.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname IN ('device_state', 'series', 'readings', 'readings_hourly_closed') ORDER BY relname"
        ):
            print(f"  {row[0]}: {row[1]:,} inserted, {row[2]:,} updated, {row[3]:,} of them in place (HOT)")
    k = 1e6 / messages
    return {"client": client * k, "pg": pg * k, "msgs_s": messages / wall, "messages": messages, "rollup": rolled}


def passes(dsn: str, ids: list[str], *, batch: int, repeats: int = 5) -> dict[str, float]:
    """The writer's own work on a live round's batches, without the database: µs of this thread per message for
    Writer._live (one pass) and for the general passes (_pack, _states, _device_rows) on the same batches, best of
    `repeats`, interleaved. Both give the same data (tests/integration/test_writer.py)."""
    conn = connect(dsn, autocommit=True)
    writer = _writer(conn)
    start = _start_us(1, 300.0)
    _live(conn, start)
    for b in stream_batches(ids, batch=batch, start_us=start):  # series made and cached
        writer.write(b)
    work = stream_batches(ids, batch=batch, start_us=start + 300_000_000)
    conn.close()

    def general(b: Batch) -> object:
        states, first = writer._states(b, {}, None)
        return writer._pack(b, {}), sorted(states), _device_rows(states), first

    ways = {
        "one pass (Writer._live)": lambda b: writer._live(b.fast, {}),
        "general (_pack, _states, _device_rows)": general,
    }
    best = {name: float("inf") for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            t0 = time.thread_time()
            for b in work:
                assert way(b) is not None
            best[name] = min(best[name], (time.thread_time() - t0) * 1e6 / len(ids))
    return best


def _live(conn, start_us: int) -> None:  # type: ignore[no-untyped-def]
    """Plain PostgreSQL: the rollup's watermark at the stream's first hour, as for a live stream's readings."""
    if rollup.watermark(conn) is not None:
        start = _UNIX + timedelta(microseconds=start_us)
        conn.execute("UPDATE hourly_watermark SET wm = date_trunc('hour', %s::timestamptz)", (start,))


# The state as kept before migration 0026, for a reference in the same run: one row of state per series (its latest
# value, seen_at, prev_ts and its current hour), updated by the statement below (store/writer.py as it was, its
# stream statement: every series of a batch once), in a table of the bench's own with the columns series had.
_B_STALE = """
, stale AS (
  -- A day of the rollup that may be packed already (store.hourly_days: days are packed 30 hours after they end)
  -- is marked stale in this same transaction, so it is packed again; rare: only readings over 24 hours late.
  INSERT INTO hourly_days AS d (series_id, day, means, version)
  SELECT DISTINCT series_id, (hour AT TIME ZONE 'UTC')::date, NULL::bytea, 1 FROM r
  WHERE value IS NOT NULL AND hour < now() - make_interval(secs => %(mark_s)s)
  ON CONFLICT (series_id, day) DO UPDATE SET means = NULL, version = d.version + 1)"""
_B_HOUR_SET = """,
    hour_start = greatest(s.hour_start, l.hour),
    hour_n = CASE WHEN s.hour_start IS NULL OR s.hour_start < l.hour THEN l.n
                  WHEN s.hour_start = l.hour THEN s.hour_n + l.n ELSE s.hour_n END,
    hour_total = CASE WHEN s.hour_start IS NULL OR s.hour_start < l.hour THEN coalesce(l.total, 0)
                      WHEN s.hour_start = l.hour THEN s.hour_total + coalesce(l.total, 0) ELSE s.hour_total END,
    hour_min = CASE WHEN s.hour_start IS NULL OR s.hour_start < l.hour THEN l.vmin
                    WHEN s.hour_start = l.hour THEN least(s.hour_min, l.vmin) ELSE s.hour_min END,
    hour_max = CASE WHEN s.hour_start IS NULL OR s.hour_start < l.hour THEN l.vmax
                    WHEN s.hour_start = l.hour THEN greatest(s.hour_max, l.vmax) ELSE s.hour_max END,
    closed_hour = CASE WHEN s.hour_start < l.hour THEN s.hour_start END,
    closed_n = CASE WHEN s.hour_start < l.hour THEN s.hour_n END,
    closed_total = CASE WHEN s.hour_start < l.hour THEN s.hour_total END,
    closed_min = CASE WHEN s.hour_start < l.hour THEN s.hour_min END,
    closed_max = CASE WHEN s.hour_start < l.hour THEN s.hour_max END"""
_B_HOUR_RETURNING = """, s.closed_hour, s.closed_n, s.closed_total, s.closed_min, s.closed_max,
            l.hour, l.n, l.total, l.vmin, l.vmax, l.hour < s.hour_start AS newest_closed"""
_B_CLOSED = """
, closed AS (
  INSERT INTO readings_hourly_closed AS h (series_id, hour, n, total, vmin, vmax)
  SELECT series_id, hour, sum(n), sum(total), min(vmin), max(vmax) FROM (
    SELECT series_id, hour, count(value) AS n, sum(value) AS total, min(value) AS vmin, max(value) AS vmax
    FROM r WHERE hour < date_trunc('hour', last_ts) GROUP BY 1, 2
    UNION ALL
    SELECT series_id, closed_hour, closed_n, closed_total, closed_min, closed_max FROM upd WHERE closed_hour IS NOT NULL
    UNION ALL
    SELECT series_id, hour, n, total, vmin, vmax FROM upd WHERE newest_closed
  ) x WHERE n > 0 GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (series_id, hour) DO UPDATE SET
    n = h.n + excluded.n, total = h.total + excluded.total,
    vmin = least(h.vmin, excluded.vmin), vmax = greatest(h.vmax, excluded.vmax))"""
_B_SINGLE = """
, l AS (
  SELECT series_id, ts, ts AS first_ts, date_trunc('hour', ts) AS hour, value, label,
         (value IS NOT NULL)::int AS n, value AS total, value AS vmin, value AS vmax
  FROM ins
), r AS (
  SELECT series_id, hour, value, ts AS last_ts FROM l
)"""
_B_AFTER = """
, upd AS (
  UPDATE bench_series_state s SET
    last_ts = CASE WHEN s.last_ts IS NULL OR s.last_ts < l.ts THEN l.ts ELSE s.last_ts END,
    last_value = CASE WHEN s.last_ts IS NULL OR s.last_ts < l.ts THEN l.value ELSE s.last_value END,
    last_label = CASE WHEN s.last_ts IS NULL OR s.last_ts < l.ts THEN l.label ELSE s.last_label END,
    prev_ts = s.last_ts,
    seen_at = greatest(s.seen_at, %(seen)s::timestamptz){hour_set}
  FROM l WHERE s.id = l.series_id
  RETURNING s.id AS series_id, s.device_id, l.first_ts, l.ts,
            coalesce(s.prev_ts >= l.first_ts, false) AS late{hour_returning}
){closed}{stale}
, touched AS (
  SELECT device_id, min(first_ts) AS start_ts, max(ts) AS end_ts,
         bool_or(late OR first_ts < now() - make_interval(secs => %(late_s)s)) AS late
  FROM upd GROUP BY device_id
), late AS (
  INSERT INTO late_windows (device_id, start_ts, end_ts)
  SELECT device_id, start_ts, end_ts FROM touched WHERE late
)
SELECT (SELECT count(*) FROM ins), {devices}
"""

_BEFORE_STATE = """CREATE TABLE IF NOT EXISTS bench_series_state (
    id integer PRIMARY KEY, device_id text NOT NULL, last_ts timestamptz, last_value double precision,
    last_label text, seen_at timestamptz, prev_ts timestamptz,
    hour_start timestamptz, hour_n bigint, hour_total double precision, hour_min double precision,
    hour_max double precision, closed_hour timestamptz, closed_n bigint, closed_total double precision,
    closed_min double precision, closed_max double precision) WITH (fillfactor = 50)"""


class _PerSeries(Writer):
    """The writer before migration 0026: both COPYs (staging and readings), then one row update per series."""

    def __init__(self, conn) -> None:  # type: ignore[no-untyped-def]
        super().__init__(conn, engine="native", late_after_s=10**9)
        parts = {"hour_set": _B_HOUR_SET, "hour_returning": _B_HOUR_RETURNING, "closed": _B_CLOSED, "stale": _B_STALE}
        statement = "WITH ins AS (SELECT series_id, ts, value, label FROM pw_staging)" + _B_SINGLE + _B_AFTER
        self._before = statement.format(**parts, devices="NULL")
        with conn.transaction():
            conn.execute(_BEFORE_STATE)

    def prepare(self) -> None:
        """A state row for every series (after the warm-up made them), as the series rows were."""
        self.conn.execute(
            "INSERT INTO bench_series_state (id, device_id) SELECT id, device_id FROM series ON CONFLICT DO NOTHING"
        )

    def write(self, batch: Batch):  # type: ignore[no-untyped-def]
        from store.writer import _COPY_READINGS, _COPY_STAGING

        seen = max(batch.seen.values())
        params = {"late_s": self.late_after_s, "mark_s": 86400.0, "seen": seen}
        cur = self.conn.cursor()
        with self.conn.transaction():
            buf = self._pack(batch, {})
            with cur.copy(_COPY_STAGING) as copy:
                copy.write(buf)
            with cur.copy(_COPY_READINGS) as copy:
                copy.write(buf)
            cur.execute(self._before, params).fetchone()


def _variants(conn) -> dict[str, Writer]:  # type: ignore[no-untyped-def]
    """The writer as shipped, the same without any state (its COPY and commit: the floor of any writer that keeps
    state), and as it was before migration 0026 (one state row per series)."""
    bare = _writer(conn)
    bare._state = "SELECT %(seen)s::timestamptz, %(late_s)s::float8"
    return {
        "as shipped: one state row per device": _writer(conn),
        "COPY and commit only, no state": bare,
        "before (migration 0026): one state row per series": _PerSeries(conn),
    }


def compare(
    dsn: str, ids: list[str], *, batch: int, rounds: int, interval_s: float
) -> dict[str, list[tuple[float, float]]]:
    """Each variant of _variants on the same database, rounds interleaved (order reversed every other round, so
    none is always measured first): PostgreSQL core-ms per 1,000 messages, and WAL bytes per message (what the
    database writes to disk and replicates), of each round."""
    conn = connect(dsn, autocommit=True)
    writers = _variants(conn)
    backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    total = rounds * len(writers)
    start = _start_us(total, interval_s)
    step = int(interval_s * 1e6)
    _live(conn, start)
    for b in stream_batches(ids, batch=batch, start_us=start):  # the warm-up
        writers["as shipped: one state row per device"].write(b)
    for w in writers.values():
        if isinstance(w, _PerSeries):
            w.prepare()
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in writers}
    lsn = "SELECT pg_current_wal_insert_lsn()"
    r = 1
    for k in range(rounds):
        order = list(writers.items())
        for name, writer in order if k % 2 == 0 else reversed(order):
            work = stream_batches(ids, batch=batch, start_us=start + r * step)
            r += 1
            wal0 = conn.execute(lsn).fetchone()[0]  # type: ignore[index]
            pg0 = cpu_seconds(backend)
            for b in work:
                writer.write(b)
            pg = cpu_seconds(backend) - pg0
            wal = conn.execute(f"SELECT pg_wal_lsn_diff(({lsn}), %s)", (wal0,)).fetchone()[0]  # type: ignore[index]
            n = sum(len(b.fast) for b in work)
            out[name].append((pg * 1e6 / n, float(wal) / n))
    conn.close()
    return out


def _explain(conn, ids: list[str], *, batch: int, start_us: int) -> None:  # type: ignore[no-untyped-def]
    """Each statement of one more batch, as auto_explain reports it (ANALYZE, BUFFERS), sent to us as notices."""
    b = stream_batches(ids, batch=batch, start_us=start_us)[0]
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for name, value in (
        ("log_min_duration", "0"),
        ("log_analyze", "on"),
        ("log_buffers", "on"),
        ("log_timing", "on"),
        ("log_level", "notice"),
        ("log_nested_statements", "on"),
    ):
        conn.execute(f"SET auto_explain.{name} = {value}")
    _writer(conn).write(b)
    conn.execute("SET auto_explain.log_min_duration = -1")
    print("\n\n".join(plans))


def main(argv: list[str] | None = None) -> None:
    """Run it and print the figures."""
    ap = argparse.ArgumentParser(prog="python -m bench.ingest_writer")
    ap.add_argument("--devices", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000, help="messages per batch (200 ms of 5,000 msg/s)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--interval", type=float, default=300.0, help="seconds between a device's messages")
    ap.add_argument("--compare", action="store_true", help="the writer as shipped, without its rollup, as before")
    ap.add_argument("--passes", action="store_true", help="the writer's own passes over a batch, without the database")
    a = ap.parse_args(argv)
    with fresh_database() as dsn:
        ids = prepare(dsn, a.devices)
        if a.passes:
            print(
                f"the writer's own passes over a live round ({a.devices:,} devices, batches of {a.batch:,} messages):"
            )
            for name, us in passes(dsn, ids, batch=a.batch).items():
                print(f"  {name:<40} {us:5.2f} µs of the client's CPU per message (best of 5, interleaved)")
            print(f"  {os.cpu_count()} cores, load {load_now():.1f}", flush=True)
            return
        if a.compare:
            import statistics

            print(f"writer variants, rounds interleaved ({a.devices:,} devices, batches of {a.batch:,} messages):")
            rounds = max(a.rounds, 4)
            got = compare(dsn, ids, batch=a.batch, rounds=rounds, interval_s=a.interval)
            for name, rounds_of in got.items():
                per = [c for c, _ in rounds_of]
                wal = statistics.median(w for _, w in rounds_of)
                print(
                    f"  {name:<53} PostgreSQL {statistics.median(per):5.1f} core-ms per 1,000 messages (median of"
                    f" {len(per)} rounds, {min(per):.1f} to {max(per):.1f}); WAL {wal:,.0f} bytes per message"
                )
            print(f"  {os.cpu_count()} cores, load {load_now():.1f}", flush=True)
            return
        got = measure(dsn, ids, batch=a.batch, rounds=a.rounds, interval_s=a.interval, explain=a.explain)
    print(
        f"writer on a live stream: {a.devices:,} devices, batches of {a.batch:,} messages, {got['messages']:,.0f}"
        f" measured: {got['client'] + got['pg'] + got['rollup']:.1f} core-ms per 1,000 messages (client"
        f" {got['client']:.1f} + PostgreSQL {got['pg']:.1f} + the rollup's move afterwards {got['rollup']:.1f}),"
        f" {got['msgs_s']:,.0f} msg/s; {os.cpu_count()} cores, load {load_now():.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
