"""The gritting rules for one station: ice and snow on the road, forecast snow and freezing rain, the
trigger, moisture, the Transport Scotland 2010 matrix, residual salt and escalation (DOMAIN.md section 1)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from core.gritting._text import cap, hm, temp
from core.gritting.decision import Wetness
from core.gritting.inputs import Forecast
from core.gritting.learned import MAX_DROP_C
from core.gritting.policy import GrittingPolicy, SpreadRate
from core.gritting.stations import Outlook, StationView, outlook
from core.gritting.vocab import SEVERITY, TREATING, Action
from core.physics import deposits_frost, e_water, frost_point_from_dew_point

_OBSERVED_CONFIDENCE = 0.95


@dataclass(slots=True)
class Judgement:
    """One station's verdict before the route picks its worst."""

    station_id: str | None
    action: Action
    rule: str
    reasons: list[str]
    outlook: Outlook
    rate: SpreadRate | None = None
    wetness: Wetness = "dry_damp"
    trigger_at: datetime | None = None
    reactive: bool = False  # conditions are on the road now: treat at once, not before a T0
    confidence: float = 0.0
    hazard: str | None = None
    rate_reason: str | None = None  # kept apart: escalation withdraws it
    t0_words: str = ""  # what happens at T0, e.g. "snow starts"; empty: RST reaches the trigger

    def severity_key(self) -> tuple[float, ...]:
        """Sort key: action, then salt laid, then colder minimum, then earlier T0."""
        rst = self.outlook.min_rst if self.outlook.min_rst is not None else math.inf
        t0 = self.trigger_at.timestamp() if self.trigger_at is not None else math.inf
        return (SEVERITY[self.action], self.rate.total_g_m2 if self.rate else 0.0, -rst, -t0)


def _saturation_point(dew: float) -> tuple[float, str]:
    """The temperature at which a surface collects moisture from air with this dew point, and its name."""
    if dew < 0.0:
        return frost_point_from_dew_point(dew), "frost point"
    return dew, "dew point"


def _matrix_rate(min_rst: float, wetness: Wetness, policy: GrittingPolicy) -> tuple[SpreadRate, str] | None:
    found = policy.frost_band(min_rst)
    if found is None:
        return None
    band, label = found
    pair = band.wet if wetness == "wet" else band.dry_damp
    column = "wet road" if wetness == "wet" else "dry or damp road"
    return pair.pick(policy.pre_wetted), f"{label}, {column}"


def _rate_sentence(rate: SpreadRate, basis: str, policy: GrittingPolicy) -> str:
    return f"Spread {rate} {policy.spread_type} salt (Transport Scotland 2010 matrix: {basis})."


