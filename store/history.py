"""Station history loaded by COPY into the tables ingest writes, with ingest's own writer (store.writer): readings,
series and their latest values, the hourly rollup, the stale marks of packed days (store.hourly_days) and the
late windows the evaluators re-check. All in one transaction: a file is loaded whole or not at all.

Stations the registry does not know become road stations at the position the file gives (through
store.registry, so the load is recorded like any other); known ones are left alone. Readings are keyed by
(series, time), so loading the same file again adds nothing and says "0 new".
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from core.history import FileRefused, Row, StationInfo
from core.model import Reading
from core.registry import parse_registry
from store import registry
from store.migrate import engine
from store.writer import Batch, Writer

log = logging.getLogger("placewatch.history")
BATCH_READINGS = 50_000  # readings per COPY: a bounded buffer whatever the file's size
_US = timedelta(microseconds=1)
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)

# (line, reason, whole row?) for each row not loaded and each value dropped from a row that was
OnIssue = Callable[[int, str, bool], None]


class HistoryRefused(FileRefused):
    """The file is refused whole; nothing of it was written."""


@dataclass(slots=True)
class ImportStats:
    """What a load did (or, in a dry run, would do)."""

    rows: int = 0  # data rows read
    bad_rows: int = 0  # rows not loaded at all
    bad_values: int = 0  # values dropped from rows that were otherwise loaded
    empty_rows: int = 0  # rows with a station and a time but no value
    readings: int = 0  # readings offered to the store
    new: int = 0  # of them, not stored before
    stations: set[str] = field(default_factory=set)  # stations with readings in the file
    registered: list[str] = field(default_factory=list)  # new road stations
    first_us: int | None = None
    last_us: int | None = None
    metrics: Counter[str] = field(default_factory=Counter)
    first_issue: tuple[int, str] | None = None
    dry_run: bool = False
    differing: int = 0  # readings of the file already stored with another value (the stored value kept)
    differing_examples: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Readings already stored, or repeated in the file."""
        return self.readings - self.new

    def span(self) -> tuple[datetime, datetime] | None:
        """The first and last reading time in the file."""
        if self.first_us is None or self.last_us is None:
            return None
        return _UNIX + self.first_us * _US, _UNIX + self.last_us * _US


def import_history(
    conn: psycopg.Connection,
    rows: Iterable[tuple[int, Row | str]],
    *,
    source: str,
    stations: Mapping[str, StationInfo] | None = None,
    dry_run: bool = False,
    batch_readings: int = BATCH_READINGS,
    on_issue: OnIssue | None = None,
) -> ImportStats:
    """Load (line, row or reason) pairs in one transaction; a dry run does everything and rolls back.

    Raises HistoryRefused (nothing written) when no reading of the file can be loaded, and passes on any
    FileRefused the rows raise. `conn` must be in autocommit mode (the writer opens its own savepoints)."""
    if not conn.autocommit:
        raise ValueError("import_history needs an autocommit connection")
    stats = ImportStats(dry_run=dry_run)

    def issue(line: int, reason: str, whole: bool) -> None:
        if stats.first_issue is None:
            stats.first_issue = (line, reason)
        if on_issue is not None:
            on_issue(line, reason, whole)

    eng = engine(conn)
    conn.execute("SET jit = off")  # many small statements: compiling them costs more than running them
    seen: dict[str, int] = {}  # station -> latest new reading (microseconds), for devices.last_seen
    with conn.transaction():
        writer = Writer(conn, engine=eng)
        known = _Stations(conn, stations or {}, source)
        pending: list[tuple[int, Row]] = []
        idle: set[str] = set()  # stations seen only in rows with no value: registered all the same
        size = 0
        for line, row in rows:
            stats.rows += 1
            if isinstance(row, str):
                stats.bad_rows += 1
                issue(line, row, True)
                continue
            for reason in row.dropped:
                stats.bad_values += 1
                issue(line, reason, False)
            known.note(row)
            count = len(row.values) + len(row.labels)
            if not count:
                stats.empty_rows += 1
                idle.add(row.station)
                continue
            pending.append((line, row))
            size += count
            if size >= batch_readings:
                _flush(conn, writer, known, pending, stats, seen, issue)
                pending, size = [], 0
        _flush(conn, writer, known, pending, stats, seen, issue)
        known.resolve(idle)
        stats.registered = known.registered
        if stats.readings == 0 and (stats.bad_rows or stats.bad_values):
            where = stats.first_issue
            raise HistoryRefused(
                f"no reading of the file could be loaded ({stats.bad_rows} bad rows, {stats.bad_values} values "
                f"not loaded); the first: {where[1] if where else '?'}",
                line=where[0] if where else None,
            )
        if seen:
            ids = sorted(seen)
            conn.execute(
                """UPDATE devices d SET last_seen = x.seen
                   FROM unnest(%s::text[], %s::timestamptz[]) AS x(id, seen)
                   WHERE d.id = x.id AND (d.last_seen IS NULL OR d.last_seen < x.seen)""",
                (ids, [_UNIX + seen[i] * _US for i in ids]),
            )
        if dry_run:
            raise psycopg.Rollback()
    if eng == "timescale" and stats.new and not dry_run:
        _refresh_rollup(conn, stats)
    return stats


