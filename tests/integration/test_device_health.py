"""Device health through the real path: readings over MQTT, the health sweep, problems in the API and on MQTT."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from alerts.context import AlertContext
from alerts.health import DeviceHealthEvaluator
from alerts.publisher import AlertPublisher
from placewatch.settings import Settings
from store.db import open_pool
from tests.conftest import wait_until
from tests.helpers import load, station
from tests.services import subscribe_collect

pytestmark = pytest.mark.integration


def _series(dev: str, start: datetime, n: int, road, air) -> str:
    return json.dumps(
        [
            {
                "ts": (start + timedelta(minutes=i)).isoformat(),
                "values": {"road_surface_temperature": road(i), "air_temperature": air(i)},
            }
            for i in range(n)
        ]
    )


def test_health_sweep_flags_miswired_stuck_and_low_battery_but_not_healthy(
    database_url, db, ingest, publisher, api_url, token_for, mqtt_broker, uid
):
    ok, wired, stuck = f"ok-{uid}", f"wired-{uid}", f"stuck-{uid}"
    load(database_url, station(ok), station(wired), station(stuck))
    ingest()
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1500)
    topic = "placewatch/v1/devices/{}/readings"
    publisher.publish(
        topic.format(ok), _series(ok, start, 1500, lambda i: 2 + (i % 37) / 10, lambda i: 3 + (i % 23) / 10)
    )
    publisher.publish(
        topic.format(wired), _series(wired, start, 1500, lambda i: 5 + (i % 37) / 10, lambda i: 5 + (i % 37) / 10)
    )
    publisher.publish(topic.format(stuck), _series(stuck, start, 1500, lambda i: 1.5, lambda i: 3 + (i % 23) / 10))
    publisher.publish(topic.format(stuck), json.dumps({"values": {"battery": 9}}))

    def stored():
        return (
            db.execute(
                "SELECT count(*) FROM series s JOIN readings r ON r.series_id = s.id WHERE s.device_id = ANY(%s)",
                ([ok, wired, stuck],),
            ).fetchone()[0]
            == 3 * 1500 * 2 + 1
        )

    wait_until(stored, timeout=30)
    client, got = subscribe_collect(mqtt_broker.url, "placewatch/v1/alerts/device/+", mqtt_broker.protocol)
    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(mqtt_broker.url, protocol=mqtt_broker.protocol, prefix="placewatch/v1")
    try:
        DeviceHealthEvaluator(settings).sweep(AlertContext(settings=settings, pool=pool, publisher=pub))
    finally:
        pub.close()
        pool.close()
    headers = token_for("highways")
    devices = {d["id"]: d for d in httpx.get(f"{api_url}/api/v1/devices", headers=headers).json()}
    assert [p["code"] for p in devices[ok]["problems"]] == []
    assert [p["code"] for p in devices[wired]["problems"]] == ["miswired"]
    assert sorted(p["code"] for p in devices[stuck]["problems"]) == ["battery_low", "stuck"]
    assert all(p["team"] == "highways" for p in devices[stuck]["problems"])
    one = httpx.get(f"{api_url}/api/v1/devices/{quote(wired, safe='')}", headers=headers).json()
    assert "mis-wired" in one["problems"][0]["message"]
    wait_until(
        lambda: (
            {m.topic for m in got} >= {f"placewatch/v1/alerts/device/{wired}", f"placewatch/v1/alerts/device/{stuck}"}
        )
    )
    assert f"placewatch/v1/alerts/device/{ok}" not in {m.topic for m in got}
    client.disconnect()
    for dev in (wired, stuck):  # clear the retained alerts this test left
        publisher.publish(f"placewatch/v1/alerts/device/{dev}", b"", retain=True)
    time.sleep(0.1)
