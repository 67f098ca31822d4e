"""Retention of raw readings (bounded deletes on plain PostgreSQL, TimescaleDB's own policy on TimescaleDB) and
of dead letters (bounded deletes on both).

Only raw readings go. The hourly rollup (readings_hourly: a table on plain PostgreSQL, a continuous
aggregate on TimescaleDB) is kept, so long-range charts and the year's evidence stay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True, slots=True)
class Deleted:
    """What one retention pass removed."""

    rows: int
    chunks: int
    finished: bool  # False when the time or chunk budget ran out with more still to delete


def delete_old_readings(
    conn: psycopg.Connection,
    *,
    before: datetime,
    chunk_rows: int = 10_000,
    max_chunks: int = 1_000,
    max_seconds: float = 20.0,
) -> Deleted:
    """Delete raw readings older than `before`, `chunk_rows` at a time, each chunk committed on its own.

    Short transactions keep locks and WAL bursts small and let ingest write alongside; the budget keeps
    one pass from holding the scheduler (the rest goes next pass).
    """
    # ctid = ANY(ARRAY(...)) is a TID scan: the subquery finds a chunk (BRIN on ts), the delete takes it.
    sql = "DELETE FROM readings WHERE ctid = ANY(ARRAY(SELECT ctid FROM readings WHERE ts < %s LIMIT %s))"
    return _in_chunks(conn, sql, before, chunk_rows, max_chunks, max_seconds)


def delete_old_dead_letters(
    conn: psycopg.Connection,
    *,
    before: datetime,
    chunk_rows: int = 10_000,
    max_chunks: int = 1_000,
    max_seconds: float = 10.0,
) -> Deleted:
    """Delete dead letters received before `before`, oldest first, `chunk_rows` at a time, each chunk committed."""
    sql = """DELETE FROM dead_letters WHERE id = ANY(ARRAY(
                 SELECT id FROM dead_letters WHERE received_at < %s ORDER BY received_at LIMIT %s))"""
    return _in_chunks(conn, sql, before, chunk_rows, max_chunks, max_seconds)


def _in_chunks(
    conn: psycopg.Connection, sql: str, before: datetime, chunk_rows: int, max_chunks: int, max_seconds: float
) -> Deleted:
    """Run a DELETE of at most `chunk_rows` rows before `before`, one committed transaction a time, until one
    deletes fewer (finished) or the chunk or time budget runs out (not finished)."""
    deadline = time.monotonic() + max_seconds
    rows = chunks = 0
    while chunks < max_chunks:
        with conn.transaction():
            n = conn.execute(sql, (before, chunk_rows)).rowcount
        rows += n
        chunks += 1
        if n < chunk_rows:
            return Deleted(rows, chunks, finished=True)
        if time.monotonic() > deadline:
            break
    return Deleted(rows, chunks, finished=False)


def retention_policy_days(conn: psycopg.Connection) -> float | None:
    """TimescaleDB's retention on readings, in days, or None when there is none."""
    row = conn.execute(
        """SELECT extract(epoch FROM (config->>'drop_after')::interval) / 86400
           FROM timescaledb_information.jobs
           WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()
             AND hypertable_name = 'readings'"""
    ).fetchone()
    return None if row is None else float(row[0])


def refresh_window_days(conn: psycopg.Connection) -> float | None:
    """How far back the hourly continuous aggregate's refresh policy reaches, in days; None when it reaches back to
    the first reading (no start offset) or there is no policy."""
    row = conn.execute(
        """SELECT extract(epoch FROM (j.config->>'start_offset')::interval) / 86400
           FROM timescaledb_information.jobs j JOIN _timescaledb_catalog.continuous_agg c
             ON (j.config->>'mat_hypertable_id')::int = c.mat_hypertable_id
           WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
             AND c.user_view_schema = current_schema() AND c.user_view_name = %s""",
        (HOURLY_AGGREGATE,),
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


HOURLY_AGGREGATE = "readings_hourly_cagg"  # the continuous aggregate behind the readings_hourly view (0015)
_HOUR_IN_DAYS = 1 / 24


def set_retention_policy(conn: psycopg.Connection, days: int) -> bool:
    """Make TimescaleDB drop raw chunks older than `days` (0: keep everything); True when it changed anything.

    The continuous aggregate's refresh window follows, both ways: narrowed to the kept data while raw chunks are
    dropped (a refresh over dropped chunks would empty the hourly rollup of those hours), and back to every
    reading when retention goes back to 0 (so late readings of any age reach the rollup again).
    """
    current = retention_policy_days(conn)
    window = refresh_window_days(conn)
    wanted_window = days - _HOUR_IN_DAYS if days > 0 else None
    same_retention = (current is None and days == 0) or (current is not None and abs(current - days) < 1e-6)
    same_window = (window is None and wanted_window is None) or (
        window is not None and wanted_window is not None and abs(window - wanted_window) < 1e-6
    )
    if same_retention and same_window:
        return False
    with conn.transaction():
        if not same_retention:
            if current is not None:
                conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
            if days > 0:
                conn.execute(
                    "SELECT add_retention_policy('readings', drop_after => make_interval(days => %s))", (days,)
                )
        conn.execute("SELECT remove_continuous_aggregate_policy(%s, if_exists => true)", (HOURLY_AGGREGATE,))
        conn.execute(
            """SELECT add_continuous_aggregate_policy(%(cagg)s,
                   start_offset => CASE WHEN %(days)s > 0 THEN make_interval(days => %(days)s) - interval '1 hour' END,
                   end_offset => interval '1 hour', schedule_interval => interval '5 minutes')""",
            {"cagg": HOURLY_AGGREGATE, "days": days},
        )
    return True
