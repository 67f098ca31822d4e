"""Damp and mould: every home with sensors judged by core.damp from its hourly readings, red homes opened as
cases on Awaab's Law clocks, overdue steps escalated, and a retained MQTT alert per home when its level or
case changes (placewatch/v1/alerts/damp/{home_id}).

When it runs: a sweep over all homes every `damp_interval_minutes` (in chunks, so memory stays bounded);
when readings arrive, the homes they belong to once a new whole hour can be judged (and at most once every
`debounce_s` per home); at once for late or out-of-order readings inside the judged window.

What it keeps: each home's level and hysteresis state (core.damp.PreviousLevel) in damp_home_state; an
assessment with all its evidence only when the level or the reasons change; cases and their audit log.

Awareness: Placewatch treats a sustained high-risk (red) reading as the landlord becoming aware, which
starts the 10-working-day investigation clock. Whether sensor data alone makes a landlord aware is not
settled in law; this is the conservative choice, and the case history says so. Sensors never decide
alone that something is an emergency: only a person's confirm_emergency starts the 24-hour clock.

Notifications: besides the retained MQTT alert, events go to the notification outbox
(store.notifications) in the transaction of the change: 'damp.case' when a case opens (the patch's officer
and the tenant), 'damp.overdue' when a step is escalated (the patch and admins), 'damp.advice' to the tenant
when their home's level goes up.

The rules are pure functions in core, shared with the API: when a red home opens or reopens a case, what is a
rise, how long red lasts (core.damp_state.next_state); which action is allowed when, the status a case is in,
which steps are overdue (core.cases).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import resource
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import orjson
import psycopg

from alerts.context import AlertContext, Evaluator, LateWindows, OnLate, OnReadings
from alerts.debounce import Debouncer
from alerts.publisher import Pending, publish_pending
from core.cases import (
    STEP_TEXT,
    CaseEvent,
    CaseLevel,
    CaseStatus,
    CaseStep,
    case_summary,
    choose_officers,
    outstanding,
    overdue_steps,
    when,
)
from core.damp import (
    RISE_TITLE_OTHER,
    RISE_TITLES,
    Assessment,
    DampLevel,
    DampPolicy,
    HourlyHome,
    Level,
    PreviousLevel,
    assess_many,
)
from core.damp_state import HomeBefore, Transition, has_alert, next_state
from core.notifications import check_audience
from core.timeparse import utc_z, utc_z_or_none
from core.workdays import AwaabDeadlines, case_deadlines
from placewatch.settings import Settings
from store import damp as damp_store
from store import notifications
from store.db import autocommit, connect, jit_off, try_advisory_lock

log = logging.getLogger("placewatch.alerts.damp")

SWEEP_LOCK = 0x70770D01  # one damp sweep at a time, across processes
SYSTEM = "placewatch"
_HOUR = 3600


def alert_body(row: damp_store.HomeAlert, now: datetime) -> tuple[dict[str, Any] | None, str | None]:
    """The retained alert for a home (store.damp.alert_rows row) and its signature; (None, None) for no alert.

    A home has an alert while its level is advice, watch or red, or it has an open case. The signature covers
    what should make a new notification (level, worst room, case status, step, overdue), not the hourly figures.
    """
    case = row.case
    if not has_alert(row.level, case is not None):
        return None, None
    summary = case_summary(case, now) if case is not None else None
    key = [row.level, row.worst_room]
    if summary is not None:
        step = summary["next_step"] or {}
        key += [summary["id"], summary["status"], summary["level"], summary["overdue"], step.get("step")]
    signature = hashlib.md5(orjson.dumps(key), usedforsecurity=False).hexdigest()
    body = {
        "home_id": row.home_id,
        "patch": row.patch,
        "level": row.level,
        "assessed_at": utc_z_or_none(row.assessed_at),
        "worst_room": row.worst_room,
        "reasons": list(row.reasons or [])[:5],
        "case": summary,
        "published_at": utc_z(now),
    }
    return body, signature


# ---------------------------------------------------------------------------------------------
# Evaluating a chunk of homes


def policy_values(policy: DampPolicy) -> dict[str, Any]:
    """A policy as JSON-ready values (DampPolicy.from_mapping reads them back)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(policy).items()}


