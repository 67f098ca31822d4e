"""Device health: find offline, stale, low-battery, stuck, mis-wired and junk-sending devices and raise them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from alerts.context import AlertContext
from core.health import HealthPolicy, check
from placewatch.settings import Settings
from store import health

log = logging.getLogger("placewatch.alerts.health")


class DeviceHealthEvaluator:
    """Sweeps every device every few minutes; publishes a retained alert per device whose problems change."""

    name = "device-health"
    first_delay_s = 120.0  # give devices time to report after a (re)start before calling them stale

    def __init__(self, settings: Settings) -> None:
        self.interval_s = 300.0
        self.policy = HealthPolicy(
            stale_factor=settings.stale_after_factor, default_interval_s=settings.default_interval_seconds
        )

    def sweep(self, ctx: AlertContext) -> None:
        """Check every device and record what changed."""
        now = ctx.now()
        with ctx.pool.connection() as conn:
            facts = health.gather(conn, self.policy, now)
            found = {f.device_id: check(f, now, self.policy) for f in facts}
            teams = health.owning_teams(conn)
            changed = health.sync(conn, found, teams, now)
            problems = health.open_problems(conn, sorted(changed))
        for dev in sorted(changed):
            probs = problems.get(dev, [])
            body = {"device_id": dev, "team": teams.get(dev, "admin"), "problems": probs, "updated_at": now.isoformat()}
            ctx.publisher.publish("device", dev, body if probs else None)
        if changed:
            log.info("device health: %d devices changed", len(changed))

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        """Fresh readings are picked up by the next sweep (health changes slowly)."""

    def on_late(self, ctx: AlertContext, windows: list[tuple[str, datetime, datetime]]) -> None:
        """Late data does not change health."""