def judge(view: StationView | None, fc: Forecast | None, now: datetime, policy: GrittingPolicy) -> Judgement:
    """One station's verdict on the route's forecast and its own readings."""
    seen = outlook(view, fc, now, policy)
    sid = view.station_id if view is not None else None
    j = Judgement(sid, "none", "", list(seen.sentences), seen, confidence=seen.confidence)
    j.trigger_at = seen.trigger_at
    trig = policy.trigger_rst_c
    precip = fc.precipitation if fc is not None else "none"
    min_rst = seen.min_rst
    warm_at: int | None = None

    wet_precip = (
        fc is not None
        and precip in ("rain", "sleet")
        and (fc.precipitation_start is None or seen.min_rst_at is None or fc.precipitation_start <= seen.min_rst_at)
    )
    if view is not None and view.state == "wet":
        j.wetness = "wet"
    elif wet_precip:
        j.wetness = "wet"
        j.reasons.append(f"{precip.capitalize()} is forecast before the minimum: the road is taken as wet.")

    # 1. Ice, snow or frost on the road now: treat at once.
    if view is not None and view.state in ("snow", "ice", "frost"):
        _observed(j, view, now, policy)
    # 2. Freezing rain forecast: the heaviest precautionary rate.
    elif fc is not None and precip == "freezing_rain":
        j.action, j.rule = "precautionary_salt", "freezing_rain_forecast"
        j.rate = policy.freezing_rain.pick(policy.pre_wetted)
        j.hazard = "freezing rain forecast"
        j.trigger_at = _earliest(fc.precipitation_start, seen.trigger_at)
        if j.trigger_at is not None and j.trigger_at == fc.precipitation_start:
            j.t0_words = "freezing rain starts"
        j.reasons.append(f"Freezing rain is forecast{_from(fc.precipitation_start)}: treat before it arrives.")
        j.rate_reason = _rate_sentence(j.rate, "freezing rain", policy)
    # 3. Snow forecast: snow rates, unless the road stays well above the trigger.
    elif fc is not None and precip == "snow":
        _snow(j, fc, policy)
    elif min_rst is None:
        j.action, j.rule = "monitor", "no_rst"
        j.confidence = 0.0
        j.reasons.append(
            f"{cap(view.label)} reports a {view.state} road but no road surface temperature: cannot judge the "
            "frost risk."
            if view is not None
            else "No road surface temperature is available: cannot judge the frost risk."
        )
    elif policy.at_or_below_trigger(min_rst):
        _below_trigger(j, view, fc, policy)
    elif min_rst <= trig + policy.monitor_band_c:
        j.action, j.rule = "monitor", "within_monitor_band"
        j.reasons.append(
            f"Expected minimum road surface temperature {temp(min_rst)} is above the trigger {temp(trig)} but within "
            f"{policy.monitor_band_c:g} °C of it: monitor."
        )
    else:
        j.action, j.rule = "none", "above_monitor_band"
        warm_at = len(j.reasons)  # the verdict is added below, once the checks that follow have had their say
        j.reasons.append(
            f"Expected minimum road surface temperature {temp(min_rst)} stays more than {policy.monitor_band_c:g} "
            "°C above the "
            f"trigger {temp(trig)}"
        )

    # The forecast leads, but a credible station nowcast that disagrees is never silenced.
    if j.action == "none" and seen.source == "forecast" and view is not None:
        nc = view.nowcast
        if nc.usable and nc.trigger_at is not None and nc.hours_ahead(nc.trigger_at) <= policy.nowcast_credible_hours:
            j.action, j.rule = "monitor", "nowcast_disagrees"
            j.reasons.append(
                f"{cap(view.label)} disagrees with the forecast: its nowcast reaches {temp(trig)} at "
                f"{hm(nc.trigger_at)}: monitor."
            )

    if j.action == "none":
        held = no_action_held(seen, now, policy)
        if held is not None:
            j.action, j.rule = "monitor", held[0]
            j.reasons.extend(held[1])
    if warm_at is not None:
        j.reasons[warm_at] += ": no action." if j.action == "none" else "."

    _maybe_escalate(j, view, fc, policy)
    return j


def no_action_held(seen: Outlook, now: datetime, policy: GrittingPolicy) -> tuple[str, list[str]] | None:
    """Why "no action" cannot be said on this outlook (the rule id and the sentences), or None when it can.

    Never "no action" past what the data covers: the station readings and the forecast must reach the end of the
    gritting night (night_end_local), and the lower edge of the projection's uncertainty band (low_c; unknown:
    the expected minimum) must stay above the trigger. Either failing: monitor. A road so warm that even the
    largest fall a night can bring (core.gritting.learned.MAX_DROP_C) leaves it above the trigger needs no
    coverage: a June afternoon is "no action", not "monitor"."""
    rule: str | None = None
    sentences: list[str] = []
    night_end = policy.night_end_after(now)
    until = seen.covered_until
    warm = seen.rst_now is not None and seen.rst_now - MAX_DROP_C > policy.trigger_rst_c
    if not warm and (until is None or until < night_end):
        rule = "data_ends_before_night_end"
        if until is None or until <= now:
            sentences.append(
                f"No station readings or forecast cover the rest of the night, which runs to {hm(night_end)}: "
                "watch for a forecast or new readings."
            )
        else:
            what = " and ".join(seen.covered_by) or "the data"
            verb = "covers" if seen.covered_by == ("the forecast",) else "cover"
            sentences.append(
                f"{cap(what)} {verb} until {hm(until)}; the night runs to {hm(night_end)}: watch for a forecast or "
                "new readings."
            )
    low, expected = seen.low_c, seen.min_rst
    if low is not None and expected is not None and low <= policy.trigger_rst_c < expected:
        rule = rule or "band_reaches_trigger"
        sentences.append(
            f"The expected minimum road surface temperature is {temp(expected)}, but the low end of its uncertainty "
            f"band, {temp(low)}, reaches the trigger {temp(policy.trigger_rst_c)}: monitor."
        )
    return (rule, sentences) if rule is not None else None


