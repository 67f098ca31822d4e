"""The ingest write path: binary COPY into a staging table, then one statement that inserts new
readings (duplicates ignored), keeps the hourly rollup and each series' latest value, and marks
the windows that late or out-of-order readings touched. One connection, one transaction per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import psycopg
import psycopg.copy
from psycopg.abc import Buffer

from core.model import Reading, StatusChange
from store.db import PG_EPOCH
from store.hourly_days import LATE_MARK

NOTIFY_CHANNEL = "placewatch_readings"
_NOTIFY_LIMIT = 7000  # bytes; PostgreSQL refuses payloads from 8000

# A reading row in binary COPY: series_id int4, ts timestamptz, value float8, label text. A timestamptz travels as
# int64 microseconds since 2000-01-01, so psycopg is given the time as that integer (int8): no datetime per row.
_ROW_TYPES = ["int4", "int8", "float8", "text"]
UNIX_TO_PG_US = 946_684_800_000_000  # microseconds from 1970-01-01 to 2000-01-01
_US = timedelta(microseconds=1)

# Readings as a decoder's fast lane gives them: per message, (device id, [(metric, epoch microseconds, value)]).
FastRows = list[tuple[str, list[tuple[str, int, float]]]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message, or part of one, that could not be stored, with the reason."""

    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    device_id: str | None = None
    format: str | None = None


