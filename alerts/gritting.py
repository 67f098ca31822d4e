"""The gritting evaluator: each route's decision from its stations' recent readings and its road forecast
(core.gritting.decide), kept as a record with history, escalated when nobody acknowledges it in time, and
published as a retained MQTT alert on placewatch/v1/alerts/gritting/{route_id}.

- A route is re-decided on every sweep (every PLACEWATCH_ALERTS_INTERVAL_MINUTES), when a reading arrives
  for one of its stations (ingest's notification, debounced by the scheduler), and when late readings
  touch the hours its current decision rests on.
- A station's stored readings are what the rules see of it as core.gritting.samples says (dew point derived,
  unknown surface states dropped, rows with nothing the rules read left out).
- A new decision is stored only when it differs materially from the route's current one
  (core.gritting.lifecycle.material_change: action, spread rate, passes or spread type, or a call-out, start
  or completion time moved by at least the policy's material_rounding_minutes). The new decision links to
  the previous one, which becomes superseded unless it was already completed or cancelled.
- A treating decision still 'issued' at its call-out time (or ESCALATION_GRACE after being issued, when it
  was issued at or after its call-out time) becomes 'escalated', with an event, and is published again.
- The retained alert is published when a route's current decision or its status changes, and only then;
  what was last published is kept in the database, so a failed publish is retried and a restart does not
  publish everything again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.context import AlertContext, Evaluator, LateWindows, OnLate, OnReadings
from alerts.debounce import Debouncer
from alerts.publisher import Pending, publish_pending
from core.gritting import Decision, GrittingPolicy, RouteInput, decide, format_message, learned
from core.gritting.lifecycle import material_change
from core.gritting.samples import Sample, station_obs
from core.gritting.vocab import TREATING
from core.jsonready import json_ready
from placewatch.settings import Settings
from store import gritting as store
from store import notifications
from store import nowcast as nowcast_store

log = logging.getLogger("placewatch.alerts.gritting")
KIND = "gritting"
ESCALATION_CHECK_S = 60.0  # how often unacknowledged decisions are checked between full sweeps
ESCALATION_GRACE = timedelta(minutes=15)  # for decisions issued at or after their call-out time
FUTURE_TOLERANCE = timedelta(minutes=10)  # readings this far ahead are passed on: core notes a clock ahead
RECENT_SAMPLES = 6  # per station, kept in a decision's evidence
MODEL_CHECK_S = 300.0  # how often the store is asked whether a newer learned nowcast model has been fitted


def load_policy(path: Path | None, name: str | None = None) -> GrittingPolicy:
    """The council's policy from a JSON file of GrittingPolicy fields, or DOMAIN.md's defaults; `name` (the
    council's name for its policy, PLACEWATCH_WINTER_POLICY_NAME) unless the file names it."""
    named = {} if name is None else {"name": name}
    if path is None:
        return GrittingPolicy(**named)
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError("expected a JSON object of policy values")
        return GrittingPolicy.from_mapping(named | values)
    except (OSError, ValueError) as exc:
        raise ValueError(f"gritting policy file {path}: {exc}") from None


class GrittingEvaluator(Evaluator, OnReadings, OnLate):
    """Decides, records, escalates and publishes every route's gritting decision."""

    name = "gritting"

    def __init__(
        self, settings: Settings, *, policy: GrittingPolicy | None = None, learned_nowcast: bool = True
    ) -> None:
        """`learned_nowcast=False`: decide on the physics nowcast alone (core.gritting.nowcast), as for a scenario
        replayed onto the real clock whose hour is not the scenario's (the learned nowcast reads the clock)."""
        self.settings = settings
        self.learned_nowcast = learned_nowcast
        self.zone = settings.local_zone
        if policy is None:
            policy = load_policy(settings.gritting_policy_file, settings.winter_policy_name)
        self.policy = policy
        if settings.forecast_max_age_hours is not None:  # PLACEWATCH_FORECAST_MAX_AGE_HOURS wins over the policy file
            self.policy = dataclasses.replace(self.policy, forecast_max_age_hours=settings.forecast_max_age_hours)
        self.full_interval_s = settings.alerts_interval_minutes * 60.0
        # The scheduler calls sweep() this often; a full evaluation runs every full_interval_s, and in
        # between only escalation is checked, so a missed call-out escalates within a minute.
        self.interval_s = min(ESCALATION_CHECK_S, self.full_interval_s)
        self.lookback = timedelta(minutes=self.policy.no_data_after_minutes) + timedelta(
            hours=self.policy.nowcast_window_hours
        )
        self._policy_values = json_ready(self.policy)
        self._lock = threading.Lock()  # sweeps (scheduler thread) and notifications (main thread) take turns
        self._full = Debouncer(self.full_interval_s - 1.0)  # a full evaluation, between escalation checks
        # The learned nowcast model in force (the newest stored, else the shipped default), loaded once and
        # reloaded when the store holds a newer fit; checked at most every MODEL_CHECK_S.
        self._model: learned.NowcastModel | None = None
        self._model_stored_at: datetime | None = None
        self.model_check = Debouncer(MODEL_CHECK_S)  # how often the store is asked for a newer fit

    # -- the evaluator: a sweep, and its hooks for new and late readings -----------------------------------

    def sweep(self, ctx: AlertContext) -> None:
        """Every route, when a full sweep is due; otherwise escalation and publication only."""
        with self._lock:
            if self._full.take():
                self._run(ctx, route_ids=None, station_ids=None)
            else:
                self._escalate_and_publish(ctx, None)

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        """Re-decide the routes these stations represent (every route when device_ids is None)."""
        ids = None if device_ids is None else sorted(set(device_ids))
        if ids is not None and not ids:
            return
        with self._lock:
            self._run(ctx, route_ids=None, station_ids=ids)

    def on_late(self, ctx: AlertContext, windows: LateWindows) -> None:
        """Re-decide routes whose stations' late readings fall in the hours current decisions rest on.

        Older late readings cannot change a current decision; past decisions stay as they were issued."""
        cutoff = ctx.now() - self.lookback
        ids = sorted({dev for dev, _start, end in windows if end >= cutoff})
        if len(ids) < len({w[0] for w in windows}):
            log.debug("late readings older than %s ignored: they cannot change a current decision", cutoff)
        if ids:
            with self._lock:
                self._run(ctx, route_ids=None, station_ids=ids)

    # -- the learned nowcast ------------------------------------------------------------------------------

    def nowcast_model(self, conn: Any) -> learned.NowcastModel:
        """The pooled model in force: the newest fitted on the store's own nights, else the shipped default."""
        if self._model is not None and not self.model_check.due():
            return self._model
        self.model_check.mark()
        stored_at = nowcast_store.latest_model_fitted_at(conn)
        if self._model is not None and stored_at == self._model_stored_at:
            return self._model
        model: learned.NowcastModel | None = None
        if stored_at is not None:
            try:
                model = nowcast_store.latest_model(conn)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "stored nowcast model fitted %s not usable (%s): the shipped default decides", stored_at, exc
                )
        if model is None:
            model = learned.load_default()
        else:
            log.info("gritting: learned nowcast model fitted %s in force", model.fitted_at.isoformat())
        self._model, self._model_stored_at = model, stored_at
        return model

    def _run_model(self, conn: Any, station_ids: Sequence[str]) -> learned.NowcastModel | None:
        """The model in force with these stations' own learning (learning of another shape is left out); None
        when this evaluator decides on the physics nowcast."""
        if not self.learned_nowcast:
            return None
        model = self.nowcast_model(conn)
        learning = nowcast_store.load_stations(conn, station_ids)
        fits = {sid: s for sid, s in learning.items() if len(s.mean_error) == len(model.horizons)}
        return dataclasses.replace(model, stations=fits)

    # -- evaluation -------------------------------------------------------------------------------------

    def evaluate(self, ctx: AlertContext, route_ids: Sequence[str] | None = None) -> list[int]:
        """Re-decide these routes (all when None) now; return the ids of decisions stored."""
        with self._lock:
            return self._run(ctx, route_ids=route_ids, station_ids=None)

    def escalate(self, ctx: AlertContext, route_ids: Sequence[str] | None = None) -> list[int]:
        """Escalate overdue unacknowledged decisions (of these routes) and publish; return their ids."""
        with self._lock:
            return self._escalate_and_publish(ctx, route_ids)

    def _run(
        self, ctx: AlertContext, *, route_ids: Sequence[str] | None, station_ids: Sequence[str] | None
    ) -> list[int]:
        """Decide the routes named (or represented by these stations; all when both are None), record
        material changes, then escalate and publish for them."""
        started = time.perf_counter()
        now = ctx.now()
        policy = self.policy
        with ctx.pool.connection() as conn:
            routes = store.routes_to_evaluate(conn, route_ids=route_ids, station_ids=station_ids)
            if not routes:
                return []
            stations = sorted({s for r in routes for s in r.stations})
            samples = store.station_samples(
                conn, station_ids=stations, since=now - self.lookback, until=now + FUTURE_TOLERANCE
            )
            forecasts = store.latest_forecasts(
                conn,
                route_ids=[r.id for r in routes],
                since=now - timedelta(hours=policy.forecast_max_age_hours),
            )
            names = store.station_names(conn, stations)
            positions = nowcast_store.station_positions(conn, stations)
            model = self._run_model(conn, stations)
            obs = {sid: station_obs(sid, samples.get(sid, ()), names.get(sid), positions.get(sid)) for sid in stations}
            new: list[store.NewDecision] = []
            for r in routes:
                try:
                    stored_fc = forecasts.get(r.id)
                    if stored_fc is not None and stored_fc.problem is not None:
                        raise ValueError(f"forecast {stored_fc.id}: {stored_fc.problem}")
                    route = RouteInput(
                        route_id=r.id,
                        name=r.name,
                        priority=r.priority,
                        treatment_minutes=r.treatment_minutes,
                        mobilisation_minutes=r.mobilisation_minutes,
                        stations=tuple(obs[s] for s in r.stations),
                        forecast=stored_fc.forecast if stored_fc is not None else None,
                    )
                    d = decide(route, now, policy, nowcast_model=model)
                except ValueError as exc:  # a bad forecast or route: say so, keep evaluating the others
                    log.warning("route %s not evaluated: %s", r.id, exc)
                    continue
                if material_change(r.current, d, policy):
                    new.append(self._new(d, r, stored_fc, samples, model))
            with conn.transaction():  # the decisions and their notifications commit together
                stored, skipped = store.record_decisions(conn, decisions=new, evaluated=[r.id for r in routes], at=now)
                self._notify(conn, "gritting.decision", [did for did, _ in stored], now)
        for rid in skipped:
            log.info("route %s: its current decision changed meanwhile; it is decided again next time", rid)
        messages = {n.decision.route_id: n.message for n in new}
        for did, rid in stored:
            log.info("route %s: decision %d issued: %s", rid, did, messages.get(rid, ""))
        evaluated = None if route_ids is None and station_ids is None else [r.id for r in routes]
        self._escalate_and_publish(ctx, evaluated)
        log.debug(
            "gritting: %d routes evaluated in %.3f s; %d new decisions",
            len(routes),
            time.perf_counter() - started,
            len(stored),
        )
        return [did for did, _ in stored]

    def _escalate_and_publish(self, ctx: AlertContext, route_ids: Sequence[str] | None) -> list[int]:
        now = ctx.now()
        grace = ESCALATION_GRACE.total_seconds() / 60.0
        with ctx.pool.connection() as conn:
            with conn.transaction():
                escalated = store.escalate_overdue(conn, now=now, grace_minutes=grace, route_ids=route_ids)
                self._notify(conn, "gritting.escalation", escalated, now)
            pending = store.pending_publications(conn, route_ids=route_ids)
        for did in escalated:
            log.warning("gritting decision %d escalated: not acknowledged by its call-out time", did)
        done = publish_pending(
            ctx.publisher,
            KIND,
            (Pending(b.route_id, json_ready(b), (b.route_id, b.id, str(b.status))) for b in pending),
        )
        if done:
            with ctx.pool.connection() as conn:
                store.mark_published(conn, items=done, at=now)
        return escalated

    def _notify(self, conn: Any, kind: str, decision_ids: list[int], now: datetime) -> None:
        """Tell the highways team about decisions that need crews, and about escalations (in the caller's
        transaction, so a decision is never recorded without its notification, nor notified twice)."""
        for d in store.decisions_by_id(conn, decision_ids):
            if kind == "gritting.decision" and d.action not in TREATING:
                continue
            when = "NOT ACKNOWLEDGED by its call-out time. " if kind == "gritting.escalation" else ""
            reasons = "\n".join(f"- {r}" for r in d.reasons)
            notifications.enqueue(
                conn,
                kind=kind,
                subject=d.route_id,
                audience=["team:highways"],
                title=f"{'ESCALATED: ' if when else ''}Route {d.route_id}: {d.message}"[:200],
                body=f"{when}{d.message}\n\nCall out by {self._local(d.call_out_by)}; start by "
                f"{self._local(d.start_by)}; complete by {self._local(d.complete_by)}.\n\nWhy:\n{reasons}",
                payload=json_ready(d),
                dedupe_key=f"{kind}:{d.id}",
                now=now,
            )

    def _local(self, at: datetime | None) -> str:
        """A time as people read it: 'Tue 24 Nov 19:00' in the council's zone."""
        if at is None:
            return "-"
        return at.astimezone(ZoneInfo(self.zone)).strftime("%a %d %b %H:%M")

    def _new(
        self,
        d: Decision,
        r: store.RouteRow,
        fc: store.StoredForecast | None,
        samples: dict[str, list[Sample]],
        model: learned.NowcastModel | None,
    ) -> store.NewDecision:
        """A decision as store.record_decisions takes it, with the evidence it rests on."""
        policy = self.policy
        evidence = {
            "rule": d.rule,
            "reasons": list(d.reasons),
            "confidence": d.confidence,
            "decision": d.as_dict(),
            "route": {
                "id": r.id,
                "priority": r.priority,
                "treatment_minutes": r.treatment_minutes or policy.treatment_minutes,
                "mobilisation_minutes": (
                    r.mobilisation_minutes if r.mobilisation_minutes is not None else policy.mobilisation_minutes
                ),
                "treatment_from": "route" if r.treatment_minutes is not None else "policy",
                "mobilisation_from": "route or depot" if r.mobilisation_minutes is not None else "policy",
                "stations": list(r.stations),
            },
            "stations": [_station_summary(sid, samples.get(sid, [])) for sid in r.stations],
            "nowcast": {"model": "physics"}
            if model is None
            else {
                "model": "stored" if self._model_stored_at is not None else "default",
                "fitted_at": model.fitted_at,
                "trained_on": dict(model.trained_on),
                "station_nights": {
                    sid: model.stations[sid].nights if sid in model.stations else 0 for sid in r.stations
                },
            },
            "forecast_id": fc.id if fc is not None else None,
            "forecast": fc.evidence() if fc is not None else None,
            "policy": self._policy_values,
            "lookback_minutes": int(self.lookback.total_seconds() // 60),
            "previous_id": r.current.id if r.current is not None else None,
        }
        return store.NewDecision(
            decision=d,
            previous_id=r.current.id if r.current is not None else None,
            message=format_message([d]),
            forecast_id=fc.id if fc is not None else None,
            evidence=json_ready(evidence),
        )


def _station_summary(station_id: str, rows: Sequence[Sample]) -> dict[str, Any]:
    """What a station's readings looked like when the decision was made."""
    rst = [(r[0], r[1]) for r in rows if r[1] is not None]
    latest: dict[str, Any] = {}
    names = ("road_surface_temperature", "air_temperature", "dew_point", "surface_state", "freezing_point")
    for i, name in enumerate(names, start=1):
        found = next(((r[0], r[i]) for r in reversed(rows) if r[i] is not None), None)
        if found is not None:
            latest[name] = {"ts": found[0], "value": found[1]}
    summary: dict[str, Any] = json_ready(
        {
            "station_id": station_id,
            "samples": len(rows),
            "first_ts": rows[0][0] if rows else None,
            "last_ts": rows[-1][0] if rows else None,
            "rst_min": min((v for _, v in rst), default=None),
            "rst_max": max((v for _, v in rst), default=None),
            "latest": latest,
            "recent": [list(r[:6]) for r in rows[-RECENT_SAMPLES:]],
        }
    )
    return summary
