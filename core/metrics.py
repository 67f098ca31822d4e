"""The metric vocabulary of CONTRACT.md: stored units, physical ranges and unit conversions."""

from __future__ import annotations

import math
from dataclasses import dataclass

SURFACE_STATES = frozenset({"dry", "damp", "wet", "frost", "ice", "snow"})


@dataclass(frozen=True, slots=True)
class Metric:
    """A stored metric: its unit and the physically possible range of its values."""

    name: str
    unit: str
    low: float = -math.inf
    high: float = math.inf
    categories: frozenset[str] | None = None


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("road_surface_temperature", "degC", -60.0, 80.0),
        Metric("air_temperature", "degC", -60.0, 60.0),
        Metric("dew_point", "degC", -80.0, 60.0),
        Metric("surface_state", "state", categories=SURFACE_STATES),
        Metric("freezing_point", "degC", -60.0, 5.0),
        Metric("temperature", "degC", -40.0, 80.0),
        Metric("relative_humidity", "%", 0.0, 100.0),
        Metric("battery", "%", 0.0, 100.0),
        Metric("battery_voltage", "V", 0.0, 60.0),
        Metric("water_film_height", "mm", 0.0, 50.0),
        Metric("precipitation_rate", "mm/h", 0.0, 500.0),
        Metric("pressure", "hPa", 300.0, 1100.0),
        Metric("illuminance", "lx", 0.0, 200000.0),
        Metric("co2", "ppm", 0.0, 40000.0),
        Metric("rssi", "dBm", -200.0, 20.0),
    )
}

# Units we accept and how to turn them into the stored unit: (metric family, unit) -> (metric, fn)
_TEMPERATURE_METRICS = frozenset(
    {"road_surface_temperature", "air_temperature", "dew_point", "freezing_point", "temperature"}
)


def f_to_c(value: float) -> float:
    """Degrees Fahrenheit to Celsius."""
    return (value - 32.0) * 5.0 / 9.0


def convert(metric: str, value: float, unit: str | None) -> tuple[str, float]:
    """Return (stored metric, value in stored unit) for a value given in `unit`; raise ValueError if unknown."""
    if unit is None or unit == "":
        return metric, value
    u = unit.strip()
    ul = u.lower()
    if metric in _TEMPERATURE_METRICS:
        if ul in ("c", "degc", "cel", "°c", "celsius"):
            return metric, value
        if ul in ("f", "degf", "°f", "fahrenheit"):
            return metric, f_to_c(value)
        if ul in ("k", "kelvin"):
            return metric, value - 273.15
    elif metric == "relative_humidity":
        if ul in ("%", "%rh", "percent", "pct"):
            return metric, value
        if ul in ("/", "1", "ratio"):  # SenML: fraction 0..1
            return metric, value * 100.0
    elif metric in ("battery", "battery_voltage"):
        if ul in ("%", "%el", "percent", "pct"):
            return "battery", value
        if ul in ("v", "volt", "volts"):
            return "battery_voltage", value
        if ul in ("mv", "millivolt", "millivolts"):
            return "battery_voltage", value / 1000.0
    else:
        known = METRICS.get(metric)
        if known is not None and ul == known.unit.lower():
            return metric, value
        if metric == "pressure" and ul == "kpa":
            return metric, value * 10.0
        if metric == "pressure" and ul == "pa":
            return metric, value / 100.0
    raise ValueError(f"unknown unit {unit!r} for {metric}")


def check_value(metric: str, value: object) -> str | None:
    """Return why a value cannot be stored for a metric, or None when it can."""
    spec = METRICS.get(metric)
    if spec is None:
        return f"unknown metric {metric!r}"
    if spec.categories is not None:
        if not isinstance(value, str):
            return f"{metric} must be one of {', '.join(sorted(spec.categories))}, got {value!r}"
        if value.lower() not in spec.categories:
            return f"{metric} {value!r} is not one of {', '.join(sorted(spec.categories))}"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{metric} must be a number, got {type(value).__name__} {_short(value)}"
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return f"{metric} {value} is not a finite number"
    if v < spec.low or v > spec.high:
        return f"{metric} {v:g} {spec.unit} is outside the physical range {spec.low:g} to {spec.high:g} {spec.unit}"
    return None


def _short(value: object) -> str:
    if isinstance(value, (dict, list)):
        return f"a {'JSON object' if isinstance(value, dict) else 'JSON array'}"  # repr of deep nesting recurses
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