def _from(start: datetime | None) -> str:
    return f" from {hm(start)}" if start is not None else ""


def _earliest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _observed(j: Judgement, view: StationView, now: datetime, policy: GrittingPolicy) -> None:
    """Snow, ice or frost already on the road."""
    j.reactive = True
    j.trigger_at = view.state_at
    j.confidence = _OBSERVED_CONFIDENCE
    assert view.state_at is not None
    age = (now - view.state_at).total_seconds() / 60.0
    rst = view.rst
    known = [x for x in (rst, j.outlook.min_rst) if x is not None]
    colder = min(known) if known else None
    at = f" at {temp(rst)}" if rst is not None else ""
    seen = f"{cap(view.label)} reports {view.state} on the road{at} ({hm(view.state_at)})"
    if age > policy.stale_after_minutes:
        j.confidence *= 0.7
        seen += f", {age:.0f} minutes ago"
    if view.state == "snow":
        j.action, j.rule, j.hazard = "plough_and_salt", "snow_on_road", "snow on road"
        j.rate = policy.heavy_snow.pick(policy.pre_wetted)
        j.reasons.append(f"{seen}: plough and treat now.")
        j.rate_reason = _rate_sentence(j.rate, "snow lying", policy)
    elif view.state == "ice":
        j.action, j.rule, j.hazard = "salt", "ice_on_road", "ice on road"
        cold = rst is not None and rst <= policy.ice_cold_at_or_below_c
        j.rate = (policy.ice_cold if cold else policy.ice).pick(policy.pre_wetted)
        row = (
            f"ice formed, road surface temperature at or below {policy.ice_cold_at_or_below_c:g} °C"
            if cold
            else f"ice formed, road surface temperature above {policy.ice_cold_at_or_below_c:g} °C"
        )
        if rst is None:
            row += " (road surface temperature not reported)"
        j.reasons.append(f"{seen}: treat now.")
        j.rate_reason = _rate_sentence(j.rate, row, policy)
    else:
        j.action, j.rule, j.hazard = "salt", "frost_on_road", "frost on road"
        j.reasons.append(f"{seen}: treat now.")
        found = _matrix_rate(colder if colder is not None else 0.0, "dry_damp", policy)
        if found is not None:
            j.rate = found[0]
            j.rate_reason = _rate_sentence(found[0], "frost, " + found[1], policy)