def policy_id(values: Mapping[str, Any]) -> str:
    """A stable id for a set of policy values."""
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def window_end(now: datetime) -> datetime:
    """The end of the judged window: the start of the hour containing now (as core.damp.assess)."""
    s = int(now.timestamp())
    return datetime.fromtimestamp(s - s % _HOUR, UTC)


@dataclass
class Counts:
    """What evaluations did."""

    homes: int = 0
    stored: int = 0
    opened: int = 0
    rows: int = 0
    changed: set[str] = field(default_factory=set)  # homes whose alert may need publishing
    peak_rss_mb: float = 0.0  # of a worker process, in a parallel sweep

    def add(self, other: Counts) -> None:
        """Accumulate another count."""
        self.homes += other.homes
        self.stored += other.stored
        self.opened += other.opened
        self.rows += other.rows
        self.changed |= other.changed
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)


def _signature(level: str, reasons: Sequence[str]) -> str:
    return hashlib.md5(orjson.dumps([level, list(reasons)]), usedforsecurity=False).hexdigest()


def evaluate_homes(
    conn: psycopg.Connection,
    home_ids: Sequence[str],
    now: datetime,
    policy: DampPolicy,
    pid: str,
    *,
    outdoor_known: dict[int, np.ndarray] | None = None,
    nearest_km: float = damp_store.NEAREST_STATION_KM,
) -> Counts:
    """Judge these homes at `now`, store what changed, open cases for red homes; one transaction.
    The connection must be in autocommit mode (the writes open their own transaction). `outdoor_known`:
    outdoor feeds already read for this same `now` (see store.damp.hourly_inputs)."""
    now = now.astimezone(UTC)
    end = window_end(now)
    start = end - timedelta(days=policy.history_days)
    inputs = damp_store.hourly_inputs(conn, home_ids, start, end, outdoor_known=outdoor_known, nearest_km=nearest_km)
    states = damp_store.home_states(conn, home_ids)
    befores = {hid: _before(st) for hid, st in states.items()}
    hours = inputs.hours
    missing = np.full(hours, np.nan)
    outdoor_series: dict[int, np.ndarray | None] = {}
    counts = Counts(rows=inputs.rows)

    judged: list[tuple[str, list[damp_store.RoomSensor], damp_store.OutdoorFeed | None, bool]] = []
    batch: list[HourlyHome] = []
    for hid in home_ids:
        sensors = inputs.sensors.get(hid)
        if not sensors:
            continue  # lost its sensors since it was listed
        feed = inputs.outdoor.get(hid)
        outdoor = None
        if feed is not None and feed.series_id is not None:
            if feed.series_id not in outdoor_series:  # one array per feed, so it is judged once
                outdoor_series[feed.series_id] = inputs.series(feed.series_id)
            outdoor = outdoor_series[feed.series_id]
        rooms = tuple(
            (
                s.room,
                _or(inputs.series(s.temperature_series), missing),
                _or(inputs.series(s.humidity_series), missing),
            )
            for s in sensors
        )
        batch.append(HourlyHome(rooms, outdoor, befores.get(hid, _NEVER).hold))
        judged.append((hid, sensors, feed, outdoor is not None))
    assessments = assess_many(batch, now, policy)

    new: list[damp_store.NewAssessment] = []
    pending: list[tuple[str, Assessment, str, str | None]] = []  # home, judgement, signature, evidence (JSON)
    window = {"start": utc_z(start), "end": utc_z(end), "hours": hours}
    for (hid, sensors, feed, has_outdoor), a in zip(judged, assessments, strict=True):
        st = states.get(hid)
        sig = _signature(a.level, a.reasons)
        evidence_json = None
        if st is None or st.signature != sig:
            rooms_of: dict[str, list[str]] = {}
            for s in sensors:
                rooms_of.setdefault(s.room, []).append(s.device_id)
            evidence = a.as_dict() | {
                "policy_id": pid,
                "window": dict(window),
                "inputs": {
                    "source": "hourly means (readings_hourly)",
                    "rooms": rooms_of,
                    "outdoor": None
                    if feed is None
                    else {
                        "device_id": feed.device_id,
                        "metric": feed.metric,
                        "how": feed.how,
                        "distance_km": feed.distance_km,
                        "has_readings": has_outdoor,
                    },
                },
            }
            evidence_json = orjson.dumps(evidence).decode()
            new.append(
                damp_store.NewAssessment(
                    home_id=hid,
                    assessed_at=now,
                    level=a.level,
                    raw_level=a.raw_level,
                    worst_room=a.worst_room,
                    coverage=a.coverage,
                    reasons_json=orjson.dumps(list(a.reasons)).decode(),
                    evidence_json=evidence_json,
                    policy_id=pid,
                    window_start=start,
                    window_end=end,
                )
            )
        pending.append((hid, a, sig, evidence_json))

    with conn.transaction():
        ids = damp_store.insert_assessments(conn, new)
        rows: list[damp_store.StateRow] = []
        events: list[tuple[int, damp_store.Event]] = []
        rises: dict[str, str] = {}  # home -> the level it rose from
        to_open: list[tuple[str, str | None, Assessment, int | None, str | None, datetime | None]] = []
        for hid, a, sig, evidence_json in pending:
            st = states.get(hid)
            t = next_state(befores.get(hid, _NEVER), a, now)
            assessment_id = ids.get(hid, st.assessment_id if st is not None else None)
            rows.append(_state_row(hid, t, now, end, sig, assessment_id))
            if t.changed:
                counts.changed.add(hid)
            if t.rose and t.was is not None:
                rises[hid] = t.was
            if t.log_on_case and st is not None and st.open_case_id is not None:
                events.append((st.open_case_id, _level_changed(t, a, st.open_case_status, assessment_id, now)))
            if t.opening is not None:
                # The case keeps the evidence of the assessment stored now (already in the database), or when the
                # red assessment was stored earlier (a case closed during this red spell), the judgement itself.
                case_evidence = None if evidence_json is not None else orjson.dumps(a.as_dict()).decode()
                to_open.append((hid, st.patch if st else None, a, assessment_id, case_evidence, t.state.red_since))
        deadlines = case_deadlines(now)
        opened = _open_cases(conn, to_open, now, deadlines)
        # Notifications in the order of the homes: a rise, then a case opened.
        for hid, a, _, _ in pending:
            if hid in rises:
                _notify_rise(conn, hid, rises[hid], a, now)
            if hid in opened:
                patch, case_id, officer = opened[hid]
                _notify_case(conn, hid, patch, case_id, a, now, deadlines, officer)
                counts.opened += 1
                counts.changed.add(hid)
        damp_store.upsert_states(conn, rows)
        damp_store.add_events(conn, events)
    counts.homes = len(pending)
    counts.stored = len(new)
    return counts


