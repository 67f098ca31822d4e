"""VTT mould growth model, updated version (Ojanen and Viitanen 2010), in hourly steps (DOMAIN.md section 4).

The mould index M runs from 0 (no growth) through 1 (growth visible under a microscope)
and 3 (visible to the eye) to 6 (heavy, tight cover). What depends only on each hour's
temperature and RH (critical RH, growth rate, Mmax) is computed for the whole series with
numpy (for many series at once in `peaks`); the recurrence itself is a plain loop over floats,
well under a microsecond an hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

M_CAP = 6.0

# Decline (DOMAIN.md section 4), per hour, by hours since growth conditions last held.
_DECLINE_FAST = -0.032 / 24.0  # first 6 h after growth stops
_DECLINE_SLOW = -0.016 / 24.0  # after 24 h; between 6 and 24 h there is no decline
_FAST_UNTIL_H = 6.0
_PAUSE_UNTIL_H = 24.0

# Cmat, the relative decline of a material: 1 (pine sapwood, the reference), 0.5, 0.25 or 0.1.
# Nobody has measured painted plasterboard; we take 0.25 ("relatively low decline") because a
# wall that grew mould last week should not be judged clean just because this week was dry.
DEFAULT_CMAT = 0.25


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Constants of one VTT sensitivity class."""

    k1_below_1: float  # growth intensity while M < 1
    k1_from_1: float  # growth intensity once M >= 1
    a: float  # Mmax = A + B x - C x^2
    b: float
    c: float
    rh_min: float  # %, lowest critical RH of the class


SENSITIVITY: dict[str, Sensitivity] = {
    "very_sensitive": Sensitivity(1.0, 2.0, 1.0, 7.0, 2.0, 80.0),
    "sensitive": Sensitivity(0.578, 0.386, 0.3, 6.0, 1.0, 80.0),  # plasterboard, painted walls
    "medium_resistant": Sensitivity(0.072, 0.097, 0.0, 5.0, 1.5, 85.0),
    "resistant": Sensitivity(0.033, 0.014, 0.0, 3.0, 1.0, 85.0),
}


def sensitivity(cls: str) -> Sensitivity:
    """The constants for a class name ('very sensitive', 'very_sensitive', 'Sensitive'...); ValueError if unknown."""
    key = cls.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return SENSITIVITY[key]
    except KeyError:
        raise ValueError(f"unknown mould sensitivity class {cls!r}; use one of {', '.join(SENSITIVITY)}") from None


def _rh_crit(t: np.ndarray, rh_min: float) -> np.ndarray:
    poly = -0.00267 * t**3 + 0.160 * t**2 - 3.13 * t + 100.0
    # The polynomial dips to 79.9 % near 17 C; implementations (trh-1 mi.py, WUFI) floor it at
    # the class's RHmin so that resistant classes keep their 85 %. We do the same. Above 20 C we
    # follow DOMAIN.md (RHmin) where trh-1 keeps the polynomial: at most 0.2 % apart (near 23 C).
    return np.where(t <= 0.0, 100.0, np.where(t > 20.0, rh_min, np.maximum(poly, rh_min)))


def rh_crit(t: float, cls: str = "sensitive") -> float:
    """Critical RH, %, above which mould grows at t C on a material of class `cls`."""
    return float(_rh_crit(np.asarray(t, dtype=np.float64), sensitivity(cls).rh_min))


@dataclass(frozen=True, slots=True)
class MouldState:
    """Mould index M and the hours since growth conditions last held (which set the decline rate)."""

    m: float = 0.0
    hours_since_growth: float = 0.0


def _decline(since: float, hours: float) -> float:
    """Decline per unit Cmat over the interval (since, since + hours] of non-growth time."""
    end = since + hours
    fast = max(0.0, min(end, _FAST_UNTIL_H) - since)
    slow = max(0.0, end - max(since, _PAUSE_UNTIL_H))
    return fast * _DECLINE_FAST + slow * _DECLINE_SLOW


