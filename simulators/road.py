"""A road weather station (ice-prediction outstation) as a pure function of simulated time, with named scenarios.

Temperatures follow a day curve (cosine rise from sunrise to a mid-afternoon maximum, fall to
sunset) and Savage's (2015) night cooling T(t) = Tn + (Tss - Tn) exp(-b (t - tss) / (24 - D)),
b = 2.2, D = day length, with the cooling clock slowed while it rains or snows (cloud and water
hold heat). Rain wets the road, which dries afterwards (wet -> damp -> dry); a wet or damp road at
or below its freezing point is ice; a dry road collects frost when at or below 0 C and the air's
vapour pressure reaches saturation over ice (core.physics.deposits_frost). Every night of a
scenario is the same night, so 'freezes_at_0200' freezes at 02:00 local time every night.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core import physics
from simulators import Noise, seed_of

B_SAVAGE = 2.2
DEFAULT_ZONE = "Europe/London"
BIRMINGHAM = (52.48, -1.90)  # lat, lon: the demo registry's city
DEFAULT_INTERVAL = timedelta(minutes=10)  # UK outstations report every 10 to 20 minutes

_RANK = {"dry": 0, "damp": 1, "wet": 2, "snow": 3}


@dataclass(frozen=True, slots=True)
class Curve:
    """One temperature through a day and night: afternoon maximum, value at sunset, night asymptote Tn.

    Give either `night_min` (Tn) or `target` = (hour, value): Tn is then solved so the night curve
    passes `value` at `hour` (local clock hours from the evening's midnight: 26.0 is 02:00 next morning).
    """

    day_max: float
    sunset: float
    night_min: float | None = None
    target: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A night at a road weather station. Hours are local clock hours of the evening's day (12 to 36)."""

    name: str
    description: str
    air: Curve
    rst: Curve
    dew_point: float  # the air's moisture as a dew point; capped so RH stays below 97 %
    rain: tuple[tuple[float, float], ...] = ()
    snow: tuple[float, float] | None = None
    snow_lies_until: float | None = None
    wet_hours: float = 2.0  # the road stays wet this long after rain (or melting snow) ends
    damp_hours: float = 3.0  # then damp this long, then dry
    wet_cooling: float = 0.4  # the cooling clock's rate while it rains or snows
    residual_freezing_point: float = 0.0  # freezing point of the surface water from old salt; rain washes it to 0


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "freezes_at_0200",
            "Rain in the afternoon leaves the road wet all night; clear skies after dark; RST reaches 0 C at 02:00.",
            air=Curve(day_max=6.5, sunset=6.0, target=(26.0, 1.2)),
            rst=Curve(day_max=7.5, sunset=7.0, target=(26.0, 0.0)),
            dew_point=0.5,
            rain=((13.0, 16.5),),
            wet_hours=14.0,
            damp_hours=3.0,
        ),
        Scenario(
            "warm_night",
            "Cloudy, mild and breezy with light evening rain; RST stays above +7 C.",
            air=Curve(day_max=11.0, sunset=10.0, night_min=8.0),
            rst=Curve(day_max=11.5, sunset=10.5, night_min=7.5),
            dew_point=7.5,
            rain=((20.0, 23.0),),
            wet_hours=3.0,
            damp_hours=3.0,
        ),
        Scenario(
            "dry_cold",
            "Dry road and dry air; RST falls to about +1 C by dawn with the dew point near -5 C: no frost.",
            air=Curve(day_max=6.0, sunset=4.5, target=(31.0, 2.0)),
            rst=Curve(day_max=7.0, sunset=4.0, target=(31.0, 1.0)),
            dew_point=-5.0,
        ),
        Scenario(
            "snow",
            "Snow from 19:00 to midnight, lying until 10:00, then melting; RST near -2 C.",
            air=Curve(day_max=1.5, sunset=1.0, night_min=-2.0),
            rst=Curve(day_max=2.0, sunset=1.5, night_min=-3.0),
            dew_point=0.0,
            snow=(19.0, 24.0),
            snow_lies_until=34.0,
            wet_hours=3.0,
            damp_hours=3.0,
            wet_cooling=0.5,
        ),
        Scenario(
            "deep_freeze",
            "Clear, still and very cold; dry road falling to -8 C by dawn with hoar frost late in the night.",
            air=Curve(day_max=-2.0, sunset=-3.0, target=(31.0, -6.5)),
            rst=Curve(day_max=-1.0, sunset=-2.5, target=(31.0, -8.0)),
            dew_point=-7.0,
        ),
        Scenario(
            "rain_then_freeze",
            "Rain 17:00-22:00 slows the cooling and washes residual salt off; skies clear and the wet road freezes.",
            air=Curve(day_max=7.0, sunset=6.5, night_min=-1.5),
            rst=Curve(day_max=8.0, sunset=7.5, night_min=-4.0),
            dew_point=4.0,
            rain=((17.0, 22.0),),
            wet_hours=6.0,
            damp_hours=4.0,
            wet_cooling=0.3,
            residual_freezing_point=-1.0,
        ),
        Scenario(
            "hoar_frost",
            "Clear calm night, dry road; RST about -2.5 C at dawn with moist air: hoar frost after about 03:00.",
            air=Curve(day_max=5.0, sunset=3.5, target=(31.0, 0.5)),
            rst=Curve(day_max=6.0, sunset=3.0, target=(31.0, -2.5)),
            dew_point=-1.0,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class RoadState:
    """What the station measures at one time."""

    ts: datetime
    road_surface_temperature: float
    air_temperature: float
    dew_point: float
    relative_humidity: float
    surface_state: str
    freezing_point: float


def day_length(d: date, lat: float) -> float:
    """Hours from sunrise to sunset on date d at latitude lat (solar declination approximation)."""
    decl = math.radians(-23.44 * math.cos(2 * math.pi * (d.timetuple().tm_yday + 10) / 365.0))
    x = -math.tan(math.radians(lat)) * math.tan(decl)
    return 2.0 * math.degrees(math.acos(max(-1.0, min(1.0, x)))) / 15.0


def solar_noon(d: date, lon: float) -> datetime:
    """Approximate solar noon (UTC) on date d at longitude lon (equation of time ignored)."""
    return datetime.combine(d, time(12), UTC) - timedelta(hours=lon / 15.0)


def sun_times(d: date, lat: float, lon: float) -> tuple[datetime, datetime]:
    """(sunrise, sunset) in UTC on date d."""
    half = timedelta(hours=day_length(d, lat) / 2.0)
    noon = solar_noon(d, lon)
    return noon - half, noon + half


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600.0


def _overlap(windows: list[tuple[datetime, datetime]], a: datetime, b: datetime) -> float:
    total = 0.0
    for s, e in windows:
        lo, hi = max(s, a), min(e, b)
        if hi > lo:
            total += _hours(lo, hi)
    return total


@dataclass(frozen=True, slots=True)
class _Day:
    """One scenario day, from local noon to the next local noon, in absolute time."""

    d: date
    sunrise: datetime
    sunset: datetime
    next_sunrise: datetime
    tmax: datetime
    night_hours: float  # 24 - D
    slow: tuple[tuple[datetime, datetime], ...]  # rain and snow: cooling clock slowed
    rain: tuple[tuple[datetime, datetime], ...]
    water: tuple[tuple[datetime, datetime, datetime, datetime], ...]  # (start, wet_from, damp_from, dry_from)
    snow_until: datetime | None
    tn_air: float
    tn_rst: float


class RoadStation:
    """A simulated road weather station: state_at(t) and values_at(t) are pure functions of t."""

    def __init__(
        self,
        scenario: str | Scenario = "freezes_at_0200",
        *,
        seed: object = 0,
        lat: float = BIRMINGHAM[0],
        lon: float = BIRMINGHAM[1],
        zone: str = DEFAULT_ZONE,
        freezing_point: bool = False,
        noise: float = 1.0,
    ) -> None:
        if isinstance(scenario, str):
            if scenario not in SCENARIOS:
                raise ValueError(f"unknown road scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
            scenario = SCENARIOS[scenario]
        self.scenario = scenario
        self.lat, self.lon = lat, lon
        self.zone = ZoneInfo(zone)
        self.report_freezing_point = freezing_point
        self.noise = noise
        self._n_rst = Noise(seed, "rst")
        self._n_air = Noise(seed, "air")
        self._n_rh = Noise(seed, "rh")
        self._days: dict[date, _Day] = {}
        self._lock = threading.Lock()

    # -- scenario days ------------------------------------------------------------------------------

    def _at(self, d: date, hour: float) -> datetime:
        """Local clock `hour` counted from midnight starting date d, as UTC (earlier time when ambiguous)."""
        local = datetime.combine(d, time(0)) + timedelta(hours=hour)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def _anchor(self, t: datetime) -> date:
        local = t.astimezone(self.zone)
        return local.date() if local.hour >= 12 else local.date() - timedelta(days=1)

    def _day(self, d: date) -> _Day:
        day = self._days.get(d)
        if day is None:
            day = self._make_day(d)
            with self._lock:
                if len(self._days) > 64:
                    self._days.clear()
                self._days[d] = day
        return day

    def _make_day(self, d: date) -> _Day:
        s = self.scenario
        sunrise, sunset = sun_times(d, self.lat, self.lon)
        next_sunrise, _ = sun_times(d + timedelta(days=1), self.lat, self.lon)
        tmax = min(solar_noon(d, self.lon) + timedelta(hours=2), sunset - timedelta(hours=1))
        night_hours = 24.0 - day_length(d, self.lat)
        rain = tuple((self._at(d, a), self._at(d, b)) for a, b in s.rain)
        slow = list(rain)
        water: list[tuple[datetime, datetime, datetime, datetime]] = []
        wet, damp = timedelta(hours=s.wet_hours), timedelta(hours=s.damp_hours)
        for a, b in rain:
            water.append((a, a, b + wet, b + wet + damp))
        snow_until = None
        if s.snow is not None:
            a, b = self._at(d, s.snow[0]), self._at(d, s.snow[1])
            slow.append((a, b))
            snow_until = self._at(d, s.snow_lies_until if s.snow_lies_until is not None else s.snow[1])
            water.append((a, snow_until, snow_until + wet, snow_until + wet + damp))

        def tau(t: datetime) -> float:
            return _hours(sunset, t) - (1.0 - s.wet_cooling) * _overlap(slow, sunset, t)

        def solve(c: Curve) -> float:
            if c.target is None:
                return c.night_min if c.night_min is not None else c.sunset - 5.0
            hour, value = c.target
            t = min(max(self._at(d, hour), sunset + timedelta(minutes=30)), next_sunrise)
            e = math.exp(-B_SAVAGE * tau(t) / night_hours)
            return (value - c.sunset * e) / (1.0 - e)

        return _Day(
            d=d,
            sunrise=sunrise,
            sunset=sunset,
            next_sunrise=next_sunrise,
            tmax=tmax,
            night_hours=night_hours,
            slow=tuple(slow),
            rain=rain,
            water=tuple(water),
            snow_until=snow_until,
            tn_air=solve(s.air),
            tn_rst=solve(s.rst),
        )

    # -- the curves -----------------------------------------------------------------------------------

    def _night(self, day: _Day, c: Curve, tn: float, t: datetime) -> float:
        tau = _hours(day.sunset, t) - (1.0 - self.scenario.wet_cooling) * _overlap(list(day.slow), day.sunset, t)
        return tn + (c.sunset - tn) * math.exp(-B_SAVAGE * tau / day.night_hours)

    def _curve(self, t: datetime, which: str) -> float:
        s = self.scenario
        c = s.air if which == "air" else s.rst
        day = self._day(self._anchor(t))
        if day.sunset <= t < day.next_sunrise:
            return self._night(day, c, day.tn_air if which == "air" else day.tn_rst, t)
        # Daytime: the date whose sunrise..sunset holds t, warming from the previous night's end.
        today = day if t < day.sunset else self._day(day.d + timedelta(days=1))
        prev = self._day(today.d - timedelta(days=1))
        t_sr = self._night(prev, c, prev.tn_air if which == "air" else prev.tn_rst, prev.next_sunrise)
        sr, ss, tmax = prev.next_sunrise, today.sunset, today.tmax
        if t < tmax:
            x = min(1.0, max(0.0, _hours(sr, t) / max(_hours(sr, tmax), 0.1)))
            return t_sr + (c.day_max - t_sr) * (1.0 - math.cos(math.pi * x)) / 2.0
        y = min(1.0, max(0.0, _hours(tmax, t) / max(_hours(tmax, ss), 0.1)))
        return c.sunset + (c.day_max - c.sunset) * (1.0 + math.cos(math.pi * y)) / 2.0

    def road_surface_temperature(self, t: datetime) -> float:
        """RST, degC, with the station's deterministic noise."""
        n = self._n_rst.wander(t, 0.04) + self._n_rst.white(t, 0.02)
        return self._curve(t, "rst") + self.noise * n

    def air_temperature(self, t: datetime) -> float:
        """Air temperature, degC, with noise."""
        n = self._n_air.wander(t, 0.15) + self._n_air.white(t, 0.05)
        return self._curve(t, "air") + self.noise * n

    # -- water on the road ----------------------------------------------------------------------------

    def water_state(self, t: datetime) -> str:
        """dry, damp, wet or snow from the rain and snow schedule alone (before freezing)."""
        d = self._anchor(t)
        best = "dry"
        for day in (self._day(d), self._day(d - timedelta(days=1))):
            for start, wet_from, damp_from, dry_from in day.water:
                if t < start or t >= dry_from:
                    continue
                if t < wet_from:
                    state = "snow" if day.snow_until is not None and wet_from == day.snow_until else "wet"
                elif t < damp_from:
                    state = "wet"
                else:
                    state = "damp"
                if _RANK[state] > _RANK[best]:
                    best = state
        return best

    def freezing_point(self, t: datetime) -> float:
        """Freezing point of the water on the road: residual salt, washed towards 0 C by rain."""
        fp0 = self.scenario.residual_freezing_point
        if fp0 == 0.0:
            return 0.0
        day = self._day(self._anchor(t))
        noon = self._at(day.d, 12.0)
        return fp0 * math.exp(-_overlap(list(day.rain), noon, t) / 1.5)

    def _froze_wet(self, t: datetime) -> bool:
        """True when the road was wet or damp when it last froze and has stayed frozen since (ice remains)."""
        d = self._anchor(t)
        if not (self._day(d).water or self._day(d - timedelta(days=1)).water):
            return False
        step = timedelta(minutes=10)
        s = t
        for _ in range(6 * 18):
            s -= step
            if self._curve(s, "rst") > self.freezing_point(s):
                return False
            if self.water_state(s) in ("wet", "damp"):
                return True
        return False

    def _precipitation_weight(self, t: datetime) -> float:
        """1 while it rains or snows, easing to 0 over the hours after it stops."""
        d = self._anchor(t)
        w = 0.0
        for day in (self._day(d), self._day(d - timedelta(days=1))):
            for a, b in day.slow:
                if a <= t < b:
                    return 1.0
                if t >= b:
                    w = max(w, math.exp(-_hours(b, t) / 1.5))
        return w

    def _thawed_recently(self, t: datetime, rst: float, fp: float) -> bool:
        """True within an hour of ice melting (the road is wet with meltwater)."""
        if rst <= fp:
            return False
        d = self._anchor(t)
        if not (self._day(d).water or self._day(d - timedelta(days=1)).water):
            return False
        hour_ago = t - timedelta(hours=1)
        if self._curve(hour_ago, "rst") > self.freezing_point(hour_ago):
            return False
        return self.water_state(hour_ago) in ("wet", "damp") or self._froze_wet(hour_ago)

    # -- what the station reports ------------------------------------------------------------------

    def state_at(self, t: datetime) -> RoadState:
        """Everything the station measures at time t."""
        # Classify on the values as published (two decimals), so 0.00 on a wet road reads as ice.
        rst = round(self.road_surface_temperature(t), 2)
        air = round(self.air_temperature(t), 2)
        water = self.water_state(t)
        rh = 100.0 * physics.e_water(self.scenario.dew_point) / physics.e_water(air)
        rh = min(rh, 97.0)
        wetting = self._precipitation_weight(t)
        if wetting > 0.0:
            rh += (max(rh, 93.0) - rh) * wetting  # rain or snow moistens the air; it eases off after
        rh = min(100.0, max(5.0, rh + self.noise * self._n_rh.white(t, 1.0)))
        dew = physics.dew_point(air, rh)
        fp = self.freezing_point(t)
        if water == "snow":
            surface = "snow"
        elif water in ("wet", "damp") and rst <= fp:
            surface = "ice"
        elif water == "dry" and rst <= fp and self._froze_wet(t):
            surface = "ice"
        elif physics.deposits_frost(rst, physics.vapour_pressure(air, rh)):
            surface = "frost"
        elif water != "wet" and self._thawed_recently(t, rst, fp):
            surface = "wet"  # the ice has just melted
        elif water == "dry" and 0.0 < rst <= dew:
            surface = "damp"  # dew on a surface at or below the dew point
        else:
            surface = water
        return RoadState(t, rst, air, dew, rh, surface, fp)

    def values_at(self, t: datetime) -> dict[str, object]:
        """The native `values` object the station publishes at time t."""
        s = self.state_at(t)
        values: dict[str, object] = {
            "road_surface_temperature": round(s.road_surface_temperature, 2),
            "air_temperature": round(s.air_temperature, 2),
            "dew_point": round(s.dew_point, 2),
            "surface_state": s.surface_state,
        }
        if self.report_freezing_point and s.surface_state != "dry":
            values["freezing_point"] = round(s.freezing_point, 1)
        return values


def scenario_for(device_id: str) -> str:
    """A scenario picked deterministically from a device id (when a registry does not name one)."""
    names = sorted(SCENARIOS)
    return names[seed_of("road", device_id) % len(names)]
