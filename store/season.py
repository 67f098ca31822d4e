"""The season report's reads (core.season turns them into the report): station road temperatures by hour,
decisions with what people did, treatment runs, damp case deadlines, and the hourly room readings around
completed works. Every read takes the Principal and is scoped in SQL as the rest of the store is (routes for
highways and admin, homes for admin and the officer of their patch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import numpy as np
import psycopg

from core.cases import STEPS
from core.model import Principal
from core.season import ICE_RST_C, DecisionRec, RouteRec, RunRec, StationHour
from store.damp import _ROOM_DEVICE, HOME_SCOPE
from store.gritting import ROUTE_SCOPE
from store.queries import scope_params
from store.rows import MappingRow, typed

_HOUR = timedelta(hours=1)


def routes(conn: psycopg.Connection, p: Principal) -> list[RouteRec]:
    """The routes p may see, with their stations and geometry."""
    rows = conn.execute(
        f"""SELECT r.id, r.name, coalesce((SELECT array_agg(rs.device_id ORDER BY rs.device_id)
                                            FROM route_stations rs WHERE rs.route_id = r.id), '{{}}'), r.geometry
            FROM routes r WHERE {ROUTE_SCOPE} ORDER BY r.priority, r.id""",
        scope_params(p),
    ).fetchall()
    return [RouteRec(r[0], r[1], tuple(r[2]), r[3]) for r in rows]


def station_hours(
    conn: psycopg.Connection, station_ids: Sequence[str], *, lo: datetime, hi: datetime
) -> list[StationHour]:
    """Each hour of these stations' road surface temperature in [lo, hi): the lowest value (from the hourly
    rollup, which outlives raw readings) and, in an hour that reached ICE_RST_C, the first raw reading that did."""
    if not station_ids:
        return []
    rows = conn.execute(
        """SELECT s.device_id, h.hour, h.vmin,
                  CASE WHEN h.vmin <= %(ice)s THEN
                    (SELECT min(r.ts) FROM readings r WHERE r.series_id = h.series_id AND r.ts >= h.hour
                       AND r.ts < h.hour + interval '1 hour' AND r.value <= %(ice)s) END
           FROM series s JOIN readings_hourly h ON h.series_id = s.id
           WHERE s.device_id = ANY(%(ids)s) AND s.metric = 'road_surface_temperature'
             AND h.hour >= %(lo)s - interval '1 hour' AND h.hour < %(hi)s AND h.n > 0 AND h.vmin IS NOT NULL
           ORDER BY s.device_id, h.hour""",
        {"ice": ICE_RST_C, "ids": list(station_ids), "lo": lo, "hi": hi},
    ).fetchall()
    out = []
    for dev, hour, vmin, first in rows:
        at = first if first is not None else hour
        if hour < lo and at < lo:  # the hour straddling the start counts only from it
            continue
        out.append(StationHour(dev, max(hour, lo), float(vmin), first))
    return out


def decisions(conn: psycopg.Connection, p: Principal, *, lo: datetime, hi: datetime) -> list[DecisionRec]:
    """Decisions issued in [lo, hi) on routes p may see, with the first acknowledgement (or run start) by a person
    and the first run started under each (and its completion)."""
    rows = conn.execute(
        f"""SELECT d.id, d.route_id, d.action, d.issued_at,
                   (SELECT min(e.at) FROM gritting_decision_events e
                    WHERE e.decision_id = d.id AND e.actor <> 'evaluator'
                      AND e.event IN ('acknowledged', 'started', 'completed')),
                   d.carried_over,
                   (SELECT min(g.started_at) FROM gritting_runs g WHERE g.started_under = d.id),
                   (SELECT min(g.finished_at) FROM gritting_runs g WHERE g.started_under = d.id
                      AND g.status = 'completed')
            FROM gritting_decisions d JOIN routes r ON r.id = d.route_id
            WHERE {ROUTE_SCOPE} AND d.issued_at >= %(lo)s AND d.issued_at < %(hi)s
            ORDER BY d.id""",
        scope_params(p) | {"lo": lo, "hi": hi},
    ).fetchall()
    return [DecisionRec(*r) for r in rows]


def runs(conn: psycopg.Connection, p: Principal, *, lo: datetime, hi: datetime) -> list[RunRec]:
    """Runs that finished (completed or called back) in [lo, hi) on routes p may see, with the spread rate the
    decision they started under asked for."""
    rows = conn.execute(
        f"""SELECT g.id, g.route_id, g.status, g.started_at, g.finished_at, g.discretionary, g.spread_rate_g_m2,
                   d.spread_rate_g_m2, g.tonnes
            FROM gritting_runs g JOIN gritting_decisions d ON d.id = g.started_under
            JOIN routes r ON r.id = g.route_id
            WHERE {ROUTE_SCOPE} AND g.finished_at >= %(lo)s AND g.finished_at < %(hi)s
            ORDER BY g.id""",
        scope_params(p) | {"lo": lo, "hi": hi},
    ).fetchall()
    return [RunRec(*r) for r in rows]


_DUE_COLUMNS = sorted({due for _, due, _ in STEPS})
_DONE_COLUMNS = sorted({c for _, _, done in STEPS for c in done})


@dataclass(frozen=True, slots=True)
class CaseDue(MappingRow):
    """A case's deadlines and when each step was done (core.cases.STEPS's columns), its closure, patch and
    responsible officer: what core.season.step_outcomes reads (as a mapping)."""

    id: int
    home_id: str
    emergency_by: datetime | None
    investigate_by: datetime | None
    preventative_begin_by: datetime | None
    preventative_physically_started_by: datetime | None
    safety_work_by: datetime | None
    summary_by: datetime | None
    investigation_done_at: datetime | None
    safety_work_done_at: datetime | None
    summary_sent_at: datetime | None
    works_started_at: datetime | None
    closed_at: datetime | None
    officer: str | None
    patch: str | None


# A step added to core.cases.STEPS needs its columns here too: the read refuses to start without them.
_STEP_COLUMNS = (*_DUE_COLUMNS, *_DONE_COLUMNS)
if not set(_STEP_COLUMNS) <= {f.name for f in fields(CaseDue)}:
    raise RuntimeError(f"store.season.CaseDue lacks a column of core.cases.STEPS: {sorted(_STEP_COLUMNS)}")


@dataclass(frozen=True, slots=True)
class WorksDone:
    """A case whose works were completed: the home, its address and patch, the officer and when."""

    case_id: int
    home_id: str
    address: str | None
    patch: str | None
    officer: str | None
    works_completed_at: datetime


def cases_due(conn: psycopg.Connection, p: Principal, *, lo: datetime, hi: datetime) -> list[CaseDue]:
    """Damp cases p may see with a step due in [lo, hi): deadlines, when each was done, closure, patch and
    responsible officer."""
    due_in = " OR ".join(f"(c.{col} >= %(lo)s AND c.{col} < %(hi)s)" for col in _DUE_COLUMNS)
    cols = ", ".join(f"c.{col}" for col in _STEP_COLUMNS)
    return list(
        typed(conn, CaseDue).execute(
            f"""SELECT c.id, c.home_id, {cols}, c.closed_at, c.officer, h.patch
                FROM damp_cases c JOIN homes h ON h.id = c.home_id
                WHERE {HOME_SCOPE} AND ({due_in})
                ORDER BY c.id""",
            scope_params(p) | {"lo": lo, "hi": hi},
        )
    )


def works_completed(conn: psycopg.Connection, p: Principal, *, lo: datetime, hi: datetime) -> list[WorksDone]:
    """Cases p may see whose works were completed in [lo, hi): home, address, patch, officer and when."""
    return list(
        typed(conn, WorksDone).execute(
            f"""SELECT c.id AS case_id, c.home_id, h.address, h.patch, c.officer, c.works_completed_at
                FROM damp_cases c JOIN homes h ON h.id = c.home_id
                WHERE {HOME_SCOPE} AND c.works_completed_at >= %(lo)s AND c.works_completed_at < %(hi)s
                ORDER BY c.works_completed_at, c.id""",
            scope_params(p) | {"lo": lo, "hi": hi},
        )
    )


def room_hours(
    conn: psycopg.Connection, home_id: str, *, first: datetime, hours: int
) -> list[tuple[list[float], list[float]]]:
    """Each room sensor of the home: hourly mean temperature and RH from `first` for `hours` hours (NaN where
    the hourly rollup has nothing), for core.season.works_effect."""
    devices = [
        r[0]
        for r in conn.execute(
            f"SELECT d.id FROM homes h JOIN devices d ON {_ROOM_DEVICE} WHERE h.id = %s ORDER BY d.id", (home_id,)
        )
    ]
    if not devices:
        return []
    grid = {dev: (np.full(hours, np.nan), np.full(hours, np.nan)) for dev in devices}
    rows = conn.execute(
        """SELECT s.device_id, s.metric, h.hour, h.total / h.n
           FROM series s JOIN readings_hourly h ON h.series_id = s.id
           WHERE s.device_id = ANY(%s) AND s.metric IN ('temperature', 'relative_humidity')
             AND h.hour >= %s AND h.hour < %s AND h.n > 0 AND h.total IS NOT NULL""",
        (devices, first, first + hours * _HOUR),
    ).fetchall()
    for dev, metric, hour, mean in rows:
        i = int((hour - first) / _HOUR)
        grid[dev][0 if metric == "temperature" else 1][i] = mean
    return [(t.tolist(), rh.tolist()) for t, rh in grid.values()]
