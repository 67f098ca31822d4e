"""A council's gritting policy: triggers, the spread-rate matrix and timing, with DOMAIN.md section 1 defaults."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from core.gritting._text import G_M2, LONDON, grams, temp

SpreadType = Literal["dry", "pre-wetted"]

_RATE_TEXT = re.compile(r"^\s*(?:(\d+)\s*[xX*]\s*)?(\d+(?:\.\d+)?)\s*(?:g/m[2²])?\s*$")
_CLOCK_TEXT = re.compile(r"^\s*([0-9]{1,2}):([0-9]{2})\s*$")


@dataclass(frozen=True, slots=True)
class SpreadRate:
    """One spread rate: grams of salt per square metre per pass, and the number of passes ("2 x 20")."""

    grams_per_m2: float
    passes: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.grams_per_m2) and self.grams_per_m2 > 0):
            raise ValueError(f"spread rate must be a positive number of g/m², got {self.grams_per_m2!r}")
        if self.passes not in (1, 2):
            raise ValueError(f"passes must be 1 or 2, got {self.passes!r}")

    @property
    def total_g_m2(self) -> float:
        """Salt laid in all passes, g/m2."""
        return self.grams_per_m2 * self.passes

    def scaled(self, factor: float) -> SpreadRate:
        """The same passes with each pass's rate multiplied by factor (rounded to whole grams, at least 1)."""
        return SpreadRate(max(1.0, float(round(self.grams_per_m2 * factor))), self.passes)

    def __str__(self) -> str:
        if self.passes == 1:
            return f"{grams(self.grams_per_m2)} {G_M2}"
        return f"{self.passes} x {grams(self.grams_per_m2)} {G_M2}"

    @classmethod
    def parse(cls, value: object, key: str) -> SpreadRate:
        """A rate from config: 8, "10", "2x20", "2 x 20 g/m2" or {"grams_per_m2": 20, "passes": 2}."""
        if isinstance(value, SpreadRate):
            return value
        try:
            if isinstance(value, bool):
                raise ValueError(f"expected a rate, got {value!r}")
            if isinstance(value, (int, float)):
                return cls(float(value))
            if isinstance(value, str):
                m = _RATE_TEXT.match(value)
                if not m:
                    raise ValueError(f"expected a rate such as '10' or '2x20', got {value!r}")
                return cls(float(m.group(2)), int(m.group(1) or 1))
            if isinstance(value, Mapping):
                unknown = set(value) - {"grams_per_m2", "passes"}
                if unknown:
                    raise ValueError(f"unknown rate key {sorted(unknown)[0]!r}")
                g = value.get("grams_per_m2")
                p = value.get("passes", 1)
                if isinstance(g, bool) or not isinstance(g, (int, float)):
                    raise ValueError(f"grams_per_m2 must be a number, got {g!r}")
                if isinstance(p, bool) or not isinstance(p, int):
                    raise ValueError(f"passes must be 1 or 2, got {p!r}")
                return cls(float(g), p)
        except ValueError as exc:
            raise ValueError(f"gritting policy {key}: {exc}") from None
        raise ValueError(f"gritting policy {key}: expected a rate, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class RatePair:
    """One cell of the spread matrix: the rate with dry salt and with pre-wetted salt."""

    dry: SpreadRate
    pre_wetted: SpreadRate

    def pick(self, pre_wetted: bool) -> SpreadRate:
        """The rate for the council's spread type."""
        return self.pre_wetted if pre_wetted else self.dry

    @classmethod
    def of(cls, dry: float | str, pre_wetted: float | str | None = None) -> RatePair:
        """A pair from short forms: RatePair.of(10, 9), RatePair.of("2x20")."""
        d = SpreadRate.parse(dry, "rate")
        return cls(d, d if pre_wetted is None else SpreadRate.parse(pre_wetted, "rate"))

    @classmethod
    def parse(cls, value: object, key: str) -> RatePair:
        """A pair from config: one rate for both, [dry, pre_wetted], or {"dry": .., "pre_wetted": ..}."""
        if isinstance(value, RatePair):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"dry", "pre_wetted"}
            if unknown:
                raise ValueError(f"gritting policy {key}: unknown key {sorted(unknown)[0]!r}")
            if "dry" not in value:
                raise ValueError(f"gritting policy {key}: 'dry' rate is missing")
            dry = SpreadRate.parse(value["dry"], f"{key}.dry")
            pw = SpreadRate.parse(value.get("pre_wetted", value["dry"]), f"{key}.pre_wetted")
            return cls(dry, pw)
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"gritting policy {key}: expected [dry, pre_wetted], got {len(value)} items")
            return cls(SpreadRate.parse(value[0], f"{key}[0]"), SpreadRate.parse(value[1], f"{key}[1]"))
        rate = SpreadRate.parse(value, key)
        return cls(rate, rate)


