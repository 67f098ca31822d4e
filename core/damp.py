"""Damp and mould risk of one home from its room sensors: a level, the rules that fired, and advice.

Levels, lowest to highest: green, advice, watch, red. 'insufficient_data' means no level was
judged and is never shown as green. Each rule and the level it raises (thresholds are
DampPolicy defaults, DOMAIN.md section 2):

| rule            | fires when (per room)                                                        | level  |
|-----------------|------------------------------------------------------------------------------|--------|
| adf_week        | room RH averaged over the last 7 days above 75 % (Approved Document F)       | red    |
| adf_month       | room RH averaged over the last 30 days above 65 % (ADF)                      | watch  |
| adf_day         | room RH averaged over the last 24 hours above 85 % (ADF)                     | watch  |
| adf_70_in_12h   | heating season: RH above 70 % for more than 2 h of some 12 h in the last day | advice |
| adf_90_in_12h   | heating season: RH above 90 % for more than 1 h of some 12 h in the last day | advice |
| bs5250_surface  | daily mean wall-surface RH above 80 % on 3 whole days in a row (last 7)      | red    |
|                 | ... on at least one whole day of the last 7                                  | watch  |
| condensation    | wall surface at or below the room's dew point for 6 h or more in 7 days      | watch  |
| mould_index     | VTT mould index on the wall surface reaches 1 (microscopic growth)           | red    |
|                 | ... reaches 0.5                                                              | watch  |
| cold_home       | heating season: below 18 C for half the hours or more of the last 7 days     | watch  |

Wall surface: Tsi = Te + fRsi (Ti - Te) with fRsi 0.75, the worst a dwelling may have (BRE IP 1/06),
so the surface rules describe the coldest spot a compliant wall is allowed, not a measured one.
Te is the outdoor temperature passed in, or without one a typical monthly outdoor mean (ISO 13788
works with monthly means too); a policy can instead skip the surface rules.

Windows are whole hours ending at the start of the hour containing `now`; days, nights and the
heating season are Europe/London. A room is judged only when it has readings in at least 70 % of
the hours of the last 7 days; a home with no judged room, or whose judged rooms are all green while
another room is not measured, is 'insufficient_data'.

Hysteresis: a level rises at once; it comes down only once the readings have not supported it for
`hold_days` (store `Assessment.state` and pass it back as `previous`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.cases import CaseLevel, CaseStatus
from core.metrics import METRICS
from core.mould import DEFAULT_CMAT, peaks, sensitivity
from core.physics import F_RSI_DWELLING, e_water, surface_temperature
from core.timeparse import utc_z, utc_z_or_none
from core.workdays import LONDON


class DampLevel(StrEnum):
    """A home's damp and mould risk, lowest first, then no level at all. The values are the public contract (the
    API's JSON, the MQTT alerts, the database's CHECKs) and never change; the words people read for each are
    LEVEL_LABELS, LEVEL_MEANINGS and RISE_TITLES below."""

    GREEN = "green"
    ADVICE = "advice"
    WATCH = "watch"
    RED = "red"
    INSUFFICIENT_DATA = "insufficient_data"  # no level judged: never shown as green, ranked below green


# The same words as a type, for the rules that write them as literals (mypy checks each literal against it);
# tests/unit/test_damp_vocab.py fails if it ever names other words than DampLevel.
Level = Literal["green", "advice", "watch", "red", "insufficient_data"]
JUDGED_LEVELS: tuple[DampLevel, ...] = (DampLevel.GREEN, DampLevel.ADVICE, DampLevel.WATCH, DampLevel.RED)
_RANK: dict[str, int] = {DampLevel.INSUFFICIENT_DATA: -1, **{level: rank for rank, level in enumerate(JUDGED_LEVELS)}}

# -- the words people read ------------------------------------------------------------------------------------
# A level on its own (a badge, a table heading, the key of a map).
LEVEL_LABELS: dict[DampLevel, str] = {
    DampLevel.INSUFFICIENT_DATA: "Not enough data",
    DampLevel.GREEN: "Green",
    DampLevel.ADVICE: "Advice",
    DampLevel.WATCH: "Watch",
    DampLevel.RED: "Red",
}
# What a level means, in a sentence.
LEVEL_MEANINGS: dict[DampLevel, str] = {
    DampLevel.INSUFFICIENT_DATA: "Not enough readings yet to judge the risk",
    DampLevel.GREEN: "Low risk of damp and mould",
    DampLevel.ADVICE: "Low risk: a few simple steps can help",
    DampLevel.WATCH: "Some risk of damp and mould: it needs watching",
    DampLevel.RED: "High risk of damp and mould",
}
# What a level means for the tenant, on their home's page.
LEVEL_EXPLANATIONS: dict[DampLevel, str] = {
    DampLevel.INSUFFICIENT_DATA: (
        "We need more readings from your sensors before we can say. Check that they are switched on."
    ),
    DampLevel.GREEN: "The readings show no sign of the conditions that lead to damp and mould.",
    DampLevel.ADVICE: "Mostly fine, with some spells of high humidity. The tips below can help.",
    DampLevel.WATCH: "The readings show conditions that could lead to damp or mould if they carry on.",
    DampLevel.RED: (
        "The readings from your home show conditions in which mould is likely to grow. Your landlord has been told."
    ),
}
# The title of the tenant's notification when their home's level goes up to this one.
RISE_TITLES: dict[DampLevel, str] = {
    DampLevel.ADVICE: "Some advice about damp in your home",
    DampLevel.WATCH: "Your home's readings show a risk of damp and mould",
    DampLevel.RED: "Your home's readings show a high risk of damp and mould",
}
RISE_TITLE_OTHER = "Your home's damp and mould readings have changed"
# How much at risk a home is on the officer's work list, most first (store.damp's ordering SQL is made from it): a
# confirmed emergency above all, then red (a home with an open case counts as red whatever its level now), watch,
# advice, a level not judged (its sensors need looking at) and green; a home never evaluated comes last.
WORK_LIST_RANK: dict[str, int] = {
    CaseLevel.EMERGENCY: 5,
    DampLevel.RED: 4,
    DampLevel.WATCH: 3,
    DampLevel.ADVICE: 2,
    DampLevel.INSUFFICIENT_DATA: 1,
    DampLevel.GREEN: 0,
}
# The level the API gives a home never evaluated (not a DampLevel: nothing was judged, nothing is stored), and its
# words.
NOT_ASSESSED = "not_assessed"
NOT_ASSESSED_LABEL = "Not assessed yet"
NOT_ASSESSED_MEANING = "Not assessed yet: the readings have not been looked at"
NOT_ASSESSED_EXPLANATION = "We have not looked at the readings from your home yet."

_HOUR_NS = 3_600_000_000_000
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]

# Approximate England monthly mean air temperatures, C, January first (Met Office 1991-2020
# climate averages, rounded; check against the published table). Only a fallback when no outdoor
# readings are passed: a council should set its own.
ENGLAND_MONTHLY_MEAN_C: tuple[float, ...] = (4.6, 4.8, 6.6, 8.8, 11.9, 14.8, 17.0, 16.8, 14.3, 11.0, 7.4, 4.9)
_MONTHS = tuple(date(2000, m, 1).strftime("%B") for m in range(1, 13))


def level_rank(level: str) -> int:
    """Order of levels: insufficient_data -1, green 0, advice 1, watch 2, red 3."""
    return _RANK[level]


@dataclass(frozen=True, slots=True)
class DampPolicy:
    """Every threshold of the damp rules; defaults from DOMAIN.md section 2."""

    history_days: int = 30  # the "month" of ADF and the span of the mould index run
    coverage_days: int = 7  # the window whose coverage decides whether a room is judged
    min_coverage: float = 0.70  # share of hours with readings needed to judge a window
    # Approved Document F (2010), Appendix A: room RH averaged over a month / week / day.
    rh_month_limit: float = 65.0
    rh_week_limit: float = 75.0
    rh_day_limit: float = 85.0
    # Earlier ADF wording, heating season only: not above 70 % for more than 2 h in any 12 h,
    # nor above 90 % for more than 1 h in any 12 h. Judged over the 12-hour spans of the last day.
    rh_short_limit: float = 70.0
    rh_short_max_hours: int = 2
    rh_peak_limit: float = 90.0
    rh_peak_max_hours: int = 1
    short_window_hours: int = 12
    short_lookback_hours: int = 24
    # BS 5250 / ISO 13788: surface RH not above 80 % for several days. "Several" is ours: 3 whole
    # London days in a row with a daily mean above the limit, looked for in the last 7 whole days.
    f_rsi: float = F_RSI_DWELLING
    surface_rh_limit: float = 80.0
    surface_rh_days: int = 3
    surface_lookback_days: int = 7
    condensation_hours_watch: int = 6  # hours with the wall at or below the dew point, last 7 days
    # VTT mould index on the estimated wall surface; painted plaster and plasterboard are "sensitive".
    mould_class: str = "sensitive"
    mould_cmat: float = DEFAULT_CMAT
    mould_red: float = 1.0  # growth visible under a microscope
    mould_watch: float = 0.5  # half way there
    # Cold homes: WHO recommends at least 18 C in the cold season.
    cold_limit: float = 18.0
    cold_share: float = 0.5  # share of hours below the limit in the last 7 days
    heating_months: tuple[int, ...] = (10, 11, 12, 1, 2, 3, 4)
    # Outdoor temperature when none is passed: typical monthly means, or None to skip the surface rules.
    default_outdoor_by_month: tuple[float, ...] | None = ENGLAND_MONTHLY_MEAN_C
    outdoor_fill_hours: int = 6  # fill outdoor gaps from measurements within this many hours
    # Tenant advice: "last night" is the most recent whole night, London time.
    night_start_hour: int = 22
    night_end_hour: int = 7
    night_hours_advice: int = 3  # hours above rh_short_limit last night worth telling the tenant
    hold_days: float = 3.0  # hysteresis: days without support before a level comes down

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"damp policy {name}: {why} (got {getattr(self, name)!r})")

        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if not math.isfinite(v) or v < 0:
                    raise bad(f.name, "must be a finite number, 0 or more")
        for share in ("min_coverage", "cold_share", "f_rsi"):
            if not 0 < getattr(self, share) <= 1:
                raise bad(share, "must be more than 0 and at most 1")
        if not 1 <= self.coverage_days <= self.history_days:
            raise bad("coverage_days", f"must be 1 to history_days ({self.history_days})")
        if not 1 <= self.surface_lookback_days < self.history_days:
            raise bad("surface_lookback_days", f"must be 1 to less than history_days ({self.history_days})")
        if not 1 <= self.surface_rh_days <= self.surface_lookback_days:
            raise bad("surface_rh_days", "must be 1 to surface_lookback_days")
        if not 1 <= self.short_window_hours <= self.short_lookback_hours <= 24 * self.history_days:
            raise bad("short_window_hours", "must be 1 to short_lookback_hours")
        if not self.mould_watch <= self.mould_red <= 6:
            raise bad("mould_watch", "must not exceed mould_red, which must not exceed 6")
        if any(not isinstance(m, int) or not 1 <= m <= 12 for m in self.heating_months):
            raise bad("heating_months", "must be month numbers 1 to 12")
        typical = self.default_outdoor_by_month
        if typical is not None and (
            len(typical) != 12
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in typical)
        ):
            raise bad("default_outdoor_by_month", "needs 12 monthly temperatures, January first, or None")
        if not (0 <= self.night_start_hour < 24 and 0 <= self.night_end_hour < 24):
            raise bad("night_start_hour", "hours must be 0 to 23")
        sensitivity(self.mould_class)  # ValueError names the class

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DampPolicy:
        """A policy from configuration (defaults for absent keys); ValueError naming an unknown key or bad value."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"damp policy: unknown key {key!r}")
            default = known[key].default
            if key == "default_outdoor_by_month" and value is None:
                pass  # None skips the wall surface rules when no outdoor readings come
            elif isinstance(default, tuple):
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    raise ValueError(f"damp policy {key}: expected a list, got {value!r}")
                value = tuple(value)
            elif isinstance(default, bool) or isinstance(value, bool):
                raise ValueError(f"damp policy {key}: expected a number, got {value!r}")
            elif isinstance(default, int) and not isinstance(value, int):
                raise ValueError(f"damp policy {key}: expected a whole number, got {value!r}")
            elif isinstance(default, float) and not isinstance(value, (int, float)):
                raise ValueError(f"damp policy {key}: expected a number, got {value!r}")
            elif isinstance(default, str) and not isinstance(value, str):
                raise ValueError(f"damp policy {key}: expected text, got {value!r}")
            kwargs[key] = float(value) if isinstance(default, float) else value
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class PreviousLevel:
    """The level a home was last given and when the readings last supported it (aware UTC)."""

    level: Level
    since: datetime


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired in one room, with the level it raises and the sentence that says why."""

    rule: str
    room: str
    level: Level
    reason: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """The damp and mould judgement of one home at one time."""

    level: Level  # after hysteresis: what people see
    reasons: tuple[str, ...]
    figures: dict[str, dict[str, float | int | None]]  # per room
    worst_room: str | None
    coverage: float  # share of room-hours with readings over the coverage window, all rooms
    advice: tuple[str, ...]  # for the tenant
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # how the figures were made (outdoor temperature source, skipped rules)
    raw_level: Level = "insufficient_data"  # before hysteresis
    state: PreviousLevel | None = None  # pass back as `previous` next time
    assessed_at: datetime | None = None
    outdoor_source: str = "none"  # measured, typical_month or none

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: plain str, float, int, None, lists and dicts; times as core.timeparse.utc_z writes them."""
        return {
            "level": self.level,
            "raw_level": self.raw_level,
            "reasons": list(self.reasons),
            "figures": {room: dict(v) for room, v in self.figures.items()},
            "worst_room": self.worst_room,
            "coverage": self.coverage,
            "advice": list(self.advice),
            "findings": [{"rule": f.rule, "room": f.room, "level": f.level, "reason": f.reason} for f in self.findings],
            "notes": list(self.notes),
            "state": None if self.state is None else {"level": self.state.level, "since": utc_z(self.state.since)},
            "assessed_at": utc_z_or_none(self.assessed_at),
            "outdoor_source": self.outdoor_source,
        }


