"""Gritting in PostgreSQL: what the evaluator reads (routes, station readings, forecasts) in a few batched
queries, the decisions it records with their history, and the API's reads and status changes.

Roads, routes and decisions are for highways staff and admins: every API read here takes the Principal
and limits rows in SQL (ROUTE_SCOPE), so an officer or tenant gets nothing even if a router forgot to ask.

A decision's life: issued -> acknowledged -> in_progress (treatment started) -> completed, or cancelled
from any active status. 'escalated' is a status too: an issued treating decision that nobody acknowledged
by its call-out time becomes escalated (escalated_at stays set), and is then acknowledged, started or
cancelled like an issued one. A materially different evaluation is a new decision linked by previous_id /
superseded_by; the old one becomes 'superseded' if it was still active (completed and cancelled ones keep
their status). Every change is a row in gritting_decision_events: who (a user, or 'evaluator'), when, why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.rows import kwargs_row
from psycopg.types.json import Jsonb

from core.gritting import lifecycle
from core.gritting.decision import Decision
from core.gritting.inputs import Forecast
from core.gritting.lifecycle import Current
from core.gritting.samples import Sample
from core.gritting.vocab import ACTIVE, TREATING, CrewAction, DecisionEvent, DecisionStatus, GrittingAction, RunStatus
from core.jsonready import json_ready
from core.model import Principal
from core.timeparse import parse_rfc3339
from store.rows import MappingRow, typed, typed_with
from store.writer import NOTIFY_CHANNEL

ROLES = ("admin", "highways")
ROUTE_SCOPE = "(%(role)s = ANY(ARRAY['admin', 'highways']))"
_METRICS = ("road_surface_temperature", "air_temperature", "dew_point", "surface_state", "freezing_point",
            "relative_humidity")  # fmt: skip
_NOTIFY_LIMIT = 7000


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: orjson.dumps(v).decode())


def _scope(p: Principal) -> dict[str, Any]:
    return {"role": p.role}


# -- the rows: frozen dataclasses, their fields the columns read (store.rows.typed) --------------------------
# The API's response models are made from these (api.row_models): a field's description is said here, once.


def _about(text: str) -> dict[str, str]:
    """A field's description, for the API's schema."""
    return {"description": text}


def _columns(row: type, alias: str, *, skip: tuple[str, ...] = (), **exprs: str) -> str:
    """The SELECT list of a row type: `alias.field` for each field (but those skipped), or the SQL given for it."""
    return ", ".join(
        f"{exprs[f.name]} AS {f.name}" if f.name in exprs else f"{alias}.{f.name}"
        for f in fields(row)
        if f.name not in skip
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow(MappingRow):
    """A treatment run: what a crew did on the route, with the figures they reported (core.gritting.lifecycle
    reads it as a mapping)."""

    id: int
    route_id: str
    decision_id: int = field(metadata=_about("the decision it is recorded on now"))
    started_under: int = field(metadata=_about("the decision that was current when it started"))
    number: int = field(metadata=_about("1 for the first run of the decision, 2 for a second run..."))
    discretionary: bool = field(metadata=_about("the decision did not ask for treatment: the officer's call"))
    reason: str | None = None
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    spread_rate_g_m2: float | None = field(default=None, metadata=_about("the spread rate actually used, g/m²"))
    tonnes: float | None = field(default=None, metadata=_about("salt used, tonnes"))
    vehicle: str | None = None
    crew: str | None = None
    started_by: str
    finished_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))

    def run(self) -> lifecycle.Run:
        """The run as core.gritting.lifecycle's rules need it."""
        return lifecycle.Run(self.id, self.number, self.status, self.started_at, self.finished_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """One step of a decision's history."""

    decision_id: int | None = field(
        default=None, metadata=_about("the decision it was recorded on (the card shows a chain)")
    )
    at: datetime
    event: DecisionEvent
    from_status: DecisionStatus | None
    to_status: DecisionStatus
    actor: str
    note: str | None
    run_id: int | None = field(default=None, metadata=_about("the treatment run the step concerns"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "event", DecisionEvent(self.event))
        if self.from_status is not None:
            object.__setattr__(self, "from_status", DecisionStatus(self.from_status))
        object.__setattr__(self, "to_status", DecisionStatus(self.to_status))


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRow(MappingRow):
    """A gritting decision: what to do on a route, at what rate, when, why, and where it stands. What was decided
    is core.gritting.Decision's fields of the same names (record_decisions stores those), issued_at its decided_at.
    core.gritting.lifecycle reads it as a mapping."""

    id: int
    route_id: str
    route_name: str | None = None
    action: GrittingAction
    rule: str = field(metadata=_about("machine id of the rule that decided, e.g. wet_road_below_trigger"))
    spread_rate_g_m2: float | None = field(metadata=_about("per pass; null when nothing is spread or it is escalated"))
    passes: int
    spread_type: str = field(metadata=_about("dry or pre-wetted"))
    road_wetness: str | None = None
    call_out_by: datetime | None = None
    start_by: datetime | None = None
    complete_by: datetime | None = None
    start_not_before: datetime | None = field(
        default=None, metadata=_about("rain washes salt off: not before it stops")
    )
    trigger_at: datetime | None = field(
        default=None, metadata=_about("when the road surface temperature is expected to reach the trigger (T0)")
    )
    treat_now: bool = field(metadata=_about("conditions are on the road: call out at once"))
    late: bool = field(metadata=_about("issued after its call-out time"))
    worst_station: str | None = None
    min_rst: float | None = None
    min_rst_at: datetime | None = None
    hazard: str | None = None
    reasons: tuple[str, ...] = field(metadata=_about("the sentences that justify the decision"))
    message: str = field(metadata=_about("the duty officer's one-line summary (times in Europe/London)"))
    confidence: float
    horizon_hours: float = field(metadata=_about("how far ahead it rests on a station nowcast; 0 on observations"))
    forecast_id: int | None = None
    issued_at: datetime
    status: DecisionStatus
    status_at: datetime
    status_by: str = field(metadata=_about("who set the status: a user name, or 'evaluator'"))
    escalated_at: datetime | None = None
    previous_id: int | None = field(default=None, metadata=_about("the decision this one updates"))
    superseded_by: int | None = field(default=None, metadata=_about("the decision that updates this one"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", GrittingAction(self.action))
        object.__setattr__(self, "status", DecisionStatus(self.status))
        object.__setattr__(self, "reasons", tuple(self.reasons))


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionCard(DecisionRow):
    """A decision with what the crews did: its runs, its history (with that of the decisions whose
    acknowledgement or run it carried over, oldest first) and the actions people may take now."""

    runs: tuple[RunRow, ...] = ()
    history: tuple[EventRow, ...] = ()
    actions: tuple[CrewAction, ...] = field(default=(), metadata=_about("valid now, in the order to offer them"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionDetail(DecisionCard):
    """A decision with its runs, history (oldest first) and the evidence it rests on."""

    evidence: dict[str, Any] = field(
        metadata=_about("inputs (station summaries, forecast), policy values, rule, reasons and confidence")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CapDecision(DecisionRow):
    """A decision as its CAP alert needs it: with the route's geometry and the decision it updates."""

    route_geometry: dict[str, Any] | None = None
    previous_action: str | None = None
    previous_issued_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteView:
    """A precautionary salting route with its current decision."""

    id: str
    name: str
    priority: int
    treatment_minutes: int
    mobilisation_minutes: int
    depot: str | None = None
    domain: str | None = None
    stations: tuple[str, ...]
    geometry: dict[str, Any] | None = None
    evaluated_at: datetime | None = field(default=None, metadata=_about("when the evaluator last looked at the route"))
    decision: DecisionCard | None = field(
        default=None, metadata=_about("the current (newest, never superseded) decision")
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "stations", tuple(self.stations))


_DECISION = _columns(DecisionRow, "d", route_name="r.name")
_RUN = _columns(RunRow, "g")
_EVENT = _columns(EventRow, "e")
# What record_decisions stores of core's Decision: its fields that are a recorded decision's too.
_DECIDED = tuple(f.name for f in fields(Decision) if f.name in {g.name for g in fields(DecisionRow)})


# -- what the evaluator reads ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteRow:
    """A route as the evaluator needs it; None for treatment or mobilisation means the policy's default."""

    id: str
    name: str
    priority: int
    treatment_minutes: int | None
    mobilisation_minutes: int | None
    domain: str | None
    stations: tuple[str, ...]
    current: Current | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stations", tuple(self.stations))


_STATIONS = """coalesce((SELECT array_agg(rs.device_id ORDER BY rs.device_id)
                        FROM route_stations rs WHERE rs.route_id = r.id), '{}')"""
_TO_EVALUATE = ", ".join(
    [
        _columns(
            RouteRow,
            "r",
            treatment_minutes="CASE WHEN jsonb_typeof(r.properties->'treatment_minutes') = 'number' "
            "THEN r.treatment_minutes END",
            mobilisation_minutes="CASE WHEN jsonb_typeof(r.properties->'mobilisation_minutes') = 'number' "
            "THEN r.mobilisation_minutes ELSE dp.mobilisation_minutes END",
            domain="r.properties->>'domain'",
            stations=_STATIONS,
            skip=("current",),
        ),
        *(f"d.{f.name} AS current_{f.name}" for f in fields(Current)),
    ]
)


def routes_to_evaluate(
    conn: psycopg.Connection, *, route_ids: Sequence[str] | None = None, station_ids: Sequence[str] | None = None
) -> list[RouteRow]:
    """Routes (all, these ids, or those represented by these stations) with their current decision."""
    return (
        typed_with(conn, RouteRow, "current", Current, "current_")
        .execute(
            f"""SELECT {_TO_EVALUATE}
               FROM routes r
               LEFT JOIN depots dp ON dp.id = r.depot
               LEFT JOIN gritting_route_state st ON st.route_id = r.id
               LEFT JOIN gritting_decisions d ON d.id = st.decision_id
               WHERE (%(ids)s::text[] IS NULL OR r.id = ANY(%(ids)s))
                 AND (%(stations)s::text[] IS NULL
                      OR r.id IN (SELECT route_id FROM route_stations WHERE device_id = ANY(%(stations)s)))
               ORDER BY r.id""",
            {
                "ids": None if route_ids is None else list(route_ids),
                "stations": None if station_ids is None else list(station_ids),
            },
        )
        .fetchall()
    )


def station_names(conn: psycopg.Connection, station_ids: Sequence[str]) -> dict[str, str]:
    """The registry's name of each of these stations that has one (reasons name stations, not ids)."""
    rows = conn.execute(
        "SELECT id, name FROM devices WHERE id = ANY(%s) AND nullif(btrim(name), '') IS NOT NULL", (list(station_ids),)
    )
    return {sid: name.strip() for sid, name in rows}


def station_samples(
    conn: psycopg.Connection, *, station_ids: Sequence[str], since: datetime, until: datetime
) -> dict[str, list[Sample]]:
    """Each station's readings in [since, until], one row per time with every metric, oldest first."""
    if not station_ids:
        return {}
    rows = conn.execute(
        """SELECT s.device_id, r.ts,
                  max(r.value) FILTER (WHERE s.metric = 'road_surface_temperature'),
                  max(r.value) FILTER (WHERE s.metric = 'air_temperature'),
                  max(r.value) FILTER (WHERE s.metric = 'dew_point'),
                  max(r.label) FILTER (WHERE s.metric = 'surface_state'),
                  max(r.value) FILTER (WHERE s.metric = 'freezing_point'),
                  max(r.value) FILTER (WHERE s.metric = 'relative_humidity')
           FROM series s JOIN readings r ON r.series_id = s.id
           WHERE s.device_id = ANY(%s) AND s.metric = ANY(%s) AND r.ts >= %s AND r.ts <= %s
           GROUP BY s.device_id, r.ts
           ORDER BY s.device_id, r.ts""",
        (list(station_ids), list(_METRICS), since, until),
    ).fetchall()
    out: dict[str, list[Sample]] = {}
    for r in rows:
        out.setdefault(r[0], []).append((r[1], r[2], r[3], r[4], r[5], r[6], r[7]))
    return out


@dataclass(frozen=True, slots=True)
class StoredForecast:
    """A route's forecast as stored: core's Forecast with its id and where it came from, or, when the stored
    values are not a forecast core takes, why not (`problem`)."""

    route_id: str
    id: int
    source: str | None
    domain: str | None
    forecast: Forecast | None
    problem: str | None = None

    def evidence(self) -> dict[str, Any]:
        """The forecast as a decision's evidence keeps it."""
        return {"id": self.id, "source": self.source, "domain": self.domain} | (
            json_ready(self.forecast) if self.forecast is not None else {}
        )


def _stored_forecast(
    *, route_id: str, id: int, source: str | None, domain: str | None, **values: Any
) -> StoredForecast:
    try:
        trace = tuple((parse_rfc3339(t), float(v)) for t, v in values.pop("rst_trace") or ())
        forecast = Forecast(**values, rst_trace=trace)
    except (ValueError, TypeError) as exc:
        return StoredForecast(route_id, id, source, domain, None, str(exc))
    return StoredForecast(route_id, id, source, domain, forecast)


def latest_forecasts(
    conn: psycopg.Connection, *, route_ids: Sequence[str], since: datetime
) -> dict[str, StoredForecast]:
    """The newest forecast issued since `since` for each route (one naming the route beats its domain's)."""
    if not route_ids:
        return {}
    rows = (
        conn.cursor(row_factory=kwargs_row(_stored_forecast))
        .execute(
            f"""SELECT DISTINCT ON (fr.route_id) fr.route_id, f.id, f.source, f.domain, {_columns(Forecast, "f")}
               FROM gritting_forecast_routes fr JOIN gritting_forecasts f ON f.id = fr.forecast_id
               WHERE fr.route_id = ANY(%s) AND fr.issued_at >= %s
               ORDER BY fr.route_id, fr.issued_at DESC, fr.by_route DESC, fr.forecast_id DESC""",
            (list(route_ids), since),
        )
        .fetchall()
    )
    return {r.route_id: r for r in rows}


# -- what the evaluator writes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDecision:
    """A decision for record_decisions: core's Decision with what its record adds."""

    decision: Decision
    previous_id: int | None  # the route's current decision, which this one updates
    message: str
    forecast_id: int | None = None
    evidence: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """The decision's columns, JSON-ready (issued_at is when it was decided)."""
        d = self.decision
        return json_ready(
            {name: getattr(d, name) for name in _DECIDED}
            | {
                "previous_id": self.previous_id,
                "message": self.message,
                "forecast_id": self.forecast_id,
                "material_key": list(d.material_key()),
                "evidence": self.evidence,
                "issued_at": d.decided_at,
            }
        )


_STORED = (*_DECIDED, "previous_id", "message", "material_key", "evidence", "issued_at")
_RECORD = f"""
WITH x AS (
  SELECT * FROM jsonb_populate_recordset(NULL::gritting_decisions, %(rows)s::jsonb)
), ins AS (
  INSERT INTO gritting_decisions ({", ".join(_STORED)}, forecast_id, status, status_at, status_by)
  SELECT {", ".join(_STORED)}, (SELECT f.id FROM gritting_forecasts f WHERE f.id = x.forecast_id),
    'issued', issued_at, 'evaluator'
  FROM x
  RETURNING id, route_id, previous_id, issued_at
), old AS (
  SELECT d.id, d.status FROM gritting_decisions d WHERE d.id IN (SELECT previous_id FROM ins)
), sup AS (
  UPDATE gritting_decisions d SET
    superseded_by = ins.id,
    status = CASE WHEN d.status = ANY(%(active)s) THEN 'superseded' ELSE d.status END,
    status_at = CASE WHEN d.status = ANY(%(active)s) THEN ins.issued_at ELSE d.status_at END,
    status_by = CASE WHEN d.status = ANY(%(active)s) THEN 'evaluator' ELSE d.status_by END
  FROM ins WHERE d.id = ins.previous_id
  RETURNING d.id
), ev AS (
  INSERT INTO gritting_decision_events (decision_id, at, event, from_status, to_status, actor, note)
  SELECT ins.id, ins.issued_at, 'issued', NULL, 'issued', 'evaluator',
         CASE WHEN ins.previous_id IS NOT NULL THEN 'updates decision ' || ins.previous_id END
  FROM ins
  UNION ALL
  SELECT old.id, ins.issued_at, 'superseded', old.status, 'superseded', 'evaluator',
         'superseded by decision ' || ins.id
  FROM old JOIN ins ON ins.previous_id = old.id WHERE old.status = ANY(%(active)s)
), st AS (
  UPDATE gritting_route_state s SET decision_id = ins.id FROM ins WHERE s.route_id = ins.route_id
)
SELECT id, route_id FROM ins ORDER BY id
"""


def record_decisions(
    conn: psycopg.Connection, *, decisions: Sequence[NewDecision], evaluated: Sequence[str], at: datetime
) -> tuple[list[tuple[int, str]], list[str]]:
    """In one transaction: mark routes evaluated, and store new decisions, each superseding the route's
    previous one. A decision whose route's current decision is no longer its `previous_id` (someone else
    recorded one meanwhile) is not stored. Returns ((id, route_id) stored, route ids skipped)."""
    stored: list[tuple[int, str]] = []
    skipped: list[str] = []
    with conn.transaction():
        if evaluated:
            # Upserting takes each route's row lock: nobody else moves its current decision until commit.
            conn.execute(
                """INSERT INTO gritting_route_state AS s (route_id, evaluated_at)
                   SELECT id, %s FROM unnest(%s::text[]) AS x(id)
                   WHERE EXISTS (SELECT 1 FROM routes r WHERE r.id = x.id)
                   ON CONFLICT (route_id) DO UPDATE SET evaluated_at = excluded.evaluated_at""",
                (at, sorted(set(evaluated))),
            )
        if not decisions:
            return stored, skipped
        routes = sorted({d.decision.route_id for d in decisions})
        heads: dict[str, int | None] = dict(
            conn.execute(
                "SELECT route_id, decision_id FROM gritting_route_state WHERE route_id = ANY(%s) FOR UPDATE",
                (routes,),
            ).fetchall()
        )
        fresh = []
        for d in decisions:
            rid = d.decision.route_id
            if rid in heads and heads[rid] == d.previous_id:
                fresh.append(d)
            else:
                skipped.append(rid)
        if fresh:
            before = _before_reissue(conn, [d.previous_id for d in fresh if d.previous_id is not None])
            rows = conn.execute(
                _RECORD, {"rows": _jsonb([d.record() for d in fresh]), "active": sorted(ACTIVE)}
            ).fetchall()
            stored = [(int(r[0]), str(r[1])) for r in rows]
            _carry_over(conn, fresh, stored, before)
    return stored, skipped


def escalate_overdue(
    conn: psycopg.Connection, *, now: datetime, grace_minutes: float, route_ids: Sequence[str] | None = None
) -> list[int]:
    """Escalate current treating decisions still unacknowledged at their call-out time (or `grace_minutes`
    after issue, for those issued at or after it); return their ids."""
    with conn.transaction():
        rows = conn.execute(
            """WITH due AS (
                 SELECT d.id, d.call_out_by FROM gritting_route_state st
                 JOIN gritting_decisions d ON d.id = st.decision_id
                 WHERE d.status = 'issued' AND d.action = ANY(%(treating)s)
                   AND greatest(d.call_out_by, d.issued_at + make_interval(secs => %(grace)s)) <= %(now)s
                   AND (%(ids)s::text[] IS NULL OR st.route_id = ANY(%(ids)s))
                 FOR UPDATE OF d SKIP LOCKED
               ), upd AS (
                 UPDATE gritting_decisions d SET status = 'escalated', status_at = %(now)s, status_by = 'evaluator',
                   escalated_at = %(now)s
                 FROM due WHERE d.id = due.id AND d.status = 'issued'
                 RETURNING d.id, due.call_out_by
               ), ev AS (
                 INSERT INTO gritting_decision_events (decision_id, at, event, from_status, to_status, actor, note)
                 SELECT id, %(now)s, 'escalated', 'issued', 'escalated', 'evaluator',
                        'not acknowledged by its call-out time'
                 FROM upd
               )
               SELECT id FROM upd ORDER BY id""",
            {
                "treating": sorted(TREATING),
                "grace": grace_minutes * 60.0,
                "now": now,
                "ids": None if route_ids is None else list(route_ids),
            },
        ).fetchall()
    return [int(r[0]) for r in rows]


def pending_publications(conn: psycopg.Connection, *, route_ids: Sequence[str] | None = None) -> list[DecisionRow]:
    """Current decisions whose (decision, status) differs from what was last published for their route."""
    return (
        typed(conn, DecisionRow)
        .execute(
            f"""SELECT {_DECISION}
                FROM gritting_route_state st
                JOIN gritting_decisions d ON d.id = st.decision_id
                LEFT JOIN routes r ON r.id = d.route_id
                WHERE (st.published_decision_id, st.published_status) IS DISTINCT FROM (d.id, d.status)
                  AND (%(ids)s::text[] IS NULL OR st.route_id = ANY(%(ids)s))
                ORDER BY d.id""",
            {"ids": None if route_ids is None else list(route_ids)},
        )
        .fetchall()
    )


def mark_published(conn: psycopg.Connection, *, items: Iterable[tuple[str, int, str]], at: datetime) -> None:
    """Remember that (route, decision, status) is now the route's retained alert."""
    items = list(items)
    if not items:
        return
    routes, ids, statuses = (list(c) for c in zip(*items, strict=True))
    with conn.transaction():
        conn.execute(
            """UPDATE gritting_route_state s SET published_decision_id = x.id, published_status = x.status,
                 published_at = %s
               FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS x(route_id, id, status)
               WHERE s.route_id = x.route_id""",
            (at, routes, ids, statuses),
        )


def nudge(conn: psycopg.Connection, route_ids: Sequence[str]) -> None:
    """Ask the leading scheduler to look at these routes now (after a forecast or a status change), as
    ingest does for new readings: a notification on the readings channel naming the routes' stations.
    Delivered on commit; routes without stations wait for the next sweep."""
    conn.execute(
        """SELECT pg_notify(%s, CASE WHEN length(j) > %s THEN '"*"' ELSE j END)
           FROM (SELECT json_agg(DISTINCT device_id)::text AS j FROM route_stations WHERE route_id = ANY(%s)) x
           WHERE j IS NOT NULL""",
        (NOTIFY_CHANNEL, _NOTIFY_LIMIT, list(route_ids)),
    )


# -- what the API reads and changes ----------------------------------------------------------------


def list_routes(conn: psycopg.Connection, p: Principal, *, route_id: str | None = None) -> list[RouteView]:
    """Routes p may see (one if route_id is given), each with its current decision (or None)."""
    routes = (
        typed(conn, RouteView)
        .execute(
            f"""SELECT {_ROUTE} FROM routes r LEFT JOIN gritting_route_state st ON st.route_id = r.id
                WHERE {ROUTE_SCOPE} AND (%(id)s::text IS NULL OR r.id = %(id)s)
                ORDER BY r.priority, r.id""",
            _scope(p) | {"id": route_id},
        )
        .fetchall()
    )
    current = (
        typed(conn, DecisionCard)
        .execute(
            f"""SELECT {_DECISION} FROM gritting_route_state st JOIN gritting_decisions d ON d.id = st.decision_id
                LEFT JOIN routes r ON r.id = d.route_id
                WHERE st.route_id = ANY(%s)""",
            ([r.id for r in routes],),
        )
        .fetchall()
    )
    cards = {d.route_id: d for d in with_crew_records(conn, current)}
    return [replace(r, decision=cards.get(r.id)) for r in routes]


_ROUTE = _columns(
    RouteView,
    "r",
    domain="r.properties->>'domain'",
    stations=_STATIONS,
    evaluated_at="st.evaluated_at",
    decision="NULL",
)


def decisions_by_id(conn: psycopg.Connection, ids: list[int]) -> list[DecisionRow]:
    """Decisions by id, as the API shows them (no scope check: for the evaluator)."""
    if not ids:
        return []
    return (
        typed(conn, DecisionRow)
        .execute(
            f"""SELECT {_DECISION} FROM gritting_decisions d LEFT JOIN routes r ON r.id = d.route_id
                WHERE d.id = ANY(%s)""",
            (ids,),
        )
        .fetchall()
    )


def list_decisions(
    conn: psycopg.Connection,
    p: Principal,
    *,
    route_id: str | None = None,
    statuses: Sequence[str] | None = None,
    actions: Sequence[str] | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[DecisionRow]:
    """Decisions p may see, newest first, filtered by route, status, action and issue time."""
    return (
        typed(conn, DecisionRow)
        .execute(
            f"""SELECT {_DECISION} FROM gritting_decisions d LEFT JOIN routes r ON r.id = d.route_id
                WHERE {ROUTE_SCOPE}
                  AND (%(route)s::text IS NULL OR d.route_id = %(route)s)
                  AND (%(statuses)s::text[] IS NULL OR d.status = ANY(%(statuses)s))
                  AND (%(actions)s::text[] IS NULL OR d.action = ANY(%(actions)s))
                  AND (%(since)s::timestamptz IS NULL OR d.issued_at >= %(since)s)
                  AND (%(before)s::bigint IS NULL OR d.id < %(before)s)
                ORDER BY d.issued_at DESC, d.id DESC LIMIT %(limit)s""",
            _scope(p)
            | {
                "route": route_id,
                "statuses": None if statuses is None else list(statuses),
                "actions": None if actions is None else list(actions),
                "since": since,
                "before": before_id,
                "limit": limit,
            },
        )
        .fetchall()
    )


def get_decision(conn: psycopg.Connection, p: Principal, decision_id: int) -> DecisionDetail | None:
    """One decision p may see, with its history (oldest first) and the evidence it rests on; else None."""
    row = (
        typed(conn, DecisionDetail)
        .execute(
            f"""SELECT {_DECISION}, d.evidence FROM gritting_decisions d LEFT JOIN routes r ON r.id = d.route_id
                WHERE {ROUTE_SCOPE} AND d.id = %(id)s""",
            _scope(p) | {"id": decision_id},
        )
        .fetchone()
    )
    return None if row is None else with_crew_records(conn, [row])[0]


# -- what the crews did (core.gritting.lifecycle): runs, notes, history --------------------------------


def chains(conn: psycopg.Connection, decision_ids: Sequence[int]) -> dict[int, list[int]]:
    """Each decision with the ones it carried the acknowledgement or run of over from, newest first: whose runs
    and history its route card shows."""
    if not decision_ids:
        return {}
    rows = conn.execute(
        """WITH RECURSIVE c(head, id, carried, depth) AS (
             SELECT d.id, d.id, d.carried_over, 0 FROM gritting_decisions d WHERE d.id = ANY(%s)
             UNION ALL
             SELECT c.head, p.id, p.carried_over, c.depth + 1
             FROM c JOIN gritting_decisions d ON d.id = c.id JOIN gritting_decisions p ON p.id = d.previous_id
             WHERE c.carried AND c.depth < 1000)
           SELECT head, id FROM c ORDER BY head, depth""",
        (list(decision_ids),),
    ).fetchall()
    out: dict[int, list[int]] = {}
    for head, did in rows:
        out.setdefault(int(head), []).append(int(did))
    return out


Card = TypeVar("Card", bound=DecisionCard)


def with_crew_records(conn: psycopg.Connection, decisions: Sequence[Card]) -> list[Card]:
    """Each decision with its runs, its history (with those of the decisions it carried over from, oldest
    first) and the actions people may take now."""
    heads = chains(conn, [d.id for d in decisions])
    every = sorted({i for ids in heads.values() for i in ids})
    runs_of: dict[int, list[RunRow]] = {}
    for r in _runs(conn, every):
        runs_of.setdefault(r.decision_id, []).append(r)
    events_of: dict[int, list[EventRow]] = {}
    events = typed(conn, EventRow).execute(
        f"SELECT {_EVENT} FROM gritting_decision_events e WHERE e.decision_id = ANY(%s) ORDER BY e.at, e.id", (every,)
    )
    for e in events.fetchall():
        events_of.setdefault(e.decision_id or 0, []).append(e)
    out = []
    for d in decisions:
        ids = heads.get(d.id, [d.id])
        runs = tuple(sorted((r for i in ids for r in runs_of.get(i, [])), key=lambda r: r.id))
        history = tuple(sorted((e for i in ids for e in events_of.get(i, [])), key=lambda e: e.at))
        actions = lifecycle.available(d, [r.run() for r in runs])
        out.append(replace(d, runs=runs, history=history, actions=actions))
    return out


def _runs(conn: psycopg.Connection, decision_ids: Sequence[int], *, for_update: bool = False) -> list[RunRow]:
    """The runs recorded on these decisions, oldest first."""
    lock = " FOR UPDATE" if for_update else ""
    return (
        typed(conn, RunRow)
        .execute(
            f"SELECT {_RUN} FROM gritting_runs g WHERE g.decision_id = ANY(%s) ORDER BY g.id{lock}",
            (list(decision_ids),),
        )
        .fetchall()
    )


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What a crew reports of a run; None keeps what was recorded before."""

    spread_rate_g_m2: float | None = None
    tonnes: float | None = None
    vehicle: str | None = None
    crew: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The figures by column name."""
        return {f: getattr(self, f) for f in ("spread_rate_g_m2", "tonnes", "vehicle", "crew")}


def act(
    conn: psycopg.Connection,
    p: Principal,
    *,
    decision_id: int,
    action: str,
    at: datetime,
    now: datetime,
    note: str | None = None,
    reason: str | None = None,
    figures: RunFigures = RunFigures(),
) -> DecisionDetail | None:
    """Record what p did on a decision (core.gritting.lifecycle.plan says what that changes; its
    LifecycleConflict goes to the caller), with who, when and why in the history. Returns the decision as it
    now stands, or None if p may not see it."""
    with conn.transaction():
        row = (
            typed(conn, DecisionRow)
            .execute(
                f"""SELECT {_DECISION} FROM gritting_decisions d LEFT JOIN routes r ON r.id = d.route_id
                    WHERE {ROUTE_SCOPE} AND d.id = %(id)s FOR UPDATE OF d""",
                _scope(p) | {"id": decision_id},
            )
            .fetchone()
        )
        if row is None:
            return None
        runs = _runs(conn, chains(conn, [decision_id]).get(decision_id, [decision_id]), for_update=True)
        plan = lifecycle.plan(row, [r.run() for r in runs], action, at=at, now=now, reason=reason, note=note)
        run_id: int | None = None
        reason = reason.strip() if reason and reason.strip() else None
        if plan.open_run:
            got = conn.execute(
                """INSERT INTO gritting_runs (route_id, decision_id, started_under, number, discretionary, reason,
                     started_at, spread_rate_g_m2, tonnes, vehicle, crew, started_by)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                (row.route_id, decision_id, decision_id, plan.run_number, plan.discretionary, reason, at,
                 figures.spread_rate_g_m2, figures.tonnes, figures.vehicle, figures.crew, p.name),
            ).fetchone()  # fmt: skip
            assert got is not None
            run_id = int(got[0])
        for rid, status in ((plan.finish_run, RunStatus.COMPLETED), (plan.cancel_run, RunStatus.CANCELLED)):
            if rid is None:
                continue
            run_id = rid
            conn.execute(
                """UPDATE gritting_runs SET status = %s, finished_at = greatest(%s, started_at), finished_by = %s,
                     spread_rate_g_m2 = coalesce(%s, spread_rate_g_m2), tonnes = coalesce(%s, tonnes),
                     vehicle = coalesce(%s, vehicle), crew = coalesce(%s, crew)
                   WHERE id = %s""",
                (status, at, p.name, figures.spread_rate_g_m2, figures.tonnes, figures.vehicle, figures.crew, rid),
            )
        said = (note or "").strip() or (reason if plan.open_run else None)
        if plan.amend_run is not None:
            run_id = plan.amend_run
            target = next(r for r in runs if r.id == run_id)
            what = lifecycle.correction(target.number, target, figures.as_dict())
            if what is None:
                raise lifecycle.LifecycleConflict(f"those are already the figures of run {target.number}")
            said = f"{what}; {said}" if said else what
            conn.execute(
                """UPDATE gritting_runs SET spread_rate_g_m2 = coalesce(%s, spread_rate_g_m2),
                     tonnes = coalesce(%s, tonnes), vehicle = coalesce(%s, vehicle), crew = coalesce(%s, crew)
                   WHERE id = %s""",
                (figures.spread_rate_g_m2, figures.tonnes, figures.vehicle, figures.crew, run_id),
            )
        if plan.to_status != row.status:
            conn.execute(
                "UPDATE gritting_decisions SET status = %s, status_at = %s, status_by = %s WHERE id = %s",
                (plan.to_status, at, p.name, decision_id),
            )
            nudge(conn, [row.route_id])
        conn.execute(
            """INSERT INTO gritting_decision_events
                 (decision_id, at, event, from_status, to_status, actor, note, run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (decision_id, at, plan.event, row.status, plan.to_status, p.name, said, run_id),
        )
    return get_decision(conn, p, decision_id)


def _carry_over(conn: psycopg.Connection, fresh: Sequence[NewDecision], stored: Sequence[tuple[int, str]],
                before: dict[int, _Replaced]) -> None:  # fmt: skip
    """Re-issued decisions take over the acknowledgement, or the run out, of the ones they replace
    (core.gritting.lifecycle.carried_status), with an event saying so."""
    new_ids = {rid: did for did, rid in stored}
    for d in fresh:
        did, prev = new_ids.get(d.decision.route_id), d.previous_id
        if did is None or prev is None or prev not in before:
            continue
        previous = before[prev]
        status = lifecycle.carried_status(previous, asdict(d.decision), run_out=previous.run_out is not None)
        if status is None:
            continue
        if previous.run_out is not None:
            note = f"run {previous.run_out} is still out: it carries on under this decision"
        else:
            note = f"acknowledged by {previous.status_by} on the previous decision, which asked for the same"
        conn.execute(
            """WITH upd AS (
                 UPDATE gritting_decisions SET status = %(status)s, carried_over = true WHERE id = %(id)s RETURNING id),
               runs AS (
                 UPDATE gritting_runs SET decision_id = %(id)s WHERE decision_id = %(prev)s AND status = 'in_progress')
               INSERT INTO gritting_decision_events (decision_id, at, event, from_status, to_status, actor, note)
               SELECT id, %(at)s, 'carried_over', 'issued', %(status)s, 'evaluator', %(note)s FROM upd""",
            {"status": status, "id": did, "prev": prev, "at": d.decision.decided_at, "note": note},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Replaced(MappingRow):
    """What re-issuing needs of a decision about to be replaced: its status and treatment, and the run out."""

    id: int
    status: str
    status_by: str
    action: str
    spread_rate_g_m2: float | None
    passes: int
    spread_type: str
    call_out_by: datetime | None
    run_out: int | None  # the number of its run still out on the road


def _before_reissue(conn: psycopg.Connection, previous_ids: Sequence[int]) -> dict[int, _Replaced]:
    """The decisions about to be replaced, by id."""
    if not previous_ids:
        return {}
    run_out = "(SELECT g.number FROM gritting_runs g WHERE g.decision_id = d.id AND g.status = 'in_progress' LIMIT 1)"
    rows = (
        typed(conn, _Replaced)
        .execute(
            f"SELECT {_columns(_Replaced, 'd', run_out=run_out)} FROM gritting_decisions d WHERE d.id = ANY(%s)",
            (list(previous_ids),),
        )
        .fetchall()
    )
    return {r.id: r for r in rows}


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastInput:
    """One forecast to load (core's Forecast, checked there): for these routes, or for every route of a domain."""

    forecast: Forecast
    route_ids: tuple[str, ...] = ()
    domain: str | None = None
    source: str | None = None


class UnknownRoutes(LookupError):
    """A forecast names routes, or a domain, that the registry does not have."""


@dataclass(frozen=True, slots=True)
class LoadedForecast:
    """A forecast stored by load_forecasts, and the routes it was attached to."""

    id: int
    routes: tuple[str, ...]


def load_forecasts(
    conn: psycopg.Connection, items: Sequence[ForecastInput], *, loaded_by: str | None
) -> list[LoadedForecast]:
    """Store forecasts and attach each to its routes, all or nothing; then ask the scheduler to re-evaluate
    them. Raises UnknownRoutes naming what is missing."""
    out: list[LoadedForecast] = []
    with conn.transaction():
        known = {r[0]: r[1] for r in conn.execute("SELECT id, properties->>'domain' FROM routes")}
        touched: set[str] = set()
        for i, f in enumerate(items):
            if f.domain is not None:
                routes = sorted(rid for rid, dom in known.items() if dom == f.domain)
                if not routes:
                    raise UnknownRoutes(f"forecasts[{i}]: no route has domain {f.domain!r}")
            else:
                missing = [rid for rid in f.route_ids if rid not in known]
                if missing:
                    raise UnknownRoutes(f"forecasts[{i}]: unknown route(s) {', '.join(map(repr, missing))}")
                routes = sorted(set(f.route_ids))
            values = json_ready(f.forecast) | {"source": f.source, "domain": f.domain, "loaded_by": loaded_by}
            row = conn.execute(
                f"""INSERT INTO gritting_forecasts ({", ".join(values)})
                    SELECT {", ".join(values)} FROM jsonb_populate_record(NULL::gritting_forecasts, %s::jsonb)
                    RETURNING id""",
                (_jsonb(values),),
            ).fetchone()
            assert row is not None
            fid = int(row[0])
            conn.execute(
                """INSERT INTO gritting_forecast_routes (route_id, forecast_id, issued_at, by_route)
                   SELECT unnest(%s::text[]), %s, %s, %s""",
                (routes, fid, f.forecast.issued_at, f.domain is None),
            )
            touched.update(routes)
            out.append(LoadedForecast(fid, tuple(routes)))
        nudge(conn, sorted(touched))
    return out


def cap_decisions(conn: psycopg.Connection, p: Principal, *, decision_id: int | None = None) -> list[CapDecision]:
    """Every route's current decision (or the one decision asked for) with the route's name and geometry
    and the previous decision's action and issue time (for CAP's msgType and references)."""
    source = (
        "gritting_route_state st JOIN gritting_decisions d ON d.id = st.decision_id"
        if decision_id is None
        else "gritting_decisions d"
    )
    return (
        typed(conn, CapDecision)
        .execute(
            f"""SELECT {_CAP}
                FROM {source}
                LEFT JOIN routes r ON r.id = d.route_id
                LEFT JOIN gritting_decisions prev ON prev.id = d.previous_id
                WHERE {ROUTE_SCOPE} AND (%(id)s::bigint IS NULL OR d.id = %(id)s)
                ORDER BY r.priority, d.route_id""",
            _scope(p) | {"id": decision_id},
        )
        .fetchall()
    )


_CAP = _columns(
    CapDecision,
    "d",
    route_name="r.name",
    route_geometry="r.geometry",
    previous_action="prev.action",
    previous_issued_at="prev.issued_at",
)
