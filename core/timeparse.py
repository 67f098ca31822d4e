"""Timestamps as devices send them, turned into aware UTC datetimes, and the one way every response writes a time
(utc_z). The caller passes `now`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no sensor of ours reported before this
_FRACTION = re.compile(r"(\.\d+)")
# rfc3339_us: the form nearly every device and gateway sends, as a wall time to the second and a tail
# (fraction, then Z or an offset); each part's value is cached, so a time costs two dictionary look-ups.
_WALL = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d", re.ASCII).fullmatch
_TAIL = re.compile(r"(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d\d):(\d\d))", re.ASCII).fullmatch
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_WALLS: dict[str, int | None] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch microseconds were it UTC; None: not a time
_TAILS: dict[str, int | None] = {}  # ".fffZ", "+01:00", ... -> microseconds to add; None: not a tail we take
_CACHE_MAX = 50_000


def utc_z(at: datetime) -> str:
    """The one time format of every response (API JSON, MQTT alerts, open data): RFC 3339 in UTC with a Z, to the
    second, with the microseconds only when there are some ("2026-12-02T18:00:00Z", "2026-12-02T18:00:00.250000Z").
    An aware time in any zone is converted to UTC first; a naive time is refused (ValueError): it says no zone, so
    writing it as UTC would be a guess."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time {at.isoformat()} has no time zone")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc_z_or_none(at: datetime | None) -> str | None:
    """utc_z, with None (no time) kept as None."""
    return None if at is None else utc_z(at)


def parse_rfc3339(text: str) -> datetime:
    """Parse RFC 3339 with a zone (Z or offset), any number of fractional digits; raise ValueError."""
    s = text.strip()
    if len(s) < 20 or s[10] not in "Tt ":
        raise ValueError(f"time {text!r} is not RFC 3339")
    # Python parses at most 6 fractional digits: The Things Stack sends 9.
    m = _FRACTION.search(s, 19)
    if m:
        frac = m.group(1)
        s = s[: m.start()] + frac[:7].ljust(7, "0") + s[m.end() :]
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"time {text!r} is not RFC 3339") from None
    if dt.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # an offset that pushes the date past year 1 or 9999
        raise ValueError(f"time {text!r} is out of range") from None


def rfc3339_us(text: str) -> int | None:
    """Epoch microseconds of an RFC 3339 time in its common form (YYYY-MM-DDTHH:MM:SS, an optional fraction,
    then Z or ±HH:MM; T and Z in either case), exactly what parse_rfc3339 gives; None for any other text,
    valid or not (parse_rfc3339 then decides and gives the reason). Years 1000 to 9998 only, where no offset
    can take the time out of datetime's range."""
    wall_text = text[:19]
    wall = _WALLS.get(wall_text)
    if wall is None:
        wall = _cached(_WALLS, wall_text, _wall_us)
        if wall is None:
            return None
    tail_text = text[19:]
    tail = _TAILS.get(tail_text)
    if tail is None:
        # Tails with more than milliseconds (".dddd...") are nearly all different: computed, not cached.
        many = len(tail_text) > 4 and tail_text[4].isdigit()
        tail = _tail_us(tail_text) if many else _cached(_TAILS, tail_text, _tail_us)
        if tail is None:
            return None
    return wall + tail


def _cached(cache: dict[str, int | None], key: str, compute: Callable[[str], int | None]) -> int | None:
    if key in cache:
        return cache[key]
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    value = cache[key] = compute(key)
    return value


def _wall_us(wall: str) -> int | None:
    """Epoch microseconds of "YYYY-MM-DDTHH:MM:SS" read as UTC, or None when it is no valid date and time."""
    if _WALL(wall) is None or not 1000 <= (year := int(wall[:4])) <= 9998:
        return None
    try:
        dt = datetime(year, int(wall[5:7]), int(wall[8:10]), int(wall[11:13]), int(wall[14:16]), int(wall[17:19]))
    except ValueError:  # a day the month does not have, hour 24, second 60, ...
        return None
    return (dt.replace(tzinfo=UTC) - _UNIX) // _US


def _tail_us(tail: str) -> int | None:
    """Microseconds a tail adds: its fraction (truncated to microseconds, as parse_rfc3339 does) minus its offset."""
    m = _TAIL(tail)
    if m is None:
        return None
    frac, sign, oh, om = m.groups()
    us = int(frac[:6].ljust(6, "0")) if frac else 0
    if sign is not None:
        h, mi = int(oh), int(om)
        if h > 23 or mi > 59:
            return None  # datetime takes +00:60 as an hour; leave such oddities to parse_rfc3339
        off = (h * 60 + mi) * 60_000_000
        us += -off if sign == "+" else off
    return us


def parse_local(text: str, zone: str) -> datetime:
    """Parse an ISO 8601 local time with no zone (Tasmota) as wall time in `zone`."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"time {text!r} is not an ISO 8601 local time") from None
    try:
        if dt.tzinfo is not None:
            return dt.astimezone(UTC)
        return dt.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {text!r} is out of range") from None


def from_epoch(value: float, *, unit: str = "auto") -> datetime:
    """Epoch seconds or milliseconds (auto: values above 1e11 are milliseconds) to UTC."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"time {value!r} is not a finite number")
    seconds = value
    if unit == "ms" or (unit == "auto" and abs(value) >= 1e11):
        seconds = value / 1000.0
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"time {value!r} is out of range") from None


def parse_any(value: object) -> datetime:
    """A `ts` as the native format allows: RFC 3339 with a zone, or epoch milliseconds (or seconds)."""
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return from_epoch(float(value))
    raise ValueError(f"time must be an RFC 3339 string or epoch milliseconds, got {value!r}")


def check_time(
    ts: datetime, now: datetime, *, max_future: timedelta = timedelta(minutes=10), earliest: datetime = EARLIEST
) -> str | None:
    """Return why a reading time is implausible (far future, before devices existed), or None."""
    if ts > now + max_future:
        return f"time {ts.isoformat()} is more than {int(max_future.total_seconds() // 60)} minutes in the future"
    if ts < earliest:
        return f"time {ts.isoformat()} is before {earliest.date().isoformat()}, earlier than any device could report"
    return None
