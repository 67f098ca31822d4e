"""Case ownership, booked visits and the admin pages' API, through the real HTTP API with cases opened by the real
damp evaluator: a case goes to the least loaded officer of its patch, a patch with no officer leaves its case
unowned (and says so, in words, on the API the pages read), only officers of the patch may take a case on, the
tenant sees the visit booked and the council's contact; admins add, disable and reset users, see stale devices,
and add an unknown device to the registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from store.db import connect
from tests.e2e.world import evaluators, forget_readings, home, home_readings, load_features, room_sensors, write

pytestmark = pytest.mark.integration


def sign_in(api_url: str, name: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def world(database_url: str, mqtt_broker: Any, api_url: str, make_user: Any) -> Iterator[dict[str, Any]]:
    """Patch north with two officers (ann has a case already... none: both start at 0) and three red homes; patch
    south with one red home and no officer."""
    uid = uuid.uuid4().hex[:6]
    north, south = f"north-{uid}", f"south-{uid}"
    homes = {f"n{i}": f"uprn-{uid}-n{i}" for i in range(3)} | {"s0": f"uprn-{uid}-s0"}
    features = []
    for label, hid in homes.items():
        features.append(home(hid, north if label.startswith("n") else south, f"{label} Damp Street", -1.89, 52.48))
        features += room_sensors(hid)
    load_features(database_url, *features)
    officers = [make_user("officer", patch=north), make_user("officer", patch=north)]
    now = datetime.now(UTC).replace(microsecond=0)
    readings = []
    for hid in homes.values():
        readings += home_readings(hid, "cold_damp", now - timedelta(days=10), now)
    write(database_url, readings)
    with evaluators(database_url, mqtt_broker, f"pw-test-{uid}/v1") as ev:
        ev.judge_homes(f"{hid}/{room}" for hid in homes.values() for room in ("bedroom", "living room"))
    with connect(database_url) as conn:
        cases = dict(
            conn.execute("SELECT home_id, id FROM damp_cases WHERE home_id = ANY(%s)", (list(homes.values()),))
        )
    tenant = make_user("tenant", home=homes["n0"])
    admin = make_user("admin")
    yield {
        "uid": uid,
        "north": north,
        "south": south,
        "homes": homes,
        "cases": {label: cases[hid] for label, hid in homes.items()},
        "officers": officers,
        "tenant": tenant,
        "admin": admin,
    }
    forget_readings(database_url, [f"{hid}/{room}" for hid in homes.values() for room in ("bedroom", "living room")])


def test_cases_go_to_the_least_loaded_officers_of_the_patch_and_a_patch_with_none_is_shown_unowned(
    api_url: str, world: dict[str, Any]
):
    admin = sign_in(api_url, *world["admin"])
    cases = {
        label: httpx.get(f"{api_url}/api/v1/damp/cases/{cid}", headers=admin).json()
        for label, cid in world["cases"].items()
    }
    names = sorted(n for n, _ in world["officers"])
    north = sorted(cases[k]["officer"] for k in ("n0", "n1", "n2"))
    assert set(north) == set(names) and sorted(north.count(n) for n in names) == [1, 2]  # shared out
    assert all(cases[k]["owner_problem"] is None for k in ("n0", "n1", "n2"))
    assert "opened" == cases["n0"]["history"][0]["action"] and "responsible" in cases["n0"]["history"][0]["note"]
    south = cases["s0"]
    assert south["officer"] is None
    assert south["owner_problem"] == "No officer is responsible for this case: assign one."
    assert "No housing officer looks after patch" in south["history"][0]["note"]

    patches = {p["patch"]: p for p in httpx.get(f"{api_url}/api/v1/damp/patches", headers=admin).json()}
    assert patches[world["north"]]["problems"][:1] != [
        "No housing officer looks after this patch: its cases have nobody responsible."
    ]
    assert [o["name"] for o in patches[world["north"]]["officers"]] == names
    sp = patches[world["south"]]
    assert sp["officers"] == [] and sp["unowned_cases"] == 1 and sp["recipients"] == []
    assert "No housing officer looks after this patch: its cases have nobody responsible." in sp["problems"]
    assert any(p.startswith("Nobody is notified of new or overdue cases") for p in sp["problems"])
    # An officer sees only their own patch.
    officer = sign_in(api_url, *world["officers"][0])
    assert [p["patch"] for p in httpx.get(f"{api_url}/api/v1/damp/patches", headers=officer).json()] == [world["north"]]


def test_only_valid_next_actions_are_offered_and_refusals_are_in_words(api_url: str, world: dict[str, Any]):
    officer = sign_in(api_url, *world["officers"][0])
    cid = world["cases"]["n1"]
    case = httpx.get(f"{api_url}/api/v1/damp/cases/{cid}", headers=officer).json()
    offered = [a["action"] for a in case["allowed_actions"]]
    assert offered == ["acknowledge", "visit", "investigation_done", "confirm_emergency", "close"]
    r = httpx.post(f"{api_url}/api/v1/damp/cases/{cid}/actions", headers=officer, json={"action": "summary_sent"})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        "the written summary follows the investigation: record that the investigation is done first"
    )
    r = httpx.post(f"{api_url}/api/v1/damp/cases/{cid}/actions", headers=officer, json={"action": "acknowledge"})
    assert r.status_code == 200 and "acknowledge" not in [a["action"] for a in r.json()["allowed_actions"]]
    assert r.json()["history"][-1]["what"] == "Report acknowledged"


def test_only_an_officer_of_the_patch_can_be_made_responsible_and_the_history_says_who_changed_it(
    api_url: str, world: dict[str, Any], make_user: Any
):
    admin = sign_in(api_url, *world["admin"])
    cid = world["cases"]["s0"]
    url = f"{api_url}/api/v1/damp/cases/{cid}/officer"
    north_officer = world["officers"][0][0]
    r = httpx.put(url, headers=admin, json={"officer": north_officer})
    assert r.status_code == 409 and r.json()["detail"] == (
        f"{north_officer} looks after patch {world['north']}, not {world['south']}, so could not see this case"
    )
    assert httpx.put(url, headers=admin, json={"officer": "nobody-" + world["uid"]}).json()["detail"] == (
        f"there is no user called nobody-{world['uid']}"
    )
    south_name, south_password = make_user("officer", patch=world["south"])
    r = httpx.put(url, headers=admin, json={"officer": south_name, "note": "new starter for the south"})
    assert r.status_code == 200, r.text
    case = r.json()
    assert case["officer"] == south_name and case["owner_problem"] is None
    last = case["history"][-1]
    assert (last["action"], last["actor"], last["what"]) == ("assign", world["admin"][0], "Responsible officer changed")
    # Disabling the officer makes the case unowned again, in words, and their session ends at once.
    south = sign_in(api_url, south_name, south_password)
    assert httpx.get(f"{api_url}/api/v1/damp/cases/{cid}", headers=south).status_code == 200
    r = httpx.patch(f"{api_url}/api/v1/admin/users/{quote(south_name)}", headers=admin, json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    case = httpx.get(f"{api_url}/api/v1/damp/cases/{cid}", headers=admin).json()
    assert "disabled" in case["owner_problem"]
    assert (
        httpx.post(
            f"{api_url}/api/v1/auth/token", data={"username": south_name, "password": south_password}
        ).status_code
        == 401
    )
    gone = httpx.get(f"{api_url}/api/v1/damp/cases/{cid}", headers=south)
    assert gone.status_code == 401 and "disabled" in gone.json()["detail"]


def test_the_tenant_sees_the_visit_booked_and_the_councils_contact(api_url: str, world: dict[str, Any]):
    officer = sign_in(api_url, *world["officers"][0])
    cid = world["cases"]["n0"]
    visit_at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=10, minute=30, second=0, microsecond=0)
    past = httpx.put(
        f"{api_url}/api/v1/damp/cases/{cid}/visit",
        headers=officer,
        json={"at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
    )
    assert past.status_code == 409 and "has passed" in past.json()["detail"]
    r = httpx.put(
        f"{api_url}/api/v1/damp/cases/{cid}/visit",
        headers=officer,
        json={"at": visit_at.isoformat(), "note": "Sam from the repairs team"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["next_visit"]["note"] == "Sam from the repairs team"
    tenant = sign_in(api_url, *world["tenant"])
    home = httpx.get(f"{api_url}/api/v1/homes/{quote(world['homes']['n0'], safe='')}", headers=tenant).json()
    assert home["case"]["next_visit"]["at"] == visit_at.isoformat().replace("+00:00", "Z")
    assert set(home["contact"]) == {"name", "phone", "email", "repair_url"}
    council = httpx.get(f"{api_url}/api/v1/council").json()  # no sign-in
    assert council["open_data_licence"]["name"] == "Open Government Licence v3.0"
    assert council["winter_policy_name"] == "the council's winter service policy"
    # A visit recorded clears the booking.
    r = httpx.post(f"{api_url}/api/v1/damp/cases/{cid}/actions", headers=officer, json={"action": "visit"})
    assert r.status_code == 200 and r.json()["next_visit"] is None


def test_admins_add_users_reset_passwords_and_assign_homes_and_patches(api_url: str, world: dict[str, Any]):
    admin = sign_in(api_url, *world["admin"])
    name = f"officer-new-{world['uid']}"
    users = f"{api_url}/api/v1/admin/users"
    bad = httpx.post(users, headers=admin, json={"name": name, "role": "officer", "password": "long-enough"})
    assert bad.status_code == 422 and bad.json()["detail"] == "a housing officer needs the patch they look after"
    nowhere = httpx.post(
        users, headers=admin, json={"name": name, "role": "officer", "password": "long-enough", "patch": "atlantis"}
    )
    assert nowhere.status_code == 422 and "no home in the registry is in patch 'atlantis'" in nowhere.json()["detail"]
    body = {"name": name, "role": "officer", "password": "long-enough", "patch": world["south"], "email": "o@x.example"}
    r = httpx.post(users, headers=admin, json=body)
    assert r.status_code == 201 and r.json()["patch"] == world["south"] and "password" not in r.text
    assert httpx.post(users, headers=admin, json=body).json()["detail"] == f"a user called {name} already exists"
    sign_in(api_url, name, "long-enough")
    r = httpx.put(f"{users}/{name}/password", headers=admin, json={"password": "another-password"})
    assert r.status_code == 200
    assert (
        httpx.post(f"{api_url}/api/v1/auth/token", data={"username": name, "password": "long-enough"}).status_code
        == 401
    )
    session = sign_in(api_url, name, "another-password")
    patches = f"{api_url}/api/v1/damp/patches"
    assert [p["patch"] for p in httpx.get(patches, headers=session).json()] == [world["south"]]
    r = httpx.patch(f"{users}/{name}", headers=admin, json={"patch": world["north"]})
    assert r.status_code == 200 and r.json()["patch"] == world["north"]
    # The new patch applies to the session already open.
    assert [p["patch"] for p in httpx.get(patches, headers=session).json()] == [world["north"]]
    listed = {u["name"]: u for u in httpx.get(users, headers=admin).json()}
    assert listed[name]["role"] == "officer" and listed[name]["email"] == "o@x.example"
    assert httpx.patch(f"{users}/{world['admin'][0]}", headers=admin, json={"disabled": True}).status_code == 409
    officer = sign_in(api_url, *world["officers"][0])
    assert httpx.get(users, headers=officer).status_code == 403


def test_admins_see_stale_devices_and_add_unknown_ones_to_the_registry(
    api_url: str, world: dict[str, Any], database_url: str
):
    admin = sign_in(api_url, *world["admin"])
    uid = world["uid"]
    stale, unknown = f"rws-stale-{uid}", f"unknown-{uid}"
    load_features(
        database_url,
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-1.9, 52.5]},
            "properties": {
                "kind": "road_station",
                "id": stale,
                "name": f"Stale Lane {uid}",
                "expected_interval_s": 600,
            },
        },
    )
    with connect(database_url, autocommit=True) as conn:
        # Last seen two hours ago: the device row and its series (where ingest marks it seen, migration 0023).
        conn.execute("UPDATE devices SET last_seen = now() - interval '2 hours' WHERE id = %s", (stale,))
        conn.execute("UPDATE device_state SET seen_at = now() - interval '2 hours' WHERE device_id = %s", (stale,))
        conn.execute(
            """INSERT INTO dead_letters (received_at, topic, payload, reason, device_id, format)
               VALUES (now(), %s, %s, 'unknown device: not in the registry', %s, 'native')""",
            (f"placewatch/v1/devices/{unknown}/readings", b'{"road_surface_temperature": 1.5}', unknown),
        )
    r = httpx.get(f"{api_url}/api/v1/admin/devices", headers=admin, params={"status": "stale", "q": uid}).json()
    assert [d["id"] for d in r["devices"]] == [stale] and r["devices"][0]["name"] == f"Stale Lane {uid}"
    assert r["counts"]["stale"] >= 1
    found = {d["device_id"]: d for d in httpx.get(f"{api_url}/api/v1/admin/unknown-devices", headers=admin).json()}
    assert found[unknown]["suggested_kind"] == "road_station"
    add = f"{api_url}/api/v1/admin/registry/devices"
    r = httpx.post(add, headers=admin, json={"id": unknown, "kind": "road_station"})
    assert (
        r.status_code == 422 and r.json()["detail"] == "a road station needs its place: give its longitude and latitude"
    )
    r = httpx.post(
        add, headers=admin, json={"id": unknown, "kind": "road_station", "name": "New Road", "lon": -1.9, "lat": 52.5}
    )
    assert r.status_code == 201 and r.json()["feature"]["properties"] == {
        "kind": "road_station",
        "id": unknown,
        "name": "New Road",
    }
    assert unknown not in {
        d["device_id"] for d in httpx.get(f"{api_url}/api/v1/admin/unknown-devices", headers=admin).json()
    }
    listed = httpx.get(f"{api_url}/api/v1/admin/devices", headers=admin, params={"q": unknown}).json()["devices"]
    assert [(d["id"], d["kind"], d["status"]) for d in listed] == [(unknown, "road_station", "offline")] or [
        d["id"] for d in listed
    ] == [unknown]
    r = httpx.post(add, headers=admin, json={"id": f"s-{uid}", "kind": "home_sensor", "home": "no-such-home"})
    assert r.status_code == 422 and "no-such-home" in r.json()["detail"]
