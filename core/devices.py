"""Device health rules that need no history: online, offline or stale."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class DeviceStatus(StrEnum):
    """Whether a device is heard from. The values are the public contract (`GET /api/v1/devices` `status`; a device's
    own MQTT status message is `online` or `offline`) and never change; the words are DEVICE_STATUS_LABELS and
    DEVICE_STATUS_WORDS."""

    ONLINE = "online"
    STALE = "stale"  # nothing arrived for stale_factor x its expected interval
    OFFLINE = "offline"  # the device said so (its MQTT status, or its will)


# -- the words people read ------------------------------------------------------------------------------------
# A status on its own (the admin's device list).
DEVICE_STATUS_LABELS: dict[DeviceStatus, str] = {
    DeviceStatus.ONLINE: "Online",
    DeviceStatus.STALE: "Stale: not heard from recently",
    DeviceStatus.OFFLINE: "Offline",
}
# A tenant's sensor, in plain words ("Bedroom: working").
DEVICE_STATUS_WORDS: dict[DeviceStatus, str] = {
    DeviceStatus.ONLINE: "working",
    DeviceStatus.STALE: "not heard from recently",
    DeviceStatus.OFFLINE: "switched off or out of range",
}


def device_status(
    reported: str | None,
    last_seen: datetime | None,
    expected_interval_s: int | None,
    now: datetime,
    *,
    default_interval_s: int = 900,
    stale_factor: float = 3.0,
) -> DeviceStatus:
    """Offline if the device said so, stale if nothing arrived for stale_factor x its interval, else online."""
    if reported == DeviceStatus.OFFLINE:
        return DeviceStatus.OFFLINE
    if last_seen is None:
        return DeviceStatus.STALE
    interval = expected_interval_s or default_interval_s
    if now - last_seen > timedelta(seconds=interval * stale_factor):
        return DeviceStatus.STALE
    return DeviceStatus.ONLINE


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
