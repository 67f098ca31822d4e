"""A device alert whose publish fails (the broker is away) is published on the next sweep, not lost until the
device's problems change again: through a real Mosquitto that is stopped and started again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.context import AlertContext
from alerts.health import DeviceHealthEvaluator
from alerts.publisher import AlertPublisher
from placewatch.settings import Settings
from store import health
from store.db import open_pool
from tests.conftest import wait_until
from tests.faults.harness import PrivateMosquitto
from tests.helpers import load, station
from tests.services import subscribe_collect

pytestmark = pytest.mark.integration


def test_a_device_alert_not_published_while_the_broker_is_away_is_published_on_the_next_sweep(
    database_url: str, db: Any, uid: str, tmp_path: Path
) -> None:
    dev = f"unheard-{uid}"
    load(database_url, station(dev))  # registered, never heard from: stale
    broker = PrivateMosquitto(tmp_path)
    broker.start()
    settings = Settings(database_url=database_url, mqtt_url=broker.url, mqtt_protocol="5")
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(broker.url, protocol="5", prefix="placewatch/v1")
    ctx = AlertContext(settings=settings, pool=pool, publisher=pub)
    evaluator = DeviceHealthEvaluator(settings)
    subscriber = None
    try:
        wait_until(pub.client.is_connected)
        broker.stop()
        wait_until(lambda: not pub.client.is_connected())

        evaluator.sweep(ctx)  # the problem is opened; its alert cannot be published
        opened = db.execute(
            "SELECT id, code FROM device_problems WHERE device_id = %s AND closed_at IS NULL", (dev,)
        ).fetchall()
        assert [code for _, code in opened] == ["stale"]
        assert health.pending_alerts(db)[dev] == [opened[0][0]], "the unpublished alert must stay pending"

        broker.start()
        wait_until(pub.client.is_connected, timeout=45)  # paho reconnects on its own (back-off up to 30 s)
        evaluator.sweep(ctx)  # nothing about the device changed: only the retry can publish its alert

        subscriber, got = subscribe_collect(broker.url, f"placewatch/v1/alerts/device/{dev}")
        retained = wait_until(lambda: [m for m in got if m.payload], timeout=10)
        assert retained[0].retain
        body = json.loads(retained[0].payload)
        assert body["device_id"] == dev
        assert [p["code"] for p in body["problems"]] == ["stale"]
        assert "never sent a message" in body["problems"][0]["message"]
        assert dev not in health.pending_alerts(db), "a published alert must not be published again"
    finally:
        if subscriber is not None:
            subscriber.disconnect()
            subscriber.loop_stop()
        pub.close()
        pool.close()
        broker.stop()
