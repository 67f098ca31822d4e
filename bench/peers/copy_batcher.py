"""A simple Python COPY batcher, as someone would write one: paho's own client (QoS 1, acknowledged on
arrival), JSON with orjson, times with datetime.fromisoformat, and every 200 ms one COPY of what arrived
into a keyed table (device, metric, time, value). Prints the messages committed so far after each commit.

    python -m bench.peers.copy_batcher MQTT_URL TOPIC_FILTER DSN
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from datetime import datetime

import orjson
import paho.mqtt.client as mqtt
import psycopg

from placewatch.mqttclient import BrokerAddress

TABLE = """CREATE TABLE IF NOT EXISTS batcher_readings (device_id text, metric text, ts timestamptz,
    value double precision, PRIMARY KEY (device_id, metric, ts))"""


def main(argv: list[str]) -> None:
    url, topic, dsn = argv
    conn = psycopg.connect(dsn, application_name="bench-batcher")
    conn.execute(TABLE)
    conn.commit()
    lock = threading.Lock()
    rows: list[tuple[str, str, datetime, float]] = []
    messages = 0
    subscribed = threading.Event()

    def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
        nonlocal messages
        device = msg.topic.split("/")[-2]
        doc = orjson.loads(msg.payload)
        ts = datetime.fromisoformat(doc["ts"])
        got = [(device, k, ts, float(v)) for k, v in doc["values"].items()]
        with lock:
            rows.extend(got)
            messages += 1

    address = BrokerAddress.parse(url)
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-batcher-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = on_message
    c.connect(address.host, address.port)
    c.loop_start()
    subscribed.wait(10)
    print("subscribed", flush=True)
    committed = 0
    while True:
        time.sleep(0.2)
        with lock:
            batch, n = rows[:], messages
            rows.clear()
        if batch:
            with conn.cursor().copy("COPY batcher_readings (device_id, metric, ts, value) FROM STDIN") as cp:
                for r in batch:
                    cp.write_row(r)
            conn.commit()
            committed = n
            print(committed, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
