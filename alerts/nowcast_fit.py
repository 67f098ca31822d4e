"""The nowcast's daily learning (issue 13): once a day at noon local (backtest.LEARN_AT_HOUR, in
PLACEWATCH_LOCAL_ZONE), on the scheduler's leader.

It reads the road stations' last HISTORY_DAYS of readings, builds the learning examples at the local hours
backtest.LEARN_HOURS (each horizon's outcome counted only once it has passed), and:

- refits the pooled trees on the store's own examples once there are backtest.MIN_OWN_EXAMPLES of them and the
  last own fit is backtest.POOLED_REFIT_DAYS old or more; otherwise the stored own fit stays in force, or the
  default shipped with the code when there is none;
- learns each station's own mean error against the model in force, with its memory of recent evenings
  (core.gritting.learned.learn_stations), and stores it for the decisions to use.

The backtest replays exactly this schedule, so what it measures is what this job does. `placewatch nowcast fit`
runs it once and prints what it learned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from alerts.context import AlertContext, Evaluator
from core.gritting import backtest, learned
from core.gritting._text import station_name
from placewatch.settings import Settings
from store import nowcast as store

log = logging.getLogger("placewatch.alerts.nowcast")
HISTORY_DAYS = 120
Fit = Callable[[learned.Examples, datetime], learned.NowcastModel]


@dataclass
class FitOutcome:
    """What one run of the learning did."""

    at: datetime
    stations_read: int = 0
    examples: int = 0  # learning hours with at least one outcome known
    own_examples: int = 0  # with every horizon's outcome known: what a pooled refit may use
    model: str = "default"  # "default", "stored" or "refitted"
    model_fitted_at: datetime | None = None
    model_trained_on: dict[str, Any] = field(default_factory=dict)
    stations: dict[str, learned.StationLearning] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    horizons: tuple[int, ...] = ()
    names: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What it did, in words."""
        if self.model == "refitted":
            t = self.model_trained_on
            model = (
                f"pooled nowcast refitted on the stored nights: {t.get('examples', 0):,} evening and night hours "
                f"of {t.get('stations', 0)} stations over {t.get('nights', 0)} nights"
            )
        elif self.model == "stored":
            model = f"pooled nowcast: the one fitted on the stored nights on {self.model_fitted_at:%Y-%m-%d} stays"
        else:
            model = (
                "pooled nowcast: the default shipped with Placewatch"
                f" ({self.own_examples:,} stored hours with a known outcome; "
                f"{backtest.MIN_OWN_EXAMPLES:,} are needed to fit one on this council's own nights)"
            )
        out = [
            f"nowcast learning at {self.at:%Y-%m-%d %H:%M %Z}: {self.stations_read} road stations read, "
            f"{self.examples:,} evening and night hours to learn from",
            model,
            f"{len(self.stations)} stations learned their own correction"
            + (f"; {len(self.forgotten)} without readings forgot theirs" if self.forgotten else ""),
        ]
        for sid, s in sorted(self.stations.items()):
            out.append(f"  {station_name(sid, self.names.get(sid))}: {self._station(s)}")
        return out

    def _station(self, s: learned.StationLearning) -> str:
        parts = []
        for h, e in zip(self.horizons, s.mean_error, strict=False):
            if h not in (3, 6, 12):
                continue
            if abs(e) < 0.05:
                parts.append(f"{h} h ahead as projected")
            else:
                parts.append(f"{h} h ahead {abs(e):.1f} °C {'warmer' if e > 0 else 'colder'} than projected")
        night = "night" if s.nights == 1 else "nights"
        said = "; ".join(parts) if parts else "no outcome known yet"
        return f"{s.nights} {night}: the road ended {said}"


