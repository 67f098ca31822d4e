"""Who may call what: every endpoint of the OpenAPI schema against every role (and no token), on real data.

The allow table below is the whole policy in one place. An endpoint missing from it fails the test (a new
endpoint needs a decision about who may call it), and so does an entry for an endpoint that no longer exists.
A role the table allows gets a 2xx for its own objects (a tenant their home, an officer their patch); any
other role gets 403, and no token gets 401. The object-level tests then check the scoping inside an allowed
endpoint: another tenant's home, another patch's case, another home's sensor are all 404, never a leak.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from api.app import create_app
from placewatch.settings import Settings
from tests.e2e.world import (
    ROOMS,
    evaluators,
    forget_readings,
    home,
    home_readings,
    room_sensors,
    route,
    station,
    station_readings,
    winter_evening,
    write,
)
from tests.helpers import collection, load

pytestmark = pytest.mark.integration

ROLES = ("admin", "highways", "officer", "tenant", "anonymous")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
ADMIN = frozenset({"admin"})
ROADS = frozenset({"admin", "highways"})
HOMES = frozenset({"admin", "officer", "tenant"})
CASEWORK = frozenset({"admin", "officer"})

# (method, path as in the OpenAPI schema) -> the roles that may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/health"): EVERYONE,
    ("GET", "/api/v1/live"): EVERYONE,
    ("POST", "/api/v1/auth/token"): EVERYONE,
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    # Devices: every signed-in role, each seeing only its own devices (checked object by object below).
    ("GET", "/api/v1/devices"): SIGNED_IN,
    ("GET", "/api/v1/devices/{device_id}"): SIGNED_IN,
    ("GET", "/api/v1/devices/{device_id}/readings"): SIGNED_IN,
    ("PUT", "/api/v1/registry"): ADMIN,
    ("GET", "/api/v1/dead-letters"): ADMIN,
    ("GET", "/api/v1/quarantine"): ADMIN,
    ("GET", "/api/v1/routes"): ROADS,
    ("GET", "/api/v1/routes/{route_id}"): ROADS,
    ("GET", "/api/v1/gritting/decisions"): ROADS,
    ("GET", "/api/v1/gritting/decisions/{decision_id}"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/acknowledge"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/start"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/complete"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/cancel"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/cancel-run"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/note"): ROADS,
    ("POST", "/api/v1/gritting/decisions/{decision_id}/run-figures"): ROADS,
    ("PUT", "/api/v1/gritting/forecast"): ROADS,
    ("GET", "/api/v1/gritting/forecast/status"): ROADS,
    ("GET", "/api/v1/gritting/cap.xml"): ROADS,
    ("GET", "/api/v1/gritting/decisions/{decision_id}/cap.xml"): ROADS,
    ("GET", "/api/v1/homes"): HOMES,
    ("GET", "/api/v1/homes/{home_id}"): HOMES,
    ("GET", "/api/v1/damp/cases"): HOMES,
    ("GET", "/api/v1/damp/cases/{case_id}"): HOMES,
    ("POST", "/api/v1/damp/cases/{case_id}/actions"): CASEWORK,
    ("PUT", "/api/v1/damp/cases/{case_id}/officer"): CASEWORK,
    ("PUT", "/api/v1/damp/cases/{case_id}/visit"): CASEWORK,
    ("DELETE", "/api/v1/damp/cases/{case_id}/visit"): CASEWORK,
    ("GET", "/api/v1/damp/patches"): CASEWORK,
    ("GET", "/api/v1/reports/season"): frozenset({"admin", "highways", "officer"}),
    ("POST", "/api/v1/reports/season/what-if"): frozenset({"admin", "highways"}),
    ("GET", "/api/v1/evaluation/nowcast"): ROADS,
    ("GET", "/api/v1/council"): EVERYONE,
    ("GET", "/api/v1/admin/devices"): ADMIN,
    ("GET", "/api/v1/admin/unknown-devices"): ADMIN,
    ("POST", "/api/v1/admin/registry/devices"): ADMIN,
    ("GET", "/api/v1/admin/users"): ADMIN,
    ("POST", "/api/v1/admin/users"): ADMIN,
    ("PATCH", "/api/v1/admin/users/{name}"): ADMIN,
    ("PUT", "/api/v1/admin/users/{name}/password"): ADMIN,
    ("GET", "/api/v1/notifications/deliveries"): ADMIN,
    ("GET", "/api/v1/notifications/rules"): ADMIN,
    ("POST", "/api/v1/notifications/test"): ADMIN,
    # Open data: public by design, outside /api/v1.
    ("GET", "/open-data/roads.json"): EVERYONE,
    ("GET", "/open-data/roads.csv"): EVERYONE,
    ("GET", "/open-data/roads.geojson"): EVERYONE,
    ("GET", "/open-data/gritting.json"): EVERYONE,
    ("GET", "/open-data/gritting.csv"): EVERYONE,
    ("GET", "/open-data/gritting.geojson"): EVERYONE,
    ("GET", "/open-data/homes-by-area.json"): EVERYONE,
    ("GET", "/open-data/homes-by-area.csv"): EVERYONE,
    ("GET", "/open-data/licence.json"): EVERYONE,
}
# A decision's lifecycle moves on as the matrix runs: once one role has acknowledged, the next gets 409. A 409
# still proves the role was let through and the decision found (a refused role gets 403, a hidden one 404).
STATEFUL = {
    ("POST", "/api/v1/gritting/decisions/{decision_id}/acknowledge"),
    ("POST", "/api/v1/gritting/decisions/{decision_id}/start"),
    ("POST", "/api/v1/gritting/decisions/{decision_id}/complete"),
    ("POST", "/api/v1/gritting/decisions/{decision_id}/cancel"),
    ("POST", "/api/v1/gritting/decisions/{decision_id}/cancel-run"),  # no run is out
    ("POST", "/api/v1/gritting/decisions/{decision_id}/run-figures"),  # no run completed, or the same figures
    ("PUT", "/api/v1/damp/cases/{case_id}/officer"),  # the second role finds the officer already responsible
    ("DELETE", "/api/v1/damp/cases/{case_id}/visit"),  # nothing booked (any more)
}
PAGES = ("/", "/login", "/highways", "/officer", "/tenant", "/public", "/admin", "/reports")


def schema_routes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in an OpenAPI schema."""
    return {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m != "parameters"}


