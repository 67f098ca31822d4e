"""The one shape of an evaluator: what every evaluator gets (AlertContext), what every evaluator is (Evaluator),
and the two hooks only some evaluators have (OnReadings, OnLate).

Every evaluator reads through store/, judges with core/, writes through store/ and publishes (alerts.publisher)
in `sweep`, which the scheduler runs every `interval_s` seconds, the first time `first_delay_s` after this
process starts to lead. An evaluator that can do better than wait for its next sweep says so by having a hook:
`on_readings` (ingest committed readings for these devices) or `on_late` (late readings touched these windows).
The scheduler calls a hook only on the evaluators that have it (alerts.scheduler); nobody writes an empty one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from psycopg_pool import ConnectionPool

from alerts.publisher import AlertPublisher
from placewatch.settings import Settings

LateWindows = list[tuple[str, datetime, datetime]]  # (device, first reading, last reading) touched late


@dataclass
class AlertContext:
    """Shared by the evaluators of one scheduler process."""

    settings: Settings
    pool: ConnectionPool
    publisher: AlertPublisher
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Evaluator(Protocol):
    """A family of rules run by the scheduler: read -> judge (core) -> write -> publish, in a periodic sweep.

    Evaluators subclass this (explicitly, for its default): `first_delay_s` is 0 unless an evaluator says why
    it waits (device health gives devices time to report after a restart)."""

    name: str
    interval_s: float
    first_delay_s: float = 0.0

    def sweep(self, ctx: AlertContext) -> None:
        """Evaluate everything this evaluator owns."""
        ...


@runtime_checkable
class OnReadings(Protocol):
    """An evaluator that re-evaluates as soon as ingest commits readings (LISTEN/NOTIFY, debounced)."""

    def on_readings(self, ctx: AlertContext, device_ids: Iterable[str] | None) -> None:
        """New readings arrived for these devices (None: too many to list, so consider all)."""
        ...


@runtime_checkable
class OnLate(Protocol):
    """An evaluator whose judgements late or out-of-order readings can change."""

    def on_late(self, ctx: AlertContext, windows: LateWindows) -> None:
        """Late or out-of-order readings touched these (device, start, end) windows."""
        ...
