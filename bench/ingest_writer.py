"""The ingest writer alone on a live stream's batches: PostgreSQL's share of ingest without MQTT in the way.

A council's stream as store.writer sees it: every message of a batch from another device, one reading time each,
2 or 3 values (bench/peers/stream.py's shape). The devices are registered, then each sends once (the warm-up: the
series and the state a running deployment has), then `--rounds` rounds in which every device sends again, in
batches of `--batch` messages (what 200 ms of a 5,000 msg/s stream holds). For the measured rounds: the client's
CPU (this thread: packing the rows) and its PostgreSQL backend's (from /proc), per 1,000 messages, with the
cores and the load; then EXPLAIN (ANALYZE, BUFFERS) of one more batch's statements, statement by statement.

    python -m bench.ingest_writer [--devices 50000] [--batch 1000] [--rounds 2] [--explain]
    python -m bench.ingest_writer --devices 20000 --compare   # as shipped, without its rollup, as before
    python -m bench.ingest_writer --devices 20000 --parts     # the statement part by part; state per device
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta

from bench.common import cpu_seconds, load_now
from store.db import connect
from store.writer import Batch, FastRows, Writer
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
    conn.close()
    time.sleep(1.0)  # the backend's table statistics reach the cumulative views when it ends
    with connect(dsn, autocommit=True) as c:
        for row in c.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname IN ('devices', 'series', 'readings', 'readings_hourly_closed') ORDER BY relname"
        ):
            print(f"  {row[0]}: {row[1]:,} inserted, {row[2]:,} updated, {row[3]:,} of them in place (HOT)")
    k = 1e6 / messages
    return {"client": client * k, "pg": pg * k, "msgs_s": messages / wall, "messages": messages}


# The state as kept before migrations 0023 and 0024, for a reference in the same run: every message's values
# upserted into the hourly table, and its device's row written for last_seen.
_BEFORE_ROLLUP = """
, roll AS (
  INSERT INTO readings_hourly_closed AS h (series_id, hour, n, total, vmin, vmax)
  SELECT series_id, hour, count(value), sum(value), min(value), max(value) FROM r WHERE value IS NOT NULL
  GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (series_id, hour) DO UPDATE SET
    n = h.n + excluded.n, total = h.total + excluded.total,
    vmin = least(h.vmin, excluded.vmin), vmax = greatest(h.vmax, excluded.vmax))"""


class _Before(Writer):
    def write(self, batch: Batch):  # type: ignore[no-untyped-def]
        got = super().write(batch)
        with self.conn.transaction():  # (a second transaction: the price of the statement, not of the commit)
            Writer._write_seen(self, batch.seen)
        return got


def _variants(conn) -> dict[str, Writer]:  # type: ignore[no-untyped-def]
    """The writer as shipped, without its hourly rollup (TimescaleDB's writer), and as it was before."""
    from store import writer as w

    before = _Before(conn, engine="native", late_after_s=10**9)
    parts = {"hour_set": "", "hour_returning": "", "closed": _BEFORE_ROLLUP, "stale": w._STALE}
    before._fast_after = before._fast_single = w._FAST_AFTER.format(**parts, devices="NULL")
    return {
        "as shipped": _writer(conn),
        "without the hourly rollup (TimescaleDB's)": _writer(conn, "timescale"),
        "before: rollup upsert and devices.last_seen": before,
    }


# What each part of the statement costs on a stream's batch: the writer with its statement cut down (these keep
# no correct state; they are for the cost only) and a prototype of one row of state per device.
_PARAMS = "%(late_s)s::float8, %(mark_s)s::float8, %(seen)s::timestamptz"
_LATEST = """WITH l AS (SELECT series_id, ts, ts AS first_ts, date_trunc('hour', ts) AS hour, value, label,
  (value IS NOT NULL)::int AS n, value AS total, value AS vmin, value AS vmax FROM pw_staging)
UPDATE series s SET last_ts = l.ts, last_value = l.value, last_label = l.label, prev_ts = s.last_ts,
  seen_at = greatest(s.seen_at, %(seen)s::timestamptz){hour_set}
FROM l WHERE s.id = l.series_id AND %(late_s)s::float8 > 0 AND %(mark_s)s::float8 > 0 RETURNING 1, NULL"""


class _DeviceRow(Writer):
    """A prototype, not the product: each device's state in one row of `pw_device_state` (three metric slots of
    latest time and value and the current hour's count, sum, min and max, and seen_at), updated once per message
    instead of once per series. Readings are COPYed as the writer does. It keeps no closed hours, late windows or
    labels, so it is cheaper than a complete version would be."""

    SLOTS = ("temperature", "relative_humidity", "battery")

    def __init__(self, conn) -> None:  # type: ignore[no-untyped-def]
        super().__init__(conn, engine="native", late_after_s=10**9)
        cols = ", ".join(
            f"s{k}_ts timestamptz, s{k}_v float8, h{k}_n int, h{k}_t float8, h{k}_min float8, h{k}_max float8"
            for k in range(len(self.SLOTS))
        )
        with conn.transaction():
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS pw_device_state (device_id text PRIMARY KEY, seen_at timestamptz,"
                f" h_start timestamptz, {cols}) WITH (fillfactor = 50)"
            )
            conn.execute("INSERT INTO pw_device_state (device_id) SELECT id FROM devices ON CONFLICT DO NOTHING")
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS pw_device_staging (device_id text, ts timestamptz, seen timestamptz,"
                f" {', '.join(f'v{k} float8' for k in range(len(self.SLOTS)))}) ON COMMIT DELETE ROWS"
            )
        sets = ["seen_at = greatest(d.seen_at, x.seen)", "h_start = greatest(d.h_start, date_trunc('hour', x.ts))"]
        same = "d.h_start = date_trunc('hour', x.ts)"
        for k in range(len(self.SLOTS)):
            newer = f"(x.v{k} IS NOT NULL AND (d.s{k}_ts IS NULL OR d.s{k}_ts < x.ts))"
            has = f"(x.v{k} IS NOT NULL)::int"
            sets += [
                f"s{k}_ts = CASE WHEN {newer} THEN x.ts ELSE d.s{k}_ts END",
                f"s{k}_v = CASE WHEN {newer} THEN x.v{k} ELSE d.s{k}_v END",
                f"h{k}_n = CASE WHEN {same} THEN d.h{k}_n + {has} ELSE {has} END",
                f"h{k}_t = CASE WHEN {same} THEN d.h{k}_t + coalesce(x.v{k}, 0) ELSE x.v{k} END",
                f"h{k}_min = CASE WHEN {same} THEN least(d.h{k}_min, x.v{k}) ELSE x.v{k} END",
                f"h{k}_max = CASE WHEN {same} THEN greatest(d.h{k}_max, x.v{k}) ELSE x.v{k} END",
            ]
        self._update = (
            f"WITH u AS (UPDATE pw_device_state d SET {', '.join(sets)} FROM pw_device_staging x"
            " WHERE d.device_id = x.device_id RETURNING d.device_id) SELECT count(*) FROM u"
        )

    def write(self, batch: Batch):  # type: ignore[no-untyped-def]
        from store.writer import _COPY_READINGS, _COPY_SIGNATURE, _COPY_TRAILER, _FAST_ROW, UNIX_TO_PG_US

        slot = {m: k for k, m in enumerate(self.SLOTS)}
        self._series_ids({(dev, m) for dev, rows in batch.fast for m, _, _ in rows}, self._series)
        buf = bytearray(_COPY_SIGNATURE)
        for dev, rows in batch.fast:
            for m, us, v in rows:
                buf += _FAST_ROW.pack(4, 4, self._series[(dev, m)], 8, us - UNIX_TO_PG_US, 8, v, -1)
        buf += _COPY_TRAILER
        seen = max(batch.seen.values())
        cur = self.conn.cursor()
        with self.conn.transaction():
            with cur.copy(_COPY_READINGS) as copy:
                copy.write(buf)
            with cur.copy("COPY pw_device_staging FROM STDIN") as copy:
                for dev, rows in batch.fast:
                    values: list[float | None] = [None] * len(self.SLOTS)
                    for m, _, v in rows:
                        values[slot[m]] = v
                    copy.write_row((dev, datetime.fromtimestamp(rows[0][1] / 1e6, UTC), seen, *values))
            cur.execute(self._update).fetchone()


def _parts(conn) -> dict[str, Writer]:  # type: ignore[no-untyped-def]
    """The writer as shipped, its statement cut down part by part, and the one-row-per-device prototype."""
    from store import writer as w

    cut = {
        "both COPYs and the commit only": f"SELECT 1, NULL FROM (SELECT {_PARAMS}) x",
        "+ each series' latest value and seen_at": _LATEST.format(hour_set=""),
        "+ its current hour (no closed hours, no late windows)": _LATEST.format(hour_set=w._HOUR_SET),
    }
    out: dict[str, Writer] = {}
    for name, statement in cut.items():
        out[name] = _writer(conn)
        out[name]._fast_single = statement
    out["as shipped"] = _writer(conn)
    out["prototype: one row of state per device"] = _DeviceRow(conn)
    return out


def compare(
    dsn: str, ids: list[str], *, batch: int, rounds: int, interval_s: float, parts: bool = False
) -> dict[str, list[float]]:
    """Each variant of _variants (or of _parts) on the same database, rounds interleaved (order reversed every
    other round, so none is always measured first): PostgreSQL core-ms per 1,000 messages of each round."""
    conn = connect(dsn, autocommit=True)
    writers = _parts(conn) if parts else _variants(conn)
    backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    total = rounds * len(writers)
    start = _start_us(total, interval_s)
    step = int(interval_s * 1e6)
    for b in stream_batches(ids, batch=batch, start_us=start):  # the warm-up
        writers["as shipped"].write(b)
    out: dict[str, list[float]] = {name: [] for name in writers}
    r = 1
    for k in range(rounds):
        order = list(writers.items())
        for name, writer in order if k % 2 == 0 else reversed(order):
            work = stream_batches(ids, batch=batch, start_us=start + r * step)
            r += 1
            pg0 = cpu_seconds(backend)
            for b in work:
                writer.write(b)
            out[name].append((cpu_seconds(backend) - pg0) * 1e6 / sum(len(b.fast) for b in work))
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
    ap.add_argument(
        "--parts", action="store_true", help="what each part of the statement costs; one row of state per device"
    )
    a = ap.parse_args(argv)
    with fresh_database() as dsn:
        ids = prepare(dsn, a.devices)
        if a.compare or a.parts:
            import statistics

            print(f"writer variants, rounds interleaved ({a.devices:,} devices, batches of {a.batch:,} messages):")
            rounds = max(a.rounds, 4)
            got = compare(dsn, ids, batch=a.batch, rounds=rounds, interval_s=a.interval, parts=a.parts)
            for name, per in got.items():
                print(
                    f"  {name:<53} PostgreSQL {statistics.median(per):5.1f} core-ms per 1,000 messages (median of"
                    f" {len(per)} rounds, {min(per):.1f} to {max(per):.1f})"
                )
            print(f"  {os.cpu_count()} cores, load {load_now():.1f}", flush=True)
            return
        got = measure(dsn, ids, batch=a.batch, rounds=a.rounds, interval_s=a.interval, explain=a.explain)
    print(
        f"writer on a live stream: {a.devices:,} devices, batches of {a.batch:,} messages, {got['messages']:,.0f}"
        f" measured: {got['client'] + got['pg']:.1f} core-ms per 1,000 messages (client {got['client']:.1f} +"
        f" PostgreSQL {got['pg']:.1f}), {got['msgs_s']:,.0f} msg/s; {os.cpu_count()} cores, load {load_now():.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
