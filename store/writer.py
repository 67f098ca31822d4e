"""The ingest write path: binary COPY into a staging table, then one statement that inserts new
readings (duplicates ignored), keeps the hourly rollup and each series' latest value, and marks
the windows that late or out-of-order readings touched. One connection, one transaction per batch."""

from __future__ import annotations

import struct
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
# A fast lane row in binary COPY: 4 fields; int4 series id, int8 time, float8 value (each with its length), no label.
_FAST_ROW = struct.Struct(">hiiiqidi")
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the signature, no flags, no header extension
_COPY_TRAILER = b"\xff\xff"

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

_STALE = """
, stale AS (
  -- A day of the rollup that may be packed already (store.hourly_days: days are packed 30 hours after they end)
  -- is marked stale in this same transaction, so it is packed again; rare: only readings over 24 hours late.
  INSERT INTO hourly_days AS d (series_id, day, means, version)
  SELECT DISTINCT series_id, (hour AT TIME ZONE 'UTC')::date, NULL::bytea, 1 FROM r
  WHERE value IS NOT NULL AND hour < now() - make_interval(secs => %(mark_s)s)
  ON CONFLICT (series_id, day) DO UPDATE SET means = NULL, version = d.version + 1)"""

# Plain PostgreSQL keeps the hourly rollup itself (migration 0024): each series' current hour in its series row,
# updated by the same statement that keeps its latest value, and the closed hours in readings_hourly_closed. Per
# series of the batch, with l its newest hour in the batch and the row's current hour before the batch h:
# h missing or before l: l becomes the current hour and h, if any, is closed (closed_*: the values replaced);
# h = l: l's readings are added to it; h after l: the row's hour stays and l's readings are closed.
_HOUR_SET = """,
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
_HOUR_RETURNING = """, s.closed_hour, s.closed_n, s.closed_total, s.closed_min, s.closed_max,
            l.hour, l.n, l.total, l.vmin, l.vmax, l.hour < s.hour_start AS newest_closed"""
# Into readings_hourly_closed: the batch's hours before each series' newest, the hours the update closed, and the
# newest hour where the row's current hour is later. The first two may name the same hour: summed first.
_CLOSED = """
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