@dataclass(frozen=True, slots=True)
class FrostBand:
    """A precautionary row of the matrix: applies when the expected minimum RST is at or above its floor."""

    rst_at_or_above_c: float
    dry_damp: RatePair
    wet: RatePair

    @classmethod
    def parse(cls, value: object, key: str) -> FrostBand:
        """A band from config: {"rst_at_or_above_c": -5, "dry_damp": [10, 9], "wet": [16, 15]}."""
        if isinstance(value, FrostBand):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"gritting policy {key}: expected a mapping, got {type(value).__name__}")
        unknown = set(value) - {"rst_at_or_above_c", "dry_damp", "wet"}
        if unknown:
            raise ValueError(f"gritting policy {key}: unknown key {sorted(unknown)[0]!r}")
        for k in ("rst_at_or_above_c", "dry_damp", "wet"):
            if k not in value:
                raise ValueError(f"gritting policy {key}.{k} is missing")
        floor = _number(value["rst_at_or_above_c"], f"{key}.rst_at_or_above_c")
        return cls(
            floor,
            RatePair.parse(value["dry_damp"], f"{key}.dry_damp"),
            RatePair.parse(value["wet"], f"{key}.wet"),
        )


# Transport Scotland, revised salt treatment matrix (2010), g/m2 dry salt / pre-wetted.
TRANSPORT_SCOTLAND_2010: tuple[FrostBand, ...] = (
    FrostBand(-2.0, RatePair.of(8, 8), RatePair.of(8, 8)),
    FrostBand(-5.0, RatePair.of(10, 9), RatePair.of(16, 15)),
    FrostBand(-10.0, RatePair.of(18, 18), RatePair.of("2x15", "2x15")),
)


