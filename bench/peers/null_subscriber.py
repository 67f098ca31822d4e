"""The floor: a subscriber that does nothing with what it receives (QoS 1, acknowledged on arrival). Prints how
many messages it has had, four times a second.

    python -m bench.peers.null_subscriber MQTT_URL TOPIC_FILTER [READ_PAUSE_S] [paho]

On Placewatch's own MQTT client (placewatch.mqttclient) with its read pause (ingest's is
ingest.service.READ_PAUSE_S; 0: none); or, with `paho`, on paho-mqtt's own Client through its public API only
(issue 15: what the fork would cost to drop), the socket's receive buffer set as the client's is through
on_socket_open.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from placewatch.mqttclient import BrokerAddress, connect_args, make_client


def _paho_client(url: str, client_id: str) -> mqtt.Client:
    from placewatch import mqttclient

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    mqttclient._CONFIG[c] = (BrokerAddress.parse(url), True, mqtt.MQTTv5)  # connect_args() needs only the client

    def on_socket_open(client: mqtt.Client, userdata: object, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    c.on_socket_open = on_socket_open
    return c


def main(argv: list[str]) -> None:
    url, topic, *rest = argv
    count = 0
    subscribed = threading.Event()

    def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
        nonlocal count
        count += 1

    cid = f"bench-null-{uuid.uuid4().hex[:8]}"
    if "paho" in rest:
        c = _paho_client(url, cid)
    else:
        c = make_client(url, client_id=cid, persistent=True)
        c.read_pause_s = float(rest[0]) if rest else 0.0
    c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = on_message
    if "paho" not in rest:

        def on_messages(client, messages):  # type: ignore[no-untyped-def]
            nonlocal count
            count += len(messages)

        c.on_messages = on_messages  # a read pass at once, as ingest takes them
    c.connect(**connect_args(c, receive_maximum=20000))  # type: ignore[arg-type]
    c.loop_start()
    subscribed.wait(10)
    print("subscribed", flush=True)
    while True:
        time.sleep(0.25)
        print(count, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
