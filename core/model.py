"""Value types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

DeviceStatus = Literal["online", "offline"]


class Reading(NamedTuple):
    """One measured value of one metric from one device at one time (UTC, aware).

    A NamedTuple rather than a dataclass: ingest makes hundreds of thousands a second.
    """

    device_id: str
    metric: str
    ts: datetime
    value: float | None = None
    label: str | None = None  # categorical metrics (surface_state) carry a label, not a value


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device said it is online or offline (status topic, will, LWT, availability)."""

    device_id: str
    status: DeviceStatus
    ts: datetime


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one MQTT message yields once decoded: readings, status, and per-value rejections."""

    device_id: str | None
    readings: tuple[Reading, ...] = ()
    status: tuple[StatusChange, ...] = ()
    rejections: tuple[str, ...] = ()  # reasons for values dropped; the rest of the message is kept
    format: str = "native"
    meta: dict[str, str] = field(default_factory=dict)


class DecodeError(ValueError):
    """A whole message cannot be used; the text is the reason a person reads in the dead-letter store."""


Role = Literal["admin", "highways", "officer", "tenant"]
ROLES: tuple[Role, ...] = ("admin", "highways", "officer", "tenant")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: their role, and the home (tenant) or patch (officer) they are limited to."""

    name: str
    role: Role
    home_id: str | None = None
    patch: str | None = None
