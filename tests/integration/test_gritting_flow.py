"""Gritting decisions end to end: simulated road stations publish over the real broker, `placewatch ingest`
stores the readings, `placewatch alerts` decides, and decisions come back through the HTTP API and as
retained MQTT alerts.

The road simulator is a pure function of time: each scenario's evening is replayed onto the real clock
(the reading for simulated time S - k x 10 min is published with timestamp now - k x 10 min), so the
running scheduler, which decides at the real `now`, sees tonight's road as the scenario describes it.

The learned nowcast reads the clock too: how long the night still runs (the policy's night_end_local) and
where the sun is (the station's position). So that the real clock is an evening whatever the hour the tests
run at, the night ends 11 h after the tests start (the scenarios' 21:00 to 08:00), and the stations stand at
the longitude where the sun is as at 21:00 (EVENING_SOLAR_HOUR).
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from alerts.context import AlertContext
from alerts.gritting import GrittingEvaluator
from alerts.publisher import AlertPublisher
from core.gritting import learned
from core.gritting.vocab import EVALUATOR
from placewatch.settings import Settings
from simulators.publisher import payload_of, readings_topic
from simulators.road import RoadStation
from store import nowcast as nowcast_store
from store.db import open_pool
from tests.conftest import service_env, wait_until
from tests.helpers import load, route, station
from tests.services import Proc, start_service, subscribe_collect

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
STEP = timedelta(minutes=10)
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
EVENING_SOLAR_HOUR = 21.0  # the scenarios' evening: where the stations stand, the sun is as at this hour
NIGHT_LEFT = timedelta(hours=11)  # from the scenarios' 21:00 to the end of the gritting night at 08:00


@pytest.fixture(scope="module")
def tonight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy file whose gritting night ends NIGHT_LEFT after the tests start (all else the defaults)."""
    end = (datetime.now(UTC) + NIGHT_LEFT).astimezone(LONDON).strftime("%H:%M")
    path = tmp_path_factory.mktemp("policy") / "tonight.json"
    path.write_text(json.dumps({"night_end_local": end}))
    return path


def evening_lon(now: datetime | None = None) -> float:
    """The longitude where the local solar time is EVENING_SOLAR_HOUR now (to a few minutes)."""
    now = now or datetime.now(UTC)
    utc_hours = now.hour + now.minute / 60
    return round(((EVENING_SOLAR_HOUR - utc_hours) * 15.0 + 180.0) % 360.0 - 180.0, 3)


@pytest.fixture(scope="module")
def alerts(database_url: str, mqtt_broker: Any, tonight: Path) -> Iterator[Proc]:
    """`placewatch alerts` (the scheduler with the gritting evaluator) for this module's tests."""
    p = start_service(["alerts"], service_env(database_url, mqtt_broker, PLACEWATCH_GRITTING_POLICY_FILE=str(tonight)))
    p.wait_for("leading the alerting scheduler", timeout=30)
    yield p
    p.stop()
    problems = [line for line in p.lines if "evaluator gritting failed" in line or "not evaluated:" in line]
    assert not problems, p.log()


def sim(day: int, hour: int) -> datetime:
    """A January evening or morning of the scenarios, Europe/London."""
    return datetime(2026, 1, day, hour, 0, tzinfo=LONDON).astimezone(UTC)