def _or(values: np.ndarray | None, default: np.ndarray) -> np.ndarray:
    return default if values is None else values


_NEVER = HomeBefore()  # a home not found (removed since it was listed): never evaluated, no cases


def _before(st: damp_store.HomeState) -> HomeBefore:
    """What core.damp_state.next_state needs of a home's stored state."""
    hold = (
        PreviousLevel(cast(Level, st.hold_level), st.hold_since)
        if st.hold_level is not None and st.hold_since is not None
        else None
    )
    return HomeBefore(
        level=cast(Level | None, st.level),
        hold=hold,
        red_since=st.red_since,
        open_case=st.open_case_id is not None,
        last_closed_at=st.last_closed_at,
    )


def _state_row(
    home_id: str, t: Transition, now: datetime, end: datetime, signature: str, assessment_id: int | None
) -> damp_store.StateRow:
    """The row that keeps a home's new state."""
    return damp_store.StateRow(
        home_id=home_id,
        level=t.state.level,
        raw_level=t.state.raw_level,
        hold_level=t.state.hold.level if t.state.hold else None,
        hold_since=t.state.hold.since if t.state.hold else None,
        red_since=t.state.red_since,
        assessed_at=now,
        window_end=end,
        signature=signature,
        assessment_id=assessment_id,
    )