@dataclass(slots=True)
class Batch:
    """Everything one transaction writes."""

    readings: list[Reading] = field(default_factory=list)
    fast: FastRows = field(default_factory=list)  # plain numeric readings, already checked, by message
    dead: list[DeadLetter] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    seen: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a committed batch changed."""

    inserted: int
    duplicates: int
    dead: int
    devices: tuple[str, ...]


_STAGE = """CREATE TEMP TABLE IF NOT EXISTS pw_staging (
    series_id integer, ts timestamptz, value double precision, label text) ON COMMIT DELETE ROWS"""

_ROLLUP = """
, roll AS (
  INSERT INTO readings_hourly AS h (series_id, hour, n, total, vmin, vmax)
  SELECT series_id, hour, n, total, vmin, vmax FROM g WHERE n > 0 ORDER BY 1, 2
  ON CONFLICT (series_id, hour) DO UPDATE SET
    n = h.n + excluded.n, total = h.total + excluded.total,
    vmin = least(h.vmin, excluded.vmin), vmax = greatest(h.vmax, excluded.vmax))"""

_STALE = """
, stale AS (
  -- A day of the rollup that may be packed already (store.hourly_days: days are packed 30 hours after they end)
  -- is marked stale in this same transaction, so it is packed again; rare: only readings over 24 hours late.
  INSERT INTO hourly_days AS d (series_id, day, means, version)
  SELECT DISTINCT series_id, (hour AT TIME ZONE 'UTC')::date, NULL::bytea, 1 FROM g
  WHERE n > 0 AND hour < now() - make_interval(secs => %(mark_s)s)
  ON CONFLICT (series_id, day) DO UPDATE SET means = NULL, version = d.version + 1)"""

# The bookkeeping that follows new readings, given a CTE `ins` of exactly the rows that were new (no
# (series, ts) twice). Its cost is per row of the batch, whatever the number of devices and series in it or in
# the tables: g groups the rows by series and hour (the rollup); `latest` takes each series' newest row and
# first time in one sort. Each series row is then read and written once, by its key: `fwd` updates the series
# whose stored latest time is before all of the batch's rows (in a live stream, all of them: nothing is late),
# `mid` those whose stored latest time falls among the batch's rows (late: some rows are older), and `old`
# reads those whose stored latest time is after all of them (late, nothing to update), only when fwd and mid
# did not take every series. The writer's connection joins by index only (see Writer): a batch has no
# statistics for the planner, and a hash join would read whole tables of devices or series for every batch.
_AFTER = """
, g AS (
  SELECT series_id, date_trunc('hour', ts) AS hour, count(value) AS n, sum(value) AS total,
         min(value) AS vmin, max(value) AS vmax
  FROM ins GROUP BY 1, 2
){rollup}
, latest AS (
  SELECT DISTINCT ON (series_id) series_id, ts, value, label, min(ts) OVER (PARTITION BY series_id) AS first_ts
  FROM ins ORDER BY series_id, ts DESC
), fwd AS (
  UPDATE series s SET last_ts = l.ts, last_value = l.value, last_label = l.label
  FROM latest l WHERE s.id = l.series_id AND (s.last_ts IS NULL OR s.last_ts < l.first_ts)
  RETURNING s.device_id, l.first_ts, l.ts, false AS late
), mid AS (
  UPDATE series s SET last_ts = l.ts, last_value = l.value, last_label = l.label
  FROM latest l WHERE l.first_ts < l.ts AND s.id = l.series_id AND s.last_ts >= l.first_ts AND s.last_ts < l.ts
  RETURNING s.device_id, l.first_ts, l.ts, true AS late
), old AS (
  SELECT s.device_id, l.first_ts, l.ts, true AS late FROM latest l JOIN series s ON s.id = l.series_id
  WHERE s.last_ts >= l.ts
    AND (SELECT count(*) FROM fwd) + (SELECT count(*) FROM mid) < (SELECT count(*) FROM latest)
), touched AS (
  SELECT device_id, min(first_ts) AS start_ts, max(ts) AS end_ts,
         bool_or(late OR first_ts < now() - make_interval(secs => %(late_s)s)) AS late
  FROM (SELECT * FROM fwd UNION ALL SELECT * FROM mid UNION ALL SELECT * FROM old) t GROUP BY device_id
), late AS (
  INSERT INTO late_windows (device_id, start_ts, end_ts)
  SELECT device_id, start_ts, end_ts FROM touched WHERE late
)
SELECT (SELECT count(*) FROM ins), {devices}
"""
# The devices whose readings were new: with the fast path, every device of the batch (the writer knows them).
_TOUCHED = "(SELECT coalesce(json_agg(device_id ORDER BY device_id), '[]')::text FROM touched)"

# Fast path: no row of the batch exists yet (the usual case): the rows go into readings by COPY, as into the
# staging table, and the bookkeeping reads them from staging.
_COPY_STAGING = "COPY pw_staging (series_id, ts, value, label) FROM STDIN (FORMAT BINARY)"
_COPY_READINGS = "COPY readings (series_id, ts, value, label) FROM STDIN (FORMAT BINARY)"
_FAST_AFTER = "WITH ins AS (SELECT series_id, ts, value, label FROM pw_staging)" + _AFTER

# Slow path, after a unique violation (a redelivered message): insert what is new and learn which rows those were.
_CONFLICT = (
    """WITH ins AS (
  INSERT INTO readings (series_id, ts, value, label)
  SELECT series_id, ts, value, label FROM pw_staging
  ON CONFLICT DO NOTHING
  RETURNING series_id, ts, value, label
)"""
    + _AFTER
)


class _Rows(psycopg.copy.Writer):
    """Keeps the binary COPY data psycopg makes of the rows (no server involved), to be sent to two COPYs."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: Buffer) -> None:
        self.data += data


