"""Device health rules: is a device offline, stale, low on battery, stuck, mis-wired or sending junk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from core.devices import DeviceStatus, device_status

# How long a value may stay exactly the same before it is implausible (a real sensor has noise).
DEFAULT_MAX_FLAT: Mapping[str, timedelta] = {
    "road_surface_temperature": timedelta(hours=6),
    "air_temperature": timedelta(hours=6),
    "dew_point": timedelta(hours=12),
    "temperature": timedelta(hours=24),
    "relative_humidity": timedelta(hours=24),
}
# Pairs of metrics that a working station never reports equal for a whole day.
DEFAULT_DISTINCT_PAIRS: tuple[tuple[str, str], ...] = (("road_surface_temperature", "air_temperature"),)


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Thresholds for device health; every one a council may change."""

    stale_factor: float = 3.0
    default_interval_s: int = 900
    battery_low_percent: float = 15.0
    battery_low_volts: float = 2.5
    max_flat: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_FLAT))
    distinct_pairs: tuple[tuple[str, str], ...] = DEFAULT_DISTINCT_PAIRS
    pair_window: timedelta = timedelta(hours=24)
    pair_min_samples: int = 24
    rejection_rate: float = 0.2
    rejection_min_messages: int = 10


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the store knows about one device, gathered for the health check."""

    device_id: str
    kind: str
    reported_status: str | None
    last_seen: datetime | None
    expected_interval_s: int | None
    battery_percent: float | None = None
    battery_volts: float | None = None
    flat_for: Mapping[str, timedelta] = field(default_factory=dict)  # metric -> how long the value is unchanged
    pair_equal: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # pair -> (equal, total)
    accepted_last_hour: int = 0
    rejected_last_hour: int = 0


class ProblemCode(StrEnum):
    """What can be wrong with a device. The values are the public contract (the `device/{id}` MQTT alert's and the
    admin API's `problems[].code`, the device_problems table) and never change; Problem.message says it in words."""

    OFFLINE = "offline"
    STALE = "stale"
    BATTERY_LOW = "battery_low"
    STUCK = "stuck"
    MISWIRED = "miswired"
    REJECTIONS = "rejections"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a device, with a sentence a person can act on."""

    code: ProblemCode
    message: str


def check(f: DeviceFacts, now: datetime, policy: HealthPolicy) -> list[Problem]:
    """Every problem with this device now, most urgent first."""
    out: list[Problem] = []
    status = device_status(
        f.reported_status,
        f.last_seen,
        f.expected_interval_s,
        now,
        default_interval_s=policy.default_interval_s,
        stale_factor=policy.stale_factor,
    )
    if status == DeviceStatus.OFFLINE:
        out.append(Problem(ProblemCode.OFFLINE, f"{f.device_id} reported itself offline."))
    elif status == DeviceStatus.STALE:
        interval = f.expected_interval_s or policy.default_interval_s
        if f.last_seen is None:
            out.append(Problem(ProblemCode.STALE, f"{f.device_id} has never sent a message."))
        else:
            hours = (now - f.last_seen).total_seconds() / 3600
            out.append(
                Problem(
                    ProblemCode.STALE,
                    f"{f.device_id} has sent nothing for {hours:.1f} h (expected every {interval // 60} min; "
                    f"stale after {policy.stale_factor:g} intervals).",
                )
            )
    if f.battery_percent is not None and f.battery_percent <= policy.battery_low_percent:
        out.append(
            Problem(
                ProblemCode.BATTERY_LOW,
                f"{f.device_id} battery is at {f.battery_percent:.0f} % (low at {policy.battery_low_percent:.0f} %).",
            )
        )
    elif f.battery_volts is not None and f.battery_volts <= policy.battery_low_volts:
        out.append(
            Problem(
                ProblemCode.BATTERY_LOW,
                f"{f.device_id} battery is at {f.battery_volts:.2f} V (low at {policy.battery_low_volts:.2f} V).",
            )
        )
    for metric, flat in sorted(f.flat_for.items()):
        limit = policy.max_flat.get(metric)
        if limit is not None and flat > limit:
            out.append(
                Problem(
                    ProblemCode.STUCK,
                    f"{f.device_id} {metric} has not changed for {flat.total_seconds() / 3600:.1f} h "
                    f"(a working sensor changes within {limit.total_seconds() / 3600:g} h): the sensor may be stuck.",
                )
            )
    for (a, b), (equal, total) in sorted(f.pair_equal.items()):
        if total >= policy.pair_min_samples and equal == total:
            out.append(
                Problem(
                    ProblemCode.MISWIRED,
                    f"{f.device_id} reports {a} equal to {b} in all {total} readings over "
                    f"{policy.pair_window.total_seconds() / 3600:g} h: the sensor is faulty or mis-wired.",
                )
            )
    seen = f.accepted_last_hour + f.rejected_last_hour
    if seen >= policy.rejection_min_messages and f.rejected_last_hour / seen > policy.rejection_rate:
        out.append(
            Problem(
                ProblemCode.REJECTIONS,
                f"{f.device_id}: {f.rejected_last_hour} of {seen} messages in the last hour were rejected "
                f"(over {policy.rejection_rate:.0%}); see the dead letters for the reasons.",
            )
        )
    return out
