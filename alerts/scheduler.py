"""The alerting scheduler: one leader at a time (PostgreSQL advisory lock), periodic sweeps with
APScheduler, and re-evaluation within seconds when ingest commits readings (LISTEN/NOTIFY, debounced).

The evaluators it runs are the one list in default_evaluators, imported directly: an evaluator that cannot be
imported stops the scheduler at start, saying why, rather than leaving a job silently unrun. Each has the one
shape of alerts.context.Evaluator; the new-readings and late-readings hooks go to the evaluators that have them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import orjson
import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from alerts.context import AlertContext, Evaluator, OnLate, OnReadings
from alerts.damp import DampEvaluator
from alerts.forecast_fetch import ForecastFetcher
from alerts.gritting import GrittingEvaluator
from alerts.health import DeviceHealthEvaluator
from alerts.maintenance import PackingEvaluator, RetentionEvaluator, RollupEvaluator
from alerts.notify import NotificationEvaluator
from alerts.nowcast_fit import NowcastFitter
from alerts.publisher import AlertPublisher
from placewatch.settings import Settings
from store import alerts_state, queries
from store.db import connect, listen, open_pool, try_advisory_lock
from store.writer import NOTIFY_CHANNEL

log = logging.getLogger("placewatch.alerts")
LEADER_LOCK = 0x70770001
DEBOUNCE_S = 0.5
LISTEN_FIRST_WAIT_S = 5.0  # a term's first sweeps wait at most this long for the listener to be listening


def default_evaluators(settings: Settings) -> list[Evaluator]:
    """The evaluators this installation runs, in this order: the one list of them."""
    evaluators: list[Evaluator | None] = [
        GrittingEvaluator(settings),
        DampEvaluator(settings, workers=settings.damp_workers),
        DeviceHealthEvaluator(settings),
        RetentionEvaluator(settings),
        RollupEvaluator(settings),
        PackingEvaluator(settings),
        NotificationEvaluator(settings),
        # off until PLACEWATCH_FORECAST_PROVIDER names a provider
        ForecastFetcher(settings) if settings.forecast_provider else None,
        NowcastFitter(settings),  # the nowcast's daily learning, at noon local
    ]
    return [e for e in evaluators if e is not None]


class Scheduler:
    """Runs evaluators while this process holds the leader lock."""

    def __init__(self, settings: Settings, evaluators: list[Evaluator], *, dsn: str) -> None:
        self.settings = settings
        self.evaluators = evaluators
        # The hooks go only to the evaluators that have them; the others wait for their next sweep.
        self.on_readings: list[tuple[str, OnReadings]] = [(e.name, e) for e in evaluators if isinstance(e, OnReadings)]
        self.on_late: list[tuple[str, OnLate]] = [(e.name, e) for e in evaluators if isinstance(e, OnLate)]
        self.dsn = dsn
        self._pending: set[str] = set()
        self._pending_all = False
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Wait to lead, then evaluate until stop is set or leadership is lost."""
        while not stop.is_set():
            try:
                lock_conn = connect(self.dsn, autocommit=True)
            except psycopg.Error as exc:
                log.warning("database unavailable (%s); retrying", str(exc).strip())
                stop.wait(5)
                continue
            try:
                if not try_advisory_lock(lock_conn, LEADER_LOCK):
                    log.info("another scheduler leads; standing by")
                    lock_conn.close()
                    stop.wait(5)
                    continue
                log.info("leading the alerting scheduler with %s", ", ".join(e.name for e in self.evaluators))
                self._lead(lock_conn, stop)
            except psycopg.Error as exc:
                log.warning("lost the database while leading (%s)", str(exc).strip())
            finally:
                lock_conn.close()

    def _lead(self, lock_conn: psycopg.Connection, stop: threading.Event) -> None:
        s = self.settings
        pool = open_pool(self.dsn, max_size=4)
        publisher = AlertPublisher(s.mqtt_url, protocol=s.mqtt_protocol, prefix=s.topic_prefix, ca_file=s.mqtt_ca_file)
        ctx = AlertContext(settings=s, pool=pool, publisher=publisher)
        sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        for ev in self.evaluators:
            sched.add_job(
                self._guard(ev.sweep, ev.name),
                "interval",
                seconds=ev.interval_s,
                args=[ctx],
                id=f"sweep-{ev.name}",
                next_run_time=datetime.now().astimezone() + timedelta(seconds=ev.first_delay_s),
            )
        sched.add_job(self._guard(self._late, "late"), "interval", seconds=30, args=[ctx], id="late-windows")
        # The listener ends with this term of leadership, so leading again does not start a second one. It
        # listens before the first sweeps read: what is committed after they read is then heard, not lost.
        lead_over = threading.Event()
        listening = threading.Event()
        listener = threading.Thread(
            target=self._listen, args=(stop, lead_over, listening), name="alerts-listen", daemon=True
        )
        listener.start()
        listening.wait(LISTEN_FIRST_WAIT_S)
        sched.start()
        try:
            while not stop.is_set():
                if self._wake.wait(1.0):
                    time.sleep(DEBOUNCE_S)  # gather a burst of commits into one evaluation
                    self._wake.clear()
                    self._dispatch(ctx)
                queries.ping(lock_conn)  # leadership lives with this connection: a lost one raises here
        finally:
            lead_over.set()
            sched.shutdown(wait=True)
            publisher.close()
            pool.close()

    def _listen(self, stop: threading.Event, lead_over: threading.Event, listening: threading.Event) -> None:
        while not (stop.is_set() or lead_over.is_set()):
            try:
                with connect(self.dsn, autocommit=True) as conn:
                    listen(conn, NOTIFY_CHANNEL)
                    if listening.is_set():
                        # Listening again after a lost connection (a database restart or failover): what ingest
                        # committed meanwhile was notified to nobody, so every evaluator hears "all changed".
                        log.info("listening again for new readings: re-evaluating everything once")
                        self._note_all()
                    listening.set()
                    while not (stop.is_set() or lead_over.is_set()):
                        for note in conn.notifies(timeout=1.0):
                            self._note(note.payload)
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", str(exc).strip())
                stop.wait(2)

    def _note(self, payload: str) -> None:
        """Ingest's notification: a JSON list of the device ids a commit touched; anything else means all."""
        try:
            ids = orjson.loads(payload)
        except orjson.JSONDecodeError:
            ids = None
        if not isinstance(ids, list):
            self._note_all()
            return
        with self._pending_lock:
            self._pending.update(str(i) for i in ids)
        self._wake.set()

    def _note_all(self) -> None:
        """Every evaluator re-evaluates everything once."""
        with self._pending_lock:
            self._pending_all = True
        self._wake.set()

    def _dispatch(self, ctx: AlertContext) -> None:
        with self._pending_lock:
            ids: Iterable[str] | None = None if self._pending_all else sorted(self._pending)
            self._pending.clear()
            self._pending_all = False
        for name, ev in self.on_readings:
            self._guard(ev.on_readings, name)(ctx, ids)

    def _late(self, ctx: AlertContext) -> None:
        with ctx.pool.connection() as conn:
            windows = alerts_state.take_late_windows(conn)
        if windows:
            for name, ev in self.on_late:
                self._guard(ev.on_late, name)(ctx, windows)

    @staticmethod
    def _guard(fn, name: str):  # type: ignore[no-untyped-def]
        def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("evaluator %s failed; it will run again", name)
                return None

        return run


def run_scheduler(settings: Settings, stop: threading.Event) -> None:
    """Entry point for `placewatch alerts` and `placewatch run`."""
    Scheduler(settings, default_evaluators(settings), dsn=settings.dsn()).run(stop)