def replay(
    publisher: Any,
    device: str,
    scenario: str,
    sim_now: datetime,
    real_now: datetime,
    *,
    steps: range = range(36, -1, -1),
    seed: int = 0,
) -> None:
    """Publish the scenario's readings for sim_now - k x STEP as real_now - k x STEP, one array message."""
    model = RoadStation(scenario, seed=seed)
    entries = [(real_now - k * STEP, model.values_at(sim_now - k * STEP)) for k in steps]
    publisher.publish(readings_topic(device), payload_of(entries))


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def decisions(api_url: str, headers: dict[str, str], route_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{api_url}/api/v1/gritting/decisions", params={"route_id": route_id}, headers=headers)
    r.raise_for_status()
    return list(r.json())


def current(api_url: str, headers: dict[str, str], route_id: str) -> dict[str, Any]:
    r = httpx.get(f"{api_url}/api/v1/routes/{route_id}", headers=headers)
    r.raise_for_status()
    return dict(r.json())


def wait_decision(api_url: str, headers: dict[str, str], route_id: str, check: Any = None) -> dict[str, Any]:
    """The route's current decision once it exists (and passes check)."""

    def ready() -> dict[str, Any] | None:
        d = current(api_url, headers, route_id)["decision"]
        if d is None or d["rule"] == "no_data":  # a sweep that ran before the test's readings were committed
            return None
        return d if check is None or check(d) else None

    return dict(wait_until(ready, timeout=20))


def alerts_on(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages if m.payload]


@contextmanager
def in_process(database_url: str, mqtt_broker: Any, policy_file: Path) -> Iterator[tuple[Settings, Any, Any]]:
    """Settings with the module's night, a pool and a publisher, for an evaluator run in the test's process."""
    settings = Settings(
        database_url=database_url,
        mqtt_url=mqtt_broker.url,
        mqtt_protocol=mqtt_broker.protocol,
        gritting_policy_file=policy_file,
    )
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(settings.mqtt_url, protocol=settings.mqtt_protocol, prefix=settings.topic_prefix)
    try:
        yield settings, pool, pub
    finally:
        pub.close()
        pool.close()


def stored_readings(db: Any, dev: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
    ).fetchone()
    return int(row[0])


def one_station_route(database_url: str, uid: str, tag: str, **props: Any) -> tuple[str, str]:
    dev, rid = f"rws-{tag}-{uid}", f"G-{tag}-{uid}"
    load(database_url, station(dev, lon=evening_lon()), route(rid, [dev], **props))
    return dev, rid


# First of the module: it runs the evaluator itself, and the module's scheduler (the alerts fixture, started by the
# first test that asks for it and running on until the module ends) would decide its route from the same readings,
# often while this evaluation runs (then this one's decision is not stored: "its current decision changed meanwhile").
def test_the_evaluator_keeps_the_model_in_force_until_a_newer_fit_and_uses_each_stations_nights(
    database_url, mqtt_broker, db, ingest, publisher, api_url, token_for, uid, tonight, monkeypatch
):
    dev, rid = one_station_route(database_url, uid, "learn")
    ingest()
    headers = token_for("highways")
    real = now_s()
    newer = dataclasses.replace(learned.load_default(), fitted_at=real + timedelta(days=400))  # newest of the run
    try:
        replay(publisher, dev, "freezes_at_0200", sim(14, 21), real)
        wait_until(lambda: stored_readings(db, dev) > 30)
        with in_process(database_url, mqtt_broker, tonight) as (settings, pool, pub):
            ev = GrittingEvaluator(settings)
            with pool.connection() as conn:
                before = ev.nowcast_model(conn)
                nowcast_store.save_model(conn, newer)
                own = learned.StationLearning(23, tuple(0.0 for _ in newer.horizons))
                nowcast_store.save_stations(conn, {dev: own}, fitted_at=real, model_fitted_at=newer.fitted_at)
                assert ev.nowcast_model(conn) is before  # checked at most every MODEL_CHECK_S: still in force
                monkeypatch.setattr(ev.model_check, "every_s", 0.0)  # MODEL_CHECK_S has passed
                assert ev.nowcast_model(conn).fitted_at == newer.fitted_at
            [did] = ev.evaluate(AlertContext(settings=settings, pool=pool, publisher=pub, now=lambda: real), [rid])
        d = httpx.get(f"{api_url}/api/v1/gritting/decisions/{did}", headers=headers).json()
        assert d["evidence"]["nowcast"]["model"] == "stored"
        assert datetime.fromisoformat(d["evidence"]["nowcast"]["fitted_at"]) == newer.fitted_at
        assert d["evidence"]["nowcast"]["station_nights"] == {dev: 23}
        assert any(r.startswith(f"Learned from 23 nights at station {dev} and ") for r in d["reasons"]), d["reasons"]
    finally:
        db.execute("DELETE FROM nowcast_models WHERE fitted_at = %s", (newer.fitted_at,))
        db.execute("DELETE FROM nowcast_stations WHERE station_id = %s", (dev,))


def test_wet_road_cooling_toward_frost_gets_precautionary_salt_before_call_out_and_one_alert(
    database_url, mqtt_broker, alerts, ingest, publisher, api_url, token_for, uid
):
    dev, rid = one_station_route(database_url, uid, "wet")
    ingest()
    headers = token_for("highways")
    sub, got = subscribe_collect(mqtt_broker.url, f"placewatch/v1/alerts/gritting/{rid}", mqtt_broker.protocol)
    try:
        real = now_s()
        replay(publisher, dev, "freezes_at_0200", sim(14, 21), real)
        d = wait_decision(api_url, headers, rid)
        assert d["action"] == "precautionary_salt"
        assert d["spread_rate_g_m2"] == 8 and d["passes"] == 1  # frost row, RST at or above -2 C, wet road
        assert d["rule"] == "wet_road_below_trigger" and d["road_wetness"] == "wet"
        issued, call_out = datetime.fromisoformat(d["issued_at"]), datetime.fromisoformat(d["call_out_by"])
        assert issued < call_out and not d["late"]
        assert d["start_by"] < d["complete_by"] and d["status"] == "issued"
        assert all(isinstance(s, str) and s.endswith(".") for s in d["reasons"]) and len(d["reasons"]) >= 3
        # The learned nowcast decided, and the evidence says which model and how many of the station's own nights.
        assert any("learned nowcast" in s for s in d["reasons"]) and any(
            s.startswith("Learned from") for s in d["reasons"]
        )
        evidence = httpx.get(f"{api_url}/api/v1/gritting/decisions/{d['id']}", headers=headers).json()["evidence"]
        assert datetime.fromisoformat(evidence["nowcast"]["fitted_at"]) and evidence["nowcast"]["station_nights"] == {
            dev: 0
        }
        listed = decisions(api_url, headers, rid)
        assert listed[0]["id"] == d["id"]  # newest first
        assert set(listed[0]) >= {"route_id", "action", "spread_rate_g_m2", "call_out_by", "start_by"}
        assert set(listed[0]) >= {"complete_by", "reasons", "issued_at", "status"}
        wait_until(lambda: len([a for a in alerts_on(got) if a["id"] == d["id"]]) == 1)
        alert = next(a for a in alerts_on(got) if a["id"] == d["id"])
        assert alert["action"] == "precautionary_salt" and alert["status"] == "issued"
        sent = len(alerts_on(got))

        # More readings that change nothing: re-evaluated (evaluated_at moves), no new decision, no new alert.
        before = current(api_url, headers, rid)["evaluated_at"]
        model = RoadStation("freezes_at_0200")
        nxt = real + timedelta(minutes=1)
        publisher.publish(readings_topic(dev), payload_of([(nxt, model.values_at(sim(14, 21) + timedelta(minutes=1)))]))
        wait_until(lambda: current(api_url, headers, rid)["evaluated_at"] != before)
        newest = decisions(api_url, headers, rid)[0]
        assert newest["id"] == d["id"], [(x["call_out_by"], x["min_rst"], x["reasons"][0][40:200]) for x in (d, newest)]
        assert len(alerts_on(got)) == sent

        # The alert is retained: a late subscriber gets it at once.
        late_sub, late_got = subscribe_collect(
            mqtt_broker.url, f"placewatch/v1/alerts/gritting/{rid}", mqtt_broker.protocol
        )
        try:
            wait_until(lambda: late_got)
            assert late_got[0].retain and json.loads(late_got[0].payload)["id"] == d["id"]
        finally:
            late_sub.disconnect()
    finally:
        sub.disconnect()


def test_duty_officer_acknowledges_starts_and_completes_with_history_and_one_alert_per_change(
    database_url, mqtt_broker, alerts, ingest, publisher, api_url, token_for, uid
):
    dev, rid = one_station_route(database_url, uid, "life")
    ingest()
    headers = token_for("highways")
    sub, got = subscribe_collect(mqtt_broker.url, f"placewatch/v1/alerts/gritting/{rid}", mqtt_broker.protocol)
    try:
        replay(publisher, dev, "freezes_at_0200", sim(14, 21), now_s())
        d = wait_decision(api_url, headers, rid)
        base = f"{api_url}/api/v1/gritting/decisions/{d['id']}"

        def statuses() -> list[str]:
            return [a["status"] for a in alerts_on(got)]

        wait_until(lambda: statuses() == ["issued"])
        r = httpx.post(f"{base}/complete", headers=headers)
        assert r.status_code == 409 and "not started" in r.json()["detail"]
        r = httpx.post(f"{base}/acknowledge", headers=headers, json={"note": "crews on standby"})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        wait_until(lambda: statuses()[-1] == "acknowledged")
        r = httpx.post(f"{base}/acknowledge", headers=headers)
        assert r.status_code == 409 and "already acknowledged" in r.json()["detail"]
        assert httpx.post(f"{base}/start", headers=headers).json()["status"] == "in_progress"
        wait_until(lambda: statuses()[-1] == "in_progress")
        done = httpx.post(f"{base}/complete", headers=headers, json={"note": "all of the route"}).json()
        assert done["status"] == "completed"
        wait_until(lambda: statuses()[-1] == "completed")
        r = httpx.post(f"{base}/cancel", headers=headers)
        assert r.status_code == 409 and "already completed" in r.json()["detail"]

        history = httpx.get(base, headers=headers).json()["history"]
        assert [h["event"] for h in history] == ["issued", "acknowledged", "started", "completed"]
        assert history[1]["note"] == "crews on standby" and history[1]["actor"].startswith("highways-")
        assert history[0]["actor"] == EVALUATOR  # the store records core's name for the platform's own steps
        # One retained alert for the decision and one for each status change; refused actions publish nothing.
        assert statuses() == ["issued", "acknowledged", "in_progress", "completed"]

        for role, scope in (("officer", {"patch": "north"}), ("tenant", {"home": f"h-{uid}"})):
            other = token_for(role, **scope)
            assert httpx.get(f"{api_url}/api/v1/routes", headers=other).status_code == 403
            assert httpx.get(f"{api_url}/api/v1/gritting/decisions", headers=other).status_code == 403
            assert httpx.get(base, headers=other).status_code in (403, 404)
            assert httpx.post(f"{base}/cancel", headers=other).status_code in (403, 404)
        assert httpx.get(f"{api_url}/api/v1/routes").status_code == 401
    finally:
        sub.disconnect()


def test_a_second_scheduler_stands_by_while_one_leads(database_url, mqtt_broker, alerts):
    second = start_service(["alerts"], service_env(database_url, mqtt_broker))
    try:
        second.wait_for("another scheduler leads; standing by", timeout=30)
        assert not any("leading the alerting scheduler" in line for line in second.lines)
    finally:
        second.stop()


def test_warm_route_gets_no_treatment_and_dry_road_with_dry_air_at_most_monitor(
    database_url, alerts, ingest, publisher, api_url, token_for, uid
):
    # A warm evening: the learned nowcast covers the night to its end and the road stays well above the trigger,
    # so 'no action' can be said (the station readings cover until the night's end: no coverage hold).
    warm_dev, warm = one_station_route(database_url, uid, "warm")
    dry_dev, dry = one_station_route(database_url, uid, "dry")
    ingest()
    headers = token_for("admin")
    real = now_s()
    replay(publisher, warm_dev, "warm_night", sim(14, 21), real)
    replay(publisher, dry_dev, "dry_cold", sim(14, 21), real)
    w = wait_decision(api_url, headers, warm)
    assert w["action"] == "none" and w["spread_rate_g_m2"] is None and w["call_out_by"] is None, w["reasons"]
    assert w["rule"] == "above_monitor_band" and any("learned nowcast" in s for s in w["reasons"])
    d = wait_decision(api_url, headers, dry)
    assert d["action"] in ("none", "monitor") and d["spread_rate_g_m2"] is None
    routes = {r["id"]: r for r in httpx.get(f"{api_url}/api/v1/routes", headers=headers).json()}
    assert routes[warm]["decision"]["id"] == w["id"] and routes[warm]["stations"] == [warm_dev]


def test_forecast_light_snow_gives_twenty_grams_and_a_cap_update(
    database_url, alerts, ingest, publisher, api_url, token_for, uid
):
    dev, rid = one_station_route(database_url, uid, "snow", domain=f"D-{uid}")
    ingest()
    headers = token_for("highways")
    real = now_s()
    replay(publisher, dev, "dry_cold", sim(14, 21), real)
    first = wait_decision(api_url, headers, rid)
    assert first["action"] in ("none", "monitor")

    body = {
        "issued_at": (real - timedelta(minutes=5)).isoformat(),
        "source": "test provider",
        "forecasts": [
            {
                "domain": f"D-{uid}",
                "min_rst": -1.0,
                "min_rst_at": (real + timedelta(hours=7)).isoformat(),
                "precipitation": "snow",
                "precipitation_mm": 4,
                "precipitation_start": (real + timedelta(hours=6)).isoformat(),
                "precipitation_end": (real + timedelta(hours=8)).isoformat(),
            }
        ],
    }
    r = httpx.put(f"{api_url}/api/v1/gritting/forecast", headers=headers, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["routes"] == [rid]
    d = wait_decision(api_url, headers, rid, lambda d: d["id"] != first["id"])
    assert d["action"] == "precautionary_salt" and d["rule"] == "light_snow_forecast"
    assert d["spread_rate_g_m2"] == 20 and d["forecast_id"] == r.json()["forecasts"][0]["id"]
    assert d["previous_id"] == first["id"]
    old = httpx.get(f"{api_url}/api/v1/gritting/decisions/{first['id']}", headers=headers).json()
    assert old["superseded_by"] == d["id"] and old["status"] == "superseded"

    bad = dict(body, forecasts=[dict(body["forecasts"][0], domain=None, route_ids=["no-such-route"])])
    assert httpx.put(f"{api_url}/api/v1/gritting/forecast", headers=headers, json=bad).status_code == 422

    feed = httpx.get(f"{api_url}/api/v1/gritting/cap.xml", headers=headers)
    assert feed.status_code == 200 and "xml" in feed.headers["content-type"]
    alerts_by_id = {a.findtext(f"{CAP}identifier"): a for a in ET.fromstring(feed.content).iter(f"{CAP}alert")}
    mine = alerts_by_id[f"placewatch-gritting-{d['id']}"]
    assert mine.findtext(f"{CAP}msgType") == "Update" and mine.findtext(f"{CAP}status") == "Actual"
    assert f"placewatch-gritting-{first['id']}" in mine.findtext(f"{CAP}references")
    assert mine.findtext(f"{CAP}info/{CAP}category") == "Transport"


def test_eight_below_zero_escalates_to_the_duty_officer(
    database_url, alerts, ingest, publisher, api_url, token_for, uid
):
    dev, rid = one_station_route(database_url, uid, "deep")
    ingest()
    headers = token_for("highways")
    replay(publisher, dev, "deep_freeze", sim(15, 7), now_s())
    d = wait_decision(api_url, headers, rid)
    assert d["action"] == "escalate" and d["spread_rate_g_m2"] is None
    assert d["min_rst"] <= -7.5
    assert any("duty officer" in s for s in d["reasons"])


def test_late_readings_re_evaluate_the_route(database_url, alerts, ingest, publisher, api_url, token_for, uid):
    dev, rid = one_station_route(database_url, uid, "late")
    ingest()
    headers = token_for("highways")
    real = now_s()
    # Only the last 20 minutes arrive first: a decision on what there is (the learned nowcast projects from the
    # last reading and the hour; the physics nowcast would hold it).
    replay(publisher, dev, "freezes_at_0200", sim(14, 21), real, steps=range(2, -1, -1))
    first = wait_decision(api_url, headers, rid)
    seen = current(api_url, headers, rid)["evaluated_at"]
    assert seen is not None
    # Then the station's backlog of the three hours before arrives, late and out of order: the route is evaluated
    # again at once (full evaluations run every 10 minutes), and salting is called on the whole evening's fall.
    replay(publisher, dev, "freezes_at_0200", sim(14, 21), real, steps=range(18, 2, -1))
    wait_until(lambda: current(api_url, headers, rid)["evaluated_at"] > seen, timeout=20)
    d = wait_decision(api_url, headers, rid, lambda d: d["action"] == "precautionary_salt")
    if d["id"] != first["id"]:
        assert d["previous_id"] == first["id"]
        old = httpx.get(f"{api_url}/api/v1/gritting/decisions/{first['id']}", headers=headers).json()
        assert old["status"] == "superseded"


def test_decision_not_acknowledged_by_call_out_escalates_and_is_republished(
    database_url, mqtt_broker, alerts, ingest, publisher, api_url, token_for, uid
):
    dev, rid = one_station_route(database_url, uid, "esc")
    ingest()
    headers = token_for("highways")
    sub, got = subscribe_collect(mqtt_broker.url, f"placewatch/v1/alerts/gritting/{rid}", mqtt_broker.protocol)
    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(settings.mqtt_url, protocol=settings.mqtt_protocol, prefix=settings.topic_prefix)
    try:
        replay(publisher, dev, "freezes_at_0200", sim(14, 21), now_s())
        d = wait_decision(api_url, headers, rid)
        assert d["status"] == "issued"
        mine = lambda: [a["status"] for a in alerts_on(got) if a["id"] == d["id"]]  # noqa: E731
        wait_until(lambda: mine() == ["issued"])
        # The clock passes the call-out time with nobody acknowledging: the evaluator escalates.
        after = datetime.fromisoformat(d["call_out_by"]) + timedelta(minutes=1)
        ctx = AlertContext(settings=settings, pool=pool, publisher=pub, now=lambda: after)
        assert GrittingEvaluator(settings).escalate(ctx, [rid]) == [d["id"]]
        esc = httpx.get(f"{api_url}/api/v1/gritting/decisions/{d['id']}", headers=headers).json()
        assert esc["status"] == "escalated" and esc["escalated_at"] is not None
        assert [h["event"] for h in esc["history"]] == ["issued", "escalated"]
        wait_until(lambda: mine() == ["issued", "escalated"])
        assert GrittingEvaluator(settings).escalate(ctx, [rid]) == []  # once only
        # Acknowledging late is still possible, and recorded.
        r = httpx.post(f"{api_url}/api/v1/gritting/decisions/{d['id']}/acknowledge", headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    finally:
        pub.close()
        pool.close()
        sub.disconnect()


def test_council_policy_file_and_a_forecast_loaded_from_the_command_line(
    database_url, mqtt_broker, api_url, token_for, uid, tmp_path
):
    rid = f"G-policy-{uid}"
    load(database_url, route(rid, [], treatment_minutes=None))  # no stations: the forecast alone decides
    real = now_s()
    forecast = tmp_path / "forecast.json"
    forecast.write_text(
        json.dumps(
            {
                "issued_at": (real - timedelta(minutes=10)).isoformat(),
                "forecasts": [
                    {"route_ids": [rid], "min_rst": -3.0, "min_rst_at": (real + timedelta(hours=8)).isoformat(),
                     "dew_point": -2.0}
                ],
            }
        )
    )  # fmt: skip
    env = service_env(database_url, mqtt_broker)
    cli = start_service(["forecast", "load", str(forecast)], env)
    assert cli.popen.wait(30) == 0, cli.log()
    assert any("1 forecast(s) loaded for 1 route(s)" in line for line in cli.lines), cli.log()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"issued_at": real.isoformat(), "forecasts": [{"route_ids": ["nowhere"]}]}))
    cli = start_service(["forecast", "load", str(bad)], env)
    assert cli.popen.wait(30) == 1
    assert any("unknown route(s) 'nowhere'" in line for line in cli.lines), cli.log()

    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"name": "Testshire winter service plan", "pre_wetted": True, "treatment_minutes": 120})
    )
    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, gritting_policy_file=policy)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(settings.mqtt_url, protocol=mqtt_broker.protocol, prefix=settings.topic_prefix)
    try:
        ctx = AlertContext(settings=settings, pool=pool, publisher=pub)
        stored = GrittingEvaluator(settings).evaluate(ctx, [rid])
        assert len(stored) == 1
    finally:
        pub.close()
        pool.close()
    headers = token_for("highways")
    d = httpx.get(f"{api_url}/api/v1/gritting/decisions/{stored[0]}", headers=headers).json()
    assert d["action"] == "precautionary_salt" and d["rule"] == "frost_deposition"
    assert d["spread_type"] == "pre-wetted" and d["spread_rate_g_m2"] == 9  # RST -2 to -5 C, dry road, pre-wetted
    start, end = datetime.fromisoformat(d["start_by"]), datetime.fromisoformat(d["complete_by"])
    assert end - start == timedelta(minutes=120)  # the policy's treatment time: the route gives none
    assert d["evidence"]["policy"]["name"] == "Testshire winter service plan"
    assert d["evidence"]["forecast"]["min_rst"] == -3.0 and d["forecast_id"] == d["evidence"]["forecast_id"]
    assert any("forecast" in s for s in d["reasons"])

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"trigger_rst": 0.5}))
    with pytest.raises(ValueError, match="trigger_rst"):
        GrittingEvaluator(Settings(database_url=database_url, gritting_policy_file=broken))


