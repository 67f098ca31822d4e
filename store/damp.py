"""All damp and mould SQL: hourly inputs for many homes at once, assessments, home state, cases and their
audit log, the retained-alert bookkeeping, and the scoped reads of the API (a tenant sees their home, an
officer the homes of their patch, admin all)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg.types.json import Jsonb

from core.cases import STEPS, CaseLevel, CaseStatus
from core.damp import WORK_LIST_RANK, DampLevel, Level
from core.model import Principal
from store import hourly_days
from store.db import PG_EPOCH
from store.queries import scope_params
from store.rows import MappingRow, typed, typed_with

# Which homes a principal may see, as a WHERE fragment over homes h (parameters: role, home, patch).
HOME_SCOPE = """(%(role)s = 'admin'
   OR (%(role)s = 'officer' AND h.patch = %(patch)s)
   OR (%(role)s = 'tenant' AND h.id = %(home)s))"""

INDOOR_METRICS = ("temperature", "relative_humidity")
OUTDOOR_METRICS = ("air_temperature", "temperature")  # the first a device has is the outdoor feed
NEAREST_STATION_KM = 20.0  # a home with no outdoor feed named uses the nearest road station this close
_HOUR_US = 3_600_000_000

# A home's devices that measure its rooms: the ones placed in it, except the one named as its outdoor feed.
_ROOM_DEVICE = "d.home_id = h.id AND d.id IS DISTINCT FROM h.outdoor"


def _next_due(steps: Sequence[tuple[str, str, tuple[str, ...]]]) -> str:
    """The soonest deadline of a step not yet done, over damp_cases c (NULL when none, or the case is closed): the
    first deadline of core.cases.outstanding, made from the same steps (core.cases.STEPS: each step's deadline column
    and the columns that, all set, mean it is done). LEAST ignores NULLs."""
    pending = ",\n    ".join(
        f"CASE WHEN {' OR '.join(f'c.{col} IS NULL' for col in done_by)} THEN c.{due} END" for _, due, done_by in steps
    )
    return f"CASE WHEN c.closed_at IS NULL THEN LEAST(\n    {pending}) END"


# A case is overdue exactly when this is in the past.
NEXT_DUE = _next_due(STEPS)


@dataclass(frozen=True, slots=True)
class Case(MappingRow):
    """A damp_cases row, and what some reads join to it (the home's patch, address and level; the responsible
    officer's account, for core.cases.owner_problem; the evidence). A mapping too: core.cases' rules read a case
    as one."""

    id: int
    home_id: str
    level: str
    status: str
    opened_at: datetime
    aware_at: datetime
    aware_source: str
    assessment_id: int | None
    investigate_by: datetime
    acknowledged_at: datetime | None
    visited_at: datetime | None
    investigation_done_at: datetime | None
    summary_by: datetime | None
    summary_sent_at: datetime | None
    safety_work_by: datetime | None
    safety_work_done_at: datetime | None
    preventative_begin_by: datetime | None
    preventative_physically_started_by: datetime | None
    works_started_at: datetime | None
    emergency_confirmed_at: datetime | None
    emergency_by: datetime | None
    closed_at: datetime | None
    overdue_steps: list[str]
    updated_at: datetime
    officer: str | None
    visit_booked_for: datetime | None
    visit_booked_note: str | None
    works_completed_at: datetime | None
    # joined by some reads, not columns of damp_cases
    patch: str | None = None
    address: str | None = None
    home_level: str | None = None
    officer_role: str | None = None
    officer_patch: str | None = None
    officer_disabled: bool | None = None
    evidence: Any = None


_JOINED = frozenset({"patch", "address", "home_level", "officer_role", "officer_patch", "officer_disabled", "evidence"})
# The columns of damp_cases the reads select (evidence only for one case).
CASE_COLUMNS = tuple(f.name for f in fields(Case) if f.name not in _JOINED)
_CASE_SELECT = ", ".join(f"c.{col}" for col in CASE_COLUMNS)
# The case columns of a read that gives a case inside another row (store.rows.typed_with, prefix case_).
_CASE_AS_PART = ", ".join(f"c.{col} AS case_{col}" for col in CASE_COLUMNS)
# The responsible officer's account, for core.cases.owner_problem (join users u ON u.name = c.officer).
_OFFICER_SELECT = "u.role AS officer_role, u.patch AS officer_patch, u.disabled AS officer_disabled"
# Columns an officer's action may change (core.cases.apply_action returns some of these).
UPDATABLE = frozenset(CASE_COLUMNS) - {"id", "home_id", "opened_at", "aware_at", "aware_source", "assessment_id"}


# ---------------------------------------------------------------------------------------------
# The evaluator's inputs

# A GeoJSON Point with numeric coordinates; the great-circle distance in km between homes h and devices d.
_POINT = (
    "({g}->>'type' = 'Point' AND jsonb_typeof({g}->'coordinates'->0) = 'number'"
    " AND jsonb_typeof({g}->'coordinates'->1) = 'number')"
)
_KM = """(2 * 6371.0 * asin(least(1.0, sqrt(
    power(sin(radians(((d.geometry->'coordinates'->>1)::float8 - (h.geometry->'coordinates'->>1)::float8) / 2)), 2)
    + cos(radians((h.geometry->'coordinates'->>1)::float8)) * cos(radians((d.geometry->'coordinates'->>1)::float8))
    * power(sin(radians(((d.geometry->'coordinates'->>0)::float8 - (h.geometry->'coordinates'->>0)::float8) / 2)), 2)
))))"""


@dataclass(frozen=True, slots=True)
class RoomSensor:
    """A device measuring one room of a home, and its temperature and humidity series (None: no readings yet)."""

    home_id: str
    room: str
    device_id: str
    temperature_series: int | None
    humidity_series: int | None


@dataclass(frozen=True, slots=True)
class OutdoorFeed:
    """The outdoor temperature of a home: a device's series, named in the registry or the nearest road station's."""

    device_id: str
    metric: str
    series_id: int | None
    how: str = "configured"  # or "nearest station"
    distance_km: float | None = None


@dataclass(slots=True)
class HourlyInputs:
    """Hourly means for the homes of one chunk, on the grid start + i hours (NaN where nothing was measured)."""

    start: datetime
    hours: int
    sensors: dict[str, list[RoomSensor]] = field(default_factory=dict)
    outdoor: dict[str, OutdoorFeed] = field(default_factory=dict)
    series_ids: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    rows: int = 0  # hourly rows read
    row_of: dict[int, int] = field(default_factory=dict)  # series id -> its row of values

    def series(self, series_id: int | None) -> NDArray[np.float64] | None:
        """The hourly means of one series, or None when it has none in the window."""
        i = self.row_of.get(series_id) if series_id is not None else None
        if i is None:
            return None
        row: NDArray[np.float64] = self.values[i]
        return row


def homes_with_sensors(conn: psycopg.Connection, *, after: str | None, limit: int) -> list[str]:
    """The next `limit` homes (by id, after `after`) that have at least one room sensor."""
    # Walking the devices' home index in order reads only the page wanted (an EXISTS per home is planned
    # as a hash join over every device).
    rows = conn.execute(
        f"""SELECT DISTINCT d.home_id FROM devices d JOIN homes h ON {_ROOM_DEVICE}
            WHERE d.home_id > %(after)s AND h.id > %(after)s
            ORDER BY d.home_id LIMIT %(limit)s""",
        {"after": after or "", "limit": limit},
    ).fetchall()
    return [r[0] for r in rows]


def homes_for_devices(conn: psycopg.Connection, device_ids: Sequence[str], *, outdoor: bool) -> list[str]:
    """Homes with a room sensor among these devices (and, with outdoor=True, homes whose outdoor feed is one)."""
    if not device_ids:
        return []
    rows = conn.execute(
        f"""SELECT h.id FROM homes h JOIN devices d ON {_ROOM_DEVICE} WHERE d.id = ANY(%(ids)s)
            UNION
            SELECT h.id FROM homes h WHERE %(outdoor)s AND h.outdoor = ANY(%(ids)s)
              AND EXISTS (SELECT 1 FROM devices d WHERE {_ROOM_DEVICE})
            ORDER BY 1""",
        {"ids": list(device_ids), "outdoor": outdoor},
    ).fetchall()
    return [r[0] for r in rows]


def not_evaluated_since(conn: psycopg.Connection, home_ids: Sequence[str], window_end: datetime) -> list[str]:
    """Those of these homes never evaluated, or last evaluated on a window ending before window_end."""
    rows = conn.execute(
        """SELECT x.id FROM unnest(%s::text[]) AS x(id)
           LEFT JOIN damp_home_state s ON s.home_id = x.id
           WHERE s.window_end IS NULL OR s.window_end < %s ORDER BY 1""",
        (list(home_ids), window_end),
    ).fetchall()
    return [r[0] for r in rows]


def hourly_inputs(
    conn: psycopg.Connection,
    home_ids: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    outdoor_known: dict[int, NDArray[np.float64]] | None = None,
    nearest_km: float = NEAREST_STATION_KM,
) -> HourlyInputs:
    """Room sensors, outdoor feeds and hourly means (from the hourly rollup) of these homes over [start, end).

    Outdoor feeds are shared by many homes: pass the same `outdoor_known` dict for every chunk of one sweep
    (same window) and each feed is read once; the ones read are added to it."""
    with conn.transaction():
        # One snapshot: the packed days' range and their rows (store.hourly_days) must agree.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # JIT compiling these plans (their estimated costs are high) takes longer than running them: 200 ms
        # against 1 ms. An exact bitmap of the chunk's hourly rows needs more than the default work_mem.
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL work_mem = '64MB'")
        return _hourly_inputs(conn, home_ids, start, end, outdoor_known, nearest_km)


def _hourly_inputs(
    conn: psycopg.Connection,
    home_ids: Sequence[str],
    start: datetime,
    end: datetime,
    outdoor_known: dict[int, NDArray[np.float64]] | None,
    nearest_km: float,
) -> HourlyInputs:
    hours = int((end - start).total_seconds()) // 3600
    out = HourlyInputs(start=start, hours=hours)
    ids = list(home_ids)
    for home, room, dev, t_sid, rh_sid in conn.execute(
        f"""SELECT h.id, coalesce(nullif(btrim(d.room), ''), d.id), d.id,
                   max(s.id) FILTER (WHERE s.metric = 'temperature'),
                   max(s.id) FILTER (WHERE s.metric = 'relative_humidity')
            FROM homes h JOIN devices d ON {_ROOM_DEVICE}
            LEFT JOIN series s ON s.device_id = d.id AND s.metric = ANY(%(metrics)s)
            WHERE h.id = ANY(%(ids)s) AND d.home_id = ANY(%(ids)s)  -- the second lets the devices' home index serve
            GROUP BY h.id, d.id ORDER BY h.id, 2, d.id""",
        {"ids": ids, "metrics": list(INDOOR_METRICS)},
    ):
        out.sensors.setdefault(home, []).append(RoomSensor(home, room, dev, t_sid, rh_sid))
    for home, dev, sid, metric, km in conn.execute(
        f"""SELECT h.id, coalesce(h.outdoor, near.id), o.id, o.metric, near.km FROM homes h
            LEFT JOIN LATERAL (
                SELECT d.id, {_KM} AS km FROM devices d
                WHERE h.outdoor IS NULL AND {_POINT.format(g="h.geometry")} AND d.kind = 'road_station'
                  AND {_POINT.format(g="d.geometry")}
                  AND EXISTS (SELECT 1 FROM series s WHERE s.device_id = d.id AND s.metric = ANY(%(metrics)s))
                ORDER BY km LIMIT 1) near ON true
            LEFT JOIN LATERAL (SELECT s.id, s.metric FROM series s
                               WHERE s.device_id = coalesce(h.outdoor, near.id) AND s.metric = ANY(%(metrics)s)
                               ORDER BY array_position(%(metrics)s, s.metric) LIMIT 1) o ON true
            WHERE h.id = ANY(%(ids)s) AND (h.outdoor IS NOT NULL OR near.km <= %(km)s)""",
        {"ids": ids, "metrics": list(OUTDOOR_METRICS), "km": nearest_km},
    ):
        how = "configured" if km is None else "nearest station"
        out.outdoor[home] = OutdoorFeed(
            dev, metric or OUTDOOR_METRICS[0], sid, how, None if km is None else round(km, 1)
        )
    known = outdoor_known if outdoor_known is not None else {}
    outdoor = {f.series_id for f in out.outdoor.values() if f.series_id is not None}
    indoor = (s for sensors in out.sensors.values() for r in sensors for s in (r.temperature_series, r.humidity_series))
    wanted = {s for s in indoor if s is not None} | outdoor
    series_ids = np.array(sorted(wanted), dtype=np.int64)
    out.series_ids = series_ids
    out.row_of = {s: i for i, s in enumerate(series_ids.tolist())}
    out.values = np.full((len(series_ids), hours), np.nan)
    if not len(series_ids):
        return out
    fetch = [int(s) for s in series_ids if int(s) not in known]
    if fetch:
        sid, hour_us, value = hourly_days.means(conn, fetch, start, end)
        offset = int((start - PG_EPOCH).total_seconds()) * 1_000_000
        col = (hour_us - offset) // _HOUR_US
        keep = (col >= 0) & (col < hours)
        out.values[_rows_of(series_ids, sid[keep]), col[keep]] = value[keep]
        out.rows = int(keep.sum())
    for s in outdoor:
        row = out.row_of[s]
        if s in known:
            out.values[row] = known[s]
        else:
            known[s] = out.values[row].copy()
    return out


def _rows_of(series_ids: NDArray[np.int64], sid: NDArray[np.int64]) -> NDArray[np.integer[Any]]:
    """The position in series_ids (sorted) of each of sid (all among them)."""
    if not len(sid):
        return np.zeros(0, dtype=np.intp)
    lo, span = int(series_ids[0]), int(series_ids[-1] - series_ids[0]) + 1
    if span > max(8 * len(series_ids), 1 << 20):  # ids too spread out for a lookup table
        return np.searchsorted(series_ids, sid)
    table = np.zeros(span, dtype=np.int32)
    table[series_ids - lo] = np.arange(len(series_ids), dtype=np.int32)
    return table[sid - lo]


# ---------------------------------------------------------------------------------------------
# State, assessments, cases (the evaluator's writes)


@dataclass(frozen=True, slots=True)
class HomeState:
    """What the last evaluation of a home left, with its open case and when its last case closed."""

    home_id: str
    patch: str | None
    level: str | None
    hold_level: str | None
    hold_since: datetime | None
    red_since: datetime | None
    window_end: datetime | None
    signature: str | None
    assessment_id: int | None
    open_case_id: int | None
    open_case_status: str | None
    last_closed_at: datetime | None


def home_states(conn: psycopg.Connection, home_ids: Sequence[str]) -> dict[str, HomeState]:
    """The state of each of these homes (every home given that exists, evaluated or not)."""
    rows = conn.execute(
        """SELECT h.id, h.patch, s.level, s.hold_level, s.hold_since, s.red_since, s.window_end, s.signature,
                  s.assessment_id, c.id, c.status,
                  (SELECT max(x.closed_at) FROM damp_cases x WHERE x.home_id = h.id AND x.closed_at IS NOT NULL)
           FROM homes h LEFT JOIN damp_home_state s ON s.home_id = h.id
           LEFT JOIN damp_cases c ON c.home_id = h.id AND c.closed_at IS NULL AND c.home_id = ANY(%(ids)s)
           WHERE h.id = ANY(%(ids)s)""",
        {"ids": list(home_ids)},
    ).fetchall()
    return {r[0]: HomeState(*r) for r in rows}


def ensure_policy(conn: psycopg.Connection, policy_id: str, values: dict[str, Any]) -> None:
    """Record a set of policy values (once) so assessments can name it."""
    conn.execute(
        "INSERT INTO damp_policies (id, policy) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (policy_id, Jsonb(values)),
    )


@dataclass(frozen=True, slots=True)
class NewAssessment:
    """An assessment to store; reasons and evidence as JSON text."""

    home_id: str
    assessed_at: datetime
    level: str
    raw_level: str
    worst_room: str | None
    coverage: float
    reasons_json: str
    evidence_json: str
    policy_id: str
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True, slots=True)
class StateRow:
    """A home's state after an evaluation."""

    home_id: str
    level: str
    raw_level: str
    hold_level: str | None
    hold_since: datetime | None
    red_since: datetime | None
    assessed_at: datetime
    window_end: datetime
    signature: str
    assessment_id: int | None


_STAGE_ASSESSMENTS = """CREATE TEMP TABLE IF NOT EXISTS damp_stage_assessments (
    home_id text, assessed_at timestamptz, level text, raw_level text, worst_room text, coverage real,
    reasons text, evidence text, policy_id text, window_start timestamptz, window_end timestamptz)
    ON COMMIT DELETE ROWS"""
_STAGE_STATES = """CREATE TEMP TABLE IF NOT EXISTS damp_stage_states (
    home_id text, level text, raw_level text, hold_level text, hold_since timestamptz, red_since timestamptz,
    assessed_at timestamptz, window_end timestamptz, signature text, assessment_id bigint) ON COMMIT DELETE ROWS"""
_STAGE_ASSESSMENT_TYPES = ["text", "timestamptz", "text", "text", "text", "float4"] + ["text"] * 3 + ["timestamptz"] * 2
_STAGE_STATE_TYPES = ["text"] * 4 + ["timestamptz"] * 4 + ["text", "int8"]


def insert_assessments(conn: psycopg.Connection, items: Sequence[NewAssessment]) -> dict[str, int]:
    """Store assessments (inside a transaction); their ids by home."""
    if not items:
        return {}
    conn.execute(_STAGE_ASSESSMENTS)
    # Binary COPY: the JSON documents go as they are, with no escaping to do on either side.
    with conn.cursor().copy("COPY damp_stage_assessments FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_STAGE_ASSESSMENT_TYPES)
        for a in items:
            copy.write_row(
                (
                    a.home_id,
                    a.assessed_at,
                    a.level,
                    a.raw_level,
                    a.worst_room,
                    a.coverage,
                    a.reasons_json,
                    a.evidence_json,
                    a.policy_id,
                    a.window_start,
                    a.window_end,
                )
            )
    rows = conn.execute(
        """INSERT INTO damp_assessments (home_id, assessed_at, level, raw_level, worst_room, coverage, reasons,
                                         evidence, policy_id, window_start, window_end)
           SELECT home_id, assessed_at, level, raw_level, worst_room, coverage, reasons::jsonb, evidence::jsonb,
                  policy_id, window_start, window_end FROM damp_stage_assessments
           RETURNING home_id, id"""
    ).fetchall()
    conn.execute("TRUNCATE damp_stage_assessments")
    return {r[0]: r[1] for r in rows}


def upsert_states(conn: psycopg.Connection, items: Sequence[StateRow]) -> None:
    """Write each home's state after an evaluation (inside a transaction; the alert bookkeeping is left alone)."""
    if not items:
        return
    conn.execute(_STAGE_STATES)
    with conn.cursor().copy("COPY damp_stage_states FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_STAGE_STATE_TYPES)
        for s in items:
            copy.write_row(
                (
                    s.home_id,
                    s.level,
                    s.raw_level,
                    s.hold_level,
                    s.hold_since,
                    s.red_since,
                    s.assessed_at,
                    s.window_end,
                    s.signature,
                    s.assessment_id,
                )
            )
    conn.execute(
        """INSERT INTO damp_home_state AS s (home_id, level, raw_level, hold_level, hold_since, red_since,
                                             assessed_at, window_end, signature, assessment_id)
           SELECT * FROM damp_stage_states
           ON CONFLICT (home_id) DO UPDATE SET level = excluded.level, raw_level = excluded.raw_level,
             hold_level = excluded.hold_level, hold_since = excluded.hold_since, red_since = excluded.red_since,
             assessed_at = excluded.assessed_at, window_end = excluded.window_end, signature = excluded.signature,
             assessment_id = excluded.assessment_id"""
    )
    conn.execute("TRUNCATE damp_stage_states")


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a case's audit log."""

    at: datetime
    actor: str
    actor_role: str
    action: str
    note: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def add_events(conn: psycopg.Connection, items: Iterable[tuple[int, Event]]) -> None:
    """Append lines to case audit logs."""
    rows = [
        (case_id, e.at, e.actor, e.actor_role, e.action, e.note, e.from_status, e.to_status, Jsonb(e.details))
        for case_id, e in items
    ]
    if rows:
        conn.cursor().executemany(
            """INSERT INTO damp_case_events (case_id, at, actor, actor_role, action, note, from_status, to_status,
                                             details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            rows,
        )


@dataclass(frozen=True, slots=True)
class NewCase:
    """A red case to open for a home on the sensors' evidence, and the event that records it."""

    home_id: str
    opened_at: datetime
    aware_at: datetime
    investigate_by: datetime
    assessment_id: int | None
    evidence_json: str | None  # None: the evidence stored with assessment assessment_id
    event: Event
    officer: str | None = None  # the responsible officer (core.cases.choose_officers)


def open_cases(conn: psycopg.Connection, items: Sequence[NewCase]) -> dict[str, int]:
    """Open red cases (inside a transaction), in order, each unless its home has one open already; the ids of
    those opened, by home, each with its 'opened' event logged."""
    if not items:
        return {}
    # Binary parameters: a text array of JSON documents would otherwise be escaped quote by quote.
    rows = conn.execute(
        """INSERT INTO damp_cases (home_id, level, status, opened_at, aware_at, aware_source, assessment_id,
                                   evidence, investigate_by, updated_at, officer)
           SELECT x.home_id, %s::text, %s::text, x.opened_at, x.aware_at, 'sensors', x.assessment_id,
                  coalesce(x.evidence::jsonb, (SELECT a.evidence FROM damp_assessments a WHERE a.id = x.assessment_id)),
                  x.investigate_by, now(), x.officer
           FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::bigint[], %s::text[],
                       %s::timestamptz[], %s::text[]) WITH ORDINALITY
                AS x(home_id, opened_at, aware_at, assessment_id, evidence, investigate_by, officer, ord)
           ORDER BY x.ord
           ON CONFLICT (home_id) WHERE closed_at IS NULL DO NOTHING RETURNING home_id, id""",
        (
            CaseLevel.RED,
            CaseStatus.OPEN,
            [c.home_id for c in items],
            [c.opened_at for c in items],
            [c.aware_at for c in items],
            [c.assessment_id for c in items],
            [c.evidence_json for c in items],
            [c.investigate_by for c in items],
            [c.officer for c in items],
        ),
        binary=True,
    ).fetchall()
    ids = {home: int(case_id) for home, case_id in rows}
    add_events(conn, [(ids[c.home_id], c.event) for c in items if c.home_id in ids])
    return ids


def officer_loads(conn: psycopg.Connection, patches: Sequence[str]) -> dict[str, dict[str, int]]:
    """The enabled housing officers of these patches, each with the number of open cases they are responsible for."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    if not patches:
        return out
    for patch, name, load in conn.execute(
        """SELECT u.patch, u.name, (SELECT count(*) FROM damp_cases c WHERE c.officer = u.name AND c.closed_at IS NULL)
           FROM users u WHERE u.role = 'officer' AND NOT u.disabled AND u.patch = ANY(%s)""",
        (sorted(set(patches)),),
    ):
        out[patch][name] = int(load)
    return out


def cases_past_deadline(conn: psycopg.Connection, now: datetime) -> list[Case]:
    """Open cases with a step not done by its deadline."""
    return list(
        typed(conn, Case).execute(
            f"""SELECT {_CASE_SELECT}, h.patch FROM damp_cases c JOIN homes h ON h.id = c.home_id
                WHERE c.closed_at IS NULL AND {NEXT_DUE} < %s ORDER BY c.id""",
            (now,),
        )
    )


def flag_overdue(conn: psycopg.Connection, case_id: int, step: str, event: Event) -> bool:
    """Mark a step of a case overdue and log it, once per step; True if it was new."""
    row = conn.execute(
        """UPDATE damp_cases SET overdue_steps = array_append(overdue_steps, %s), updated_at = now()
           WHERE id = %s AND NOT (%s = ANY(overdue_steps)) RETURNING id""",
        (step, case_id, step),
    ).fetchone()
    if row is None:
        return False
    add_events(conn, [(case_id, event)])
    return True


# ---------------------------------------------------------------------------------------------
# Retained alerts


def alert_rows(conn: psycopg.Connection, home_ids: Sequence[str]) -> list[HomeAlert]:
    """For each evaluated home: its level, why, the alert last published, and its open case."""
    return list(
        typed_with(conn, HomeAlert, "case", Case, "case_").execute(
            f"""SELECT h.id AS home_id, h.patch, h.address, s.level, s.raw_level, s.assessed_at,
                       a.worst_room, a.reasons, s.published_sig, {_CASE_AS_PART}
                FROM homes h JOIN damp_home_state s ON s.home_id = h.id
                LEFT JOIN damp_assessments a ON a.id = s.assessment_id
                LEFT JOIN damp_cases c ON c.home_id = h.id AND c.closed_at IS NULL AND c.home_id = ANY(%(ids)s)
                WHERE h.id = ANY(%(ids)s) ORDER BY h.id""",
            {"ids": list(home_ids)},
        )
    )


def homes_to_publish(conn: psycopg.Connection, *, limit: int = 10_000) -> list[str]:
    """Homes whose retained alert may not be what the broker has: its last publish failed or it was never
    considered (published_at NULL: mark_unpublished), or a case changed (an officer's action, say) since."""
    rows = conn.execute(
        """SELECT home_id FROM damp_home_state WHERE published_at IS NULL
           UNION
           SELECT c.home_id FROM damp_cases c JOIN damp_home_state s ON s.home_id = c.home_id
           WHERE c.updated_at > coalesce(s.published_at, '-infinity')
           ORDER BY 1 LIMIT %s""",
        (limit,),
    ).fetchall()
    return [r[0] for r in rows]


def mark_published(conn: psycopg.Connection, items: Sequence[tuple[str, str | None]]) -> None:
    """Record what each home's retained alert now says (None: no alert)."""
    if items:
        homes, sigs = zip(*items, strict=True)
        conn.execute(
            """UPDATE damp_home_state s SET published_sig = x.sig, published_at = clock_timestamp()
               FROM unnest(%s::text[], %s::text[]) AS x(home_id, sig) WHERE s.home_id = x.home_id""",
            (list(homes), list(sigs)),
        )


def mark_unpublished(conn: psycopg.Connection, home_ids: Sequence[str]) -> None:
    """Keep these homes' alerts pending (the broker did not acknowledge them): homes_to_publish lists them until
    mark_published records what their alert then says."""
    if home_ids:
        conn.execute("UPDATE damp_home_state SET published_at = NULL WHERE home_id = ANY(%s)", (list(home_ids),))


def unlock(conn: psycopg.Connection, key: int) -> None:
    """Release a session advisory lock."""
    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


# ---------------------------------------------------------------------------------------------
# The API's reads (scoped in SQL) and officer actions


def _risk_rank() -> str:
    """The work list's order (core.damp.WORK_LIST_RANK) in SQL over the home's state s and its open case c."""
    rank = WORK_LIST_RANK
    levels = " ".join(f"WHEN '{level}' THEN {rank[level]}" for level in DampLevel)
    return f"""CASE WHEN c.level = '{CaseLevel.EMERGENCY}' THEN {rank[CaseLevel.EMERGENCY]} ELSE greatest(
    CASE s.level {levels} ELSE -1 END,
    CASE WHEN c.id IS NOT NULL THEN {rank[DampLevel.RED]} ELSE -1 END) END"""


_RISK_RANK = _risk_rank()


@dataclass(frozen=True, slots=True)
class HomeAlert:
    """What a home's retained alert is made of: its level, why, what was last published, and its open case."""

    home_id: str
    patch: str | None
    address: str | None
    level: Level
    raw_level: Level
    assessed_at: datetime
    worst_room: str | None
    reasons: list[str] | None
    published_sig: str | None
    case: Case | None


@dataclass(frozen=True, slots=True)
class HomeListed:
    """A home on the work list: its level (None: never assessed), why, its open case and how urgent it is."""

    id: str
    address: str | None
    patch: str | None
    level: Level | None
    raw_level: Level | None
    assessed_at: datetime | None
    worst_room: str | None
    reasons: list[str] | None
    next_due: datetime | None
    risk: int
    case: Case | None


@dataclass(frozen=True, slots=True)
class HomeDetail:
    """A home with its damp state (level None: never assessed) and last stored assessment."""

    id: str
    address: str | None
    patch: str | None
    geometry: dict[str, Any] | None
    outdoor: str | None
    properties: dict[str, Any] | None
    level: Level | None
    raw_level: Level | None
    assessed_at: datetime | None
    hold_level: str | None
    hold_since: datetime | None
    window_end: datetime | None
    assessment_id: int | None
    assessment_at: datetime | None
    worst_room: str | None
    coverage: float | None
    reasons: list[str] | None
    evidence: dict[str, Any] | None
    policy_id: str | None


@dataclass(frozen=True, slots=True)
class HomeDevice:
    """A device of a home (or its outdoor feed), with its latest value per metric ({metric: {ts, value}})."""

    id: str
    kind: str
    name: str | None
    room: str | None
    reported_status: str | None
    last_seen: datetime | None
    expected_interval_s: int | None
    outdoor: bool
    latest: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CaseLogEntry:
    """One entry of a case's audit log."""

    case_id: int
    id: int
    at: datetime
    recorded_at: datetime
    actor: str
    actor_role: str
    action: str
    note: str | None
    from_status: str | None
    to_status: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Notice(MappingRow):
    """The latest notification event about a case (a mapping too: core.cases.notice_problem reads it)."""

    subject: str
    kind: str
    title: str
    created_at: datetime
    routed_at: datetime | None
    deliveries: int | None


@dataclass(frozen=True, slots=True)
class PatchLoad:
    """A patch: its homes, open cases, open cases nobody can act on, and its enabled officers
    ([{name, email: has one, open_cases}])."""

    patch: str
    homes: int
    open_cases: int
    unowned_cases: int
    officers: list[dict[str, Any]]


def list_homes(
    conn: psycopg.Connection, p: Principal, *, level: str | None, patch: str | None, limit: int
) -> list[HomeListed]:
    """Homes p may see, most at risk first, then by the soonest deadline of an open case: the officer's work list."""
    params = scope_params(p) | {"level": level, "patch_filter": patch, "limit": limit}
    return list(
        typed_with(conn, HomeListed, "case", Case, "case_").execute(
            f"""SELECT h.id, h.address, h.patch, s.level, s.raw_level, s.assessed_at, a.worst_room, a.reasons,
                       {_CASE_AS_PART}, {NEXT_DUE} AS next_due, {_RISK_RANK} AS risk
                FROM homes h LEFT JOIN damp_home_state s ON s.home_id = h.id
                LEFT JOIN damp_assessments a ON a.id = s.assessment_id
                LEFT JOIN damp_cases c ON c.home_id = h.id AND c.closed_at IS NULL
                WHERE {HOME_SCOPE}
                  AND (%(level)s::text IS NULL OR s.level = %(level)s)
                  AND (%(patch_filter)s::text IS NULL OR h.patch = %(patch_filter)s)
                ORDER BY risk DESC, next_due NULLS LAST, h.id LIMIT %(limit)s""",
            params,
        )
    )


def get_home(conn: psycopg.Connection, p: Principal, home_id: str) -> HomeDetail | None:
    """One home p may see, with its damp state and last stored assessment; None otherwise."""
    params = scope_params(p) | {"id": home_id}
    return (
        typed(conn, HomeDetail)
        .execute(
            f"""SELECT h.id, h.address, h.patch, h.geometry, h.outdoor, h.properties,
                       s.level, s.raw_level, s.assessed_at, s.hold_level, s.hold_since, s.window_end,
                       a.id AS assessment_id, a.assessed_at AS assessment_at, a.worst_room, a.coverage, a.reasons,
                       a.evidence, a.policy_id
                FROM homes h LEFT JOIN damp_home_state s ON s.home_id = h.id
                LEFT JOIN damp_assessments a ON a.id = s.assessment_id
                WHERE h.id = %(id)s AND {HOME_SCOPE}""",
            params,
        )
        .fetchone()
    )


def home_devices(conn: psycopg.Connection, home_id: str, outdoor: str | None) -> list[HomeDevice]:
    """The devices of a home (and its outdoor feed), with their latest value per metric."""
    return list(
        typed(conn, HomeDevice).execute(
            """SELECT d.id, d.kind, d.name, d.room, d.status AS reported_status, ds.last_seen, d.expected_interval_s,
                      (d.id = %(outdoor)s) AS outdoor,
                      coalesce(st.latest, '{}'::jsonb) AS latest
               FROM devices d JOIN device_seen ds ON ds.id = d.id LEFT JOIN device_state st ON st.device_id = d.id
               WHERE d.home_id = %(home)s OR d.id = %(outdoor)s
               ORDER BY (d.id = %(outdoor)s), d.room NULLS LAST, d.id""",
            {"home": home_id, "outdoor": outdoor},
        )
    )


def open_case_for(conn: psycopg.Connection, home_id: str) -> Case | None:
    """A home's open case (unscoped: call after a scoped read of the home)."""
    return (
        typed(conn, Case)
        .execute(f"SELECT {_CASE_SELECT} FROM damp_cases c WHERE c.home_id = %s AND c.closed_at IS NULL", (home_id,))
        .fetchone()
    )


def list_cases(
    conn: psycopg.Connection,
    p: Principal,
    *,
    status: str | None,
    patch: str | None,
    home_id: str | None,
    overdue_at: datetime | None,
    limit: int,
    before_id: int | None,
    officer: str | None = None,
) -> list[Case]:
    """Cases p may see, newest first. status 'active' means every status but closed; overdue_at keeps the cases
    with a step past its deadline at that time; officer keeps one officer's cases ('' those with no officer)."""
    params = scope_params(p) | {
        "officer": officer,
        "status": status,
        "patch_filter": patch,
        "home_id": home_id,
        "overdue_at": overdue_at,
        "limit": limit,
        "before": before_id,
    }
    return list(
        typed(conn, Case).execute(
            f"""SELECT {_CASE_SELECT}, h.patch, h.address, s.level AS home_level, {_OFFICER_SELECT}
                FROM damp_cases c JOIN homes h ON h.id = c.home_id
                LEFT JOIN damp_home_state s ON s.home_id = c.home_id
                LEFT JOIN users u ON u.name = c.officer
                WHERE {HOME_SCOPE}
                  AND (%(officer)s::text IS NULL OR c.officer = %(officer)s
                       OR (%(officer)s = '' AND c.officer IS NULL))
                  AND (%(status)s::text IS NULL OR c.status = %(status)s
                       OR (%(status)s = 'active' AND c.closed_at IS NULL))
                  AND (%(patch_filter)s::text IS NULL OR h.patch = %(patch_filter)s)
                  AND (%(home_id)s::text IS NULL OR c.home_id = %(home_id)s)
                  AND (%(overdue_at)s::timestamptz IS NULL
                       OR (c.closed_at IS NULL AND {NEXT_DUE} < %(overdue_at)s))
                  AND (%(before)s::bigint IS NULL OR c.id < %(before)s)
                ORDER BY c.id DESC LIMIT %(limit)s""",
            params,
        )
    )


def get_case(conn: psycopg.Connection, p: Principal, case_id: int, *, for_update: bool = False) -> Case | None:
    """One case p may see (locked for update inside a transaction if asked), else None."""
    params = scope_params(p) | {"id": case_id}
    lock = "FOR UPDATE OF c" if for_update else ""
    return (
        typed(conn, Case)
        .execute(
            f"""SELECT {_CASE_SELECT}, c.evidence, h.patch, h.address, s.level AS home_level, {_OFFICER_SELECT}
                FROM damp_cases c JOIN homes h ON h.id = c.home_id
                LEFT JOIN damp_home_state s ON s.home_id = c.home_id
                LEFT JOIN users u ON u.name = c.officer
                WHERE c.id = %(id)s AND {HOME_SCOPE} {lock}""",
            params,
        )
        .fetchone()
    )


def case_events(conn: psycopg.Connection, case_ids: Sequence[int]) -> dict[int, list[CaseLogEntry]]:
    """The audit log of each case, oldest first."""
    out: dict[int, list[CaseLogEntry]] = defaultdict(list)
    if not case_ids:
        return out
    for row in typed(conn, CaseLogEntry).execute(
        """SELECT case_id, id, at, recorded_at, actor, actor_role, action, note, from_status, to_status, details
           FROM damp_case_events WHERE case_id = ANY(%s) ORDER BY case_id, id""",
        (list(case_ids),),
    ):
        out[row.case_id].append(row)
    return out


def update_case(conn: psycopg.Connection, case_id: int, changes: dict[str, Any], event: Event) -> None:
    """Apply an action's changes to a case and log it (call inside the transaction holding the row lock)."""
    bad = set(changes) - UPDATABLE
    if bad:
        raise ValueError(f"cannot change case column(s) {', '.join(sorted(bad))}")
    sets = ", ".join(f"{col} = %({col})s" for col in changes)
    conn.execute(
        f"UPDATE damp_cases SET {sets}{', ' if sets else ''}updated_at = now() WHERE id = %(case_id)s",
        changes | {"case_id": case_id},
    )
    add_events(conn, [(case_id, event)])


# ---------------------------------------------------------------------------------------------
# Who looks after the cases: officers, and whether anyone hears of them


def last_notices(conn: psycopg.Connection, case_ids: Sequence[int]) -> dict[int, Notice]:
    """The latest damp notification event about each of these cases (title, routed_at, deliveries)."""
    if not case_ids:
        return {}
    rows = typed(conn, Notice).execute(
        """SELECT DISTINCT ON (e.subject) e.subject, e.kind, e.title, e.created_at, e.routed_at, e.deliveries
           FROM notification_events e
           WHERE e.kind LIKE 'damp.%%' AND e.subject = ANY(%s::text[]) ORDER BY e.subject, e.id DESC""",
        ([str(i) for i in case_ids],),
    )
    return {int(r.subject): r for r in rows}


def patch_overview(conn: psycopg.Connection, p: Principal) -> list[PatchLoad]:
    """Each patch p may see (admin: every patch of a home or an officer): its homes, open cases, open cases with
    no usable officer, and its enabled officers with their open cases and whether they have an email address."""
    params = scope_params(p)
    return list(
        typed(conn, PatchLoad).execute(
            """WITH patches AS (
                   SELECT DISTINCT h.patch FROM homes h WHERE h.patch IS NOT NULL
                   UNION SELECT DISTINCT u.patch FROM users u WHERE u.role = 'officer' AND u.patch IS NOT NULL)
               SELECT x.patch,
                      (SELECT count(*) FROM homes h WHERE h.patch = x.patch) AS homes,
                      (SELECT count(*) FROM damp_cases c JOIN homes h ON h.id = c.home_id
                       WHERE h.patch = x.patch AND c.closed_at IS NULL) AS open_cases,
                      -- the cases core.cases.owner_problem finds fault with
                      (SELECT count(*) FROM damp_cases c JOIN homes h ON h.id = c.home_id
                       LEFT JOIN users u ON u.name = c.officer
                       WHERE h.patch = x.patch AND c.closed_at IS NULL
                         AND (u.name IS NULL OR u.disabled OR u.role <> 'officer'
                              OR u.patch IS DISTINCT FROM h.patch)) AS unowned_cases,
                      coalesce((SELECT jsonb_agg(jsonb_build_object(
                                   'name', u.name,
                                   'email', u.email IS NOT NULL AND btrim(u.email) <> '',
                                   'open_cases', (SELECT count(*) FROM damp_cases c
                                                  WHERE c.officer = u.name AND c.closed_at IS NULL))
                                   ORDER BY u.name)
                                FROM users u WHERE u.role = 'officer' AND NOT u.disabled AND u.patch = x.patch),
                               '[]'::jsonb) AS officers
               FROM patches x
               WHERE %(role)s = 'admin' OR (%(role)s = 'officer' AND x.patch = %(patch)s)
               ORDER BY x.patch""",
            params,
        )
    )
