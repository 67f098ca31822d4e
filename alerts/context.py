"""What every evaluator gets: settings, a connection pool, the alert publisher and the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from psycopg_pool import ConnectionPool

from alerts.publisher import AlertPublisher
from placewatch.settings import Settings


@dataclass
class AlertContext:
    """Shared by the evaluators of one scheduler process."""

    settings: Settings
    pool: ConnectionPool
    publisher: AlertPublisher
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Evaluator(Protocol):
    """A family of rules run by the scheduler: a periodic sweep, plus re-evaluation when data arrives."""

    name: str
    interval_s: float

    def sweep(self, ctx: AlertContext) -> None:
        """Evaluate everything this evaluator owns."""
        ...

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        """New readings arrived for these devices (None: too many to list, so consider all)."""
        ...

    def on_late(self, ctx: AlertContext, windows: list[tuple[str, datetime, datetime]]) -> None:
        """Late or out-of-order readings touched these (device, start, end) windows."""
        ...
