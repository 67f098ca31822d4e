"""placewatch.mqttclient.Client against a real broker: bulk acknowledgements stick, the rest is redelivered."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from placewatch.mqttclient import connect_args, make_client
from tests.services import Publisher

pytestmark = pytest.mark.integration


def _receive(url: str, cid: str, topic: str, want: int, ack: slice | None) -> list[tuple[int, bytes, bool]]:
    """Connect with a persistent session, take `want` messages, acknowledge those in `ack`, disconnect."""
    got: list[tuple[int, bytes, bool]] = []
    mids: list[int] = []
    done, subscribed = threading.Event(), threading.Event()
    c = make_client(url, client_id=cid, persistent=True, manual_ack=True)
    c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()

    def on_message(cl, u, m):  # type: ignore[no-untyped-def]
        got.append((int(m.payload), m.payload, m.dup))
        mids.append(m.mid)
        if len(got) >= want:
            done.set()

    c.on_message = on_message
    c.connect(**connect_args(c, receive_maximum=1000))  # type: ignore[arg-type]
    c.loop_start()
    assert subscribed.wait(10)
    if want:
        assert done.wait(20), f"received {len(got)} of {want}"
    if ack is not None:
        c.ack_many(mids[ack])
    time.sleep(0.5)  # let the PUBACKs go out
    c.disconnect()
    c.loop_stop()
    return got


def test_bulk_acknowledged_messages_are_not_redelivered_and_the_rest_are(mqtt_broker):
    topic = f"pw-test/{uuid.uuid4().hex[:8]}/acks"
    cid = f"pw-test-acks-{uuid.uuid4().hex[:8]}"
    _receive(mqtt_broker.url, cid, topic, 0, None)  # the session and its subscription
    pub = Publisher(mqtt_broker.url)
    pub.publish_many([(topic, str(i).encode()) for i in range(600)])
    first = _receive(mqtt_broker.url, cid, topic, 600, slice(0, 400))
    assert [n for n, _, _ in first] == list(range(600))
    again = _receive(mqtt_broker.url, cid, topic, 200, slice(0, 200))
    assert sorted(n for n, _, _ in again) == list(range(400, 600))
    assert all(dup for _, _, dup in again)
    pub.publish(topic, b"600", qos=1)
    pub.close()
    last = _receive(mqtt_broker.url, cid, topic, 1, slice(0, 1))
    assert [n for n, _, _ in last] == [600]


def test_the_read_pause_never_holds_back_a_packet_waiting_to_be_written(mqtt_broker):
    # With a read pause, a SUBSCRIBE queued by on_connect (while the CONNACK is read) must go out at once: ingest's
    # tests publish as soon as the broker has acknowledged it, and a late SUBSCRIBE lost their messages.
    c = make_client(mqtt_broker.url, client_id=f"pw-test-pause-{uuid.uuid4().hex[:8]}")
    c.read_pause_s = 3.0
    times: dict[str, float] = {}
    subscribed = threading.Event()

    def on_connect(cl, u, f, rc, p=None):  # type: ignore[no-untyped-def]
        times["connack"] = time.monotonic()
        cl.subscribe(f"pw-test/{uuid.uuid4().hex[:8]}", qos=1)

    def on_subscribe(*a):  # type: ignore[no-untyped-def]
        times["suback"] = time.monotonic()
        subscribed.set()

    c.on_connect, c.on_subscribe = on_connect, on_subscribe
    c.connect(**connect_args(c))  # type: ignore[arg-type]
    c.loop_start()
    try:
        assert subscribed.wait(10)
        assert times["suback"] - times["connack"] < 1.5, "the SUBSCRIBE waited out the read pause"
    finally:
        c.disconnect()
        c.loop_stop()
