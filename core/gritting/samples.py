"""Which of a road weather station's stored readings the gritting rules see, and how. Pure.

The store gives one row per reading time with every metric the rules use (store.gritting.station_samples);
here each row becomes a StationSample, or is left out:
- a missing dew point is derived from the air temperature and the relative humidity (CONTRACT.md allows it);
- a surface state that is not one of core.metrics.SURFACE_STATES (whatever its case or spaces) is dropped, as
  if the station had not said;
- a row left with nothing the rules read (no road, air or dew-point temperature, no surface state, no freezing
  point: a humidity alone, say) is left out, so it does not count as a reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.gritting.inputs import StationObs, StationSample
from core.metrics import SURFACE_STATES
from core.physics import dew_point

# (ts, road_surface_temperature, air_temperature, dew_point, surface_state, freezing_point, relative_humidity)
Sample = tuple[datetime, float | None, float | None, float | None, str | None, float | None, float | None]


def station_sample(row: Sample) -> StationSample | None:
    """One stored row as the rules see it; None when it holds nothing they read."""
    ts, rst, air, dew, state, fp, rh = row
    if dew is None and air is not None and rh is not None and rh > 0:
        dew = dew_point(air, rh)
    if state is not None and state.strip().lower() not in SURFACE_STATES:
        state = None
    if rst is None and air is None and dew is None and state is None and fp is None:
        return None
    return StationSample(ts, rst, air, dew, state, fp)


def station_obs(
    station_id: str,
    rows: Iterable[Sample],
    name: str | None = None,
    position: tuple[float, float] | None = None,
) -> StationObs:
    """A station's stored rows (and its registry name and position, when known) as the rules take them."""
    samples = tuple(s for s in map(station_sample, rows) if s is not None)
    lat, lon = position if position is not None else (None, None)
    return StationObs(station_id, samples, name, lat=lat, lon=lon)
