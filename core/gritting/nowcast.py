"""Station-only road surface temperature nowcast: recent trend, damped night cooling, falling confidence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from core.gritting._text import floor_minute, hm, temp, utc
from core.gritting.inputs import StationSample
from core.gritting.policy import GrittingPolicy
from core.physics import frost_point_from_dew_point

CLOCK_SKEW = timedelta(minutes=5)  # readings this far ahead of `now` are a device clock, not the future
_SCATTER_C = 0.3  # residual RMS above which the trend is noisy enough to say so
# Confidence at 0 h, at the end of the credible horizon, and at the end of the degraded horizon.
_CONF_NOW, _CONF_CREDIBLE, _CONF_DEGRADED = 1.0, 0.7, 0.3


@dataclass(frozen=True, slots=True)
class Nowcast:
    """A projection of one station's RST from its recent readings, and how far it can be trusted."""

    made_at: datetime
    observed_at: datetime | None = None  # newest usable RST reading
    rst_now: float | None = None  # that reading
    trend_c_per_h: float | None = None  # least squares over the window; None without enough readings
    samples_used: int = 0
    floor_c: float | None = None  # the temperature the cooling curve approaches
    floor_basis: str = ""  # what the floor comes from, in words, e.g. "frost point -0.9 C"
    rate_per_h: float = 0.0  # exponential approach rate; 0 when not falling
    trigger_at: datetime | None = None  # when RST reaches the policy trigger (may be in the past)
    min_rst: float | None = None  # lowest projected RST from now to the end of the horizon
    min_rst_at: datetime | None = None
    horizon_end: datetime | None = None  # beyond this, station data alone says nothing
    quality: float = 0.0  # 0..1: stale, scattered or sparse readings lower it
    stale: bool = False
    credible_hours: float = 3.0
    degraded_hours: float = 6.0
    notes: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """True when there is a trend to project, not just a last reading."""
        return self.trend_c_per_h is not None and self.observed_at is not None

    def hours_ahead(self, t: datetime) -> float:
        """Hours from the newest reading to t (0 when t is not after it)."""
        if self.observed_at is None:
            return 0.0
        return max(0.0, (t - self.observed_at).total_seconds() / 3600.0)

    def rst_at(self, t: datetime) -> float | None:
        """Projected RST at t; None beyond the horizon or without readings."""
        if self.rst_now is None or self.observed_at is None:
            return None
        if self.horizon_end is not None and t > self.horizon_end:
            return None
        if self.floor_c is None or self.rate_per_h <= 0.0:
            return self.rst_now
        h = self.hours_ahead(t)
        return self.floor_c + (self.rst_now - self.floor_c) * math.exp(-self.rate_per_h * h)

    def confidence_at(self, t: datetime) -> float:
        """0..1: how far the projection at t can be trusted (credible, degraded, then none)."""
        if self.rst_now is None:
            return 0.0
        h = self.hours_ahead(t)
        c, d = self.credible_hours, self.degraded_hours
        if h <= c:
            base = _CONF_NOW - (_CONF_NOW - _CONF_CREDIBLE) * h / c
        elif h <= d:
            base = _CONF_CREDIBLE - (_CONF_CREDIBLE - _CONF_DEGRADED) * (h - c) / (d - c)
        else:
            return 0.0
        if not self.usable:
            base *= 0.5  # only persistence of the last reading
        return round(max(0.0, min(1.0, base * self.quality)), 3)


