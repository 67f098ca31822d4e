"""Psychrometrics for roads and homes (DOMAIN.md section 4): Magnus over water and ice (WMO/Sonntag 1990)."""

from __future__ import annotations

import math

_A_W, _B_W = 17.62, 243.12
_A_I, _B_I = 22.46, 272.62
_E0 = 6.112  # hPa
F_RSI_DWELLING = 0.75  # BRE IP 1/06 temperature factor limit for dwellings


def e_water(t: float) -> float:
    """Saturation vapour pressure over water, hPa (valid -45..60 C)."""
    return _E0 * math.exp(_A_W * t / (_B_W + t))


def e_ice(t: float) -> float:
    """Saturation vapour pressure over ice, hPa (valid -65..0 C)."""
    return _E0 * math.exp(_A_I * t / (_B_I + t))


def vapour_pressure(t: float, rh: float) -> float:
    """Actual vapour pressure, hPa, of air at t C and rh % (relative to water)."""
    return e_water(t) * rh / 100.0


def dew_point(t: float, rh: float) -> float:
    """Dew point, C, of air at t C and rh %."""
    rh = min(max(rh, 0.01), 100.0)
    g = math.log(rh / 100.0) + _A_W * t / (_B_W + t)
    return _B_W * g / (_A_W - g)


def frost_point_from_e(e: float) -> float:
    """Frost point, C, for vapour pressure e hPa (the temperature at which air saturates over ice)."""
    g = math.log(e / _E0)
    return _B_I * g / (_A_I - g)


def frost_point_from_dew_point(td: float) -> float:
    """Frost point, C, of air whose dew point is td C."""
    return frost_point_from_e(e_water(td))


def deposits_frost(surface_t: float, air_e: float) -> bool:
    """True when a surface at surface_t C collects frost from air with vapour pressure air_e hPa."""
    return surface_t <= 0.0 and air_e >= e_ice(surface_t)


def rh_at(t_from: float, rh_from: float, t_to: float) -> float:
    """RH % (relative to water) of the same air brought to t_to C, capped at 100."""
    return min(100.0, rh_from * e_water(t_from) / e_water(t_to))


def surface_temperature(t_inside: float, t_outside: float, f_rsi: float = F_RSI_DWELLING) -> float:
    """Internal surface temperature, C, from the temperature factor: Tsi = Te + fRsi (Ti - Te)."""
    return t_outside + f_rsi * (t_inside - t_outside)
