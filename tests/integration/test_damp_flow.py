"""Damp and mould through the real path: simulated home sensors publish over the broker, ingest stores them,
the DampEvaluator judges the homes, opens cases on Awaab's Law clocks and publishes retained alerts; people
read and act through the real HTTP API, each seeing only what their role allows."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from alerts.context import AlertContext
from alerts.damp import DampEvaluator
from alerts.publisher import AlertPublisher
from core.cases import CaseConflict, apply_action, derive_status, outstanding, overdue_steps
from core.workdays import LONDON, add_working_days, summary_by, working_days_between
from placewatch.settings import Settings
from simulators.home import HomeSensor
from simulators.publisher import payload_of, readings_topic
from store.damp import CASE_COLUMNS
from store.db import open_pool
from tests.conftest import service_env, wait_until
from tests.helpers import load, sensor, station
from tests.services import start_service, subscribe_collect

pytestmark = pytest.mark.integration

ROOMS = ("bedroom", "living room")
STEP = timedelta(minutes=10)
PER_MESSAGE = 1500  # entries per native array message, well under the 256 KB payload limit


def _home(hid: str, patch: str, outdoor: str | None) -> dict[str, Any]:
    props = {"kind": "home", "id": hid, "address": f"{hid} Knowle West", "patch": patch}
    if outdoor is not None:
        props["outdoor"] = outdoor  # else the nearest road station with an air temperature
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-2.59, 51.45]}, "properties": props}


def _simulate(
    publisher, home_id: str, profile: str, start: datetime, end: datetime, *, outdoor: str | None = None
) -> dict[str, int]:
    """Publish the home simulator's readings for each room from start to end (and, if asked, the outdoor
    temperature it assumes, as the station's air_temperature); return entries published per device."""
    published: dict[str, int] = {}
    messages: list[tuple[str, bytes]] = []
    for room in ROOMS:
        dev = f"{home_id}/{room}"
        model = HomeSensor(profile, room=room, seed=dev, origin=start)
        entries = []
        t = start
        while t < end:
            values = model.values_at(t)
            if values is not None:
                entries.append((t, values))
            t += STEP
        published[dev] = len(entries)
        messages += [
            (readings_topic(dev), payload_of(entries[i : i + PER_MESSAGE])) for i in range(0, len(entries), PER_MESSAGE)
        ]
        if outdoor is not None and room == ROOMS[0]:
            air = [
                (t, {"air_temperature": round(model.outdoor_temperature(t), 2)}) for t in _range(start, end, 3 * STEP)
            ]
            published[outdoor] = len(air)
            messages += [
                (readings_topic(outdoor), payload_of(air[i : i + PER_MESSAGE])) for i in range(0, len(air), PER_MESSAGE)
            ]
    publisher.publish_many(messages)
    return published