# The schema of this code, at collection time, so that each endpoint is its own test; the running API's schema
# is compared with the table in test_every_endpoint_of_the_running_api_has_an_entry.
ENDPOINTS = sorted(schema_routes(create_app(Settings()).openapi()))


@dataclass
class World:
    """Two patches with a home each (a case open in both), a route with a station and a decision, a user per role."""

    uid: str
    patch_a: str
    patch_b: str
    home_a: str
    home_b: str
    station: str
    route: str
    decision_id: int
    case_a: int
    case_b: int
    registry: str
    users: dict[str, tuple[str, str]]
    headers: dict[str, dict[str, str]]

    def sensor(self, which: str) -> str:
        """A room sensor of home A or B."""
        return f"{self.home_a if which == 'a' else self.home_b}/{ROOMS[0]}"


@pytest.fixture(scope="module")
def world(database_url: str, mqtt_broker: Any, api_url: str, make_user: Any) -> Iterator[World]:
    """Load, write and judge the world; sign in a user of each role."""
    uid = uuid.uuid4().hex[:8]
    patch_a, patch_b = f"north-{uid}", f"south-{uid}"
    home_a, home_b = f"uprn-a-{uid}", f"uprn-b-{uid}"
    dev, rid = f"rws-authz-{uid}", f"R-authz-{uid}"
    features = [
        station(dev, -1.51, 52.41, f"Station {uid}"),
        route(rid, f"Route {uid}", [dev], [[[-1.55, 52.40], [-1.51, 52.41], [-1.47, 52.43]]]),
        home(home_a, patch_a, f"1 North Street {uid}", -1.52, 52.42),
        home(home_b, patch_b, f"2 South Street {uid}", -1.50, 52.39),
        *room_sensors(home_a),
        *room_sensors(home_b),
    ]
    load(database_url, *features)
    now = datetime.now(UTC).replace(microsecond=0)
    readings = home_readings(home_a, "cold_damp", now - timedelta(days=10), now)
    readings += home_readings(home_b, "cold_damp", now - timedelta(days=10), now)
    readings += station_readings(dev, "freezes_at_0200", winter_evening(14, 21), now)
    write(database_url, readings)
    with evaluators(database_url, mqtt_broker, f"pw-test-{uid}/v1") as ev:
        ev.judge_homes([f"{h}/{room}" for h in (home_a, home_b) for room in ROOMS])
        decision_id = ev.decide([rid])[-1]

    users = {
        "admin": make_user("admin"),
        "highways": make_user("highways"),
        "officer": make_user("officer", patch=patch_a),
        "tenant": make_user("tenant", home=home_a),
    }
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role, (name, password) in users.items():
        r = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": name, "password": password})
        r.raise_for_status()
        headers[role] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    cases = httpx.get(f"{api_url}/api/v1/damp/cases", headers=headers["admin"], params={"status": "active"}).json()
    case_of = {c["home_id"]: c["id"] for c in cases}
    assert home_a in case_of and home_b in case_of, "both cold, damp homes should have an open case"
    yield World(
        uid=uid,
        patch_a=patch_a,
        patch_b=patch_b,
        home_a=home_a,
        home_b=home_b,
        station=dev,
        route=rid,
        decision_id=decision_id,
        case_a=case_of[home_a],
        case_b=case_of[home_b],
        registry=collection(*features),
        users=users,
        headers=headers,
    )
    forget_readings(database_url, [dev] + [f"{h}/{room}" for h in (home_a, home_b) for room in ROOMS])


