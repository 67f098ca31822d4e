"""Closed days of the hourly rollup, one row per series and UTC day.

The damp sweep reads 30 days of hourly means for every home sensor: at 100,000 homes that is 144 million
rows of readings_hourly, and PostgreSQL's cost per row (index, heap, output) made the database the limit of
the sweep. Once a day is long over, its hourly means hardly change, so the scheduler's leader packs each
series' day into one row of `hourly_days` (24 big-endian float8, NaN for an hour without readings), and
readers take closed days from there and only the recent hours, and any day changed since, from the rollup.

It stays exactly what readings_hourly says:
- a day is packed only once it ended `PACK_AFTER` ago (30 hours), and ingest marks the day of any rollup row it
  writes for an hour more than `LATE_MARK` (24 hours) old stale (means NULL, version + 1) in the same
  transaction; so a write either is visible to the packing or marks the day after it;
- packing writes a row only if its version is still the one read before the rollup was read (a marker that
  lands meanwhile wins, and the day is packed again on the next pass);
- readers see the packed range (`hourly_days_state`) and the rows in one snapshot (REPEATABLE READ).

The same on TimescaleDB: there readings_hourly is a view that is always current (migration 0015: the continuous
aggregate where it is current, raw readings where it is not), packing reads it, and ingest marks late days in the
same way (store.writer), so packed days are exactly what it says on both engines.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
from numpy.typing import NDArray

from store.db import PG_EPOCH

PACK_AFTER = timedelta(hours=30)  # a day is packed once it ended this long ago
LATE_MARK = timedelta(hours=24)  # ingest marks days of rollup rows older than this (see store.writer)
KEEP_DAYS = 62  # packed days kept: the damp window (30 days by default) with room to lengthen it
_HOUR_US = 3_600_000_000
_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_PACKED_HOURLY = np.dtype([("hour", ">i8"), ("series", ">i4")])
_PACKED_DAY = np.dtype([("series", ">i4"), ("day", ">i4"), ("means", ">f8", (24,))])
_STAGE = """CREATE TEMP TABLE IF NOT EXISTS hourly_days_stage (
    series_id integer, day date, means bytea, version integer) ON COMMIT DELETE ROWS"""


@dataclass(frozen=True, slots=True)
class Packed:
    """What one packing pass did."""

    days: int  # days packed for the first time
    repacked: int  # series-days packed again after late data
    dropped: int  # series-days older than the kept range deleted
    finished: bool  # False when the time budget ran out with more to do


def packed_range(conn: psycopg.Connection) -> tuple[date, date] | None:
    """The days packed so far, first and last (inclusive), or None when none are."""
    row = conn.execute("SELECT first_day, last_day FROM hourly_days_state").fetchone()
    if row is None or row[1] < row[0]:
        return None
    return row[0], row[1]


def last_packable(now: datetime) -> date:
    """The last day (UTC) that may be packed at `now`: it ended at least PACK_AFTER ago."""
    return (now - PACK_AFTER).astimezone(UTC).date() - _DAY


def pack(conn: psycopg.Connection, now: datetime, *, keep_days: int = KEEP_DAYS, max_seconds: float = 60.0) -> Packed:
    """Pack the days that are due (oldest first, one transaction each), pack again the days marked stale, and
    drop packed days older than `keep_days`; stop after `max_seconds` (the rest goes on the next pass).
    `conn` must be in autocommit mode."""
    deadline = time.monotonic() + max_seconds
    last = last_packable(now)
    first = last - timedelta(days=keep_days - 1)
    state = conn.execute("SELECT first_day, last_day FROM hourly_days_state").fetchone()
    dropped = 0
    if state is None or state[1] < first - _DAY:
        # Nothing packed yet, or packing stopped so long ago that the range would have a hole: start afresh.
        with conn.transaction():
            dropped = conn.execute("DELETE FROM hourly_days").rowcount
            conn.execute(
                """INSERT INTO hourly_days_state (id, first_day, last_day) VALUES (true, %(f)s, %(l)s)
                   ON CONFLICT (id) DO UPDATE SET first_day = %(f)s, last_day = %(l)s""",
                {"f": first, "l": first - _DAY},
            )
        state = (first, first - _DAY)
    elif state[0] < first:
        with conn.transaction():
            dropped = conn.execute("DELETE FROM hourly_days WHERE day < %s", (first,)).rowcount
            conn.execute("UPDATE hourly_days_state SET first_day = %s", (first,))
    days = repacked = 0
    day = state[1] + _DAY
    series: list[int] | None = None
    while day <= last:
        if time.monotonic() > deadline:
            return Packed(days, repacked, dropped, finished=False)
        if series is None:
            series = [r[0] for r in conn.execute("SELECT id FROM series ORDER BY id")]
        _pack_day(conn, day, series, new_day=True)
        days += 1
        day += _DAY
    # Days not packed yet are packed whole when their turn comes: only the packed range's stale days here.
    stale = conn.execute(
        "SELECT day, array_agg(series_id ORDER BY series_id) FROM hourly_days "
        "WHERE means IS NULL AND day >= %s AND day < %s GROUP BY day ORDER BY day",
        (first, day),
    ).fetchall()
    for day, marked in stale:
        if time.monotonic() > deadline:
            return Packed(days, repacked, dropped, finished=False)
        repacked += _pack_day(conn, day, list(marked), new_day=False)
    return Packed(days, repacked, dropped, finished=True)


_SLICE = 20_000  # series packed per transaction: a bounded read, whatever the number of devices


def _pack_day(conn: psycopg.Connection, day: date, series: list[int], *, new_day: bool) -> int:
    """Pack one day of these series, `_SLICE` at a time; a new day also extends the packed range (with its
    last slice, so a pass cut short packs the whole day again). Returns the rows written."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    start_us = (start - PG_EPOCH) // _MICROSECOND
    written = 0
    for i in range(0, max(len(series), 1), _SLICE):
        part = series[i : i + _SLICE]
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # The versions and the rollup of one snapshot: a mark written after it is not overwritten (see below).
            versions = dict(
                conn.execute(
                    "SELECT series_id, version FROM hourly_days WHERE day = %s AND series_id = ANY(%s::int4[])",
                    (day, part),
                ).fetchall()
            )
            sid, hour_us, value = hourly_means(conn, part, start, start + _DAY)
        ids = np.union1d(sid, np.fromiter(versions, dtype=np.int64, count=len(versions)))
        means = np.full((len(ids), 24), np.nan)
        means[np.searchsorted(ids, sid), (hour_us - start_us) // _HOUR_US] = value
        packed = means.astype(">f8")
        last_slice = i + _SLICE >= len(series)
        with conn.transaction():
            if len(ids):
                conn.execute(_STAGE)
                with conn.cursor().copy("COPY hourly_days_stage (series_id, day, means, version) FROM STDIN") as copy:
                    for k, s in enumerate(ids.tolist()):
                        copy.write_row((s, day, packed[k].tobytes(), versions.get(s, 0)))
                written += conn.execute(
                    """INSERT INTO hourly_days AS d (series_id, day, means, version)
                       SELECT series_id, day, means, version FROM hourly_days_stage ORDER BY series_id
                       ON CONFLICT (series_id, day) DO UPDATE SET means = excluded.means
                       WHERE d.version = excluded.version  -- not if ingest marked it since the read""",
                ).rowcount
            if new_day and last_slice:
                conn.execute("UPDATE hourly_days_state SET last_day = %s WHERE last_day < %s", (day, day))
    return written


def hourly_means(
    conn: psycopg.Connection, series_ids: Sequence[int], start: datetime, end: datetime
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(series id, hour as microseconds since 2000, mean) from the hourly rollup over [start, end), for these
    series.

    The server packs the rows into two byte strings that numpy reads as they are (a Python object per hourly
    row would cost more than the judgement itself at 100,000 homes): string_agg(series, hour) gives
    series 1, then hour 2 + series 2, hour 3 + series 3... (the delimiter, here the hour, goes before each value
    but the first), and string_agg(mean, NULL) the means in the same row order. Two aggregates over the rows
    cost the server a fifth less than one per column. The one hour not sent, the first row's, is had by
    reading that row's series again on its own.
    """
    row = (
        conn.cursor(binary=True)
        .execute(
            """SELECT string_agg(int4send(series_id), timestamptz_send(hour)), string_agg(float8send(total / n), NULL)
               FROM readings_hourly
               WHERE series_id = ANY(%s::int4[]) AND hour >= %s AND hour < %s AND n > 0 AND total IS NOT NULL""",
            (list(series_ids), start, end),
        )
        .fetchone()
    )
    if row is None or row[0] is None:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    packed, means = bytes(row[0]), bytes(row[1])
    if len(packed) % _PACKED_HOURLY.itemsize != 4 or len(means) != 8 * (len(packed) // _PACKED_HOURLY.itemsize + 1):
        raise RuntimeError("hourly means: the packed columns do not match")
    first = int.from_bytes(packed[:4], "big", signed=True)
    rest = np.frombuffer(packed, dtype=_PACKED_HOURLY, offset=4)
    value = np.frombuffer(means, dtype=">f8").astype(np.float64)
    # The first row's series, whole, from its own query (its first row's hour was not sent).
    one = (
        conn.cursor(binary=True)
        .execute(
            """SELECT hour, total / n FROM readings_hourly
               WHERE series_id = %s AND hour >= %s AND hour < %s AND n > 0 AND total IS NOT NULL""",
            (first, start, end),
        )
        .fetchall()
    )
    others = rest["series"] != first
    sid = np.concatenate([np.full(len(one), first, dtype=np.int64), rest["series"][others].astype(np.int64)])
    hour_us = np.concatenate(
        [
            np.array([(h - PG_EPOCH) // _MICROSECOND for h, _ in one], dtype=np.int64),
            rest["hour"][others].astype(np.int64),
        ]
    )
    value = np.concatenate([np.array([v for _, v in one], dtype=np.float64), value[1:][others]])
    return sid, hour_us, value


def means(
    conn: psycopg.Connection, series_ids: Sequence[int], start: datetime, end: datetime
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """What hourly_means gives (every hour with a mean, possibly in another order), from packed days where they
    are packed and current, from the rollup elsewhere. Call it inside a REPEATABLE READ transaction, so the
    packed range and the rows are of one snapshot."""
    span = packed_range(conn)
    lo = hi = None
    if span is not None:
        first = max(span[0], start.astimezone(UTC).date())
        last = min(span[1], (end - timedelta(microseconds=1)).astimezone(UTC).date())
        if first <= last:
            lo, hi = first, last
    if lo is None or hi is None:
        return hourly_means(conn, series_ids, start, end)
    lo_t = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
    hi_t = datetime(hi.year, hi.month, hi.day, tzinfo=UTC) + _DAY
    parts = []
    if start < lo_t:
        parts.append(hourly_means(conn, series_ids, start, lo_t))
    if hi_t < end:
        parts.append(hourly_means(conn, series_ids, hi_t, end))
    ids = list(series_ids)
    row = (
        conn.cursor(binary=True)
        .execute(
            """SELECT string_agg(int4send(series_id) || int4send(day - date '2000-01-01') || means, NULL),
                      array_agg(series_id) FILTER (WHERE means IS NULL),
                      array_agg(day - date '2000-01-01') FILTER (WHERE means IS NULL)
               FROM hourly_days WHERE series_id = ANY(%s::int4[]) AND day >= %s AND day <= %s""",
            (ids, lo, hi),
        )
        .fetchone()
    )
    if row is not None and row[0] is not None:
        days = np.frombuffer(bytes(row[0]), dtype=_PACKED_DAY)
        hours = (days["day"].astype(np.int64) * 24)[:, None] + np.arange(24)
        values = days["means"].astype(np.float64)
        have = ~np.isnan(values)
        parts.append(
            (
                np.broadcast_to(days["series"].astype(np.int64)[:, None], have.shape)[have],
                hours[have] * _HOUR_US,
                values[have],
            )
        )
    if row is not None and row[1]:
        # Days marked stale since they were packed: from the rollup, series-day by series-day.
        stale = conn.cursor(binary=True).execute(
            """SELECT h.series_id, h.hour, h.total / h.n
               FROM unnest(%s::int4[], %s::int4[]) AS x(series_id, day)
               JOIN readings_hourly h ON h.series_id = x.series_id
                AND h.hour >= timestamptz '2000-01-01 00:00+00' + make_interval(hours => 24 * x.day)
                AND h.hour < timestamptz '2000-01-01 00:00+00' + make_interval(hours => 24 * x.day + 24)
               WHERE h.n > 0 AND h.total IS NOT NULL""",
            (row[1], row[2]),
        )
        got = stale.fetchall()
        if got:
            parts.append(
                (
                    np.array([r[0] for r in got], dtype=np.int64),
                    np.array([(r[1] - PG_EPOCH) // _MICROSECOND for r in got], dtype=np.int64),
                    np.array([r[2] for r in got], dtype=np.float64),
                )
            )
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    sid = np.concatenate([p[0] for p in parts])
    hour_us = np.concatenate([p[1] for p in parts])
    value = np.concatenate([p[2] for p in parts])
    keep = (hour_us >= (start - PG_EPOCH) // _MICROSECOND) & (hour_us < (end - PG_EPOCH) // _MICROSECOND)
    return sid[keep], hour_us[keep], value[keep]
