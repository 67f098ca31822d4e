"""Plain PostgreSQL: moving the hourly rollup's watermark (migration 0027).

Hours before the watermark are read from readings_hourly_closed; from it on, readings_hourly aggregates the raw
readings when read. Moving it forward aggregates the hours it passes from the raw readings into
readings_hourly_closed and moves it, in one transaction under the rollup's lock taken exclusively: a writer takes
the same lock shared for each batch and adds its readings before the watermark to the closed hours itself, so
every reading is counted once, whether its batch committed before the move or after it.

Only whole hours that ended `LAG` ago move: readings still coming for the last hour (a gateway's delay, a batch
in flight) stay read from raw rather than being added to the closed hour one by one.

TimescaleDB has its own continuous aggregate and no watermark of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from store.writer import ROLLUP_LOCK

LAG = timedelta(minutes=15)
MAX_HOURS = 24  # hours moved per transaction: a long stop is caught up in steps, none holding writers long


@dataclass(frozen=True, slots=True)
class Moved:
    """What one call did."""

    hours: int  # hours aggregated into readings_hourly_closed
    rows: int  # (series, hour) rows written
    watermark: datetime | None  # where it is now (None: no watermark here, TimescaleDB)
    waited_out: bool = False  # the lock was not had in time (a long history import): try again next time


def watermark(conn: psycopg.Connection) -> datetime | None:
    """The watermark, or None where there is none (TimescaleDB)."""
    if conn.execute("SELECT to_regclass('hourly_watermark') IS NOT NULL").fetchone() != (True,):
        return None
    row = conn.execute("SELECT wm FROM hourly_watermark").fetchone()
    return row[0] if row is not None else None


def advance(conn: psycopg.Connection, now: datetime, *, lag: timedelta = LAG, lock_timeout_s: float = 5.0) -> Moved:
    """Move the watermark to the start of the hour that `lag` before `now` is in, up to MAX_HOURS a
    transaction, until it is there. `conn` must be in autocommit mode. Waits at most `lock_timeout_s` for
    writers' batches (each holds the lock shared while it commits); a history import holds it for its whole
    load, and the move then waits for the next call."""
    if not conn.autocommit:
        raise ValueError("advance needs an autocommit connection")
    if watermark(conn) is None:
        return Moved(0, 0, None)
    hours = rows = 0
    while True:
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = {max(1, round(lock_timeout_s * 1000))}")
                conn.execute(f"SELECT pg_advisory_xact_lock({ROLLUP_LOCK})")
                got = conn.execute(
                    """SELECT wm, date_trunc('hour', %s::timestamptz - %s::interval) FROM hourly_watermark
                       FOR UPDATE""",
                    (now, lag),
                ).fetchone()
                assert got is not None
                wm, goal = got
                if wm >= goal:
                    return Moved(hours, rows, wm)
                upto = min(goal, wm + timedelta(hours=MAX_HOURS))
                cur = conn.execute(
                    """INSERT INTO readings_hourly_closed AS h (series_id, hour, n, total, vmin, vmax)
                       SELECT series_id, date_trunc('hour', ts), count(value), sum(value), min(value), max(value)
                       FROM readings WHERE ts >= %(wm)s AND ts < %(upto)s
                       GROUP BY 1, 2 HAVING count(value) > 0 ORDER BY 1, 2
                       ON CONFLICT (series_id, hour) DO UPDATE SET
                         n = h.n + excluded.n, total = h.total + excluded.total,
                         vmin = least(h.vmin, excluded.vmin), vmax = greatest(h.vmax, excluded.vmax)""",
                    {"wm": wm, "upto": upto},
                )
                rows += max(cur.rowcount, 0)
                conn.execute("UPDATE hourly_watermark SET wm = %s", (upto,))
                hours += int((upto - wm) / timedelta(hours=1))
        except psycopg.errors.LockNotAvailable:
            return Moved(hours, rows, watermark(conn), waited_out=True)


__all__ = ["LAG", "MAX_HOURS", "Moved", "advance", "watermark"]