def _flush(
    conn: psycopg.Connection,
    writer: Writer,
    known: _Stations,
    pending: list[tuple[int, Row]],
    stats: ImportStats,
    seen: dict[str, int],
    issue: OnIssue,
) -> None:
    """Write one batch of rows: register the new stations among them, then COPY their readings."""
    if not pending:
        return
    refused = known.resolve({row.station for _, row in pending})
    batch = Batch()
    latest: dict[str, int] = {}
    offered = 0
    for line, row in pending:
        why = refused.get(row.station)
        if why is not None:
            stats.bad_rows += 1
            issue(line, why, True)
            continue
        st, us = row.station, row.us
        if row.values:
            batch.fast.append((st, [(m, us, v) for m, v in row.values]))
        for m, label in row.labels:
            batch.readings.append(Reading(st, m, _UNIX + us * _US, None, label))
        for m, _ in row.values:
            stats.metrics[m] += 1
        for m, _ in row.labels:
            stats.metrics[m] += 1
        offered += len(row.values) + len(row.labels)
        stats.stations.add(st)
        if latest.get(st, us - 1) < us:
            latest[st] = us
        if stats.first_us is None or us < stats.first_us:
            stats.first_us = us
        if stats.last_us is None or us > stats.last_us:
            stats.last_us = us
    if not offered:
        return
    result = writer.write(batch)
    if result.inserted < offered:
        # Readings already stored (or twice in the file) with another value: the stored one stays; say so.
        stats.differing += _differing(conn, stats.differing_examples)
    stats.readings += offered
    stats.new += result.inserted
    for dev in result.devices:
        if dev in latest and seen.get(dev, latest[dev] - 1) < latest[dev]:
            seen[dev] = latest[dev]


def _differing(conn: psycopg.Connection, examples: list[str]) -> int:
    """How many rows of the batch just written (the writer's staging table) differ from the reading stored at
    their series and time; a few are described in `examples`."""
    rows = conn.execute(
        """SELECT count(*) OVER (), se.device_id, se.metric, r.ts, r.value, r.label, p.value, p.label
           FROM pw_staging p
           JOIN readings r ON r.series_id = p.series_id AND r.ts = p.ts
           JOIN series se ON se.id = p.series_id
           WHERE (r.value, r.label) IS DISTINCT FROM (p.value, p.label)
           LIMIT 5"""
    ).fetchall()
    for _, dev, metric, ts, value, label, given, given_label in rows:
        if len(examples) < 5:
            stored = label if value is None else f"{value:g}"
            new = given_label if given is None else f"{given:g}"
            examples.append(f"{dev} {metric} at {ts:%Y-%m-%d %H:%M:%S} UTC: stored {stored}, the file says {new}")
    return int(rows[0][0]) if rows else 0