class Writer:
    """Writes batches on one dedicated connection. Not thread-safe: one writer thread owns it."""

    def __init__(self, conn: psycopg.Connection, *, engine: str, late_after_s: float = 3600.0) -> None:
        if not conn.autocommit:
            raise ValueError("the writer needs an autocommit connection: it opens its own transactions")
        self.conn = conn
        self.late_after_s = late_after_s
        self._series: dict[tuple[str, str], int] = {}
        rollup = _STALE if engine == "timescale" else _ROLLUP + _STALE  # TimescaleDB keeps the rollup itself
        self._fast_after = _FAST_AFTER.format(rollup=rollup, devices="NULL")
        self._conflict = _CONFLICT.format(rollup=rollup, devices=_TOUCHED)
        with self.conn.transaction():
            self.conn.execute(_STAGE)
            # Every statement of the writer joins a batch (a few thousand rows, of which the planner knows nothing)
            # to tables of up to millions of rows by their keys: by index, never by reading a whole table.
            self.conn.execute("SET enable_hashjoin = off")
            self.conn.execute("SET enable_mergejoin = off")

    def deletions(self) -> int:
        """A count that moves whenever devices or series are deleted (migration 0022): a cache of known devices or
        series ids taken before it moved may name what no longer exists. One sequence read, no lock."""
        row = self.conn.execute("SELECT coalesce(pg_sequence_last_value('pw_deletions'), 0)").fetchone()
        return int(row[0]) if row is not None else 0

    def forget_series(self) -> None:
        """Empty the cache of series ids (after deletions): they are looked up again as they come."""
        self._series.clear()

    def known_devices(self, ids: Iterable[str]) -> set[str]:
        """Which of these device ids are registered."""
        # An id with a NUL (a hostile SenML name or DevEUI) cannot be registered, since PostgreSQL text cannot
        # hold one; sending it would fail the whole batch and force the slow one-by-one path. It is unknown.
        wanted = sorted({i for i in ids if "\x00" not in i})
        if not wanted:
            return set()
        # The ids as one JSON array, made by orjson in one C call: psycopg dumps a list element by element, and
        # when each device sends once every few minutes, every message's device is looked up (its py-spy profile).
        with self.conn.transaction():
            rows = self.conn.execute(
                "SELECT d.id FROM json_array_elements_text(%s::json) AS x(id) JOIN devices d ON d.id = x.id",
                (orjson.dumps(wanted).decode(),),
            ).fetchall()
        return {r[0] for r in rows}

    def register(self, devices: Sequence[tuple[str, str, str | None]]) -> None:
        """Auto-register devices as (id, kind, format); existing ones are left alone."""
        if not devices:
            return
        ids, kinds, formats = zip(*sorted(devices), strict=True)
        with self.conn.transaction():
            self.conn.execute(
                """INSERT INTO devices (id, kind, format, source)
                   SELECT id, kind, fmt, 'auto' FROM unnest(%s::text[], %s::text[], %s::text[]) AS x(id, kind, fmt)
                   ON CONFLICT (id) DO NOTHING""",
                (list(ids), list(kinds), list(formats)),
            )

    def write(self, batch: Batch) -> WriteResult:
        """Commit one batch atomically; on any error nothing of it is kept and the caller retries."""
        # Series ids created in a transaction that rolls back do not exist: cache them only after commit.
        pending: dict[tuple[str, str], int] = {}
        with self.conn.transaction():
            inserted, devices = self._write_readings(batch.readings, batch.fast, pending)
            self._write_dead(batch.dead)
            self._write_seen(batch.seen)
            self._write_statuses(batch.statuses)
            if devices:
                self._notify(devices)
        self._series.update(pending)
        total = len(batch.readings) + sum(len(rows) for _, rows in batch.fast)
        return WriteResult(inserted, total - inserted, len(batch.dead), tuple(devices))

    def _series_ids(self, keys: set[tuple[str, str]], pending: dict[tuple[str, str], int]) -> None:
        missing = sorted(k for k in keys if k not in self._series)
        if not missing:
            return
        # As JSON arrays (orjson), as in known_devices.
        devs = orjson.dumps([k[0] for k in missing]).decode()
        mets = orjson.dumps([k[1] for k in missing]).decode()
        keys = "ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) AS x(d, m)"
        self.conn.execute(
            f"INSERT INTO series (device_id, metric) SELECT d, m FROM {keys} ON CONFLICT DO NOTHING", (devs, mets)
        )
        rows = self.conn.execute(
            f"SELECT s.id, s.device_id, s.metric FROM series s JOIN {keys} ON s.device_id = x.d AND s.metric = x.m",
            (devs, mets),
        ).fetchall()
        for sid, dev, met in rows:
            pending[(dev, met)] = sid

    def _write_readings(
        self, readings: list[Reading], fast: FastRows, pending: dict[tuple[str, str], int]
    ) -> tuple[int, list[str]]:
        if not readings and not fast:
            return 0, []
        ids = self._series
        get = ids.get
        shift = UNIX_TO_PG_US
        missed: list[tuple[str, str, int, float]] = []  # series not yet known: written once their ids are
        out = _Rows()
        # psycopg's binary COPY (its C dumpers) makes the rows once; times as int8 microseconds since 2000, the
        # bytes of a timestamptz. The same bytes then go to the staging table and to readings.
        with psycopg.copy.Copy(self.conn.cursor(), binary=True, writer=out) as rows_copy:
            rows_copy.set_types(_ROW_TYPES)
            write = rows_copy.write_row
            for dev, rows in fast:
                for m, us, v in rows:
                    sid = get((dev, m))
                    if sid is None:
                        missed.append((dev, m, us, v))
                    else:
                        write((sid, us - shift, v, None))
            keys = {(r.device_id, r.metric) for r in readings if (r.device_id, r.metric) not in ids}
            keys.update((dev, m) for dev, m, _, _ in missed)
            self._series_ids(keys, pending)  # on the connection: the rows' COPY is not sent until below
            for dev, m, us, v in missed:
                write((pending[(dev, m)], us - shift, v, None))
            for r in readings:
                key = (r.device_id, r.metric)
                sid = get(key)
                write((pending[key] if sid is None else sid, (r.ts - PG_EPOCH) // _US, r.value, r.label))
        buf = out.data
        cur = self.conn.cursor()
        with cur.copy(_COPY_STAGING) as copy:
            copy.write(buf)
        params = {"late_s": self.late_after_s, "mark_s": LATE_MARK.total_seconds()}
        try:
            with self.conn.transaction(), cur.copy(_COPY_READINGS) as copy:  # a savepoint: a duplicate undoes it
                copy.write(buf)
            row = cur.execute(self._fast_after, params).fetchone()
        except psycopg.errors.UniqueViolation:
            row = cur.execute(self._conflict, params).fetchone()
        assert row is not None
        if row[1] is None:  # the fast path: every row was new
            return int(row[0]), sorted({dev for dev, _ in fast} | {r.device_id for r in readings})
        return int(row[0]), orjson.loads(row[1])

    def _write_dead(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        cur = self.conn.cursor()
        with cur.copy(
            "COPY dead_letters (received_at, topic, payload, reason, device_id, format) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["timestamptz", "text", "bytea", "text", "text", "text"])
            for d in dead:
                # Reasons quote what a device sent, which may hold NUL; PostgreSQL text cannot, so escape it.
                reason, device = _text(d.reason), _text(d.device_id)
                copy.write_row((d.received_at, d.topic, d.payload, reason, device, d.format))

    def _write_seen(self, seen: dict[str, datetime]) -> None:
        if not seen:
            return
        # As one JSON object {id: time}, made by orjson in one C call (psycopg dumps lists element by element);
        # in id order, so that two ingest processes lock devices in the same order.
        doc = orjson.dumps(seen, option=orjson.OPT_SORT_KEYS)
        self.conn.execute(
            """UPDATE devices d SET last_seen = greatest(d.last_seen, x.seen::timestamptz)
               FROM json_each_text(%s::json) AS x(id, seen) WHERE d.id = x.id""",
            (doc.decode(),),
        )

    def _write_statuses(self, statuses: list[StatusChange]) -> None:
        if not statuses:
            return
        last: dict[str, StatusChange] = {}
        for s in statuses:
            last[s.device_id] = s
        ids = sorted(last)
        self.conn.execute(
            """UPDATE devices d SET status = x.status, status_at = x.ts
               FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS x(id, status, ts)
               WHERE d.id = x.id AND (d.status_at IS NULL OR d.status_at <= x.ts)""",
            (ids, [last[i].status for i in ids], [last[i].ts for i in ids]),
        )

    def _notify(self, devices: list[str]) -> None:
        payload = orjson.dumps(devices)
        if len(payload) > _NOTIFY_LIMIT:
            payload = b'"*"'
        self.conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload.decode()))


def _text(value: str | None) -> str | None:
    """value with NUL written as the four characters \\x00 (PostgreSQL text cannot hold NUL)."""
    return value.replace("\x00", "\\x00") if value is not None and "\x00" in value else value
