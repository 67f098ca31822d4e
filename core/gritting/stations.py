"""What each station says: its latest readings, and the RST outlook from the forecast or its nowcast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from core.gritting._text import cap, floor_minute, hm, station_name, temp
from core.gritting.inputs import Forecast, StationObs, StationSample
from core.gritting.nowcast import CLOCK_SKEW, Nowcast, nowcast
from core.gritting.policy import GrittingPolicy

FORECAST_SPENT_AFTER = timedelta(hours=1)  # a forecast minimum this far in the past no longer applies


@dataclass(frozen=True, slots=True)
class StationView:
    """A station's latest usable values and its nowcast."""

    station_id: str
    nowcast: Nowcast
    rst: float | None
    rst_at: datetime | None
    state: str | None
    state_at: datetime | None
    air: float | None
    dew: float | None
    freezing_point: float | None
    notes: tuple[str, ...]
    name: str | None = None

    @property
    def label(self) -> str:
        """The station as people know it (core.gritting._text.station_name)."""
        return station_name(self.station_id, self.name)

    @property
    def has_data(self) -> bool:
        """True when the station has a recent RST or surface state."""
        return self.rst is not None or self.state is not None


def station_view(station: StationObs, now: datetime, policy: GrittingPolicy) -> StationView:
    """A station's latest recent values and its nowcast."""
    oldest = now - timedelta(minutes=policy.no_data_after_minutes)
    recent = [s for s in station.samples if oldest <= s.ts <= now + CLOCK_SKEW]
    rst, rst_at = _latest(recent, "road_surface_temperature")
    state = next((s for s in reversed(recent) if s.surface_state is not None), None)
    air, _ = _latest(recent, "air_temperature")
    dew, _ = _latest(recent, "dew_point")
    fp, _ = _latest(recent, "freezing_point")
    nc = nowcast(station.samples, now, policy)
    return StationView(
        station_id=station.station_id,
        nowcast=nc,
        rst=rst,
        rst_at=rst_at,
        state=state.surface_state if state is not None else None,
        state_at=state.ts if state is not None else None,
        air=air,
        dew=dew,
        freezing_point=fp,
        notes=nc.notes,
        name=station.name,
    )


def _latest(samples: Sequence[StationSample], name: str) -> tuple[float | None, datetime | None]:
    """The newest non-missing value of one measurement, and when it was taken."""
    for s in reversed(samples):
        value = getattr(s, name)
        if value is not None:
            return float(value), s.ts
    return None, None


@dataclass(frozen=True, slots=True)
class Outlook:
    """The expected RST for one station: its minimum, when it reaches the trigger, and on what it rests."""

    min_rst: float | None
    min_rst_at: datetime | None
    trigger_at: datetime | None
    source: Literal["forecast", "nowcast", "observed", "none"]
    confidence: float
    horizon_hours: float
    sentences: tuple[str, ...]
    # Until when the station readings and the forecast behind it speak for the road (None: they say nothing
    # ahead), and which of them do, in words ("station readings", "the forecast").
    covered_until: datetime | None = None
    covered_by: tuple[str, ...] = ()
    # The lower edge of the projection's uncertainty band; None: no band is known, min_rst stands for it.
    low_c: float | None = None


def hours_between(a: datetime, b: datetime) -> float:
    """Hours from a to b."""
    return (b - a).total_seconds() / 3600.0


def forecast_rst(fc: Forecast, now: datetime) -> tuple[float, datetime] | None:
    """The forecast minimum RST still ahead (or just past), from the trace or the stated minimum."""
    candidates: list[tuple[float, datetime]] = [(v, t) for t, v in fc.rst_trace if t >= now - FORECAST_SPENT_AFTER]
    if fc.min_rst is not None and fc.min_rst_at is not None and fc.min_rst_at >= now - FORECAST_SPENT_AFTER:
        candidates.append((fc.min_rst, fc.min_rst_at))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))


def forecast_covered_until(fc: Forecast | None, now: datetime, policy: GrittingPolicy) -> datetime | None:
    """Until when a usable forecast speaks for the road: the end of its road surface temperature curve, else (a
    stated minimum only) forecast_max_age_hours from its issue; None when it says nothing about the road ahead."""
    if fc is None or forecast_rst(fc, now) is None:
        return None
    if fc.rst_trace:
        return fc.rst_trace[-1][0]
    return fc.issued_at + timedelta(hours=policy.forecast_max_age_hours)


