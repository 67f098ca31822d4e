"""Housekeeping the scheduler's leader runs: retention of raw readings (PLACEWATCH_RETENTION_DAYS)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from alerts.context import AlertContext
from placewatch.settings import Settings
from store import maintenance
from store.migrate import engine

log = logging.getLogger("placewatch.alerts.maintenance")


class RetentionEvaluator:
    """Drops raw readings older than the retention; the hourly rollup stays.

    On plain PostgreSQL each sweep deletes in committed chunks for at most `budget_s` seconds (a backlog
    is worked off over the following sweeps); on TimescaleDB it sets the retention policy once and
    TimescaleDB drops whole chunks itself.
    """

    name = "retention"
    first_delay_s = 60.0

    def __init__(self, settings: Settings, *, interval_s: float = 300.0, budget_s: float = 20.0) -> None:
        self.days = settings.retention_days
        self.interval_s = interval_s
        self.budget_s = budget_s
        self._policy_set = False

    def sweep(self, ctx: AlertContext) -> None:
        """Apply the retention once more."""
        with ctx.pool.connection() as conn:
            if engine(conn) == "timescale":
                if not self._policy_set:
                    if maintenance.set_retention_policy(conn, self.days):
                        log.info("retention: TimescaleDB now keeps raw readings for %s days (0: all)", self.days)
                    self._policy_set = True
                return
            if self.days <= 0:
                return
            cutoff = ctx.now() - timedelta(days=self.days)
            done = maintenance.delete_old_readings(conn, before=cutoff, max_seconds=self.budget_s)
        if done.rows:
            log.info(
                "retention: deleted %d raw readings before %s%s",
                done.rows,
                cutoff.isoformat(),
                "" if done.finished else "; more next sweep",
            )

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        """New readings change nothing here."""

    def on_late(self, ctx: AlertContext, windows: list[tuple[str, datetime, datetime]]) -> None:
        """Late data changes nothing here."""