def _level_changed(
    t: Transition, a: Assessment, case_status: str | None, assessment_id: int | None, now: datetime
) -> damp_store.Event:
    """The line in the open case's history that records the home's level changing."""
    return damp_store.Event(
        at=now,
        actor=SYSTEM,
        actor_role="system",
        action=CaseEvent.LEVEL_CHANGED,
        note=f"The home's damp and mould level went from {t.was} to {a.level}."
        + (f" {a.reasons[0]}" if a.reasons else ""),
        from_status=case_status,
        to_status=case_status,
        details={"from_level": t.was, "to_level": a.level, "assessment_id": assessment_id},
    )


def _open_cases(
    conn: psycopg.Connection,
    homes: Sequence[tuple[str, str | None, Assessment, int | None, str | None, datetime | None]],
    now: datetime,
    deadlines: AwaabDeadlines,
) -> dict[str, tuple[str | None, int, str | None]]:
    """Open a case for each (home, patch, red assessment, its id, evidence JSON or None for the stored assessment's,
    red since), in order, each with its responsible officer (core.cases.choose_officers); the patch, case id and
    officer of each home whose case opened (none when one was open already)."""
    if not homes:
        return {}
    patches = [patch for _, patch, *_ in homes]
    officers = choose_officers(patches, damp_store.officer_loads(conn, [p for p in patches if p is not None]))
    cases = []
    for (home_id, patch, a, assessment_id, evidence_json, red_since), officer in zip(homes, officers, strict=True):
        owner = (
            f" {officer} (housing officer for patch {patch}) is responsible for it."
            if officer
            else f" No housing officer looks after {f'patch {patch}' if patch else 'this home (it has no patch)'}: "
            "nobody is responsible for this case until an administrator adds one or an officer takes it on."
        )
        note = (
            f"Opened by Placewatch: the home's damp and mould level is red. {a.reasons[0] if a.reasons else ''} "
            "A sustained high-risk reading from the home's sensors is treated as the landlord becoming aware "
            "(the conservative reading of Awaab's Law; whether sensor data alone makes a landlord aware is not "
            f"settled), so the clock starts now: investigate by the end of {when(deadlines.investigate_by)} "
            "(10 working days). Whether this is an emergency is for a person to confirm, not the sensors." + owner
        )
        cases.append(
            damp_store.NewCase(
                home_id=home_id,
                opened_at=now,
                aware_at=deadlines.aware_at,
                investigate_by=deadlines.investigate_by,
                assessment_id=assessment_id,
                evidence_json=evidence_json,
                event=damp_store.Event(
                    at=now,
                    actor=SYSTEM,
                    actor_role="system",
                    action=CaseEvent.OPENED,
                    note=note,
                    from_status=None,
                    to_status=CaseStatus.OPEN,
                    details={
                        "aware_at": utc_z_or_none(deadlines.aware_at),
                        "aware_source": "sensors",
                        "investigate_by": utc_z_or_none(deadlines.investigate_by),
                        "assessment_id": assessment_id,
                        "red_since": utc_z_or_none(red_since),
                        "officer": officer,
                    },
                ),
                officer=officer,
            )
        )
    ids = damp_store.open_cases(conn, cases)
    return {
        home_id: (patch, ids[home_id], officer)
        for (home_id, patch, *_), officer in zip(homes, officers, strict=True)
        if home_id in ids
    }


