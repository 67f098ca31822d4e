"""Readings flow from a device over the real broker into PostgreSQL and out through the HTTP API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import wait_until
from tests.helpers import home, load, sensor, station

pytestmark = pytest.mark.integration


def _count(db, device_id: str, metric: str | None = None) -> int:
    row = db.execute(
        """SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id
           WHERE s.device_id = %s AND (%s::text IS NULL OR s.metric = %s)""",
        (device_id, metric, metric),
    ).fetchone()
    return int(row[0])


def test_published_reading_comes_back_through_the_api(database_url, ingest, publisher, api_url, token_for, uid):
    dev = f"rws/{uid} north:1"  # ids may hold '/', ':' and spaces
    load(database_url, station(dev))
    ingest()
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    publisher.publish(
        f"placewatch/v1/devices/{dev}/readings",
        json.dumps(
            {
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "values": {"road_surface_temperature": -1.2, "surface_state": "wet"},
            }
        ),
    )
    headers = token_for("admin")
    url = f"{api_url}/api/v1/devices/{quote(dev, safe='')}/readings"

    def fetch():
        r = httpx.get(url, params={"metric": "road_surface_temperature"}, headers=headers)
        return r if r.status_code == 200 and r.json()["points"] else None

    body = wait_until(fetch).json()
    assert body["device_id"] == dev
    assert body["unit"] == "degC"
    assert body["points"] == [{"ts": ts.isoformat().replace("+00:00", "Z"), "value": -1.2}]
    state = httpx.get(url, params={"metric": "surface_state"}, headers=headers).json()
    assert state["points"][0]["value"] == "wet"
    devices = httpx.get(f"{api_url}/api/v1/devices", headers=headers).json()
    mine = next(d for d in devices if d["id"] == dev)
    assert mine["kind"] == "road_station" and mine["status"] == "online" and mine["last_seen"]
    assert mine["latest"]["road_surface_temperature"]["value"] == -1.2
    assert mine["latest"]["surface_state"]["value"] == "wet"
    # Pages of 3 (after = the last id of the previous page) give the same list, in order.
    paged: list[dict] = []
    while True:
        params = {"limit": "3"} | ({"after": paged[-1]["id"]} if paged else {})
        page = httpx.get(f"{api_url}/api/v1/devices", params=params, headers=headers).json()
        assert len(page) <= 3
        paged += page
        if len(page) < 3:
            break
    assert [d["id"] for d in paged] == [d["id"] for d in devices]


def test_same_message_delivered_twice_is_stored_once(database_url, db, ingest, publisher, uid):
    dev = f"dup-{uid}"
    load(database_url, station(dev))
    ingest()
    msg = json.dumps(
        {"ts": "2026-01-15T06:30:00Z", "values": {"road_surface_temperature": -1.2, "air_temperature": 0.4}}
    )
    for _ in range(3):
        publisher.publish(f"placewatch/v1/devices/{dev}/readings", msg)
    wait_until(lambda: _count(db, dev) == 2)
    publisher.publish(
        f"placewatch/v1/devices/{dev}/readings",
        json.dumps({"ts": "2026-01-15T06:31:00Z", "values": {"air_temperature": 0.3}}),
    )
    wait_until(lambda: _count(db, dev) == 3)
    assert _count(db, dev) == 3


def test_malformed_messages_are_dead_lettered_while_good_ones_flow(database_url, db, ingest, publisher, uid):
    dev = f"mixed-{uid}"
    load(database_url, station(dev))
    ingest()
    topic = f"placewatch/v1/devices/{dev}/readings"
    bad = {
        b"{not json": "not valid JSON",
        b"\xff\xfe\x00binary": "not UTF-8",
        b'{"values": {"road_surface_temperature": "cold"}}': "must be a number",
        b'{"values": {"road_surface_temperature": 95}}': "outside the physical range",
        b'{"values": {"surface_state": "slushy"}}': "is not one of",
        b'{"ts": "2099-01-01T00:00:00Z", "values": {"air_temperature": 1}}': "in the future",
        b'{"ts": 4070908800000, "values": {"air_temperature": 1}}': "in the future",  # the fast lane's shape
        b'{"ts": 0, "values": {"air_temperature": 1}}': "before 2000-01-01",
        b'{"ts": "yesterday", "values": {"air_temperature": 1}}': "not RFC 3339",
        b'{"values": {"road_surface_temperature": NaN}}': "not valid JSON",
        b'{"values": {"wind_speed": 3}}': "unknown metric 'wind_speed'",
        b"[]": "empty array",
        b'"just a string"': "must be a JSON object",
    }
    for i, payload in enumerate(bad):
        publisher.publish(topic, payload)
        publisher.publish(
            topic, json.dumps({"ts": f"2026-01-15T07:{i:02d}:00Z", "values": {"air_temperature": 1.0 + i}})
        )
    # Plain (fast-lane) messages are checked as strictly: an unknown device, a time far in the future.
    publisher.publish(
        f"placewatch/v1/devices/ghost-{uid}/readings", b'{"ts": 1768458600000, "values": {"air_temperature": 1}}'
    )
    wait_until(lambda: _count(db, dev) == len(bad))
    rows = wait_until(
        lambda: (
            (
                r := db.execute(
                    "SELECT payload, reason FROM dead_letters WHERE topic = %s OR device_id = %s ORDER BY id",
                    (topic, f"ghost-{uid}"),
                ).fetchall()
            )
            and len(r) == len(bad) + 1
            and r
        )
    )
    reasons = {bytes(p): reason for p, reason in rows}
    for payload, needle in bad.items():
        assert needle in reasons[payload], (payload, reasons[payload])
    assert any("unknown device" in r for r in reasons.values())


def test_partly_bad_message_keeps_the_good_values(database_url, db, ingest, publisher, uid):
    dev = f"partial-{uid}"
    load(database_url, station(dev))
    ingest()
    publisher.publish(
        f"placewatch/v1/devices/{dev}/readings",
        b'{"ts": "2026-01-15T06:30:00Z", "values": {"air_temperature": 2.5, "dew_point": 400}}',
    )
    wait_until(lambda: _count(db, dev) == 1)
    reason = wait_until(lambda: db.execute("SELECT reason FROM dead_letters WHERE device_id = %s", (dev,)).fetchone())[
        0
    ]
    assert reason.startswith("stored 1 of 2 values") and "dew_point 400" in reason


def test_status_topic_and_will_set_device_status(database_url, db, ingest, publisher, api_url, token_for, uid):
    dev = f"status-{uid}"
    load(database_url, station(dev))
    ingest()
    publisher.publish(f"placewatch/v1/devices/{dev}/status", "offline", retain=True)
    headers = token_for("highways")
    url = f"{api_url}/api/v1/devices/{quote(dev, safe='')}"
    wait_until(lambda: httpx.get(url, headers=headers).json().get("status") == "offline")
    publisher.publish(f"placewatch/v1/devices/{dev}/status", "online", retain=True)
    publisher.publish(f"placewatch/v1/devices/{dev}/readings", b'{"values": {"air_temperature": 3}}')
    wait_until(lambda: httpx.get(url, headers=headers).json().get("status") == "online")
    publisher.publish(f"placewatch/v1/devices/{dev}/status", b"", retain=True)  # clear the retained message


def test_bucketed_readings_use_london_days_and_csv(database_url, db, ingest, publisher, api_url, token_for, uid):
    dev = f"bucket-{uid}"
    hid = f"h-{uid}"
    load(database_url, home(hid), sensor(dev, hid))
    ingest()
    # 23:30 UTC on 1 July is 00:30 on 2 July in London (BST): it belongs to the London day of 2 July.
    msgs = [
        {"ts": "2026-07-01T22:30:00Z", "values": {"temperature": 20.0}},
        {"ts": "2026-07-01T23:30:00Z", "values": {"temperature": 22.0}},
        {"ts": "2026-07-02T10:00:00Z", "values": {"temperature": 24.0}},
    ]
    publisher.publish(f"placewatch/v1/devices/{dev}/readings", json.dumps(msgs))
    wait_until(lambda: _count(db, dev) == 3)
    headers = token_for("admin")
    url = f"{api_url}/api/v1/devices/{quote(dev, safe='')}/readings"
    params = {"metric": "temperature", "start": "2026-07-01T00:00:00Z", "end": "2026-07-03T00:00:00Z", "bucket": "1d"}
    pts = httpx.get(url, params=params, headers=headers).json()["points"]
    assert [(p["ts"], p["count"], p["avg"]) for p in pts] == [
        ("2026-06-30T23:00:00Z", 1, 20.0),
        ("2026-07-01T23:00:00Z", 2, 23.0),
    ]
    hourly = httpx.get(url, params={**params, "bucket": "1h"}, headers=headers).json()["points"]
    assert [p["count"] for p in hourly] == [1, 1, 1] and hourly[0]["min"] == 20.0
    csv_text = httpx.get(url, params=params, headers={**headers, "Accept": "text/csv"}).text
    assert csv_text.splitlines()[0] == "device_id,metric,unit,ts,avg,min,max,count"
    assert len(csv_text.splitlines()) == 3


def test_api_needs_a_token_and_hides_other_homes(database_url, api_url, token_for, uid):
    mine, other = f"hm-{uid}", f"ho-{uid}"
    load(database_url, home(mine, "p1"), home(other, "p2"), sensor(f"s-{mine}", mine), sensor(f"s-{other}", other))
    assert httpx.get(f"{api_url}/api/v1/devices").status_code == 401
    assert httpx.get(f"{api_url}/api/v1/devices", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    tenant = token_for("tenant", home=mine)
    ids = {d["id"] for d in httpx.get(f"{api_url}/api/v1/devices", headers=tenant).json()}
    assert ids == {f"s-{mine}"}
    assert httpx.get(f"{api_url}/api/v1/devices/s-{other}/readings", headers=tenant).status_code == 404
    assert httpx.get(f"{api_url}/api/v1/dead-letters", headers=tenant).status_code == 403
    r = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": "nobody", "password": "wrong-password"})
    assert r.status_code == 401


def test_health_reports_database_and_broker(api_url):
    r = httpx.get(f"{api_url}/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["database"] == "ok" and r.json()["broker"] == "ok"


def test_a_deleted_device_is_unknown_to_ingest_at_once_and_comes_back_with_new_series(
    database_url, db, ingest, publisher, uid
):
    # Ingest caches registered devices and series ids; a deletion (a registry prune) must empty those caches,
    # or a deleted device's readings would be stored under a series id that no longer exists.
    dev = f"gone-{uid}"
    load(database_url, station(dev))
    ingest()
    topic = f"placewatch/v1/devices/{dev}/readings"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    def send(minutes: int) -> None:
        ts = (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        publisher.publish(topic, json.dumps({"ts": ts, "values": {"road_surface_temperature": 1.5}}))

    send(0)
    wait_until(lambda: _count(db, dev) == 1)
    db.execute("DELETE FROM readings WHERE series_id IN (SELECT id FROM series WHERE device_id = %s)", (dev,))
    db.execute("DELETE FROM devices WHERE id = %s", (dev,))
    send(1)
    reason = wait_until(
        lambda: db.execute("SELECT reason FROM dead_letters WHERE device_id = %s", (dev,)).fetchone(), timeout=10
    )[0]
    assert "unknown device" in reason
    assert db.execute("SELECT count(*) FROM readings WHERE series_id NOT IN (SELECT id FROM series)").fetchone()[0] == 0
    load(database_url, station(dev))  # registered again: new series
    send(2)
    wait_until(lambda: _count(db, dev) == 1, timeout=10)
