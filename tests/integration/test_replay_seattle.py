"""The Seattle road weather replay through the real broker and ingest: one row per station, time and metric,
in degrees C; the health check flags exactly the two stations whose road and air sensors read the same."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from alerts.context import AlertContext
from alerts.health import DeviceHealthEvaluator
from alerts.publisher import AlertPublisher
from core.registry import parse_registry
from placewatch.embedded import start_mosquitto
from placewatch.settings import Settings
from simulators.replay import registry_for_seattle
from store import registry
from store.db import connect, open_pool
from tests.conftest import service_env, wait_until
from tests.services import start_service

pytestmark = pytest.mark.integration
CSV = Path("/work/shared/data/seattle-road-weather-2020-02.csv")
if not CSV.exists():
    CSV = Path(__file__).resolve().parents[3] / "shared/data/seattle-road-weather-2020-02.csv"


@pytest.fixture
def roomy_broker(mqtt_broker: Any) -> Iterator[Any]:
    """A private Mosquitto that queues everything: the replay publishes its 42,000 messages faster than
    ingest commits them, and a broker's default queue limit (Mosquitto's max_queued_messages 1000) would
    drop the excess. That is the broker's configuration (deploy/mosquitto raises it), not ingest's doing."""
    if shutil.which("mosquitto") is None:
        yield mqtt_broker
        return
    b = start_mosquitto(Path(tempfile.mkdtemp(prefix="pw-seattle-")), persistence=False)
    try:
        yield b
    finally:
        b.stop()


def _expected_rows() -> int:
    with CSV.open(newline="") as f:
        return 2 * len({(r["StationName"], r["DateTime"]) for r in csv.DictReader(f)})


def test_seattle_replay_stores_each_station_time_and_metric_once_in_celsius(
    database_url, db, roomy_broker, api_url, token_for, uid, request
):
    mqtt_broker = roomy_broker
    if not CSV.exists():
        pytest.skip(f"shared data not found at {CSV}")
    text = json.dumps(registry_for_seattle(CSV))
    with connect(database_url) as conn:
        registry.load(conn, parse_registry(text), text=text)
    ing = start_service(
        ["ingest"], service_env(database_url, mqtt_broker, PLACEWATCH_MQTT_CLIENT_ID=f"pw-test-seattle-{uid}")
    )
    request.addfinalizer(lambda: ing.stop(9))
    ing.wait_for("subscribed", timeout=30)
    sim = start_service(
        ["simulate", "replay-seattle", "--csv", str(CSV), "--speed", "0"], service_env(database_url, mqtt_broker)
    )
    assert sim.popen.wait(180) == 0, sim.log()
    stations = sorted(json.loads(text)["features"][i]["properties"]["id"] for i in range(8))

    def stored() -> int:
        return int(
            db.execute(
                "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = ANY(%s)",
                (stations,),
            ).fetchone()[0]
        )

    expected = _expected_rows()
    wait_until(lambda: stored() >= expected, timeout=120)
    assert stored() == expected  # the 10,655 duplicate rows were dropped by the store, not the replay

    # 02/24/2020 02:18:00 AM Pacific is 10:18 UTC; 44.51 F is 6.95 C.
    ts = datetime(2020, 2, 24, 2, 18, tzinfo=ZoneInfo("America/Los_Angeles"))
    r = httpx.get(
        f"{api_url}/api/v1/devices/{quote('AuroraBridge', safe='')}/readings",
        params={"metric": "road_surface_temperature", "start": ts.isoformat(), "end": "2020-02-24T10:19:00Z"},
        headers=token_for("highways"),
    ).json()
    assert r["unit"] == "degC"
    assert r["points"] == [{"ts": "2020-02-24T10:18:00Z", "value": pytest.approx(6.95, abs=0.01)}]

    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(mqtt_broker.url, protocol=mqtt_broker.protocol, prefix="placewatch/v1")
    try:
        DeviceHealthEvaluator(settings).sweep(AlertContext(settings=settings, pool=pool, publisher=pub))
    finally:
        pub.close()
        pool.close()
    miswired = {
        row[0]
        for row in db.execute(
            "SELECT device_id FROM device_problems"
            " WHERE code = 'miswired' AND closed_at IS NULL AND device_id = ANY(%s)",
            (stations,),
        )
    }
    assert miswired == {"35thAveSW_SWMyrtleSt", "RooseveltWay_NE80thSt"}
