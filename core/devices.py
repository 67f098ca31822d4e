"""Device health rules that need no history: online, offline or stale."""

from __future__ import annotations

from datetime import datetime, timedelta


def device_status(
    reported: str | None,
    last_seen: datetime | None,
    expected_interval_s: int | None,
    now: datetime,
    *,
    default_interval_s: int = 900,
    stale_factor: float = 3.0,
) -> str:
    """'offline' if the device said so, 'stale' if nothing arrived for stale_factor x its interval, else 'online'."""
    if reported == "offline":
        return "offline"
    if last_seen is None:
        return "stale"
    interval = expected_interval_s or default_interval_s
    if now - last_seen > timedelta(seconds=interval * stale_factor):
        return "stale"
    return "online"


def parse_bucket(text: str) -> timedelta:
    """'15m', '1h', '1d', '30s', '1w' to a timedelta; raise ValueError with the accepted forms."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(num) :]
    if not num.isdigit() or unit not in units or int(num) <= 0:
        raise ValueError(f"bucket {text!r} must be a whole number and a unit s, m, h, d or w (for example 15m, 1h, 1d)")
    seconds = int(num) * units[unit]
    if seconds < 1 or seconds > 366 * 86400:
        raise ValueError(f"bucket {text!r} must be between 1s and 366d")
    return timedelta(seconds=seconds)
