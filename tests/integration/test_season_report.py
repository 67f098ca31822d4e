"""What the crews did and the season report, through the real API and PostgreSQL: the seeded season of
tests/season_world.py (the nights of 12 to 14 January 2026, two routes, three damp cases), its report's counts
checked one by one."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import load, station
from tests.season_world import PERIOD, Season, act, decision_row, record, route_feature

pytestmark = pytest.mark.integration


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
    # The route's current decision takes a second run; once an evaluator elsewhere in the run has replaced it (the
    # season is seeded once per run, and a full evaluation finds its stations silent today), only corrections.
    assert a3["actions"] == (["amend", "note"] if a3["superseded_by"] else ["start", "amend", "note"])

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
    replaced = httpx.get(f"{url}/{season.decisions['a3']}", headers=h).json()["superseded_by"] is not None
    assert r.status_code == 409 and (
        "replaced by a newer one" in r.json()["detail"]
        if replaced  # an evaluator elsewhere in the run replaced it (see the test above)
        else r.json()["detail"] == "the decision is already completed: there is nothing to acknowledge"
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
