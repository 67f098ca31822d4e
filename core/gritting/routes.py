"""The decision for one route: the worst station decides, the earliest trigger sets the time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.gritting._text import cap, hm, temp, trust, utc
from core.gritting.decision import Decision
from core.gritting.inputs import Forecast, RouteInput
from core.gritting.learned import NowcastModel
from core.gritting.policy import GrittingPolicy
from core.gritting.rules import Judgement, judge
from core.gritting.stations import FORECAST_SPENT_AFTER, forecast_rst, hours_between, station_view
from core.gritting.timing import plan_timing
from core.gritting.vocab import TREATING


def _usable_forecast(fc: Forecast | None, now: datetime, policy: GrittingPolicy, reasons: list[str]) -> Forecast | None:
    if fc is None:
        return None
    age_h = hours_between(fc.issued_at, now)
    if age_h > policy.forecast_max_age_hours:
        reasons.append(
            f"The forecast issued {fc.issued_at.isoformat()} is {age_h:.0f} h old (limit "
            f"{policy.forecast_max_age_hours:g} h): ignored, station data only."
        )
        return None
    if fc.min_rst_at is not None and not fc.rst_trace and fc.min_rst_at < now - FORECAST_SPENT_AFTER:
        reasons.append(
            f"The forecast minimum at {hm(fc.min_rst_at)} has passed: the road surface temperature comes from station "
            "data."
        )
    return fc


def decide(
    route: RouteInput, now: datetime, policy: GrittingPolicy, *, nowcast_model: NowcastModel | None = None
) -> Decision:
    """Decide what one route needs: the worst station decides, the earliest trigger sets the time.

    With `nowcast_model` (its `stations` holding each station's own learning), a station's expected minimum
    without a forecast comes from the learned nowcast (core.gritting.learned), over the night up to the
    policy's night_end_local; without one, or where it cannot project (no road surface temperature in the
    last 3 h), from the physics nowcast (core.gritting.nowcast)."""
    now = utc(now, "now")
    treatment = route.treatment_minutes if route.treatment_minutes is not None else policy.treatment_minutes
    mobilisation = route.mobilisation_minutes if route.mobilisation_minutes is not None else policy.mobilisation_minutes
    preface: list[str] = []
    fc = _usable_forecast(route.forecast, now, policy, preface)
    views = [station_view(st, now, policy, nowcast_model) for st in route.stations]
    present = [v for v in views if v.has_data]
    missing = [v for v in views if not v.has_data]

    if not present and (fc is None or (forecast_rst(fc, now) is None and fc.precipitation == "none")):
        if views:
            why = f"No recent readings from {_and(v.label for v in views)}: cannot judge."
        else:
            why = f"Route {route.route_id} has no stations and no forecast: cannot judge."
        details = [f"{cap(v.label)}: {note}." for v in views for note in v.notes]
        return Decision(
            route_id=route.route_id,
            decided_at=now,
            spread_type=policy.spread_type,
            material_rounding_minutes=policy.material_rounding_minutes,
            action="monitor",
            rule="no_data",
            reasons=(*preface, why, *details),
            confidence=0.0,
        )

    judgements = [judge(v, fc, now, policy) for v in present] if present else [judge(None, fc, now, policy)]
    chosen = max(judgements, key=lambda j: j.severity_key())
    timing = plan_timing(chosen, judgements, fc, now, policy, treatment, mobilisation)

    reasons = [*preface, *chosen.reasons]
    if chosen.rate_reason:
        reasons.append(chosen.rate_reason)
    label = {v.station_id: v.label for v in views}
    others = [(label[j.station_id], j) for j in judgements if j is not chosen and j.station_id in label]
    if others:
        summary = ", ".join(
            f"{name} {_min_words(j.outlook.min_rst)} ({j.action.replace('_', ' ')})" for name, j in others
        )
        reasons.append(f"Other stations on the route: {summary}.")
    confidence = chosen.confidence
    if missing:
        reasons.append(f"No recent readings from {_and(v.label for v in missing)}: left out of this decision.")
        confidence *= 0.5 + 0.5 * len(present) / len(views)
    if not present:
        reasons.append("No station readings: the decision rests on the forecast alone.")
        confidence *= 0.6
    if chosen.station_id is not None:
        view = next(v for v in present if v.station_id == chosen.station_id)
        reasons.extend(f"{cap(view.label)}: {note}." for note in view.notes)
    reasons.extend(timing.reasons)
    reasons.append(_confidence_sentence(confidence, chosen, policy))

    rate = chosen.rate if chosen.action in TREATING and chosen.action != "escalate" else None
    return Decision(
        route_id=route.route_id,
        decided_at=now,
        spread_type=policy.spread_type,
        material_rounding_minutes=policy.material_rounding_minutes,
        action=chosen.action,
        rule=chosen.rule,
        spread_rate_g_m2=rate.grams_per_m2 if rate is not None else None,
        passes=rate.passes if rate is not None else 1,
        road_wetness=chosen.wetness,
        call_out_by=timing.call_out_by,
        start_by=timing.start_by,
        complete_by=timing.complete_by,
        start_not_before=timing.start_not_before,
        trigger_at=timing.trigger_at,
        worst_station=chosen.station_id,
        min_rst=None if chosen.outlook.min_rst is None else round(chosen.outlook.min_rst, 2),
        min_rst_at=chosen.outlook.min_rst_at,
        hazard=chosen.hazard,
        reasons=tuple(reasons),
        confidence=round(max(0.0, min(1.0, confidence)), 3),
        horizon_hours=0.0 if chosen.reactive else chosen.outlook.horizon_hours,
        covered_until=chosen.outlook.covered_until,
        late=timing.late,
        treat_now=timing.treat_now,
    )


def _and(names: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _min_words(min_rst: float | None) -> str:
    return f"min {temp(min_rst)}" if min_rst is not None else "no road surface temperature"


def _confidence_sentence(confidence: float, chosen: Judgement, policy: GrittingPolicy) -> str:
    source = chosen.outlook.source
    if chosen.reactive:
        basis = "conditions observed on the road"
    elif source == "forecast":
        basis = "the road forecast"
    elif source == "nowcast" and chosen.outlook.learned:
        basis = f"a nowcast learned from stations' nights, {chosen.outlook.horizon_hours:.1f} h ahead"
    elif source == "nowcast":
        basis = (
            f"a station nowcast {chosen.outlook.horizon_hours:.1f} h ahead (credible up to "
            f"{policy.nowcast_credible_hours:g} h, degraded to {policy.nowcast_degraded_hours:g} h)"
        )
    elif source == "observed":
        basis = "a single recent reading with no trend"
    else:
        basis = "no road surface temperature"
    return f"How far this can be trusted: {trust(confidence)}; it rests on {basis}."
