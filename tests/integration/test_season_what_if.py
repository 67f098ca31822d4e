"""The season report's what-if (GET /api/v1/reports/season?what_if_trigger_c=, POST .../season/what-if,
`placewatch whatif gritting`) on real PostgreSQL over two autumn weeks of the shared Colorado CoTrip file (loaded
as tests/integration/test_nowcast_evaluation.py loads it), with a route over Fraser Flats and US-34/I-25, served
by an API whose council is in Denver."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from core import season
from tests.conftest import start_api
from tests.helpers import load
from tests.integration.test_nowcast_evaluation import DENVER, END, START, _cli
from tests.integration.test_nowcast_evaluation import stations as stations  # the fixture: four stations loaded
from tests.season_world import route_feature

pytestmark = pytest.mark.integration
NIGHTS = 14


@pytest.fixture(scope="module")
def denver_api(database_url: str, mqtt_broker: Any) -> Any:
    """`placewatch api` for a council in America/Denver."""
    p, url = start_api(database_url, mqtt_broker, PLACEWATCH_LOCAL_ZONE=DENVER)
    yield url
    p.stop()


@pytest.fixture(scope="module")
def route(database_url: str, stations: list[str]) -> dict[str, Any]:
    """A route over the first two stations (Fraser Flats, US-34/I-25), drawn between them."""
    from store.db import connect

    picked = stations[:2]
    with connect(database_url, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT id, geometry FROM devices WHERE id = ANY(%s)", (picked,)).fetchall())
    coords = [rows[s]["coordinates"][:2] for s in picked]
    features = [
        {"type": "Feature", "geometry": rows[s], "properties": {"kind": "road_station", "id": s}} for s in picked
    ]
    rid = f"WI-{picked[0]}"
    feature = route_feature(rid, picked, coords)
    load(database_url, *features, feature)
    return {"id": rid, "stations": picked, "length_m": season.route_length_m(feature["geometry"])}


def _mine(what_if: dict[str, Any], rid: str) -> dict[str, Any]:
    (row,) = [r for r in what_if["routes"] if r["route_id"] == rid]
    return row


def _check(row: dict[str, Any]) -> None:
    a, b = row["in_force"], row["other"]
    assert row["covered"] + row["not_covered"] == row["route_nights"]
    for c in (a, b):
        assert c["treated"] - c["needless"] + c["missed"] == row["ice_nights"]  # every ice night treated or missed
        assert 0 <= c["treated"] <= row["covered"]
    assert row["treatments_saved"] == a["treated"] - b["treated"]
    assert row["misses_added"] == b["missed"] - a["missed"]


def test_a_warmer_trigger_treats_more_and_misses_no_more(denver_api, token_for, route):
    h = token_for("highways")
    url = denver_api + "/api/v1/reports/season"
    plain = httpx.get(url, params={"start": START, "end": END}, headers=h, timeout=120)
    assert plain.status_code == 200, plain.text
    assert plain.json()["what_if"]["status"] == "not_computed"

    r = httpx.get(url, params={"start": START, "end": END, "what_if_trigger_c": "2.0"}, headers=h, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    wi = body["what_if"]
    assert wi["status"] == "computed" and wi["tz"] == DENVER
    assert wi["issue_hours"] == [17, 18, 19, 20, 21, 22, 23] and wi["horizon_hours"] == 12
    assert wi["in_force"]["trigger_c"] == 0.5 and wi["other"]["trigger_c"] == 2.0
    row = _mine(wi, route["id"])
    _check(row)
    assert row["route_nights"] == NIGHTS and row["covered"] > 0
    # Fraser Flats froze on October nights: there was ice to treat.
    assert row["ice_nights"] > 0
    roads = {x["route_id"]: x for x in body["roads"]["routes"]}[route["id"]]
    assert row["ice_nights"] <= roads["ice_nights"]  # the season report's ice nights, over the covered ones
    a, b = row["in_force"], row["other"]
    assert b["treated"] >= a["treated"] and b["missed"] <= a["missed"]
    assert row["treatments_saved"] <= 0 and row["misses_added"] <= 0
    # Salt: both at 8 g/m2 (the warmest matrix row) x length x 7.3 m.
    assert row["salt_saved_t"] == pytest.approx(
        (a["treated"] - b["treated"]) * 8 * route["length_m"] * 7.3 / 1e6, abs=2e-3
    )
    # The totals add up over every route the caller sees, and the words say what was not covered.
    t = wi["total"]
    assert t["route_nights"] == NIGHTS * len(wi["routes"])
    assert wi["treatments_saved"] == t["treatments_saved"] == sum(x["treatments_saved"] for x in wi["routes"])
    assert wi["text"].startswith("With the trigger at +2.0 °C instead of +0.5 °C over the ")
    if t["not_covered"]:
        assert f"{t['not_covered']} of {t['route_nights']} not covered" in wi["text"]

    # The same policy as a file gives the same answer; the in-force trigger changes nothing.
    posted = httpx.post(
        url + "/what-if", params={"start": START, "end": END}, json={"trigger_rst_c": 2.0}, headers=h, timeout=300
    )
    assert posted.status_code == 200, posted.text
    assert _mine(posted.json(), route["id"]) == row
    same = httpx.post(
        url + "/what-if", params={"start": START, "end": END}, json={"name": "Same", "trigger_rst_c": 0.5},
        headers=h, timeout=300,
    )  # fmt: skip
    assert same.status_code == 200, same.text
    s = _mine(same.json(), route["id"])
    assert (s["treatments_saved"], s["misses_added"], s["salt_saved_t"]) == (0, 0, 0.0)
    assert same.json()["policy"] == "Same" and same.json()["text"].startswith("Under Same (trigger +0.5 °C)")


def test_a_bad_what_if_is_refused_in_words(denver_api, token_for):
    url = denver_api + "/api/v1/reports/season"
    h = token_for("highways")
    period = {"start": START, "end": END}
    r = httpx.post(url + "/what-if", params=period, json={"trigger_rst_c": "warm"}, headers=h)
    assert r.status_code == 422 and "the policy cannot be read" in r.json()["detail"]
    r = httpx.post(url + "/what-if", params=period, json={"no_such_key": 1}, headers=h)
    assert r.status_code == 422 and "no_such_key" in r.json()["detail"]
    r = httpx.post(url + "/what-if", params=period | {"tz": "Mars/Olympus_Mons"}, json={}, headers=h)
    assert r.status_code == 422 and "unknown time zone" in r.json()["detail"]
    r = httpx.post(url + "/what-if", params={"start": "0001-01-01", "end": "0001-01-02"}, json={}, headers=h)
    assert r.status_code == 422 and "out of range" in r.json()["detail"]
    r = httpx.get(url, params=period | {"what_if_trigger_c": "40"}, headers=h)
    assert r.status_code == 422
    officer = token_for("officer", patch="p")
    assert httpx.post(url + "/what-if", params=period, json={}, headers=officer).status_code == 403
    r = httpx.get(url, params=period | {"what_if_trigger_c": "1"}, headers=officer)
    assert r.status_code == 403 and "highways" in r.json()["detail"]


def test_the_command_prints_the_same_answer(denver_api, token_for, database_url, route, tmp_path):
    policy = tmp_path / "warmer.json"
    policy.write_text(json.dumps({"trigger_rst_c": 2.0}))
    out = _cli(database_url, "whatif", "gritting", "--start", START, "--end", END, "--policy", str(policy), "--json",
               PLACEWATCH_LOCAL_ZONE=DENVER)  # fmt: skip
    assert out.returncode == 0, out.stderr
    api = httpx.post(
        denver_api + "/api/v1/reports/season/what-if", params={"start": START, "end": END},
        json={"name": "warmer.json", "trigger_rst_c": 2.0}, headers=token_for("admin"), timeout=300,
    ).json()  # fmt: skip
    got = json.loads(out.stdout)
    assert got["total"] == api["total"] and got["text"] == api["text"] and got["policy"] == "warmer.json"
    text = _cli(database_url, "whatif", "gritting", "--start", START, "--end", END, "--policy", str(policy),
                PLACEWATCH_LOCAL_ZONE=DENVER)  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "All routes" in text.stdout and f"Route {route['id']}"[:23] in text.stdout  # names cut to the column
    missing = _cli(database_url, "whatif", "gritting", "--start", START, "--end", END, "--policy", "/nonexistent")
    assert missing.returncode == 2 and "gritting policy file" in missing.stderr
