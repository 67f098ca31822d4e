"""The gritting decision rule: the Transport Scotland matrix, triggers, timing, escalation and the message."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core.gritting import (
    Decision,
    Forecast,
    GrittingPolicy,
    RouteInput,
    StationObs,
    StationSample,
    decide,
    format_message,
    route_ranges,
)
from core.physics import frost_point_from_dew_point

# A January evening: Europe/London is UTC, so the times people read equal the UTC times here.
NOW = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)
POLICY = GrittingPolicy()


def at(hour: int, minute: int = 0, day: int = 15) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def steady_station(
    rst: float = 3.0,
    state: str | None = "dry",
    dew: float | None = 0.0,
    sid: str = "RS-01",
    freezing_point: float | None = None,
    now: datetime = NOW,
) -> StationObs:
    """A station holding one reading for the last hour (no trend)."""
    return StationObs(
        sid,
        tuple(
            StationSample(
                ts=now - timedelta(minutes=m),
                road_surface_temperature=rst,
                air_temperature=rst + 1.0,
                dew_point=dew,
                surface_state=state,
                freezing_point=freezing_point,
            )
            for m in (60, 45, 30, 15, 0)
        ),
    )


def cooling_station(
    start: float, rate_c_per_h: float, *, state: str = "wet", dew: float | None = -1.0, sid: str = "RS-01",
    now: datetime = NOW, hours: float = 3.0, step_min: int = 10, air: float | None = 3.0,
) -> StationObs:  # fmt: skip
    """A station whose RST has changed linearly at rate_c_per_h over the last `hours`, reading `start` now."""
    n = int(hours * 60 / step_min) + 1
    samples = []
    for i in range(n):
        back_h = (n - 1 - i) * step_min / 60.0
        samples.append(
            StationSample(
                ts=now - timedelta(hours=back_h),
                road_surface_temperature=start - rate_c_per_h * back_h,
                air_temperature=air,
                dew_point=dew,
                surface_state=state,
            )
        )
    return StationObs(sid, tuple(samples))


def forecast(
    min_rst: float,
    *,
    min_at: datetime | None = None,
    precipitation: str = "none",
    mm: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    trace: tuple[tuple[datetime, float], ...] = (),
) -> Forecast:
    return Forecast(
        issued_at=at(12),
        min_rst=min_rst,
        min_rst_at=min_at or at(4, day=16),
        precipitation=precipitation,  # type: ignore[arg-type]
        precipitation_mm=mm,
        precipitation_start=start,
        precipitation_end=end,
        rst_trace=trace,
    )


def route(
    *stations: StationObs, fc: Forecast | None = None, treatment: int | None = None, mob: int | None = None
) -> RouteInput:
    return RouteInput("P1", "Town centre", 1, treatment, mob, tuple(stations), fc)


def reasons(d: Decision) -> str:
    return " ".join(d.reasons)


# --- the matrix, one row per case -----------------------------------------------------------------

# (station state, forecast min RST, precipitation, mm, pre_wetted, observed RST for ice) ->
# (action, g/m2 per pass, passes)
MATRIX = [
    pytest.param("damp", -1.0, "none", None, False, "precautionary_salt", 8, 1,
                 id="damp_road_at_minus_one_needs_eight_grams_dry_salt"),
    pytest.param("wet", -1.0, "none", None, True, "precautionary_salt", 8, 1,
                 id="wet_road_at_minus_one_needs_eight_grams_pre_wetted"),
    pytest.param("damp", -2.0, "none", None, False, "precautionary_salt", 8, 1,
                 id="damp_road_at_exactly_minus_two_is_still_the_frost_row_eight_grams"),
    pytest.param("damp", -3.0, "none", None, False, "precautionary_salt", 10, 1,
                 id="damp_road_at_minus_three_needs_ten_grams_dry_salt"),
    pytest.param("damp", -3.0, "none", None, True, "precautionary_salt", 9, 1,
                 id="damp_road_at_minus_three_needs_nine_grams_pre_wetted"),
    pytest.param("wet", -3.0, "none", None, False, "precautionary_salt", 16, 1,
                 id="wet_road_at_minus_three_needs_sixteen_grams_dry_salt"),
    pytest.param("wet", -3.0, "none", None, True, "precautionary_salt", 15, 1,
                 id="wet_road_at_minus_three_needs_fifteen_grams_pre_wetted"),
    pytest.param("damp", -5.0, "none", None, False, "precautionary_salt", 10, 1,
                 id="damp_road_at_exactly_minus_five_is_the_minus_two_to_five_row"),
    pytest.param("damp", -6.0, "none", None, False, "precautionary_salt", 18, 1,
                 id="damp_road_at_minus_six_needs_eighteen_grams"),
    pytest.param("damp", -6.0, "none", None, True, "precautionary_salt", 18, 1,
                 id="damp_road_at_minus_six_needs_eighteen_grams_pre_wetted"),
    pytest.param("wet", -6.0, "none", None, False, "precautionary_salt", 15, 2,
                 id="wet_road_at_minus_six_needs_two_passes_of_fifteen"),
    pytest.param("wet", -6.9, "none", None, True, "precautionary_salt", 15, 2,
                 id="wet_road_just_above_escalation_needs_two_passes_of_fifteen_pre_wetted"),
    pytest.param("dry", -1.0, "snow", 5.0, False, "precautionary_salt", 20, 1,
                 id="light_snow_forecast_needs_twenty_grams_dry_salt"),
    pytest.param("dry", -1.0, "snow", 5.0, True, "precautionary_salt", 18, 1,
                 id="light_snow_forecast_needs_eighteen_grams_pre_wetted"),
    pytest.param("dry", -1.0, "snow", 10.0, False, "plough_and_salt", 20, 2,
                 id="ten_mm_of_snow_is_medium_and_needs_two_passes_of_twenty"),
    pytest.param("dry", -1.0, "snow", None, False, "plough_and_salt", 20, 2,
                 id="snow_of_unknown_amount_is_treated_as_medium_or_heavy"),
    pytest.param("dry", -1.0, "freezing_rain", 2.0, False, "precautionary_salt", 20, 2,
                 id="freezing_rain_forecast_needs_two_passes_of_twenty"),
]  # fmt: skip


@pytest.mark.parametrize(("state", "min_rst", "precip", "mm", "pre_wetted", "action", "grams", "passes"), MATRIX)
def test_spread_matrix(
    state: str, min_rst: float, precip: str, mm: float | None, pre_wetted: bool, action: str, grams: int, passes: int
) -> None:
    policy = GrittingPolicy(pre_wetted=pre_wetted)
    station = steady_station(rst=2.0, state=state, dew=min_rst + 1.0)
    d = decide(route(station, fc=forecast(min_rst, precipitation=precip, mm=mm, start=at(23))), NOW, policy)
    assert (d.action, d.spread_rate_g_m2, d.passes) == (action, grams, passes)
    assert d.spread_type == ("pre-wetted" if pre_wetted else "dry")
    assert "Transport Scotland 2010" in reasons(d)


ICE = [
    pytest.param(-3.0, 20, 1, id="ice_formed_at_minus_three_needs_twenty_grams"),
    pytest.param(-4.9, 20, 1, id="ice_formed_just_above_minus_five_needs_twenty_grams"),
    pytest.param(-5.0, 20, 2, id="ice_formed_at_minus_five_needs_two_passes_of_twenty"),
    pytest.param(-6.0, 20, 2, id="ice_formed_at_minus_six_needs_two_passes_of_twenty"),
]


@pytest.mark.parametrize(("rst", "grams", "passes"), ICE)
def test_ice_on_the_road(rst: float, grams: int, passes: int) -> None:
    d = decide(route(steady_station(rst=rst, state="ice", dew=rst)), NOW, POLICY)
    assert (d.action, d.rule, d.spread_rate_g_m2, d.passes) == ("salt", "ice_on_road", grams, passes)
    # Ice is already there: treat now, which is never "late".
    assert d.call_out_by == NOW and d.start_by == NOW + timedelta(minutes=60)
    assert d.complete_by == NOW + timedelta(minutes=240) and not d.late
    assert d.horizon_hours == 0.0


def test_snow_lying_on_the_road_needs_plough_and_two_passes_of_twenty() -> None:
    d = decide(route(steady_station(rst=-1.0, state="snow", dew=-1.5)), NOW, POLICY)
    assert (d.action, d.rule, d.spread_rate_g_m2, d.passes) == ("plough_and_salt", "snow_on_road", 20, 2)


def test_frost_already_on_the_road_is_salted_now_at_the_frost_rate() -> None:
    d = decide(route(steady_station(rst=-3.0, state="frost", dew=-3.0)), NOW, POLICY)
    assert (d.action, d.rule, d.spread_rate_g_m2) == ("salt", "frost_on_road", 10)
    assert d.call_out_by == NOW and not d.late


# --- thresholds -----------------------------------------------------------------------------------

THRESHOLDS = [
    pytest.param({}, "wet", 0.5, "precautionary_salt", id="wet_road_exactly_at_trigger_is_treated_by_default"),
    pytest.param({"trigger_inclusive": False}, "wet", 0.5, "monitor",
                 id="wet_road_exactly_at_a_strict_below_trigger_is_only_monitored"),
    pytest.param({}, "wet", 0.6, "monitor", id="wet_road_just_above_trigger_is_monitored"),
    pytest.param({"trigger_rst_c": 0.0}, "wet", 0.3, "monitor", id="calderdale_zero_trigger_leaves_plus_point_three"),
    pytest.param({}, "wet", 2.5, "monitor", id="min_at_top_of_monitor_band_is_monitored"),
    pytest.param({}, "wet", 2.6, "none", id="min_above_monitor_band_needs_no_action"),
    pytest.param({"monitor_band_c": 3.0}, "wet", 3.0, "monitor", id="wider_monitor_band_watches_plus_three"),
    pytest.param({}, "wet", -7.0, "escalate", id="minus_seven_is_escalated"),
    pytest.param({}, "wet", -6.9, "precautionary_salt", id="minus_six_point_nine_is_still_salted"),
    pytest.param({"escalate_at_or_below_c": -6.0}, "damp", -6.0, "escalate",
                 id="stricter_council_escalates_at_minus_six"),
    pytest.param({"light_snow_max_mm": 20.0}, "dry", -1.0, "precautionary_salt",
                 id="council_light_snow_limit_changes_the_snow_row"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "state", "min_rst", "action"), THRESHOLDS)
def test_thresholds(changes: dict[str, object], state: str, min_rst: float, action: str) -> None:
    policy = GrittingPolicy.from_mapping(changes)
    precip = "snow" if "light_snow_max_mm" in changes else "none"
    station = steady_station(rst=4.0, state=state, dew=min_rst + 1.0)
    d = decide(route(station, fc=forecast(min_rst, precipitation=precip, mm=15.0)), NOW, policy)
    assert d.action == action


def test_minus_eight_is_escalated_with_no_rate_and_says_why() -> None:
    d = decide(route(steady_station(rst=1.0, state="wet", dew=-6.0), fc=forecast(-8.0)), NOW, POLICY)
    assert d.action == "escalate"
    assert d.spread_rate_g_m2 is None
    assert d.rule == "escalate_salt_marginal"
    text = reasons(d)
    assert "salt is marginal" in text and "-10 °C" in text and "abrasives" in text
    assert "g/m²" not in text and "g/m2" not in text  # no rate printed, not even the matrix row the escalation replaced
    # The officer still needs to know when the road freezes.
    assert d.trigger_at is not None and d.call_out_by is not None


def test_low_humidity_escalates_at_minus_five_only_when_the_council_sets_it() -> None:
    station = steady_station(rst=1.0, state="damp", dew=-14.0)  # air +2 C, dew -14 C: RH about 30 %
    fc = forecast(-5.5)
    assert decide(route(station, fc=fc), NOW, POLICY).action == "precautionary_salt"
    d = decide(route(station, fc=fc), NOW, GrittingPolicy(low_humidity_rh=50.0))
    assert d.action == "escalate" and "dry air" in reasons(d)


# --- moisture: wet, damp, dry ---------------------------------------------------------------------


def test_dry_road_with_dew_point_well_below_rst_is_monitored_not_salted() -> None:
    d = decide(route(steady_station(rst=3.0, state="dry", dew=-8.0), fc=forecast(-1.0)), NOW, POLICY)
    assert d.action == "monitor"
    assert d.rule == "dry_road_dry_air"
    assert d.spread_rate_g_m2 is None and d.call_out_by is None
    assert "frost is unlikely" in reasons(d)


def test_dry_road_policy_that_ignores_moisture_treats_below_the_trigger() -> None:
    policy = GrittingPolicy(dry_road_needs_moisture=False)
    d = decide(route(steady_station(rst=3.0, state="dry", dew=-8.0), fc=forecast(-1.0)), NOW, policy)
    assert (d.action, d.spread_rate_g_m2) == ("precautionary_salt", 8)


def test_frost_deposition_uses_the_frost_point_not_the_dew_point() -> None:
    # Air with dew point -3.4 C saturates over ice near -3.0 C: a road at -3.2 C is above the dew point
    # (the dew point rule says no frost) but below the frost point, so hoar frost forms.
    dew = -3.4
    assert frost_point_from_dew_point(dew) > -3.2 > dew
    policy = GrittingPolicy(dry_air_gap_c=0.0)
    d = decide(route(steady_station(rst=2.0, state="dry", dew=dew), fc=forecast(-3.2)), NOW, policy)
    assert d.rule == "frost_deposition"
    assert d.hazard == "hoar frost likely"
    assert d.spread_rate_g_m2 == 10


def test_rain_before_the_minimum_makes_a_dry_road_wet() -> None:
    fc = forecast(-3.0, precipitation="rain", start=at(17), end=at(19))
    d = decide(route(steady_station(rst=4.0, state="dry", dew=-8.0), fc=fc), NOW, POLICY)
    assert (d.road_wetness, d.spread_rate_g_m2) == ("wet", 16)


def test_residual_salt_says_treatment_may_be_reduced_but_keeps_the_rate_by_default() -> None:
    station = steady_station(rst=2.0, state="wet", dew=-1.0, freezing_point=-6.0)
    d = decide(route(station, fc=forecast(-1.0)), NOW, POLICY)
    assert d.spread_rate_g_m2 == 8
    assert "may be reduced" in reasons(d)


def test_residual_salt_reduction_applies_when_the_council_sets_one() -> None:
    station = steady_station(rst=2.0, state="wet", dew=-4.0, freezing_point=-9.0)
    d = decide(route(station, fc=forecast(-3.0)), NOW, GrittingPolicy(residual_salt_reduction=0.25))
    assert d.spread_rate_g_m2 == 12  # 16 less a quarter
    assert "reduced by 25%" in reasons(d)


def test_freezing_point_close_to_the_minimum_is_not_residual_salt() -> None:
    station = steady_station(rst=2.0, state="wet", dew=-1.0, freezing_point=-2.0)
    d = decide(route(station, fc=forecast(-1.0)), NOW, GrittingPolicy(residual_salt_reduction=0.5))
    assert d.spread_rate_g_m2 == 8 and "Residual salt" not in reasons(d)


# --- timing ---------------------------------------------------------------------------------------

TRACE = ((at(16), 4.0), (at(20), 2.5), (at(23), 0.5), (at(4, day=16), -2.0))


def test_wet_road_cooling_toward_frost_tonight_is_salted_in_time() -> None:
    d = decide(route(steady_station(rst=4.0, state="wet", dew=-1.0), fc=forecast(-2.0, trace=TRACE)), NOW, POLICY)
    assert d.action == "precautionary_salt" and d.road_wetness == "wet"
    assert d.trigger_at == at(23)
    assert d.complete_by == at(22, 30)  # 30 min before T0
    assert d.start_by == at(19, 30)  # 180 min treatment
    assert d.call_out_by == at(18, 30)  # 60 min mobilisation
    assert not d.late
    assert "call out by 18:30" in reasons(d)


def test_route_treatment_and_mobilisation_override_the_policy() -> None:
    fc = forecast(-2.0, trace=TRACE)
    d = decide(route(steady_station(rst=4.0, state="wet"), fc=fc, treatment=120, mob=45), NOW, POLICY)
    assert (d.complete_by, d.start_by, d.call_out_by) == (at(22, 30), at(20, 30), at(19, 45))


def test_nowcast_sets_the_time_on_a_cooling_wet_road_without_a_forecast() -> None:
    # Wet road at +3.0 C falling 1 C/h, frost point near -2.7 C: the nowcast reaches +0.5 C in about 3.2 h.
    d = decide(route(cooling_station(3.0, -1.0, dew=-3.0)), NOW, POLICY)
    assert d.action == "precautionary_salt" and d.rule == "wet_road_below_trigger"
    assert d.trigger_at is not None and NOW + timedelta(hours=3) < d.trigger_at < NOW + timedelta(hours=4)
    assert d.complete_by == d.trigger_at - timedelta(minutes=30)
    assert d.start_by == d.complete_by - timedelta(minutes=180)
    assert d.call_out_by == d.start_by - timedelta(minutes=60)
    assert 0 < d.horizon_hours <= 6
    assert "the nowcast reaches +0.5 °C at" in reasons(d)
    assert "beyond the 3 h" in reasons(d)  # T0 over 3 h ahead rests on a degraded nowcast


def test_late_decision_is_flagged_and_tells_the_crew_to_go_now() -> None:
    fc = forecast(-2.0, trace=TRACE)
    now = at(19)  # call-out was due at 18:30
    d = decide(route(steady_station(rst=2.5, state="wet", now=now), fc=fc), now, POLICY)
    assert d.late is True
    assert d.call_out_by == at(18, 30)
    assert "call the crew out now" in reasons(d)
    assert "LATE" in format_message([d])


def test_decision_before_the_call_out_time_is_not_late() -> None:
    now = at(18, 29)
    d = decide(route(steady_station(rst=2.5, state="wet", now=now), fc=forecast(-2.0, trace=TRACE)), now, POLICY)
    assert d.late is False


def test_rain_before_the_freeze_delays_the_start_until_it_stops() -> None:
    # T0 02:00: the plan would start at 22:30, but rain falls until 23:30 and would wash the salt off.
    trace = ((at(16), 5.0), (at(2, day=16), 0.5), (at(5, day=16), -2.0))
    fc = forecast(-2.0, trace=trace, precipitation="rain", start=at(19), end=at(23, 30))
    d = decide(route(steady_station(rst=5.0, state="wet"), fc=fc), NOW, POLICY)
    assert d.trigger_at == at(2, day=16)
    assert d.start_by == at(23, 30) and d.start_not_before == at(23, 30)
    assert d.call_out_by == at(22, 30)
    assert d.complete_by == at(2, 30, day=16)
    text = reasons(d)
    assert "would wash salt off" in text
    assert "still before the road surface temperature reaches +0.5 °C at 02:00" in text


def test_rain_that_stops_before_the_planned_start_does_not_delay_it() -> None:
    trace = ((at(16), 5.0), (at(2, day=16), 0.5), (at(5, day=16), -2.0))
    fc = forecast(-2.0, trace=trace, precipitation="rain", start=at(17), end=at(21))
    d = decide(route(steady_station(rst=5.0, state="wet"), fc=fc), NOW, POLICY)
    assert d.start_by == at(22, 30) and d.start_not_before == at(21)
    assert "no delay needed" in reasons(d)


def test_snow_forecast_is_treated_before_the_snow_arrives() -> None:
    fc = forecast(-1.0, precipitation="snow", mm=4.0, start=at(21))
    d = decide(route(steady_station(rst=2.0, state="dry"), fc=fc), NOW, POLICY)
    assert d.trigger_at == at(21) and d.complete_by == at(20, 30)


def test_earliest_station_to_reach_the_trigger_sets_the_route_time() -> None:
    # RS-01 is wet (16 g/m2, the worst) but, cooling in a straight line to the forecast minimum, reaches
    # +0.5 C only at 22:00. RS-02 is damp (10 g/m2) and its nowcast reaches +0.5 C around 17:00.
    wet_late = steady_station(rst=4.0, state="wet", dew=-4.0, sid="RS-01")
    damp_early = cooling_station(1.5, -1.2, state="damp", dew=-1.0, sid="RS-02")
    d = decide(route(wet_late, damp_early, fc=forecast(-3.0)), NOW, POLICY)
    assert (d.worst_station, d.spread_rate_g_m2) == ("RS-01", 16)
    assert d.trigger_at is not None and NOW < d.trigger_at < NOW + timedelta(hours=1.5)
    assert d.complete_by == d.trigger_at - timedelta(minutes=30)
    assert "Timing follows station RS-02" in reasons(d)


# --- route level: worst station, no data, forecast vs observations ---------------------------------


def test_warm_route_needs_no_action() -> None:
    d = decide(route(steady_station(rst=8.0, state="dry", dew=2.0), fc=forecast(6.0)), NOW, POLICY)
    assert d.action == "none" and d.rule == "above_monitor_band"
    assert d.call_out_by is None and d.spread_rate_g_m2 is None
    assert "no action" in reasons(d)


def test_warm_steady_station_without_a_forecast_needs_no_action_once_its_readings_reach_the_night_end() -> None:
    # At 16:00 its readings cover only to 22:00 of a night that runs to 08:00: monitor (issue 13).
    evening = decide(route(cooling_station(9.0, 0.0, state="dry", dew=1.0)), NOW, POLICY)
    assert (evening.action, evening.rule) == ("monitor", "data_ends_before_night_end")
    late = at(3, day=16)
    d = decide(route(cooling_station(9.0, 0.0, state="dry", dew=1.0, now=late)), late, POLICY)
    assert d.action == "none"


def test_worst_station_decides() -> None:
    warm = steady_station(rst=6.0, state="dry", dew=-5.0, sid="RS-01")
    icy = steady_station(rst=-2.0, state="ice", dew=-2.5, sid="RS-02")
    d = decide(route(warm, icy), NOW, POLICY)
    assert (d.action, d.worst_station) == ("salt", "RS-02")
    assert "RS-01" in reasons(d)


def test_no_recent_readings_is_monitor_with_zero_confidence_never_none() -> None:
    old = NOW - timedelta(hours=5)
    stations = (steady_station(sid="RS-01", now=old), steady_station(sid="RS-02", now=old))
    d = decide(route(*stations), NOW, POLICY)
    assert d.action == "monitor" and d.confidence == 0.0 and d.rule == "no_data"
    assert "No recent readings from station RS-01 and station RS-02: cannot judge." in d.reasons


def test_a_silent_station_is_named_and_lowers_confidence() -> None:
    live = steady_station(rst=2.0, state="wet", sid="RS-01")
    dead = steady_station(sid="RS-09", now=NOW - timedelta(hours=6))
    both = decide(route(live, dead, fc=forecast(-1.0)), NOW, POLICY)
    alone = decide(route(live, fc=forecast(-1.0)), NOW, POLICY)
    assert both.action == alone.action == "precautionary_salt"
    assert "No recent readings from station RS-09" in reasons(both)
    assert both.confidence < alone.confidence


def test_forecast_leads_over_the_nowcast() -> None:
    # The station trend alone stays above the trigger in 6 h; the forecast says -2 C tonight.
    station = cooling_station(5.0, -0.2, state="wet", dew=-3.0)
    assert decide(route(station), NOW, POLICY).action != "precautionary_salt"
    d = decide(route(station, fc=forecast(-2.0)), NOW, POLICY)
    assert d.action == "precautionary_salt" and d.min_rst == -2.0
    assert "forecast issued at 12:00 leads" in reasons(d)


def test_a_road_colder_than_the_forecast_uses_the_observation() -> None:
    d = decide(route(steady_station(rst=-3.5, state="wet", dew=-4.0), fc=forecast(-1.0)), NOW, POLICY)
    assert d.min_rst == -3.5 and d.spread_rate_g_m2 == 16


def test_credible_nowcast_that_disagrees_with_a_warm_forecast_is_monitored_not_ignored() -> None:
    # +3.0 C falling 1.5 C/h reaches the trigger in about 2 h; the forecast says +5 C.
    station = cooling_station(3.0, -1.5, state="wet", dew=-5.0)
    d = decide(route(station, fc=forecast(5.0)), NOW, POLICY)
    assert d.action == "monitor" and d.rule == "nowcast_disagrees"


def test_stale_forecast_is_ignored_and_said_so() -> None:
    old = dataclasses.replace(forecast(-5.0), issued_at=NOW - timedelta(hours=30))
    d = decide(route(steady_station(rst=6.0, state="dry", dew=-2.0), fc=old), NOW, POLICY)
    # Station data alone at 16:00 reaches 22:00, not the end of the night: monitor, never "no action" (issue 13).
    assert (d.action, d.rule) == ("monitor", "data_ends_before_night_end")
    assert "30 h old" in reasons(d)


def test_forecast_alone_without_station_data_still_decides_with_lower_confidence() -> None:
    d = decide(route(fc=forecast(-3.0, precipitation="rain", start=at(17), end=at(19))), NOW, POLICY)
    assert d.action == "precautionary_salt" and d.spread_rate_g_m2 == 16
    assert d.confidence < POLICY.forecast_confidence
    assert "forecast alone" in reasons(d)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(route(steady_station()), datetime(2026, 1, 15, 16, 0), POLICY)
    with pytest.raises(ValueError, match="aware"):
        StationSample(ts=datetime(2026, 1, 15, 16, 0))


# --- the decision record --------------------------------------------------------------------------


def test_material_key_is_unchanged_by_small_time_jitter() -> None:
    d1 = decide(route(steady_station(rst=2.5, state="wet"), fc=forecast(-2.0, trace=TRACE)), NOW, POLICY)
    jittered = tuple((t + timedelta(minutes=3), v) for t, v in TRACE)
    d2 = decide(route(steady_station(rst=2.5, state="wet"), fc=forecast(-2.0, trace=jittered)), NOW, POLICY)
    assert d1.call_out_by != d2.call_out_by
    assert d1.material_key() == d2.material_key()


def test_material_key_changes_with_rate_or_a_real_time_shift() -> None:
    d = decide(route(steady_station(rst=2.5, state="wet"), fc=forecast(-2.0, trace=TRACE)), NOW, POLICY)
    assert dataclasses.replace(d, spread_rate_g_m2=16.0).material_key() != d.material_key()
    assert d.call_out_by is not None
    later = dataclasses.replace(d, call_out_by=d.call_out_by + timedelta(minutes=45))
    assert later.material_key() != d.material_key()
    assert dataclasses.replace(d, reasons=(), confidence=0.1).material_key() == d.material_key()


def test_ice_on_the_road_is_the_same_decision_twenty_minutes_later() -> None:
    # "Treat now" times follow the clock; re-evaluating an icy road must not issue a new decision each time.
    first = decide(route(steady_station(rst=-1.0, state="ice")), NOW, POLICY)
    later = NOW + timedelta(minutes=20)
    again = decide(route(steady_station(rst=-1.0, state="ice", now=later)), later, POLICY)
    assert first.treat_now and again.treat_now and first.action == again.action == "salt"
    assert first.call_out_by != again.call_out_by
    assert first.material_key() == again.material_key()
    assert dataclasses.replace(again, spread_rate_g_m2=40.0).material_key() != first.material_key()


def test_as_dict_is_json_ready() -> None:
    import json

    d = decide(route(steady_station(rst=2.5, state="wet"), fc=forecast(-2.0, trace=TRACE)), NOW, POLICY)
    data = d.as_dict()
    assert data["call_out_by"] == "2026-01-15T18:30:00Z"  # core.timeparse.utc_z, as every response
    assert isinstance(data["reasons"], list)
    assert json.loads(json.dumps(data))["action"] == "precautionary_salt"


# --- policy from configuration --------------------------------------------------------------------


def test_policy_from_mapping_rejects_an_unknown_key_by_name() -> None:
    with pytest.raises(ValueError, match="trigger_rst"):
        GrittingPolicy.from_mapping({"trigger_rst": 0.5})


def test_policy_from_mapping_rejects_a_bad_value_by_name() -> None:
    with pytest.raises(ValueError, match="monitor_band_c"):
        GrittingPolicy.from_mapping({"monitor_band_c": "lots"})
    with pytest.raises(ValueError, match=r"frost_bands\[1\]\.wet"):
        GrittingPolicy.from_mapping(
            {
                "frost_bands": [
                    {"rst_at_or_above_c": -2, "dry_damp": 8, "wet": 8},
                    {"rst_at_or_above_c": -5, "dry_damp": 10, "wet": "many"},
                ]
            }
        )
    with pytest.raises(ValueError, match="residual_salt_reduction"):
        GrittingPolicy.from_mapping({"residual_salt_reduction": 1.5})


def test_policy_from_mapping_reads_environment_strings_and_matrix_rows() -> None:
    policy = GrittingPolicy.from_mapping(
        {
            "name": "Calderdale policy",
            "trigger_rst_c": "0",
            "pre_wetted": "true",
            "treatment_minutes": "150",
            "heavy_snow": "2x25",
            "light_snow": [20, 16],
            "low_humidity_rh": "none",
            "frost_bands": [
                {"rst_at_or_above_c": -2, "dry_damp": 8, "wet": 8},
                {"rst_at_or_above_c": -10, "dry_damp": [12, 11], "wet": {"dry": "2x12", "pre_wetted": "2x11"}},
            ],
        }
    )
    assert policy.trigger_rst_c == 0.0 and policy.pre_wetted and policy.treatment_minutes == 150
    assert (policy.heavy_snow.dry.grams_per_m2, policy.heavy_snow.dry.passes) == (25.0, 2)
    assert policy.light_snow.pre_wetted.grams_per_m2 == 16.0 and policy.low_humidity_rh is None
    d = decide(route(steady_station(rst=3.0, state="wet", dew=-4.0), fc=forecast(-4.0)), NOW, policy)
    assert (d.spread_rate_g_m2, d.passes, d.spread_type) == (11, 2, "pre-wetted")
    assert "Calderdale policy" in reasons(d)


def test_empty_mapping_gives_the_domain_defaults() -> None:
    p = GrittingPolicy.from_mapping({})
    assert p == GrittingPolicy()
    assert (p.trigger_rst_c, p.monitor_band_c, p.escalate_at_or_below_c) == (0.5, 2.0, -7.0)
    assert (p.treatment_minutes, p.mobilisation_minutes, p.completion_margin_minutes) == (180, 60, 30)
    assert (p.nowcast_credible_hours, p.nowcast_degraded_hours) == (3.0, 6.0)


# --- the message ----------------------------------------------------------------------------------


def _decision(route_id: str, **kw: object) -> Decision:
    base: dict[str, object] = {
        "route_id": route_id,
        "action": "precautionary_salt",
        "rule": "frost_deposition",
        "decided_at": at(16),
        "spread_rate_g_m2": 10.0,
        "start_by": at(19),
        "complete_by": at(22),
        "min_rst": -3.2,
        "min_rst_at": at(4, day=16),
        "hazard": "hoar frost likely",
    }
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


def test_message_reads_like_the_duty_officers_one_liner() -> None:
    decisions = [_decision(f"P{i}", min_rst=-3.2 if i == 7 else -2.0) for i in range(12, 0, -1)]
    assert format_message(decisions) == (
        "Precautionary salt, routes P1-P12, 10 g/m² dry, start 19:00, complete by 22:00; "
        "minimum road surface temperature -3.2 °C at 04:00, hoar frost likely"
    )


def test_message_groups_actions_worst_first_and_shows_london_time_in_summer() -> None:
    summer = datetime(2026, 7, 1, 21, 0, tzinfo=UTC)  # 22:00 BST
    decisions = [
        _decision("B1", action="none", spread_rate_g_m2=None, start_by=None, complete_by=None, hazard=None,
                  min_rst=1.0, min_rst_at=None),
        _decision("A1", action="plough_and_salt", spread_rate_g_m2=20.0, passes=2, start_by=summer,
                  complete_by=summer + timedelta(hours=3), hazard="snow forecast"),
    ]  # fmt: skip
    msg = format_message(decisions)
    assert msg.startswith("Plough and salt, route A1, 2 x 20 g/m² dry, start 22:00, complete by 01:00")
    assert msg.endswith("No action, route B1; minimum road surface temperature +1.0 °C")


def test_route_ranges_compress_runs() -> None:
    assert route_ranges(["P3", "P1", "P2", "P5", "S1", "P6"]) == "P1-P3, P5, P6, S1"
