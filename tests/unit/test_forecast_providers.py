"""Provider answers read into hourly weather, and garbage refused with the reason."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.gritting.providers import (
    ProviderError,
    met_office_query,
    open_meteo_query,
    parse_met_office,
    parse_open_meteo,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "forecasts"


def _load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_open_meteo_two_locations_are_read_in_order_in_utc_with_snow_as_depth():
    first, second = parse_open_meteo(_load("open_meteo_two_locations.json"), expected=2)
    assert len(first) == 71 and len(second) == 72  # hour 70 of the first is null: left out
    h0 = first[0]
    assert h0.ts == datetime(2026, 1, 14, 0, tzinfo=UTC)
    assert h0.air_temperature == pytest.approx(-1.2) and h0.dew_point == pytest.approx(-2.0)
    assert h0.cloud_cover == 10 and h0.wind_speed == pytest.approx(1.8)
    snowy = next(h for h in first if h.ts == datetime(2026, 1, 15, 20, tzinfo=UTC))
    assert snowy.snow_mm == pytest.approx(4.9) and snowy.precipitation_mm == pytest.approx(0.7)
    assert snowy.precipitation is None  # Open-Meteo gives amounts, not a kind


def test_open_meteo_one_location_is_a_single_object():
    (only,) = parse_open_meteo(_load("open_meteo_one_location.json"), expected=1)
    assert only[0].ts == datetime(2026, 1, 14, 0, tzinfo=UTC)


def test_open_meteo_local_times_are_moved_to_utc_by_the_offset_it_gives():
    doc = _load("open_meteo_one_location.json")
    doc["utc_offset_seconds"] = 3600
    (only,) = parse_open_meteo(doc, expected=1)
    assert only[0].ts == datetime(2026, 1, 13, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (
            lambda d: {"error": True, "reason": "Latitude must be in range of -90 to 90°. Given: 520.0."},
            "Latitude must",
        ),
        (lambda d: "<html>Bad gateway</html>", "no 'hourly' object"),
        (lambda d: d.pop("hourly") and d, "no 'hourly' object"),
        (lambda d: d["hourly"]["dew_point_2m"].pop() and d, "not as long as"),
        (lambda d: d["hourly_units"].update(temperature_2m="°F") or d, "expected '°C'"),
        (lambda d: d["hourly_units"].update(wind_speed_10m="km/h") or d, "expected 'm/s'"),
        (lambda d: d["hourly"]["temperature_2m"].__setitem__(3, "cold") or d, "not a number"),
        (lambda d: d["hourly"]["temperature_2m"].__setitem__(3, 99.0) or d, "outside -60 to 60"),
        (lambda d: d["hourly"]["time"].__setitem__(0, "yesterday") or d, "not an ISO 8601 time"),
    ],
)
def test_open_meteo_garbage_is_refused_with_the_reason(spoil, words):
    doc = spoil(copy.deepcopy(_load("open_meteo_one_location.json")))
    with pytest.raises(ProviderError, match=words.replace("(", r"\(").replace(".", r"\.")):
        parse_open_meteo(doc, expected=1)


def test_open_meteo_wrong_number_of_locations_is_refused():
    with pytest.raises(ProviderError, match="asked for 3 locations, got 2"):
        parse_open_meteo(_load("open_meteo_two_locations.json"), expected=3)


def test_open_meteo_query_asks_for_the_hourly_parameters_in_utc_and_metres_per_second():
    q = open_meteo_query([(-1.916, 52.4714), (-2.005, 52.378)], hours=36)
    assert q["latitude"] == "52.4714,52.3780" and q["longitude"] == "-1.9160,-2.0050"
    assert q["hourly"] == "temperature_2m,dew_point_2m,cloud_cover,wind_speed_10m,precipitation,snowfall"
    assert q["wind_speed_unit"] == "ms" and q["timezone"] == "GMT" and q["forecast_days"] == "3"


def test_met_office_site_specific_hourly_is_read_with_run_time_cloud_and_kind_from_the_weather_code():
    run, hours = parse_met_office(_load("met_office_hourly.json"))
    assert run == datetime(2026, 1, 14, 0, tzinfo=UTC)
    assert len(hours) == 48 and hours[0].ts == datetime(2026, 1, 14, 1, tzinfo=UTC)
    clear_night = hours[0]
    assert clear_night.cloud_cover == 5.0 and clear_night.precipitation == "none"
    rain = next(h for h in hours if h.ts == datetime(2026, 1, 15, 16, tzinfo=UTC))
    assert rain.precipitation == "rain" and rain.precipitation_mm == pytest.approx(0.6)
    snow = next(h for h in hours if h.ts == datetime(2026, 1, 15, 20, tzinfo=UTC))
    assert snow.precipitation == "snow" and snow.snow_mm == pytest.approx(4.9)
    assert met_office_query((-1.916, 52.4714))["latitude"] == "52.4714"


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda d: [], "not a GeoJSON FeatureCollection"),
        (lambda d: d.update(features=[]) or d, "has no features"),
        (lambda d: d["features"][0]["properties"].pop("timeSeries") and d, "timeSeries is missing"),
        (
            lambda d: d["features"][0]["properties"]["timeSeries"][2].pop("screenTemperature") and d,
            "no screenTemperature",
        ),
        (
            lambda d: d["features"][0]["properties"]["timeSeries"][2].update(time="2026-01-14T03:00") or d,
            "no time zone",
        ),
        (lambda d: d["features"][0]["properties"]["timeSeries"][2].update(windSpeed10m=-4) or d, "outside 0 to 120"),
    ],
)
def test_met_office_garbage_is_refused_with_the_reason(spoil, words):
    with pytest.raises(ProviderError, match=words):
        parse_met_office(spoil(copy.deepcopy(_load("met_office_hourly.json"))))


def test_rain_at_or_below_freezing_is_freezing_rain():
    doc = _load("met_office_hourly.json")
    step = doc["features"][0]["properties"]["timeSeries"][0]
    step.update(significantWeatherCode=12, screenTemperature=-0.5, totalPrecipAmount=0.4)
    _, hours = parse_met_office(doc)
    assert hours[0].precipitation == "freezing_rain"