def coverage(
    view: StationView | None, fc: Forecast | None, now: datetime, policy: GrittingPolicy
) -> tuple[datetime | None, tuple[str, ...]]:
    """Until when the station's readings (its nowcast horizon) and the forecast together cover the road, and which
    of them cover it, in words."""
    ends: list[tuple[datetime, str]] = []
    if view is not None and view.rst is not None and view.nowcast.horizon_end is not None:
        ends.append((view.nowcast.horizon_end, "station readings"))
    fc_end = forecast_covered_until(fc, now, policy)
    if fc_end is not None:
        ends.append((fc_end, "the forecast"))
    if not ends:
        return None, ()
    return max(t for t, _ in ends), tuple(words for _, words in ends)


def _trace_crossing(fc: Forecast, policy: GrittingPolicy) -> datetime | None:
    """When the forecast RST trace first reaches the trigger, by linear interpolation between points."""
    trace = fc.rst_trace
    for i, (t, v) in enumerate(trace):
        if policy.at_or_below_trigger(v):
            if i == 0:
                return t
            t_prev, v_prev = trace[i - 1]
            frac = (v_prev - policy.trigger_rst_c) / (v_prev - v) if v_prev != v else 1.0
            return floor_minute(t_prev + (t - t_prev) * max(0.0, min(1.0, frac)))
    return None


def _trend_words(nc: Nowcast) -> str:
    slope = nc.trend_c_per_h
    if slope is None:
        return "with no trend yet"
    if abs(slope) < 0.05:
        return "steady"
    return f"{'falling' if slope < 0 else 'rising'} {abs(slope):.1f} °C an hour"


_STATE_ADJECTIVE = {"ice": "icy", "snow": "snow-covered", "frost": "frosty"}


def _state_words(view: StationView) -> str:
    if view.state is None:
        return f"The road surface at {view.label} (state not reported) is"
    return f"The road surface at {view.label} is {_STATE_ADJECTIVE.get(view.state, view.state)} at"


def _forecast_trigger(
    view: StationView | None,
    fc: Forecast,
    min_rst: float,
    min_at: datetime,
    now: datetime,
    policy: GrittingPolicy,
    sentences: list[str],
) -> tuple[datetime | None, float]:
    """T0 under a forecast, and the nowcast horizon it rests on (0 when the forecast or a reading sets it)."""
    trig = policy.trigger_rst_c
    if not policy.at_or_below_trigger(min_rst):
        return None, 0.0
    if view is not None and view.rst is not None and policy.at_or_below_trigger(view.rst):
        return view.nowcast.trigger_at or view.rst_at, 0.0
    crossing = _trace_crossing(fc, policy) if fc.rst_trace else None
    if crossing is None and view is not None and view.rst is not None and view.rst_at is not None:
        # No curve: cool linearly from the latest reading to the forecast minimum.
        if min_at > view.rst_at and view.rst > min_rst:
            frac = (view.rst - trig) / (view.rst - min_rst)
            crossing = floor_minute(view.rst_at + (min_at - view.rst_at) * frac)
    if crossing is None:
        crossing = max(min_at - timedelta(hours=policy.untraced_lead_hours), fc.issued_at)
        sentences.append(
            "The forecast gives no road surface temperature curve and no station reading says how fast the road is "
            f"cooling: the road surface temperature is assumed to reach {temp(trig)} {policy.untraced_lead_hours:g} "
            "h before the minimum, "
            f"at {hm(crossing)}."
        )
    if view is None:
        return crossing, 0.0
    # A credible station nowcast that gets there sooner sets the time: it rests on tonight's readings,
    # and cooling is fastest early in the evening, when a straight line to the minimum is too slow.
    nc = view.nowcast
    if (
        nc.usable
        and nc.rst_now is not None
        and nc.trigger_at is not None
        and nc.trigger_at < crossing
        and nc.hours_ahead(nc.trigger_at) <= policy.nowcast_credible_hours
    ):
        sentences.append(
            f"{_state_words(view)} {temp(nc.rst_now)} and {_trend_words(nc)}: the nowcast reaches {temp(trig)} "
            f"at {hm(nc.trigger_at)}, sooner than the forecast, and sets the time."
        )
        return nc.trigger_at, max(0.0, hours_between(now, nc.trigger_at))
    return crossing, 0.0


