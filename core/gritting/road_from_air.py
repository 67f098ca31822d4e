"""A road surface temperature forecast derived from an atmospheric forecast, for providers that give none.

Open-Meteo and the Met Office site-specific forecast give air temperature, dew point, cloud (or a weather type)
and wind at 2 m and 10 m, not the temperature of the road. At night a road under a clear sky radiates to space and
falls below the air; under cloud it stays near it; in the day the sun warms it above. How far, hour by hour, is a
property of each site (surface, shelter, traffic), so it is read from the station's own history: the road-minus-air
offset by local hour and cloudiness (fitted by `fit_offsets` from stored readings; the pooled fit of all stations
stands in for a station with too little history, and DEFAULT_OFFSETS for an installation with none). Two physical
corrections follow: wind stronger than WIND_MIXING_MS mixes the air near the road, shrinking a night-time deficit in
proportion; and a road colder than the dew point condenses (or deposits) water, whose latent heat slows its fall
(half the excess below the dew point is kept).

This is a station-calibrated empirical model, not a road energy balance (METRo): it is used only when the provider
has no road temperature, and the decision's reasons name the forecast's source.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from core.gritting._text import utc
from core.gritting.inputs import Forecast, Precipitation

CloudClass = Literal["clear", "partly", "overcast"]
CLOUD_CLASSES: tuple[CloudClass, ...] = ("clear", "partly", "overcast")
ANY = "any"  # the cell of an hour over every cloud class (and hours whose cloud is not known)
WIND_MIXING_MS = 5.0
LATENT_KEEP = 0.5  # of the excess below the dew point, what the road keeps
SNOW_DEPTH_PER_MM_WATER = 7.0  # mm of fresh snow per mm of water (Open-Meteo's own snowfall conversion)
_SEVERITY: dict[str, int] = {"none": 0, "rain": 1, "sleet": 2, "snow": 3, "freezing_rain": 4}


def cloud_class(cover_pct: float | None) -> CloudClass | None:
    """Clear below 30 %, overcast from 70 %, partly cloudy between; None when not known."""
    if cover_pct is None:
        return None
    if cover_pct < 30.0:
        return "clear"
    return "partly" if cover_pct < 70.0 else "overcast"


@dataclass(frozen=True, slots=True)
class HourlyWeather:
    """One hour of a provider's forecast at one place (the hour starting at ts)."""

    ts: datetime
    air_temperature: float
    dew_point: float | None = None
    cloud_cover: float | None = None  # %
    wind_speed: float | None = None  # m/s at 10 m
    precipitation_mm: float | None = None  # in the hour, as water
    snow_mm: float | None = None  # fresh snow in the hour, depth
    precipitation: Precipitation | None = None  # the kind, when the provider says (weather codes)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", utc(self.ts, "forecast hour"))


@dataclass(frozen=True, slots=True)
class OffsetCell:
    """Road minus air, degC (the median of `hours` hourly means)."""

    offset_c: float
    hours: int


@dataclass(frozen=True, slots=True)
class RoadOffsets:
    """Road-minus-air offsets by (local hour 0-23, cloud class or ANY)."""

    cells: Mapping[tuple[int, str], OffsetCell] = field(default_factory=dict)

    @property
    def hours(self) -> int:
        """Hourly means the fit rests on."""
        return sum(c.hours for (_, cloud), c in self.cells.items() if cloud == ANY)


def fit_offsets(samples: Iterable[tuple[int, str | None, float]], *, min_hours: int) -> RoadOffsets:
    """Median road-minus-air per (local hour, cloud class) and per hour over all cloud, from (local hour, cloud class
    or None, road minus air) hourly samples; cells with fewer than min_hours samples are left out."""
    by_cell: dict[tuple[int, str], list[float]] = {}
    for hour, cloud, diff in samples:
        if not 0 <= hour <= 23:
            raise ValueError(f"local hour must be 0 to 23, got {hour}")
        by_cell.setdefault((hour, ANY), []).append(diff)
        if cloud is not None:
            by_cell.setdefault((hour, cloud), []).append(diff)
    return RoadOffsets(
        {
            key: OffsetCell(round(statistics.median(values), 3), len(values))
            for key, values in sorted(by_cell.items())
            if len(values) >= min_hours
        }
    )


def _default(hour: int, cloud: str) -> float:
    """A generic UK road in winter, degC of road above air, when no history says better."""
    if 10 <= hour <= 14:  # the sun warms the road
        return {"clear": 3.0, "partly": 1.5, "overcast": 0.5}.get(cloud, 1.5)
    if 15 <= hour <= 17:  # the road gives back the day's heat
        return {"clear": 0.5, "partly": 0.8, "overcast": 0.8}.get(cloud, 0.7)
    if 7 <= hour <= 9:  # sunrise: the coldest road, warming
        return {"clear": -1.5, "partly": -0.7, "overcast": 0.0}.get(cloud, -0.8)
    return {"clear": -2.0, "partly": -1.0, "overcast": 0.2}.get(cloud, -1.0)  # night: radiative cooling