# ---------------------------------------------------------------------------------------------
# Time grid: hourly bins ending at the start of the current hour. The same for every home in a
# sweep, so it is built once per `now`.


@dataclass(frozen=True, slots=True)
class _Grid:
    start_ns: int
    hours: int
    month_idx: NDArray[np.intp]  # local month of each hour, 0 = January
    night: Bools  # hours of last night
    day_code: NDArray[np.intp]  # local day of each hour, 0 = first day in the grid
    n_days: int
    day_len: NDArray[np.intp]  # hours in each local day within the grid (23 or 25 on clock changes)
    recent_days: NDArray[np.intp]  # whole local days before today to judge the surface rule on
    local_end: datetime


@lru_cache(maxsize=8)
def _grid(end_ns: int, hours: int, night_start: int, night_end: int, recent: int) -> _Grid:
    start_ns = end_ns - hours * _HOUR_NS
    bins = pd.DatetimeIndex(np.arange(start_ns, end_ns, _HOUR_NS).astype("datetime64[ns]"), tz="UTC")
    local = bins.tz_convert(LONDON)
    ordinal = np.asarray(local.tz_localize(None).normalize().asi8 // (24 * _HOUR_NS), dtype=np.intp)
    day_code = ordinal - ordinal[0]
    n_days = int(day_code[-1]) + 1
    local_end = datetime.fromtimestamp(end_ns / 1e9, UTC).astimezone(LONDON)
    today = int(local_end.date().toordinal() - date(1970, 1, 1).toordinal()) - int(ordinal[0])
    # Day 0 may be cut by the window's start, so it never counts as a whole day.
    recent_days = np.arange(max(1, today - recent), today, dtype=np.intp)

    night_end_day = local_end.date()
    if local_end.time() < time(night_end):
        night_end_day -= timedelta(days=1)
    night_start_day = night_end_day - timedelta(days=1) if night_start > night_end else night_end_day
    n0 = int(datetime.combine(night_start_day, time(night_start), tzinfo=LONDON).timestamp()) * 1_000_000_000
    n1 = int(datetime.combine(night_end_day, time(night_end), tzinfo=LONDON).timestamp()) * 1_000_000_000
    starts = bins.asi8
    night = (starts >= n0) & (starts < n1)
    return _Grid(
        start_ns=start_ns,
        hours=hours,
        month_idx=np.asarray(local.month - 1, dtype=np.intp),
        night=night,
        day_code=day_code,
        n_days=n_days,
        day_len=np.bincount(day_code, minlength=n_days),
        recent_days=recent_days,
        local_end=local_end,
    )


_EW_T0, _EW_STEP, _EW_N = -45.0, 0.01, 10501  # physics.e_water's valid range, -45 to 60 C


@cache
def _e_water_table() -> Floats:
    # physics.e_water is scalar; tabulating it every 0.01 C and interpolating keeps one
    # definition of Magnus and runs on whole arrays (relative error below 1e-7).
    return np.array([e_water(_EW_T0 + i * _EW_STEP) for i in range(_EW_N)])


def _e_w(t: Floats) -> Floats:
    """Saturation vapour pressure over water, hPa, element-wise (NaN stays NaN)."""
    table = _e_water_table()
    pos = np.clip((t - _EW_T0) / _EW_STEP, 0.0, _EW_N - 1.000001)
    i = np.floor(pos)
    frac = pos - i
    j = np.nan_to_num(i).astype(np.intp)
    return np.asarray(table[j] + frac * (table[j + 1] - table[j]), dtype=np.float64)


def _bin_hourly(ns: NDArray[np.int64], codes: NDArray[np.intp], n_rows: int, values: Floats, grid: _Grid) -> Floats:
    """Mean of values per (row, hour) bin; NaN where a bin has none."""
    ok = ~np.isnan(values)
    flat = codes[ok] * grid.hours + (ns[ok] - grid.start_ns) // _HOUR_NS
    size = n_rows * grid.hours
    count = np.bincount(flat, minlength=size)
    total = np.bincount(flat, weights=values[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).reshape(n_rows, grid.hours)


def _ns(values: Any, what: str) -> NDArray[np.int64]:
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    ts = pd.DatetimeIndex(values)
    if ts.tz is None:
        raise ValueError(f"{what} must be aware (UTC) times")
    return np.asarray(ts.as_unit("ns").asi8, dtype=np.int64)


def _outdoor_hourly(outdoor: pd.Series | None, grid: _Grid, policy: DampPolicy) -> tuple[Floats, str, str | None]:
    """Outdoor temperature per hour, its source, and a note saying how it was made."""
    te: Floats | None = None
    if outdoor is not None and len(outdoor):
        ns = _ns(outdoor.index, "outdoor index")
        vals = np.asarray(outdoor.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        keep = (ns >= grid.start_ns) & (ns < grid.start_ns + grid.hours * _HOUR_NS)
        te = _bin_hourly(ns[keep], np.zeros(int(keep.sum()), dtype=np.intp), 1, vals[keep], grid)[0]
    return _outdoor_from_hourly(te, grid, policy)


def _outdoor_from_hourly(te: Floats | None, grid: _Grid, policy: DampPolicy) -> tuple[Floats, str, str | None]:
    """Outdoor temperature per hour, its source and note, from hourly means on the grid (None: no feed)."""
    default = policy.default_outdoor_by_month
    typical = None if default is None else np.asarray(default, dtype=np.float64)[grid.month_idx]
    month_name = _MONTHS[int(grid.month_idx[-1])]
    if te is None:
        te = np.full(grid.hours, np.nan)
    measured = ~np.isnan(te)
    n_measured = int(measured.sum())
    if n_measured == 0:
        if typical is None:
            return te, "none", "Wall surface rules skipped: no outdoor temperature and no typical values set."
        return (
            typical,
            "typical_month",
            (
                f"Wall surface estimated with a typical outdoor temperature for the month "
                f"({month_name} {typical[-1]:.1f} °C): no outdoor readings."
            ),
        )
    if n_measured == grid.hours:
        return te, "measured", None
    pos = np.arange(grid.hours)
    prev = np.maximum.accumulate(np.where(measured, pos, -(10**9)))
    nxt = np.minimum.accumulate(np.where(measured, pos, 10**9)[::-1])[::-1]
    near = np.minimum(pos - prev, nxt - pos) <= policy.outdoor_fill_hours
    filled = np.interp(pos, pos[measured], te[measured])
    fallback = typical if typical is not None else np.full(grid.hours, np.nan)
    te = np.where(measured, te, np.where(near, filled, fallback))
    n_typical = int((~measured & ~near).sum())
    if n_typical == 0:
        return te, "measured", None
    what = "typical monthly values" if typical is not None else "no estimate (surface rules skip those hours)"
    return te, "measured", f"Outdoor temperature measured; {n_typical} hours without readings use {what}."


# ---------------------------------------------------------------------------------------------
# Words


def _cap(room: str) -> str:
    return room[:1].upper() + room[1:]


def _lower(room: str) -> str:
    # "Bedroom 2" -> "bedroom 2", but "WC" stays "WC".
    return room[:1].lower() + room[1:] if room[1:2].islower() else room


def _num(x: float, limit: float) -> str:
    # "75 %, above the 75 % limit" reads as a mistake: show a decimal when rounding hides the gap.
    s = f"{x:.0f}"
    return f"{x:.1f}" if float(s) <= limit < x or float(s) >= limit > x else s


def _hours(n: int) -> str:
    return "1 hour" if n == 1 else f"{n} hours"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _when(at: datetime) -> str:
    local = at.astimezone(LONDON)
    return f"{local:%A} {local.day} {local:%B} {local:%H:%M}"


# ---------------------------------------------------------------------------------------------
# The rules


def _window_mean(values: Floats, valid: Bools, n: int) -> tuple[Floats, Floats]:
    """Mean over the last n hours per room, and the share of those hours with readings."""
    cnt = valid[:, -n:].sum(axis=1)
    total = np.where(valid[:, -n:], values[:, -n:], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / cnt, cnt / n


def _max_in_window(flags: Bools, window: int, lookback: int) -> NDArray[np.intp]:
    """Most flagged hours in any `window` consecutive hours that lie within the last `lookback`."""
    recent = flags[:, -lookback:].astype(np.intp)
    c = np.concatenate([np.zeros((recent.shape[0], 1), dtype=np.intp), np.cumsum(recent, axis=1)], axis=1)
    return np.asarray((c[:, window:] - c[:, :-window]).max(axis=1), dtype=np.intp)


def _longest_run(flags: Bools) -> int:
    best = run = 0
    for f in flags.tolist():
        run = run + 1 if f else 0
        best = max(best, run)
    return best


@dataclass(frozen=True, slots=True)
class _Room:
    """The numbers one room's rules are judged on (NaN where unknown). "Humid" is above
    policy.rh_short_limit (70 %), "very humid" above policy.rh_peak_limit (90 %)."""

    coverage_day: float
    coverage_week: float
    coverage_month: float
    rh_mean_day: float
    rh_mean_week: float
    rh_mean_month: float
    humid_hours_last_night: int
    humid_hours_last_24h: int
    max_humid_hours_in_window: int  # most humid hours in any short_window_hours (12) of the last day
    max_very_humid_hours_in_window: int
    temperature_mean_week: float
    temperature_min_week: float
    cold_hours_share_week: float
    surface_temperature_min_week: float
    surface_rh_mean_week: float
    surface_rh_max_day: float  # highest daily mean over the recent whole days
    surface_rh_days_above_limit: int
    surface_rh_days_in_a_row: int
    condensation_hours_week: int
    mould_index_peak: float
    mould_index_now: float

    def figures(self, surface: bool) -> dict[str, float | int | None]:
        """JSON-ready figures: shares and mould index to 2 decimals, the rest to 1; None when unknown or skipped."""
        out: dict[str, float | int | None] = {}
        for name, of_surface, digits in _figure_fields():
            v = getattr(self, name)
            if not surface and of_surface:
                out[name] = None
            elif isinstance(v, int):
                out[name] = v
            elif not math.isfinite(v):
                out[name] = None
            else:
                out[name] = round(v, digits)
        return out


@cache
def _figure_fields() -> tuple[tuple[str, bool, int], ...]:
    """Each figure's name, whether it is of the wall surface, and its decimals."""
    return tuple(
        (
            f.name,
            f.name.startswith(("surface_", "condensation", "mould")),
            2 if f.name.startswith(("coverage", "cold", "mould")) else 1,
        )
        for f in fields(_Room)
    )


def _hourly_rooms(readings: pd.DataFrame, grid: _Grid) -> tuple[list[str], Floats, Floats]:
    """Room names (sorted) and each room's hourly mean temperature and RH on the grid (NaN where none)."""
    end_ns = grid.start_ns + grid.hours * _HOUR_NS

    # Hourly means per room: a bincount over (room, hour) is the resample, with no per-room groupby.
    ns = _ns(readings["ts"], "readings ts")
    in_window = (ns >= grid.start_ns) & (ns < end_ns)
    room_codes, room_index = pd.factorize(readings["room"].to_numpy()[in_window], sort=True)
    rooms = [str(r) for r in room_index]
    R = len(rooms)
    if R == 0:
        return [], np.zeros((0, grid.hours)), np.zeros((0, grid.hours))
    codes = np.asarray(room_codes, dtype=np.intp)
    t_raw = _in_range(readings["temperature"].to_numpy(dtype=np.float64, na_value=np.nan)[in_window], "temperature")
    rh_raw = _in_range(
        readings["relative_humidity"].to_numpy(dtype=np.float64, na_value=np.nan)[in_window], "relative_humidity"
    )
    T = _bin_hourly(ns[in_window], codes, R, t_raw, grid)
    RH = _bin_hourly(ns[in_window], codes, R, rh_raw, grid)
    return rooms, T, RH


def _in_range(values: Floats, metric: str) -> Floats:
    """Physically impossible values dropped (NaN) rather than averaged in."""
    lim = METRICS[metric]
    return np.where((values >= lim.low) & (values <= lim.high), values, np.nan)


def _room_stats(T: Floats, RH: Floats, te: Floats, grid: _Grid, policy: DampPolicy) -> tuple[list[_Room], Bools]:
    """The numbers of each room (a row of T and RH), and which of its hours have readings. te is the outdoor
    temperature per hour, for every room or one row per room. Every figure of a room depends on its own row only."""
    H, week = grid.hours, 24 * policy.coverage_days
    R = T.shape[0]
    valid = ~np.isnan(T) & ~np.isnan(RH)

    rh_day, cov_day = _window_mean(RH, valid, 24)
    rh_week, cov_week = _window_mean(RH, valid, week)
    rh_month, cov_month = _window_mean(RH, valid, H)
    t_week, _ = _window_mean(T, valid, week)
    t_min_week = np.where(valid[:, -week:], T[:, -week:], np.inf).min(axis=1)

    humid = valid & (RH > policy.rh_short_limit)
    very_humid = valid & (RH > policy.rh_peak_limit)
    humid_max = _max_in_window(humid, policy.short_window_hours, policy.short_lookback_hours)
    very_humid_max = _max_in_window(very_humid, policy.short_window_hours, policy.short_lookback_hours)
    humid_night = (humid & grid.night).sum(axis=1)
    humid_24h = humid[:, -24:].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cold_share = (valid & (T < policy.cold_limit))[:, -week:].sum(axis=1) / valid[:, -week:].sum(axis=1)

    # The wall surface at the worst temperature factor a dwelling may have. The helper is plain
    # arithmetic, so it works element-wise on the (room, hour) arrays.
    tsi = np.asarray(surface_temperature(cast(float, T), cast(float, te), policy.f_rsi), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        srh_uncapped = RH * _e_w(T) / _e_w(tsi)
    s_valid = valid & ~np.isnan(srh_uncapped)
    # Tsi <= the room's dew point is the same as the room's vapour pressure saturating the surface.
    condensation = (s_valid & (srh_uncapped >= 100.0))[:, -week:].sum(axis=1)
    srh = np.where(s_valid, np.minimum(srh_uncapped, 100.0), np.nan)
    srh_week, _ = _window_mean(srh, s_valid, week)
    tsi_min_week = np.where(s_valid[:, -week:], tsi[:, -week:], np.inf).min(axis=1)

    # Daily mean surface RH on whole London days; a day short of readings is not "above".
    D = grid.n_days
    dflat = (np.arange(R, dtype=np.intp)[:, None] * D + grid.day_code[None, :])[s_valid]
    d_cnt = np.bincount(dflat, minlength=R * D).reshape(R, D)[:, grid.recent_days]
    d_sum = np.bincount(dflat, weights=srh[s_valid], minlength=R * D).reshape(R, D)[:, grid.recent_days]
    with np.errstate(invalid="ignore", divide="ignore"):
        d_mean = d_sum / d_cnt
    d_full = d_cnt >= policy.min_coverage * grid.day_len[grid.recent_days]
    d_above = d_full & (d_mean > policy.surface_rh_limit)
    d_max = np.where(d_full, d_mean, -np.inf).max(axis=1, initial=-np.inf)

    # Only walls that reach the class's RHmin pay for the hourly recurrence, only from the first such hour
    # (before it M stays 0), and only when the index could reach 0.005, below which the figure, to 2
    # decimals, is 0 anyway.
    growth = s_valid & (srh >= sensitivity(policy.mould_class).rh_min) & (tsi > 0.0) & (tsi < 50.0)
    first_growth = growth.argmax(axis=1)
    grows = np.flatnonzero(growth[np.arange(R), first_growth])
    mould = dict.fromkeys(range(R), (0.0, 0.0))
    if len(grows):
        wall = s_valid[grows]
        runs = peaks(
            np.where(wall, tsi[grows], np.nan),
            np.where(wall, srh[grows], np.nan),
            first_growth[grows].tolist(),
            cls=policy.mould_class,
            cmat=policy.mould_cmat,
            min_bound=0.005,
        )
        mould.update(zip(grows.tolist(), runs, strict=True))

    # Plain floats and ints, as the figures need, read out of the arrays once.
    cov_day_l, cov_week_l, cov_month_l = cov_day.tolist(), cov_week.tolist(), cov_month.tolist()
    rh_day_l, rh_week_l, rh_month_l = rh_day.tolist(), rh_week.tolist(), rh_month.tolist()
    night_l, h24_l, humid_max_l, very_max_l = (
        humid_night.tolist(),
        humid_24h.tolist(),
        humid_max.tolist(),
        very_humid_max.tolist(),
    )
    t_week_l, t_min_l, cold_l = t_week.tolist(), t_min_week.tolist(), cold_share.tolist()
    tsi_min_l, srh_week_l, d_max_l = tsi_min_week.tolist(), srh_week.tolist(), d_max.tolist()
    d_above_l, cond_l = d_above.sum(axis=1).tolist(), condensation.tolist()
    out = [
        _Room(
            coverage_day=cov_day_l[i],
            coverage_week=cov_week_l[i],
            coverage_month=cov_month_l[i],
            rh_mean_day=rh_day_l[i],
            rh_mean_week=rh_week_l[i],
            rh_mean_month=rh_month_l[i],
            humid_hours_last_night=night_l[i],
            humid_hours_last_24h=h24_l[i],
            max_humid_hours_in_window=humid_max_l[i],
            max_very_humid_hours_in_window=very_max_l[i],
            temperature_mean_week=t_week_l[i],
            temperature_min_week=t_min_l[i],
            cold_hours_share_week=cold_l[i],
            surface_temperature_min_week=tsi_min_l[i],
            surface_rh_mean_week=srh_week_l[i],
            surface_rh_max_day=d_max_l[i],
            surface_rh_days_above_limit=d_above_l[i],
            surface_rh_days_in_a_row=_longest_run(d_above[i]),
            condensation_hours_week=cond_l[i],
            mould_index_peak=mould[i][0],
            mould_index_now=mould[i][1],
        )
        for i in range(R)
    ]
    return out, valid


def _room_findings(room: str, r: _Room, policy: DampPolicy, *, heating: bool, surface: bool) -> list[Finding]:
    """The rules of the module docstring, applied to one room's numbers."""
    p, name = policy, _cap(room)
    if r.coverage_week < p.min_coverage:
        return [
            Finding(
                "coverage",
                room,
                "insufficient_data",
                f"{name}: not enough data to judge: readings in {r.coverage_week * 100:.0f} % of hours over the "
                f"last {_days(p.coverage_days)}, {p.min_coverage * 100:.0f} % needed.",
            )
        ]
    out: list[Finding] = []

    def fire(rule: str, level: Level, reason: str) -> None:
        out.append(Finding(rule, room, level, f"{name}: {reason}"))

    week, month = _days(p.coverage_days), _days(p.history_days)
    if r.rh_mean_week > p.rh_week_limit:
        fire(
            "adf_week",
            "red",
            f"average humidity {_num(r.rh_mean_week, p.rh_week_limit)} % over the last {week}, above the "
            f"{p.rh_week_limit:g} % weekly limit of Approved Document F.",
        )
    if r.coverage_month >= p.min_coverage and r.rh_mean_month > p.rh_month_limit:
        fire(
            "adf_month",
            "watch",
            f"average humidity {_num(r.rh_mean_month, p.rh_month_limit)} % over the last {month}, above the "
            f"{p.rh_month_limit:g} % monthly limit of Approved Document F.",
        )
    if r.coverage_day >= p.min_coverage and r.rh_mean_day > p.rh_day_limit:
        fire(
            "adf_day",
            "watch",
            f"average humidity {_num(r.rh_mean_day, p.rh_day_limit)} % over the last 24 hours, above the "
            f"{p.rh_day_limit:g} % daily limit of Approved Document F.",
        )
    for rule, hours, limit, allowed in (
        ("adf_70_in_12h", r.max_humid_hours_in_window, p.rh_short_limit, p.rh_short_max_hours),
        ("adf_90_in_12h", r.max_very_humid_hours_in_window, p.rh_peak_limit, p.rh_peak_max_hours),
    ):
        if heating and hours > allowed:
            fire(
                rule,
                "advice",
                f"humidity above {limit:g} % for {_hours(hours)} of a {p.short_window_hours}-hour stretch in the "
                f"last day; earlier Approved Document F guidance allows no more than {_hours(allowed)} in any "
                f"{p.short_window_hours}.",
            )
    if surface and r.surface_rh_days_above_limit:
        run = r.surface_rh_days_in_a_row
        spell = (
            f"{run} days in a row"
            if run >= p.surface_rh_days
            else (f"{_days(r.surface_rh_days_above_limit)} of the last {p.surface_lookback_days}")
        )
        fire(
            "bs5250_surface",
            "red" if run >= p.surface_rh_days else "watch",
            f"estimated wall surface humidity averaged above {p.surface_rh_limit:g} % on {spell} (highest day "
            f"{r.surface_rh_max_day:.0f} %); BS 5250 treats {p.surface_rh_days} days in a row as a mould risk.",
        )
    if surface and r.condensation_hours_week >= p.condensation_hours_watch:
        fire(
            "condensation",
            "watch",
            f"wall surface estimated at or below the dew point for {_hours(r.condensation_hours_week)} in the "
            f"last {week}, so condensation is likely.",
        )
    if surface and r.mould_index_peak >= p.mould_watch:
        red = r.mould_index_peak >= p.mould_red
        fire(
            "mould_index",
            "red" if red else "watch",
            f"mould index {r.mould_index_peak:.2f} on the estimated wall surface (VTT model, "
            f"{p.mould_class.replace('_', ' ')} material), at or above the {'red' if red else 'watch'} level of "
            f"{p.mould_red if red else p.mould_watch:g}; 1 means growth visible under a microscope.",
        )
    if heating and r.cold_hours_share_week >= p.cold_share:
        fire(
            "cold_home",
            "watch",
            f"below {p.cold_limit:g} °C for {r.cold_hours_share_week * 100:.0f} % of hours over the last {week} "
            f"(average {r.temperature_mean_week:.1f} °C); the WHO recommends at least 18 °C in the cold season.",
        )
    return out


def _grid_at(now: datetime, policy: DampPolicy) -> _Grid:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now_ns = int(now.timestamp()) * 1_000_000_000  # whole seconds are plenty for hour bins
    return _grid(
        now_ns - now_ns % _HOUR_NS,
        24 * policy.history_days,
        policy.night_start_hour,
        policy.night_end_hour,
        policy.surface_lookback_days,
    )


def assess(
    readings: pd.DataFrame,
    now: datetime,
    policy: DampPolicy,
    *,
    outdoor: pd.Series | None = None,
    previous: PreviousLevel | None = None,
) -> Assessment:
    """Judge one home's damp and mould risk from readings with columns ts, room, temperature, relative_humidity."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    missing = {"ts", "room", "temperature", "relative_humidity"} - set(readings.columns)
    if missing:
        raise ValueError(f"readings lack column(s) {', '.join(sorted(missing))}")

    grid = _grid_at(now, policy)
    outdoor_hourly = _outdoor_hourly(outdoor, grid, policy)
    rooms, T, RH = _hourly_rooms(readings, grid)
    if not rooms:
        return _judge([], [], 0.0, outdoor_hourly, grid, now, policy, previous)
    stats, valid = _room_stats(T, RH, outdoor_hourly[0], grid, policy)
    week = 24 * policy.coverage_days
    coverage = float(valid[:, -week:].sum()) / (len(rooms) * week)
    return _judge(rooms, stats, coverage, outdoor_hourly, grid, now, policy, previous)


@dataclass(frozen=True, slots=True)
class HourlyHome:
    """One home's hourly means on the judged window's grid: the `24 * policy.history_days` hours before the hour
    containing `now`, oldest first, NaN where an hour has none. The same as readings at the start of each hour."""

    rooms: tuple[tuple[str, Floats, Floats], ...]  # (room, temperature C, relative humidity %) per room sensor
    outdoor: Floats | None = None  # outdoor temperature, C; None when there is no feed
    previous: PreviousLevel | None = None


_BLOCK_ROOMS = 256  # rooms judged together: big enough to share numpy's overheads, small enough for the caches


def assess_many(homes: Sequence[HourlyHome], now: datetime, policy: DampPolicy) -> list[Assessment]:
    """Judge many homes at `now` from hourly means: for each, what `assess` gives for the same readings."""
    grid = _grid_at(now, policy)
    H = grid.hours
    outdoor: dict[int, tuple[Floats, str, str | None]] = {}  # homes share outdoor feeds: each is made once
    out: list[Assessment | None] = [None] * len(homes)
    batch: list[int] = []
    n_rooms = 0
    for i, home in enumerate(homes):
        key = -1 if home.outdoor is None else id(home.outdoor)
        if key not in outdoor:
            te = None if home.outdoor is None else np.asarray(home.outdoor, dtype=np.float64)
            if te is not None and te.shape != (H,):
                raise ValueError(f"outdoor needs {H} hourly values, got {te.shape}")
            outdoor[key] = _outdoor_from_hourly(None if te is None else te + 0.0, grid, policy)
        names = [room for room, _, _ in home.rooms]
        if not names:
            out[i] = _judge([], [], 0.0, outdoor[key], grid, now, policy, home.previous)
        elif len(set(names)) < len(names):
            # Two sensors in one room: their readings are averaged hour by hour, as assess does.
            out[i] = assess(
                _as_readings(home, grid), now, policy, outdoor=_as_series(home.outdoor, grid), previous=home.previous
            )
        else:
            batch.append(i)
            n_rooms += len(names)
            if n_rooms >= _BLOCK_ROOMS:
                _judge_block(homes, batch, outdoor, grid, now, policy, out)
                batch, n_rooms = [], 0
    if batch:
        _judge_block(homes, batch, outdoor, grid, now, policy, out)
    return [a for a in out if a is not None]


def _judge_block(
    homes: Sequence[HourlyHome],
    block: list[int],
    outdoor: dict[int, tuple[Floats, str, str | None]],
    grid: _Grid,
    now: datetime,
    policy: DampPolicy,
    out: list[Assessment | None],
) -> None:
    """Judge the homes of a block, their rooms stacked: each room's row gives what `assess` gives it alone."""
    H, week = grid.hours, 24 * policy.coverage_days
    rooms: list[list[str]] = []
    order: list[tuple[str, Floats, Floats]] = []
    te_rows: list[Floats] = []
    for i in block:
        home = homes[i]
        te = outdoor[-1 if home.outdoor is None else id(home.outdoor)][0]
        sorted_rooms = sorted(home.rooms, key=lambda room: room[0])  # assess orders rooms by name
        rooms.append([room for room, _, _ in sorted_rooms])
        order += sorted_rooms
        te_rows += [te] * len(sorted_rooms)
    T = np.empty((len(order), H))
    RH = np.empty((len(order), H))
    for k, (_, t, rh) in enumerate(order):
        T[k] = t
        RH[k] = rh
    # As assess's hourly binning does: impossible values dropped, and -0.0 becomes 0.0 (0.0 + -0.0).
    T = _in_range(T, "temperature") + 0.0
    RH = _in_range(RH, "relative_humidity") + 0.0
    stats, valid = _room_stats(T, RH, np.stack(te_rows), grid, policy)
    counts = valid[:, -week:].sum(axis=1).tolist()
    k = 0
    for i, names in zip(block, rooms, strict=True):
        n = len(names)
        coverage = float(sum(counts[k : k + n])) / (n * week)
        te_key = -1 if homes[i].outdoor is None else id(homes[i].outdoor)
        out[i] = _judge(names, stats[k : k + n], coverage, outdoor[te_key], grid, now, policy, homes[i].previous)
        k += n


def _as_readings(home: HourlyHome, grid: _Grid) -> pd.DataFrame:
    """A home's hourly means as readings at the start of each hour."""
    hours = pd.DatetimeIndex(np.arange(grid.hours) * _HOUR_NS + grid.start_ns, tz="UTC")
    return pd.concat(
        [
            pd.DataFrame({"ts": hours, "room": room, "temperature": t, "relative_humidity": rh})
            for room, t, rh in home.rooms
        ],
        ignore_index=True,
    )


def _as_series(values: Floats | None, grid: _Grid) -> pd.Series | None:
    if values is None:
        return None
    return pd.Series(values, index=pd.DatetimeIndex(np.arange(grid.hours) * _HOUR_NS + grid.start_ns, tz="UTC"))


def _judge(
    rooms: list[str],
    stats: Sequence[_Room],
    coverage: float,
    outdoor: tuple[Floats, str, str | None],
    grid: _Grid,
    now: datetime,
    policy: DampPolicy,
    previous: PreviousLevel | None,
) -> Assessment:
    """The rules applied to each room's numbers, the home's level, reasons and advice."""
    _, outdoor_source, outdoor_note = outdoor
    surface = outdoor_source != "none"
    heating = grid.local_end.month in policy.heating_months
    findings: list[Finding] = []
    for room, r in zip(rooms, stats, strict=True):
        findings += _room_findings(room, r, policy, heating=heating, surface=surface)
    findings.sort(key=lambda f: (-_RANK[f.level], f.room, f.rule))

    # The home's level is its worst judged room; a room that cannot be judged stops it being green.
    blind = {f.room for f in findings if f.level == "insufficient_data"}
    room_level: dict[str, Level] = {room: "green" for room in rooms if room not in blind}
    for f in findings:
        if f.room in room_level and _RANK[f.level] > _RANK[room_level[f.room]]:
            room_level[f.room] = f.level
    raw: Level = "insufficient_data"
    for lv in room_level.values():
        if _RANK[lv] > _RANK[raw]:
            raw = lv
    if raw == "green" and blind:
        raw = "insufficient_data"
    by_room = dict(zip(rooms, stats, strict=True))
    worst_room = max(room_level, key=lambda room: (_RANK[room_level[room]], by_room[room].rh_mean_week), default=None)
    level, state, held = _hysteresis(raw, previous, now, policy)

    reasons = [f.reason for f in findings]
    if not rooms:
        reasons.append(f"No readings from this home in the last {_days(policy.history_days)}.")
    elif raw == "insufficient_data" and room_level:
        reasons.append(
            "The other rooms are within the limits, but a home is not called green while a room cannot be judged."
        )
    elif raw == "green":
        reasons.append(f"No limit exceeded in any room over the last {_days(policy.history_days)}.")
    if held:
        reasons.insert(0, held)
    notes = [outdoor_note] if outdoor_note else []
    if not heating:
        notes.append(
            f"Outside the heating season ({_MONTHS[grid.local_end.month - 1]}): the short-spell humidity and "
            "cold home rules are not applied."
        )
    return Assessment(
        level=level,
        reasons=tuple(reasons),
        figures={room: r.figures(surface) for room, r in by_room.items()},
        worst_room=worst_room,
        coverage=round(coverage, 2),
        advice=tuple(_advice(findings, by_room, room_level, policy, raw)),
        findings=tuple(findings),
        notes=tuple(notes),
        raw_level=raw,
        state=state,
        assessed_at=now.astimezone(UTC),
        outdoor_source=outdoor_source,
    )


def _hysteresis(
    raw: Level, previous: PreviousLevel | None, now: datetime, policy: DampPolicy
) -> tuple[Level, PreviousLevel | None, str | None]:
    """Level to show, state to keep, and the sentence explaining a held level."""
    if raw == "insufficient_data":
        # No judgement: keep the old state so a red does not clear itself when a sensor dies.
        return raw, previous, None
    if previous is None or previous.level not in JUDGED_LEVELS or _RANK[raw] >= _RANK[previous.level]:
        return raw, PreviousLevel(raw, now.astimezone(UTC)), None
    if previous.since.tzinfo is None:
        raise ValueError("previous.since must be an aware datetime")
    hold = timedelta(days=policy.hold_days)
    if now - previous.since >= hold:
        return raw, PreviousLevel(raw, now.astimezone(UTC)), None
    return (
        previous.level,
        previous,
        (
            f"Level held at {previous.level}: the readings last supported it on {_when(previous.since)}; it comes "
            f"down once they have stayed below it for {policy.hold_days:g} days (now {raw})."
        ),
    )


# ---------------------------------------------------------------------------------------------
# Advice for tenants: what their readings show, and what helps. UK government guidance (2023):
# the cause is never the tenant's "lifestyle"; advice is practical and the landlord fixes causes.

_VENTILATE = (
    "Running the extractor fan, or opening a window a little, while cooking, showering and drying clothes "
    "helps moisture escape."
)
_GAP = "A small gap between furniture and outside walls lets warm air reach the walls."
_TELL = (
    "If you see mould, or condensation that keeps coming back, please tell your landlord: finding and fixing "
    "the cause is their job."
)
_WARMTH = (
    "Keeping rooms at 18 °C or more when you can also keeps walls drier. If heating is hard to afford, your "
    "council can tell you about help with energy costs."
)


def _advice(
    findings: list[Finding],
    by_room: Mapping[str, _Room],
    judged: Mapping[str, Level],
    policy: DampPolicy,
    raw: Level,
) -> list[str]:
    out: list[str] = []
    fired: dict[str, set[str]] = {}
    for f in findings:
        fired.setdefault(f.room, set()).add(f.rule)
    moisture = cold = False
    for room in judged:
        r, rules, your = by_room[room], fired.get(room, set()), f"your {_lower(room)}"
        if r.humid_hours_last_night >= policy.night_hours_advice:
            out.append(
                f"{_cap(your)} was above {policy.rh_short_limit:g} % humidity for "
                f"{_hours(r.humid_hours_last_night)} last night."
            )
            moisture = True
        # Quote the average over the window whose limit was passed.
        for rule, mean, span in (
            ("adf_week", r.rh_mean_week, f"the last {_days(policy.coverage_days)}"),
            ("adf_month", r.rh_mean_month, f"the last {_days(policy.history_days)}"),
            ("adf_day", r.rh_mean_day, "the last 24 hours"),
        ):
            if rule in rules:
                out.append(f"The air in {your} has been damp: {mean:.0f} % humidity on average over {span}.")
                moisture = True
                break
        if "mould_index" in rules:
            out.append(f"Conditions on the walls of {your} are ones in which mould can start to grow.")
            moisture = True
        elif rules & {"bs5250_surface", "condensation"}:
            out.append(f"The outside walls of {your} are likely to be cold and damp enough for condensation.")
            moisture = True
        if "cold_home" in rules:
            out.append(
                f"{_cap(your)} was below {policy.cold_limit:g} °C for {r.cold_hours_share_week * 100:.0f} % of the "
                f"time over the last {_days(policy.coverage_days)}."
            )
            cold = True
        if rules & {"adf_70_in_12h", "adf_90_in_12h"}:
            moisture = True
    if moisture:
        out += [_VENTILATE, _GAP]
    if cold:
        out.append(_WARMTH)
    if moisture or cold:
        out.append(_TELL)
    for f in findings:
        if f.rule == "coverage":
            out.append(
                f"We have not had enough readings from the sensor in your {_lower(f.room)} recently to check "
                "that room. It may need new batteries."
            )
    if raw == "green":
        out.insert(0, "The readings from your home are within healthy ranges for humidity and temperature.")
    return out


# What a landlord must do next at each case status; {by} is the deadline as a London day.
_CASE_SENTENCES: dict[str, tuple[str, str]] = {
    CaseStatus.OPEN: ("Your landlord has been told and must investigate by {by}.", "Your landlord has been told."),
    CaseStatus.INVESTIGATING: (
        "Your landlord is investigating and must finish by {by}.",
        "Your landlord is investigating.",
    ),
    CaseStatus.INVESTIGATED: (
        "Your landlord has investigated and must send you a written summary by {by}.",
        "Your landlord has investigated and will send you a written summary.",
    ),
    CaseStatus.SAFETY_WORK: (
        "Your landlord must finish the work to make your home safe by {by}.",
        "Your landlord is arranging work to make your home safe.",
    ),
    CaseStatus.PREVENTATIVE_WORK: (
        "Your landlord must start the work to stop the damp coming back by {by}.",
        "Your landlord is arranging work to stop the damp coming back.",
    ),
    CaseStatus.CLOSED: (
        "Your landlord has closed the case. If the damp or mould comes back, please tell them.",
        "Your landlord has closed the case. If the damp or mould comes back, please tell them.",
    ),
}


def tenant_advice(assessment: Assessment, case_status: str | None, *, deadline: datetime | None = None) -> list[str]:
    """The assessment's advice plus what the landlord is doing about it (case status, next deadline)."""
    out = list(assessment.advice)
    if case_status is None:
        return out
    generic = "Your landlord is dealing with a report of damp in your home."
    with_date, without = _CASE_SENTENCES.get(case_status, (generic, generic))
    if deadline is None or "{by}" not in with_date:
        out.append(without)
        return out
    local = deadline.astimezone(LONDON)
    by = f"{local:%A} {local.day} {local:%B}"
    ref = assessment.assessed_at.astimezone(LONDON) if assessment.assessed_at else None
    if ref is None or ref.year != local.year:
        by += f" {local.year}"
    out.append(with_date.format(by=by))
    return out
