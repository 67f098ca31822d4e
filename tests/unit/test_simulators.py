"""Simulators: the models as pure functions of time, the replay parsers, the demo registry, and one real publish."""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import statistics
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from core.metrics import SURFACE_STATES, check_value
from core.timeparse import check_time, parse_any
from dashboards.open_data import MIN_HOMES
from ingest.decoders.native import NativeDecoder
from simulators import cli as sim_cli
from simulators import fleet, replay
from simulators.demo import demo_devices
from simulators.faults import FAULTS, fault_steps
from simulators.home import PROFILES, HomeSensor
from simulators.publisher import Message, Publisher, SimClock, payload_of, readings_topic, status_topic
from simulators.road import SCENARIOS, RoadStation

LONDON = ZoneInfo("Europe/London")
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "registry" / "demo.geojson"
SEATTLE = replay.default_seattle_csv()
GLASGOW = replay.default_glasgow_files()
BROKER = ("127.0.0.1", 1883)
BROKER_URL = "mqtt://127.0.0.1:1883"


def local(day: date, hh: int, mm: int = 0) -> datetime:
    """Europe/London wall time as aware UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=LONDON).astimezone(UTC)


def minutes(start: datetime, end: datetime, step: int = 1) -> list[datetime]:
    out, t = [], start
    while t <= end:
        out.append(t)
        t += timedelta(minutes=step)
    return out


# -- road stations -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["freezes_at_0200", "hoar_frost", "deep_freeze", "dry_cold"])
def test_road_cools_through_the_night_and_warms_by_day(scenario: str) -> None:
    st = RoadStation(scenario, seed=1)
    day = date(2026, 1, 15)
    nxt = day + timedelta(days=1)
    evening, midnight, dawn, afternoon = local(day, 18), local(nxt, 0), local(nxt, 6), local(nxt, 14)
    rst = [st.road_surface_temperature(t) for t in (evening, midnight, dawn)]
    air = [st.air_temperature(t) for t in (evening, midnight, dawn)]
    assert rst[0] > rst[1] > rst[2]
    assert air[0] > air[1] > air[2]
    assert st.road_surface_temperature(afternoon) > rst[2] + 2.0


def test_rst_is_a_little_below_air_temperature_on_a_clear_night() -> None:
    st = RoadStation("hoar_frost", seed=3)
    nxt = date(2026, 1, 16)
    for hh in (1, 3, 5):
        s = st.state_at(local(nxt, hh))
        assert 0.5 < s.air_temperature - s.road_surface_temperature < 4.0


@pytest.mark.parametrize("seed", [0, 1, 7, "rws-hagley-road"])
@pytest.mark.parametrize("day", [date(2026, 1, 15), date(2025, 12, 20), date(2026, 2, 27)])
def test_freezes_at_0200_reaches_zero_within_fifteen_minutes_of_two_on_a_wet_road(seed: object, day: date) -> None:
    st = RoadStation("freezes_at_0200", seed=seed)
    nxt = day + timedelta(days=1)
    prev = None
    for t in minutes(local(day, 23), local(nxt, 4)):
        values = st.values_at(t)
        if values["road_surface_temperature"] <= 0.0:  # type: ignore[operator]
            assert abs((t - local(nxt, 2)).total_seconds()) <= 15 * 60, t.astimezone(LONDON)
            assert prev is not None and prev["surface_state"] == "wet"  # a wet road freezing...
            assert values["surface_state"] == "ice"  # ...is ice
            return
        prev = values
    pytest.fail("the road never reached 0 C")


def test_warm_night_stays_above_five_degrees() -> None:
    st = RoadStation("warm_night", seed=2)
    for t in minutes(local(date(2026, 1, 15), 12), local(date(2026, 1, 17), 12), step=10):
        s = st.state_at(t)
        assert s.road_surface_temperature > 5.0
        assert s.air_temperature > 5.0
        assert s.surface_state in ("dry", "damp", "wet")


def test_rain_wets_the_road_slows_cooling_and_the_road_dries_afterwards() -> None:
    st = RoadStation("rain_then_freeze", seed=4)
    day, nxt = date(2026, 1, 15), date(2026, 1, 16)
    assert st.state_at(local(day, 16)).surface_state == "dry"  # before the rain
    assert st.state_at(local(day, 18)).surface_state == "wet"  # in the rain
    assert st.state_at(local(day, 23)).surface_state == "wet"  # after it, still wet
    # Cooling is slower in the rain (17-22) than once the sky clears (22-03).
    in_rain = st.road_surface_temperature(local(day, 17)) - st.road_surface_temperature(local(day, 22))
    clear = st.road_surface_temperature(local(day, 22)) - st.road_surface_temperature(local(nxt, 3))
    assert clear > 1.5 * in_rain
    # The wet road freezes: ice, until the day thaws it; then it dries: wet/damp -> dry.
    assert st.state_at(local(nxt, 5)).surface_state == "ice"
    later = [st.state_at(t).surface_state for t in minutes(local(nxt, 9), local(nxt, 13), step=10)]
    assert "ice" in later and later[-1] == "dry"
    after_thaw = later[later.index("dry") - 1] if "dry" in later else None
    assert after_thaw in ("wet", "damp")


def test_residual_salt_is_washed_off_by_rain() -> None:
    st = RoadStation("rain_then_freeze", seed=4, freezing_point=True)
    day = date(2026, 1, 15)
    first = st.values_at(local(day, 17, 10))
    later = st.values_at(local(day, 23))
    assert first["freezing_point"] < -0.5  # type: ignore[operator]
    assert later["freezing_point"] > first["freezing_point"]  # type: ignore[operator]


def test_dry_cold_keeps_a_dry_road_near_plus_one_with_a_low_dew_point() -> None:
    st = RoadStation("dry_cold", seed=5)
    night = [st.state_at(t) for t in minutes(local(date(2026, 1, 15), 18), local(date(2026, 1, 16), 8), step=10)]
    low = min(s.road_surface_temperature for s in night)
    assert 0.5 <= low <= 1.5
    assert all(s.surface_state == "dry" for s in night)
    assert all(s.dew_point < s.road_surface_temperature - 4.0 for s in night)


def test_deep_freeze_reaches_minus_eight_with_hoar_frost() -> None:
    st = RoadStation("deep_freeze", seed=6)
    night = [st.state_at(t) for t in minutes(local(date(2026, 1, 15), 18), local(date(2026, 1, 16), 9), step=10)]
    assert -8.6 <= min(s.road_surface_temperature for s in night) <= -7.4
    assert "frost" in {s.surface_state for s in night}


def test_snow_scenario_lies_overnight_then_melts() -> None:
    st = RoadStation("snow", seed=8)
    day, nxt = date(2026, 1, 15), date(2026, 1, 16)
    assert st.state_at(local(day, 21)).surface_state == "snow"
    assert st.state_at(local(nxt, 6)).surface_state == "snow"
    assert st.state_at(local(nxt, 11, 30)).surface_state in ("wet", "ice")  # melting
    assert st.state_at(local(nxt, 17)).surface_state == "dry"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_publishes_the_contract_metrics_in_range(scenario: str) -> None:
    st = RoadStation(scenario, seed=9, freezing_point=True)
    for t in minutes(local(date(2026, 1, 15), 12), local(date(2026, 1, 16), 12), step=20):
        values = st.values_at(t)
        assert values["surface_state"] in SURFACE_STATES
        for metric, value in values.items():
            assert check_value(metric, value) is None, (metric, value)
        assert values["dew_point"] <= values["air_temperature"] + 0.01  # type: ignore[operator]


def test_road_noise_is_deterministic_per_seed() -> None:
    t = local(date(2026, 1, 15), 22, 10)
    assert RoadStation("snow", seed="a").values_at(t) == RoadStation("snow", seed="a").values_at(t)
    assert RoadStation("snow", seed="a").values_at(t) != RoadStation("snow", seed="b").values_at(t)


# -- homes ----------------------------------------------------------------------------------------------------


def week(sensor: HomeSensor, start: datetime) -> list[dict[str, object]]:
    out = []
    for i in range(7 * 288):
        v = sensor.values_at(start + timedelta(minutes=5 * i))
        if v is not None:
            out.append(v)
    return out


@pytest.mark.parametrize("room", ["bedroom", "living room"])
def test_cold_damp_home_drifts_into_mould_risk_over_a_week(room: str) -> None:
    start = datetime(2026, 1, 12, tzinfo=UTC)
    values = week(HomeSensor("cold_damp", room=room, seed=room, origin=start), start)
    rh = [float(v["relative_humidity"]) for v in values]  # type: ignore[arg-type]
    temp = [float(v["temperature"]) for v in values]  # type: ignore[arg-type]
    assert statistics.mean(rh) > 75.0
    assert statistics.mean(temp) < 18.0
    assert statistics.mean(rh[-288:]) > statistics.mean(rh[:288]) + 5  # the last day is damper than the first
    assert 80.0 <= statistics.mean(rh[-288:]) <= 92.0


@pytest.mark.parametrize("room", ["bedroom", "living room", "kitchen", "bathroom"])
def test_warm_dry_home_stays_below_sixty_percent(room: str) -> None:
    start = datetime(2026, 1, 12, tzinfo=UTC)
    values = week(HomeSensor("warm_dry", room=room, seed=1), start)
    rh = [float(v["relative_humidity"]) for v in values]  # type: ignore[arg-type]
    assert max(rh) < 60.0
    assert statistics.mean(float(v["temperature"]) for v in values) > 19.0  # type: ignore[arg-type]


def test_typical_home_shows_heating_and_shower_peaks() -> None:
    home = HomeSensor("typical", room="bathroom", seed=2)
    day = date(2026, 1, 14)  # a Wednesday
    cold_morning = home.state_at(local(day, 6, 30)).temperature
    evening = home.state_at(local(day, 22)).temperature
    assert evening > cold_morning + 3
    before = home.state_at(local(day, 6, 55)).relative_humidity
    shower = home.state_at(local(day, 7, 15)).relative_humidity
    assert shower > before + 8


def test_gappy_home_misses_a_week_of_readings() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    home = HomeSensor("gappy", seed=3, origin=start)
    days_missing = sum(
        1 for d in range(21) if all(home.values_at(start + timedelta(days=d, hours=h)) is None for h in range(24))
    )
    assert days_missing == 7


def test_battery_declines_slowly() -> None:
    home = HomeSensor("typical", seed=4)
    t = datetime(2026, 1, 5, tzinfo=UTC)
    levels = [home.battery(t + timedelta(days=d)) for d in range(0, 30, 5)]
    drops = [a - b for a, b in itertools.pairwise(levels)]
    assert all(0 < d < 2 for d in drops) or any(d < -50 for d in drops)  # declining, or replaced once


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_home_values_are_in_the_contract_vocabulary(profile: str) -> None:
    home = HomeSensor(profile, room="kitchen", seed=5)
    t = datetime(2026, 7, 1, tzinfo=UTC)  # summer too: heating off, never cooling
    for i in range(0, 288 * 2, 7):
        v = home.values_at(t + timedelta(minutes=5 * i))
        if v is None:
            continue
        assert set(v) == {"temperature", "relative_humidity", "battery"}
        for metric, value in v.items():
            assert check_value(metric, value) is None


# -- what goes on the wire ---------------------------------------------------------------------------------------


def test_payloads_are_what_native_ingest_accepts() -> None:
    dec = NativeDecoder()
    now = datetime(2026, 1, 15, 6, 30, tzinfo=UTC)
    st = RoadStation("freezes_at_0200", seed=1)
    one = payload_of([(now, st.values_at(now))])
    assert orjson.loads(one)["ts"] == "2026-01-15T06:30:00Z"
    got = dec.decode(readings_topic("rws-x"), one, now)
    assert {r.metric for r in got.readings} == {
        "road_surface_temperature",
        "air_temperature",
        "dew_point",
        "surface_state",
    }
    assert not got.rejections
    many = payload_of([(now + timedelta(minutes=i), {"temperature": 20.0}) for i in range(3)])
    assert len(dec.decode(readings_topic("home-x"), many, now).readings) == 3
    frags = fleet.value_fragments(0)
    for n in (1, 100):
        msg = fleet.encode_message(1_768_458_600_000, 60_000, n, frags, 5)
        decoded = dec.decode(readings_topic("fleet-00001"), msg, now)
        assert len(decoded.readings) == 2 * n and not decoded.rejections
        assert len({r.ts for r in decoded.readings}) == n
    assert fleet.device_ids(3) == ["fleet-00001", "fleet-00002", "fleet-00003"]


def test_sim_clock_runs_at_speed_and_not_at_all_at_zero() -> None:
    start = datetime(2026, 1, 15, tzinfo=UTC)
    assert SimClock(start, 0).delay(start + timedelta(days=1)) == 0
    fast = SimClock(start, 3600)
    assert 0.9 < fast.delay(start + timedelta(hours=1)) <= 1.0


def test_faults_send_what_ingest_must_refuse() -> None:
    start = datetime(2026, 1, 15, 12, tzinfo=UTC)
    now = start + timedelta(hours=3)
    dec = NativeDecoder()
    assert set(FAULTS) >= {
        "malformed_json", "out_of_range", "wrong_types", "future_timestamp",
        "unknown_metric", "stuck_sensor", "miswired", "offline_and_back",
    }  # fmt: skip
    malformed = fault_steps("malformed_json", start=start, count=18, now=now)
    bad = [s for s in malformed if s.note != "good"]
    for s in bad:  # refused whole, or every value rejected with a reason: nothing is stored either way
        try:
            got = dec.decode(readings_topic("fault-x"), s.payload, now)
        except ValueError:
            continue
        assert got.readings == () and got.rejections, s.payload
    for s in fault_steps("out_of_range", start=start, count=6, now=now):
        got = dec.decode(readings_topic("fault-x"), s.payload, now)
        assert got.rejections and got.readings  # the bad value refused, the good ones kept
    future = [s for s in fault_steps("future_timestamp", start=start, count=6, now=now) if s.note != "good"]
    for s in future[:3]:
        ts = orjson.loads(s.payload)["ts"]
        assert check_time(parse_any(ts), now) is not None
    unknown = fault_steps("unknown_metric", start=start, count=3, now=now)
    assert all(dec.decode(readings_topic("fault-x"), s.payload, now).rejections for s in unknown)
    stuck = [orjson.loads(s.payload)["values"] for s in fault_steps("stuck_sensor", start=start, count=36, now=now)]
    assert len({v["road_surface_temperature"] for v in stuck}) == 1
    assert len({v["air_temperature"] for v in stuck}) > 5
    for s in fault_steps("miswired", start=start, count=6, now=now):
        v = orjson.loads(s.payload)["values"]
        assert v["road_surface_temperature"] == v["air_temperature"]
    actions = [s.action for s in fault_steps("offline_and_back", start=start, count=6, now=now)]
    assert actions.index("drop") < actions.index("reconnect") < len(actions) - 1


# -- replays ----------------------------------------------------------------------------------------------------

needs_seattle = pytest.mark.skipif(not SEATTLE.exists(), reason=f"Seattle data not found at {SEATTLE}")
needs_glasgow = pytest.mark.skipif(not GLASGOW, reason=f"Glasgow data not found under {replay.data_dir()}")


@needs_seattle
def test_seattle_replay_converts_units_and_local_time_and_keeps_duplicates() -> None:
    messages = replay.seattle_messages(SEATTLE)
    assert len(messages) == 32_074  # one message per row: duplicates are the store's to drop
    keys = [(m.device_id, m.ts) for m in messages]
    assert len(keys) - len(set(keys)) == 10_655
    aurora = [
        m for m in messages if m.device_id == "AuroraBridge" and m.ts == datetime(2020, 2, 24, 10, 18, tzinfo=UTC)
    ]
    assert aurora, "02/24/2020 02:18:00 AM Pacific is 10:18 UTC"
    assert aurora[0].values == {"road_surface_temperature": 6.95, "air_temperature": 5.32}
    assert {m.device_id for m in messages} == set(replay.stations(SEATTLE))
    assert replay.seattle_messages(SEATTLE, limit=10) == messages[:10]
    ordered = replay.seattle_messages(SEATTLE, order="time")
    assert [m.ts for m in ordered] == sorted(m.ts for m in messages)
    assert len(ordered) == 32_074


@needs_seattle
def test_seattle_registry_has_the_eight_stations_where_the_wkt_says() -> None:
    reg = replay.registry_for_seattle(SEATTLE)
    assert reg["type"] == "FeatureCollection"
    feats = {f["properties"]["id"]: f for f in reg["features"]}
    assert len(feats) == 8
    assert all(f["properties"]["kind"] == "road_station" for f in feats.values())
    assert feats["AuroraBridge"]["geometry"]["coordinates"] == [-122.347278, 47.643174]


def test_seattle_local_times_across_the_clock_changes(tmp_path: Path) -> None:
    csv = tmp_path / "rws.csv"
    csv.write_text(
        "StationName,StationLocation,DateTime,RecordId,RoadSurfaceTemperature,AirTemperature\n"
        "A,POINT (-122.3 47.6),11/01/2020 01:30:00 AM,101,50.00,50.00\n"
        "A,POINT (-122.3 47.6),11/01/2020 01:30:00 AM,161,41.00,\n"  # the second 01:30 (PST)
        "A,POINT (-122.3 47.6),11/01/2020 01:30:00 AM,101,50.00,50.00\n"  # a duplicate of the first
        "A,POINT (-122.3 47.6),03/08/2020 02:30:00 AM,7,32.00,32.00\n",  # in the spring-forward gap
        encoding="utf-8",
    )
    got = replay.seattle_messages(csv)
    assert [m.ts.strftime("%m-%d %H:%M") for m in got] == ["11-01 08:30", "11-01 09:30", "11-01 08:30", "03-08 10:30"]
    assert got[1].values == {"road_surface_temperature": 5.0}
    assert got[3].values["air_temperature"] == 0.0


def test_a_replay_can_be_moved_to_now() -> None:
    t0 = datetime(2020, 2, 24, 9, 0, tzinfo=UTC)
    msgs = [Message("A", t0 + timedelta(minutes=m), {"air_temperature": 1.0}) for m in (5, 0, 5)]
    moved = replay.shifted(msgs, datetime(2026, 1, 15, tzinfo=UTC))
    assert [m.ts.strftime("%H:%M") for m in moved] == ["00:05", "00:00", "00:05"]  # order and duplicates kept


@needs_glasgow
def test_glasgow_replay_maps_columns_and_omits_unknown_battery() -> None:
    by_name = {p.stem: p for p in GLASGOW}
    first = replay.glasgow_file_messages(by_name["BL007-14"], limit=1)[0]
    assert first.device_id == "glasgow-BL007-14"
    assert first.ts == datetime(2023, 8, 6, 15, 22, 14, tzinfo=UTC)
    assert first.values == {"temperature": 32.94, "relative_humidity": 46.49, "battery": 33.0}
    unknown = replay.glasgow_file_messages(by_name["BL007-28"], limit=1)[0]
    assert "battery" not in unknown.values  # BATT -1 means unknown
    reg = replay.registry_for_glasgow(GLASGOW, patch="glasgow")
    homes = {f["properties"]["id"] for f in reg["features"] if f["properties"]["kind"] == "home"}
    sensors = [f["properties"] for f in reg["features"] if f["properties"]["kind"] == "home_sensor"]
    assert len(homes) == len(sensors) == len(GLASGOW)
    assert all(s["home"] in homes for s in sensors)
    assert {s["id"] for s in sensors} == {f"glasgow-{p.stem}" for p in GLASGOW}


# -- the demo registry -------------------------------------------------------------------------------------------


def test_demo_registry_is_a_consistent_feature_collection() -> None:
    doc = json.loads(DEMO.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    feats = doc["features"]
    assert all(f["type"] == "Feature" for f in feats)
    kinds: dict[str, list[dict[str, object]]] = {}
    for f in feats:
        kinds.setdefault(f["properties"]["kind"], []).append(f)
    assert set(kinds) == {"route", "road_station", "home", "home_sensor"}
    stations = {f["properties"]["id"] for f in kinds["road_station"]}
    homes = {f["properties"]["id"]: f["properties"] for f in kinds["home"]}
    assert 5 <= len(stations) <= 6 and 10 <= len(homes) <= 12
    assert {f["properties"]["id"] for f in kinds["route"]} == {"P1", "P2", "P3", "S1"}
    for f in kinds["route"]:
        p = f["properties"]
        assert f["geometry"]["type"] in ("LineString", "MultiLineString")
        assert p["stations"] and set(p["stations"]) <= stations
        assert p["priority"] >= 1 and p["treatment_minutes"] > 0 and p["name"]
    for f in kinds["road_station"] + kinds["home"]:
        assert f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        assert -2.1 < lon < -1.8 and 52.3 < lat < 52.6  # around Birmingham
    for f in kinds["home"]:
        assert f["properties"]["address"] and f["properties"]["patch"]
    assert len({p["patch"] for p in homes.values()}) == 2
    # Every patch has the open data's minimum of homes with sensors, so the public area panel is not empty.
    with_sensors = {f["properties"]["home"] for f in kinds["home_sensor"]}
    for patch in {p["patch"] for p in homes.values()}:
        assert sum(1 for hid, p in homes.items() if p["patch"] == patch and hid in with_sensors) >= MIN_HOMES
    for f in kinds["home_sensor"]:
        p = f["properties"]
        assert p["home"] in homes
        assert p["room"] in ("bedroom", "living room", "kitchen")
        assert f["geometry"] is None or f["geometry"]["type"] == "Point"
    ids = [f["properties"]["id"] for f in feats if f["properties"]["kind"] != "home"]
    assert len(ids) == len(set(ids))


def test_demo_simulates_every_device_with_a_mix_of_scenarios() -> None:
    devices = demo_devices(DEMO)
    assert len(devices) == 19
    roads = {d.scenario for d in devices if d.kind == "road_station"}
    homes = {d.scenario for d in devices if d.kind == "home_sensor"}
    assert {"freezes_at_0200", "warm_night"} <= roads
    assert {"cold_damp", "warm_dry"} <= homes


# -- the command line ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [
            "road",
            "--device",
            "rws-x",
            "--scenario",
            "snow",
            "--speed",
            "60",
            "--start",
            "2026-01-15T18:00",
            "--count",
            "5",
        ],
        ["home", "--scenario", "cold_damp", "--room", "bedroom", "--speed", "0", "--count", "10"],
        ["fleet", "--count", "1000", "--rate", "500", "--processes", "3", "--readings-per-message", "100"],
        ["faults", "--fault", "miswired", "--fault", "offline_and_back", "--count", "4"],
        ["replay-seattle", "--speed", "0", "--limit", "100"],
        ["replay-glasgow", "--limit", "100", "--speed", "60"],
        ["demo", "--registry", "registry/demo.geojson", "--speed", "60"],
    ],
)
def test_simulate_command_line_parses_every_mode(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    sim_cli.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["simulate", *argv])
    assert args.sim_mode == argv[0]


def test_start_without_a_zone_is_london_time() -> None:
    assert sim_cli.parse_start("2026-07-01T02:00") == datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
    assert sim_cli.parse_start("2026-01-15T02:00Z") == datetime(2026, 1, 15, 2, 0, tzinfo=UTC)


# -- a real broker --------------------------------------------------------------------------------------------------


def broker_listens() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(not broker_listens(), reason="no MQTT broker listening at 127.0.0.1:1883")


@needs_broker
def test_publisher_sends_readings_and_status_through_a_real_broker() -> None:
    from placewatch.mqttclient import connect_args, make_client

    device = f"rws-test-{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, bytes, bool]] = []
    subscribed = threading.Event()
    sub = make_client(BROKER_URL, client_id=f"pw-test-sub-{device}")
    sub.on_connect = lambda c, *_: c.subscribe(f"placewatch/v1/devices/{device}/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: got.append((m.topic, m.payload, bool(m.retain)))
    sub.connect(**connect_args(sub))  # type: ignore[arg-type]
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        st = RoadStation("freezes_at_0200", seed=device)
        start = datetime(2026, 1, 16, 1, 30, tzinfo=UTC)
        pub = Publisher(BROKER_URL, protocol="5", client_id=f"pw-test-{device}", device_id=device, window=2).connect()
        sent = [(start + timedelta(minutes=10 * i), st.values_at(start + timedelta(minutes=10 * i))) for i in range(5)]
        for ts, v in sent:
            pub.publish_readings(device, [(ts, v)])
        assert pub.flush(5) and pub.acked == 5
        pub.drop()  # power cut: the broker publishes the will
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (status_topic(device), b"offline", False) not in got:
            time.sleep(0.05)
        readings = [orjson.loads(p) for t, p, _ in got if t == readings_topic(device)]
        assert readings == [{"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "values": v} for ts, v in sent]
        statuses = [p for t, p, _ in got if t == status_topic(device)]
        assert statuses == [b"online", b"offline"]
    finally:
        sub.publish(status_topic(device), b"", qos=1, retain=True).wait_for_publish(5)  # clear the retained status
        sub.loop_stop()
        sub.disconnect()


@needs_broker
def test_fleet_publishes_every_message_from_several_processes() -> None:
    from placewatch.mqttclient import connect_args, make_client

    prefix = f"fleettest{uuid.uuid4().hex[:6]}"
    count = 3000
    got: list[bytes] = []
    subscribed = threading.Event()
    sub = make_client(BROKER_URL, client_id=f"pw-test-sub-{prefix}")
    mine = f"placewatch/v1/devices/{prefix}-"
    sub.on_connect = lambda c, *_: c.subscribe("placewatch/v1/devices/+/readings", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: got.append(m.payload) if m.topic.startswith(mine) else None
    sub.connect(**connect_args(sub))  # type: ignore[arg-type]
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        # At a set rate: Mosquitto drops QoS 1 messages for a subscriber more than 1,000 behind.
        result = fleet.run_fleet(
            BROKER_URL, devices=10, count=count, rate=3000, processes=2, readings_per_message=3, id_prefix=prefix
        )
        assert result.acked == result.messages == count and result.readings == 3 * count
        assert 0.8 < result.seconds < 5.0  # the rate was kept
        deadline = time.monotonic() + 10
        while len(got) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) == count
        assert all(len(orjson.loads(p)) == 3 for p in got[:50])
    finally:
        sub.loop_stop()
        sub.disconnect()
