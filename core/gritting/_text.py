"""How gritting decisions write temperatures, rates and times for people, and the UTC guard."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def utc(dt: datetime, what: str) -> datetime:
    """The same instant in UTC; raise ValueError naming `what` when dt has no time zone."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def floor_minute(dt: datetime) -> datetime:
    """dt without seconds: projected times are not that precise, and earlier is the safe side."""
    return dt.replace(second=0, microsecond=0)


def temp(c: float) -> str:
    """A temperature as people read it on a gritting sheet: '+1.8 C', '-3.2 C', '0.0 C'."""
    if abs(c) < 0.05:
        return "0.0 C"
    return f"{c:+.1f} C"


def grams(g: float) -> str:
    """A spread rate in g/m2 without a spurious '.0'."""
    return f"{g:g}"


def hm(dt: datetime) -> str:
    """A time of day in Europe/London, as the duty officer reads it."""
    return dt.astimezone(LONDON).strftime("%H:%M")


def minutes(m: float) -> str:
    """A duration in whole minutes."""
    return f"{round(m)} min"