class _Stations:
    """Which stations of the file may take readings: known road stations, and new ones registered on first
    sight at the first position the file gives; anything else is refused with its reason."""

    def __init__(self, conn: psycopg.Connection, table: Mapping[str, StationInfo], source: str) -> None:
        self.conn = conn
        self.table = table
        self.source = source
        self.status: dict[str, str | None] = {}  # station -> None (takes readings) or why not
        self.positions: dict[str, tuple[float, float]] = {}
        self.problems: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.elevations: dict[str, float] = {}
        self.registered: list[str] = []  # stations added to the registry by this load

    def note(self, row: Row) -> None:
        """Remember what a row says about its station (the first usable position, name and elevation)."""
        st = row.station
        if st in self.status:
            return
        if row.position is not None:
            self.positions.setdefault(st, row.position)
        elif row.position_problem is not None:
            self.problems.setdefault(st, row.position_problem)
        if row.name:
            self.names.setdefault(st, row.name)
        if row.elevation_m is not None:
            self.elevations.setdefault(st, row.elevation_m)

    def resolve(self, ids: set[str]) -> dict[str, str]:
        """Settle these stations (registering the new ones); return those refused, with the reason."""
        todo = sorted(i for i in ids if i not in self.status)
        if todo:
            kinds = dict(self.conn.execute("SELECT id, kind FROM devices WHERE id = ANY(%s)", (todo,)).fetchall())
            features = []
            for st in todo:
                kind = kinds.get(st)
                if kind == "road_station":
                    self.status[st] = None
                elif kind is not None:
                    self.status[st] = f"station {st!r} is a {kind} in the registry, not a road station"
                else:
                    feature = self._feature(st)
                    if isinstance(feature, str):
                        self.status[st] = feature
                    else:
                        features.append(feature)
                        self.status[st] = None
            if features:
                text = json.dumps({"type": "FeatureCollection", "features": features}, indent=1)
                registry.load(self.conn, parse_registry(text), text=text, loaded_by=f"history import {self.source}")
                self.registered.extend(f["properties"]["id"] for f in features)
        return {i: why for i in ids if (why := self.status[i]) is not None}

    def _feature(self, st: str) -> dict[str, object] | str:
        info = self.table.get(st)
        position = self.positions.get(st)
        if position is None and info is not None and info.lon is not None and info.lat is not None:
            position = (info.lon, info.lat)
        if position is None:
            why = self.problems.get(st, "no row so far gives its position")
            return f"station {st!r} is not in the registry and cannot be added: {why}"
        props: dict[str, object] = {"kind": "road_station", "id": st, "history_source": self.source}
        name = self.names.get(st) or (info.name if info else None)
        if name:
            props["name"] = name
        elevation = self.elevations.get(st, info.elevation_m if info else None)
        if elevation is not None:
            props["elevation_m"] = round(elevation, 2)
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(position)}, "properties": props}


def _refresh_rollup(conn: psycopg.Connection, stats: ImportStats) -> None:
    """TimescaleDB: materialise the hourly aggregate over the loaded span now, rather than at the policy's next
    run (up to 5 minutes)."""
    span = stats.span()
    if span is None:
        return
    start = span[0].replace(minute=0, second=0, microsecond=0)
    end = span[1].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    # Migration 0015 (where applied) renames the aggregate and puts a view that reads the unmaterialised ranges
    # from raw readings in its place: then this only saves those reads.
    row = conn.execute("SELECT to_regclass('readings_hourly_cagg') IS NOT NULL").fetchone()
    name = "readings_hourly_cagg" if row and row[0] else "readings_hourly"
    try:
        conn.execute(
            sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
                sql.Literal(name), sql.Literal(start), sql.Literal(end)
            )
        )
    except psycopg.Error as exc:
        log.warning("the hourly aggregate will show the history at its next scheduled refresh: %s", exc)
