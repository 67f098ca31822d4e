"""How gritting decisions write temperatures, rates and times for people (degree signs, g/m², words not
abbreviations), and the UTC guard."""

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


G_M2 = "g/m²"  # grams of salt per square metre, as every rate is written


def temp(c: float) -> str:
    """A temperature as people read it on a gritting sheet: '+1.8 °C', '-3.2 °C', '0.0 °C'."""
    if abs(c) < 0.05:
        return "0.0 °C"
    return f"{c:+.1f} °C"


def grams(g: float) -> str:
    """A spread rate's number of g/m² without a spurious '.0'."""
    return f"{g:g}"


def station_name(station_id: str, name: str | None) -> str:
    """A station as people know it: its name ('Airport Road station'), else its id ('station RS-01')."""
    return f"{name} station" if name else f"station {station_id}"


def cap(text: str) -> str:
    """The text with its first letter in capitals, to begin a sentence."""
    return text[:1].upper() + text[1:]


def trust(confidence: float) -> str:
    """How far a decision can be trusted, in a word, from its confidence (0 to 1; the number is for the details)."""
    if confidence >= 0.7:
        return "high"
    if confidence >= 0.4:
        return "moderate"
    return "low"


def hm(dt: datetime) -> str:
    """A time of day in Europe/London, as the duty officer reads it."""
    return dt.astimezone(LONDON).strftime("%H:%M")


def minutes(m: float) -> str:
    """A duration in whole minutes."""
    return f"{round(m)} min"
