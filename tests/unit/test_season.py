"""Season report rules (core.season): nights, ice risk, in time / missed / needless, response times, salt,
Awaab's Law step outcomes, and homes before and after their works."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.season import (
    DecisionRec,
    RouteRec,
    RunRec,
    StationHour,
    damp_compliance,
    night_of,
    period_bounds,
    roads_report,
    route_length_m,
    run_salt,
    step_outcomes,
    works_effect,
    works_hours,
)

LONDON = ZoneInfo("Europe/London")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def test_a_night_runs_noon_to_noon_and_is_named_by_its_evening():
    assert night_of(local(2026, 1, 15, 12, 0), LONDON) == date(2026, 1, 15)
    assert night_of(local(2026, 1, 16, 6, 0), LONDON) == date(2026, 1, 15)
    assert night_of(local(2026, 1, 16, 11, 59), LONDON) == date(2026, 1, 15)
    assert night_of(local(2026, 1, 15, 11, 59), LONDON) == date(2026, 1, 14)
    lo, hi = period_bounds(date(2026, 1, 15), date(2026, 1, 16), LONDON)
    assert (lo, hi) == (local(2026, 1, 15, 12), local(2026, 1, 17, 12))
    with pytest.raises(ValueError, match="before it starts"):
        period_bounds(date(2026, 1, 16), date(2026, 1, 15), LONDON)


def test_nights_follow_the_clock_change_in_local_time():
    # 29 March 2026: the clocks go forward; the night still starts at local noon.
    lo, hi = period_bounds(date(2026, 3, 28), date(2026, 3, 28), LONDON)
    assert lo == datetime(2026, 3, 28, 12, tzinfo=UTC) and hi == datetime(2026, 3, 29, 11, tzinfo=UTC)


def test_route_length_is_geodesic_on_wgs84():
    # One degree of longitude on the equator is 111,319.49 m on the WGS 84 ellipsoid.
    assert route_length_m({"type": "LineString", "coordinates": [[0, 0], [1, 0]]}) == pytest.approx(
        111_319.49, abs=0.01
    )
    two = {"type": "MultiLineString", "coordinates": [[[0, 0], [1, 0]], [[0, 0], [0.5, 0], [1, 0]]]}
    assert route_length_m(two) == pytest.approx(2 * 111_319.49, abs=0.02)
    assert route_length_m({"type": "Point", "coordinates": [0, 0]}) is None
    assert route_length_m(None) is None


def test_salt_is_recorded_tonnes_else_rate_times_length_times_width():
    assert run_salt(4.2, 10.0, 12.0, 20_000.0, 7.3) == (4.2, "recorded")
    # 10 g/m2 x 20 km x 7.3 m = 1,460,000 g = 1.46 t
    assert run_salt(None, 10.0, 12.0, 20_000.0, 7.3) == (pytest.approx(1.46), "estimated")
    assert run_salt(None, None, 12.0, 20_000.0, 7.3) == (pytest.approx(1.752), "estimated")
    assert run_salt(None, None, None, 20_000.0, 7.3) == (None, "unknown")
    assert run_salt(None, 10.0, None, None, 7.3) == (None, "unknown")


ROUTE_A = RouteRec("A", "Route A", ("s1",), {"type": "LineString", "coordinates": [[0, 0], [0.1, 0]]})
ROUTE_B = RouteRec("B", "Route B", ("s2", "s3"), None)


def hour(st: str, at: datetime, rst: float, first: datetime | None = None) -> StationHour:
    return StationHour(st, at.replace(minute=0), rst, first)


def run(i: int, route: str, start: datetime, end: datetime | None, status: str = "completed", **kw: object) -> RunRec:
    values: dict[str, object] = {
        "discretionary": False,
        "spread_rate_g_m2": None,
        "decided_rate_g_m2": 10.0,
        "tonnes": None,
    } | kw
    return RunRec(i, route, status, start, end, **values)  # type: ignore[arg-type]


def test_a_season_of_two_routes_counts_in_time_missed_late_needless_and_no_data():
    # Nights 15, 16, 17 January.
    hours = [
        # Route A: 15th freezes at 04:10 (first reading 04:10 in the 04:00 hour); 16th dry at +3; 17th freezes 23:20.
        hour("s1", local(2026, 1, 15, 20), 2.0),
        hour("s1", local(2026, 1, 16, 4), -1.5, local(2026, 1, 16, 4, 10)),
        hour("s1", local(2026, 1, 16, 20), 3.0),
        hour("s1", local(2026, 1, 17, 23), -0.2, local(2026, 1, 17, 23, 20)),
        # Route B: s2 freezes on the 15th at 02:00 from the rollup alone (no raw reading left); s3 warmer.
        hour("s2", local(2026, 1, 16, 2), 0.0),
        hour("s3", local(2026, 1, 16, 2), 1.0),
        # Before the period: ignored.
        hour("s1", local(2026, 1, 15, 11), -5.0, local(2026, 1, 15, 11, 5)),
    ]
    runs = [
        run(1, "A", local(2026, 1, 15, 19), local(2026, 1, 15, 22)),  # in time for 04:10
        run(2, "A", local(2026, 1, 16, 19), local(2026, 1, 16, 21), tonnes=3.0),  # needless: no ice on the 16th
        run(3, "A", local(2026, 1, 18, 0), local(2026, 1, 18, 1, 30), spread_rate_g_m2=20.0),  # late for 23:20
        run(4, "B", local(2026, 1, 15, 20), local(2026, 1, 15, 21), status="cancelled"),
        run(5, "A", local(2026, 1, 17, 19), None, status="in_progress"),  # still out: not counted
    ]
    decisions = [
        DecisionRec(
            10,
            "A",
            "precautionary_salt",
            local(2026, 1, 15, 17),
            local(2026, 1, 15, 17, 20),
            False,
            local(2026, 1, 15, 19),
            local(2026, 1, 15, 22),
        ),
        DecisionRec(11, "A", "monitor", local(2026, 1, 16, 17), None, False, local(2026, 1, 16, 19), None),
        DecisionRec(12, "A", "salt", local(2026, 1, 17, 18), None, True, None, None),
        DecisionRec(13, "B", "none", local(2026, 1, 15, 17), None, False, None, None),
    ]
    rep = roads_report(
        [ROUTE_A, ROUTE_B], hours, decisions, runs, start=date(2026, 1, 15), end=date(2026, 1, 17), zone=LONDON
    )
    a, b = rep["routes"]
    assert (a["ice_nights"], a["treated_in_time"], a["missed"], a["treated_late"], a["needless"]) == (2, 1, 1, 1, 1)
    assert (a["runs_completed"], a["nights_with_data"]) == (3, 3)
    assert (b["ice_nights"], b["missed"], b["treated_in_time"], b["runs_cancelled"], b["nights_with_data"]) == (
        1,
        1,
        0,
        1,
        1,
    )
    assert (a["decisions_issued"], a["treatment_decisions"], a["acknowledged"]) == (3, 2, 2)
    assert a["response"]["acknowledged"] == {"n": 1, "median_min": 20, "p90_min": 20}
    assert a["response"]["started"] == {"n": 2, "median_min": 120, "p90_min": 120}
    assert a["response"]["completed"] == {"n": 1, "median_min": 300, "p90_min": 300}
    # Salt on A (11,131.95 m long): run 1 estimated at the decided 10 g/m2, run 2 recorded 3 t, run 3 at 20 g/m2.
    length = route_length_m(ROUTE_A.geometry)
    assert length is not None
    assert a["length_km"] == pytest.approx(length / 1000, abs=0.001)
    assert a["salt_recorded_t"] == 3.0
    assert a["salt_estimated_t"] == pytest.approx(round((10 + 20) * length * 7.3 / 1e6, 3))
    total = rep["total"]
    assert (total["ice_nights"], total["nights_any_ice"], total["missed"], total["runs_completed"]) == (3, 2, 2, 3)
    assert total["response"]["started"]["n"] == 2
    outcomes = [(n["night"], n["route_id"], n["outcome"]) for n in rep["nights_detail"]]
    assert outcomes == [
        ("2026-01-15", "A", "treated_in_time"),
        ("2026-01-15", "B", "missed"),
        ("2026-01-16", "A", "needless"),
        ("2026-01-17", "A", "missed"),
    ]
    assert rep["nights_detail"][1]["first_ice_at"] == local(2026, 1, 16, 2)  # the hour's start from the rollup


def test_a_route_without_readings_has_no_data_nights_never_no_ice():
    rep = roads_report([ROUTE_B], [], [], [], start=date(2026, 1, 15), end=date(2026, 1, 16), zone=LONDON)
    assert (rep["routes"][0]["nights_with_data"], rep["routes"][0]["ice_nights"]) == (0, 0)


def test_the_treated_width_must_be_positive():
    with pytest.raises(ValueError, match="treated width"):
        roads_report([], [], [], [], start=date(2026, 1, 1), end=date(2026, 1, 1), zone=LONDON, width_m=0)


def case(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "emergency_by": None,
        "investigate_by": None,
        "summary_by": None,
        "safety_work_by": None,
        "preventative_begin_by": None,
        "preventative_physically_started_by": None,
        "investigation_done_at": None,
        "summary_sent_at": None,
        "safety_work_done_at": None,
        "works_started_at": None,
        "closed_at": None,
        "patch": "north",
        "officer": "amy",
    }
    return base | kw


LO, HI = local(2026, 1, 1, 0), local(2026, 2, 1, 0)
NOW = local(2026, 1, 20, 12)


def test_step_outcomes_on_time_late_overdue_open_and_not_needed():
    c = case(
        investigate_by=local(2026, 1, 10, 23, 59),
        investigation_done_at=local(2026, 1, 9, 10),
        summary_by=local(2026, 1, 14, 23, 59),
        summary_sent_at=local(2026, 1, 15, 9),
        safety_work_by=local(2026, 1, 16, 23, 59),
        preventative_begin_by=local(2026, 1, 25, 23, 59),
        preventative_physically_started_by=local(2026, 4, 3, 23, 59),  # outside the period
    )
    assert step_outcomes(c, lo=LO, hi=HI, now=NOW) == [
        ("investigate", "on_time"),
        ("summary", "late"),
        ("safety_work", "overdue"),
        ("preventative_begin", "open"),
    ]
    closed = c | {"closed_at": local(2026, 1, 12, 9)}
    assert ("safety_work", "not_needed") in step_outcomes(closed, lo=LO, hi=HI, now=NOW)


def test_an_emergency_is_done_when_both_the_investigation_and_the_safety_work_are():
    c = case(
        emergency_by=local(2026, 1, 5, 10),
        investigation_done_at=local(2026, 1, 5, 8),
        safety_work_done_at=local(2026, 1, 5, 11),
    )
    assert step_outcomes(c, lo=LO, hi=HI, now=NOW) == [("emergency", "late")]


def test_compliance_per_patch_per_officer_and_in_total():
    cases = [
        case(investigate_by=local(2026, 1, 10, 23), investigation_done_at=local(2026, 1, 9, 9)),
        case(investigate_by=local(2026, 1, 10, 23), patch="south", officer=None),
        case(investigate_by=local(2026, 3, 10, 23)),  # nothing due in the period
    ]
    got = damp_compliance(cases, lo=LO, hi=HI, now=NOW)
    assert [(g["name"], g["on_time"], g["overdue"]) for g in got["by_patch"]] == [("north", 1, 0), ("south", 0, 1)]
    assert [g["name"] for g in got["by_officer"]] == ["(no officer)", "amy"]
    assert got["total"]["steps"]["investigate"] == {"on_time": 1, "late": 0, "overdue": 1, "open": 0, "not_needed": 0}


def test_a_home_whose_works_dried_it_out_improved():
    works_at = local(2026, 1, 20, 10, 30)
    first, n = works_hours(works_at)
    assert (first, n) == (local(2025, 12, 23, 10), 672)
    # Bedroom: 90 % for 12 h a day before, 60 % after; living room 50 % throughout with a gap.
    bed_t = [17.0] * (2 * n)
    bed_rh = [90.0 if (i % 24) < 12 else 60.0 for i in range(n)] + [60.0] * n
    liv_t = [20.0] * (2 * n)
    liv_rh = [50.0] * (2 * n)
    for i in range(100, 200):
        liv_t[i] = liv_rh[i] = math.nan
    rooms = [(bed_t, bed_rh), (liv_t, liv_rh)]
    got = works_effect(rooms, works_at=works_at, now=works_at + timedelta(days=40), zone=LONDON)
    assert got["before"]["hours_above_70"] == 28 * 12 and got["before"]["hours_above_80"] == 28 * 12
    assert got["after"]["hours_above_70"] == 0 and got["after"]["complete"] is True
    assert got["before"]["peak_mould_index"] > 0.1 and got["after"]["peak_mould_index"] == 0.0
    assert got["before"]["coverage"] == 1.0 and got["judged"] and got["improved"]


def test_a_home_with_too_few_readings_after_is_not_judged():
    works_at = local(2026, 1, 20, 10)
    _first, n = works_hours(works_at)
    t = [18.0] * (2 * n)
    rh = [75.0] * n + [math.nan] * n
    got = works_effect([(t, rh)], works_at=works_at, now=works_at + timedelta(days=3), zone=LONDON)
    assert got["after"]["coverage"] == 0.0 and got["after"]["complete"] is False
    assert not got["judged"] and not got["improved"]
    with pytest.raises(ValueError, match="hourly values"):
        works_effect([(t[:10], rh[:10])], works_at=works_at, now=works_at, zone=LONDON)