def _notify_case(
    conn: psycopg.Connection,
    home_id: str,
    patch: str | None,
    case_id: int,
    a: Assessment,
    now: datetime,
    deadlines: AwaabDeadlines,
    officer: str | None,
) -> None:
    """Tell the patch's officer (the responsible one by name) and the tenant that a case opened; the admins too when
    nobody is responsible for it."""
    reasons = "\n".join(f"- {r}" for r in a.reasons[:3])
    owner = f"\n\n{officer} is the officer responsible." if officer else ""  # the tenant reads it too
    notify(
        conn,
        kind="damp.case",
        subject=str(case_id),
        audience=audience(patch, home_id, f"user:{officer}" if officer else "role:admin"),
        title=f"Damp and mould case {case_id} opened for home {home_id}: "
        f"investigate by {when(deadlines.investigate_by)}",
        body=(
            f"The sensors in home {home_id} show a high risk of damp and mould:\n{reasons}\n\n"
            f"Case {case_id} is open. The landlord must investigate by the end of {when(deadlines.investigate_by)} "
            "(10 working days, Awaab's Law) and keep the tenant informed throughout." + owner
        ),
        payload={
            "case_id": case_id,
            "home_id": home_id,
            "patch": patch,
            "level": CaseLevel.RED,
            "aware_at": utc_z_or_none(deadlines.aware_at),
            "investigate_by": utc_z_or_none(deadlines.investigate_by),
            "reasons": list(a.reasons),
            "officer": officer,
        },
        dedupe_key=f"damp.case:{case_id}:opened",
        now=now,
    )


def _notify_rise(conn: psycopg.Connection, home_id: str, was: str, a: Assessment, now: datetime) -> None:
    """Tell the tenant when their home's level goes up, with the advice tied to their readings."""
    notify(
        conn,
        kind="damp.advice",
        subject=home_id,
        audience=audience(None, home_id),
        title=RISE_TITLES.get(DampLevel(a.level), RISE_TITLE_OTHER),
        body="\n".join(a.advice),
        payload={"home_id": home_id, "from_level": was, "level": a.level, "advice": list(a.advice)},
        dedupe_key=f"damp.advice:{home_id}:{a.level}:{utc_z(now)}",
        now=now,
    )


def audience(patch: str | None, home_id: str | None, *extra: str) -> list[str]:
    """Notification audience keys for a home's officer (patch) and tenant (home); ids that cannot be keys are left
    out (and logged) rather than failing the evaluation."""
    keys = []
    for key in (f"patch:{patch}" if patch else None, f"home:{home_id}" if home_id else None, *extra):
        if key is None:
            continue
        try:
            keys += check_audience([key])
        except ValueError:
            log.warning("no notification for %r: not usable as an audience key", key)
    return keys


def notify(conn: psycopg.Connection, *, audience: list[str], **event: Any) -> None:
    """Record a notification event in the caller's transaction (store.notifications), if anyone is to get it."""
    if audience:
        notifications.enqueue(conn, audience=audience, **event)


# Worker processes of a parallel sweep: each has its own connection (never one inherited from the parent).
_worker: dict[str, Any] = {}


