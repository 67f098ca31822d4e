"""placewatch.mqttclient.Client parses what paho would, however the bytes arrive.

The client reads 64 KiB at a time and parses whole packets from its buffer itself; packets split
across reads, several packets in one read, long remaining lengths, MQTT 5 properties and QoS 0/1
must all come out as paho's own client gives them. The socket is one end of a socketpair, the test
writes the broker's bytes into the other end in random pieces.
"""

from __future__ import annotations

import random
import socket
import struct

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from placewatch.mqttclient import Client


def _remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, qos: int, mid: int, props: Properties | None, v5: bool) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += props.pack() if props is not None else b"\x00"
    body += payload
    return bytes([0x30 | (qos << 1)]) + _remaining(len(body)) + body


def _client(v5: bool, manual_ack: bool = True) -> tuple[Client, socket.socket, list[mqtt.MQTTMessage]]:
    c = Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, manual_ack=manual_ack)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    c._sock = ours  # type: ignore[assignment]
    got: list[mqtt.MQTTMessage] = []
    c.on_message = lambda cl, u, m: got.append(m)
    return c, broker, got


def _send_in_pieces(client: Client, broker: socket.socket, wire: bytes, cuts: list[int]) -> int:
    """Write the broker's bytes in pieces of the given sizes, the client reading after each; how many reads."""
    pos, k, reads = 0, 0, 0
    broker.setblocking(True)
    while pos < len(wire):
        piece = wire[pos : pos + cuts[k % len(cuts)]]
        broker.sendall(piece)
        pos += len(piece)
        k += 1
        client.loop_read()
        reads += 1
    for _ in range(50):  # anything still buffered
        client.loop_read()
        reads += 1
    return reads