def own_device(w: World, role: str) -> tuple[str, str]:
    """A device the role may see, and a metric it has: highways a road station, the others home A's sensor."""
    return (w.station, "road_surface_temperature") if role == "highways" else (w.sensor("a"), "temperature")


def build_request(w: World, method: str, path: str, role: str) -> dict[str, Any]:
    """The request that exercises (method, path) for the role, on objects the role may see."""
    device, metric = own_device(w, role)
    url = (
        path.replace("{device_id}", quote(device, safe=""))
        .replace("{route_id}", quote(w.route, safe=""))
        .replace("{decision_id}", str(w.decision_id))
        .replace("{home_id}", quote(w.home_a, safe=""))
        .replace("{case_id}", str(w.case_a))
        .replace("{name}", quote(w.users["highways"][0], safe=""))
    )
    assert "{" not in url, f"no value for a path parameter of {path}: add one to build_request"
    req: dict[str, Any] = {"method": method, "url": url, "headers": dict(w.headers[role])}
    if path.endswith("/readings"):
        req["params"] = {"metric": metric}
    elif path == "/api/v1/auth/token":
        name, password = w.users["tenant" if role == "anonymous" else role]
        req["data"] = {"username": name, "password": password}
    elif path == "/api/v1/registry":
        req["content"] = w.registry.encode()
        req["headers"]["Content-Type"] = "application/geo+json"
    elif path.endswith("/run-figures"):
        req["json"] = {"tonnes": 1.5, "note": f"authz matrix as {role}"}
    elif path.startswith("/api/v1/gritting/decisions/") and method == "POST":
        req["json"] = {"note": f"authz matrix as {role}"}
    elif path == "/api/v1/gritting/forecast":
        now = datetime.now(UTC)
        req["json"] = {
            "issued_at": (now - timedelta(minutes=5)).isoformat(),
            "source": "authz matrix",
            "forecasts": [
                {"route_ids": [w.route], "min_rst": 1.5, "min_rst_at": (now + timedelta(hours=6)).isoformat()}
            ],
        }
    elif path == "/api/v1/reports/season/what-if":
        req["params"] = {"start": "2026-01-01", "end": "2026-01-07"}
        req["json"] = {"trigger_rst_c": 1.0}
    elif path == "/api/v1/reports/season":
        req["params"] = {"start": "2026-01-01", "end": "2026-01-31"}
    elif path == "/api/v1/evaluation/nowcast":
        req["params"] = {"start": "2026-01-01", "end": "2026-01-07"}
    elif path.endswith("/actions"):
        req["json"] = {"action": "visit", "note": f"authz matrix as {role}"}
    elif path.endswith("/officer"):
        req["json"] = {"officer": w.users["officer"][0]}
    elif path.endswith("/visit") and method == "PUT":
        req["json"] = {"at": (datetime.now(UTC) + timedelta(days=2)).isoformat(), "note": f"authz matrix as {role}"}
    elif path == "/api/v1/admin/registry/devices":
        req["json"] = {"id": f"authz-{w.uid}-{role}", "kind": "road_station", "lon": -2.6, "lat": 51.45}
    elif path == "/api/v1/admin/users":
        req["json"] = {"name": f"authz-{w.uid}-{role}", "role": "highways", "password": "a-long-password"}
    elif path == "/api/v1/admin/users/{name}":
        req["json"] = {"disabled": False}
    elif path.endswith("/password"):
        req["json"] = {"password": w.users["highways"][1]}
    elif path == "/api/v1/notifications/test":
        req["json"] = {"audience": [f"user:authz-matrix-{w.uid}"], "title": "authz matrix"}
    return req


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_each_role_gets_what_the_allow_table_says(world: World, api_url: str, method: str, path: str, role: str):
    assert (method, path) in ALLOWED, f"{method} {path} has no entry in the allow table: decide who may call it"
    req = build_request(world, method, path, role)
    r = httpx.request(**(req | {"url": api_url + req["url"]}), timeout=30)
    allowed = role in ALLOWED[(method, path)]
    if allowed:
        ok = r.is_success or ((method, path) in STATEFUL and r.status_code == 409)
        assert ok, f"{role} should be let through {method} {path}: {r.status_code} {r.text[:300]}"
    elif role == "anonymous":
        assert r.status_code == 401, f"no token on {method} {path}: {r.status_code} {r.text[:300]}"
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    else:
        assert r.status_code == 403, f"{role} on {method} {path}: {r.status_code} {r.text[:300]}"