def test_a_treating_decision_and_its_escalation_notify_the_highways_team_once_each(
    database_url, mqtt_broker, db, ingest, publisher, api_url, token_for, uid, tonight
):
    dev, rid = one_station_route(database_url, uid, "ntf")
    ingest()
    headers = token_for("highways")
    with in_process(database_url, mqtt_broker, tonight) as (settings, pool, pub):
        real = now_s()
        replay(publisher, dev, "freezes_at_0200", sim(14, 21), real)
        wait_until(lambda: stored_readings(db, dev) > 0)
        ev = GrittingEvaluator(settings)
        ctx = AlertContext(settings=settings, pool=pool, publisher=pub, now=lambda: real)
        [did] = ev.evaluate(ctx, [rid])
        ev.evaluate(ctx, [rid])  # nothing changed: no new decision, no new notification
        d = httpx.get(f"{api_url}/api/v1/gritting/decisions/{did}", headers=headers).json()
        later = datetime.fromisoformat(d["call_out_by"]) + timedelta(minutes=1)
        ev.escalate(AlertContext(settings=settings, pool=pool, publisher=pub, now=lambda: later), [rid])
        events = db.execute(
            "SELECT kind, audience, title FROM notification_events WHERE subject = %s ORDER BY id", (rid,)
        ).fetchall()
        assert [(k, a) for k, a, _ in events] == [
            ("gritting.decision", ["team:highways"]),
            ("gritting.escalation", ["team:highways"]),
        ]
        assert events[1][2].startswith("ESCALATED: ")