def _terms(
    t: NDArray[np.float64], rh: NDArray[np.float64], k: Sensitivity
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Per step: missing, growing, growth rate per hour at k1 = k2 = 1, and Mmax (element-wise, any shape)."""
    missing = np.isnan(t) | np.isnan(rh)
    crit = _rh_crit(t, k.rh_min)
    with np.errstate(invalid="ignore", divide="ignore"):
        growing = (t > 0.0) & (t < 50.0) & (rh >= crit)
        x = np.where(crit < 100.0, (crit - rh) / (crit - 100.0), 1.0)
        m_max = k.a + k.b * x - k.c * x * x
        rate = np.where(growing, 1.0 / (7.0 * np.exp(-0.68 * np.log(t) - 13.9 * np.log(rh) + 66.02)) / 24.0, 0.0)
    return missing, growing, rate, m_max


def _hourly_terms(
    temps: ArrayLike, rhs: ArrayLike, k: Sensitivity
) -> tuple[list[bool], list[bool], list[float], list[float]]:
    """Per step: missing, growing, growth rate per hour at k1 = k2 = 1, and Mmax."""
    t = np.asarray(temps, dtype=np.float64)
    rh = np.asarray(rhs, dtype=np.float64)
    if t.shape != rh.shape or t.ndim != 1:
        raise ValueError(f"temps and rhs must be series of one length, got {t.shape} and {rh.shape}")
    missing, growing, rate, m_max = _terms(t, rh, k)
    return missing.tolist(), growing.tolist(), rate.tolist(), m_max.tolist()


def _run(
    m: float,
    since: float,
    temps: ArrayLike,
    rhs: ArrayLike,
    hours: float,
    k: Sensitivity,
    cmat: float,
    out: list[float] | None = None,
) -> tuple[float, float]:
    """Advance (M, hours since growth) over a series; append M after each step to `out`. The one loop of the model."""
    exp, k1_low, k1_high = math.exp, k.k1_below_1, k.k1_from_1
    for missing, growing, rate, m_max in zip(*_hourly_terms(temps, rhs, k), strict=True):
        if missing:
            pass  # a missing hour tells us nothing: hold M rather than guess growth or decline
        elif growing:
            # Within growth conditions M rises towards Mmax and never declines.
            since = 0.0
            k2 = 1.0 - exp(2.3 * (m - m_max))
            if k2 > 0.0:
                m = min(m + (k1_low if m < 1.0 else k1_high) * k2 * rate * hours, M_CAP)
        else:
            if m > 0.0:
                # Most dry steps sit wholly past 24 h; only a step crossing 6 or 24 h needs the split.
                d = hours * _DECLINE_SLOW if since >= _PAUSE_UNTIL_H else _decline(since, hours)
                m = max(m + cmat * d, 0.0)
            since += hours
        if out is not None:
            out.append(m)
    return m, since


def step(
    state: MouldState, t: float, rh: float, hours: float = 1.0, cls: str = "sensitive", cmat: float = DEFAULT_CMAT
) -> MouldState:
    """Advance the mould state by `hours` at surface temperature t C and RH rh %; NaN inputs hold the state."""
    m, since = _run(state.m, state.hours_since_growth, [t], [rh], hours, sensitivity(cls), cmat)
    return MouldState(m, since)


def growth_bound(temps: ArrayLike, rhs: ArrayLike, *, hours: float = 1.0, cls: str = "sensitive") -> float:
    """An upper bound on the index a series can reach from 0: every growth step at k2 = 1 and the larger k1."""
    k = sensitivity(cls)
    _, _, rate, _ = _hourly_terms(temps, rhs, k)
    return math.fsum(rate) * hours * max(k.k1_below_1, k.k1_from_1)


def mould_index(
    temps: ArrayLike,
    rhs: ArrayLike,
    *,
    hours: float = 1.0,
    cls: str = "sensitive",
    cmat: float = DEFAULT_CMAT,
    m0: float = 0.0,
) -> list[float]:
    """Mould index after each step of an evenly spaced series of surface temperatures (C) and RH (%)."""
    out: list[float] = []
    _run(float(m0), 0.0, temps, rhs, hours, sensitivity(cls), cmat, out)
    return out


def _peak_from_zero(
    growing: list[bool], rate: list[float], m_max: list[float], hours: float, k: Sensitivity, cmat: float
) -> tuple[float, float]:
    """(highest, last) index of `_run` from M = 0 over steps that all have readings: the same arithmetic, in the
    same order, as `_run` (so the same floats), without the list of every step."""
    exp, k1_low, k1_high = math.exp, k.k1_below_1, k.k1_from_1
    slow = cmat * (hours * _DECLINE_SLOW)  # `_run`'s cmat * d for a step wholly past 24 h
    early: dict[float, float] = {}  # cmat * _decline(since, hours) by hours since growth, for the first 24 h
    m = peak = since = 0.0
    for grows, r, top in zip(growing, rate, m_max, strict=True):
        if grows:
            since = 0.0
            k2 = 1.0 - exp(2.3 * (m - top))
            if k2 > 0.0:
                m = m + (k1_low if m < 1.0 else k1_high) * k2 * r * hours
                if m > M_CAP:  # min(m, M_CAP)
                    m = M_CAP
                if m > peak:
                    peak = m
        else:
            if m > 0.0:
                if since >= _PAUSE_UNTIL_H:
                    m = m + slow
                else:
                    d = early.get(since)
                    if d is None:
                        d = early[since] = cmat * _decline(since, hours)
                    m = m + d
                if m < 0.0:  # max(m, 0.0)
                    m = 0.0
            since += hours
    return peak, m


def peaks(
    temps: NDArray[np.float64],
    rhs: NDArray[np.float64],
    starts: Sequence[int],
    *,
    hours: float = 1.0,
    cls: str = "sensitive",
    cmat: float = DEFAULT_CMAT,
    min_bound: float = 0.0,
) -> list[tuple[float, float]]:
    """For each row of two (series, step) arrays, run from its start at M = 0: the highest and the last index, as
    max(mould_index(...)) and mould_index(...)[-1] give them. A row whose growth_bound is below min_bound is not
    run and gives (0.0, 0.0)."""
    t = np.asarray(temps, dtype=np.float64)
    rh = np.asarray(rhs, dtype=np.float64)
    if t.shape != rh.shape or t.ndim != 2 or len(starts) != t.shape[0]:
        raise ValueError(f"temps and rhs must be (series, step) arrays with a start per series, got {t.shape}")
    k = sensitivity(cls)
    missing, growing, rate, m_max = _terms(t, rh, k)
    k1 = max(k.k1_below_1, k.k1_from_1)
    out: list[tuple[float, float]] = []
    for i, h0 in enumerate(starts):
        if not 0 <= h0 < t.shape[1]:
            out.append((0.0, 0.0))
            continue
        # A step without readings holds M and the hours since growth, so it can be left out.
        keep = ~missing[i, h0:]
        row_rate = rate[i, h0:][keep].tolist()
        if math.fsum(row_rate) * hours * k1 < min_bound:  # growth_bound of the row from its start
            out.append((0.0, 0.0))
            continue
        row_growing = growing[i, h0:][keep].tolist()
        out.append(_peak_from_zero(row_growing, row_rate, m_max[i, h0:][keep].tolist(), hours, k, cmat))
    return out
