"""What the crews did and the season report, through the real API and PostgreSQL.

A seeded season (the nights of 12 to 14 January 2026, two routes): station readings written through ingest's
writer, decisions recorded by the store exactly as the evaluator records them (one re-issued with the same
treatment), and everything people did recorded through the API with the times it happened: acknowledgements,
runs with spread rate, tonnes, vehicle and crew, a discretionary run on a Monitor decision, a run called back
and a second run. Damp cases on Awaab's Law clocks with their steps done on time, late, never, and works
completed in a home whose readings dried out after. The report's counts are then checked one by one.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.model import Reading
from core.season import route_length_m
from core.workdays import add_working_days
from store import damp as damp_store
from store import gritting as grit_store
from store.db import connect
from tests.e2e.world import forget_readings, write
from tests.helpers import home, load, sensor, station

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
PERIOD = {"start": "2026-01-12", "end": "2026-01-14"}


def local(d: int, h: int, mi: int = 0, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def route_feature(rid: str, stations: list[str], coords: list[list[float]]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {"kind": "route", "id": rid, "name": f"Route {rid}", "priority": 1, "stations": stations},
    }


def decision_row(rid: str, previous: int | None, action: str, issued: datetime, **kw: Any) -> dict[str, Any]:
    """A decision as alerts.gritting hands it to store.record_decisions."""
    rate = kw.get("rate")
    row = {
        "route_id": rid,
        "previous_id": previous,
        "action": action,
        "rule": "seeded_for_the_season_report",
        "spread_rate_g_m2": rate,
        "passes": 1,
        "spread_type": "dry",
        "road_wetness": "dry",
        "call_out_by": kw.get("call_out_by"),
        "start_by": None,
        "complete_by": None,
        "start_not_before": None,
        "trigger_at": None,
        "treat_now": False,
        "late": False,
        "worst_station": None,
        "min_rst": None,
        "min_rst_at": None,
        "hazard": None,
        "reasons": ["seeded"],
        "message": f"{action} on {rid}",
        "confidence": 0.9,
        "horizon_hours": 0,
        "forecast_id": None,
        "material_key": [action, rate],
        "evidence": {"seeded": True},
        "issued_at": issued,
    }
    return row


def record(dsn: str, row: dict[str, Any]) -> int:
    with connect(dsn) as conn:
        stored, skipped = grit_store.record_decisions(
            conn, decisions=[row], evaluated=[row["route_id"]], at=row["issued_at"]
        )
        conn.commit()
    assert not skipped, skipped
    return stored[0][0]


def act(api_url: str, headers: dict[str, str], did: int, action: str, **body: Any) -> dict[str, Any]:
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in body.items()}
    r = httpx.post(f"{api_url}/api/v1/gritting/decisions/{did}/{action}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def case_act(api_url: str, headers: dict[str, str], cid: int, action: str, at: datetime, note: str | None = None):
    body = {"action": action, "at": at.isoformat(), "note": note}
    r = httpx.post(f"{api_url}/api/v1/damp/cases/{cid}/actions", json=body, headers=headers)
    assert r.status_code == 200, r.text


def rst_readings(dev: str, start: datetime, end: datetime, freezes: list[tuple[datetime, datetime, float]]):
    """Road surface temperature every 30 minutes: +3 °C, but `value` within each (from, to) freeze."""
    out, t = [], start
    while t < end:
        v = next((val for a, b, val in freezes if a <= t < b), 3.0)
        out.append(Reading(dev, "road_surface_temperature", t, v))
        t += timedelta(minutes=30)
    return out


@dataclass
class Season:
    uid: str
    routes: dict[str, str]
    decisions: dict[str, int]
    patch: str
    officer: str
    cases: dict[str, int]
    length_a_m: float
    devices: list[str]


@pytest.fixture(scope="module")
def season(database_url: str, api_url: str, make_user: Any, token_for: Any) -> Iterator[Season]:
    uid = uuid.uuid4().hex[:6]
    sa, sb, ra, rb = f"rws-a-{uid}", f"rws-b-{uid}", f"A-{uid}", f"B-{uid}"
    line_a = [[-1.90, 52.48], [-1.85, 52.49], [-1.80, 52.49]]
    patch = f"season-{uid}"
    homes = {k: f"uprn-{uid}-{k}" for k in ("c1", "c2", "c3")}
    room = f"{homes['c1']}/kitchen"
    load(
        database_url,
        station(sa),
        station(sb),
        route_feature(ra, [sa], line_a),
        route_feature(rb, [sb], [[-1.9, 52.40], [-1.9, 52.41]]),
        *[home(h, patch) for h in homes.values()],
        sensor(room, homes["c1"], "kitchen"),
    )
    # Readings: A freezes on the night of the 12th (03:00 on the 13th) and of the 14th (22:00); B on the 13th
    # (05:00 on the 14th) and has no readings on the night of the 14th.
    readings = rst_readings(
        sa, local(12, 12), local(15, 12), [(local(13, 3), local(13, 6), -1.0), (local(14, 22), local(15, 2), -0.5)]
    )
    readings += rst_readings(sb, local(12, 12), local(14, 12), [(local(14, 5), local(14, 7), -0.3)])
    # The kitchen: hourly; humid (85 %) half of each day for four weeks before the works, 55 % after.
    works_at = local(13, 10)
    t = works_at - timedelta(days=28)
    while t < works_at + timedelta(days=28):
        humid = t < works_at and t.hour < 12
        readings += [
            Reading(room, "temperature", t, 17.0),
            Reading(room, "relative_humidity", t, 85.0 if humid else 55.0),
        ]
        t += timedelta(hours=1)
    write(database_url, readings)

    highways = token_for("highways")
    officer, password = make_user("officer", patch=patch)
    r = httpx.post(api_url + "/api/v1/auth/token", data={"username": officer, "password": password})
    officer_h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    d: dict[str, int] = {}
    # Route A. Night 12: precautionary salting, acknowledged after 15 min, a run with tonnes.
    d["a1"] = record(database_url, decision_row(ra, None, "precautionary_salt", local(12, 17), rate=10.0))
    act(api_url, highways, d["a1"], "acknowledge", at=local(12, 17, 15), note="crews on standby")
    act(api_url, highways, d["a1"], "start", at=local(12, 19), vehicle="Gritter 7", crew="J. Smith, A. Khan")
    act(api_url, highways, d["a1"], "complete", at=local(12, 21, 30), tonnes=2.5, spread_rate_g_m2=10.0)
    # Night 13: Monitor; the duty officer treats anyway (discretionary, 8 g/m2, no tonnes).
    d["a2"] = record(database_url, decision_row(ra, d["a1"], "monitor", local(13, 17)))
    act(api_url, highways, d["a2"], "start", at=local(13, 20), reason="police report ice on the bridge",
        spread_rate_g_m2=8.0, vehicle="Gritter 3")  # fmt: skip
    act(api_url, highways, d["a2"], "complete", at=local(13, 22))
    # Night 14: salting at 15 g/m2, never acknowledged; the run starts after the freeze (missed, treated late).
    d["a3"] = record(database_url, decision_row(ra, d["a2"], "salt", local(14, 18), rate=15.0))
    act(api_url, highways, d["a3"], "start", at=local(14, 23))
    act(api_url, highways, d["a3"], "complete", at=local(15, 1))
    # Route B. Night 12: nothing. Night 13: precautionary salting acknowledged after 40 min, then re-issued
    # with the same treatment and a later call-out (keeps the acknowledgement); a run called back, a second run.
    d["b1"] = record(database_url, decision_row(rb, None, "none", local(12, 17)))
    d["b2"] = record(database_url, decision_row(rb, d["b1"], "precautionary_salt", local(13, 17), rate=10.0,
                                                 call_out_by=local(13, 19)))  # fmt: skip
    act(api_url, highways, d["b2"], "acknowledge", at=local(13, 17, 40))
    d["b3"] = record(database_url, decision_row(rb, d["b2"], "precautionary_salt", local(13, 18), rate=10.0,
                                                 call_out_by=local(13, 19, 30)))  # fmt: skip
    act(api_url, highways, d["b3"], "start", at=local(13, 20), vehicle="Gritter 9")
    act(api_url, highways, d["b3"], "cancel-run", at=local(13, 20, 30), note="gritter 9 broke down")
    act(api_url, highways, d["b3"], "start", at=local(13, 21), vehicle="Gritter 4", crew="P. Jones")
    act(api_url, highways, d["b3"], "complete", at=local(13, 23), tonnes=1.2)

    # Damp: three cases the landlord became aware of on Monday 29 December 2025 (investigate by 13 January).
    aware = local(29, 9, month=12, year=2025)
    with connect(database_url) as conn:
        cases = damp_store.open_cases(
            conn,
            [
                damp_store.NewCase(
                    home_id=h,
                    opened_at=aware,
                    aware_at=aware,
                    investigate_by=add_working_days(aware, 10),
                    assessment_id=None,
                    evidence_json='{"seeded": true}',
                    event=damp_store.Event(at=aware, actor="placewatch", actor_role="system", action="opened"),
                    officer=officer if k != "c3" else None,
                )
                for k, h in homes.items()
            ],
        )
        conn.commit()
    c = {k: cases[h] for k, h in homes.items()}
    # c1: investigated on 8 January (on time), summary on the 14th (late: due the 13th), works done on the 13th.
    case_act(api_url, officer_h, c["c1"], "investigation_done", local(8, 10))
    case_act(api_url, officer_h, c["c1"], "works_started", local(9, 10))
    case_act(api_url, officer_h, c["c1"], "works_completed", works_at)
    case_act(api_url, officer_h, c["c1"], "summary_sent", local(14, 9))
    # c2 is never investigated (overdue); c3 is closed with a reason before any investigation (not needed).
    case_act(api_url, token_for("admin"), c["c3"], "close", local(10, 9), note="tenant moved out")

    length = route_length_m({"type": "LineString", "coordinates": line_a})
    assert length is not None
    yield Season(uid, {"a": ra, "b": rb}, d, patch, officer, c, length, [sa, sb, room])
    forget_readings(database_url, [sa, sb, room])


def report(api_url: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(f"{api_url}/api/v1/reports/season", params=PERIOD | params, headers=headers)


def test_treatment_runs_are_recorded_with_their_figures_and_history(api_url: str, season: Season, token_for: Any):
    h = token_for("highways")
    a2 = httpx.get(f"{api_url}/api/v1/gritting/decisions/{season.decisions['a2']}", headers=h).json()
    (run,) = a2["runs"]
    assert run["discretionary"] and run["reason"] == "police report ice on the bridge"
    assert (run["spread_rate_g_m2"], run["vehicle"], run["tonnes"], run["status"]) == (
        8.0,
        "Gritter 3",
        None,
        "completed",
    )
    assert [e["event"] for e in a2["history"]] == ["issued", "started", "completed"]
    assert a2["actions"] == ["amend", "note"]  # replaced by the next night's: notes and corrections of its run
    a3 = httpx.get(f"{api_url}/api/v1/gritting/decisions/{season.decisions['a3']}", headers=h).json()
    assert a3["actions"] == ["start", "amend", "note"]  # the route's current decision: a second run is possible

    b3 = httpx.get(f"{api_url}/api/v1/gritting/decisions/{season.decisions['b3']}", headers=h).json()
    assert [(r["number"], r["status"], r["vehicle"]) for r in b3["runs"]] == [
        (1, "cancelled", "Gritter 9"),
        (2, "completed", "Gritter 4"),
    ]
    # The re-issued decision kept the acknowledgement, and its card shows the earlier decision's history too.
    events = [(e["decision_id"], e["event"]) for e in b3["history"]]
    b2 = season.decisions["b2"]
    assert events[:3] == [(b2, "issued"), (b2, "acknowledged"), (b2, "superseded")] or events[:2] == [
        (b2, "issued"),
        (b2, "acknowledged"),
    ]
    assert (season.decisions["b3"], "carried_over") in events
    assert [e["note"] for e in b3["history"] if e["event"] == "run_cancelled"] == ["gritter 9 broke down"]


def test_what_is_not_allowed_is_refused_in_words(api_url: str, season: Season, token_for: Any):
    h = token_for("highways")
    url = f"{api_url}/api/v1/gritting/decisions"
    r = httpx.post(f"{url}/{season.decisions['a1']}/start", json={}, headers=h)
    assert r.status_code == 409 and "replaced by a newer one" in r.json()["detail"]
    r = httpx.post(f"{url}/{season.decisions['a3']}/acknowledge", json={}, headers=h)
    assert (
        r.status_code == 409
        and r.json()["detail"] == "the decision is already completed: there is nothing to acknowledge"
    )
    r = httpx.post(f"{url}/{season.decisions['a3']}/acknowledge", json={"tonnes": 3}, headers=h)
    assert r.status_code == 422 and "belong to a run" in r.json()["detail"]
    r = httpx.post(f"{url}/{season.decisions['a3']}/note", json={"at": "2099-01-01T00:00:00Z", "note": "x"}, headers=h)
    assert r.status_code == 422
    r = httpx.post(f"{url}/{season.decisions['a3']}/start", json={"tonnes": -1}, headers=h)
    assert r.status_code == 422
    officer = token_for("officer", patch=season.patch)
    assert httpx.post(f"{url}/{season.decisions['a3']}/note", json={"note": "x"}, headers=officer).status_code == 403


def test_the_roads_report_counts_what_happened_night_by_night(api_url: str, season: Season, token_for: Any):
    r = report(api_url, token_for("highways"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["damp"] is None and body["what_if"]["status"] == "not_computed"
    roads = body["roads"]
    by = {row["route_id"]: row for row in roads["routes"]}
    a, b = by[season.routes["a"]], by[season.routes["b"]]
    assert {k: a[k] for k in COUNTS} == {
        "nights": 3, "nights_with_data": 3, "ice_nights": 2, "decisions_issued": 3, "treatment_decisions": 2,
        "acknowledged": 3, "runs_completed": 3, "runs_discretionary": 1, "runs_cancelled": 0, "treated_in_time": 1,
        "missed": 1, "treated_late": 1, "needless": 1,
    }  # fmt: skip
    assert {k: b[k] for k in COUNTS} == {
        "nights": 3, "nights_with_data": 2, "ice_nights": 1, "decisions_issued": 3, "treatment_decisions": 2,
        "acknowledged": 2, "runs_completed": 1, "runs_discretionary": 0, "runs_cancelled": 1, "treated_in_time": 1,
        "missed": 0, "treated_late": 0, "needless": 0,
    }  # fmt: skip
    # Response times (minutes): A acknowledged 15, 180 (the discretionary start), 300; B 40, 120 (run start).
    assert a["response"]["acknowledged"] == {"n": 3, "median_min": 180, "p90_min": 300}
    assert a["response"]["started"] == {"n": 3, "median_min": 180, "p90_min": 300}
    assert a["response"]["completed"] == {"n": 3, "median_min": 300, "p90_min": 420}
    assert b["response"]["acknowledged"] == {"n": 2, "median_min": 40, "p90_min": 120}
    assert b["response"]["completed"] == {"n": 1, "median_min": 300, "p90_min": 300}
    # Salt: A recorded 2.5 t; estimated 8 g/m2 (used) and 15 g/m2 (decided) x length x 7.3 m.
    assert a["salt_recorded_t"] == 2.5
    assert a["salt_estimated_t"] == pytest.approx(round((8 + 15) * season.length_a_m * 7.3 / 1e6, 3), abs=1e-3)
    assert a["length_km"] == pytest.approx(season.length_a_m / 1000, abs=1e-3)
    assert b["salt_t"] == 1.2 and b["salt_estimated_t"] == 0
    nights = [(n["night"], n["outcome"]) for n in roads["nights_detail"] if n["route_id"] == season.routes["a"]]
    assert nights == [("2026-01-12", "treated_in_time"), ("2026-01-13", "needless"), ("2026-01-14", "missed")]
    first_ice = [n["first_ice_at"] for n in roads["nights_detail"] if n["route_id"] == season.routes["b"]]
    assert first_ice == ["2026-01-14T05:00:00Z"]
    total = roads["total"]
    assert (total["ice_nights"], total["missed"], total["treated_in_time"], total["runs_completed"]) == (3, 1, 2, 4)


COUNTS = (
    "nights", "nights_with_data", "ice_nights", "decisions_issued", "treatment_decisions", "acknowledged",
    "runs_completed", "runs_discretionary", "runs_cancelled", "treated_in_time", "missed", "treated_late", "needless",
)  # fmt: skip


def test_the_damp_report_counts_awaabs_law_steps_and_the_works_that_dried_a_home(
    api_url: str, season: Season, make_user: Any
):
    name, password = make_user("officer", patch=season.patch)
    tok = httpx.post(api_url + "/api/v1/auth/token", data={"username": name, "password": password}).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    body = report(api_url, h).json()
    assert body["roads"] is None
    damp = body["damp"]
    total = damp["compliance"]["total"]
    assert {k: total[k] for k in ("on_time", "late", "overdue", "open", "not_needed")} == {
        "on_time": 1, "late": 1, "overdue": 1, "open": 0, "not_needed": 1,
    }  # fmt: skip
    assert total["steps"]["investigate"] == {"on_time": 1, "late": 0, "overdue": 1, "open": 0, "not_needed": 1}
    assert total["steps"]["summary"]["late"] == 1
    assert [(g["name"], g["on_time"], g["late"], g["overdue"]) for g in damp["compliance"]["by_patch"]] == [
        (season.patch, 1, 1, 1)
    ]
    officers = {
        g["name"]: (g["on_time"], g["late"], g["overdue"], g["not_needed"]) for g in damp["compliance"]["by_officer"]
    }
    assert officers == {season.officer: (1, 1, 1, 0), "(no officer)": (0, 0, 0, 1)}
    (works,) = damp["works"]
    assert works["case_id"] == season.cases["c1"]
    assert (works["before"]["hours_above_70"], works["before"]["hours_above_80"]) == (336, 336)
    assert (works["after"]["hours_above_70"], works["after"]["hours_above_80"]) == (0, 0)
    assert works["before"]["peak_mould_index"] > works["after"]["peak_mould_index"]
    assert works["judged"] and works["improved"]
    assert damp["works_summary"] == {"homes": 1, "judged": 1, "improved": 1}


def test_csv_export_of_each_table(api_url: str, season: Season, token_for: Any):
    admin = token_for("admin")
    r = report(api_url, admin, format="csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    a = next(row for row in rows if row["route_id"] == season.routes["a"])
    assert (a["ice_nights"], a["missed"], a["salt_recorded_t"], a["to_acknowledged_median_min"]) == (
        "2",
        "1",
        "2.5",
        "180",
    )
    assert rows[-1]["route_name"] == "All routes"
    r = httpx.get(
        f"{api_url}/api/v1/reports/season", params=PERIOD | {"table": "homes"}, headers=admin | {"Accept": "text/csv"}
    )
    homes = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["home_id"], x["before_hours_above_70"], x["improved"]) for x in homes] == [
        (f"uprn-{season.uid}-c1", "336", "True")
    ]
    officer = token_for("officer", patch=season.patch)
    assert report(api_url, officer, format="csv", table="routes").status_code == 403
    assert report(api_url, token_for("highways"), format="csv", table="patches").status_code == 403


def test_who_may_read_the_report_and_bad_periods(api_url: str, season: Season, token_for: Any):
    assert report(api_url, token_for("tenant", home=f"uprn-{season.uid}-c1")).status_code == 403
    assert httpx.get(f"{api_url}/api/v1/reports/season", params=PERIOD).status_code == 401
    bad = report(api_url, token_for("admin"), start="2026-01-14", end="2026-01-12")
    assert bad.status_code == 422 and "before start" in bad.json()["detail"]
    long = report(api_url, token_for("admin"), start="2020-01-01", end="2026-01-12")
    assert long.status_code == 422 and "shorter" in long.json()["detail"]


def test_a_run_out_carries_on_under_a_reissued_decision_whatever_it_says(
    api_url: str, database_url: str, token_for: Any
):
    uid = uuid.uuid4().hex[:6]
    rid, dev = f"C-{uid}", f"rws-c-{uid}"
    load(database_url, station(dev), route_feature(rid, [dev], [[-1.9, 52.3], [-1.8, 52.3]]))
    h = token_for("highways")
    now = datetime.now(UTC).replace(microsecond=0)
    first = record(database_url, decision_row(rid, None, "salt", now - timedelta(hours=2), rate=10.0))
    act(api_url, h, first, "start", at=now - timedelta(hours=1), vehicle="Gritter 2")
    # The road warmed up: the evaluator now says no action, while the crew is still out.
    second = record(database_url, decision_row(rid, first, "none", now - timedelta(minutes=30)))
    d = httpx.get(f"{api_url}/api/v1/gritting/decisions/{second}", headers=h).json()
    assert d["status"] == "in_progress" and d["actions"] == ["complete", "cancel_run", "cancel", "note"]
    (run,) = d["runs"]
    assert (run["decision_id"], run["started_under"], run["status"], run["vehicle"]) == (
        second,
        first,
        "in_progress",
        "Gritter 2",
    )
    assert [e["note"] for e in d["history"] if e["event"] == "carried_over"] == [
        "run 1 is still out: it carries on under this decision"
    ]
    done = act(api_url, h, second, "complete", tonnes=0.9)
    assert done["status"] == "completed" and done["runs"][0]["tonnes"] == 0.9
    # The weighbridge says 1.1 t: the figure is corrected, and the correction is in the history in words.
    fixed = act(api_url, h, second, "run-figures", tonnes=1.1)
    assert fixed["runs"][0]["tonnes"] == 1.1 and fixed["status"] == "completed"
    assert fixed["history"][-1]["note"] == "run 1 corrected: salt 0.9 t -> 1.1 t"
    url = f"{api_url}/api/v1/gritting/decisions/{second}/run-figures"
    again = httpx.post(url, json={"tonnes": 1.1}, headers=h)
    assert again.status_code == 409 and again.json()["detail"] == "those are already the figures of run 1"
    assert httpx.post(url, json={"note": "x"}, headers=h).status_code == 422
    old = httpx.get(f"{api_url}/api/v1/gritting/decisions/{first}", headers=h).json()
    assert old["status"] == "superseded" and old["actions"] == ["note"]
