"""The ingest writer alone on a live stream's batches: PostgreSQL's share of ingest without MQTT in the way.

A council's stream as store.writer sees it: every message of a batch from another device, one reading time each,
2 or 3 values (bench/peers/stream.py's shape). The devices are registered, then each sends once (the warm-up: the
series and the state a running deployment has), then `--rounds` rounds in which every device sends again, in
batches of `--batch` messages (what 200 ms of a 5,000 msg/s stream holds). For the measured rounds: the client's
CPU (this thread: packing the rows) and its PostgreSQL backend's (from /proc), per 1,000 messages, with the
cores and the load; then EXPLAIN (ANALYZE, BUFFERS) of one more batch's statements, statement by statement.

    python -m bench.ingest_writer [--devices 50000] [--batch 1000] [--rounds 2] [--explain]
    python -m bench.ingest_writer --devices 20000 --compare   # the price of last_seen and of the rollup
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


def stream_batches(devices: list[str], *, batch: int, start_us: int, interval_s: float) -> list[Batch]:
    """One round of the stream: every device once, in batches of `batch` messages, times advancing."""
    order = list(range(len(devices)))
    random.Random(len(devices)).shuffle(order)
    step = int(interval_s * 1_000_000 / len(devices))
    out: list[Batch] = []
    for i in range(0, len(order), batch):
        fast: FastRows = []
        seen: dict[str, datetime] = {}
        for j, k in enumerate(order[i : i + batch]):
            us = start_us + (i + j) * step
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


def measure(dsn: str, ids: list[str], *, batch: int, rounds: int, explain: bool) -> dict[str, float]:
    """Warm up one round, then `rounds` measured rounds; core-ms per 1,000 messages, client and backend."""
    conn = connect(dsn, autocommit=True)
    writer = Writer(conn, engine="native")
    backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    # Recent times (a live stream: nothing late), ending before now.
    now_us = (datetime.now(UTC) - _UNIX) // timedelta(microseconds=1) - int((rounds + 3) * 10 * 1e6)
    interval = 10.0
    for b in stream_batches(ids, batch=batch, start_us=now_us, interval_s=interval):
        writer.write(b)
    work = [
        stream_batches(ids, batch=batch, start_us=now_us + int((r + 1) * interval * 1e6), interval_s=interval)
        for r in range(rounds)
    ]
    messages = sum(len(b.fast) for bs in work for b in bs)
    pg0, c0, t0 = cpu_seconds(backend), time.thread_time(), time.perf_counter()
    for bs in work:
        for b in bs:
            writer.write(b)
    client, pg, wall = time.thread_time() - c0, cpu_seconds(backend) - pg0, time.perf_counter() - t0
    if explain:
        _explain(conn, ids, batch=batch, start_us=now_us + int((rounds + 1) * interval * 1e6))
    conn.close()
    time.sleep(1.0)  # the backend's table statistics reach the cumulative views when it ends
    with connect(dsn, autocommit=True) as c:
        for row in c.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname IN ('devices', 'series', 'readings', 'readings_hourly') ORDER BY relname"
        ):
            print(f"  {row[0]}: {row[1]:,} inserted, {row[2]:,} updated, {row[3]:,} of them in place (HOT)")
    k = 1e6 / messages
    return {"client": client * k, "pg": pg * k, "msgs_s": messages / wall, "messages": messages}


def _variants(conn) -> dict[str, Writer]:  # type: ignore[no-untyped-def]
    """The writer as shipped and without each piece of per-message state, to price those pieces."""
    from store import writer as w

    shipped = Writer(conn, engine="native")
    no_seen = Writer(conn, engine="native")
    no_seen._write_seen = lambda seen: None  # type: ignore[method-assign]
    no_rollup = Writer(conn, engine="native")
    no_rollup._fast_after = w._FAST_AFTER.format(rollup=w._STALE, devices="NULL")
    return {
        "as shipped": shipped,
        "without the devices' last_seen update": no_seen,
        "without the hourly rollup upsert": no_rollup,
    }


def compare(dsn: str, ids: list[str], *, batch: int, rounds: int) -> dict[str, list[float]]:
    """Each variant of _variants on the same database, rounds interleaved (order reversed every other round, so
    none is always measured first): PostgreSQL core-ms per 1,000 messages of each round, per variant."""
    conn = connect(dsn, autocommit=True)
    writers = _variants(conn)
    backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    interval = 10.0
    total = 1 + rounds * len(writers)
    now_us = (datetime.now(UTC) - _UNIX) // timedelta(microseconds=1) - int((total + 3) * interval * 1e6)
    for b in stream_batches(ids, batch=batch, start_us=now_us, interval_s=interval):  # the warm-up
        writers["as shipped"].write(b)
    out: dict[str, list[float]] = {name: [] for name in writers}
    r = 1
    for k in range(rounds):
        order = list(writers.items())
        for name, writer in order if k % 2 == 0 else reversed(order):
            work = stream_batches(ids, batch=batch, start_us=now_us + int(r * interval * 1e6), interval_s=interval)
            r += 1
            pg0 = cpu_seconds(backend)
            for b in work:
                writer.write(b)
            out[name].append((cpu_seconds(backend) - pg0) * 1e6 / sum(len(b.fast) for b in work))
    conn.close()
    return out


def _explain(conn, ids: list[str], *, batch: int, start_us: int) -> None:  # type: ignore[no-untyped-def]
    """Each statement of one more batch, as auto_explain reports it (ANALYZE, BUFFERS), sent to us as notices."""
    b = stream_batches(ids, batch=batch, start_us=start_us, interval_s=10.0)[0]
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
    Writer(conn, engine="native").write(b)
    conn.execute("SET auto_explain.log_min_duration = -1")
    print("\n\n".join(plans))


def copy_packing(dsn: str, ids: list[str], *, batch: int, repeat: int = 3) -> dict[str, float]:
    """Issue 15: the writer's rows packed by hand (store.writer) against psycopg's own binary COPY (set_types,
    write_row), the same batches COPYed into a staging table in a transaction rolled back; the client's CPU per
    1,000 messages, best of `repeat`. Times go to psycopg as int8 (microseconds since 2000, the same 8 bytes as
    timestamptz), so psycopg is not also asked to convert datetimes."""
    from store import writer as w

    conn = connect(dsn, autocommit=True)
    sid = {
        (d, m): i
        for i, (d, m) in enumerate((d, m) for d in ids for m in ("temperature", "relative_humidity", "battery"))
    }
    batches = stream_batches(ids, batch=batch, start_us=1_800_000_000_000_000, interval_s=10.0)
    messages = sum(len(b.fast) for b in batches)
    conn.execute("CREATE TEMP TABLE pack_test (series_id integer, ts timestamptz, value double precision, label text)")

    def by_hand(fast: w.FastRows) -> None:
        buf = bytearray(w._COPY_HEADER)
        pack, shift = w._ROW_VALUE, w.UNIX_TO_PG_US
        for dev, rows in fast:
            for m, us, v in rows:
                buf += pack(4, 4, sid[(dev, m)], 8, us - shift, 8, v, -1)
        buf += w._COPY_TRAILER
        with conn.cursor().copy("COPY pack_test FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(buf)

    def by_psycopg(fast: w.FastRows) -> None:
        shift = w.UNIX_TO_PG_US
        with conn.cursor().copy("COPY pack_test FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "int8", "float8", "text"])
            write = cp.write_row
            for dev, rows in fast:
                for m, us, v in rows:
                    write((sid[(dev, m)], us - shift, v, None))

    out: dict[str, float] = {}
    for name, fn in (("by hand", by_hand), ("psycopg write_row", by_psycopg)):
        best = float("inf")
        for _ in range(repeat):
            with conn.transaction(force_rollback=True):
                t0 = time.thread_time()
                for b in batches:
                    fn(b.fast)
                best = min(best, time.thread_time() - t0)
        out[name] = best * 1e6 / messages
    with conn.transaction(force_rollback=True):  # both give the same rows
        by_hand(batches[0].fast)
        a = conn.execute("SELECT * FROM pack_test ORDER BY 1").fetchall()
    with conn.transaction(force_rollback=True):
        by_psycopg(batches[0].fast)
        assert conn.execute("SELECT * FROM pack_test ORDER BY 1").fetchall() == a
    conn.close()
    return out


def main(argv: list[str] | None = None) -> None:
    """Run it and print the figures."""
    ap = argparse.ArgumentParser(prog="python -m bench.ingest_writer")
    ap.add_argument("--devices", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000, help="messages per batch (200 ms of 5,000 msg/s)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--copy-packing", action="store_true", help="issue 15: hand-packed COPY rows vs write_row")
    ap.add_argument("--compare", action="store_true", help="the writer with and without last_seen, the rollup")
    a = ap.parse_args(argv)
    with fresh_database() as dsn:
        ids = prepare(dsn, a.devices)
        if a.copy_packing:
            got = copy_packing(dsn, ids, batch=a.batch)
            hand, lib = got["by hand"], got["psycopg write_row"]
            print(
                f"COPY rows packed by the writer's own code: {hand:.2f} client core-ms per 1,000 messages; by psycopg's"
                f" set_types/write_row: {lib:.2f} ({lib / hand:.2f} times); {os.cpu_count()} cores,"
                f" load {load_now():.1f}"
            )
            return
        if a.compare:
            import statistics

            print(f"writer variants, rounds interleaved ({a.devices:,} devices, batches of {a.batch:,} messages):")
            for name, per in compare(dsn, ids, batch=a.batch, rounds=max(a.rounds, 4)).items():
                print(
                    f"  {name:<40} PostgreSQL {statistics.median(per):5.1f} core-ms per 1,000 messages (median of"
                    f" {len(per)} rounds, {min(per):.1f} to {max(per):.1f})"
                )
            print(f"  {os.cpu_count()} cores, load {load_now():.1f}", flush=True)
            return
        got = measure(dsn, ids, batch=a.batch, rounds=a.rounds, explain=a.explain)
    print(
        f"writer on a live stream: {a.devices:,} devices, batches of {a.batch:,} messages, {got['messages']:,.0f}"
        f" measured: {got['client'] + got['pg']:.1f} core-ms per 1,000 messages (client {got['client']:.1f} +"
        f" PostgreSQL {got['pg']:.1f}), {got['msgs_s']:,.0f} msg/s; {os.cpu_count()} cores, load {load_now():.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
