"""What each station says: its latest readings, and the RST outlook from the forecast or its nowcast."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from core.gritting import learned
from core.gritting._text import LONDON, cap, floor_minute, hm, station_name, temp
from core.gritting.inputs import Forecast, StationObs, StationSample
from core.gritting.nowcast import CLOCK_SKEW, Nowcast, nowcast
from core.gritting.policy import GrittingPolicy

FORECAST_SPENT_AFTER = timedelta(hours=1)  # a forecast minimum this far in the past no longer applies
MIN_SETTLED_C = 0.1  # the learned minimum is reached when the projected minima come within this of it
# A road reading younger than this is as fresh as the model knows readings: the learned projection is issued at it.
# (The model was fitted on issue times at readings, ages 0, 15, 30 ... min; a reading seconds old taken as an
# age between those would move its projection by the width of a bin, and a decision with it.)
LEARNED_FRESH = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Learned:
    """A station's learned projection (core.gritting.learned) at the decision's time, and what it rests on."""

    projection: learned.Projection
    learning: learned.StationLearning | None  # the station's own nights; None: pooled only
    pooled_stations: int | None  # how many stations' nights the pooled model was fitted on
    shrink_nights: float
    slope_3h: float | None  # the road's trend over the last 3 h, C/h (as the station's memory keeps it)
    air_minus_rst: float | None


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
    learned: Learned | None = None  # the learned nowcast, when a model was given and the station has a reading

    @property
    def label(self) -> str:
        """The station as people know it (core.gritting._text.station_name)."""
        return station_name(self.station_id, self.name)

    @property
    def has_data(self) -> bool:
        """True when the station has a recent RST or surface state."""
        return self.rst is not None or self.state is not None


def station_view(
    station: StationObs, now: datetime, policy: GrittingPolicy, model: learned.NowcastModel | None = None
) -> StationView:
    """A station's latest recent values and its nowcast; with a learned model (its `stations` holding each
    station's own learning), also the learned projection from now."""
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
        # The learned projection needs one road reading in the 3 h before (as it was trained): a station whose
        # feed is sparse or broken by a gap is still projected from its last reading and the hour, not held.
        learned=_learned(station, now, model) if model is not None and rst is not None else None,
    )