def fit_once(
    conn: psycopg.Connection,
    *,
    now: datetime,
    zone: ZoneInfo,
    station_ids: Sequence[str] | None = None,
    fit: Fit = learned.fit_at,
) -> FitOutcome:
    """One run of the learning as of `now` (all road stations, or these), stored; what it did."""
    now = now.astimezone(zone)
    out = FitOutcome(at=now)
    since = now - timedelta(days=HISTORY_DAYS)
    ids = None if station_ids is None else list(station_ids)
    series = [s for s in store.station_series(conn, station_ids=ids, since=since, until=now) if not s.empty]
    out.stations_read = len(series)
    try:
        stored = store.latest_model(conn)
    except ValueError as exc:  # parameters of an older version: the default until a refit replaces them
        log.warning("nowcast: the stored pooled model cannot be used (%s); the shipped default serves", exc)
        stored = None
    model = stored if stored is not None else learned.load_default()
    horizons = model.horizons
    out.horizons = horizons
    ex, hours = _examples(series, since=since, now=now, zone=zone, horizons=horizons)
    out.examples = len(ex)
    now_s = int(now.timestamp())
    own = ex.t + int(horizons[-1]) * 3600 <= now_s
    out.own_examples = int(own.sum())
    due = stored is None or now - stored.fitted_at >= timedelta(days=backtest.POOLED_REFIT_DAYS)
    if out.own_examples >= backtest.MIN_OWN_EXAMPLES and due:
        model = fit(ex.select(own), now)
        store.save_model(conn, model)
        out.model = "refitted"
        out.model_trained_on = dict(model.trained_on)
    else:
        out.model = "stored" if stored is not None else "default"
    out.model_fitted_at = model.fitted_at
    out.stations = learned.learn_stations(model, ex, local_hour=hours) if len(ex) else {}
    scope = store.road_stations(conn, ids)
    out.names = {sid: name for sid, name in scope.items() if name}
    out.forgotten = sorted(sid for sid in store.stations_fitted(conn, ids) if sid not in out.stations)
    store.save_stations(conn, out.stations, fitted_at=now, model_fitted_at=model.fitted_at, forget=out.forgotten)
    return out


def _examples(
    series: Sequence[learned.Series], *, since: datetime, now: datetime, zone: ZoneInfo, horizons: tuple[int, ...]
) -> tuple[learned.Examples, dict[str, Any]]:
    """Learning examples at the local hours of backtest.LEARN_HOURS up to now, each horizon's outcome only once
    it has passed (as the backtest counts them), and each example's local hour per station."""
    now_s = int(now.timestamp())
    issue = backtest.local_hours_epochs(
        since.astimezone(zone).date() - timedelta(days=1), now.astimezone(zone).date(), backtest.LEARN_HOURS, zone
    )
    issue = issue[issue <= now_s]
    parts = []
    for s in series:
        ex = learned.examples(s, issue, horizons)
        if not len(ex):
            continue
        passed = ex.t[:, None] + np.asarray(horizons, dtype=np.int64)[None, :] * 3600 <= now_s
        obs = np.where(passed, ex.observed_min, np.nan)
        keep = np.asarray(np.isfinite(obs).any(axis=1), dtype=bool)
        ex = learned.Examples(ex.station, ex.t, ex.x, ex.rst, obs, horizons).select(keep)
        if len(ex):
            parts.append(ex)
    ex = learned.Examples.concat(parts, horizons)
    hours = {}
    for sid in np.unique(ex.station):
        hours[str(sid)] = backtest.local_hour_of(ex.t[ex.station == sid], zone)
    return ex, hours


def noon_before(now: datetime, zone: ZoneInfo) -> datetime:
    """The latest LEARN_AT_HOUR:00 local at or before now."""
    local = now.astimezone(zone)
    mark = datetime.combine(local.date(), time(backtest.LEARN_AT_HOUR), tzinfo=zone)
    if mark > local:
        mark = datetime.combine(local.date() - timedelta(days=1), time(backtest.LEARN_AT_HOUR), tzinfo=zone)
    return mark


class NowcastFitter(Evaluator):
    """The scheduler's job: the learning runs when the day's LEARN_AT_HOUR local has come and it has not run
    since (checked every few minutes, so a restart or a leader change after noon still runs it that day)."""

    name = "nowcast-fit"
    first_delay_s = 60.0

    def __init__(self, settings: Settings, *, interval_s: float = 300.0) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self._ran_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The council's zone (PLACEWATCH_LOCAL_ZONE); read when used, so a bad one fails this job alone, saying
        why, and not the scheduler."""
        return ZoneInfo(self.settings.local_zone)

    def due(self, conn: psycopg.Connection, now: datetime) -> bool:
        """True when the learning has not run since the latest noon local."""
        mark = noon_before(now, self.zone)
        if self._ran_at is not None and self._ran_at >= mark:
            return False
        last = max(store.stations_fitted(conn).values(), default=None)
        return last is None or last < mark

    def sweep(self, ctx: AlertContext) -> None:
        """Learn when due."""
        now = ctx.now()
        with ctx.pool.connection() as conn:
            if not self.due(conn, now):
                return
            outcome = fit_once(conn, now=now, zone=self.zone)
        self._ran_at = now
        for line in outcome.lines():
            log.info("%s", line)