def _snow(j: Judgement, fc: Forecast, policy: GrittingPolicy) -> None:
    min_rst = j.outlook.min_rst
    trig = policy.trigger_rst_c
    when = _from(fc.precipitation_start)
    if min_rst is not None and min_rst > trig + policy.monitor_band_c:
        j.action, j.rule = "monitor", "snow_forecast_warm_road"
        j.reasons.append(
            f"Snow is forecast{when}, but the expected minimum road surface temperature {temp(min_rst)} is more than "
            f"{policy.monitor_band_c:g} °C above the trigger: snow should not settle; monitor."
        )
        return
    j.trigger_at = _earliest(fc.precipitation_start, j.outlook.trigger_at)
    if j.trigger_at is not None and j.trigger_at == fc.precipitation_start:
        j.t0_words = "snow starts"
    if j.trigger_at is None:
        j.trigger_at = j.outlook.min_rst_at
    mm = fc.precipitation_mm
    if mm is not None and mm < policy.light_snow_max_mm:
        j.action, j.rule, j.hazard = "precautionary_salt", "light_snow_forecast", "light snow forecast"
        rate = policy.light_snow.pick(policy.pre_wetted)
        basis = f"light snow forecast, under {policy.light_snow_max_mm:g} mm"
        j.reasons.append(f"Light snow ({mm:g} mm) is forecast{when}.")
    else:
        j.action, j.rule, j.hazard = "plough_and_salt", "heavy_snow_forecast", "snow forecast"
        rate = policy.heavy_snow.pick(policy.pre_wetted)
        basis = f"medium or heavy snow, {policy.light_snow_max_mm:g} mm or more"
        amount = f"{mm:g} mm of snow" if mm is not None else "Snow (amount not given, so taken as medium or heavy)"
        j.reasons.append(f"{amount[0].upper()}{amount[1:]} is forecast{when}: ploughs fitted.")
    # Cold enough that the frost row of the matrix asks for more salt than the snow row: use it.
    if min_rst is not None and policy.at_or_below_trigger(min_rst):
        frost = _matrix_rate(min_rst, j.wetness, policy)
        if frost is not None and frost[0].total_g_m2 > rate.total_g_m2:
            rate, basis = frost[0], f"{frost[1]} (more than the snow row)"
    j.rate = rate
    j.rate_reason = _rate_sentence(rate, basis, policy)


def _below_trigger(j: Judgement, view: StationView | None, fc: Forecast | None, policy: GrittingPolicy) -> None:
    """Expected RST at or below the trigger: wet, damp and moist-air roads are treated; dry air only watched."""
    min_rst = j.outlook.min_rst
    assert min_rst is not None
    dew = fc.dew_point if fc is not None and fc.dew_point is not None else (view.dew if view is not None else None)
    state = view.state if view is not None else None
    if j.wetness == "wet":
        j.action, j.rule, j.hazard = "precautionary_salt", "wet_road_below_trigger", "wet roads freezing"
        j.reasons.append(
            f"Wet road with the road surface temperature expected to reach {temp(min_rst)}: ice will form without salt."
        )
    elif dew is None:
        j.action, j.rule = "precautionary_salt", "below_trigger_moisture_unknown"
        j.reasons.append(
            f"Road surface temperature expected to reach {temp(min_rst)} and no dew point is reported: "
            "frost cannot be ruled out."
        )
    else:
        sat, sat_name = _saturation_point(dew)
        if deposits_frost(min_rst, e_water(dew)):
            j.action, j.rule, j.hazard = "precautionary_salt", "frost_deposition", "hoar frost likely"
            j.reasons.append(
                f"Frost deposition: road surface temperature {temp(min_rst)} is at or below 0 °C and at or below "
                "the air's frost point "
                f"{temp(sat)} (dew point {temp(dew)}), so hoar frost forms on the road."
            )
        elif state == "damp":
            j.action, j.rule, j.hazard = "precautionary_salt", "damp_road_below_trigger", "damp roads freezing"
            j.reasons.append(
                f"Damp road with the road surface temperature expected to reach {temp(min_rst)}: the water film will "
                "freeze."
            )
        elif sat > min_rst - policy.dry_air_gap_c:
            j.action, j.rule, j.hazard = "precautionary_salt", "below_trigger_moist_air", "frost possible"
            j.reasons.append(
                f"The air's {sat_name} {temp(sat)} is within {policy.dry_air_gap_c:g} °C of the expected minimum "
                f"road surface temperature {temp(min_rst)}: frost is possible."
            )
        elif not policy.dry_road_needs_moisture:
            j.action, j.rule = "precautionary_salt", "below_trigger"
            j.reasons.append(
                f"Road surface temperature expected to reach {temp(min_rst)}; this policy treats below the trigger "
                "whatever the moisture."
            )
        else:
            j.action, j.rule = "monitor", "dry_road_dry_air"
            j.reasons.append(
                f"Dry road and dry air: the {sat_name} {temp(sat)} is more than {policy.dry_air_gap_c:g} °C below "
                f"the expected minimum road surface temperature {temp(min_rst)}, so frost is unlikely; monitor for "
                "rain or moister air."
            )
            return
    found = _matrix_rate(min_rst, j.wetness, policy)
    if found is None:
        return  # colder than every row: _maybe_escalate hands it to a person
    rate, basis = found
    rate = _residual_salt(j, view, fc, min_rst, rate, policy)
    j.rate = rate
    j.rate_reason = _rate_sentence(rate, basis, policy)