def _worker_context() -> multiprocessing.context.BaseContext:
    """Where a parallel sweep's workers come from: a fork server that imported this module (numpy, pandas, psycopg,
    the settings) once, when a sweep first needed it; each sweep forks its workers from it in milliseconds. Spawned
    afresh, every worker of every sweep imported all that again (about 1 s of CPU each: most of a small sweep's
    cost). Not forked from this process: a child would share (and on exit close) its connections; the server has
    none."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", __name__])
    return ctx


def _noop() -> None:
    pass


def _warm_fork_server() -> None:
    """Start the fork server and wait until it has imported what the workers need (it forks a first process,
    which does nothing, only once its imports are done)."""
    p = _worker_context().Process(target=_noop)
    p.start()
    p.join()


def _worker_init(conninfo: str, values: dict[str, Any], nearest_km: float) -> None:
    _worker["conn"] = connect(conninfo, autocommit=True)
    jit_off(_worker["conn"])  # as store.db.autocommit does for pooled connections
    _worker["nearest_km"] = nearest_km
    _worker["policy"] = DampPolicy.from_mapping(values)
    _worker["pid"] = policy_id(values)


def _worker_chunk(home_ids: list[str], now: datetime) -> Counts:
    if _worker.get("now") != now:  # outdoor feeds are read once per sweep
        _worker["now"], _worker["outdoor"] = now, {}
    counts = evaluate_homes(
        _worker["conn"],
        home_ids,
        now,
        _worker["policy"],
        _worker["pid"],
        outdoor_known=_worker["outdoor"],
        nearest_km=_worker["nearest_km"],
    )
    counts.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return counts


# ---------------------------------------------------------------------------------------------
# The evaluator


class DampEvaluator(Evaluator, OnReadings, OnLate):
    """Sweeps every home with sensors, re-evaluates homes as their readings arrive, keeps cases on their clocks."""

    name = "damp"

    def __init__(
        self,
        settings: Settings,
        *,
        policy: DampPolicy | None = None,
        workers: int = 1,
        chunk_homes: int = 1000,
        debounce_s: float = 300.0,
        housekeeping_s: float = 30.0,
        nearest_station_km: float = damp_store.NEAREST_STATION_KM,
    ) -> None:
        self.interval_s = float(settings.damp_interval_minutes * 60)
        self.policy = policy or DampPolicy()
        self.values = policy_values(self.policy)
        self.policy_id = policy_id(self.values)
        self.workers = max(1, workers)
        self.chunk_homes = chunk_homes
        self.debounce_s = debounce_s
        self.housekeeping_s = housekeeping_s
        self.nearest_station_km = nearest_station_km
        self._housekeeping = Debouncer(housekeeping_s)  # escalation and case-change publishing, between sweeps
        self.last_sweep: dict[str, Any] | None = None
        self._lock = threading.RLock()  # one evaluation of a home at a time within this process
        self._debounce = Debouncer(debounce_s)  # per home, from its last evaluation
        self._deferred: set[str] = set()  # homes with new readings waiting out their debounce
        self._policy_saved = False
        self._warming: threading.Thread | None = None
        if self.workers > 1:
            # The fork server starts now, with the service, and imports (about 0.6 s of CPU) while the service
            # starts up, rather than in the first sweep (where bench.damp measured it).
            self._warming = threading.Thread(target=_warm_fork_server, name="damp-fork-server", daemon=True)
            self._warming.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the parallel sweep's fork server has started (a service need not: its first sweep waits)."""
        if self._warming is not None:
            self._warming.join(timeout)

    # -- the evaluator: a sweep, and its hooks for new and late readings ------------------------------------

    def sweep(self, ctx: AlertContext) -> None:
        """Judge every home with sensors, escalate overdue steps and publish what changed."""
        now = ctx.now()
        started = time.perf_counter()
        counts = Counts()
        with ctx.pool.connection() as conn, autocommit(conn):
            if not try_advisory_lock(conn, SWEEP_LOCK):
                log.info("damp sweep skipped: another process is sweeping")
                return
            try:
                self._save_policy(conn)
                published, early = 0, set[str]()
                if self.workers > 1:
                    with self._lock:
                        conninfo = ctx.pool.conninfo
                        dsn = conninfo if isinstance(conninfo, str) else conninfo()
                        published, early = self._sweep_parallel(ctx, conn, dsn, now, counts)
                else:
                    self._sweep_serial(conn, now, counts)
                judged = time.perf_counter()
                counts.changed |= self._escalate(conn, now)
                published += self._publish(ctx, conn, counts.changed - early, now)
            finally:
                damp_store.unlock(conn, SWEEP_LOCK)
        seconds = time.perf_counter() - started
        self.last_sweep = {
            "homes": counts.homes,
            "assessments_stored": counts.stored,
            "cases_opened": counts.opened,
            "hourly_rows": counts.rows,
            "alerts_published": published,
            "seconds": seconds,
            "judging_seconds": judged - started,
        }
        if self.workers > 1:
            self.last_sweep["worker_peak_rss_mb"] = counts.peak_rss_mb
        log.info(
            "damp sweep: %d homes in %.1f s (%d assessments stored, %d cases opened, %d alerts)",
            counts.homes,
            seconds,
            counts.stored,
            counts.opened,
            published,
        )

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        """Judge the homes of these devices once a new whole hour can be judged (debounced per home)."""
        now = ctx.now()
        end = window_end(now)
        with ctx.pool.connection() as conn, autocommit(conn):
            if device_ids is None:
                homes = self._all_homes(conn)
            else:
                homes = damp_store.homes_for_devices(conn, sorted(set(device_ids)), outdoor=False)
            wanted = sorted(set(homes) | self._deferred)
            due: list[str] = []
            if wanted:
                stale = damp_store.not_evaluated_since(conn, wanted, end)
                due = self._debounce.ready(stale)
                self._deferred = set(stale) - set(due)
            self._evaluate(ctx, conn, due, now)

    def on_late(self, ctx: AlertContext, windows: LateWindows) -> None:
        """Judge again, at once, the homes whose readings (or outdoor feed) changed inside the judged window."""
        now = ctx.now()
        end = window_end(now)
        start = end - timedelta(days=self.policy.history_days)
        devices = sorted({dev for dev, lo, hi in windows if lo < end and hi >= start})
        if not devices:
            return
        with ctx.pool.connection() as conn, autocommit(conn):
            homes = damp_store.homes_for_devices(conn, devices, outdoor=True)
            self._deferred -= set(homes)
            self._evaluate(ctx, conn, homes, now)

    # -- inside -----------------------------------------------------------------------------------

    def _save_policy(self, conn: psycopg.Connection) -> None:
        if not self._policy_saved:
            damp_store.ensure_policy(conn, self.policy_id, self.values)
            self._policy_saved = True

    def _all_homes(self, conn: psycopg.Connection) -> list[str]:
        out: list[str] = []
        after = None
        while page := damp_store.homes_with_sensors(conn, after=after, limit=10_000):
            out += page
            after = page[-1]
        return out

    def _evaluate(self, ctx: AlertContext, conn: psycopg.Connection, homes: Sequence[str], now: datetime) -> None:
        """Judge these homes now; then, if anything changed or it is time, escalate and publish."""
        counts = Counts()
        if homes:
            self._save_policy(conn)
            for i in range(0, len(homes), self.chunk_homes):
                chunk = list(homes[i : i + self.chunk_homes])
                with self._lock:
                    counts.add(self._judge(conn, chunk, now, None))
                self._debounce.mark(chunk)
            log.info("damp: %d homes judged on new readings (%d assessments stored)", counts.homes, counts.stored)
        # Escalations and officers' case changes are looked for at most every housekeeping_s between sweeps.
        if counts.changed or self._housekeeping.due():
            counts.changed |= self._escalate(conn, now)
            self._publish(ctx, conn, counts.changed, now)

    def _judge(
        self, conn: psycopg.Connection, homes: list[str], now: datetime, outdoor: dict[int, np.ndarray] | None
    ) -> Counts:
        return evaluate_homes(
            conn,
            homes,
            now,
            self.policy,
            self.policy_id,
            outdoor_known=outdoor,
            nearest_km=self.nearest_station_km,
        )

    def _sweep_serial(self, conn: psycopg.Connection, now: datetime, counts: Counts) -> None:
        after = None
        outdoor: dict[int, np.ndarray] = {}
        while chunk := damp_store.homes_with_sensors(conn, after=after, limit=self.chunk_homes):
            after = chunk[-1]
            with self._lock:
                counts.add(self._judge(conn, chunk, now, outdoor))
            self._debounce.mark(chunk)

    def _sweep_parallel(
        self, ctx: AlertContext, conn: psycopg.Connection, conninfo: str, now: datetime, counts: Counts
    ) -> tuple[int, set[str]]:
        """Judge every home in worker processes. The alerts of a chunk's homes go out as soon as it is judged, while
        the workers judge the next ones, except for homes whose cases the escalation after judging may flag (the
        ones with a step past its deadline now: judging opens cases but moves no deadline), which wait for it.
        Returns the alerts published and the homes whose alerts were seen to."""
        hold = {case.home_id for case in damp_store.cases_past_deadline(conn, now)}
        published, early = 0, set[str]()

        def finished(f: Future[Counts]) -> None:
            nonlocal published
            part = f.result()
            counts.add(part)
            ready = part.changed - hold
            published += self._publish_homes(ctx, conn, sorted(ready), now)
            early.update(ready)

        with ProcessPoolExecutor(
            self.workers,
            mp_context=_worker_context(),
            initializer=_worker_init,
            initargs=(conninfo, self.values, self.nearest_station_km),
        ) as pool:
            running: set[Future[Counts]] = set()
            after = None
            while chunk := damp_store.homes_with_sensors(conn, after=after, limit=self.chunk_homes):
                after = chunk[-1]
                running.add(pool.submit(_worker_chunk, chunk, now))
                if len(running) >= 2 * self.workers:  # a bounded queue keeps memory bounded
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for f in done:
                        finished(f)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    finished(f)
        self._debounce.mark(counts.changed)
        return published, early

    def _escalate(self, conn: psycopg.Connection, now: datetime) -> set[str]:
        """Flag each step past its deadline once, in the case history; return the homes concerned."""
        homes: set[str] = set()
        for case in damp_store.cases_past_deadline(conn, now):
            due = dict(outstanding(case))
            for step in overdue_steps(case, now):
                if step in case.overdue_steps:
                    continue
                note = (
                    f"Overdue: {STEP_TEXT[step]} was due by {when(due[step], clock=step == CaseStep.EMERGENCY)} and is "
                    f"not recorded as done. Escalated to the housing manager for the patch."
                )
                event = damp_store.Event(
                    at=now,
                    actor=SYSTEM,
                    actor_role="system",
                    action=CaseEvent.OVERDUE,
                    note=note,
                    from_status=case.status,
                    to_status=case.status,
                    details={"step": step, "due": utc_z(due[step])},
                )
                with conn.transaction():
                    if damp_store.flag_overdue(conn, case.id, step, event):
                        homes.add(case.home_id)
                        notify(
                            conn,
                            kind="damp.overdue",
                            subject=str(case.id),
                            audience=audience(case.patch, None, "role:admin"),
                            title=f"Damp and mould case {case.id} (home {case.home_id}): {STEP_TEXT[step]} is overdue",
                            body=note,
                            payload={
                                "case_id": case.id,
                                "home_id": case.home_id,
                                "step": step,
                                "due": utc_z(due[step]),
                            },
                            dedupe_key=f"damp.overdue:{case.id}:{step}",
                            now=now,
                        )
        return homes

    def _publish(self, ctx: AlertContext, conn: psycopg.Connection, homes: Iterable[str], now: datetime) -> int:
        """Publish the retained alert of each home whose alert changed (or clear it), and of each the store holds
        pending (a case changed, or a publish failed); return how many went out."""
        self._housekeeping.mark()
        wanted = sorted(set(homes) | set(damp_store.homes_to_publish(conn)))
        return self._publish_homes(ctx, conn, wanted, now)

    def _publish_homes(self, ctx: AlertContext, conn: psycopg.Connection, wanted: list[str], now: datetime) -> int:
        """Publish (or clear) the alert of each of these homes whose alert is not what was last published. Those the
        broker did not acknowledge stay pending in the store (store.damp.mark_unpublished), so the next pass
        publishes them, as it does a case an officer changed."""
        sent = 0
        for i in range(0, len(wanted), 500):
            checked: list[tuple[str, str | None]] = []
            pending: list[Pending[tuple[str, str | None]]] = []
            for row in damp_store.alert_rows(conn, wanted[i : i + 500]):
                body, sig = alert_body(row, now)
                if sig == row.published_sig:
                    checked.append((row.home_id, sig))  # the broker has this alert already
                else:
                    pending.append(Pending(row.home_id, body, (row.home_id, sig)))
            done = publish_pending(ctx.publisher, "damp", pending)
            damp_store.mark_published(conn, checked + done)
            damp_store.mark_unpublished(conn, sorted({p.ident for p in pending} - {home for home, _ in done}))
            sent += len(done)
        return sent
