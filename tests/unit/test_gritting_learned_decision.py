"""The live gritting decision on the learned nowcast (issue 13): the night's minimum and band from the projection,
when it reaches the trigger, what it learned from in words, the coverage of 15 h, and the physics fallback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core.gritting import Decision, GrittingPolicy, RouteInput, StationObs, StationSample, decide, learned
from core.gritting.stations import learned_confidence

POLICY = GrittingPolicy()
MODEL = learned.load_default()


def at(hour: int, minute: int = 0, day: int = 15, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)  # January: London time is UTC


def station(now: datetime, rst: float, fall_per_h: float, *, air_gap: float = 2.0) -> StationObs:
    """Three hours of readings every 10 minutes ending at `now` with the road at `rst`, falling steadily."""
    samples = []
    for m in range(180, -1, -10):
        r = rst + fall_per_h * m / 60
        samples.append(
            StationSample(now - timedelta(minutes=m), r, air_temperature=r + air_gap, dew_point=r - 3.0,
                          surface_state="dry")
        )  # fmt: skip
    return StationObs("RS-08", tuple(samples), "Wolcott (8)", lat=52.2, lon=-1.6)


def route(*stations: StationObs) -> RouteInput:
    return RouteInput("P1", "Town centre", 1, None, None, tuple(stations), None)


def text(d: Decision) -> str:
    return " ".join(d.reasons)


def curve(obs: StationObs, now: datetime, model: learned.NowcastModel) -> learned.Projection:
    p = learned.project(model, learned.series_from_samples(obs.station_id, obs.samples, lat=obs.lat, lon=obs.lon), now)
    assert p is not None
    return p


def interpolate(hours: float, p: learned.Projection, values: tuple[float, ...]) -> float:
    xs, ys = [0.0, *map(float, p.horizons)], [p.rst_now, *values]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
        if hours <= x1:
            return y0 + (y1 - y0) * (hours - x0) / (x1 - x0)
    return ys[-1]


def test_the_night_minimum_and_its_band_come_from_the_projection_up_to_the_night_end() -> None:
    now = at(20)  # 12 h to 08:00: within the model's 15 h
    obs = station(now, 3.0, 0.4)
    p = curve(obs, now, MODEL)
    d = decide(route(obs), now, POLICY, nowcast_model=MODEL)
    assert d.min_rst == pytest.approx(interpolate(12.0, p, p.min_c), abs=0.01)
    assert d.min_rst == pytest.approx(p.min_c[p.horizons.index(12)], abs=0.01)
    low, high = p.low_c[p.horizons.index(12)], p.high_c[p.horizons.index(12)]
    assert f"likely between {low:+.1f} and {high:+.1f} °C" in text(d)
    assert d.covered_until == at(8, day=16)
    assert "learned nowcast" in text(d) and "nowcast learned from stations' nights" in d.reasons[-1]
    assert 0.2 <= d.confidence <= 0.9


def test_trigger_time_is_where_the_projected_minima_first_reach_the_trigger() -> None:
    now = at(17)
    obs = station(now, 4.0, 0.8)
    p = curve(obs, now, MODEL)
    d = decide(route(obs), now, POLICY, nowcast_model=MODEL)
    assert d.action == "precautionary_salt" and d.trigger_at is not None and d.min_rst is not None
    assert d.min_rst <= POLICY.trigger_rst_c
    hours = (d.trigger_at - now).total_seconds() / 3600
    # At the trigger time the curve is at the trigger (to the minute), and above it a few minutes before.
    assert interpolate(hours, p, p.min_c) == pytest.approx(POLICY.trigger_rst_c, abs=0.05)
    assert interpolate(hours - 0.2, p, p.min_c) > POLICY.trigger_rst_c
    assert f"reaches +0.5 °C at {d.trigger_at:%H:%M}" in text(d)


def test_a_new_station_is_told_it_rests_on_the_pooled_nights() -> None:
    now = at(20)
    d = decide(route(station(now, 3.0, 0.4)), now, POLICY, nowcast_model=MODEL)
    stations = MODEL.trained_on["stations"]
    assert (
        f"Learned from nights pooled over {stations} stations until Wolcott (8) station's own nights count."
        in d.reasons
    )


def own_learning(now: datetime, nights: int) -> learned.StationLearning:
    """A station with its own nights: five remembered evenings at 20:00 like tonight, falling 3.1 C further by
    12 h (2 C by 9 h), and one unlike it (a far warmer road)."""
    drops = (0.5, 0.8, 1.0, 1.2, 1.6, 2.0, 3.1, 3.3)
    like = [(now.timestamp() - 86400 * k, 20.0, 3.2, -0.4, 2.1, *drops) for k in range(1, 6)]
    unlike = [(now.timestamp() - 86400 * 6, 20.0, 12.0, -0.4, 2.0, *(d + 5 for d in drops))]
    return learned.StationLearning(nights, tuple(0.0 for _ in MODEL.horizons), tuple(like + unlike))


def test_a_station_with_its_own_nights_says_so_and_what_like_evenings_did() -> None:
    now = at(20)
    model = dataclasses.replace(MODEL, stations={"RS-08": own_learning(now, 23)})
    d = decide(route(station(now, 3.0, 0.4)), now, POLICY, nowcast_model=model)
    stations = MODEL.trained_on["stations"]
    assert f"Learned from 23 nights at Wolcott (8) station and {stations} stations' nights pooled." in d.reasons
    # The minimum is projected for the end of the night or near it: the horizon nearest is 12 h (08:00).
    similar = [r for r in d.reasons if r.startswith("On ")]
    assert d.min_rst_at is not None
    ahead = (d.min_rst_at - now).total_seconds() / 3600
    nearest = min(MODEL.horizons, key=lambda h: (abs(h - ahead), h))
    j = MODEL.horizons.index(nearest)
    fall = 3.1 if nearest == 12 else own_learning(now, 23).memory[0][5 + j]
    by = (now + timedelta(hours=nearest)).strftime("%H:%M")
    assert similar == [f"On 5 evenings like this one Wolcott (8) station fell a further {fall:.1f} °C by {by}."]
    # More nights of its own: more confidence in the same band.
    fewer = decide(route(station(now, 3.0, 0.4)), now, POLICY, nowcast_model=MODEL)
    assert d.confidence > fewer.confidence


def test_beyond_the_models_fifteen_hours_the_coverage_rule_holds_no_action() -> None:
    now = at(16)  # 16 h to 08:00 tomorrow; the model looks 15 h ahead, to 07:00
    d = decide(route(station(now, 15.0, 0.0)), now, POLICY, nowcast_model=MODEL)
    assert d.action == "monitor" and d.rule == "data_ends_before_night_end"
    assert d.covered_until == now + timedelta(hours=15)
    assert "learned nowcast" in text(d)
    assert "Station readings cover until 07:00; the night runs to 08:00" in text(d)


def test_by_day_the_learned_model_speaks_too_it_learned_every_hour_of_the_day() -> None:
    # Learned from evenings and nights only, the trees laid a night's fall onto the morning and were worse than
    # persistence by day; learned from every hour (learned.LEARN_HOURS), they know the sun warms the road. At
    # 10:00 a warm road is projected to stay warm through the day, and the coverage rule still holds no action.
    assert learned.LEARN_HOURS == tuple(range(24))
    now = at(10)
    obs = station(now, 9.0, 0.0)
    p = curve(obs, now, MODEL)
    assert min(p.min_c[: p.horizons.index(6) + 1]) > 5.0  # no night's fall before 16:00
    d = decide(route(obs), now, POLICY, nowcast_model=MODEL)
    assert "learned nowcast" in text(d)
    # 15 h ahead reaches 01:00, short of the night's end: never "no action" on it
    assert d.covered_until == now + timedelta(hours=15) and d.action == "monitor"


@pytest.mark.parametrize("model", [MODEL, None], ids=["learned", "physics"])
def test_a_june_afternoon_is_no_action_not_monitor(model: learned.NowcastModel | None) -> None:
    now = at(15, month=6)
    d = decide(route(station(now, 30.0, -0.5)), now, POLICY, nowcast_model=model)
    assert d.action == "none" and d.rule == "above_monitor_band", text(d)
    assert "no action" in text(d)


def test_a_winter_road_that_could_still_reach_the_trigger_is_held_at_monitor_in_the_day() -> None:
    now = at(10)
    warm = POLICY.trigger_rst_c + learned.MAX_DROP_C - 0.5  # a large enough fall reaches the trigger
    d = decide(route(station(now, warm, 0.0)), now, POLICY, nowcast_model=MODEL)
    assert d.action == "monitor" and d.rule == "data_ends_before_night_end"


def test_without_a_model_the_physics_nowcast_decides() -> None:
    now = at(20)
    obs = station(now, 3.0, 0.4)
    physics = decide(route(obs), now, POLICY)
    assert physics == decide(route(obs), now, POLICY, nowcast_model=None)
    assert "learned" not in text(physics).lower() and "the nowcast gets to" in text(physics)
    assert physics.covered_until == now + timedelta(hours=POLICY.nowcast_degraded_hours)


def test_a_station_without_a_reading_in_the_last_three_hours_to_project_from_falls_back() -> None:
    now = at(20)
    obs = station(now + timedelta(minutes=5), 3.0, 0.4)  # its clock a little ahead: no reading at or before now
    obs = dataclasses.replace(obs, samples=obs.samples[-1:])
    d = decide(route(obs), now, POLICY, nowcast_model=MODEL)
    assert "learned" not in text(d).lower()
    assert "+3.0 °C at 20:05 but has too few recent readings for a trend" in text(d)


def test_confidence_narrows_with_the_band_and_grows_with_the_stations_own_nights() -> None:
    assert learned_confidence(2.0, 0, 5.0) == pytest.approx(0.75 * 0.85, abs=1e-3)
    assert learned_confidence(4.0, 0, 5.0) == pytest.approx(0.5 * 0.85, abs=1e-3)
    assert learned_confidence(4.0, 5, 5.0) == pytest.approx(0.5 * 0.925, abs=1e-3)
    assert learned_confidence(20.0, 0, 5.0) == pytest.approx(0.2 * 0.85, abs=1e-3)
    assert learned_confidence(0.0, 10_000, 5.0) == pytest.approx(0.9, abs=1e-3)


def test_a_decision_seconds_or_minutes_after_the_newest_reading_projects_from_that_reading() -> None:
    # The model was fitted on issue times at readings: a reading 5 s old is as fresh as one 0 s old, and the
    # projection (and its trigger time) does not jump between them.
    now = at(17)
    obs = station(now, 4.0, 0.8)
    first = decide(route(obs), now, POLICY, nowcast_model=MODEL)
    for later in (timedelta(seconds=5), timedelta(minutes=9)):
        d = decide(route(obs), now + later, POLICY, nowcast_model=MODEL)
        assert (d.action, d.trigger_at, d.min_rst, d.min_rst_at) == (
            first.action, first.trigger_at, first.min_rst, first.min_rst_at
        )  # fmt: skip


def test_a_station_with_one_reading_after_a_gap_is_projected_not_held() -> None:
    """A sparse feed (one road reading in the last hour after a two-hour gap) is still projected from that reading
    and the hour, as the model was trained: holding it (+9 °C all night) said 'no action' on a Colorado night that
    reached -0.8 °C."""
    now = at(20)
    obs = station(now, 9.0, 0.0)
    obs = dataclasses.replace(obs, samples=(obs.samples[0], obs.samples[-1]))  # 17:00 and 20:00, nothing between
    d = decide(route(obs), now, POLICY, nowcast_model=MODEL)
    assert "the learned nowcast gets to" in text(d)
    assert d.min_rst is not None and d.min_rst < 9.0