def _residual_salt(
    j: Judgement,
    view: StationView | None,
    fc: Forecast | None,
    min_rst: float,
    rate: SpreadRate,
    policy: GrittingPolicy,
) -> SpreadRate:
    """Salt still on the road lowers the freezing point: say so, and reduce if the policy allows."""
    fp = view.freezing_point if view is not None else None
    if view is None or fp is None or fp > min_rst - policy.residual_salt_margin_c:
        return rate
    if fc is not None and fc.precipitation in ("rain", "sleet"):
        j.reasons.append(
            f"{cap(view.label)} shows residual salt (freezing point {temp(fp)}), but the forecast "
            f"{fc.precipitation} will wash it off: no reduction."
        )
        return rate
    if policy.residual_salt_reduction > 0:
        reduced = rate.scaled(1.0 - policy.residual_salt_reduction)
        j.reasons.append(
            f"Residual salt: {view.label} measures a freezing point of {temp(fp)}, well below the expected "
            f"minimum road surface temperature {temp(min_rst)}: the rate is reduced by "
            f"{policy.residual_salt_reduction:.0%} "
            f"from {rate} to {reduced}."
        )
        j.rule += "_residual_salt"
        return reduced
    j.reasons.append(
        f"Residual salt: {view.label} measures a freezing point of {temp(fp)}, well below the expected "
        f"minimum road surface temperature {temp(min_rst)}: precautionary treatment may be reduced (this policy "
        "keeps the full rate)."
    )
    return rate


def _maybe_escalate(j: Judgement, view: StationView | None, fc: Forecast | None, policy: GrittingPolicy) -> None:
    """Too cold for salt to be trusted: a person decides, and no rate is printed."""
    min_rst = j.outlook.min_rst
    if view is not None and view.rst is not None and (min_rst is None or view.rst < min_rst):
        min_rst = view.rst
    if min_rst is None:
        return
    why = None
    if min_rst <= policy.escalate_at_or_below_c:
        why = f"at or below {policy.escalate_at_or_below_c:g} °C, where salt is marginal"
    elif policy.frost_band(min_rst) is None and j.action in TREATING:
        why = f"colder than every row of the spread matrix (coldest {policy.frost_bands[-1].rst_at_or_above_c:g} °C)"
    elif policy.low_humidity_rh is not None and min_rst <= policy.escalate_low_humidity_at_or_below_c:
        air = view.air if view is not None else None
        dew = fc.dew_point if fc is not None and fc.dew_point is not None else (view.dew if view is not None else None)
        if air is not None and dew is not None:
            rh = 100.0 * e_water(dew) / e_water(air)
            if rh < policy.low_humidity_rh:
                why = (
                    f"at or below {policy.escalate_low_humidity_at_or_below_c:g} °C in dry air (RH {rh:.0f} %, "
                    f"below {policy.low_humidity_rh:g} %), where salt is slow to work"
                )
    if why is None:
        return
    consider = "ploughing, " if j.action == "plough_and_salt" or (view is not None and view.state == "snow") else ""
    j.reasons.append(
        f"Expected minimum road surface temperature {temp(min_rst)} is {why}; salt has virtually no effect below "
        f"{policy.salt_ineffective_below_c:g} °C, so no spread rate is given. Escalated to the duty officer: consider "
        f"{consider}pre-wetting with calcium or magnesium chloride brine, abrasives (grit or sand) on priority "
        "routes, and repeat treatments."
    )
    j.action, j.rate, j.rate_reason = "escalate", None, None
    j.rule = "escalate_salt_marginal"
    j.hazard = "too cold for salt alone"
    if j.trigger_at is None and not j.reactive:
        j.trigger_at = j.outlook.trigger_at or j.outlook.min_rst_at
