"""Timestamps as devices send them, turned into aware UTC datetimes. The caller passes `now`."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no sensor of ours reported before this
_FRACTION = re.compile(r"(\.\d+)")


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
