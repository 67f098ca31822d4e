"""Weather forecast providers' answers, read into hourly weather (core.gritting.road_from_air.HourlyWeather).

- Open-Meteo forecast API (`/v1/forecast`, no key): `hourly` arrays of temperature_2m, dew_point_2m,
  cloud_cover, wind_speed_10m, precipitation, snowfall under `hourly.time`, with `hourly_units`; one object per
  location, or a list of them when several coordinates are asked for at once; `{"error": true, "reason": ...}`
  when it refuses the request.
- Met Office Weather DataHub site-specific forecast (`/sitespecific/v0/point/hourly`, `apikey` header): a GeoJSON
  FeatureCollection whose feature has `properties.modelRunDate` and `properties.timeSeries`, hourly entries with
  `time`, screenTemperature, screenDewPointTemperature, windSpeed10m (m/s), totalPrecipAmount and totalSnowAmount
  (mm), and significantWeatherCode (the kind of weather, which stands in for cloud: it has no cloud cover).

Anything else is refused with ProviderError, saying what is wrong, so a provider answering garbage is reported
rather than read as a mild night.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.gritting.inputs import Precipitation
from core.gritting.road_from_air import HourlyWeather

OPEN_METEO_HOURLY = ("temperature_2m", "dew_point_2m", "cloud_cover", "wind_speed_10m", "precipitation", "snowfall")
_OPEN_METEO_UNITS = {
    "temperature_2m": ("°C",),
    "dew_point_2m": ("°C",),
    "cloud_cover": ("%",),
    "wind_speed_10m": ("m/s",),
    "precipitation": ("mm",),
    "snowfall": ("cm",),
}


class ProviderError(ValueError):
    """A provider's answer that cannot be used, and why."""


def open_meteo_query(positions: Sequence[tuple[float, float]], *, hours: int) -> dict[str, str]:
    """Query parameters for the hourly forecast at these (longitude, latitude) positions, in UTC and m/s."""
    if not positions:
        raise ValueError("no positions to ask for")
    return {
        "latitude": ",".join(f"{lat:.4f}" for _, lat in positions),
        "longitude": ",".join(f"{lon:.4f}" for lon, _ in positions),
        "hourly": ",".join(OPEN_METEO_HOURLY),
        "wind_speed_unit": "ms",
        "timezone": "GMT",
        "timeformat": "iso8601",
        "forecast_days": str(min(16, 1 + math.ceil(hours / 24))),
    }


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProviderError(f"{what} is not a number: {value!r}")
    return float(value)


def _plausible(value: float | None, low: float, high: float, what: str) -> float | None:
    if value is not None and not low <= value <= high:
        raise ProviderError(f"{what} {value:g} is outside {low:g} to {high:g}")
    return value


def parse_open_meteo(doc: Any, *, expected: int) -> list[list[HourlyWeather]]:
    """Each location's hourly weather, in the order asked for; ProviderError when the answer is not usable."""
    if isinstance(doc, dict) and doc.get("error"):
        raise ProviderError(f"Open-Meteo refused the request: {doc.get('reason') or 'no reason given'}")
    items = doc if isinstance(doc, list) else [doc]
    if len(items) != expected:
        raise ProviderError(f"asked for {expected} locations, got {len(items)}")
    return [_open_meteo_location(item, i) for i, item in enumerate(items)]


def _open_meteo_location(item: Any, index: int) -> list[HourlyWeather]:
    where = f"location {index + 1}"
    if not isinstance(item, dict) or not isinstance(item.get("hourly"), dict):
        raise ProviderError(f"{where}: no 'hourly' object")
    hourly, units = item["hourly"], item.get("hourly_units") or {}
    offset = _number(item.get("utc_offset_seconds", 0), f"{where} utc_offset_seconds") or 0.0
    times = hourly.get("time")
    if not isinstance(times, list) or not times:
        raise ProviderError(f"{where}: 'hourly.time' is missing or empty")
    columns: dict[str, list[Any]] = {}
    for name in OPEN_METEO_HOURLY:
        values = hourly.get(name)
        if not isinstance(values, list) or len(values) != len(times):
            raise ProviderError(f"{where}: 'hourly.{name}' is missing or not as long as 'hourly.time'")
        unit = units.get(name)
        if unit is not None and unit not in _OPEN_METEO_UNITS[name]:
            raise ProviderError(f"{where}: {name} is in {unit!r}, expected {_OPEN_METEO_UNITS[name][0]!r}")
        columns[name] = values
    out: list[HourlyWeather] = []
    for i, stamp in enumerate(times):
        if not isinstance(stamp, str):
            raise ProviderError(f"{where}: time {stamp!r} is not text")
        try:
            local = datetime.fromisoformat(stamp)
        except ValueError:
            raise ProviderError(f"{where}: time {stamp!r} is not an ISO 8601 time") from None
        ts = (local - timedelta(seconds=offset)).replace(tzinfo=UTC) if local.tzinfo is None else local.astimezone(UTC)
        what = f"{where} at {stamp}"
        air = _plausible(_number(columns["temperature_2m"][i], f"{what} temperature_2m"), -60, 60, "air temperature")
        if air is None:  # the model's horizon ends before the requested days do
            continue
        snow_cm = _plausible(_number(columns["snowfall"][i], f"{what} snowfall"), 0, 100, "snowfall (cm)")
        out.append(
            HourlyWeather(
                ts=ts,
                air_temperature=air,
                dew_point=_plausible(_number(columns["dew_point_2m"][i], f"{what} dew_point_2m"), -80, 60, "dew point"),
                cloud_cover=_plausible(_number(columns["cloud_cover"][i], f"{what} cloud_cover"), 0, 100, "cloud"),
                wind_speed=_plausible(_number(columns["wind_speed_10m"][i], f"{what} wind_speed_10m"), 0, 120, "wind"),
                precipitation_mm=_plausible(
                    _number(columns["precipitation"][i], f"{what} precipitation"), 0, 500, "rain"
                ),
                snow_mm=None if snow_cm is None else snow_cm * 10.0,
            )
        )
    if not out:
        raise ProviderError(f"{where}: no hour has an air temperature")
    return out