def outlook(view: StationView | None, fc: Forecast | None, now: datetime, policy: GrittingPolicy) -> Outlook:
    """A station's expected minimum RST and T0: the forecast leads, else its nowcast, else its last reading; and
    until when the readings and the forecast cover the road."""
    covered_until, covered_by = coverage(view, fc, now, policy)
    return replace(_projection(view, fc, now, policy), covered_until=covered_until, covered_by=covered_by)


def _projection(view: StationView | None, fc: Forecast | None, now: datetime, policy: GrittingPolicy) -> Outlook:
    trig = policy.trigger_rst_c
    rule_tag = f"(trigger: {policy.trigger_text()}, {policy.name})"
    fc_min = forecast_rst(fc, now) if fc is not None else None
    if fc is not None and fc_min is not None:
        min_rst, min_at = fc_min
        sentences = [
            f"The forecast issued at {hm(fc.issued_at)} leads: minimum road surface temperature {temp(min_rst)} at "
            f"{hm(min_at)} {rule_tag}."
        ]
        if view is not None and view.rst is not None and view.rst_at is not None and view.rst < min_rst:
            sentences.append(
                f"{cap(view.label)} already reads {temp(view.rst)} at {hm(view.rst_at)}, colder than the "
                "forecast minimum: the observed value is used."
            )
            min_rst, min_at = view.rst, view.rst_at
        trigger_at, horizon = _forecast_trigger(view, fc, min_rst, min_at, now, policy, sentences)
        return Outlook(min_rst, min_at, trigger_at, "forecast", policy.forecast_confidence, horizon, tuple(sentences))

    if view is None or view.rst is None:
        return Outlook(None, None, None, "none", 0.0, 0.0, ())
    nc = view.nowcast
    if nc.usable and nc.min_rst is not None and nc.min_rst_at is not None and nc.rst_now is not None:
        min_rst, min_at = nc.min_rst, nc.min_rst_at
        trend = _trend_words(nc)
        damped = ""
        if nc.floor_c is not None and nc.rate_per_h > 0:
            damped = f", damped toward the {nc.floor_basis}"
        if nc.trigger_at is not None and policy.at_or_below_trigger(nc.rst_now):
            sentence = (
                f"{_state_words(view)} {temp(nc.rst_now)} and {trend}: road surface temperature has been at or "
                f"below {temp(trig)} "
                f"since {hm(nc.trigger_at)} {rule_tag}."
            )
            decisive = now
        elif nc.trigger_at is not None:
            sentence = (
                f"{_state_words(view)} {temp(nc.rst_now)} and {trend}: the nowcast reaches {temp(trig)} at "
                f"{hm(nc.trigger_at)}{damped} {rule_tag}."
            )
            decisive = nc.trigger_at
        elif nc.rate_per_h > 0:
            sentence = (
                f"{_state_words(view)} {temp(nc.rst_now)} and {trend}: the nowcast gets to {temp(min_rst)} by "
                f"{hm(min_at)}{damped}, the end of the {policy.nowcast_degraded_hours:g} h that station data "
                f"alone can cover {rule_tag}."
            )
            decisive = min_at
        else:
            sentence = (
                f"{_state_words(view)} {temp(nc.rst_now)} and {trend}: no fall is projected, so the nowcast "
                f"holds {temp(nc.rst_now)} {rule_tag}."
            )
            # "Nothing happens" is a claim about the whole horizon, not about now.
            decisive = nc.horizon_end or now
        decisive = max(decisive, now)
        horizon = round(hours_between(now, decisive), 2)
        conf = nc.confidence_at(decisive)
        sentences = [sentence]
        if horizon > policy.nowcast_credible_hours:
            sentences.append(
                f"That rests on a nowcast {horizon:.1f} h ahead, beyond the {policy.nowcast_credible_hours:g} h a "
                "station-only nowcast is credible for: a road forecast would settle it."
            )
        return Outlook(min_rst, min_at, nc.trigger_at, "nowcast", conf, horizon, tuple(sentences))

    # A reading but no trend: hold it, with little confidence.
    trigger_at = nc.trigger_at if policy.at_or_below_trigger(view.rst) else None
    sentence = (
        f"{_state_words(view)} {temp(view.rst)} at {hm(view.rst_at or now)} but has too few recent readings for a "
        f"trend: that reading is held {rule_tag}."
    )
    return Outlook(view.rst, view.rst_at, trigger_at, "observed", nc.confidence_at(now), 0.0, (sentence,))
