"""Plain PostgreSQL: moving the hourly rollup's watermark (migration 0027).

Hours before the watermark are read from readings_hourly_closed; from it on, readings_hourly aggregates the raw
readings when read. A move over the hours that have ended goes in three steps, so that ingest waits only while
the move names where it goes, however many readings the hours hold:
1. Under the rollup's lock taken exclusively (each ingest batch holds it shared while it commits, so this waits
   for the batches in flight), it names the next watermark (wm_next) and fixes a snapshot of the readings.
   Released at once: batches from then on add their readings before wm_next to the closed hours themselves.
2. It aggregates the hours up to wm_next from the raw readings of that snapshot: exactly the readings written
   before, which no batch added to the closed hours.
3. It adds the aggregate to readings_hourly_closed and moves the watermark to wm_next, in one transaction:
   readers see the hours from the raw readings until then, from the closed hours after.
A move that stopped between 1 and 3 (a crash) leaves wm_next set; the next one recounts those hours whole from
the raw readings under the lock, since it cannot tell which readings batches added since.

Only whole hours that ended `LAG` ago move: readings still coming for the last hour (a gateway's delay, a batch
in flight) stay read from raw rather than being added to the closed hour one by one.

TimescaleDB has its own continuous aggregate and no watermark of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from store.migrate import engine
from store.writer import CLOSED_ADD, ROLLUP_LOCK

LAG = timedelta(minutes=15)
MAX_HOURS = 24  # hours moved per step: a long stop is caught up in steps of bounded size


@dataclass(frozen=True, slots=True)
class Moved:
    """What one call did."""

    hours: int  # hours aggregated into readings_hourly_closed
    rows: int  # (series, hour) rows written
    watermark: datetime | None  # where it is now (None: no watermark here, TimescaleDB)
    waited_out: bool = False  # the lock was not had in time (a long history import): try again next time


def watermark(conn: psycopg.Connection) -> datetime | None:
    """The watermark, or None where there is none (TimescaleDB)."""
    if engine(conn) == "timescale":
        return None
    row = conn.execute("SELECT wm FROM hourly_watermark").fetchone()
    return row[0] if row is not None else None


def advance(conn: psycopg.Connection, now: datetime, *, lag: timedelta = LAG, lock_timeout_s: float = 5.0) -> Moved:
    """Move the watermark to the start of the hour that `lag` before `now` is in, MAX_HOURS at a time. `conn`
    must be in autocommit mode. Waits at most `lock_timeout_s` for the rollup's lock; a history import holds it
    for its whole load, and the move then waits for the next call."""
    if not conn.autocommit:
        raise ValueError("advance needs an autocommit connection")
    if watermark(conn) is None:
        return Moved(0, 0, None)
    hours = rows = 0
    while True:
        try:
            step = _step(conn, now, lag, lock_timeout_s)
        except psycopg.errors.LockNotAvailable:
            return Moved(hours, rows, watermark(conn), waited_out=True)
        if step is None:
            return Moved(hours, rows, watermark(conn))
        hours += step[0]
        rows += step[1]


def _step(conn: psycopg.Connection, now: datetime, lag: timedelta, lock_timeout_s: float) -> tuple[int, int] | None:
    """One move of at most MAX_HOURS: (hours, rows written), or None when the watermark is where it should be."""
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (str(max(1, round(lock_timeout_s * 1000))),))
    locked = False
    try:
        conn.execute(f"SELECT pg_advisory_lock({ROLLUP_LOCK})")
        locked = True
        got = conn.execute(
            "SELECT wm, wm_next, date_trunc('hour', %s::timestamptz - %s::interval) FROM hourly_watermark", (now, lag)
        ).fetchone()
        assert got is not None
        wm, leftover, goal = got
        if leftover is not None:
            # A move that stopped half way: batches may have added readings of these hours since. Recounted whole
            # from the raw readings, under the lock (rare).
            with conn.transaction():
                conn.execute("DELETE FROM readings_hourly_closed WHERE hour >= %s AND hour < %s", (wm, leftover))
                n = _add(conn, _RAW_HOURS, wm, leftover)
                conn.execute("UPDATE hourly_watermark SET wm = wm_next, wm_next = NULL")
            return _hours(wm, leftover), n
        if wm >= goal:
            return None
        upto = min(goal, wm + timedelta(hours=MAX_HOURS))
        conn.execute("UPDATE hourly_watermark SET wm_next = %s", (upto,))  # step 1 (committed: batches see it)
        level = conn.isolation_level
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                conn.execute("SELECT 1")  # the snapshot: every batch that did not see wm_next has committed
                conn.execute(f"SELECT pg_advisory_unlock({ROLLUP_LOCK})")
                locked = False
                conn.execute(  # step 2: from the snapshot's readings only
                    f"CREATE TEMP TABLE pw_rollup_move ON COMMIT PRESERVE ROWS AS {_RAW_HOURS}", {"lo": wm, "hi": upto}
                )
        finally:
            conn.isolation_level = level
        try:
            with conn.transaction():  # step 3
                n = _add(conn, "SELECT * FROM pw_rollup_move", wm, upto)
                conn.execute("UPDATE hourly_watermark SET wm = wm_next, wm_next = NULL")
        finally:
            conn.execute("DROP TABLE IF EXISTS pw_rollup_move")
        return _hours(wm, upto), n
    finally:
        if locked:
            conn.execute(f"SELECT pg_advisory_unlock({ROLLUP_LOCK})")
        conn.execute("RESET lock_timeout")


# Each series' hours from lo to hi, aggregated from the raw readings.
_RAW_HOURS = """SELECT series_id, date_trunc('hour', ts) AS hour, count(value) AS n, sum(value) AS total,
    min(value) AS vmin, max(value) AS vmax
  FROM readings WHERE ts >= %(lo)s AND ts < %(hi)s GROUP BY 1, 2 HAVING count(value) > 0"""


def _add(conn: psycopg.Connection, rows: str, lo: datetime, hi: datetime) -> int:
    """Add the hours of `rows` (given lo and hi) to readings_hourly_closed; the rows written."""
    return max(conn.execute(CLOSED_ADD.format(rows=rows), {"lo": lo, "hi": hi}).rowcount, 0)


def _hours(lo: datetime, hi: datetime) -> int:
    return int((hi - lo) / timedelta(hours=1))


__all__ = ["LAG", "MAX_HOURS", "Moved", "advance", "watermark"]
