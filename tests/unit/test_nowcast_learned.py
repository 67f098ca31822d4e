"""The learned nowcast and its backtest (core.gritting.learned, core.gritting.backtest), on synthetic stations whose
nights follow a known law, and on the shipped default."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from core.gritting import backtest as B
from core.gritting import learned as L
from core.gritting.inputs import StationSample

TZ = ZoneInfo("Europe/London")


def night_series(
    sid: str, days: int, *, start: date = date(2025, 11, 1), floor_offset: float = 0.0, seed: int = 0
) -> L.Series:
    """Readings every 10 minutes: the road cools after 16:00 towards a floor that depends on the evening's dew point
    depression (drier: colder); a station in a frost hollow (floor_offset < 0) cools further after 22:00 as cold air
    pools, which nothing in its evening readings shows."""
    rng = np.random.default_rng(seed)
    t0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    ts = np.arange(t0, t0 + days * 86400, 600, dtype=np.int64)
    rst, air, dew = np.empty(len(ts)), np.empty(len(ts)), np.empty(len(ts))
    rst[:], air[:], dew[:] = 8.0, 9.0, 5.0
    for d in range(days):  # each "day" runs from noon to noon: hours 12 to 36
        depression = rng.uniform(0.5, 8.0)
        day_max = rng.uniform(4.0, 10.0)
        floor = day_max - 2.0 - 0.9 * depression
        sel = (ts >= t0 + d * 86400 + 12 * 3600) & (ts < t0 + (d + 1) * 86400 + 12 * 3600)
        h = (ts[sel] - (t0 + d * 86400)) / 3600.0
        cool = np.where(h < 16, day_max, floor + (day_max - floor) * np.exp(-0.35 * (h - 16)))
        cool = cool + np.where(h > 22, floor_offset * (1 - np.exp(-(h - 22) / 1.5)), 0.0)
        cool = np.where(h >= 32, cool + (day_max - cool) * (h - 32) / 4, cool)  # the morning warms it
        rst[sel] = cool + rng.normal(0, 0.1, sel.sum())
        air[sel] = rst[sel] + 1.0
        dew[sel] = air[sel] - depression
    return L.series(sid, {"rst": (ts, rst), "air": (ts, air), "dew": (ts, dew)}, lat=52.5, lon=-1.9)


def learning_examples(stations: list[L.Series], first: date, last: date) -> L.Examples:
    t = B.local_hours_epochs(first, last, L.LEARN_HOURS, TZ)
    return L.Examples.concat([L.examples(s, t, L.HORIZONS) for s in stations], L.HORIZONS)


@pytest.fixture(scope="module")
def trained() -> L.NowcastModel:
    stations = [night_series(f"s{i}", 40, seed=i) for i in range(4)]
    ex = learning_examples(stations, date(2025, 11, 1), date(2025, 12, 10))
    return L.fit(ex, fitted_at=datetime(2025, 12, 11, tzinfo=UTC), n_trees=80)


def test_features_use_nothing_after_the_issue_time():
    s = night_series("a", 6)
    at = np.asarray([int(datetime(2025, 11, 3, 19, tzinfo=UTC).timestamp())], dtype=np.int64)
    before = L.examples(s, at)
    # Change every reading after the issue time: the features stay, only the observed outcome moves.
    late = s.rst_t > at[0]
    changed = L.Series(s.station_id, s.rst_t, np.where(late, s.rst_v - 5, s.rst_v), s.air_t, s.air_v, s.dew_t,
                       s.dew_v, s.lat, s.lon)  # fmt: skip
    after = L.examples(changed, at)
    np.testing.assert_array_equal(before.x, after.x)
    assert np.all(after.observed_min < before.observed_min - 4.9)


def test_an_issue_needs_a_road_reading_in_the_three_hours_before_and_each_hour_of_the_horizon():
    s = night_series("a", 3)
    at = int(datetime(2025, 11, 2, 19, tzinfo=UTC).timestamp())
    gap = (s.rst_t > at - 4 * 3600) & (s.rst_t <= at)  # nothing in the 4 h before 19:00
    holed = L.Series("a", s.rst_t[~gap], s.rst_v[~gap], s.air_t, s.air_v, s.dew_t, s.dew_v, s.lat, s.lon)
    assert len(L.examples(holed, np.asarray([at]))) == 0
    hole = (s.rst_t > at + 2 * 3600) & (s.rst_t <= at + 3 * 3600)  # the third hour after has no reading
    holed = L.Series("a", s.rst_t[~hole], s.rst_v[~hole], s.air_t, s.air_v, s.dew_t, s.dew_v, s.lat, s.lon)
    ex = L.examples(holed, np.asarray([at]), (2, 3, 4))
    assert np.isfinite(ex.observed_min[0, 0]) and np.isnan(ex.observed_min[0, 1]) and np.isnan(ex.observed_min[0, 2])


def test_implausible_values_and_sentinels_are_dropped():
    ts = np.arange(0, 6 * 600, 600)
    s = L.series("x", {"rst": (ts, [1.0, -99.6, 88.9, 2.0, None, 3.0]), "air": (ts, [5.0] * 6),
                       "dew": (ts, [4.0, 9.0, 3.0, 3.0, 3.0, 3.0])})  # fmt: skip
    assert s.rst_v.tolist() == [1.0, 2.0, 3.0]
    assert 600 not in s.dew_t.tolist()  # a dew point 4 C above the air temperature is a bad sensor


def test_the_sun_sets_and_rises_where_it_should():
    # Birmingham, 21 December 2025: sunset about 15:55 UTC, sunrise about 08:16 UTC.
    at = np.asarray([datetime(2025, 12, 21, 20, tzinfo=UTC).timestamp()])
    elev, since, to_rise, night = L.sun(at, 52.48, -1.90)
    assert elev[0] < -30
    assert since[0] == pytest.approx(4.1, abs=0.2) and to_rise[0] == pytest.approx(12.3, abs=0.2)
    assert night[0] == pytest.approx(16.3, abs=0.3)
    # Tromsø in midwinter: the sun does not rise; the hours say so rather than wrapping around.
    _, since, to_rise, night = L.sun(at, 69.65, 18.96)
    assert to_rise[0] == 24.0 and night[0] == pytest.approx(24.0)


def test_projections_learn_the_law_are_bounded_and_never_warmer_at_a_longer_horizon(trained):
    s = night_series("new", 12, start=date(2025, 12, 20), seed=99)
    ex = L.examples(s, B.local_hours_epochs(date(2025, 12, 21), date(2025, 12, 30), range(17, 24), TZ))
    proj = L.project_many(trained, ex)
    assert np.all(np.diff(proj, axis=1) <= 1e-9)
    assert np.all(proj <= ex.rst[:, None] + L.MAX_RISE_C) and np.all(proj >= ex.rst[:, None] - L.MAX_DROP_C)
    j = L.HORIZONS.index(6)
    ok = np.isfinite(ex.observed_min[:, j])
    mae = float(np.mean(np.abs(proj[ok, j] - ex.observed_min[ok, j])))
    persistence = float(np.mean(np.abs(ex.rst[ok] - ex.observed_min[ok, j])))
    assert mae < 0.5 * persistence, (mae, persistence)


def test_a_station_colder_than_the_pool_is_learned_and_shrunk_while_its_nights_are_few(trained):
    cold = night_series("cold", 30, start=date(2025, 12, 1), floor_offset=-3.0, seed=7)
    ex = learning_examples([cold], date(2025, 12, 1), date(2025, 12, 29))
    hours = {"cold": B.local_hour_of(ex.t, TZ)}
    learned = L.learn_stations(trained, ex, local_hour=hours)["cold"]
    j = L.HORIZONS.index(9)
    assert learned.nights >= 25 and learned.mean_error[j] < -1.5  # the pool projects it too warm
    assert learned.offset(j, 5.0) == pytest.approx(learned.mean_error[j] * learned.nights / (learned.nights + 5))
    few = L.StationLearning(1, learned.mean_error)
    assert abs(few.offset(j, 5.0)) < abs(learned.offset(j, 5.0)) / 3
    # Round trip through JSON, NaN in the memory included.
    back = L.station_from_json(json.loads(json.dumps(L.station_to_json(learned), allow_nan=False)))
    assert back.nights == learned.nights and back.mean_error == learned.mean_error
    count, fall = L.similar_evenings(back, horizon_index=j, local_hour=19, rst=float(np.median(ex.rst)),
                                     slope_3h=-0.8, air_minus_rst=1.0)  # fmt: skip
    assert count >= 3 and fall is not None and fall > 0


def test_the_model_round_trips_through_json_and_predicts_the_same(trained):
    doc = json.loads(json.dumps(trained.to_json(), allow_nan=False))
    back = L.NowcastModel.from_json(doc)
    s = night_series("a", 5, seed=3)
    ex = L.examples(s, B.local_hours_epochs(date(2025, 11, 2), date(2025, 11, 4), range(17, 24), TZ))
    np.testing.assert_allclose(L.project_many(back, ex), L.project_many(trained, ex), atol=1e-4)
    with pytest.raises(ValueError, match="another version"):
        L.NowcastModel.from_json({**doc, "version": 0})


def test_the_shipped_default_loads_and_projects_a_station_it_never_saw():
    model = L.load_default()
    assert model.horizons == L.HORIZONS and model.trained_on["stations"] >= 20
    s = night_series("a", 3)
    samples = [StationSample(datetime.fromtimestamp(int(t), UTC), road_surface_temperature=float(v))
               for t, v in zip(s.rst_t, s.rst_v, strict=True)]  # fmt: skip
    p = L.project(model, L.series_from_samples("a", samples, lat=52.5, lon=-1.9),
                  datetime(2025, 11, 2, 19, tzinfo=UTC))  # fmt: skip
    assert p is not None and p.station_nights == 0
    assert all(lo <= m <= hi for lo, m, hi in zip(p.low_c, p.min_c, p.high_c, strict=True))
    assert L.project(model, s, datetime(2025, 10, 1, tzinfo=UTC)) is None  # no readings before


def test_contingency_counts_and_scores():
    proj = np.asarray([-1.0, 0.4, 0.6, 2.0, np.nan, 0.5])
    obs = np.asarray([-0.5, 1.0, -0.2, 3.0, -1.0, 0.0])
    c = B.contingency(proj, obs, 0.5)
    assert (c["hits"], c["misses"], c["false_alarms"], c["correct_negatives"], c["n"]) == (2, 1, 1, 1, 5)
    assert c["pod"] == pytest.approx(2 / 3, abs=1e-3) and c["far"] == 0.333 and c["csi"] == 0.5
    assert B.contingency(proj, obs, 0.5, inclusive=False)["hits"] == 1  # 0.5 is not below 0.5
    assert B.contingency(np.zeros(0), np.zeros(0), 0.5)["pod"] is None


def test_issue_hours_and_local_hours():
    assert B.hour_range("17-23") == (17, 18, 19, 20, 21, 22, 23)
    assert B.hour_range("22-2") == (22, 23, 0, 1, 2)
    with pytest.raises(ValueError, match="0-23"):
        B.hour_range("17-25")
    # 29 March 2026: clocks go forward at 01:00 UTC; 22-2 local on the 28th: 22, 23, 00, 02 (01:00 does not exist).
    t = B.local_hours_epochs(date(2026, 3, 28), date(2026, 3, 28), B.hour_range("22-2"), TZ)
    assert [datetime.fromtimestamp(int(x), TZ).hour for x in t] == [22, 23, 0, 2]


def replay(stations: list[L.Series], end: date, model: L.NowcastModel) -> B.Replay:
    return B.replay(
        stations, start=date(2025, 11, 10), end=end, horizons=(3, 6), issue_hours=range(17, 24), tz=TZ,
        default=model, fit=lambda ex, when: L.fit(ex, fitted_at=when, n_trees=20),
    )  # fmt: skip


def test_the_backtest_never_looks_ahead(trained, monkeypatch):
    """Adding later readings (and a later period) changes nothing about an earlier issue time: neither what it
    projected, nor what the stations or the pooled trees had learned by then."""
    monkeypatch.setattr(B, "MIN_OWN_EXAMPLES", 200)  # refits happen inside the period
    monkeypatch.setattr(B, "POOLED_REFIT_DAYS", 7)
    full = [night_series(f"s{i}", 60, floor_offset=-1.5 * i, seed=10 + i) for i in range(3)]
    cut = int(datetime(2025, 12, 5, tzinfo=UTC).timestamp())
    short = [
        L.Series(s.station_id, s.rst_t[s.rst_t < cut], s.rst_v[s.rst_t < cut], s.air_t[s.air_t < cut],
                 s.air_v[s.air_t < cut], s.dew_t[s.dew_t < cut], s.dew_v[s.dew_t < cut], s.lat, s.lon)
        for s in full
    ]  # fmt: skip
    a = replay(short, date(2025, 12, 3), trained)
    b = replay(full, date(2025, 12, 28), trained)
    assert a.pooled_fits and b.pooled_fits[: len(a.pooled_fits)] == a.pooled_fits
    key_a = {(s, int(t)): i for i, (s, t) in enumerate(zip(a.examples.station, a.examples.t, strict=True))}
    key_b = {(s, int(t)): i for i, (s, t) in enumerate(zip(b.examples.station, b.examples.t, strict=True))}
    common = sorted(set(key_a) & set(key_b))
    assert len(common) >= 0.9 * len(key_a)
    ia, ib = [key_a[k] for k in common], [key_b[k] for k in common]
    np.testing.assert_allclose(a.model[ia], b.model[ib], atol=1e-9)
    np.testing.assert_allclose(a.linear_trend[ia], b.linear_trend[ib], atol=1e-9)


def test_the_backtest_learns_a_cold_station_as_the_nights_go_by(trained):
    cold = night_series("cold", 48, start=date(2025, 11, 10), floor_offset=-3.0, seed=5)  # no nights before
    r = replay([cold], date(2025, 12, 28), trained)
    j = r.horizons.index(6)
    obs, proj = r.examples.observed_min[:, j], r.model[:, j]
    early = (r.examples.t < int(datetime(2025, 11, 12, tzinfo=UTC).timestamp())) & np.isfinite(obs)
    late = (r.examples.t > int(datetime(2025, 12, 10, tzinfo=UTC).timestamp())) & np.isfinite(obs)
    bias_early = float(np.mean(proj[early] - obs[early]))
    bias_late = float(np.mean(proj[late] - obs[late]))
    assert bias_early > 1.5 and abs(bias_late) < bias_early / 2, (bias_early, bias_late)
    ev = B.evaluation(r, 0.5)
    row = ev["horizons"][1]
    assert ev["stations"] == 1 and row["hours"] == 6
    assert row["hits"] + row["misses"] + row["false_alarms"] + row["correct_negatives"] == row["n"]
    assert set(row["baselines"]) == {"persistence", "linear_trend"}
    assert math.isfinite(row["mae_c"]) and row["mae_c"] < row["baselines"]["persistence"]["mae_c"]
    # The ceiling is the observed minimum scored as a forecast: no misses, no error, and its false alarms are
    # exactly the issue times whose road stayed above 0 °C but at or below the trigger.
    top, obs = row["ceiling"], r.examples.observed_min[:, j]
    near = int(((obs > 0.0) & (obs <= 0.5)).sum())
    assert top["n"] == row["n"] and top["mae_c"] == 0.0 and top["misses"] == 0
    assert top["false_alarms"] == near and top["hits"] == row["hits"] + row["misses"]
    assert B.evaluation(r, 0.0)["horizons"][1]["ceiling"]["false_alarms"] == 0  # no margin, no false alarm


def test_a_horizon_beyond_the_model_is_refused(trained):
    with pytest.raises(ValueError, match="projects 1 to 15 h"):
        B.replay([], start=date(2025, 11, 1), end=date(2025, 11, 2), horizons=(18,), issue_hours=(19,), tz=TZ,
                 default=trained)  # fmt: skip
    assert B.evaluation(replay([], date(2025, 11, 12), trained), 0.5)["issues"] == 0


def test_a_backtest_on_the_nights_the_shipped_default_learned_says_it_is_in_sample():
    from alerts.nowcast_backtest import in_sample

    model = L.load_default()
    seen = set(model.trained_on["station_ids"])
    some = sorted(seen)[:3]
    assert in_sample(model, {*some, "elsewhere-1"}, date(2025, 10, 1), date(2025, 10, 20)) == some
    assert in_sample(model, set(some), date(2026, 1, 1), date(2026, 2, 1)) == []  # another period
    assert in_sample(model, {"elsewhere-1"}, date(2025, 10, 1), date(2025, 10, 20)) == []