DEFAULT_OFFSETS = RoadOffsets({(h, c): OffsetCell(_default(h, c), 0) for h in range(24) for c in (*CLOUD_CLASSES, ANY)})


@dataclass(frozen=True, slots=True)
class StationOffsets:
    """What a station's road is known to do against its air: its own fit, and the pooled fit of all stations."""

    own: RoadOffsets | None = None
    pooled: RoadOffsets | None = None


def road_offset(hour: int, cloud: CloudClass | None, params: StationOffsets) -> tuple[float, str]:
    """The offset for this hour and cloud, and its basis: the station's own history for that cloud, the pooled
    history for it, then either for the hour whatever the cloud, then the default."""
    c = cloud or ANY
    steps: list[tuple[RoadOffsets | None, str, str]] = [
        (params.own, c, "station"),
        (params.pooled, c, "pooled"),
        (params.own, ANY, "station"),
        (params.pooled, ANY, "pooled"),
    ]
    for table, key, basis in steps:
        if table is not None and (hour, key) in table.cells:
            return table.cells[(hour, key)].offset_c, basis
    return DEFAULT_OFFSETS.cells[(hour, c)].offset_c, "default"


def road_temperature(w: HourlyWeather, params: StationOffsets, zone: ZoneInfo) -> tuple[float, str]:
    """The road surface temperature for one forecast hour, and the basis of its offset."""
    hour = w.ts.astimezone(zone).hour
    offset, basis = road_offset(hour, cloud_class(w.cloud_cover), params)
    if offset < 0 and w.wind_speed is not None and w.wind_speed > WIND_MIXING_MS:
        offset *= WIND_MIXING_MS / w.wind_speed
    rst = w.air_temperature + offset
    if w.dew_point is not None and rst < w.dew_point:
        rst = w.dew_point - (w.dew_point - rst) * LATENT_KEEP
    return round(rst, 2), basis


def precipitation_kind(w: HourlyWeather) -> Precipitation:
    """What falls in the hour: the provider's own kind, else from the amounts (snow as water against all of it;
    rain with the air at or below 0 C freezes on the road)."""
    if w.precipitation is not None:
        return w.precipitation
    total = w.precipitation_mm or 0.0
    snow_water = (w.snow_mm or 0.0) / SNOW_DEPTH_PER_MM_WATER
    if total < 0.1 and snow_water < 0.05:
        return "none"
    if snow_water >= 0.8 * total:
        return "snow"
    if snow_water > 0.0:
        return "sleet"
    return "freezing_rain" if w.air_temperature <= 0.0 else "rain"


def route_forecast(
    *,
    issued_at: datetime,
    stations: Mapping[str, Sequence[HourlyWeather]],
    offsets: Mapping[str, StationOffsets],
    now: datetime,
    hours: int,
    zone: ZoneInfo,
) -> Forecast | None:
    """A route's road forecast from its stations' hourly weather: each hour's coldest derived road, the worst
    precipitation, and the dew point at the minimum. None when no station has an hour in (now - 1 h, now + hours]."""
    now = utc(now, "now")
    start, end = now - timedelta(hours=1), now + timedelta(hours=hours)
    coldest: dict[datetime, tuple[float, float | None]] = {}
    worst: Precipitation = "none"
    spells: dict[str, list[tuple[datetime, float, float]]] = {}  # station -> [(ts, water mm, snow mm)] of `worst`
    for sid, series in stations.items():
        params = offsets.get(sid, StationOffsets())
        for w in series:
            if not start < w.ts <= end:
                continue
            rst, _ = road_temperature(w, params, zone)
            if w.ts not in coldest or rst < coldest[w.ts][0]:
                coldest[w.ts] = (rst, w.dew_point)
            kind = precipitation_kind(w)
            if _SEVERITY[kind] > _SEVERITY[worst]:
                worst, spells = kind, {}
            if kind == worst and kind != "none":
                spells.setdefault(sid, []).append((w.ts, w.precipitation_mm or 0.0, w.snow_mm or 0.0))
    if not coldest:
        return None
    trace = tuple(sorted((t, v[0]) for t, v in coldest.items()))
    min_at, min_rst = min(trace, key=lambda p: (p[1], p[0]))
    p_mm = p_start = p_end = None
    if worst != "none":
        times = sorted(t for spell in spells.values() for t, _, _ in spell)
        p_start, p_end = times[0], times[-1] + timedelta(hours=1)
        # The wettest station's total: snow as depth (the treatment matrix's "under 10 mm"), the rest as water.
        p_mm = round(max(sum(s if worst == "snow" else w for _, w, s in spell) for spell in spells.values()), 1)
    return Forecast(
        issued_at=issued_at,
        min_rst=min_rst,
        min_rst_at=min_at,
        precipitation=worst,
        precipitation_mm=p_mm,
        precipitation_start=p_start,
        precipitation_end=p_end,
        dew_point=coldest[min_at][1],
        rst_trace=trace,
    )