def nowcast(samples: Sequence[StationSample], now: datetime, policy: GrittingPolicy) -> Nowcast:
    """Project a station's road surface temperature from its recent readings (DOMAIN.md section 4)."""
    now = utc(now, "now")
    empty = Nowcast(
        made_at=now, credible_hours=policy.nowcast_credible_hours, degraded_hours=policy.nowcast_degraded_hours
    )
    notes: list[str] = []
    ordered = sorted(samples, key=lambda s: s.ts)
    future = [s for s in ordered if s.ts > now + CLOCK_SKEW]
    if future:
        notes.append(f"{len(future)} reading(s) time-stamped after now were ignored (device clock ahead?)")
    ordered = [s for s in ordered if s.ts <= now + CLOCK_SKEW]
    points = [(s.ts, s.road_surface_temperature) for s in ordered if s.road_surface_temperature is not None]
    if not points:
        notes.append("no road surface temperature readings")
        return replace(empty, notes=tuple(notes))
    last_ts, last_rst = points[-1]
    age_min = (now - last_ts).total_seconds() / 60.0
    if age_min > policy.no_data_after_minutes:
        notes.append(
            f"the newest road surface temperature reading is {age_min:.0f} minutes old ({hm(last_ts)}): too old to use"
        )
        return replace(empty, observed_at=last_ts, notes=tuple(notes))

    quality = 1.0
    stale = age_min > policy.stale_after_minutes
    if stale:
        quality *= 0.7
        notes.append(f"the newest reading is {age_min:.0f} minutes old ({hm(last_ts)}): less certain")

    window_start = last_ts - timedelta(hours=policy.nowcast_window_hours)
    window = [p for p in points if p[0] >= window_start]
    # A gap breaks the trend: a station that was off for two hours tells nothing about the slope across them.
    max_gap = timedelta(minutes=policy.nowcast_max_gap_minutes)
    start = 0
    for i in range(1, len(window)):
        if window[i][0] - window[i - 1][0] > max_gap:
            start = i
    if start:
        gap = window[start][0] - window[start - 1][0]
        notes.append(
            f"a {gap.total_seconds() / 60:.0f}-minute gap in readings before {hm(window[start][0])}: "
            "the trend uses only the readings after it"
        )
        window = window[start:]

    horizon_end = last_ts + timedelta(hours=policy.nowcast_degraded_hours)
    trigger_at = _trailing_crossing(points, policy) if policy.at_or_below_trigger(last_rst) else None
    span_min = (window[-1][0] - window[0][0]).total_seconds() / 60.0
    if len(window) < policy.nowcast_min_samples or span_min < policy.nowcast_min_span_minutes:
        notes.append(f"only {len(window)} reading(s) over {span_min:.0f} minutes: no trend, the last reading is held")
        return replace(
            empty,
            observed_at=last_ts,
            rst_now=last_rst,
            samples_used=len(window),
            trigger_at=trigger_at,
            min_rst=last_rst,
            min_rst_at=last_ts,
            horizon_end=horizon_end,
            quality=quality,
            stale=stale,
            notes=tuple(notes),
        )

    slope, rms = _least_squares(window)
    if rms > _SCATTER_C:
        quality *= 0.8
        notes.append(f"readings scatter {rms:.1f} °C about the trend: less certain")

    floor: float | None = None
    basis = ""
    rate = 0.0
    if slope < 0.0:
        k_night = policy.night_cooling_per_hour
        floor = last_rst + slope / k_night  # the Savage curve with today's initial cooling rate
        basis = "usual overnight cooling curve"
        bound, bound_basis = _physical_floor(ordered, window_start, policy)
        if bound is not None and bound > floor:
            floor, basis = bound, bound_basis

        if floor >= last_rst:
            notes.append(
                f"the road surface temperature {temp(last_rst)} is already at its {basis}: latent heat holds it there"
            )
            floor, rate = last_rst, 0.0
        else:
            rate = -slope / (last_rst - floor)

    result = replace(
        empty,
        observed_at=last_ts,
        rst_now=last_rst,
        trend_c_per_h=slope,
        samples_used=len(window),
        floor_c=floor,
        floor_basis=basis,
        rate_per_h=rate,
        horizon_end=horizon_end,
        quality=quality,
        stale=stale,
        notes=tuple(notes),
    )
    if trigger_at is None and rate > 0.0 and floor is not None and floor < policy.trigger_rst_c < last_rst:
        hours = math.log((last_rst - floor) / (policy.trigger_rst_c - floor)) / rate
        if hours <= policy.nowcast_degraded_hours:
            trigger_at = floor_minute(last_ts + timedelta(hours=hours))
    if rate > 0.0:
        min_rst, min_at = result.rst_at(horizon_end), horizon_end
    else:
        min_rst, min_at = last_rst, last_ts
    return replace(result, trigger_at=trigger_at, min_rst=min_rst, min_rst_at=min_at)


def _least_squares(points: Sequence[tuple[datetime, float]]) -> tuple[float, float]:
    """Slope (C/h) and residual RMS (C) of RST against time."""
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 3600.0 for t, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0.0:
        return 0.0, 0.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    rms = math.sqrt(sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True)) / n)
    return slope, rms


def _physical_floor(
    samples: Sequence[StationSample], since: datetime, policy: GrittingPolicy
) -> tuple[float | None, str]:
    """How low a cooling road can go before latent heat holds it: frost or dew point, else the air."""
    recent = [s for s in samples if s.ts >= since]
    dew = next((s.dew_point for s in reversed(recent) if s.dew_point is not None), None)
    if dew is not None:
        # Below 0 C the surface saturates over ice at the frost point, which is above the dew point.
        if dew < 0.0:
            fp = frost_point_from_dew_point(dew)
            return fp - policy.nowcast_overshoot_c, f"frost point {temp(fp)}"
        return dew - policy.nowcast_overshoot_c, f"dew point {temp(dew)}"
    air = next((s.air_temperature for s in reversed(recent) if s.air_temperature is not None), None)
    if air is not None:
        return (
            air - policy.surface_below_air_max_c,
            f"air temperature {temp(air)} less {policy.surface_below_air_max_c:g} °C",
        )
    return None, ""


def _trailing_crossing(points: Sequence[tuple[datetime, float]], policy: GrittingPolicy) -> datetime:
    """When the trailing run of readings at or below the trigger began."""
    first = points[-1][0]
    for ts, v in reversed(points):
        if not policy.at_or_below_trigger(v):
            break
        first = ts
    return first