messages = st.lists(
    st.tuples(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"), min_size=1, max_size=40),
        st.one_of(
            st.binary(max_size=300),
            # Larger than one 64 KiB read: built from a seed, as hypothesis will not draw that many bytes.
            st.builds(lambda n, seed: random.Random(seed).randbytes(n), st.integers(66_000, 90_000), st.integers()),
        ),
        st.sampled_from([0, 1]),
        st.booleans(),  # with properties
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(messages, st.lists(st.integers(1, 70_000), min_size=1, max_size=30), st.booleans())
def test_packets_in_any_pieces_come_out_whole_and_in_order(msgs, cuts, v5):
    client, broker, got = _client(v5)
    wire = b""
    for i, (topic, payload, qos, with_props) in enumerate(msgs):
        props = None
        if with_props and v5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("k", f"v{i}")
            props.ContentType = "application/json"
        wire += publish_packet(topic, payload, qos, i + 1, props, v5)
    _send_in_pieces(client, broker, wire, cuts)
    assert [(m.topic, m.payload, m.qos, m.mid if m.qos else 0) for m in got] == [
        (t, p, q, i + 1 if q else 0) for i, (t, p, q, _) in enumerate(msgs)
    ]
    for i, (m, (_, _, _, with_props)) in enumerate(zip(got, msgs, strict=True)):
        if v5 and with_props:
            assert m.properties.UserProperty == [("k", f"v{i}")]
            assert m.properties.ContentType == "application/json"
        else:
            assert m.properties is None
    client._sock_close()
    broker.close()


def test_ack_many_writes_one_puback_per_message():
    client, broker, _ = _client(True)
    client.ack_many([1, 2, 65535])
    client.loop_write()
    broker.settimeout(2)
    data = broker.recv(100)
    assert data == bytes([0x40, 2, 0, 1, 0x40, 2, 0, 2, 0x40, 2, 0xFF, 0xFF])
    client._sock_close()
    broker.close()


def test_without_manual_ack_qos1_is_acknowledged_at_once():
    client, broker, got = _client(True, manual_ack=False)
    broker.sendall(publish_packet("a/b", b"x", 1, 7, None, True))
    client.loop_read()
    client.loop_write()
    broker.settimeout(2)
    assert broker.recv(100) == bytes([0x40, 2, 0, 7])
    assert len(got) == 1
    client._sock_close()
    broker.close()


def test_a_closed_connection_leaves_nothing_buffered_for_the_next():
    client, broker, got = _client(True)
    half = publish_packet("a/b", b"x" * 100, 1, 1, None, True)
    broker.sendall(publish_packet("a/b", b"first", 1, 2, None, True) + half[:50])
    client.loop_read()
    assert [m.payload for m in got] == [b"first"]
    client._sock_close()
    assert client._rbuf == b"" and client._rpos == 0
    broker.close()


def test_read_pause_after_taking_all_there_was():
    # A steady stream: having read everything the socket held, the client waits read_pause_s, so that the next
    # messages gather and one wake-up reads many; more than one read's worth is all read first, at once.
    import threading
    import time

    client, broker, got = _client(True)
    client.read_pause_s = 0.2
    broker.sendall(publish_packet("a/b", b"x", 1, 1, None, True))
    started = time.monotonic()
    client.loop_read()
    assert time.monotonic() - started >= 0.2
    assert len(got) == 1
    big = b"".join(publish_packet("a/b", b"y" * 1000, 1, i, None, True) for i in range(2, 200))
    broker.setblocking(True)
    sender = threading.Thread(target=broker.sendall, args=(big,))
    sender.start()
    time.sleep(0.2)
    client.loop_read()  # reads until the socket is empty
    sender.join()
    client.loop_read()
    assert len(got) == 199
    client.read_pause_s = 0.0
    broker.sendall(publish_packet("a/b", b"z", 1, 300, None, True))
    started = time.monotonic()
    client.loop_read()
    assert time.monotonic() - started < 0.1 and len(got) == 200
    client._sock_close()
    broker.close()


def test_acknowledging_on_arrival_sends_one_write_per_read_in_order_then_pauses():
    # Without manual_ack, the PUBACKs of what one read brought go out at its end as one write, in the order the
    # messages came (MQTT requires it), so the read pause is not skipped for a PUBACK waiting to be written.
    import threading
    import time

    client, broker, got = _client(True, manual_ack=False)
    client._thread = threading.Thread()  # as under loop_start(): paho then only queues what is to be written
    client.read_pause_s = 0.2
    broker.sendall(b"".join(publish_packet("a/b", b"x", 1, mid, None, True) for mid in (9, 3, 700)))
    started = time.monotonic()
    client.loop_read()  # no loop_write(): loop_read wrote them
    assert time.monotonic() - started >= 0.2, "the read pause was skipped"
    broker.settimeout(2)
    assert broker.recv(100) == bytes([0x40, 2, 0, 9, 0x40, 2, 0, 3, 0x40, 2, 2, 188])
    assert [m.mid for m in got] == [9, 3, 700]
    client._sock_close()
    broker.close()


def test_pubacks_read_before_a_qos2_message_go_out_before_its_pubrec():
    import threading

    client, broker, _ = _client(True, manual_ack=False)
    client._thread = threading.Thread()  # as under loop_start()
    broker.sendall(publish_packet("a/b", b"1", 1, 5, None, True) + publish_packet("a/b", b"2", 2, 6, None, True))
    client.loop_read()
    client.loop_write()
    broker.settimeout(2)
    data = b""
    while len(data) < 8:
        data += broker.recv(100)
    assert data == bytes([0x40, 2, 0, 5, 0x50, 2, 0, 6])  # PUBACK 5, then PUBREC 6
    client._sock_close()
    broker.close()


def test_a_received_message_is_pahos_message_with_its_info_made_when_asked():
    client, broker, got = _client(True)
    broker.sendall(publish_packet("a/é", b"x", 1, 42, None, True))
    client.loop_read()
    (m,) = got
    assert isinstance(m, mqtt.MQTTMessage)
    assert (m.topic, m.payload, m.qos, m.mid, m.dup, m.retain) == ("a/é", b"x", 1, 42, False, False)
    assert m.info.mid == 42 and m.info is m.info
    client._sock_close()
    broker.close()


def test_a_publish_too_short_for_what_it_declares_is_a_protocol_error_not_a_crash():
    for body in (b"\x00", b"\x00\x09a/b", b"\x00\x03a/b\x00", b"\x00\x03a/b\x00\x01"):
        # topic length byte only; topic longer than the packet; QoS 1 without a whole message id; no MQTT 5
        # property length after the id
        client, broker, got = _client(True)
        broker.sendall(bytes([0x32, len(body)]) + body)
        assert client.loop_read() == mqtt.MQTT_ERR_PROTOCOL, body
        assert got == []
        broker.close()


@settings(max_examples=60, deadline=None)
@given(messages, st.lists(st.integers(1, 70_000), min_size=1, max_size=30), st.booleans())
def test_with_on_messages_a_read_pass_comes_out_at_once_whole_and_in_order(msgs, cuts, v5):
    # ingest's consumer: the QoS 0 and 1 messages of one read pass, as (topic bytes, mid, qos, payload), in one call
    # at the pass's end; none goes to on_message.
    client, broker, got = _client(v5)
    passes: list[list[tuple[bytes, int, int, bytes]]] = []
    client.on_messages = lambda cl, batch: passes.append(batch)
    wire = b"".join(
        publish_packet(topic, payload, qos, i + 1, None, v5) for i, (topic, payload, qos, _) in enumerate(msgs)
    )
    reads = _send_in_pieces(client, broker, wire, cuts)
    assert got == []
    assert all(passes) and len(passes) <= reads
    assert [m for p in passes for m in p] == [
        (t.encode(), i + 1 if q else 0, q, p) for i, (t, p, q, _) in enumerate(msgs)
    ]
    client._sock_close()
    broker.close()


def test_with_on_messages_what_came_before_a_qos2_message_is_handed_over_before_it():
    # A QoS 2 message goes through paho's own exchange (PUBREC at once): the QoS 1 messages read before it are handed
    # to on_messages first, and their PUBACKs written before its PUBREC.
    import threading

    client, broker, _ = _client(True, manual_ack=False)
    client._thread = threading.Thread()  # as under loop_start()
    order: list[str] = []
    client.on_messages = lambda cl, batch: order.extend(p.decode() for _, _, _, p in batch)
    client.on_message = lambda cl, u, m: order.append(m.payload.decode())
    wire = b"".join(
        publish_packet("a/b", body, qos, mid, None, True)
        for body, qos, mid in ((b"1", 1, 5), (b"2", 0, 0), (b"3", 2, 6), (b"4", 1, 7))
    )
    broker.sendall(wire + bytes([0x62, 2, 0, 6]))  # and the broker's PUBREL of the QoS 2 message
    for _ in range(5):
        client.loop_read()
    client.loop_write()
    assert order[:2] == ["1", "2"] and set(order) == {"1", "2", "3", "4"}
    broker.settimeout(2)
    data = b""
    while len(data) < 12:
        data += broker.recv(100)
    assert data.startswith(bytes([0x40, 2, 0, 5, 0x50, 2, 0, 6])), data.hex()
    client._sock_close()
    broker.close()