@dataclass(frozen=True, slots=True)
class GrittingPolicy:
    """Every threshold a council may change; the defaults are DOMAIN.md section 1 and section 4."""

    # The council's own name for its policy, cited by reasons (PLACEWATCH_WINTER_POLICY_NAME when the policy file
    # gives none). The default values come from Buckinghamshire's and Hertfordshire's published policies.
    name: str = "the council's winter service policy"
    # Trigger: treat when the expected RST gets to this (Buckinghamshire "below +0.5 C",
    # Hertfordshire "0.5 C or below"); inclusive by default, the safer reading.
    trigger_rst_c: float = 0.5
    trigger_inclusive: bool = True
    # Expected minimum within this much above the trigger: watch, do not send crews.
    monitor_band_c: float = 2.0
    # Dry road: frost is unlikely when the air's frost point (dew point above 0 C) stays at least
    # this far below the expected minimum RST. Set dry_road_needs_moisture False to treat all
    # roads below the trigger whatever the air.
    dry_air_gap_c: float = 2.0
    dry_road_needs_moisture: bool = True
    # Spread type and the matrix.
    pre_wetted: bool = False
    frost_bands: tuple[FrostBand, ...] = TRANSPORT_SCOTLAND_2010
    light_snow: RatePair = field(default_factory=lambda: RatePair.of(20, 18))
    light_snow_max_mm: float = 10.0
    heavy_snow: RatePair = field(default_factory=lambda: RatePair.of("2x20", "2x20"))
    freezing_rain: RatePair = field(default_factory=lambda: RatePair.of("2x20", "2x20"))
    ice: RatePair = field(default_factory=lambda: RatePair.of(20, 20))
    ice_cold: RatePair = field(default_factory=lambda: RatePair.of("2x20", "2x20"))
    ice_cold_at_or_below_c: float = -5.0
    # Salt is marginal below about -7 C and virtually useless below -10 C: a person decides.
    escalate_at_or_below_c: float = -7.0
    salt_ineffective_below_c: float = -10.0
    # "-5 C in low humidity": off unless the council sets the RH (%) it calls low.
    escalate_low_humidity_at_or_below_c: float = -5.0
    low_humidity_rh: float | None = None
    # Timing (minutes); a route may override treatment and mobilisation.
    treatment_minutes: int = 180
    mobilisation_minutes: int = 60
    completion_margin_minutes: int = 30
    # Station-only nowcast (DOMAIN.md section 4): credible, degraded, then not credible.
    nowcast_credible_hours: float = 3.0
    nowcast_degraded_hours: float = 6.0
    nowcast_window_hours: float = 3.0
    nowcast_min_samples: int = 3
    nowcast_min_span_minutes: int = 30
    nowcast_max_gap_minutes: int = 60
    # Savage (2015) night cooling: rate b / (24 - D) per hour, D the day length in hours.
    night_cooling_b: float = 2.2
    day_length_hours: float = 8.0
    # Latent heat holds a cooling surface near its dew/frost point: allow only this overshoot.
    nowcast_overshoot_c: float = 0.5
    # Without a dew point, how far below the air a clear-night road surface may fall.
    surface_below_air_max_c: float = 4.0
    stale_after_minutes: int = 60
    no_data_after_minutes: int = 180
    # Residual salt: freezing point at least this far below the expected minimum RST.
    residual_salt_margin_c: float = 2.0
    residual_salt_reduction: float = 0.0  # fraction taken off precautionary rates; 0 = only say so
    # Forecasts: older than this are ignored; no RST trace and no station reading: assume the
    # trigger is reached this long before the forecast minimum.
    forecast_max_age_hours: float = 24.0
    forecast_confidence: float = 0.8
    untraced_lead_hours: float = 6.0
    # material_key rounds times to this many minutes so jitter does not re-issue a decision.
    material_rounding_minutes: int = 15
    # The end of the gritting night, local time (Europe/London, as every time in a decision), "HH:MM". "No
    # action" is said only when station readings or a forecast cover the night until then; else: monitor.
    # A forecast with no road surface temperature curve is taken to cover forecast_max_age_hours from its issue.
    night_end_local: str = "08:00"

    def __post_init__(self) -> None:
        for name in (
            "trigger_rst_c", "monitor_band_c", "dry_air_gap_c", "light_snow_max_mm", "ice_cold_at_or_below_c",
            "escalate_at_or_below_c", "salt_ineffective_below_c", "escalate_low_humidity_at_or_below_c",
            "nowcast_credible_hours", "nowcast_degraded_hours", "nowcast_window_hours", "night_cooling_b",
            "day_length_hours", "nowcast_overshoot_c", "surface_below_air_max_c", "residual_salt_margin_c",
            "residual_salt_reduction", "forecast_max_age_hours", "forecast_confidence", "untraced_lead_hours",
        ):  # fmt: skip
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"gritting policy {name} must be a finite number")
        non_negative = (
            "monitor_band_c", "dry_air_gap_c", "light_snow_max_mm", "nowcast_overshoot_c", "surface_below_air_max_c",
            "residual_salt_margin_c", "completion_margin_minutes", "untraced_lead_hours",
        )  # fmt: skip
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"gritting policy {name} must not be negative, got {getattr(self, name)!r}")
        positive = (
            "treatment_minutes", "nowcast_credible_hours", "nowcast_window_hours", "nowcast_min_samples",
            "nowcast_max_gap_minutes", "night_cooling_b", "stale_after_minutes", "no_data_after_minutes",
            "forecast_max_age_hours", "material_rounding_minutes",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"gritting policy {name} must be positive, got {getattr(self, name)!r}")
        if self.mobilisation_minutes < 0:
            raise ValueError("gritting policy mobilisation_minutes must not be negative")
        if self.nowcast_degraded_hours < self.nowcast_credible_hours:
            raise ValueError("gritting policy nowcast_degraded_hours must not be shorter than nowcast_credible_hours")
        if not 0.0 < self.day_length_hours < 24.0:
            raise ValueError("gritting policy day_length_hours must be between 0 and 24")
        if not 0.0 <= self.residual_salt_reduction < 1.0:
            raise ValueError("gritting policy residual_salt_reduction must be a fraction at least 0 and below 1")
        if not 0.0 <= self.forecast_confidence <= 1.0:
            raise ValueError("gritting policy forecast_confidence must be between 0 and 1")
        if self.low_humidity_rh is not None and not 0.0 < self.low_humidity_rh <= 100.0:
            raise ValueError("gritting policy low_humidity_rh must be a percentage above 0")
        if not self.frost_bands:
            raise ValueError("gritting policy frost_bands must have at least one band")
        floors = [b.rst_at_or_above_c for b in self.frost_bands]
        if any(a <= b for a, b in itertools.pairwise(floors)):
            raise ValueError("gritting policy frost_bands must run from warmest to coldest floor")
        # "8:00" and " 08:00" are the same time: kept as written in decisions' evidence, "08:00".
        object.__setattr__(
            self, "night_end_local", _clock_time(self.night_end_local, "night_end_local").strftime("%H:%M")
        )

    @property
    def night_end(self) -> time:
        """The end of the gritting night as a local time of day."""
        return _clock_time(self.night_end_local, "night_end_local")

    def night_end_after(self, now: datetime) -> datetime:
        """The end of the gritting night that `now` is in or comes before: the next night_end_local after now, in
        UTC (a time the clocks skip in spring falls an hour later, on the new clock)."""
        now = now.astimezone(UTC)
        day = now.astimezone(LONDON).date()
        for offset in (0, 1, 2):
            end = datetime.combine(day + timedelta(days=offset), self.night_end, tzinfo=LONDON).astimezone(UTC)
            if end > now:
                return end
        raise AssertionError("unreachable: a local time of day recurs within two days")  # pragma: no cover

    @property
    def night_cooling_per_hour(self) -> float:
        """Savage's exponential night-cooling rate constant, per hour."""
        return self.night_cooling_b / (24.0 - self.day_length_hours)

    def at_or_below_trigger(self, rst: float) -> bool:
        """True when an RST meets the trigger."""
        return rst <= self.trigger_rst_c if self.trigger_inclusive else rst < self.trigger_rst_c

    def trigger_text(self) -> str:
        """The trigger in words, e.g. 'forecast RST at or below +0.5 C'."""
        word = "at or below" if self.trigger_inclusive else "below"
        return f"forecast road surface temperature {word} {temp(self.trigger_rst_c)}"

    def frost_band(self, min_rst: float) -> tuple[FrostBand, str] | None:
        """The matrix row for an expected minimum RST and its label; None when colder than every row."""
        warmer: float | None = None
        for band in self.frost_bands:
            if min_rst >= band.rst_at_or_above_c:
                if warmer is None:
                    label = f"road surface temperature at or above {_deg(band.rst_at_or_above_c)}"
                else:
                    label = f"road surface temperature {_deg(warmer)} to {_deg(band.rst_at_or_above_c)}"
                return band, label
            warmer = band.rst_at_or_above_c
        return None

    @property
    def spread_type(self) -> SpreadType:
        """'pre-wetted' or 'dry', as decisions report it."""
        return "pre-wetted" if self.pre_wetted else "dry"

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GrittingPolicy:
        """A policy from a plain mapping (config file, environment); ValueError names the bad key."""
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, raw in values.items():
            if not isinstance(key, str) or key not in names:
                raise ValueError(f"unknown gritting policy key {key!r}")
            kwargs[key] = _coerce(key, raw, hints[key])
        return cls(**kwargs)


