"""The ingest write path: the batch's readings by binary COPY into readings, then each device's state (its latest
values, when it was last seen, migration 0026) in one statement that reads and writes one row per device and marks
the windows that late or out-of-order readings touched. Readings at hours long closed also go to the closed
hourly rollup (plain PostgreSQL, migration 0027) and mark packed days stale. A redelivered message's readings are
stored once: on a duplicate, the batch is inserted with ON CONFLICT DO NOTHING and only its new readings count.
One connection, one transaction per batch."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)
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
# One row per device of a batch (migration 0026): its new readings' earliest and newest times, the newest reading
# of each metric as device_state.latest keeps it, and each metric's earliest reading where that is not its newest.
_STAGE_DEVICES = """CREATE TEMP TABLE IF NOT EXISTS pw_device_staging (
    device_id text, first_ts timestamptz, last_ts timestamptz, latest jsonb, firsts jsonb) ON COMMIT DELETE ROWS"""

# Each device's state, one row per device of the batch, read and written once by its key. Where all of a device's
# new readings are after everything it held (a live stream), its latest values are the two documents joined;
# else each metric moves forward only, and the batch is late for the device where a metric's earliest new reading
# is at or before that metric's newest (the update computes `late` from the old row: RETURNING gives new values).
# A late batch, or one whose readings are older than the late rule's age, marks a late window for the device.
# The staging rows are in device id order, so two ingest processes lock devices in the same order.
_STATE = """
WITH upd AS (
  UPDATE device_state d SET
    seen_at = greatest(d.seen_at, %(seen)s::timestamptz),
    max_ts = greatest(d.max_ts, x.last_ts),
    late = CASE WHEN d.max_ts >= x.first_ts THEN pw_latest_late(d.latest, coalesce(x.firsts, x.latest)) ELSE false END,
    latest = CASE WHEN d.max_ts >= x.first_ts THEN pw_latest_merge(d.latest, x.latest) ELSE d.latest || x.latest END
  FROM pw_device_staging x WHERE d.device_id = x.device_id
  RETURNING d.device_id, x.first_ts, x.last_ts, d.late
), late AS (
  INSERT INTO late_windows (device_id, start_ts, end_ts)
  SELECT device_id, first_ts, last_ts FROM upd
  WHERE late OR first_ts < now() - make_interval(secs => %(late_s)s)
)
SELECT count(*) FROM upd
"""

# Readings at an hour long closed: on plain PostgreSQL, those before the rollup's watermark are added to
# readings_hourly_closed (migration 0027: hours from the watermark on are aggregated from raw readings when read);
# on both engines, a day of the rollup that may be packed already (store.hourly_days: days are packed 30 hours
# after they end) is marked stale, so it is packed again. Given a CTE `ins` of exactly the new rows; rare on a
# live stream (the writer runs it only when the batch has such readings), the rule for a backlog.
_OLD_HOURS = """
, r AS (SELECT series_id, ts, value, date_trunc('hour', ts) AS hour FROM ins WHERE value IS NOT NULL){closed}
, stale AS (
  INSERT INTO hourly_days AS d (series_id, day, means, version)
  SELECT DISTINCT series_id, (hour AT TIME ZONE 'UTC')::date, NULL::bytea, 1 FROM r
  WHERE hour < now() - make_interval(secs => %(mark_s)s)
  ON CONFLICT (series_id, day) DO UPDATE SET means = NULL, version = d.version + 1)"""
# How readings_hourly_closed takes an hour's aggregate (series_id, hour, n, total, vmin, vmax) from `rows`: added to
# what it holds of that hour. The one rule for both that add to it: the writer (a late reading, a backlog) and the
# rollup's move (store.rollup).
CLOSED_ADD = """INSERT INTO readings_hourly_closed AS h (series_id, hour, n, total, vmin, vmax)
  SELECT series_id, hour, n, total, vmin, vmax FROM ({rows}) x ORDER BY 1, 2
  ON CONFLICT (series_id, hour) DO UPDATE SET
    n = h.n + excluded.n, total = h.total + excluded.total,
    vmin = least(h.vmin, excluded.vmin), vmax = greatest(h.vmax, excluded.vmax)"""
_CLOSED = (
    "\n, closed AS ("
    + CLOSED_ADD.format(
        rows="SELECT series_id, hour, count(*) AS n, sum(value) AS total, min(value) AS vmin, max(value) AS vmax"
        " FROM r WHERE hour < %(wm)s::timestamptz GROUP BY 1, 2"
    )
    + ")"
)

# Fast path: no row of the batch exists yet (the usual case): the rows go into readings by COPY; where some are at
# old hours, also into the staging table, for the statement above.
_COPY_STAGING = "COPY pw_staging (series_id, ts, value, label) FROM STDIN (FORMAT BINARY)"
_COPY_READINGS = "COPY readings (series_id, ts, value, label) FROM STDIN (FORMAT BINARY)"
_COPY_DEVICES = "COPY pw_device_staging (device_id, first_ts, last_ts, latest, firsts) FROM STDIN (FORMAT BINARY)"
_FAST_OLD = "WITH ins AS (SELECT series_id, ts, value FROM pw_staging)" + _OLD_HOURS + "\nSELECT 1"

# Slow path, after a unique violation (a redelivered message): insert what is new and learn which rows those were.
_CONFLICT = (
    """WITH ins AS (
  INSERT INTO readings (series_id, ts, value, label)
  SELECT series_id, ts, value, label FROM pw_staging
  ON CONFLICT DO NOTHING
  RETURNING series_id, ts, value
)"""
    + _OLD_HOURS
    + "\nSELECT series_id, ts FROM ins"
)

# Where readings stop going to the closed hours (migration 0027): the watermark, or the next one while a move is
# under way; read under the lock the move takes exclusively while it names the next one (store.rollup).
# Two statements: a statement's snapshot is taken before its lock is had, so one that waited for a move would read
# the watermark as it was before the move named the next one.
ROLLUP_LOCK = 0x726F6C6C  # 'roll'
_ROLLUP_SHARED = f"SELECT pg_advisory_xact_lock_shared({ROLLUP_LOCK})"
_WATERMARK = "SELECT coalesce(wm_next, wm) FROM hourly_watermark"


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
        self._prefixes: dict[str, bytes] = {}  # each device's row start in pw_device_staging (_live)
        # Plain PostgreSQL: readings before the rollup's watermark are added to the closed hours (migration 0027);
        # TimescaleDB keeps its rollup itself (its continuous aggregate, migrations 0002 and 0015).
        self.native = engine != "timescale"
        self._state = _STATE
        self._old_fast = _FAST_OLD.format(closed=_CLOSED if self.native else "")
        self._conflict = _CONFLICT.format(closed=_CLOSED if self.native else "")
        with self.conn.transaction():
            self.conn.execute(_STAGE)
            self.conn.execute(_STAGE_DEVICES)
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
        # Staging tables empty at commit; inside a caller's transaction (a history import: one for the whole file)
        # they are emptied here, so no batch sees another's rows.
        nested = self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        with self.conn.transaction():
            if nested:
                self.conn.execute("TRUNCATE pw_staging, pw_device_staging")
            inserted, devices = self._write_readings(batch, pending)
            self._write_dead(batch.dead)
            # A device whose new readings were written was marked seen in its state row (migration 0026); the
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
        # A device's state row (migration 0026) is made with its first series, here: the batch's statement only
        # updates. Cached series are of devices whose row exists (a deleted device empties the cache: deletions).
        self.conn.execute(
            f"INSERT INTO device_state (device_id) SELECT DISTINCT d FROM {keys} ORDER BY 1 ON CONFLICT DO NOTHING",
            (devs, mets),
        )
        rows = self.conn.execute(
            f"SELECT s.id, s.device_id, s.metric FROM series s JOIN {keys} ON s.device_id = x.d AND s.metric = x.m",
            (devs, mets),
        ).fetchall()
        for sid, dev, met in rows:
            pending[(dev, met)] = sid

    def _write_readings(self, batch: Batch, pending: dict[tuple[str, str], int]) -> tuple[int, list[str]]:
        if not batch.readings and not batch.fast:
            return 0, []
        live = None if batch.readings else self._live(batch.fast, pending)
        buf = self._pack(batch, pending) if live is None else live[0]
        cur = self.conn.cursor()
        # When the batch's messages arrived, for the devices they carry (seen_at): the newest arrival of the batch,
        # so a device may read as seen up to one batch (under a second) later than its own message came.
        seen = max(batch.seen.values()) if batch.seen else None
        params: dict[str, object] = {
            "late_s": self.late_after_s,
            "mark_s": LATE_MARK.total_seconds(),
            "seen": seen,
            "wm": None,
        }
        wm_us = None
        if self.native:
            cur.execute(_ROLLUP_SHARED)
            row = cur.execute(_WATERMARK).fetchone()
            assert row is not None, "hourly_watermark has no row (migration 0027)"
            params["wm"] = row[0]
            wm_us = (row[0] - _UNIX) // _US
        try:
            with self.conn.transaction(), cur.copy(_COPY_READINGS) as copy:  # a savepoint: a duplicate undoes it
                copy.write(buf)
        except psycopg.errors.UniqueViolation:
            with cur.copy(_COPY_STAGING) as copy:
                copy.write(buf)
            new = {(sid, (ts - _UNIX) // _US) for sid, ts in cur.execute(self._conflict, params).fetchall()}
            states, _ = self._states(batch, pending, new)
            devices, device_data = sorted(states), _device_rows(states) if states else b""
            inserted = len(new)
        else:
            if live is None:
                states, first_us = self._states(batch, pending, None)
                devices, device_data = sorted(states), _device_rows(states) if states else b""
            else:
                _, devices, device_data, first_us = live
            inserted = sum(len(rows) for _, rows in batch.fast) + len(batch.readings)
            # Readings at hours long closed (a backlog, late ones): rare on a live stream, so decided here. Packed
            # days are marked by the server's clock in the statement; an hour of room for the two clocks.
            old = (time.time() * 1e6) - (LATE_MARK - _HOUR).total_seconds() * 1e6
            if first_us < old or (wm_us is not None and first_us < wm_us):
                with cur.copy(_COPY_STAGING) as copy:
                    copy.write(buf)
                cur.execute(self._old_fast, params)
        if devices:
            with cur.copy(_COPY_DEVICES) as copy:
                copy.write(device_data)
            cur.execute(self._state, params)
        return inserted, devices

    def _live(
        self, fast: FastRows, pending: dict[tuple[str, str], int]
    ) -> tuple[bytearray, list[str], bytes, int] | None:
        """A live stream's batch (each device in one message, each message's readings of distinct metrics at one
        time) in one pass: its readings as one binary COPY's data, as _pack makes them; its devices in id order;
        their pw_device_staging rows, as _device_rows(_states(...)) makes them; the earliest reading time. None for
        any other batch (a backlog, a device's several messages), which _pack and _states take. On the same batches
        it costs the client 15 to 23 % less than those passes, at 5,000 and 50,000 devices: no per-metric lists,
        one loop, each device's row start made once (bench.ingest_writer --passes)."""
        by_device = self._series
        prefixes = self._prefixes
        none: dict[str, int] = {}
        shift = UNIX_TO_PG_US
        pack = _FAST_ROW.pack
        dumps = orjson.dumps
        middle = _DEVICE_MIDDLE.pack
        packed = bytearray(_COPY_SIGNATURE)
        rows_of: dict[str, bytes] = {}
        missed: list[tuple[str, str, int, float]] = []
        first = 2**63
        at, iso = -1, ""
        for dev, rows in fast:
            if dev in rows_of:
                return None
            if not rows:
                continue
            series = by_device.get(dev, none)
            us = rows[0][1]
            if us != at:
                at, iso = us, _iso(us)
            latest: dict[str, dict[str, object]] = {}
            for m, t, v in rows:
                if t != us or m in latest:
                    return None
                latest[m] = {"ts": iso, "value": v}
                sid = series.get(m)
                if sid is None:
                    missed.append((dev, m, t, v))
                else:
                    packed += pack(4, 4, sid, 8, t - shift, 8, v, -1)
            if us < first:
                first = us
            prefix = prefixes.get(dev)
            if prefix is None:
                prefix = _device_prefix(dev)
                if len(prefixes) >= _PREFIXES_MAX:
                    prefixes.clear()
                prefixes[dev] = prefix
            doc = dumps(latest)
            rows_of[dev] = prefix + middle(8, us - shift, 8, us - shift, len(doc) + 1, 1) + doc + _NULL
        self._pack_missed(packed, missed, set(), pending)
        packed += _COPY_TRAILER
        devices = sorted(rows_of)
        return packed, devices, _COPY_SIGNATURE + b"".join([rows_of[d] for d in devices]) + _COPY_TRAILER, first

    def _pack_missed(
        self,
        packed: bytearray,
        missed: list[tuple[str, str, int, float]],
        keys: set[tuple[str, str]],
        pending: dict[tuple[str, str], int],
    ) -> None:
        """Fast lane rows whose series ids were not cached, packed once their ids are looked up or made, with those
        of `keys` (the batch's other series not cached)."""
        keys.update((dev, m) for dev, m, _, _ in missed)
        self._series_ids(keys, pending)
        pack = _FAST_ROW.pack
        for dev, m, us, v in missed:
            packed += pack(4, 4, pending[(dev, m)], 8, us - UNIX_TO_PG_US, 8, v, -1)

    def _pack(self, batch: Batch, pending: dict[tuple[str, str], int]) -> bytearray:
        """The batch's readings as one binary COPY's data (series ids looked up, or made, on the way)."""
        readings, fast = batch.readings, batch.fast
        by_device = self._series
        device_ids = by_device.get
        none: dict[str, int] = {}
        shift = UNIX_TO_PG_US
        missed: list[tuple[str, str, int, float]] = []  # series not yet known: written once their ids are
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
        keys = {(r.device_id, r.metric) for r in readings if r.metric not in by_device.get(r.device_id, none)}
        self._pack_missed(packed, missed, keys, pending)
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
            # psycopg's rows are its signature, the rows and the trailer: the fast rows go in after the signature.
            buf = out.data
            buf[len(_COPY_SIGNATURE) : len(_COPY_SIGNATURE)] = packed
        else:
            buf = bytearray(_COPY_SIGNATURE)
            buf += packed
            buf += _COPY_TRAILER
        return buf

    def _states(
        self, batch: Batch, pending: dict[tuple[str, str], int], new: set[tuple[int, int]] | None
    ) -> tuple[dict[str, dict[str, list]], int]:
        """Per device of the batch, per metric: [earliest, newest time (epoch microseconds), the newest's value,
        its label]; and the earliest time of all. Only the rows in `new` ((series id, time)) when it is given."""
        states: dict[str, dict[str, list]] = {}
        first = 2**63
        by_device = self._series
        none: dict[str, int] = {}

        def sid(dev: str, m: str) -> int:
            got = by_device.get(dev, none).get(m)
            return pending[(dev, m)] if got is None else got

        def put(st: dict[str, list], m: str, us: int, v: float | None, label: str | None) -> None:
            e = st.get(m)
            if e is None:
                st[m] = [us, us, v, label]
            elif us > e[1]:
                e[1], e[2], e[3] = us, v, label
            elif us < e[0]:
                e[0] = us

        for dev, rows in batch.fast:
            st = states.get(dev)
            if st is None:
                st = states[dev] = {}
            for m, us, v in rows:
                if new is not None and (sid(dev, m), us) not in new:
                    continue
                if m in st:
                    put(st, m, us, v, None)  # a metric's second reading in the batch (a backlog)
                else:
                    st[m] = [us, us, v, None]  # the live stream's case, without a call
                if us < first:
                    first = us
        for r in batch.readings:
            us = (r.ts - _UNIX) // _US
            if new is None or (sid(r.device_id, r.metric), us) in new:
                put(states.setdefault(r.device_id, {}), r.metric, us, r.value, r.label)
                if us < first:
                    first = us
        # A device whose readings were all stored already (a redelivery) has no new state.
        return {dev: st for dev, st in states.items() if st}, first

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


_DEVICE_HEAD = struct.Struct(">hi")  # 5 fields, then the device id's length
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
# After a device's id: first_ts and last_ts (each with its length), then `latest`'s length and jsonb's binary form's
# version byte (1), which its text follows.
_DEVICE_MIDDLE = struct.Struct(">iqiqib")
_PREFIXES_MAX = 200_000  # devices whose row's start Writer._live remembers (forgotten all at once past the count)


def _device_prefix(dev: str) -> bytes:
    """The start of a device's pw_device_staging row in binary COPY: the field count and the device id."""
    d = dev.encode()
    return _DEVICE_HEAD.pack(5, len(d)) + d


def _device_rows(states: dict[str, dict[str, list]]) -> bytes:
    """pw_device_staging's rows as binary COPY data, in device id order: each device's earliest and newest reading
    time, `latest` ({"metric": {"ts", "value"}}: the value, else the label, as the API shows them) and `firsts`
    (each metric's earliest time, where one is not its newest)."""
    out = bytearray(_COPY_SIGNATURE)
    shift = UNIX_TO_PG_US
    dumps = orjson.dumps
    for dev in sorted(states):
        metrics = states[dev]
        first, last = 2**63, -(2**63)
        latest: dict[str, dict[str, object]] = {}
        spread = False
        at, iso = -1, ""  # a message's metrics share their time: formatted once
        for m, (lo, hi, v, label) in metrics.items():
            if hi != at:
                at, iso = hi, _iso(hi)
            latest[m] = {"ts": iso, "value": label if v is None else v}
            if lo < first:
                first = lo
            if hi > last:
                last = hi
            if lo != hi:
                spread = True
        doc = dumps(latest)
        out += _device_prefix(dev) + _DEVICE_MIDDLE.pack(8, first - shift, 8, last - shift, len(doc) + 1, 1) + doc
        if spread:
            firsts = b"\x01" + dumps({m: {"ts": _iso(lo)} for m, (lo, _, _, _) in metrics.items()})
            out += _LENGTH.pack(len(firsts)) + firsts
        else:
            out += _NULL
    out += _COPY_TRAILER
    return bytes(out)


_SECONDS: dict[int, str] = {}  # a live stream's reading times share their seconds: each formatted once
_FRACTIONS: dict[int, str] = {0: "+00:00"}  # and their fractions, when whole milliseconds: each formatted once


def _iso(us: int) -> str:
    """A time (epoch microseconds) as PostgreSQL writes a timestamptz in JSON in UTC: 2024-01-15T06:30:00.5+00:00
    (fractional seconds only when there are any, without trailing zeros)."""
    s, frac = divmod(us, 1_000_000)
    text = _SECONDS.get(s)
    if text is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        text = _SECONDS[s] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    tail = _FRACTIONS.get(frac)
    if tail is None:
        tail = "." + f"{frac:06d}".rstrip("0") + "+00:00"
        if frac % 1000 == 0:  # whole milliseconds: at most a thousand
            _FRACTIONS[frac] = tail
    return text + tail