def met_office_query(position: tuple[float, float]) -> dict[str, str]:
    """Query parameters for the hourly site-specific forecast at one (longitude, latitude) position."""
    lon, lat = position
    return {
        "latitude": f"{lat:.4f}",
        "longitude": f"{lon:.4f}",
        "excludeParameterMetadata": "true",
        "includeLocationName": "true",
        "dataSource": "BD1",
    }


# significantWeatherCode -> (cloud cover % it stands for, precipitation kind); -1 is trace rain, 4 is not used.
_MET_OFFICE_WEATHER: dict[int, tuple[float, Precipitation]] = {
    -1: (90.0, "rain"),
    0: (5.0, "none"),  # clear night
    1: (5.0, "none"),  # sunny day
    2: (50.0, "none"),  # partly cloudy (night)
    3: (50.0, "none"),  # partly cloudy (day)
    5: (90.0, "none"),  # mist
    6: (100.0, "none"),  # fog
    7: (80.0, "none"),  # cloudy
    8: (100.0, "none"),  # overcast
    **{code: (90.0, "rain") for code in (9, 10, 11, 12, 13, 14, 15, 28, 29, 30)},  # showers, drizzle, rain, thunder
    **{code: (90.0, "sleet") for code in (16, 17, 18)},
    **{code: (90.0, "snow") for code in (19, 20, 21)},  # hail: as snow for treatment
    **{code: (90.0, "snow") for code in range(22, 28)},
}


def parse_met_office(doc: Any) -> tuple[datetime | None, list[HourlyWeather]]:
    """(the model run time, the hourly weather) of one site; ProviderError when the answer is not usable."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ProviderError("not a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features or not isinstance(features[0], dict):
        raise ProviderError("the FeatureCollection has no features")
    props = features[0].get("properties")
    if not isinstance(props, dict):
        raise ProviderError("the feature has no properties")
    run = _time(props["modelRunDate"], "modelRunDate") if props.get("modelRunDate") else None
    series = props.get("timeSeries")
    if not isinstance(series, list) or not series:
        raise ProviderError("properties.timeSeries is missing or empty")
    out: list[HourlyWeather] = []
    for i, step in enumerate(series):
        if not isinstance(step, dict):
            raise ProviderError(f"timeSeries[{i}] is not an object")
        what = f"timeSeries[{i}]"
        ts = _time(step.get("time"), f"{what}.time")
        air = _plausible(
            _number(step.get("screenTemperature"), f"{what}.screenTemperature"), -60, 60, "air temperature"
        )
        if air is None:
            raise ProviderError(f"{what} has no screenTemperature")
        code = step.get("significantWeatherCode")  # without one, road_from_air judges the kind from the amounts
        cloud, kind = _MET_OFFICE_WEATHER.get(code, (None, None)) if isinstance(code, int) else (None, None)
        rain = _plausible(_number(step.get("totalPrecipAmount"), f"{what}.totalPrecipAmount"), 0, 500, "rain")
        snow = _plausible(_number(step.get("totalSnowAmount"), f"{what}.totalSnowAmount"), 0, 500, "snow")
        if kind == "rain" and air <= 0.0:
            kind = "freezing_rain"
        out.append(
            HourlyWeather(
                ts=ts,
                air_temperature=air,
                dew_point=_plausible(
                    _number(step.get("screenDewPointTemperature"), f"{what}.screenDewPointTemperature"),
                    -80,
                    60,
                    "dew point",
                ),
                cloud_cover=cloud,
                wind_speed=_plausible(_number(step.get("windSpeed10m"), f"{what}.windSpeed10m"), 0, 120, "wind"),
                precipitation_mm=rain,
                snow_mm=snow,
                precipitation=kind,
            )
        )
    return run, out


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ProviderError(f"{what} is not a time: {value!r}")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ProviderError(f"{what} {value!r} is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        raise ProviderError(f"{what} {value!r} has no time zone")
    return ts.astimezone(UTC)
