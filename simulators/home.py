"""An indoor temperature/humidity sensor (like Bristol's damp-sensing "frogs") as a pure function of time.

The room is a linear first-order system: outdoor temperature through the building's thermal lag,
internal gains, and a heating schedule, each a step response (superposition, so any time can be
computed directly). Moisture is the outdoor vapour pressure plus the excess from occupants, cooking,
showers and drying clothes, each decaying with the room's ventilation time constant; RH follows
from the room's vapour pressure and temperature (core.physics). Readings every 5 minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core import physics
from simulators import Noise, seed_of

DEFAULT_INTERVAL = timedelta(minutes=5)
DEFAULT_ZONE = "Europe/London"
HEATING_TAU_H = 1.5  # hours for the air and radiators to respond to heating and occupants
FABRIC_TAU_H = 12.0  # hours for walls and floors to store and give back heat
FABRIC_SHARE = 0.4  # share of the heating's effect that goes through the fabric
BUILDING_TAU_H = 10.0  # hours of thermal lag between outdoors and the room's unheated temperature
OUTDOOR_RH = 85.0
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

Windows = tuple[tuple[float, float], ...]  # local clock hours within a day


@dataclass(frozen=True, slots=True)
class Profile:
    """How a household heats, ventilates and uses a home."""

    name: str
    description: str
    internal_gain: float  # C the unheated home sits above outdoors (fabric, appliances)
    setpoint: float  # C the heating aims for while on
    heating_weekday: Windows
    heating_weekend: Windows
    ventilation_h: float  # hours: moisture time constant (poor ventilation: long)
    occupant_moisture: float  # hPa vapour excess at steady state while occupied
    cooking_moisture: float  # hPa excess at steady state during cooking
    shower_moisture: float  # hPa excess at steady state during a shower
    drying_moisture: float = 0.0  # hPa excess while clothes dry indoors (10:00-20:00)
    home_all_day: bool = False  # someone at home on weekdays too
    damp_drift: float = 0.0  # hPa the fabric adds as it gets wetter over the first days of a run
    gaps: bool = False  # a week of missing data every three weeks, and odd dropped readings


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "typical",
            "Heated mornings and evenings to 20 C, normal ventilation: RH 45-65 %, brief peaks after showers.",
            internal_gain=10.0,
            setpoint=20.5,
            heating_weekday=((6.5, 8.5), (17.0, 22.5)),
            heating_weekend=((7.5, 22.5),),
            ventilation_h=1.0,
            occupant_moisture=3.5,
            cooking_moisture=4.0,
            shower_moisture=8.0,
        ),
        Profile(
            "cold_damp",
            "Poorly heated (14-16 C) and poorly ventilated, clothes dried indoors: RH drifts to 80-90 %.",
            internal_gain=11.0,
            setpoint=16.5,
            heating_weekday=((18.0, 21.0),),
            heating_weekend=((17.0, 21.0),),
            ventilation_h=5.0,
            occupant_moisture=6.5,
            cooking_moisture=2.5,
            shower_moisture=4.0,
            drying_moisture=1.5,
            damp_drift=2.0,
            home_all_day=True,
        ),
        Profile(
            "warm_dry",
            "Well heated (about 21 C) with extractor fans and trickle vents: RH 35-55 %.",
            internal_gain=9.0,
            setpoint=21.0,
            heating_weekday=((0.0, 24.0),),
            heating_weekend=((0.0, 24.0),),
            ventilation_h=0.6,
            occupant_moisture=3.0,
            cooking_moisture=2.0,
            shower_moisture=4.0,
        ),
        Profile(
            "gappy",
            "A typical home whose sensor drops out: a week missing every three weeks and odd lost readings.",
            internal_gain=10.0,
            setpoint=20.5,
            heating_weekday=((6.5, 8.5), (17.0, 22.5)),
            heating_weekend=((7.5, 22.5),),
            ventilation_h=1.0,
            occupant_moisture=3.5,
            cooking_moisture=4.0,
            shower_moisture=8.0,
            gaps=True,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Room:
    """How strongly a room sees each moisture source, and its offset from the home's temperature."""

    occupancy_day: float
    occupancy_night: float
    cooking: float
    shower: float
    drying: float
    temperature_offset: float


ROOMS: dict[str, Room] = {
    "bedroom": Room(0.5, 1.1, 0.2, 0.4, 0.6, -1.0),
    "living room": Room(1.0, 0.5, 0.4, 0.2, 1.0, 0.3),
    "kitchen": Room(0.8, 0.4, 1.6, 0.2, 1.0, 0.5),
    "bathroom": Room(0.6, 0.4, 0.2, 2.0, 0.6, -0.5),
}

