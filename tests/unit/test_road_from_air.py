"""Road surface temperature derived from forecast air temperature, dew point, cloud and wind, with what each
station's history says about its road against its air."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.gritting import GrittingPolicy, RouteInput, decide
from core.gritting.road_from_air import (
    ANY,
    HourlyWeather,
    OffsetCell,
    RoadOffsets,
    StationOffsets,
    fit_offsets,
    precipitation_kind,
    road_offset,
    road_temperature,
    route_forecast,
)

LONDON = ZoneInfo("Europe/London")
NIGHT = datetime(2026, 1, 15, 3, tzinfo=UTC)  # 03:00 in London in January


def hour(ts=NIGHT, air=1.0, dew=-3.0, cloud=10.0, wind=1.0, **kw):
    return HourlyWeather(ts=ts, air_temperature=air, dew_point=dew, cloud_cover=cloud, wind_speed=wind, **kw)


def test_a_clear_calm_night_puts_the_road_below_the_air_and_cloud_keeps_it_near():
    clear, _ = road_temperature(hour(cloud=5.0), StationOffsets(), LONDON)
    overcast, _ = road_temperature(hour(cloud=100.0), StationOffsets(), LONDON)
    assert clear == pytest.approx(-1.0)  # 1.0 + the default clear-night offset of -2.0
    assert overcast > clear and overcast == pytest.approx(1.2)


def test_the_station_own_history_wins_then_the_pooled_then_the_default():
    own = RoadOffsets({(3, "clear"): OffsetCell(-3.5, 60), (3, ANY): OffsetCell(-2.5, 120)})
    pooled = RoadOffsets({(3, "clear"): OffsetCell(-1.2, 900), (4, ANY): OffsetCell(-0.9, 900)})
    assert road_offset(3, "clear", StationOffsets(own, pooled)) == (-3.5, "station")
    assert road_offset(3, "overcast", StationOffsets(own, pooled)) == (-2.5, "station")  # own hour, any cloud
    assert road_offset(3, "clear", StationOffsets(None, pooled)) == (-1.2, "pooled")
    assert road_offset(4, "clear", StationOffsets(own, pooled)) == (-0.9, "pooled")
    assert road_offset(5, "clear", StationOffsets(own, pooled)) == (-2.0, "default")
    cold, basis = road_temperature(hour(), StationOffsets(own, pooled), LONDON)
    assert (cold, basis) == (pytest.approx(-2.5), "station")  # 1.0 - 3.5, still above the dew point -3.0


def test_wind_mixes_the_air_and_shrinks_the_night_deficit():
    calm, _ = road_temperature(hour(wind=2.0), StationOffsets(), LONDON)
    windy, _ = road_temperature(hour(wind=10.0), StationOffsets(), LONDON)
    assert calm == pytest.approx(-1.0) and windy == pytest.approx(0.0)  # -2.0 * 5/10


def test_below_the_dew_point_latent_heat_slows_the_fall():
    dry, _ = road_temperature(hour(dew=-6.0), StationOffsets(), LONDON)
    moist, _ = road_temperature(hour(dew=0.0), StationOffsets(), LONDON)
    assert dry == pytest.approx(-1.0)
    assert moist == pytest.approx(-0.5)  # -1.0 is 1.0 below the dew point 0.0: half of it kept


def test_fit_offsets_takes_medians_per_hour_and_cloud_and_leaves_thin_cells_out():
    samples = [(3, "clear", -3.0)] * 5 + [(3, "clear", -1.0)] * 4 + [(3, "overcast", 0.5)] * 2 + [(3, None, 9.0)]
    fit = fit_offsets(samples, min_hours=3)
    assert fit.cells[(3, "clear")] == OffsetCell(-3.0, 9)
    assert (3, "overcast") not in fit.cells  # two hours are not enough
    assert fit.cells[(3, ANY)].hours == 12 and fit.hours == 12
    with pytest.raises(ValueError, match="local hour"):
        fit_offsets([(24, None, 0.0)], min_hours=1)


def test_precipitation_kind_from_amounts_when_the_provider_gives_no_kind():
    assert precipitation_kind(hour(precipitation_mm=0.0, snow_mm=0.0)) == "none"
    assert precipitation_kind(hour(air=3.0, precipitation_mm=1.0, snow_mm=0.0)) == "rain"
    assert precipitation_kind(hour(air=-0.5, precipitation_mm=1.0, snow_mm=0.0)) == "freezing_rain"
    assert precipitation_kind(hour(air=-1.0, precipitation_mm=1.0, snow_mm=7.0)) == "snow"
    assert precipitation_kind(hour(air=0.5, precipitation_mm=1.0, snow_mm=3.0)) == "sleet"
    assert precipitation_kind(hour(precipitation="snow")) == "snow"


def test_a_route_forecast_takes_each_hour_coldest_station_and_the_worst_precipitation():
    now = datetime(2026, 1, 14, 18, tzinfo=UTC)
    a = [hour(ts=now + timedelta(hours=h), air=4.0 - 0.5 * h, dew=-5.0) for h in range(1, 13)]
    b = [hour(ts=now + timedelta(hours=h), air=3.0 - 0.4 * h, dew=-5.0, cloud=100.0) for h in range(1, 13)]
    b[6] = hour(ts=b[6].ts, air=b[6].air_temperature, dew=-5.0, cloud=100.0, precipitation_mm=1.0, snow_mm=8.0)
    b[7] = hour(ts=b[7].ts, air=b[7].air_temperature, dew=-5.0, cloud=100.0, precipitation_mm=1.0, snow_mm=9.0)
    fc = route_forecast(issued_at=now, stations={"a": a, "b": b}, offsets={}, now=now, hours=12, zone=LONDON)
    assert fc is not None and len(fc.rst_trace) == 12
    assert fc.min_rst == pytest.approx(-4.0) and fc.min_rst_at == now + timedelta(hours=12)  # a: -2.0 + -2.0
    assert fc.precipitation == "snow" and fc.precipitation_mm == pytest.approx(17.0)
    assert fc.precipitation_start == now + timedelta(hours=7) and fc.precipitation_end == now + timedelta(hours=9)
    assert fc.dew_point == -5.0
    assert (
        route_forecast(issued_at=now, stations={"a": a}, offsets={}, now=now + timedelta(days=2), hours=6, zone=LONDON)
        is None
    )


def test_the_derived_forecast_feeds_the_decision_and_leads_over_the_nowcast():
    now = datetime(2026, 1, 14, 17, tzinfo=UTC)
    series = [hour(ts=now + timedelta(hours=h), air=3.0 - 0.5 * h, dew=-6.0, cloud=5.0) for h in range(1, 15)]
    fc = route_forecast(issued_at=now, stations={"s": series}, offsets={}, now=now, hours=14, zone=LONDON)
    d = decide(RouteInput(route_id="R1", name="R1", forecast=fc), now, GrittingPolicy())
    assert d.action in ("precautionary_salt", "salt")
    assert any("forecast" in r.lower() for r in d.reasons)
