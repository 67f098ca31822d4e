"""Housekeeping the scheduler's leader runs: retention of raw readings (PLACEWATCH_RETENTION_DAYS) and of dead
letters (PLACEWATCH_DEAD_LETTER_RETENTION_DAYS), the move of the hourly rollup's watermark (plain PostgreSQL), and
the packing of closed days of the hourly rollup."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from alerts.context import AlertContext, Evaluator
from placewatch.settings import Settings
from store import hourly_days, maintenance, rollup
from store.db import autocommit
from store.migrate import engine

log = logging.getLogger("placewatch.alerts.maintenance")


class RetentionEvaluator(Evaluator):
    """Drops raw readings older than the retention (the hourly rollup stays) and dead letters older than theirs.

    On plain PostgreSQL each sweep deletes in committed chunks for at most `budget_s` seconds (a backlog
    is worked off over the following sweeps); on TimescaleDB it sets the retention policy once and
    TimescaleDB drops whole chunks itself. Dead letters are a plain table on both: deleted in chunks.
    """

    name = "retention"
    first_delay_s = 60.0

    def __init__(self, settings: Settings, *, interval_s: float = 300.0, budget_s: float = 20.0) -> None:
        self.days = settings.retention_days
        self.dead_letter_days = settings.dead_letter_retention_days
        self.interval_s = interval_s
        self.budget_s = budget_s
        self._policy_set = False

    def sweep(self, ctx: AlertContext) -> None:
        """Apply the retentions once more."""
        with ctx.pool.connection() as conn:
            if self.dead_letter_days > 0:
                before = ctx.now() - timedelta(days=self.dead_letter_days)
                _log("dead letters received", before, maintenance.delete_old_dead_letters(conn, before=before))
            if engine(conn) == "timescale":
                if not self._policy_set:
                    if maintenance.set_retention_policy(conn, self.days):
                        log.info("retention: TimescaleDB now keeps raw readings for %s days (0: all)", self.days)
                    self._policy_set = True
                return
            if self.days > 0:
                before = ctx.now() - timedelta(days=self.days)
                # Raw readings after the rollup's watermark are all there is of their hours (store.rollup): kept
                # until it has passed them (only a watermark stopped for the whole retention would reach them).
                wm = rollup.watermark(conn)
                before = min(before, wm) if wm is not None else before
                _log(
                    "raw readings",
                    before,
                    maintenance.delete_old_readings(conn, before=before, max_seconds=self.budget_s),
                )


def _log(what: str, before: datetime, done: maintenance.Deleted) -> None:
    if done.rows:
        log.info(
            "retention: deleted %d %s before %s%s",
            done.rows,
            what,
            before.isoformat(),
            "" if done.finished else "; more next sweep",
        )


class PackingEvaluator(Evaluator):
    """Packs closed days of the hourly rollup, one row per series and day (store.hourly_days), for the damp
    sweep; packs again days that late readings changed. On both engines (on TimescaleDB it packs what the
    readings_hourly view says, and ingest marks late days there too). A backlog (the first run, or after a stop)
    is worked off over the following runs, `budget_s` at a time."""

    name = "hourly_days"
    first_delay_s = 20.0

    def __init__(self, settings: Settings, *, interval_s: float = 600.0, budget_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self.budget_s = budget_s

    def sweep(self, ctx: AlertContext) -> None:
        """Pack what is due."""
        with ctx.pool.connection() as conn, autocommit(conn):  # pack commits slice by slice
            done = hourly_days.pack(conn, ctx.now(), max_seconds=self.budget_s)
        if done.days or done.repacked or done.dropped:
            log.info(
                "hourly days: %d packed, %d series-days repacked after late readings, %d dropped%s",
                done.days,
                done.repacked,
                done.dropped,
                "" if done.finished else "; more next run",
            )


class RollupEvaluator(Evaluator):
    """Plain PostgreSQL: moves the hourly rollup's watermark over the hours that have ended (store.rollup), so
    readers take them from readings_hourly_closed instead of aggregating raw readings. Nothing on TimescaleDB,
    whose continuous aggregate has its own policy."""

    name = "rollup"
    first_delay_s = 10.0

    def __init__(self, settings: Settings, *, interval_s: float = 300.0) -> None:
        self.interval_s = interval_s

    def sweep(self, ctx: AlertContext) -> None:
        """Move the watermark as far as is due."""
        with ctx.pool.connection() as conn, autocommit(conn):
            done = rollup.advance(conn, ctx.now())
        if done.hours:
            log.info(
                "hourly rollup: %d hours closed (%d series-hours), now up to %s",
                done.hours,
                done.rows,
                done.watermark.isoformat() if done.watermark else "?",
            )
        if done.waited_out:
            log.info("hourly rollup: a long write (a history import) holds the rollup's lock; next run goes on")