def test_every_endpoint_of_the_running_api_has_an_entry(api_url: str):
    running = schema_routes(httpx.get(f"{api_url}/openapi.json").json())
    assert not running - set(ALLOWED), f"endpoints with no entry in the allow table: {sorted(running - set(ALLOWED))}"
    assert not set(ALLOWED) - running, f"entries for endpoints that do not exist: {sorted(set(ALLOWED) - running)}"
    assert running == set(ENDPOINTS)


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_shells_anyone_may_load_and_hold_no_data(world: World, api_url: str, path: str):
    r = httpx.get(api_url + path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for secret in (world.home_a, world.home_b, world.patch_a, world.route, world.station):
        assert secret not in r.text
    assert "<script>" not in r.text and " onclick=" not in r.text  # scripts are files: CSP script-src 'self'


# -- object-level scoping inside allowed endpoints ------------------------------------------------------------


def get(api_url: str, w: World, role: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{api_url}/api/v1{path}", headers=w.headers[role], params=params, timeout=30)


def post(api_url: str, w: World, role: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{api_url}/api/v1{path}", headers=w.headers[role], json=body, timeout=30)


def test_a_tenant_sees_only_their_own_home_and_everything_else_is_404(world: World, api_url: str):
    w = world
    assert get(api_url, w, "tenant", f"/homes/{quote(w.home_a, safe='')}").status_code == 200
    assert get(api_url, w, "tenant", f"/homes/{quote(w.home_b, safe='')}").status_code == 404
    assert get(api_url, w, "tenant", "/homes/no-such-home").status_code == 404
    assert [h["id"] for h in get(api_url, w, "tenant", "/homes").json()] == [w.home_a]
    assert get(api_url, w, "tenant", "/homes", patch=w.patch_b).json() == []
    assert [c["home_id"] for c in get(api_url, w, "tenant", "/damp/cases").json()] == [w.home_a]
    assert get(api_url, w, "tenant", "/damp/cases", home_id=w.home_b).json() == []
    assert get(api_url, w, "tenant", f"/damp/cases/{w.case_b}").status_code == 404
    # Sensors of another home, and road stations, do not exist for a tenant.
    for dev in (w.sensor("b"), w.station):
        assert get(api_url, w, "tenant", f"/devices/{quote(dev, safe='')}").status_code == 404
        r = get(api_url, w, "tenant", f"/devices/{quote(dev, safe='')}/readings", metric="temperature")
        assert r.status_code == 404
    r = get(api_url, w, "tenant", f"/devices/{quote(w.sensor('a'), safe='')}/readings", metric="temperature")
    assert r.status_code == 200 and r.json()["points"]
    assert {d["home_id"] for d in get(api_url, w, "tenant", "/devices").json()} == {w.home_a}
    # And a tenant records no case action, even on their own case.
    assert post(api_url, w, "tenant", f"/damp/cases/{w.case_a}/actions", {"action": "visit"}).status_code == 403


def test_an_officer_sees_and_acts_only_in_their_patch(world: World, api_url: str):
    w = world
    assert get(api_url, w, "officer", f"/homes/{quote(w.home_a, safe='')}").status_code == 200
    assert get(api_url, w, "officer", f"/homes/{quote(w.home_b, safe='')}").status_code == 404
    assert {h["patch"] for h in get(api_url, w, "officer", "/homes").json()} == {w.patch_a}
    assert get(api_url, w, "officer", "/homes", patch=w.patch_b).json() == []
    assert {c["patch"] for c in get(api_url, w, "officer", "/damp/cases").json()} == {w.patch_a}
    assert get(api_url, w, "officer", f"/damp/cases/{w.case_b}").status_code == 404
    r = post(api_url, w, "officer", f"/damp/cases/{w.case_b}/actions", {"action": "visit", "note": "not mine"})
    assert r.status_code == 404
    history = get(api_url, w, "admin", f"/damp/cases/{w.case_b}").json()["history"]
    assert not any(e["note"] == "not mine" for e in history)  # nothing was recorded on the other patch's case
    assert get(api_url, w, "officer", f"/devices/{quote(w.sensor('b'), safe='')}").status_code == 404
    assert get(api_url, w, "officer", f"/devices/{quote(w.station, safe='')}").status_code == 404
    assert {d["home_id"] for d in get(api_url, w, "officer", "/devices").json()} <= {w.home_a} | {
        h["id"] for h in get(api_url, w, "officer", "/homes").json()
    }


def test_highways_sees_roads_and_no_homes(world: World, api_url: str):
    w = world
    assert get(api_url, w, "highways", "/homes").status_code == 403
    assert get(api_url, w, "highways", f"/homes/{quote(w.home_a, safe='')}").status_code == 403
    assert get(api_url, w, "highways", "/damp/cases").status_code == 403
    assert get(api_url, w, "highways", f"/devices/{quote(w.sensor('a'), safe='')}").status_code == 404
    r = get(api_url, w, "highways", f"/devices/{quote(w.sensor('a'), safe='')}/readings", metric="temperature")
    assert r.status_code == 404
    assert {d["kind"] for d in get(api_url, w, "highways", "/devices").json()} == {"road_station"}
    assert w.route in {r["id"] for r in get(api_url, w, "highways", "/routes").json()}


def test_actions_are_recorded_with_the_user(world: World, api_url: str):
    w = world
    hw_name = w.users["highways"][0]
    r = post(api_url, w, "highways", f"/gritting/decisions/{w.decision_id}/cancel", {"note": "recorded by name"})
    assert r.status_code in (200, 409)
    history = get(api_url, w, "highways", f"/gritting/decisions/{w.decision_id}").json()["history"]
    people = {e["actor"] for e in history if e["event"] in ("acknowledged", "started", "completed", "cancelled")}
    assert people and people <= {w.users["admin"][0], hw_name}  # the matrix's admin, then this user
    officer = w.users["officer"][0]
    r = post(api_url, w, "officer", f"/damp/cases/{w.case_a}/actions", {"action": "visit", "note": "by name"})
    assert r.status_code == 200
    last = r.json()["history"][-1]
    assert last["actor"] == officer and last["role"] == "officer" and last["note"] == "by name"


def test_bad_expired_and_forged_tokens_are_401(world: World, api_url: str):
    secret = "test-secret-key-that-is-long-enough-for-hs256"  # tests.conftest.service_env
    now = datetime.now(UTC)
    claims = {"sub": world.users["tenant"][0], "role": "admin", "iss": "placewatch", "iat": int(now.timestamp())}
    expired = jwt.encode(claims | {"exp": int((now - timedelta(minutes=1)).timestamp())}, secret, algorithm="HS256")
    forged = jwt.encode(claims | {"exp": int((now + timedelta(hours=1)).timestamp())}, "another-secret" * 4, "HS256")
    unsigned = jwt.encode(claims | {"exp": int((now + timedelta(hours=1)).timestamp())}, None, algorithm="none")
    for tok in ("not-a-token", expired, forged, unsigned):
        r = httpx.get(f"{api_url}/api/v1/homes", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401, tok