# The bookkeeping that follows new readings, given a CTE `ins` of exactly the rows that were new (no (series, ts)
# twice). Its cost is per row of the batch, whatever the number of devices and series in it or in the tables: r
# gives each row its hour and its series' newest and oldest times in the batch (one sort); l takes, per series,
# the newest row and the count, sum, min and max of the newest hour. Each series row is then read and written
# once, by its key (upd): its latest value moves forward only (a late reading leaves it), it keeps when a
# message last carried it (seen_at, migration 0023), the time it had before (prev_ts: so the batch was late
# where that is at or after the batch's first row) and, on plain PostgreSQL, its current hour (above). The
# writer's connection joins by index only (see Writer): a batch has no statistics for the planner, and a hash
# join would read whole tables of devices or series for every batch.
_GROUPED = """
, r AS (
  SELECT series_id, ts, value, label, date_trunc('hour', ts) AS hour,
         max(ts) OVER w AS last_ts, min(ts) OVER w AS first_ts
  FROM ins WINDOW w AS (PARTITION BY series_id)
), l AS (
  SELECT series_id, max(last_ts) AS ts, max(first_ts) AS first_ts, max(hour) AS hour,
         max(value) FILTER (WHERE ts = last_ts) AS value, max(label) FILTER (WHERE ts = last_ts) AS label,
         count(value) AS n, sum(value) AS total, min(value) AS vmin, max(value) AS vmax
  FROM r WHERE hour = date_trunc('hour', last_ts) GROUP BY series_id
)"""
# The same r and l when the writer knows every series of the batch has one row in it (a live stream, where each
# device sends once every few minutes): each row is its series' newest, so no sort, window or grouping; r then has
# no hour before its series' newest. A small saving, as the row updates are most of the cost: on
# bench.ingest_writer's stream (batches of 1,000 messages, medians of interleaved rounds) 57.3 against 62.8
# PostgreSQL core-ms per 1,000 messages with 20,000 devices; with 50,000, 40.6 against 44.3 (lower in 7 of 8
# rounds; an earlier run of 4 rounds gave 52.7 against 53.7).
_SINGLE = """
, l AS (
  SELECT series_id, ts, ts AS first_ts, date_trunc('hour', ts) AS hour, value, label,
         (value IS NOT NULL)::int AS n, value AS total, value AS vmin, value AS vmax
  FROM ins
), r AS (
  SELECT series_id, hour, value, ts AS last_ts FROM l
)"""
_AFTER = """
, upd AS (
  UPDATE series s SET
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
# The devices whose readings were new: with the fast path, every device of the batch (the writer knows them).
_TOUCHED = "(SELECT coalesce(json_agg(device_id ORDER BY device_id), '[]')::text FROM touched)"

# Fast path: no row of the batch exists yet (the usual case): the rows go into readings by COPY, as into the
# staging table, and the bookkeeping reads them from staging.
_COPY_STAGING = "COPY pw_staging (series_id, ts, value, label) FROM STDIN (FORMAT BINARY)"
_COPY_READINGS = "COPY readings (series_id, ts, value, label) FROM STDIN (FORMAT BINARY)"
_FAST_AFTER = "WITH ins AS (SELECT series_id, ts, value, label FROM pw_staging)" + _GROUPED + _AFTER
_FAST_SINGLE = "WITH ins AS (SELECT series_id, ts, value, label FROM pw_staging)" + _SINGLE + _AFTER

# Slow path, after a unique violation (a redelivered message): insert what is new and learn which rows those were.
_CONFLICT = (
    """WITH ins AS (
  INSERT INTO readings (series_id, ts, value, label)
  SELECT series_id, ts, value, label FROM pw_staging
  ON CONFLICT DO NOTHING
  RETURNING series_id, ts, value, label
)"""
    + _GROUPED
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

    def __init__(
        self, conn: psycopg.Connection, *, engine: str, late_after_s: float = 3600.0, lock_timeout_s: float = 20.0
    ) -> None:
        if not conn.autocommit:
            raise ValueError("the writer needs an autocommit connection: it opens its own transactions")
        self.conn = conn
        self.late_after_s = late_after_s
        # Series ids by device, then metric: one lookup of the device per message, then a small dict per reading
        # (a dict keyed by (device, metric) tuples made a tuple and missed the CPU's cache per reading: the largest
        # line of the writer's own CPU on a live stream, py-spy).
        self._series: dict[str, dict[str, int]] = {}
        # TimescaleDB keeps the rollup itself (its continuous aggregate, migrations 0002 and 0015)
        native = engine != "timescale"
        parts = {
            "hour_set": _HOUR_SET if native else "",
            "hour_returning": _HOUR_RETURNING if native else "",
            "closed": _CLOSED if native else "",
            "stale": _STALE,
        }
        self._fast_after = _FAST_AFTER.format(**parts, devices="NULL")
        self._fast_single = _FAST_SINGLE.format(**parts, devices="NULL")
        self._conflict = _CONFLICT.format(**parts, devices=_TOUCHED)
        with self.conn.transaction():
            self.conn.execute(_STAGE)
            # Every statement of the writer joins a batch (a few thousand rows, of which the planner knows nothing)
            # to tables of up to millions of rows by their keys: by index, never by reading a whole table.
            self.conn.execute("SET enable_hashjoin = off")
            self.conn.execute("SET enable_mergejoin = off")
            # A batch that waits for a lock longer than this fails cleanly (LockNotAvailable: ingest keeps its
            # messages unacknowledged and retries), before the connection's tcp_user_timeout (store.db, 30 s)
            # would reset a COPY whose rows the waiting server no longer reads: a TimescaleDB chunk being
            # compressed, or being created by another writer's open transaction.
            self.conn.execute(f"SET lock_timeout = {max(1, round(lock_timeout_s * 1000))}")

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
            inserted, devices = self._write_readings(batch, pending)
            self._write_dead(batch.dead)
            # A device whose new readings were written was marked seen in their series rows (migration 0023); the
            # device row is written only for the rest (status messages, readings all stored already).
            written = set(devices)
            self._write_seen({d: t for d, t in batch.seen.items() if d not in written})
            self._write_statuses(batch.statuses)
            if devices:
                self._notify(devices)
        for (dev, metric), sid in pending.items():
            self._series.setdefault(dev, {})[metric] = sid
        total = len(batch.readings) + sum(len(rows) for _, rows in batch.fast)
        return WriteResult(inserted, total - inserted, len(batch.dead), tuple(devices))

    def _series_ids(self, keys: set[tuple[str, str]], pending: dict[tuple[str, str], int]) -> None:
        known = self._series
        missing = sorted(k for k in keys if k[1] not in known.get(k[0], ()))
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

    def _write_readings(self, batch: Batch, pending: dict[tuple[str, str], int]) -> tuple[int, list[str]]:
        readings, fast = batch.readings, batch.fast
        if not readings and not fast:
            return 0, []
        by_device = self._series
        device_ids = by_device.get
        none: dict[str, int] = {}
        shift = UNIX_TO_PG_US
        missed: list[tuple[str, str, int, float]] = []  # series not yet known: written once their ids are
        sids: list[int] = []
        add = sids.append
        # The fast lane's rows are packed here, each one struct call (psycopg's write_row dumps field by field: about
        # a tenth of ingest's own CPU on a live stream, py-spy); the rest, which may have labels or no value, by
        # psycopg.
        # Both are rows of the same binary COPY: its header, the rows, its trailer.
        packed = bytearray()
        pack = _FAST_ROW.pack
        for dev, rows in fast:
            get = device_ids(dev, none).get
            for m, us, v in rows:
                sid = get(m)
                if sid is None:
                    missed.append((dev, m, us, v))
                else:
                    packed += pack(4, 4, sid, 8, us - shift, 8, v, -1)
                    add(sid)
        keys = {(r.device_id, r.metric) for r in readings if r.metric not in by_device.get(r.device_id, none)}
        keys.update((dev, m) for dev, m, _, _ in missed)
        self._series_ids(keys, pending)
        for dev, m, us, v in missed:
            sid = pending[(dev, m)]
            packed += pack(4, 4, sid, 8, us - shift, 8, v, -1)
            add(sid)
        if readings:
            out = _Rows()
            with psycopg.copy.Copy(self.conn.cursor(), binary=True, writer=out) as rows_copy:
                rows_copy.set_types(_ROW_TYPES)
                write = rows_copy.write_row
                for r in readings:
                    sid = by_device.get(r.device_id, none).get(r.metric)
                    if sid is None:
                        sid = pending[(r.device_id, r.metric)]
                    write((sid, (r.ts - PG_EPOCH) // _US, r.value, r.label))
                    add(sid)
            # psycopg's rows are its signature, the rows and the trailer: the fast rows go in after the signature.
            buf = out.data
            buf[len(_COPY_SIGNATURE) : len(_COPY_SIGNATURE)] = packed
        else:
            buf = bytearray(_COPY_SIGNATURE)
            buf += packed
            buf += _COPY_TRAILER
        cur = self.conn.cursor()
        with cur.copy(_COPY_STAGING) as copy:
            copy.write(buf)
        # When the batch's messages arrived, for the series they carry (seen_at): the newest arrival of the batch,
        # so a device may read as seen up to one batch (under a second) later than its own message came.
        seen = max(batch.seen.values()) if batch.seen else None
        params = {"late_s": self.late_after_s, "mark_s": LATE_MARK.total_seconds(), "seen": seen}
        # One row per series (a live stream): the statement that needs no grouping.
        fast_after = self._fast_single if len(set(sids)) == len(sids) else self._fast_after
        try:
            with self.conn.transaction(), cur.copy(_COPY_READINGS) as copy:  # a savepoint: a duplicate undoes it
                copy.write(buf)
            row = cur.execute(fast_after, params).fetchone()
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