# When people are at home (weekday / weekend), cooking, and showering: local clock hours.
_OCCUPIED_WEEKDAY: Windows = ((0.0, 8.0), (17.5, 24.0))
_OCCUPIED_WEEKEND: Windows = ((0.0, 24.0),)
_NIGHT: Windows = ((0.0, 7.5), (22.5, 24.0))
_COOKING_WEEKDAY: Windows = ((7.25, 7.5), (18.0, 18.75))
_COOKING_WEEKEND: Windows = ((9.0, 9.5), (12.5, 13.0), (18.0, 19.0))
_SHOWERS_WEEKDAY: Windows = ((7.0, 7.25),)
_SHOWERS_WEEKEND: Windows = ((9.5, 9.75),)
_DRYING: Windows = ((10.0, 20.0),)


def _step(x_h: float, tau_h: float) -> float:
    """First-order step response x hours after a step (0 before it)."""
    return 0.0 if x_h <= 0.0 else 1.0 - math.exp(-x_h / tau_h)


@dataclass(frozen=True, slots=True)
class HomeState:
    """What the sensor measures at one time (before rounding and gaps)."""

    ts: datetime
    temperature: float
    relative_humidity: float
    battery: float
    outdoor_temperature: float


class HomeSensor:
    """A simulated indoor sensor in one room: values_at(t) is a pure function of t (None for a gap).

    `origin` is when the run starts: the cold_damp fabric moisture builds up from then (None: fully
    built up) and the gappy profile's week-long gap starts a week after it.
    """

    def __init__(
        self,
        profile: str | Profile = "typical",
        *,
        room: str = "living room",
        seed: object = 0,
        origin: datetime | None = None,
        zone: str = DEFAULT_ZONE,
        noise: float = 1.0,
    ) -> None:
        if isinstance(profile, str):
            if profile not in PROFILES:
                raise ValueError(f"unknown home profile {profile!r}; one of {', '.join(PROFILES)}")
            profile = PROFILES[profile]
        key = room.strip().lower().replace("_", " ")
        if key == "living":
            key = "living room"
        self.profile = profile
        self.room_name = room
        self.room = ROOMS.get(key, ROOMS["living room"])
        self.origin = origin
        self.zone = ZoneInfo(zone)
        self.noise = noise
        self.seed = seed
        self._n_t = Noise(seed, "temperature")
        self._n_rh = Noise(seed, "humidity")
        self._n_gap = Noise(seed, "gaps")
        weather = Noise(seed_of("weather", seed), "phase")
        self._phase = (2 * math.pi * weather.unit(1), 2 * math.pi * weather.unit(2))
        self._battery_phase = 200.0 * Noise(seed, "battery").unit(0)
        self._windows: dict[date, dict[str, list[tuple[datetime, datetime]]]] = {}

    # -- weather ----------------------------------------------------------------------------------------

    @staticmethod
    def seasonal_mean(t: datetime) -> float:
        """Mean outdoor temperature, C, for the time of year (UK: about 4 C in January, 17 C in July)."""
        doy = t.timetuple().tm_yday
        return 10.5 - 6.5 * math.cos(2 * math.pi * (doy - 20) / 365.25)

    def _outdoor_components(self, t: datetime) -> list[tuple[float, float, float]]:
        """(amplitude C, period h, phase) of the outdoor temperature around its seasonal mean."""
        offset = (t.astimezone(self.zone).utcoffset() or timedelta(0)).total_seconds() / 86400.0
        return [
            (2.5, 24.0, 2 * math.pi * (offset - 9.0 / 24.0)),  # warmest about 15:00 local
            (2.0, 24.0 * 4.3, self._phase[0]),  # weather systems passing
            (1.0, 24.0 * 1.7, self._phase[1]),
        ]

    def outdoor_temperature(self, t: datetime) -> float:
        """Outdoor air temperature, C."""
        h = (t - _EPOCH).total_seconds() / 3600.0
        swing = sum(a * math.sin(2 * math.pi * h / p + ph) for a, p, ph in self._outdoor_components(t))
        return self.seasonal_mean(t) + swing

    def _filtered_outdoor(self, t: datetime) -> float:
        """Outdoor temperature as the building feels it: swings damped and lagged (first-order filter)."""
        h = (t - _EPOCH).total_seconds() / 3600.0
        total = self.seasonal_mean(t)
        for a, p, ph in self._outdoor_components(t):
            wt = 2 * math.pi * BUILDING_TAU_H / p
            total += a / math.sqrt(1 + wt * wt) * math.sin(2 * math.pi * h / p + ph - math.atan(wt))
        return total

    # -- schedules ----------------------------------------------------------------------------------------

    def _day_windows(self, d: date) -> dict[str, list[tuple[datetime, datetime]]]:
        got = self._windows.get(d)
        if got is not None:
            return got
        weekend = d.weekday() >= 5
        p = self.profile

        def absolute(ws: Windows) -> list[tuple[datetime, datetime]]:
            out = []
            for a, b in ws:
                start = (datetime.combine(d, time(0)) + timedelta(hours=a)).replace(tzinfo=self.zone)
                end = (datetime.combine(d, time(0)) + timedelta(hours=b)).replace(tzinfo=self.zone)
                out.append((start.astimezone(UTC), end.astimezone(UTC)))
            return out

        occupied = _OCCUPIED_WEEKEND if weekend or p.home_all_day else _OCCUPIED_WEEKDAY
        got = {
            "heating": absolute(p.heating_weekend if weekend else p.heating_weekday),
            "occupied": absolute(occupied),
            "night": absolute(_NIGHT),
            "cooking": absolute(_COOKING_WEEKEND if weekend else _COOKING_WEEKDAY),
            "shower": absolute(_SHOWERS_WEEKEND if weekend else _SHOWERS_WEEKDAY),
            "drying": absolute(_DRYING) if p.drying_moisture else [],
        }
        if len(self._windows) > 64:
            self._windows.clear()
        self._windows[d] = got
        return got

    def _response(self, t: datetime, kind: str, tau_h: float) -> float:
        """Sum of first-order responses to the `kind` windows of the last four days, 0..1."""
        today = t.astimezone(self.zone).date()
        total = 0.0
        for back in (3, 2, 1, 0):
            for a, b in self._day_windows(today - timedelta(days=back))[kind]:
                if a >= t:
                    continue
                total += _step((t - a).total_seconds() / 3600.0, tau_h) - _step((t - b).total_seconds() / 3600.0, tau_h)
        return total

    # -- the room -------------------------------------------------------------------------------------------

    def state_at(self, t: datetime) -> HomeState:
        """Temperature, RH and battery at time t, before noise is rounded away."""
        p, r = self.profile, self.room
        outdoor = self._filtered_outdoor(t)
        free = outdoor + p.internal_gain
        # Heating lifts the room towards the setpoint (never cools it: in summer it stays off).
        lift = max(0.0, p.setpoint - (self.seasonal_mean(t) + p.internal_gain))
        heating = (1.0 - FABRIC_SHARE) * self._response(t, "heating", HEATING_TAU_H) + FABRIC_SHARE * self._response(
            t, "heating", FABRIC_TAU_H
        )
        people = 0.7 * self._response(t, "occupied", HEATING_TAU_H)
        temp = free + lift * heating + people + r.temperature_offset
        temp += self.noise * (self._n_t.wander(t, 0.1) + self._n_t.white(t, 0.05))

        tau_v = p.ventilation_h
        night = self._response(t, "night", tau_v)
        occupied = self._response(t, "occupied", tau_v)
        # Occupants: the day weight while at home, the night weight while asleep.
        occupancy = r.occupancy_day * max(occupied - night, 0.0) + r.occupancy_night * night
        excess = (
            p.occupant_moisture * occupancy
            + p.cooking_moisture * r.cooking * self._response(t, "cooking", tau_v)
            + p.shower_moisture * r.shower * self._response(t, "shower", tau_v)
            + p.drying_moisture * r.drying * self._response(t, "drying", tau_v)
            + self._drift(t)
        )
        e_out = physics.vapour_pressure(outdoor, OUTDOOR_RH)  # outdoor air, its daily swing smoothed by the building
        e_in = e_out + excess
        rh = 100.0 * e_in / physics.e_water(temp)
        rh += self.noise * (self._n_rh.wander(t, 0.8) + self._n_rh.white(t, 0.4))
        rh = min(99.5, max(1.0, rh))
        return HomeState(t, temp, rh, self.battery(t), self.outdoor_temperature(t))

    def _drift(self, t: datetime) -> float:
        d = self.profile.damp_drift
        if not d:
            return 0.0
        if self.origin is None:
            return d
        days = (t - self.origin).total_seconds() / 86400.0
        return d * (1.0 - math.exp(-max(days, 0.0) / 2.0))

    def battery(self, t: datetime) -> float:
        """Battery %, falling 0.25 % a day; replaced (back to 100) once a year."""
        days = (t - _EPOCH).total_seconds() / 86400.0 + self._battery_phase
        return 100.0 - 0.25 * (days % 365.0)

    def missing(self, t: datetime) -> bool:
        """True when the gappy profile has no reading at t."""
        if not self.profile.gaps:
            return False
        ref = self.origin or (_EPOCH + timedelta(days=21 * Noise(self.seed, "gap-phase").unit(0)))
        days = (t - ref).total_seconds() / 86400.0
        if 7.0 <= days % 21.0 < 14.0:
            return True
        return self._n_gap.unit(int(t.timestamp()) // 300) < 0.03

    def values_at(self, t: datetime) -> dict[str, object] | None:
        """The native `values` object at time t, or None when the sensor sends nothing."""
        if self.missing(t):
            return None
        s = self.state_at(t)
        return {
            "temperature": round(s.temperature, 2),
            "relative_humidity": round(s.relative_humidity, 1),
            "battery": round(s.battery),
        }


def profile_for(device_id: str) -> str:
    """A profile picked deterministically from a device id (when a registry does not name one)."""
    names = sorted(PROFILES)
    return names[seed_of("home", device_id) % len(names)]
