"""The VTT mould growth model (updated, Ojanen and Viitanen 2010): DOMAIN.md section 4."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from core.mould import SENSITIVITY, MouldState, growth_bound, mould_index, peaks, rh_crit, step

HOURS_PER_WEEK = 24 * 7


def _first_hour_at(series: list[float], level: float) -> int:
    return next(i + 1 for i, m in enumerate(series) if m >= level)


def test_very_sensitive_at_20c_and_90_percent_reaches_m1_in_about_4_2_weeks() -> None:
    n = 8 * HOURS_PER_WEEK
    series = mould_index([20.0] * n, [90.0] * n, cls="very sensitive", cmat=1.0)
    weeks = _first_hour_at(series, 1.0) / HOURS_PER_WEEK
    assert weeks == pytest.approx(4.2, abs=0.1)


def test_sensitive_class_takes_about_1_7_times_longer_than_very_sensitive() -> None:
    n = 12 * HOURS_PER_WEEK
    fast = _first_hour_at(mould_index([20.0] * n, [90.0] * n, cls="very_sensitive"), 1.0)
    slow = _first_hour_at(mould_index([20.0] * n, [90.0] * n, cls="sensitive"), 1.0)
    assert slow / fast == pytest.approx(1 / 0.578, rel=0.02)  # k1 below M = 1


def test_critical_rh_follows_the_polynomial_up_to_20c() -> None:
    assert rh_crit(10.0) == pytest.approx(-2.67 + 16.0 - 31.3 + 100.0)
    assert rh_crit(5.0) == pytest.approx(88.016, abs=1e-3)


def test_critical_rh_is_the_class_minimum_above_20c_and_100_at_freezing() -> None:
    assert rh_crit(25.0, "sensitive") == 80.0
    assert rh_crit(25.0, "medium resistant") == 85.0
    assert rh_crit(0.0) == 100.0
    assert rh_crit(-5.0) == 100.0


def test_resistant_classes_never_go_below_their_85_percent_minimum() -> None:
    assert rh_crit(15.0, "medium_resistant") == 85.0
    assert rh_crit(15.0, "sensitive") == pytest.approx(80.04, abs=0.01)


def test_no_growth_below_critical_rh() -> None:
    assert mould_index([20.0] * 2000, [79.0] * 2000)[-1] == 0.0


def test_no_growth_at_or_below_freezing_even_saturated() -> None:
    assert mould_index([0.0] * 2000, [100.0] * 2000)[-1] == 0.0


def test_decline_is_fast_for_6_hours_then_pauses_then_slows() -> None:
    dry = mould_index([20.0] * 48, [50.0] * 48, m0=1.0, cmat=1.0)
    fast = 0.032 / 24
    assert dry[5] == pytest.approx(1.0 - 6 * fast)
    assert dry[23] == pytest.approx(1.0 - 6 * fast)  # no decline from 6 to 24 hours
    assert dry[47] == pytest.approx(1.0 - 6 * fast - 24 * 0.016 / 24)


def test_cmat_scales_the_decline() -> None:
    full = 1.0 - mould_index([20.0] * 200, [50.0] * 200, m0=1.0, cmat=1.0)[-1]
    tenth = 1.0 - mould_index([20.0] * 200, [50.0] * 200, m0=1.0, cmat=0.1)[-1]
    assert tenth == pytest.approx(full * 0.1)


def test_index_never_goes_below_zero() -> None:
    assert mould_index([20.0] * 5000, [40.0] * 5000, m0=0.05, cmat=1.0)[-1] == 0.0


def test_growth_levels_off_at_the_class_maximum_for_that_humidity() -> None:
    # Sensitive at 85 % and 25 C: x = (80 - 85) / (80 - 100) = 0.25, Mmax = 0.3 + 6 x - x^2.
    m_max = 0.3 + 6 * 0.25 - 0.25**2
    n = 3 * 365 * 24
    series = mould_index([25.0] * n, [85.0] * n)
    assert series[-1] <= m_max
    assert series[-1] == pytest.approx(m_max, abs=0.02)


def test_index_is_capped_at_6() -> None:
    state = step(MouldState(5.9), 25.0, 100.0, hours=1_000_000.0, cls="very sensitive")
    assert state.m == 6.0


def test_a_missing_hour_holds_the_index() -> None:
    series = mould_index([20.0, math.nan, 20.0], [95.0, 95.0, math.nan], cls="very sensitive")
    assert series[0] > 0.0
    assert series[1] == series[0]
    assert series[2] == series[0]


def test_stepping_hour_by_hour_gives_the_same_series() -> None:
    temps = [15.0 + (h % 24) / 4 for h in range(600)]
    rhs = [95.0 if (h // 100) % 2 == 0 else 60.0 for h in range(600)]
    state = MouldState()
    stepped = []
    for t, rh in zip(temps, rhs, strict=True):
        state = step(state, t, rh)
        stepped.append(state.m)
    assert stepped == mould_index(temps, rhs)
    assert state.hours_since_growth == 100.0  # hours 500-599 were dry


def test_unknown_class_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'fungal'"):
        mould_index([20.0], [90.0], cls="fungal")


def test_four_classes_with_their_constants() -> None:
    assert set(SENSITIVITY) == {"very_sensitive", "sensitive", "medium_resistant", "resistant"}
    s = SENSITIVITY["sensitive"]
    assert (s.k1_below_1, s.k1_from_1, s.a, s.b, s.c, s.rh_min) == (0.578, 0.386, 0.3, 6.0, 1.0, 80.0)


def _reference(temps: list[float], rhs: list[float], cls: str, cmat: float, hours: float = 1.0) -> list[float]:
    """The model as DOMAIN.md section 4 states it, step by step in plain Python: the check on core.mould."""
    k = SENSITIVITY[cls]
    m, since, out = 0.0, 0.0, []
    for t, rh in zip(temps, rhs, strict=True):
        if math.isnan(t) or math.isnan(rh):
            out.append(m)
            continue
        crit = (
            100.0 if t <= 0 else k.rh_min if t > 20 else max(-0.00267 * t**3 + 0.160 * t**2 - 3.13 * t + 100, k.rh_min)
        )
        if 0 < t < 50 and rh >= crit:
            since = 0.0
            x = (crit - rh) / (crit - 100.0) if crit < 100 else 1.0
            m_max = k.a + k.b * x - k.c * x * x
            k2 = max(1 - math.exp(2.3 * (m - m_max)), 0.0)
            k1 = k.k1_below_1 if m < 1 else k.k1_from_1
            rate = 1 / (7 * math.exp(-0.68 * math.log(t) - 13.9 * math.log(rh) + 66.02)) / 24
            m = min(m + k1 * k2 * rate * hours, 6.0)
        else:
            decline = 0.0
            for h in np.arange(since, since + hours, 0.5):  # half-hour pieces: each wholly in one phase
                decline += 0.5 * (-0.032 / 24 if h < 6 else 0.0 if h < 24 else -0.016 / 24)
            if m > 0:
                m = max(m + cmat * decline, 0.0)
            since += hours
        out.append(m)
    return out


def _weather(r: random.Random, n: int) -> tuple[list[float], list[float]]:
    """Wall temperatures and humidities that drift in and out of growth conditions, with gaps."""
    t0, rh0 = r.uniform(2.0, 24.0), r.uniform(70.0, 99.0)
    temps, rhs = [], []
    for h in range(n):
        t = t0 + 3 * math.sin(h / 9) + r.uniform(-1, 1)
        rh = min(100.0, rh0 + 8 * math.sin(h / r.uniform(20, 200)) + r.uniform(-3, 3))
        gap = r.random() < 0.05
        temps.append(math.nan if gap else t)
        rhs.append(rh)
    return temps, rhs


@pytest.mark.parametrize("cls", list(SENSITIVITY))
def test_the_index_follows_a_plain_transcription_of_the_model(cls: str) -> None:
    r = random.Random(cls)
    for _ in range(20):
        temps, rhs = _weather(r, 800)
        cmat = r.choice((1.0, 0.5, 0.25, 0.1))
        for got, want in zip(
            mould_index(temps, rhs, cls=cls, cmat=cmat), _reference(temps, rhs, cls, cmat), strict=True
        ):
            assert abs(got - want) <= 1e-15


def test_peaks_are_the_highest_and_last_index_of_each_series_exactly() -> None:
    r = random.Random(5250)
    seen = []
    for cls in SENSITIVITY:
        rows = [_weather(r, 720) for _ in range(12)]
        temps = np.array([t for t, _ in rows])
        rhs = np.array([rh for _, rh in rows])
        starts = [r.randrange(0, 700) for _ in rows]
        starts[0] = 720  # past the end: nothing to run
        for hours, cmat in ((1.0, 0.25), (1.5, 1.0), (0.25, 0.1)):
            got = peaks(temps, rhs, starts, hours=hours, cls=cls, cmat=cmat, min_bound=0.005)
            seen += [p for p, _ in got]
            for i, h0 in enumerate(starts):
                series = mould_index(temps[i, h0:], rhs[i, h0:], hours=hours, cls=cls, cmat=cmat)
                if not series or growth_bound(temps[i, h0:], rhs[i, h0:], hours=hours, cls=cls) < 0.005:
                    assert got[i] == (0.0, 0.0)
                else:
                    assert got[i] == (max(series), series[-1])  # the same floats, not merely close
    assert any(p > 1.0 for p in seen) and any(0.0 < p < 0.5 for p in seen) and 0.0 in seen