def _clock_time(raw: object, key: str) -> time:
    """A local time of day from "HH:MM" (24-hour clock); ValueError says what was wrong in plain words."""
    m = _CLOCK_TEXT.match(raw) if isinstance(raw, str) else None
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(
            f"gritting policy {key} must be a local time of day on the 24-hour clock such as '08:00', got {raw!r}"
        )
    return time(int(m.group(1)), int(m.group(2)))


def _deg(c: float) -> str:
    return f"{c:g} °C"


def _number(raw: object, key: str) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"gritting policy {key} must be a number, got {raw!r}")
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"gritting policy {key} must be a number, got {raw!r}") from None
    else:
        raise ValueError(f"gritting policy {key} must be a number, got {type(raw).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"gritting policy {key} must be a finite number, got {raw!r}")
    return value


def _coerce(key: str, raw: object, hint: object) -> object:
    # Values from environment variables arrive as strings: accept them where the meaning is plain.
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
            return None
        return _coerce(key, raw, args[0])
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return raw.strip().lower() in ("true", "yes", "on", "1")
        raise ValueError(f"gritting policy {key} must be true or false, got {raw!r}")
    if hint is int:
        value = _number(raw, key)
        if value != int(value):
            raise ValueError(f"gritting policy {key} must be a whole number, got {raw!r}")
        return int(value)
    if hint is float:
        return _number(raw, key)
    if hint is str:
        if not isinstance(raw, str):
            raise ValueError(f"gritting policy {key} must be text, got {type(raw).__name__}")
        return raw
    if hint is RatePair:
        return RatePair.parse(raw, key)
    if origin is tuple:  # frost_bands
        if not isinstance(raw, (list, tuple)):
            raise ValueError(f"gritting policy {key} must be a list of bands, got {type(raw).__name__}")
        return tuple(FrostBand.parse(item, f"{key}[{i}]") for i, item in enumerate(raw))
    raise ValueError(f"gritting policy {key} cannot be set from configuration")  # pragma: no cover
