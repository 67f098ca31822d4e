"""Ingest over MQTT 3.1.1 (the embedded amqtt broker) and several ingest processes on a shared subscription."""

from __future__ import annotations

import json
import re

import pytest

from placewatch.embedded import start_amqtt
from tests.conftest import service_env, wait_until
from tests.helpers import load, station
from tests.services import Publisher, start_service

pytestmark = pytest.mark.integration


def _stored(db, dev: str) -> int:
    return int(
        db.execute(
            "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
        ).fetchone()[0]
    )


def test_ingest_works_over_mqtt_311_with_the_embedded_broker(database_url, db, uid):
    broker = start_amqtt()
    proc = None
    pub = None
    try:
        dev = f"v311-{uid}"
        load(database_url, station(dev))
        proc = start_service(["ingest"], service_env(database_url, broker, PLACEWATCH_MQTT_CLIENT_ID=f"i311-{uid}"))
        proc.wait_for("subscribed", timeout=30)
        pub = Publisher(broker.url, "3.1.1")
        pub.publish_many(
            [
                (
                    f"placewatch/v1/devices/{dev}/readings",
                    json.dumps({"ts": f"2026-02-01T05:{i:02d}:00Z", "values": {"road_surface_temperature": -i / 10}}),
                )
                for i in range(20)
            ]
        )
        wait_until(lambda: _stored(db, dev) == 20, timeout=30)
    finally:
        if pub:
            pub.close()
        if proc:
            proc.stop()
        broker.stop()


def test_two_ingest_processes_share_the_load_and_store_each_reading_once(database_url, db, mqtt_broker, uid, publisher):
    if mqtt_broker.protocol != "5":
        pytest.skip("shared subscriptions need an MQTT 5 broker")
    dev = f"shared-{uid}"
    load(database_url, station(dev))
    prefix = f"pwshare-{uid}/v1"
    procs = []
    for n in range(2):
        env = service_env(
            database_url,
            mqtt_broker,
            PLACEWATCH_MQTT_CLIENT_ID=f"share-{n}-{uid}",
            PLACEWATCH_MQTT_SHARED_GROUP=f"g{uid}",
            PLACEWATCH_TOPIC_PREFIX=prefix,
        )
        p = start_service(["ingest"], env)
        p.wait_for("subscribed", timeout=30)
        procs.append(p)
    try:
        n_msgs = 2000
        publisher.publish_many(
            [
                (
                    f"{prefix}/devices/{dev}/readings",
                    json.dumps({"ts": 1767225600000 + i * 60_000, "values": {"air_temperature": (i % 100) / 10}}),
                )
                for i in range(n_msgs)
            ]
        )
        wait_until(lambda: _stored(db, dev) == n_msgs, timeout=60)
        got = []
        for p in procs:
            p.stop()
            line = [ln for ln in p.lines if "ingest stats" in ln][-1]
            got.append(int(re.search(r"committed=(\d+)", line).group(1)))
        assert sum(got) == n_msgs and all(g > 0 for g in got), got
    finally:
        for p in procs:
            p.stop(9)