def _learned(station: StationObs, now: datetime, model: learned.NowcastModel) -> Learned | None:
    """The learned projection of a station (None without a road surface temperature in the 3 h before now),
    issued at its newest road reading when that is fresh (LEARNED_FRESH), else at now."""
    upto = [s for s in station.samples if s.ts <= now]
    series = learned.series_from_samples(station.station_id, upto, lat=station.lat, lon=station.lon)
    if series.empty:
        return None
    newest = datetime.fromtimestamp(int(series.rst_t[-1]), now.tzinfo)
    at = newest if now - newest < LEARNED_FRESH else now
    proj = learned.project(model, series, at)
    if proj is None:
        return None
    x = learned.examples(series, np.asarray([int(at.timestamp())], dtype=np.int64), model.horizons).x[0]
    slope, air_gap = float(x[learned.FEATURES.index("slope_3h")]), float(x[learned.FEATURES.index("air_minus_rst")])
    pooled = model.trained_on.get("stations")
    return Learned(
        projection=proj,
        learning=model.stations.get(station.station_id),
        pooled_stations=int(pooled) if isinstance(pooled, int | float) else None,
        shrink_nights=model.shrink_nights,
        slope_3h=slope if math.isfinite(slope) else None,
        air_minus_rst=air_gap if math.isfinite(air_gap) else None,
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
    high_c: float | None = None
    # The station's latest road surface temperature (None: none recent); a road far warmer than the trigger
    # cannot reach it tonight.
    rst_now: float | None = None
    learned: bool = False  # the minimum comes from the learned nowcast (core.gritting.learned)


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
    if view is not None and view.rst is not None and view.learned is not None:
        ends.append((learned_covered_until(view.learned, now, policy), "station readings"))
    elif view is not None and view.rst is not None and view.nowcast.horizon_end is not None:
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
    return replace(
        _projection(view, fc, now, policy),
        covered_until=covered_until,
        covered_by=covered_by,
        rst_now=view.rst if view is not None else None,
    )


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
    if view.learned is not None:
        return _learned_outlook(view, view.learned, now, policy, rule_tag)
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


# -------------------------------------------------------------------------------------------- learned nowcast


def learned_covered_until(lrn: Learned, now: datetime, policy: GrittingPolicy) -> datetime:
    """Until when the learned projection speaks for the road: the end of the night, or as far as the model looks
    ahead (its longest horizon from its issue) when the night ends later."""
    return min(policy.night_end_after(now), lrn.projection.issued_at + timedelta(hours=lrn.projection.covered_hours))


def _curve(p: learned.Projection, values: Sequence[float]) -> list[tuple[float, float]]:
    """(hours ahead, projected minimum) from now: the present reading at 0 h, then each horizon."""
    return [(0.0, p.rst_now), *zip((float(h) for h in p.horizons), values, strict=True)]


def _at(curve: Sequence[tuple[float, float]], hours: float) -> float:
    """The curve at `hours`, linear between its points (its last point beyond them)."""
    for (h0, v0), (h1, v1) in itertools.pairwise(curve):
        if hours <= h1:
            return v0 + (v1 - v0) * (max(hours, h0) - h0) / (h1 - h0)
    return curve[-1][1]


def _number(c: float) -> str:
    """A temperature without its unit ('+0.8', '-1.2', '0.0'), for a range that names the unit once."""
    return temp(c).removesuffix(" °C")


def learned_confidence(width_c: float, nights: int, shrink_nights: float) -> float:
    """Confidence in a learned projection: from its band width at the horizon that matters (10th to 90th
    percentile of held-out errors), 1 - width/8 °C kept within 0.2 and 0.9 (a 2 °C band: 0.75, a 4 °C band:
    0.5), times 0.85 for a station with no nights of its own, rising toward 1 as its nights count (n / (n + k),
    k = the model's shrink_nights)."""
    base = max(0.2, min(0.9, 1.0 - width_c / 8.0))
    own = nights / (nights + shrink_nights) if nights > 0 else 0.0
    return round(base * (0.85 + 0.15 * own), 3)


def _learned_outlook(view: StationView, lrn: Learned, now: datetime, policy: GrittingPolicy, rule_tag: str) -> Outlook:
    """The minimum up to the end of the night from the learned projection (as far as it looks ahead), the
    band at that horizon, and when the projected minima first reach the trigger."""
    p, trig = lrn.projection, policy.trigger_rst_c
    origin = p.issued_at  # now, or the fresh reading it was issued at
    covered = learned_covered_until(lrn, now, policy)
    span = max(0.0, hours_between(origin, covered))
    mins = _curve(p, p.min_c)
    min_rst = round(min(p.rst_now, _at(mins, span)), 2)  # the projected minima are of the hours ahead; now counts
    low = round(min(_at(_curve(p, p.low_c), span), min_rst), 2)
    high = round(max(_at(_curve(p, p.high_c), span), min_rst), 2)
    # When: the first hour at which the projected minima come within MIN_SETTLED_C of the night's minimum.
    points = [(h, v) for h, v in mins if h < span] + [(span, min_rst)]
    min_h = next(h for h, v in points if v <= min_rst + MIN_SETTLED_C)
    min_at = floor_minute(origin + timedelta(hours=min_h))
    trigger_at: datetime | None = None
    if policy.at_or_below_trigger(p.rst_now):
        trigger_at = view.nowcast.trigger_at or view.rst_at
    else:
        for (h0, v0), (h1, v1) in itertools.pairwise(points):
            if policy.at_or_below_trigger(v1):
                frac = (v0 - trig) / (v0 - v1) if v0 != v1 else 1.0
                trigger_at = floor_minute(origin + timedelta(hours=h0 + (h1 - h0) * max(0.0, min(1.0, frac))))
                break
    decisive = max(trigger_at or min_at, now)
    horizon = round(hours_between(now, decisive), 2)
    nights = p.station_nights
    conf = learned_confidence(high - low, nights, lrn.shrink_nights)

    trend = _learned_trend(lrn, view.nowcast)
    band = f"likely between {_number(low)} and {_number(high)} °C"
    # A minimum that is the present reading is said as such, not as one reached "by" a time already past.
    gets = (
        f"gets to {temp(min_rst)} by {hm(min_at)}"
        if min_h > 0
        else f"keeps it at {temp(min_rst)} or above until {hm(covered)}"
    )
    if trigger_at is not None and policy.at_or_below_trigger(p.rst_now):
        what = (
            f"road surface temperature has been at or below {temp(trig)} since {hm(trigger_at)}; the learned nowcast "
            f"{gets}"
        )
    elif trigger_at is not None:
        what = f"the learned nowcast reaches {temp(trig)} at {hm(trigger_at)} and {gets}"
    else:
        what = f"the learned nowcast {gets}"
    sentences = [f"{_state_words(view)} {temp(p.rst_now)} and {trend}: {what}, {band} {rule_tag}."]
    pooled = f"{lrn.pooled_stations} stations'" if lrn.pooled_stations else "other stations'"
    if nights > 0:
        sentences.append(
            f"Learned from {nights} night{'s' if nights != 1 else ''} at {view.label} and {pooled} nights pooled."
        )
    else:
        over = f"{lrn.pooled_stations} stations" if lrn.pooled_stations else "other stations"
        sentences.append(f"Learned from nights pooled over {over} until {view.label}'s own nights count.")
    similar = _similar_sentence(view, lrn, min_at)
    if similar:
        sentences.append(similar)
    return Outlook(
        min_rst, min_at, trigger_at, "nowcast", conf, horizon, tuple(sentences), low_c=low, high_c=high, learned=True
    )


def _learned_trend(lrn: Learned, nc: Nowcast) -> str:
    if lrn.slope_3h is None:
        return _trend_words(nc)
    if abs(lrn.slope_3h) < 0.05:
        return "steady"
    return f"{'falling' if lrn.slope_3h < 0 else 'rising'} {abs(lrn.slope_3h):.1f} °C an hour"


def _similar_sentence(view: StationView, lrn: Learned, min_at: datetime) -> str | None:
    """What the station did on its remembered evenings like this one, by the horizon nearest the night's
    minimum; None with fewer than 3 such evenings."""
    if lrn.learning is None or not lrn.learning.memory:
        return None
    p = lrn.projection
    now = p.issued_at
    ahead = hours_between(now, min_at)
    j = min(range(len(p.horizons)), key=lambda i: (abs(p.horizons[i] - ahead), p.horizons[i]))
    count, fall = learned.similar_evenings(
        lrn.learning,
        horizon_index=j,
        local_hour=now.astimezone(LONDON).hour,
        rst=p.rst_now,
        slope_3h=lrn.slope_3h,
        air_minus_rst=lrn.air_minus_rst,
    )
    if fall is None:
        return None
    by = hm(now + timedelta(hours=p.horizons[j]))
    if fall >= 0.05:
        did = f"fell a further {fall:.1f} °C"
    elif fall <= -0.05:
        did = f"rose {-fall:.1f} °C"
    else:
        did = "held its temperature"
    return f"On {count} evenings like this one {view.label} {did} by {by}."
