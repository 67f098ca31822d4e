"""The station-only RST nowcast: damped night cooling, honest confidence, and bad data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.gritting import GrittingPolicy, StationSample, nowcast
from core.physics import frost_point_from_dew_point

NOW = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
POLICY = GrittingPolicy()


def samples(
    start: float,
    rate_c_per_h: float,
    *,
    dew: float | None = None,
    air: float | None = None,
    hours: float = 3.0,
    step_min: int = 10,
    end: datetime = NOW,
) -> list[StationSample]:
    n = int(hours * 60 / step_min) + 1
    out = []
    for i in range(n):
        back_h = (n - 1 - i) * step_min / 60.0
        out.append(
            StationSample(
                ts=end - timedelta(hours=back_h),
                road_surface_temperature=start - rate_c_per_h * back_h,
                dew_point=dew,
                air_temperature=air,
            )
        )
    return out


def test_clear_night_cooling_is_damped_at_the_frost_point_not_a_straight_line() -> None:
    # +3 C falling 1.5 C/h: a straight line would reach -6 C in 6 h. The air's frost point stops it.
    dew = -4.0
    frost_point = frost_point_from_dew_point(dew)
    nc = nowcast(samples(3.0, -1.5, dew=dew), NOW, POLICY)
    assert nc.usable and nc.trend_c_per_h == pytest.approx(-1.5)
    assert nc.floor_c == pytest.approx(frost_point - POLICY.nowcast_overshoot_c)
    assert nc.min_rst is not None and frost_point - 0.5 <= nc.min_rst < 0.0
    for h in range(1, 7):
        rst = nc.rst_at(NOW + timedelta(hours=h))
        assert rst is not None and rst >= frost_point - 0.5
        assert rst > 3.0 - 1.5 * h  # above the straight line
    assert "frost point" in nc.floor_basis


def test_very_fast_cooling_still_stops_just_below_the_frost_point() -> None:
    dew = -2.0
    nc = nowcast(samples(1.0, -3.0, dew=dew), NOW, POLICY)  # a straight line would reach -17 C
    assert nc.min_rst is not None
    assert frost_point_from_dew_point(dew) - 0.5 <= nc.min_rst < frost_point_from_dew_point(dew)


def test_cooling_rate_near_now_follows_the_observed_trend() -> None:
    nc = nowcast(samples(3.0, -1.0, dew=-8.0), NOW, POLICY)
    rst = nc.rst_at(NOW + timedelta(minutes=30))
    assert rst is not None and rst == pytest.approx(2.5, abs=0.1)


def test_without_a_dew_point_savage_night_cooling_still_damps_the_fall() -> None:
    nc = nowcast(samples(3.0, -1.0), NOW, POLICY)
    k = POLICY.night_cooling_b / (24 - POLICY.day_length_hours)
    assert nc.rate_per_h == pytest.approx(k)
    assert nc.min_rst is not None and nc.min_rst > 3.0 - 6.0  # above the straight line's -3 C


def test_air_temperature_bounds_the_fall_when_there_is_no_dew_point() -> None:
    nc = nowcast(samples(3.0, -1.5, air=2.0), NOW, POLICY)
    assert nc.min_rst is not None and nc.min_rst >= 2.0 - POLICY.surface_below_air_max_c
    assert "air temperature" in nc.floor_basis


def test_trigger_time_is_projected_and_rounded_down_to_the_minute() -> None:
    nc = nowcast(samples(2.0, -1.0, dew=-6.0), NOW, POLICY)
    assert nc.trigger_at is not None
    assert NOW + timedelta(hours=1.5) < nc.trigger_at < NOW + timedelta(hours=2.5)
    assert nc.trigger_at.second == 0 and nc.trigger_at.microsecond == 0


def test_confidence_falls_with_horizon_and_is_zero_beyond_six_hours() -> None:
    nc = nowcast(samples(3.0, -0.5, dew=-6.0), NOW, POLICY)
    c = [nc.confidence_at(NOW + timedelta(hours=h)) for h in (0, 1, 3, 4.5, 6, 6.5)]
    assert c[0] > c[1] > c[2] > c[3] > c[4] > 0.0
    assert c[2] >= 0.6  # the end of the credible horizon
    assert c[4] <= 0.35  # the end of the degraded horizon
    assert c[5] == 0.0
    assert nc.rst_at(NOW + timedelta(hours=6.5)) is None


def test_rising_trend_projects_no_fall_and_no_trigger() -> None:
    nc = nowcast(samples(2.0, 0.6, dew=-3.0), NOW, POLICY)
    assert nc.trend_c_per_h == pytest.approx(0.6)
    assert nc.trigger_at is None
    assert nc.min_rst == 2.0


def test_too_few_samples_give_no_trend_but_hold_the_last_reading() -> None:
    nc = nowcast(samples(1.0, -1.0, hours=0.2, step_min=6), NOW, POLICY)
    assert not nc.usable
    assert nc.rst_now == 1.0 and nc.min_rst == 1.0
    assert any("no trend" in n for n in nc.notes)
    good = nowcast(samples(1.0, -1.0), NOW, POLICY)
    assert nc.confidence_at(NOW) < good.confidence_at(NOW)


def test_stale_data_is_said_and_lowers_confidence() -> None:
    fresh = nowcast(samples(3.0, -0.5, dew=-5.0), NOW, POLICY)
    last = NOW - timedelta(minutes=90)
    stale = nowcast(samples(3.0, -0.5, dew=-5.0, end=last), NOW, POLICY)
    assert stale.stale and not fresh.stale
    assert any("90 minutes old" in n for n in stale.notes)
    # Lower even at the same distance from the newest reading, not only because it is further ahead.
    assert stale.confidence_at(last + timedelta(hours=1)) < fresh.confidence_at(NOW + timedelta(hours=1))
    assert stale.confidence_at(NOW + timedelta(hours=1)) < fresh.confidence_at(NOW + timedelta(hours=1))


def test_readings_too_old_are_not_used() -> None:
    nc = nowcast(samples(3.0, -0.5, end=NOW - timedelta(hours=4)), NOW, POLICY)
    assert nc.rst_now is None and not nc.usable
    assert nc.confidence_at(NOW) == 0.0
    assert any("too old" in n for n in nc.notes)


def test_a_gap_breaks_the_trend_and_only_later_readings_count() -> None:
    before = samples(8.0, 0.0, hours=1.0, end=NOW - timedelta(hours=2))  # warm and flat, then a 90-min gap
    after = samples(3.0, -1.0, hours=0.5, step_min=5)
    nc = nowcast(before + after, NOW, POLICY)
    assert nc.trend_c_per_h == pytest.approx(-1.0)
    assert nc.samples_used == len(after)
    assert any("gap" in n for n in nc.notes)


def test_no_readings_gives_an_empty_nowcast_that_says_so() -> None:
    nc = nowcast([StationSample(ts=NOW, air_temperature=2.0)], NOW, POLICY)
    assert nc.rst_now is None and nc.confidence_at(NOW) == 0.0
    assert nc.notes == ("no road surface temperature readings",)


def test_already_below_the_trigger_reports_when_it_crossed() -> None:
    pts = samples(-0.5, -0.5, dew=-3.0)  # +1.0 C three hours ago, -0.5 C now
    nc = nowcast(pts, NOW, POLICY)
    assert nc.trigger_at is not None and nc.trigger_at <= NOW - timedelta(minutes=50)


def test_scattered_readings_lower_confidence_and_say_so() -> None:
    clean = samples(3.0, -0.5, dew=-5.0)
    noisy = [
        StationSample(ts=x.ts, road_surface_temperature=(x.road_surface_temperature or 0.0) + (0.8 if i % 2 else -0.8))
        for i, x in enumerate(clean)
    ]
    a, b = nowcast(clean, NOW, POLICY), nowcast(noisy, NOW, POLICY)
    assert any("scatter" in n for n in b.notes)
    assert b.confidence_at(NOW + timedelta(hours=1)) < a.confidence_at(NOW + timedelta(hours=1))