def _range(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += step
    return out


def _stored(db, expected: dict[str, int]) -> bool:
    rows = dict(
        db.execute(
            """SELECT s.device_id, count(*) FROM series s JOIN readings r ON r.series_id = s.id
               WHERE s.device_id = ANY(%s) AND s.metric IN ('relative_humidity', 'air_temperature')
               GROUP BY s.device_id""",
            (list(expected),),
        ).fetchall()
    )
    return all(rows.get(dev, 0) == n for dev, n in expected.items())


def _context(settings: Settings, pool, publisher, now=None) -> AlertContext:
    ctx = AlertContext(settings=settings, pool=pool, publisher=publisher)
    if now is not None:
        ctx.now = lambda: now
    return ctx


@pytest.fixture
def damp_env(database_url, mqtt_broker):
    """Settings, a pool and a real alert publisher for running the DampEvaluator in the test."""
    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(mqtt_broker.url, protocol=mqtt_broker.protocol, prefix="placewatch/v1")
    yield settings, pool, pub
    pub.close()
    pool.close()


def _get(api_url: str, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{api_url}/api/v1{path}", headers=headers, params=params, timeout=10)


def _act(api_url: str, case_id: int, headers: dict[str, str], action: str, note: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{api_url}/api/v1/damp/cases/{case_id}/actions",
        headers=headers,
        json={"action": action, "note": note},
        timeout=10,
    )


def test_damp_cold_home_opens_a_case_and_dry_and_gappy_homes_do_not(
    database_url, db, ingest, publisher, api_url, token_for, mqtt_broker, damp_env, uid
):
    patch = f"knowle-{uid}"
    outdoor = f"rws-{uid}"
    damp, dry, gappy = f"uprn-damp-{uid}", f"uprn-dry-{uid}", f"uprn-gappy-{uid}"
    features = [station(outdoor, -2.6, 51.44)]
    for hid in (damp, dry, gappy):
        features.append(_home(hid, patch, None if hid == dry else outdoor))
        features += [sensor(f"{hid}/{room}", hid, room) for room in ROOMS]
    load(database_url, *features)
    ingest()
    now = datetime.now(UTC)
    expected = _simulate(publisher, damp, "cold_damp", now - timedelta(days=10), now, outdoor=outdoor)
    expected |= _simulate(publisher, dry, "warm_dry", now - timedelta(days=10), now)
    # The gappy profile drops out for a week, starting a week after its origin: the last 7 days are missing.
    expected |= _simulate(publisher, gappy, "gappy", now - timedelta(days=14), now)
    wait_until(lambda: _stored(db, expected), timeout=40)

    settings, pool, pub = damp_env
    client, alerts = subscribe_collect(mqtt_broker.url, "placewatch/v1/alerts/damp/+", mqtt_broker.protocol)
    evaluator = DampEvaluator(settings, housekeeping_s=0)
    judged_at = datetime.now(UTC)  # both sweeps judge the same whole hours
    try:
        evaluator.sweep(_context(settings, pool, pub, now=judged_at))
        topic = f"placewatch/v1/alerts/damp/{damp}"
        msg = wait_until(lambda: next((m for m in alerts if m.topic == topic and m.payload), None))
        body = json.loads(msg.payload)
        assert body["level"] == "red" and body["patch"] == patch
        assert body["case"]["status"] == "open" and body["case"]["next_step"]["step"] == "investigate"
        time.sleep(0.3)
        assert not [m for m in alerts if m.topic.endswith((dry, gappy))]

        admin = token_for("admin")
        cases = _get(api_url, "/damp/cases", admin, home_id=damp).json()
        assert len(cases) == 1
        case = cases[0]
        assert case["home_id"] == damp and case["level"] == "red" and case["status"] == "open"
        opened = datetime.fromisoformat(case["opened_at"])
        assert case["aware_at"] == case["opened_at"]
        expected_by = add_working_days(opened, 10)
        assert datetime.fromisoformat(case["investigate_by"]) == expected_by
        assert expected_by.astimezone(LONDON).time().hour == 23  # the end of a London working day
        assert [e["action"] for e in case["history"]] == ["opened"]
        assert "becoming aware" in case["history"][0]["note"] and case["history"][0]["actor"] == "placewatch"
        for hid in (dry, gappy):
            assert _get(api_url, "/damp/cases", admin, home_id=hid).json() == []
        # The officer of the patch and the tenant are notified through the notification outbox; the patch has no
        # officer yet, so nobody is responsible for the case and the admins are told too.
        told = db.execute(
            "SELECT kind, audience, title FROM notification_events WHERE subject = %s AND kind LIKE 'damp.%%'",
            (str(case["id"]),),
        ).fetchall()
        expected = sorted([f"patch:{patch}", f"home:{damp}", "role:admin"])
        assert [(k, sorted(a)) for k, a, _ in told] == [("damp.case", expected)]
        assert case["officer"] is None
        assert case["owner_problem"] == "No officer is responsible for this case: assign one."
        assert "investigate by" in told[0][2]

        # The tenant sees their home: level, why, their own readings and what the landlord is doing.
        tenant = token_for("tenant", home=damp)
        home = _get(api_url, f"/homes/{quote(damp, safe='')}", tenant).json()
        assert home["damp"]["level"] == "red"
        assert any("Approved Document F" in r or "BS 5250" in r for r in home["damp"]["reasons"])
        assert {s["room"] for s in home["sensors"]} == set(ROOMS)
        assert all("relative_humidity" in s["latest"] for s in home["sensors"])
        assert home["outdoor"]["id"] == outdoor and home["outdoor"]["how"] == "configured"
        assert home["damp"]["outdoor_source"] == "measured" and "air_temperature" in home["outdoor"]["latest"]
        local = expected_by.astimezone(LONDON)
        told = f"Your landlord has been told and must investigate by {local:%A} {local.day} {local:%B}"
        assert any(a.startswith(told) for a in home["advice"])
        assert any(
            re.fullmatch(r"Your (bedroom|living room) was above 70 % humidity for \d+ hours last night\.", a)
            for a in home["advice"]
        )
        assert not any("lifestyle" in a.lower() for a in home["advice"])
        assert home["case"]["id"] == case["id"]

        warm = _get(api_url, f"/homes/{quote(dry, safe='')}", admin).json()
        assert warm["damp"]["level"] == "green"
        assert warm["outdoor"]["id"] == outdoor and warm["outdoor"]["how"] == "nearest station"
        assert warm["outdoor"]["distance_km"] < 2 and warm["damp"]["outdoor_source"] == "measured"
        thin = _get(api_url, f"/homes/{quote(gappy, safe='')}", admin).json()["damp"]
        assert thin["level"] == "insufficient_data"
        assert any("not enough data" in r for r in thin["reasons"])

        # A second sweep in the same hour judges the same and stores nothing new.
        before = db.execute(
            "SELECT count(*) FROM damp_assessments WHERE home_id = ANY(%s)", ([damp, dry, gappy],)
        ).fetchone()[0]
        evaluator.sweep(_context(settings, pool, pub, now=judged_at))
        after = db.execute(
            "SELECT count(*) FROM damp_assessments WHERE home_id = ANY(%s)", ([damp, dry, gappy],)
        ).fetchone()[0]
        assert before == after == 3
        assert len(_get(api_url, "/damp/cases", admin, home_id=damp).json()) == 1

        # Who sees what.
        assert _get(api_url, f"/homes/{quote(dry, safe='')}", tenant).status_code == 404
        assert [c["home_id"] for c in _get(api_url, "/damp/cases", tenant).json()] == [damp]
        assert [h["id"] for h in _get(api_url, "/homes", tenant).json()] == [damp]
        officer = token_for("officer", patch=patch)
        work = _get(api_url, "/homes", officer).json()
        assert [h["id"] for h in work] == [damp, gappy, dry]  # most at risk first
        assert work[0]["level"] == "red" and work[0]["case"]["id"] == case["id"]
        assert work[0]["case"]["next_step"]["working_days_left"] == working_days_between(datetime.now(UTC), expected_by)
        stranger = token_for("officer", patch=f"elsewhere-{uid}")
        assert _get(api_url, f"/homes/{quote(damp, safe='')}", stranger).status_code == 404
        assert _get(api_url, "/damp/cases", stranger, home_id=damp).json() == []
        assert _get(api_url, f"/damp/cases/{case['id']}", stranger).status_code == 404
        assert _get(api_url, "/homes", token_for("highways")).status_code == 403
        assert _get(api_url, "/homes", {}).status_code == 401

        # Officer actions move the case on, each recorded with who did it; wrong moves are refused with why.
        assert _act(api_url, case["id"], tenant, "acknowledge").status_code == 403
        assert _act(api_url, case["id"], stranger, "acknowledge").status_code == 404
        r = _act(api_url, case["id"], officer, "acknowledge", "Called the tenant")
        assert r.status_code == 200 and r.json()["status"] == "investigating"
        again = _act(api_url, case["id"], officer, "acknowledge")
        assert again.status_code == 409 and "already recorded" in again.json()["detail"]
        early = _act(api_url, case["id"], officer, "summary_sent")
        assert early.status_code == 409 and "record that the investigation is done first" in early.json()["detail"]
        assert _act(api_url, case["id"], officer, "visit", "Mould behind the bedroom wardrobe").status_code == 200
        done = _act(api_url, case["id"], officer, "investigation_done", "Cold bridge at the lintel").json()
        assert done["status"] == "investigated"
        done_at = datetime.fromisoformat(done["investigation_done_at"])
        assert datetime.fromisoformat(done["summary_by"]) == summary_by(done_at)
        assert done["next_step"]["step"] == "summary"
        emergency = _act(api_url, case["id"], officer, "confirm_emergency", "Black mould over the cot").json()
        assert emergency["level"] == "emergency" and emergency["emergency"] is True
        confirmed = datetime.fromisoformat(emergency["emergency_confirmed_at"])
        assert datetime.fromisoformat(emergency["emergency_by"]) - confirmed == timedelta(hours=24)
        assert emergency["next_step"]["step"] == "emergency"
        history = _get(api_url, f"/damp/cases/{case['id']}", tenant).json()["history"]
        bodies = db.execute(
            "SELECT body FROM notification_events WHERE subject = %s AND kind = 'damp.case' ORDER BY id",
            (str(case["id"]),),
        ).fetchall()
        assert len(bodies) == 5  # opened, then each action that went through (the tenant is kept informed)
        assert "Mould behind the bedroom wardrobe" not in " ".join(b for (b,) in bodies)  # officers' notes stay inside
        assert [e["action"] for e in history] == [
            "opened",
            "acknowledge",
            "visit",
            "investigation_done",
            "confirm_emergency",
        ]
        assert history[1]["from_status"] == "open" and history[1]["to_status"] == "investigating"
        assert history[1]["actor"].startswith("officer-") and history[1]["role"] == "officer"

        # The case change reaches the retained alert on the next evaluation pass.
        alerts.clear()
        evaluator.on_readings(_context(settings, pool, pub), [])
        msg = wait_until(lambda: next((m for m in alerts if m.topic == topic and m.payload), None))
        assert json.loads(msg.payload)["case"]["level"] == "emergency"

        closed = _act(api_url, case["id"], officer, "close", "Works done, readings dry")
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert _act(api_url, case["id"], officer, "visit").status_code == 409
        assert _get(api_url, "/damp/cases", admin, home_id=damp, status="active").json() == []
    finally:
        client.disconnect()
        publisher.publish(f"placewatch/v1/alerts/damp/{damp}", b"", retain=True)  # leave the broker clean


def test_late_history_opens_a_case_whose_overdue_investigation_escalates_once(
    database_url, db, ingest, publisher, api_url, token_for, damp_env, uid
):
    patch = f"hartcliffe-{uid}"
    hid = f"uprn-late-{uid}"
    load(database_url, _home(hid, patch, f"none-{uid}"), *[sensor(f"{hid}/{room}", hid, room) for room in ROOMS])
    ingest()
    # Readings from three weeks ago arrive late (a gateway that was offline, say).
    end = (datetime.now(UTC) - timedelta(days=21)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=10)
    expected = _simulate(publisher, hid, "cold_damp", start, end)
    wait_until(lambda: _stored(db, expected), timeout=30)

    settings, pool, pub = damp_env
    evaluator = DampEvaluator(settings, housekeeping_s=0)
    then = end + timedelta(minutes=5)
    windows = [(dev, start, end) for dev in expected]
    evaluator.on_late(_context(settings, pool, pub, now=then), windows)
    admin = token_for("admin")
    case = _get(api_url, "/damp/cases", admin, home_id=hid).json()[0]
    assert datetime.fromisoformat(case["aware_at"]) == then
    assert datetime.fromisoformat(case["investigate_by"]) == add_working_days(then, 10)
    assert case["overdue"] == ["investigate"]  # ten working days have passed since
    assert case["escalated"] is False

    # The next pass at the real time escalates the overdue step, once.
    ctx = _context(settings, pool, pub)
    evaluator.on_readings(ctx, [])
    evaluator.on_readings(ctx, [])
    case = _get(api_url, f"/damp/cases/{case['id']}", admin).json()
    overdue = [e for e in case["history"] if e["action"] == "overdue"]
    assert len(overdue) == 1 and overdue[0]["details"]["step"] == "investigate"
    assert "escalated" in overdue[0]["note"].lower()
    kinds = db.execute(
        "SELECT kind, audience FROM notification_events WHERE subject = %s ORDER BY id", (str(case["id"]),)
    ).fetchall()
    assert [k for k, _ in kinds] == ["damp.case", "damp.overdue"]
    assert f"patch:{patch}" in kinds[1][1]
    assert case["escalated"] is True
    listed = _get(api_url, "/damp/cases", token_for("officer", patch=patch), overdue="true").json()
    assert [c["id"] for c in listed] == [case["id"]]
    assert case["evidence"]["level"] == "red" and case["evidence"]["inputs"]["rooms"]
    publisher.publish(f"placewatch/v1/alerts/damp/{hid}", b"", retain=True)


def test_the_alerts_service_runs_the_damp_evaluator(database_url, db, ingest, publisher, mqtt_broker, uid):
    hid = f"uprn-svc-{uid}"
    load(database_url, _home(hid, f"svc-{uid}", f"none-{uid}"), *[sensor(f"{hid}/{room}", hid, room) for room in ROOMS])
    ingest()
    now = datetime.now(UTC)
    expected = _simulate(publisher, hid, "cold_damp", now - timedelta(days=9), now)
    wait_until(lambda: _stored(db, expected), timeout=30)
    prefix = f"pw-test-{uid}/v1"  # this process's alerts stay out of the shared topics
    client, alerts = subscribe_collect(mqtt_broker.url, f"{prefix}/alerts/damp/{hid}", mqtt_broker.protocol)
    proc = start_service(["alerts"], service_env(database_url, mqtt_broker, PLACEWATCH_TOPIC_PREFIX=prefix))
    try:
        proc.wait_for("damp sweep:", timeout=30)
        msg = wait_until(lambda: next((m for m in alerts if m.payload), None), timeout=10)
        assert json.loads(msg.payload)["case"]["status"] == "open"
        row = db.execute("SELECT level FROM damp_home_state WHERE home_id = %s", (hid,)).fetchone()
        assert row == ("red",)
    finally:
        proc.stop()
        client.disconnect()
        publisher.publish(f"{prefix}/alerts/damp/{hid}", b"", retain=True)


def _blank_case(aware_at: datetime) -> dict[str, Any]:
    case: dict[str, Any] = dict.fromkeys(CASE_COLUMNS)
    case |= {
        "id": 1,
        "home_id": "h",
        "level": "red",
        "status": "open",
        "opened_at": aware_at,
        "aware_at": aware_at,
        "investigate_by": add_working_days(aware_at, 10),
        "overdue_steps": [],
    }
    return case


def test_case_rules_move_step_by_step_refuse_out_of_order_and_know_what_is_overdue():
    aware = datetime(2026, 12, 21, 9, tzinfo=UTC)  # Monday before Christmas
    case = _blank_case(aware)
    assert overdue_steps(case, datetime(2027, 1, 7, 23, tzinfo=UTC)) == []  # due by the end of Thu 7 Jan
    assert overdue_steps(case, datetime(2027, 1, 8, 0, 1, tzinfo=UTC)) == ["investigate"]
    with pytest.raises(CaseConflict, match="needs a note"):
        apply_action(case, "close", aware, None)
    with pytest.raises(CaseConflict, match="the investigation is done first"):
        apply_action(case, "works_started", aware, None)

    def step(action: str, at: datetime) -> None:
        case.update(apply_action(case, action, at, None))
        assert case["status"] == derive_status(case)

    step("acknowledge", datetime(2026, 12, 22, 10, tzinfo=UTC))
    assert case["status"] == "investigating"
    done = datetime(2027, 1, 4, 15, tzinfo=UTC)
    step("investigation_done", done)
    assert case["status"] == "investigated"
    assert case["summary_by"] == add_working_days(done, 3)
    assert case["safety_work_by"] == case["preventative_begin_by"] == add_working_days(done, 5)
    assert case["preventative_physically_started_by"].astimezone(LONDON).date().isoformat() == "2027-03-29"
    step("summary_sent", datetime(2027, 1, 5, 9, tzinfo=UTC))
    assert case["status"] == "safety_work"
    assert overdue_steps(case, datetime(2027, 1, 12, tzinfo=UTC)) == ["safety_work", "preventative_begin"]
    step("safety_work_done", datetime(2027, 1, 6, 9, tzinfo=UTC))
    step("works_started", datetime(2027, 1, 8, 9, tzinfo=UTC))
    assert case["status"] == "works_started"
    assert overdue_steps(case, datetime(2027, 6, 1, tzinfo=UTC)) == []
    step("close", datetime(2027, 2, 1, 9, tzinfo=UTC))
    with pytest.raises(CaseConflict, match="closed"):
        apply_action(case, "visit", datetime(2027, 2, 2, tzinfo=UTC), None)


def test_an_emergency_is_only_ever_started_by_a_person_and_runs_24_hours():
    aware = datetime(2026, 11, 24, 9, tzinfo=UTC)
    case = _blank_case(aware)
    assert [name for name, _ in outstanding(case)] == ["investigate"]  # sensors open red cases, never emergencies
    confirmed = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)
    case.update(apply_action(case, "confirm_emergency", confirmed, "seen by the officer"))
    assert case["level"] == "emergency"
    assert outstanding(case)[0] == ("emergency", confirmed + timedelta(hours=24))
    case.update(apply_action(case, "investigation_done", confirmed + timedelta(hours=3), None))
    case.update(apply_action(case, "safety_work_done", confirmed + timedelta(hours=20), None))
    assert "emergency" not in dict(outstanding(case))
