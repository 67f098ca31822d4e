"""The floor: a subscriber on Placewatch's own MQTT client (placewatch.mqttclient) that does nothing with
what it receives (QoS 1, acknowledged on arrival). Prints how many messages it has had, four times a second.

    python -m bench.peers.null_subscriber MQTT_URL TOPIC_FILTER
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

from placewatch.mqttclient import connect_args, make_client


def main(argv: list[str]) -> None:
    url, topic = argv
    count = 0
    subscribed = threading.Event()

    def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
        nonlocal count
        count += 1

    c = make_client(url, client_id=f"bench-null-{uuid.uuid4().hex[:8]}", persistent=True)
    c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = on_message
    c.connect(**connect_args(c, receive_maximum=20000))
    c.loop_start()
    subscribed.wait(10)
    print("subscribed", flush=True)
    while True:
        time.sleep(0.25)
        print(count, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
