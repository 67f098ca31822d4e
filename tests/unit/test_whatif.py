"""core.gritting.whatif on hand-built replays: which route-nights each policy treats, the ice nights it misses, the
needless treatments, the salt, and the nights the data does not cover."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from core import season
from core.gritting import learned as L
from core.gritting import whatif
from core.gritting.backtest import Replay
from core.gritting.policy import GrittingPolicy

ZONE = ZoneInfo("Europe/London")
START, END = date(2026, 1, 12), date(2026, 1, 14)  # three nights
LINE = {"type": "LineString", "coordinates": [[-1.9, 52.48], [-1.9, 52.49]]}  # about 1.11 km
A = whatif.Side(0.5, True, 8.0)
B = whatif.Side(1.0, True, 8.0)


def replay(rows: list[tuple[str, datetime, float]], horizons: tuple[int, ...] = (1, 12)) -> Replay:
    n = len(rows)
    ex = L.Examples(
        np.asarray([r[0] for r in rows], dtype=str),
        np.asarray([int(r[1].timestamp()) for r in rows], dtype=np.int64),
        np.zeros((n, len(L.FEATURES))),
        np.full(n, 3.0),
        np.full((n, len(horizons)), np.nan),
        horizons,
    )
    model = np.asarray([[9.0, r[2]] for r in rows]).reshape(n, len(horizons))
    return Replay(ex, horizons, model, model, model, (), 0)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=ZONE)


def hour(station: str, day: int, h: int, rst: float) -> season.StationHour:
    return season.StationHour(station, at(day, h).astimezone(UTC), rst)


def route(rid: str = "R1", stations: tuple[str, ...] = ("S1", "S2"), geometry=LINE) -> season.RouteRec:
    return season.RouteRec(rid, f"Route {rid}", stations, geometry)


def run(routes, rp, hours, a=A, b=B):
    return whatif.compare(routes, rp, hours, in_force=a, other=b, start=START, end=END, zone=ZONE)


def test_a_warmer_trigger_treats_more_nights_and_misses_fewer():
    # Night 12: projected +0.8 at S2 only, ice at 04:00 -> A misses, B treats.
    # Night 13: projected +0.3 -> both treat, no ice -> needless for both.
    # Night 14: projected +2.0, no ice -> neither treats.
    rp = replay([("S1", at(12, 17), 2.5), ("S2", at(12, 21), 0.8), ("S1", at(13, 18), 0.3), ("S1", at(14, 17), 2.0)])
    hours = [hour("S1", 12, 20, 2.0), hour("S2", 13, 4, -0.5), hour("S1", 13, 22, 1.0), hour("S1", 14, 22, 3.0)]
    out = run([route()], rp, hours)
    (r,) = out["routes"]
    assert (r["route_nights"], r["covered"], r["not_covered"], r["ice_nights"]) == (3, 3, 0, 1)
    assert r["in_force"] | {"salt_t": 0} == {"treated": 1, "missed": 1, "needless": 1, "salt_t": 0}
    assert r["other"] | {"salt_t": 0} == {"treated": 2, "missed": 0, "needless": 1, "salt_t": 0}
    assert (r["treatments_saved"], r["misses_added"]) == (-1, -1)
    length = season.route_length_m(LINE)
    assert length is not None
    assert r["in_force"]["salt_t"] == pytest.approx(round(8 * length * 7.3 / 1e6, 3))
    assert r["salt_saved_t"] == pytest.approx(-round(8 * length * 7.3 / 1e6, 3), abs=1e-3)
    assert out["total"]["treatments_saved"] == -1 and out["horizon_hours"] == 12
    text = whatif.words(out)
    assert text.startswith("With the trigger at +1.0 °C instead of +0.5 °C over the 3 route-nights")
    assert "1 treatment more" in text and "1 fewer night of ice untreated" in text


def test_a_colder_trigger_saves_treatments_and_adds_misses_and_salt():
    rp = replay([("S1", at(12, 17), 0.4), ("S1", at(13, 17), 0.2), ("S1", at(14, 17), -1.0)])
    hours = [hour("S1", 12, 23, 0.5), hour("S1", 13, 23, -0.2), hour("S1", 14, 23, -2.0)]
    colder = whatif.Side(0.0, True, 8.0)
    out = run([route(stations=("S1",))], rp, hours, b=colder)
    t = out["total"]
    assert (t["in_force"]["treated"], t["other"]["treated"]) == (3, 1)
    assert (t["in_force"]["missed"], t["other"]["missed"]) == (0, 1)
    assert (t["treatments_saved"], t["misses_added"]) == (2, 1)
    assert t["salt_saved_t"] == pytest.approx(t["in_force"]["salt_t"] - t["other"]["salt_t"], abs=1e-3)
    assert t["salt_saved_t"] > 0
    assert "2 treatments fewer" in whatif.words(out) and "1 more night of ice untreated" in whatif.words(out)


def test_the_trigger_is_inclusive_unless_the_policy_says_not():
    rp = replay([("S1", at(12, 17), 0.5)])
    hours = [hour("S1", 12, 23, 1.0)]
    strict = whatif.Side(0.5, False, 8.0)
    out = run([route(stations=("S1",))], rp, hours, b=strict)
    assert (out["total"]["in_force"]["treated"], out["total"]["other"]["treated"]) == (1, 0)


def test_nights_without_a_projection_or_readings_are_not_covered_and_not_counted():
    # Night 12: projection but no readings; 13: readings (ice) but no projection; 14: both.
    rp = replay([("S1", at(12, 17), -3.0), ("S1", at(14, 18), 3.0)])
    hours = [hour("S1", 13, 23, -4.0), hour("S1", 14, 23, 2.0)]
    out = run([route(stations=("S1",))], rp, hours)
    t = out["total"]
    assert (t["covered"], t["not_covered"], t["ice_nights"]) == (1, 2, 0)
    assert t["in_force"]["treated"] == 0 and t["in_force"]["missed"] == 0
    assert "(2 of 3 not covered: no projection or no readings)" in whatif.words(out)
    nothing = run([route(stations=("S9",))], rp, hours)
    assert nothing["total"]["covered"] == 0 and "nothing to compare" in whatif.words(nothing)


def test_an_issue_after_midnight_belongs_to_the_evening_before_and_routes_add_up():
    rp = replay([("S1", at(13, 1), 0.0), ("S2", at(12, 17), 3.0)])  # 01:00 on the 13th: the night of the 12th
    hours = [hour("S1", 12, 23, 1.0), hour("S2", 12, 23, 1.0)]
    out = run([route("R1", ("S1",)), route("R2", ("S2",), geometry=None)], rp, hours)
    r1, r2 = out["routes"]
    assert r1["in_force"]["treated"] == 1 and r1["in_force"]["needless"] == 1
    assert r2["in_force"]["treated"] == 0 and r2["salt_saved_t"] == 0.0 and r2["length_km"] is None
    assert out["total"]["covered"] == 2 and out["total"]["in_force"]["treated"] == 1


def test_salt_is_unknown_when_a_treated_route_has_no_length():
    rp = replay([("S1", at(12, 17), -1.0)])
    out = run([route(stations=("S1",), geometry=None)], rp, [hour("S1", 12, 23, -1.0)], b=whatif.Side(-2, True, 8))
    assert out["total"]["salt_saved_t"] is None and out["total"]["treatments_saved"] == 1


def test_a_policys_side_is_its_trigger_and_the_warmest_row_of_its_matrix():
    side = whatif.Side.of(GrittingPolicy(trigger_rst_c=1.0, trigger_inclusive=False))
    assert side == whatif.Side(1.0, False, 8.0)
    assert not side.calls(1.0) and side.calls(0.9)


def test_a_replay_without_the_horizon_is_refused():
    with pytest.raises(ValueError, match="no 12 h projection"):
        run([route()], replay([("S1", at(12, 17), 0.0)], horizons=(1, 6)), [])
