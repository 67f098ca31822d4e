"""What a gritting decision is made from: station readings, a road forecast, and the route."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from core.gritting._text import utc
from core.metrics import SURFACE_STATES

Precipitation = Literal["none", "rain", "sleet", "snow", "freezing_rain"]
PRECIPITATION: frozenset[str] = frozenset(get_args(Precipitation))


def _finite(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class StationSample:
    """What one road weather station reported at one time; any value may be missing."""

    ts: datetime
    road_surface_temperature: float | None = None
    air_temperature: float | None = None
    dew_point: float | None = None
    surface_state: str | None = None  # one of core.metrics.SURFACE_STATES
    freezing_point: float | None = None  # of the water on the road: residual salt lowers it

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", utc(self.ts, "sample ts"))
        for name in ("road_surface_temperature", "air_temperature", "dew_point", "freezing_point"):
            _finite(getattr(self, name), name)
        if self.surface_state is not None:
            state = self.surface_state.strip().lower()
            if state not in SURFACE_STATES:
                allowed = ", ".join(sorted(SURFACE_STATES))
                raise ValueError(f"surface_state {self.surface_state!r} is not one of {allowed}")
            object.__setattr__(self, "surface_state", state)


@dataclass(frozen=True, slots=True)
class StationObs:
    """One station's recent readings (the last few hours), oldest first."""

    station_id: str
    samples: tuple[StationSample, ...] = ()
    name: str | None = None  # what people call it (the registry's name); reasons use it rather than the id
    # Where it stands (degrees): the learned nowcast's sun features (when the road stops being warmed) need it.
    lat: float | None = None
    lon: float | None = None

    def __post_init__(self) -> None:
        # Callers promise time order; sorting here costs nothing and removes a class of bugs.
        object.__setattr__(self, "samples", tuple(sorted(self.samples, key=lambda s: s.ts)))
        for name, bound in (("lat", 90.0), ("lon", 180.0)):
            value = getattr(self, name)
            _finite(value, f"station {self.station_id} {name}")
            if value is not None and abs(value) > bound:
                raise ValueError(f"station {self.station_id} {name} must be within ±{bound:g} degrees, got {value!r}")


@dataclass(frozen=True, slots=True)
class Forecast:
    """A road weather forecast for a route; when given, it leads over the station nowcast."""

    issued_at: datetime
    min_rst: float | None = None
    min_rst_at: datetime | None = None
    precipitation: Precipitation = "none"
    precipitation_mm: float | None = None  # snow: the forecast amount the matrix means by "< 10 mm"
    precipitation_start: datetime | None = None
    precipitation_end: datetime | None = None
    dew_point: float | None = None  # near the time of the minimum, when the provider gives it
    rst_trace: tuple[tuple[datetime, float], ...] = ()  # forecast RST curve, when the provider gives it

    def __post_init__(self) -> None:
        object.__setattr__(self, "issued_at", utc(self.issued_at, "forecast issued_at"))
        for name in ("min_rst_at", "precipitation_start", "precipitation_end"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value, f"forecast {name}"))
        if self.precipitation not in PRECIPITATION:
            allowed = ", ".join(sorted(PRECIPITATION))
            raise ValueError(f"forecast precipitation {self.precipitation!r} is not one of {allowed}")
        if (self.min_rst is None) != (self.min_rst_at is None):
            raise ValueError("forecast min_rst and min_rst_at must be given together")
        for name in ("min_rst", "precipitation_mm", "dew_point"):
            _finite(getattr(self, name), f"forecast {name}")
        if self.precipitation_mm is not None and self.precipitation_mm < 0:
            raise ValueError(f"forecast precipitation_mm must not be negative, got {self.precipitation_mm!r}")
        if (
            self.precipitation_start is not None
            and self.precipitation_end is not None
            and self.precipitation_end < self.precipitation_start
        ):
            raise ValueError("forecast precipitation_end is before precipitation_start")
        trace = tuple(sorted((utc(t, "forecast rst_trace time"), float(v)) for t, v in self.rst_trace))
        for _, v in trace:
            _finite(v, "forecast rst_trace value")
        object.__setattr__(self, "rst_trace", trace)


@dataclass(frozen=True, slots=True)
class RouteInput:
    """One precautionary salting route: its stations, its forecast, and how long it takes to treat."""

    route_id: str
    name: str = ""
    priority: int = 1
    treatment_minutes: int | None = None  # None: the policy default
    mobilisation_minutes: int | None = None  # None: the policy default
    stations: tuple[StationObs, ...] = ()
    forecast: Forecast | None = None

    def __post_init__(self) -> None:
        if self.treatment_minutes is not None and self.treatment_minutes <= 0:
            raise ValueError(f"route {self.route_id} treatment_minutes must be positive")
        if self.mobilisation_minutes is not None and self.mobilisation_minutes < 0:
            raise ValueError(f"route {self.route_id} mobilisation_minutes must not be negative")
