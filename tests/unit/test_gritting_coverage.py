"""Never "no action" past what the data covers (issue 13): the night's end, the data's reach, the projection's band."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core.gritting import Decision, Forecast, GrittingPolicy, RouteInput, StationObs, StationSample, decide
from core.gritting.lifecycle import carried_status
from core.gritting.rules import no_action_held
from core.gritting.stations import Outlook

# January: Europe/London is UTC, so the times people read equal the UTC times here.
POLICY = GrittingPolicy()


def at(hour: int, minute: int = 0, day: int = 15) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


EVENING = at(16)


def warm_station(now: datetime, rst: float = 8.0) -> StationObs:
    """A dry station holding a warm road for the last three hours, readings every 10 minutes."""
    last = StationSample(now, rst, air_temperature=rst + 1.0, dew_point=1.0, surface_state="dry")
    earlier = (dataclasses.replace(last, ts=now - timedelta(minutes=m)) for m in range(180, 0, -10))
    return StationObs("RS-01", (*earlier, last))


def warm_forecast(*, trace_until: datetime | None, issued: datetime = at(12), min_rst: float = 6.0) -> Forecast:
    """A warm night: a curve of +6 C every hour from 17:00 to trace_until, or (None) only a stated minimum."""
    trace: tuple[tuple[datetime, float], ...] = ()
    if trace_until is not None:
        hours = int((trace_until - at(17)).total_seconds() // 3600)
        trace = tuple((at(17) + timedelta(hours=h), min_rst) for h in range(hours + 1))
    return Forecast(issued_at=issued, min_rst=min_rst, min_rst_at=at(4, day=16), rst_trace=trace)


def route(*stations: StationObs, fc: Forecast | None = None) -> RouteInput:
    return RouteInput("P1", "Town centre", 1, None, None, tuple(stations), fc)


def text(d: Decision) -> str:
    return " ".join(d.reasons)


# --- the policy setting ------------------------------------------------------------------------------


def test_the_night_ends_at_eight_by_default_and_a_council_may_move_it() -> None:
    assert POLICY.night_end_local == "08:00"
    assert GrittingPolicy.from_mapping({"night_end_local": " 7:30"}).night_end_local == "07:30"


@pytest.mark.parametrize("bad", ["25:00", "08:60", "8am", "0800", "", "08:00:00", 8, None])
def test_a_night_end_that_is_not_a_time_of_day_is_refused_in_plain_words(bad: object) -> None:
    with pytest.raises(ValueError, match=r"night_end_local must be a local time of day .* such as '08:00'"):
        GrittingPolicy(night_end_local=bad)  # type: ignore[arg-type]


def test_a_night_end_from_a_policy_file_must_be_text() -> None:
    with pytest.raises(ValueError, match="night_end_local must be text"):
        GrittingPolicy.from_mapping({"night_end_local": 8})


@pytest.mark.parametrize(
    ("now", "night_end_local", "expected"),
    [
        pytest.param(at(16), "08:00", at(8, day=16), id="evening_runs_to_tomorrow_morning"),
        pytest.param(at(7, 59), "08:00", at(8), id="just_before_the_end_is_still_that_night"),
        pytest.param(at(8), "08:00", at(8, day=16), id="at_the_end_the_next_night_counts"),
        pytest.param(at(10), "08:00", at(8, day=16), id="daytime_looks_at_the_coming_night"),
        # British Summer Time: 08:00 on the clock is 07:00 UTC.
        pytest.param(datetime(2026, 7, 1, 20, tzinfo=UTC), "08:00", datetime(2026, 7, 2, 7, tzinfo=UTC), id="bst"),
        # 29 March 2026 the clocks skip 01:00-02:00: 01:30 falls an hour later on the new clock, 01:30 UTC.
        pytest.param(datetime(2026, 3, 28, 20, tzinfo=UTC), "01:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
                     id="spring_gap"),
    ],
)  # fmt: skip
def test_the_end_of_the_night_is_the_next_local_night_end(
    now: datetime, night_end_local: str, expected: datetime
) -> None:
    policy = GrittingPolicy(night_end_local=night_end_local)
    assert policy.night_end_after(now) == expected


# --- (a) the data must reach the end of the night ----------------------------------------------------


def test_station_data_alone_in_the_evening_is_monitor_not_no_action() -> None:
    d = decide(route(warm_station(EVENING)), EVENING, POLICY)
    assert (d.action, d.rule) == ("monitor", "data_ends_before_night_end")
    assert d.covered_until == at(22)  # the newest reading plus the 6 h station data can cover
    assert "Station readings cover until 22:00; the night runs to 08:00: watch for a forecast or new readings." in (
        d.reasons
    )
    # The "stays above the trigger" sentence no longer ends in a verdict it does not keep.
    assert "no action" not in text(d)
    assert "stays more than 2 °C above the trigger +0.5 °C." in text(d)
    assert d.as_dict()["covered_until"] == "2026-01-15T22:00:00Z"  # the evidence says it too


def test_station_data_that_reaches_the_night_end_still_says_no_action() -> None:
    late = at(3, day=16)  # readings to 03:00 cover to 09:00, past 08:00
    d = decide(route(warm_station(late)), late, POLICY)
    assert (d.action, d.rule) == ("none", "above_monitor_band")
    assert d.covered_until == at(9, day=16) and "no action." in text(d)


def test_a_forecast_curve_that_ends_in_the_night_is_monitor_and_says_until_when() -> None:
    d = decide(route(warm_station(EVENING), fc=warm_forecast(trace_until=at(1, day=16))), EVENING, POLICY)
    assert (d.action, d.rule) == ("monitor", "data_ends_before_night_end")
    assert d.covered_until == at(1, day=16)
    assert (
        "Station readings and the forecast cover until 01:00; the night runs to 08:00: watch for a forecast or new "
        "readings." in d.reasons
    )


def test_a_forecast_curve_past_the_night_end_says_no_action() -> None:
    d = decide(route(warm_station(EVENING), fc=warm_forecast(trace_until=at(12, day=16))), EVENING, POLICY)
    assert (d.action, d.covered_until) == ("none", at(12, day=16))


def test_daytime_with_a_forecast_covering_the_coming_night_stays_no_action() -> None:
    morning = at(10)
    fc = warm_forecast(trace_until=at(17, day=16), issued=at(6))
    d = decide(route(warm_station(morning), fc=fc), morning, POLICY)
    assert d.action == "none"


def test_a_forecast_without_a_curve_covers_as_long_as_the_policy_uses_it() -> None:
    fc = warm_forecast(trace_until=None)  # issued 12:00: used for 24 h, to 12:00 tomorrow
    assert decide(route(fc=fc), EVENING, POLICY).action == "none"
    short = GrittingPolicy(forecast_max_age_hours=18)  # used to 06:00 only
    d = decide(route(fc=fc), EVENING, short)
    assert (d.action, d.covered_until) == ("monitor", at(6, day=16))
    assert "The forecast covers until 06:00; the night runs to 08:00" in text(d)
    # A council whose night ends at 06:00 is covered.
    assert decide(route(fc=fc), EVENING, dataclasses.replace(short, night_end_local="06:00")).action == "none"


def test_treatment_and_monitor_decisions_are_left_as_they_are() -> None:
    # Station data alone at 16:00, +2.0 C: within the monitor band, its own rule and no word on coverage.
    d = decide(route(warm_station(EVENING, rst=2.0)), EVENING, POLICY)
    assert (d.action, d.rule) == ("monitor", "within_monitor_band") and "cover until" not in text(d)
    cold = Forecast(issued_at=at(12), min_rst=-2.0, min_rst_at=at(4, day=16), precipitation="rain",
                    precipitation_start=at(17), precipitation_end=at(18))  # fmt: skip
    d = decide(route(warm_station(EVENING, rst=4.0), fc=cold), EVENING, POLICY)
    assert (d.action, d.rule) == ("precautionary_salt", "wet_road_below_trigger") and "cover until" not in text(d)


def test_a_moving_coverage_does_not_reissue_the_decision() -> None:
    first = decide(route(warm_station(EVENING)), EVENING, POLICY)
    later = at(16, 15)
    second = decide(route(warm_station(later)), later, POLICY)
    assert first.covered_until != second.covered_until
    assert first.material_key() == second.material_key()


def test_a_reissued_monitor_keeps_its_acknowledgement() -> None:
    # Should the evaluator re-issue it (say the policy changed), asking the same keeps the acknowledgement; the
    # store then shows the earlier decision's history, notes included, on the new one (store.chains).
    previous = {"action": "monitor", "spread_rate_g_m2": None, "passes": 1, "spread_type": "dry",
                "call_out_by": None, "status": "acknowledged"}  # fmt: skip
    assert carried_status(previous, previous | {"status": "issued"}, run_out=False) == "acknowledged"


# --- (b) the projection's uncertainty band -------------------------------------------------------------


def outlook(min_rst: float, low_c: float | None, covered_until: datetime | None = at(12, day=16)) -> Outlook:
    return Outlook(min_rst, at(4, day=16), None, "nowcast", 0.7, 3.0, (), covered_until, ("station readings",), low_c)


def test_a_band_reaching_the_trigger_is_monitor_naming_both_figures() -> None:
    held = no_action_held(outlook(3.2, 0.3), EVENING, POLICY)
    assert held is not None
    rule, sentences = held
    assert rule == "band_reaches_trigger"
    assert sentences == [
        "The expected minimum road surface temperature is +3.2 °C, but the low end of its uncertainty band, +0.3 °C, "
        "reaches the trigger +0.5 °C: monitor."
    ]
    assert no_action_held(outlook(3.2, 0.5), EVENING, POLICY) is not None  # at the trigger counts


@pytest.mark.parametrize("low_c", [None, 0.6, 3.2])
def test_no_band_or_a_band_above_the_trigger_leaves_no_action(low_c: float | None) -> None:
    assert no_action_held(outlook(3.2, low_c), EVENING, POLICY) is None


def test_short_data_and_a_wide_band_both_say_so() -> None:
    held = no_action_held(outlook(3.2, -0.4, covered_until=at(22)), EVENING, POLICY)
    assert held is not None
    rule, sentences = held
    assert rule == "data_ends_before_night_end"
    assert sentences[0].startswith("Station readings cover until 22:00") and "-0.4 °C" in sentences[1]


def test_data_that_says_nothing_ahead_is_said_in_words() -> None:
    held = no_action_held(outlook(5.0, None, covered_until=at(15)), EVENING, POLICY)
    assert held == (
        "data_ends_before_night_end",
        [
            "No station readings or forecast cover the rest of the night, which runs to 08:00: watch for a forecast "
            "or new readings."
        ],
    )
