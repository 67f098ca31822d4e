"""Damp and mould risk of a home: the rules, levels, coverage, hysteresis and advice (DOMAIN.md section 2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.damp import Assessment, DampPolicy, PreviousLevel, assess, tenant_advice
from core.physics import dew_point
from core.workdays import case_deadlines

WINTER = datetime(2027, 1, 15, 12, 20, tzinfo=UTC)  # heating season; London is on GMT
SUMMER = datetime(2026, 7, 15, 12, 20, tzinfo=UTC)  # outside it; London is on BST
HOURS = 30 * 24
POLICY = DampPolicy()

Values = float | np.ndarray


def _hours(now: datetime, n: int = HOURS) -> pd.DatetimeIndex:
    """Start times of the n whole hours before the hour containing `now` (the assessment's window)."""
    last = pd.Timestamp(now).floor("h") - pd.Timedelta(hours=1)
    return pd.date_range(end=last, periods=n, freq="h")


def _home(now: datetime, rooms: Mapping[str, tuple[Values, Values]], *, keep: np.ndarray | None = None) -> pd.DataFrame:
    """Hourly readings: per room (temperature, RH), each a constant or an array over the 720 hours, oldest first."""
    ts = _hours(now)
    frames = []
    for room, (t, rh) in rooms.items():
        frame = pd.DataFrame(
            {
                "ts": ts + pd.Timedelta(minutes=10),
                "room": room,
                "temperature": np.broadcast_to(t, HOURS).astype(float),
                "relative_humidity": np.broadcast_to(rh, HOURS).astype(float),
            }
        )
        frames.append(frame if keep is None else frame[keep])
    return pd.concat(frames, ignore_index=True)


def _outdoor(now: datetime, te: Values) -> pd.Series:
    return pd.Series(np.broadcast_to(te, HOURS).astype(float), index=_hours(now))


def _last(n: int, value: float, before: float) -> np.ndarray:
    """An hourly series at `before`, then `value` for the last n hours."""
    out = np.full(HOURS, before)
    out[HOURS - n :] = value
    return out


def _rules(a: Assessment) -> list[str]:
    return [f.rule for f in a.findings]


# ---------------------------------------------------------------------------------------------
# Whole homes


def test_warm_dry_home_is_green() -> None:
    rooms = {"Bedroom": (20.5, 50.0), "Living room": (21.0, 47.0), "Kitchen": (20.0, 55.0)}
    a = assess(_home(WINTER, rooms), WINTER, POLICY, outdoor=_outdoor(WINTER, 5.0))
    assert a.level == "green"
    assert a.findings == ()
    assert a.coverage == 1.0
    assert a.reasons == ("No limit exceeded in any room over the last 30 days.",)
    assert a.advice[0].startswith("The readings from your home are within healthy ranges")


def test_cold_damp_home_is_red_with_reasons_naming_the_rule_and_numbers() -> None:
    rooms = {"Bedroom": (15.0, 80.0), "Living room": (16.0, 70.0)}
    a = assess(_home(WINTER, rooms), WINTER, POLICY, outdoor=_outdoor(WINTER, 4.0))
    assert a.level == "red"
    assert a.worst_room == "Bedroom"
    assert (
        "Bedroom: average humidity 80 % over the last 7 days, above the 75 % weekly limit of Approved Document F."
        in a.reasons
    )
    assert any(
        r.startswith("Bedroom: estimated wall surface humidity averaged above 80 % on 7 days in a row")
        and "BS 5250" in r
        for r in a.reasons
    )
    assert {"adf_week", "adf_month", "bs5250_surface", "cold_home", "mould_index"} <= set(_rules(a))
    assert a.findings[0].level == "red"  # most serious first
    assert "The air in your bedroom has been damp: 80 % humidity on average over the last 7 days." in a.advice
    assert "Conditions on the walls of your bedroom are ones in which mould can start to grow." in a.advice


# ---------------------------------------------------------------------------------------------
# One rule at a time. Outdoor = room temperature puts the wall at room temperature, so surface
# humidity equals room humidity and the surface rules stay quiet unless a test wants them.


def test_week_at_78_percent_is_red_under_adf_weekly_limit() -> None:
    rh = _last(7 * 24, 78.0, before=60.0)  # month mean 64.2 %, under 65 %
    a = assess(_home(SUMMER, {"Bedroom": (20.0, rh)}), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.level == "red"
    assert _rules(a) == ["adf_week"]
    assert a.reasons == (
        "Bedroom: average humidity 78 % over the last 7 days, above the 75 % weekly limit of Approved Document F.",
    )
    assert a.figures["Bedroom"]["rh_mean_week"] == 78.0


def test_week_at_74_percent_is_within_the_weekly_limit() -> None:
    rh = _last(7 * 24, 74.0, before=60.0)
    a = assess(_home(SUMMER, {"Bedroom": (20.0, rh)}), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.level == "green"


def test_month_at_67_percent_is_watch_under_adf_monthly_limit() -> None:
    a = assess(_home(SUMMER, {"Bedroom": (20.0, 67.0)}), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.level == "watch"
    assert _rules(a) == ["adf_month"]
    assert "67 % over the last 30 days, above the 65 % monthly limit" in a.reasons[0]


def test_day_at_90_percent_is_watch_under_adf_daily_limit() -> None:
    rh = _last(24, 90.0, before=60.0)
    a = assess(_home(SUMMER, {"Bathroom": (20.0, rh)}), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.level == "watch"
    assert _rules(a) == ["adf_day"]
    assert "above the 85 % daily limit" in a.reasons[0]


def test_three_hours_above_70_in_12_is_advice_in_the_heating_season() -> None:
    rh = _last(3, 75.0, before=55.0)
    a = assess(_home(WINTER, {"Kitchen": (20.0, rh)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 20.0))
    assert a.level == "advice"
    assert _rules(a) == ["adf_70_in_12h"]
    assert "above 70 % for 3 hours of a 12-hour stretch" in a.reasons[0]


def test_two_hours_above_70_in_12_is_allowed() -> None:
    rh = _last(2, 75.0, before=55.0)
    a = assess(_home(WINTER, {"Kitchen": (20.0, rh)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 20.0))
    assert a.level == "green"


def test_two_hours_above_90_in_12_is_advice() -> None:
    rh = _last(2, 92.0, before=55.0)
    a = assess(_home(WINTER, {"Bathroom": (20.0, rh)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 20.0))
    assert _rules(a) == ["adf_90_in_12h"]
    assert a.level == "advice"


def test_short_spell_rules_are_off_outside_the_heating_season() -> None:
    rh = _last(3, 75.0, before=55.0)
    a = assess(_home(SUMMER, {"Kitchen": (20.0, rh)}), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.level == "green"
    assert any("Outside the heating season (July)" in n for n in a.notes)


def test_worked_example_room_20c_60_percent_outside_0c_gives_wall_15c_at_82_percent() -> None:
    a = assess(_home(WINTER, {"Bedroom": (20.0, 60.0)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 0.0))
    fig = a.figures["Bedroom"]
    assert fig["surface_temperature_min_week"] == 15.0
    assert fig["surface_rh_mean_week"] == 82.2
    assert round(dew_point(20.0, 60.0), 1) == 12.0
    assert fig["condensation_hours_week"] == 0  # 15.0 C wall, 12.0 C dew point
    # 82.2 % every day fails the BS 5250 80 % limit.
    assert a.level == "red"
    assert _rules(a) == ["bs5250_surface"]


def _cold_days(n_days: int) -> np.ndarray:
    """Outdoor 15 C, then 0 C over the last n whole January days before WINTER's day (London = UTC)."""
    te = np.full(HOURS, 15.0)
    ts = _hours(WINTER)
    today = pd.Timestamp(WINTER).floor("D")
    te[(ts >= today - pd.Timedelta(days=n_days)) & (ts < today)] = 0.0
    return te


def test_three_days_in_a_row_of_wall_humidity_above_80_is_red_under_bs5250() -> None:
    a = assess(_home(WINTER, {"Bedroom": (20.0, 60.0)}), WINTER, POLICY, outdoor=_outdoor(WINTER, _cold_days(3)))
    assert _rules(a) == ["bs5250_surface"]
    assert a.level == "red"
    assert a.figures["Bedroom"]["surface_rh_days_in_a_row"] == 3
    assert "on 3 days in a row (highest day 82 %)" in a.reasons[0]


def test_one_day_of_wall_humidity_above_80_is_watch() -> None:
    a = assess(_home(WINTER, {"Bedroom": (20.0, 60.0)}), WINTER, POLICY, outdoor=_outdoor(WINTER, _cold_days(1)))
    assert _rules(a) == ["bs5250_surface"]
    assert a.level == "watch"


def test_seven_hours_of_condensation_is_watch() -> None:
    # Room 20 C / 65 % has its dew point at 13.2 C; outdoor -10 C puts the wall at 12.5 C.
    te = np.full(HOURS, 15.0)
    ts = _hours(WINTER)
    night = pd.Timestamp("2027-01-14 02:00", tz="UTC")
    te[(ts >= night) & (ts < night + pd.Timedelta(hours=7))] = -10.0
    a = assess(_home(WINTER, {"Bedroom": (20.0, 65.0)}), WINTER, POLICY, outdoor=_outdoor(WINTER, te))
    assert a.figures["Bedroom"]["condensation_hours_week"] == 7
    assert _rules(a) == ["condensation"]
    assert a.level == "watch"


@pytest.mark.parametrize(("margin", "hours"), [(-0.1, 7), (0.1, 0)])
def test_condensation_counts_hours_with_the_wall_at_or_below_the_room_dew_point(margin: float, hours: int) -> None:
    # Choose the outdoor temperature that puts the wall just below or just above the dew point.
    ti, rh, f = 20.0, 65.0, POLICY.f_rsi
    tsi = dew_point(ti, rh) + margin
    te = np.full(HOURS, 15.0)
    te[-7:] = (tsi - f * ti) / (1 - f)
    a = assess(_home(WINTER, {"Bedroom": (ti, rh)}), WINTER, POLICY, outdoor=_outdoor(WINTER, te))
    assert a.figures["Bedroom"]["condensation_hours_week"] == hours


_MOULD_ONLY = DampPolicy(
    rh_week_limit=100, rh_month_limit=100, rh_day_limit=100, surface_rh_limit=100, condensation_hours_watch=10_000
)


def test_mould_index_reaching_1_on_the_wall_is_red() -> None:
    # Room 18 C / 85 %, outdoor 5 C: the wall is at 14.75 C and saturated for a month.
    a = assess(_home(SUMMER, {"Bedroom": (18.0, 85.0)}), SUMMER, _MOULD_ONLY, outdoor=_outdoor(SUMMER, 5.0))
    assert _rules(a) == ["mould_index"]
    assert a.level == "red"
    assert a.figures["Bedroom"]["mould_index_peak"] == pytest.approx(1.72, abs=0.01)


def test_mould_index_half_way_to_1_is_watch() -> None:
    rh = _last(10 * 24, 85.0, before=50.0)
    a = assess(_home(SUMMER, {"Bedroom": (18.0, rh)}), SUMMER, _MOULD_ONLY, outdoor=_outdoor(SUMMER, 5.0))
    assert _rules(a) == ["mould_index"]
    assert a.level == "watch"
    assert 0.5 <= (a.figures["Bedroom"]["mould_index_peak"] or 0) < 1.0


def test_home_below_18c_most_of_the_time_in_winter_is_watch() -> None:
    a = assess(_home(WINTER, {"Living room": (16.0, 50.0)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 16.0))
    assert _rules(a) == ["cold_home"]
    assert a.level == "watch"
    assert "below 18 °C for 100 % of hours over the last 7 days (average 16.0 °C)" in a.reasons[0]


def test_cold_home_rule_is_off_in_summer() -> None:
    a = assess(_home(SUMMER, {"Living room": (16.0, 50.0)}), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 16.0))
    assert a.level == "green"


# ---------------------------------------------------------------------------------------------
# Data: coverage, resampling, outdoor temperature


def test_thin_data_is_insufficient_data_never_green() -> None:
    keep = np.arange(HOURS) % 2 == 0  # one hour in two: 50 % coverage
    a = assess(_home(WINTER, {"Bedroom": (21.0, 45.0)}, keep=keep), WINTER, POLICY, outdoor=_outdoor(WINTER, 5.0))
    assert a.level == "insufficient_data"
    assert a.coverage == 0.5
    assert (
        a.reasons[0]
        == "Bedroom: not enough data to judge: readings in 50 % of hours over the last 7 days, 70 % needed."
    )


def test_no_readings_at_all_is_insufficient_data() -> None:
    empty = pd.DataFrame({"ts": [], "room": [], "temperature": [], "relative_humidity": []})
    a = assess(empty, WINTER, POLICY)
    assert a.level == "insufficient_data"
    assert a.worst_room is None
    assert a.reasons == ("No readings from this home in the last 30 days.",)


def test_a_room_without_enough_data_stops_a_home_being_green_but_not_being_red() -> None:
    keep = np.arange(HOURS) % 3 == 0
    quiet = _home(WINTER, {"Kitchen": (20.0, 50.0)}, keep=keep)
    fine = pd.concat([_home(WINTER, {"Bedroom": (21.0, 45.0)}), quiet], ignore_index=True)
    damp = pd.concat([_home(WINTER, {"Bedroom": (16.0, 80.0)}), quiet], ignore_index=True)
    outdoor = _outdoor(WINTER, 5.0)
    assert assess(fine, WINTER, POLICY, outdoor=outdoor).level == "insufficient_data"
    assert assess(damp, WINTER, POLICY, outdoor=outdoor).level == "red"


def test_five_minute_readings_are_averaged_per_hour() -> None:
    ts = pd.date_range(end=pd.Timestamp(SUMMER).floor("h") - pd.Timedelta(minutes=5), periods=HOURS * 12, freq="5min")
    rh = np.where(np.arange(len(ts)) % 2 == 0, 70.0, 86.0)  # hourly means of 78 %
    df = pd.DataFrame({"ts": ts, "room": "Bedroom", "temperature": 20.0, "relative_humidity": rh})
    a = assess(df, SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.figures["Bedroom"]["rh_mean_week"] == 78.0
    assert a.figures["Bedroom"]["coverage_week"] == 1.0
    assert a.level == "red"


def test_impossible_values_are_dropped_not_averaged() -> None:
    df = _home(SUMMER, {"Bedroom": (20.0, 50.0)})
    df.loc[df.index[-5:], "relative_humidity"] = 150.0
    a = assess(df, SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.figures["Bedroom"]["rh_mean_day"] == 50.0


def test_readings_after_now_are_ignored() -> None:
    df = _home(SUMMER, {"Bedroom": (20.0, 50.0)})
    future = pd.DataFrame(
        {
            "ts": [pd.Timestamp(SUMMER) + pd.Timedelta(hours=h) for h in range(1, 49)],
            "room": "Bedroom",
            "temperature": 20.0,
            "relative_humidity": 99.0,
        }
    )
    a = assess(pd.concat([df, future], ignore_index=True), SUMMER, POLICY, outdoor=_outdoor(SUMMER, 20.0))
    assert a.level == "green"


def test_without_outdoor_readings_a_typical_month_is_used_and_said() -> None:
    a = assess(_home(WINTER, {"Bedroom": (20.0, 60.0)}), WINTER, POLICY)
    assert a.outdoor_source == "typical_month"
    assert any("typical outdoor temperature" in n and "January" in n for n in a.notes)
    assert a.figures["Bedroom"]["surface_rh_mean_week"] is not None


def test_policy_without_typical_values_skips_the_wall_rules_and_says_so() -> None:
    policy = DampPolicy(default_outdoor_by_month=None)
    a = assess(_home(WINTER, {"Bedroom": (20.0, 60.0)}), WINTER, policy)
    assert a.outdoor_source == "none"
    assert a.figures["Bedroom"]["surface_rh_mean_week"] is None
    assert a.figures["Bedroom"]["mould_index_peak"] is None
    assert a.level == "green"  # 20 C / 60 % passes every room-air rule
    assert any("Wall surface rules skipped" in n for n in a.notes)


def test_short_outdoor_gaps_are_filled_from_neighbouring_hours() -> None:
    outdoor = _outdoor(WINTER, 0.0).iloc[:-3]  # the last 3 hours missing
    a = assess(_home(WINTER, {"Bedroom": (20.0, 60.0)}), WINTER, POLICY, outdoor=outdoor)
    assert a.outdoor_source == "measured"
    assert a.notes == ()
    assert a.figures["Bedroom"]["surface_rh_mean_week"] == 82.2


def test_naive_times_are_refused() -> None:
    df = _home(WINTER, {"Bedroom": (20.0, 60.0)})
    with pytest.raises(ValueError, match="aware"):
        assess(df, WINTER.replace(tzinfo=None), POLICY)
    df["ts"] = df["ts"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="aware"):
        assess(df, WINTER, POLICY)


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="relative_humidity"):
        assess(pd.DataFrame({"ts": [], "room": [], "temperature": []}), WINTER, POLICY)


# ---------------------------------------------------------------------------------------------
# Hysteresis


def _green_home() -> pd.DataFrame:
    return _home(WINTER, {"Bedroom": (21.0, 45.0)})


def test_a_level_rises_at_once() -> None:
    damp = _home(WINTER, {"Bedroom": (16.0, 80.0)})
    before = PreviousLevel("green", WINTER - timedelta(days=10))
    a = assess(damp, WINTER, POLICY, outdoor=_outdoor(WINTER, 5.0), previous=before)
    assert a.level == "red"
    assert a.state == PreviousLevel("red", WINTER)


def test_hysteresis_holds_red_until_the_readings_have_been_below_for_3_days() -> None:
    red_since = WINTER - timedelta(days=1)
    a = assess(_green_home(), WINTER, POLICY, outdoor=_outdoor(WINTER, 5.0), previous=PreviousLevel("red", red_since))
    assert a.raw_level == "green"
    assert a.level == "red"
    assert a.state == PreviousLevel("red", red_since)
    assert a.reasons[0].startswith("Level held at red: the readings last supported it on Thursday 14 January 12:20")


def test_hysteresis_lets_the_level_down_after_3_days() -> None:
    previous = PreviousLevel("red", WINTER - timedelta(days=3))
    a = assess(_green_home(), WINTER, POLICY, outdoor=_outdoor(WINTER, 5.0), previous=previous)
    assert a.level == "green"
    assert a.state == PreviousLevel("green", WINTER)


def test_a_sensor_going_quiet_keeps_the_previous_state_for_next_time() -> None:
    previous = PreviousLevel("red", WINTER - timedelta(days=1))
    a = assess(_home(WINTER, {"Bedroom": (16.0, 80.0)}, keep=np.arange(HOURS) < 200), WINTER, POLICY, previous=previous)
    assert a.level == "insufficient_data"
    assert a.state == previous


# ---------------------------------------------------------------------------------------------
# Policy


def test_policy_from_mapping_takes_lists_and_numbers() -> None:
    p = DampPolicy.from_mapping({"rh_week_limit": 70, "heating_months": [11, 12, 1, 2], "hold_days": 5})
    assert p.rh_week_limit == 70.0
    assert p.heating_months == (11, 12, 1, 2)
    assert p.hold_days == 5.0


def test_policy_from_mapping_accepts_none_for_typical_outdoor_temperatures() -> None:
    assert DampPolicy.from_mapping({"default_outdoor_by_month": None}).default_outdoor_by_month is None


def test_policy_from_mapping_names_an_unknown_key() -> None:
    with pytest.raises(ValueError, match="'rh_weekly_limit'"):
        DampPolicy.from_mapping({"rh_weekly_limit": 70})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rh_week_limit", "high"),
        ("min_coverage", 1.5),
        ("surface_rh_days", 2.5),
        ("heating_months", [13]),
        ("mould_class", "fungal"),
        ("default_outdoor_by_month", [5.0] * 11),
        ("default_outdoor_by_month", ["cold"] * 12),
        ("f_rsi", 0.0),
        ("hold_days", True),
    ],
)
def test_policy_from_mapping_names_a_bad_value(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key if key != "mould_class" else "fungal"):
        DampPolicy.from_mapping({key: value})


def test_a_stricter_council_policy_changes_the_level() -> None:
    home = _home(SUMMER, {"Bedroom": (20.0, 72.0)})
    outdoor = _outdoor(SUMMER, 20.0)
    assert assess(home, SUMMER, POLICY, outdoor=outdoor).level == "watch"  # month above 65 %
    strict = DampPolicy.from_mapping({"rh_week_limit": 70})
    assert assess(home, SUMMER, strict, outdoor=outdoor).level == "red"


# ---------------------------------------------------------------------------------------------
# Advice and output


def _humid_night(hours: int) -> np.ndarray:
    """55 % RH, but 75 % for `hours` hours from 22:00 on 13 January (the night before WINTER's last night)."""
    ts = _hours(WINTER)
    start = pd.Timestamp("2027-01-13 22:00", tz="UTC")
    return np.where((ts >= start) & (ts < start + pd.Timedelta(hours=hours)), 75.0, 55.0)


def test_tenant_is_told_how_many_hours_their_bedroom_was_humid_last_night() -> None:
    rh = np.roll(_humid_night(9), 24)  # the night of 14 to 15 January
    a = assess(_home(WINTER, {"Bedroom": (20.0, rh)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 20.0))
    assert "Your bedroom was above 70 % humidity for 9 hours last night." in a.advice
    assert a.figures["Bedroom"]["humid_hours_last_night"] == 9
    assert any("extractor fan" in s for s in a.advice)


def test_last_night_is_the_most_recent_whole_night() -> None:
    before_dawn = datetime(2027, 1, 15, 3, 0, tzinfo=UTC)  # the night of 14 to 15 January is not over
    home = _home(before_dawn, {"Bedroom": (20.0, 55.0)})
    home.loc[
        (home["ts"] >= pd.Timestamp("2027-01-13 22:00", tz="UTC"))
        & (home["ts"] < pd.Timestamp("2027-01-14 04:00", tz="UTC")),
        "relative_humidity",
    ] = 75.0
    a = assess(home, before_dawn, POLICY, outdoor=_outdoor(before_dawn, 20.0))
    assert a.figures["Bedroom"]["humid_hours_last_night"] == 6
    later = assess(_home(WINTER, {"Bedroom": (20.0, _humid_night(6))}), WINTER, POLICY, outdoor=_outdoor(WINTER, 20.0))
    assert later.figures["Bedroom"]["humid_hours_last_night"] == 0  # by midday on the 15th, that was two nights ago


def test_advice_never_blames_the_tenant() -> None:
    rooms = {"Bedroom": (15.0, 85.0), "Kitchen": (14.0, 80.0)}
    a = assess(_home(WINTER, rooms), WINTER, POLICY, outdoor=_outdoor(WINTER, 2.0))
    text = " ".join(a.advice).lower()
    for word in ("lifestyle", "you must", "your fault", "stop drying", "you should"):
        assert word not in text
    assert "your landlord" in text  # the landlord finds and fixes causes


def test_tenant_advice_adds_the_landlords_investigation_deadline() -> None:
    a = assess(_home(WINTER, {"Bedroom": (16.0, 80.0)}), WINTER, POLICY, outdoor=_outdoor(WINTER, 5.0))
    aware = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)
    lines = tenant_advice(a, "open", deadline=case_deadlines(aware).investigate_by)
    assert lines[:-1] == list(a.advice)
    assert lines[-1] == "Your landlord has been told and must investigate by Thursday 7 January."


def test_tenant_advice_gives_the_year_when_the_deadline_is_in_another_year() -> None:
    december = datetime(2026, 12, 22, 9, 0, tzinfo=UTC)
    a = assess(_home(december, {"Bedroom": (16.0, 80.0)}), december, POLICY)
    by = case_deadlines(datetime(2026, 12, 21, 10, 0, tzinfo=UTC)).investigate_by
    assert tenant_advice(a, "open", deadline=by)[-1].endswith("by Thursday 7 January 2027.")


def test_tenant_advice_without_a_case_is_the_assessment_advice() -> None:
    a = assess(_green_home(), WINTER, POLICY)
    assert tenant_advice(a, None) == list(a.advice)
    assert tenant_advice(a, "closed")[-1].startswith("Your landlord has closed the case.")


def test_as_dict_is_json_ready() -> None:
    keep = np.arange(HOURS) % 2 == 0
    rooms = _home(WINTER, {"Kitchen": (20.0, 50.0)}, keep=keep)
    home = pd.concat([_home(WINTER, {"Bedroom": (16.0, 80.0)}), rooms], ignore_index=True)
    d = assess(home, WINTER, POLICY, previous=PreviousLevel("green", WINTER - timedelta(days=2))).as_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["level"] == "red"
    assert back["state"] == {"level": "red", "since": "2027-01-15T12:20:00Z"}
    assert back["figures"]["Bedroom"]["rh_mean_week"] == 80.0
    assert back["findings"][0]["level"] == "red"


def test_the_23_hour_day_when_clocks_go_forward_is_a_whole_london_day() -> None:
    now = datetime(2027, 3, 29, 12, 20, tzinfo=UTC)
    ts = _hours(now)
    # London's 28 March runs from 00:00 GMT to 23:00 UTC (BST starts at 01:00 GMT): 23 hours.
    cold = (ts >= pd.Timestamp("2027-03-28 00:00", tz="UTC")) & (ts < pd.Timestamp("2027-03-28 23:00", tz="UTC"))
    outdoor = _outdoor(now, np.where(cold, 0.0, 15.0))
    a = assess(_home(now, {"Bedroom": (20.0, 60.0)}), now, POLICY, outdoor=outdoor)
    assert a.figures["Bedroom"]["surface_rh_days_above_limit"] == 1
    assert a.figures["Bedroom"]["surface_rh_max_day"] == 82.2  # a UTC day would mix in a warm hour
    assert a.level == "watch"
