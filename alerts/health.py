"""Device health: find offline, stale, low-battery, stuck, mis-wired and junk-sending devices and raise them."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from alerts.context import AlertContext, Evaluator
from alerts.publisher import Pending, publish_pending
from core.cases import when
from core.health import HealthPolicy, check
from core.notifications import team_audience
from core.timeparse import utc_z
from placewatch.settings import Settings
from store import health, notifications

log = logging.getLogger("placewatch.alerts.health")
KIND = "device"  # placewatch/v1/alerts/device/{device_id}


def problem_json(p: health.OpenProblem) -> dict[str, Any]:
    """A device problem as JSON carries it: in the device's alert, its device.problem notification and the API."""
    return {"code": p.code, "message": p.message, "team": p.team, "opened_at": utc_z(p.opened_at)}


def _notify_opened(
    conn: Any, problems: dict[str, list[health.OpenProblem]], teams: dict[str, str], now: datetime
) -> None:
    """One device.problem notification per device with problems opened in this sweep, to its owning team."""
    for dev, probs in sorted(problems.items()):
        new = [p for p in probs if p.opened_at == now]
        if not new:
            continue
        team = teams.get(dev, "admin")
        notifications.enqueue(
            conn,
            kind="device.problem",
            subject=dev,
            audience=[team_audience(team)],
            title=f"Device {dev}: {'; '.join(p.message for p in new)}"[:200],
            body="\n".join(
                [f"Device {dev} has {'a new problem' if len(new) == 1 else 'new problems'}:"]
                + [f"- {p.message}" for p in new]
                + ["", f"Opened {when(now, clock=True)} (UK time); looked after by {team}."]
            ),
            payload={"device_id": dev, "team": team, "problems": [problem_json(p) for p in new]},
            dedupe_key=f"device.problem:{dev}:{','.join(sorted(p.code for p in new))}:{utc_z(now)}",
            now=now,
        )


class DeviceHealthEvaluator(Evaluator):
    """Sweeps every device every few minutes; publishes a retained alert per device whose problems change.

    What each device's alert last told is kept in the database (store.health.mark_published), as the gritting
    and damp evaluators keep theirs (alerts.publisher): an alert whose publish failed stays pending and is
    published on the next sweep, and a restart neither loses nor repeats one. Fresh and late readings are picked
    up by the next sweep (health changes slowly): it has no hooks for them."""

    name = "device-health"
    first_delay_s = 120.0  # give devices time to report after a (re)start before calling them stale

    def __init__(self, settings: Settings) -> None:
        self.interval_s = 300.0
        self.policy = HealthPolicy(
            stale_factor=settings.stale_after_factor, default_interval_s=settings.default_interval_seconds
        )

    def sweep(self, ctx: AlertContext) -> None:
        """Check every device, record what changed, and publish every device alert not yet published."""
        now = ctx.now()
        with ctx.pool.connection() as conn:
            facts = health.gather(conn, self.policy, now)
            found = {f.device_id: check(f, now, self.policy) for f in facts}
            teams = health.owning_teams(conn)
            changed = health.sync(conn, found, teams, now)
            pending = health.pending_alerts(conn)
            problems = health.open_problems(conn, sorted(changed | pending.keys()))
            opened = {dev: probs for dev, probs in problems.items() if dev in changed}
            _notify_opened(conn, opened, teams, now)  # same transaction as the problems it tells of
        if changed:
            log.info("device health: %d devices changed", len(changed))
        self._publish(ctx, pending, problems, teams, now)

    def _publish(
        self,
        ctx: AlertContext,
        pending: dict[str, list[int]],
        problems: dict[str, list[health.OpenProblem]],
        teams: dict[str, str],
        now: datetime,
    ) -> None:
        """Publish (or clear) each pending device alert; remember those the broker acknowledged."""

        def alert(dev: str, ids: list[int]) -> dict[str, Any] | None:
            """The device's retained alert: its open problems, or None to clear it."""
            if not ids:
                return None
            probs = [problem_json(p) for p in problems.get(dev, [])]
            return {"device_id": dev, "team": teams.get(dev, "admin"), "problems": probs, "updated_at": utc_z(now)}

        items = (Pending(dev, alert(dev, ids), (dev, ids)) for dev, ids in pending.items())
        done = publish_pending(ctx.publisher, KIND, items)
        if done:
            with ctx.pool.connection() as conn:
                health.mark_published(conn, done, at=now)
