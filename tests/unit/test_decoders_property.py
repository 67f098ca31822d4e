"""Whatever bytes arrive on a decoder's topic, decoding ends in a Decoded or a DecodeError, nothing else.

A crash in a decoder would reach paho's loop (service.py catches it, but files it as an internal
error, not as the reason a person can act on). Payloads: arbitrary bytes, random JSON trees, JSON
shaped like each format with random parts, deep nesting, huge numbers, NaN and Infinity literals.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.metrics import METRICS
from core.model import Decoded, DecodeError
from ingest.decoders.codecs import CODECS, object_readings
from ingest.decoders.native import NativeDecoder
from ingest.decoders.registry import build_decoders, pick

RECEIVED = datetime(2026, 1, 15, 6, 30, tzinfo=UTC)
DECODERS = build_decoders(
    {
        "formats": "native,tts,chirpstack,zigbee2mqtt,tasmota,senml",
        "tts": {"codecs": "em=milesight-em300-th,lht=dragino-lht65"},
        "chirpstack": {"app_codecs": "app-em=milesight-em300-th,app-lht=dragino-lht65"},
    }
)
TOPICS = [
    "placewatch/v1/devices/rs-1/readings",
    "placewatch/v1/devices/rs-1/status",
    "placewatch/v1/devices/readings",
    "v3/app1@ttn/devices/em/up",
    "v3/app1/devices/lht/up",
    "v3/app1/devices/dev1/up",
    "application/app-em/device/0101010101010101/event/up",
    "application/app-lht/device/a84041000181c61d/event/up",
    "application/app-lht/device/a84041000181c61d/event/status",
    "zigbee2mqtt/flat 12/kitchen",
    "zigbee2mqtt/flat 12/kitchen/availability",
    "zigbee2mqtt/availability",
    "zigbee2mqtt/bridge/state",
    "zigbee2mqtt/lamp/set",
    "tele/tasmota_1/SENSOR",
    "tele/tasmota_1/LWT",
    "tele/tasmota_1/STATE",
    "tele/SENSOR",
    "senml/gw-1",
    "senml/a/b",
]

# Keys and strings each format gives meaning to, so random trees reach past the first checks.
KEYS = [
    "end_device_ids", "device_id", "dev_eui", "application_ids", "application_id", "uplink_message",
    "decoded_payload", "frm_payload", "f_port", "received_at", "deviceInfo", "devEui", "applicationId",
    "object", "data", "fPort", "time", "batteryLevel", "externalPowerSource", "temperature", "humidity",
    "battery", "voltage", "pressure", "vdd", "BatV", "TempC_SHT", "Hum_SHT", "temperature_1",
    "temperatureSensor", "history", "timestamp", "last_seen", "state", "Time", "TempUnit", "PressureUnit",
    "BME280", "ESP32", "Temperature", "Humidity", "DewPoint", "Pressure", "bn", "bt", "bu", "bv", "n", "u",
    "v", "vs", "vb", "vd", "t", "s", "lim_", "ts", "values", "units", "surface_state", "1",
]  # fmt: skip
STRINGS = [
    "2020-02-12T15:15:46.014773143Z", "2022-07-18T09:34:15.775023242+00:00", "2019-11-03T19:34:28",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1970-01-01T00:05:12", "2019-03-31T01:30:00",
    "y/YLDQN2AQrdf/8=", "AXVcA2c0AQRoZQ==", "IM6edEZjEAFdAA==", "qg==", "!!", "online", "Offline",
    "Cel", "%RH", "%EL", "/", "V", "F", "mmHg", "urn:dev:ow:10e2073a01080063:", "2001:db8::2/", "1e400",
    "3.6", "NaN", "wet", "",
]  # fmt: skip

leaves = (
    st.none()
    | st.booleans()
    | st.floats(min_value=-30, max_value=110)  # plausible readings, so the happy paths run too
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 2**28, 2**28 - 1, 1e11])
    | st.sampled_from(STRINGS)
    | st.text(max_size=12)
    | st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode())
)
json_trees = st.recursive(
    leaves,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), kids, max_size=6)
    ),
    max_leaves=40,
)


def _nest(depth: int, open_: bytes, close: bytes) -> bytes:
    return open_ * depth + b"1" + close * depth


SPECIAL = [
    b"", b" ", b"null", b"true", b"0", b"[]", b"{}", b'""', b"online", b"Online", b'"online"', b'{"state":null}',
    b"NaN", b"[NaN]", b"Infinity", b"-Infinity", b'{"temperature": NaN}', b'{"v": Infinity}',
    b"1e400", b"-1e400", b'{"temperature": 1e400}', b'[{"n":"d:temp","v":1e999}]',
    b"123456789012345678901234567890", b'{"battery": 18446744073709551615}', b'{"battery": 18446744073709551616}',
    b"\xff\xfe\x00", b'{"a": "\xed\xa0\x80"}', b'"\\ud800"', b"[" * 100_000, b"{" * 50_000,
    _nest(31, b"[", b"]"), _nest(33, b"[", b"]"), _nest(2000, b'{"a":', b"}"),
]  # fmt: skip

payloads = (
    st.binary(max_size=300)
    | json_trees.map(orjson.dumps)
    | st.sampled_from(SPECIAL)
    | st.integers(min_value=1, max_value=3000).map(lambda n: _nest(n, b"[", b"]"))
)


MILESIGHT_RECORDS = st.sampled_from(
    [(0x01, 0x75, 1), (0x03, 0x67, 2), (0x04, 0x68, 1), (0x20, 0xCE, 8), (0xFF, 0x16, 8)]
)


@st.composite
def milesight_frames(draw: st.DrawFn) -> bytes:
    """Channel records as the EM300-TH sends them, with random values, sometimes cut short."""
    records = draw(st.lists(MILESIGHT_RECORDS, max_size=6))
    frame = b"".join(bytes([c, t]) + draw(st.binary(min_size=n, max_size=n)) for c, t, n in records)
    return frame[: draw(st.integers(min_value=0, max_value=len(frame)))] if draw(st.booleans()) else frame


frames = st.binary(max_size=40) | st.binary(min_size=11, max_size=11) | milesight_frames()


@st.composite
def shaped(draw: st.DrawFn) -> tuple[str, bytes]:
    """A message shaped like one of the formats, with random parts where it matters."""
    tree = draw(json_trees)
    data = base64.b64encode(draw(frames)).decode()
    port = draw(st.none() | st.integers(min_value=-1, max_value=300) | st.sampled_from([2, 85]))
    obj = draw(st.none() | st.dictionaries(st.sampled_from(KEYS), json_trees, max_size=6))
    when = draw(st.none() | st.sampled_from(STRINGS) | leaves)
    kind = draw(st.sampled_from(["tts", "chirpstack", "zigbee2mqtt", "tasmota", "senml", "native"]))
    doc: Any
    if kind == "tts":
        topic = draw(st.sampled_from(["v3/app1/devices/em/up", "v3/app1/devices/lht/up"]))
        uplink = {"frm_payload": data, "f_port": port, "decoded_payload": obj, "received_at": when}
        doc = {"end_device_ids": {"device_id": topic.split("/")[3]}, "uplink_message": uplink}
    elif kind == "chirpstack":
        topic = draw(
            st.sampled_from(
                [
                    "application/app-em/device/0101010101010101/event/up",
                    "application/app-lht/device/a84041000181c61d/event/up",
                    "application/app-lht/device/a84041000181c61d/event/status",
                ]
            )
        )
        doc = {"time": when, "data": data, "fPort": port, "object": obj, "batteryLevel": draw(leaves)}
    elif kind == "zigbee2mqtt":
        topic = "zigbee2mqtt/kitchen"
        doc = {**(obj or {}), "last_seen": when}
    elif kind == "tasmota":
        topic = "tele/th/SENSOR"
        doc = {"Time": when, draw(st.sampled_from(["BME280", "SHT3X", "ESP32"])): obj or tree, "TempUnit": draw(leaves)}
    elif kind == "senml":
        topic = "senml/gw-1"
        doc = draw(st.lists(st.dictionaries(st.sampled_from(KEYS), leaves, max_size=7), min_size=1, max_size=8))
    else:
        topic = "placewatch/v1/devices/rs-1/readings"
        doc = {"ts": when, "values": obj or tree, "units": draw(json_trees)}
    return topic, orjson.dumps(doc)


def check(decoded: object) -> None:
    """What anything downstream may rely on in a Decoded."""
    assert isinstance(decoded, Decoded)
    for r in decoded.readings:
        spec = METRICS[r.metric]
        assert r.ts.utcoffset() == timedelta(0)
        if spec.categories is None:
            assert r.value is not None and math.isfinite(r.value) and spec.low <= r.value <= spec.high
        else:
            assert r.label in spec.categories
    for s in decoded.status:
        assert s.status in ("online", "offline")
    assert all(isinstance(x, str) and x for x in decoded.rejections)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in decoded.meta.items())


def decode(topic: str, payload: bytes) -> None:
    decoder = pick(DECODERS, topic)
    assert decoder is not None, topic
    try:
        decoded = decoder.decode(topic, payload, RECEIVED)
    except DecodeError as exc:
        assert str(exc), "a DecodeError must say why"
        return
    check(decoded)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(topic=st.sampled_from(TOPICS), payload=payloads)
def test_any_payload_on_any_topic_decodes_or_says_why_not(topic: str, payload: bytes) -> None:
    decode(topic, payload)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(message=shaped())
def test_messages_shaped_like_each_format_decode_or_say_why_not(message: tuple[str, bytes]) -> None:
    decode(*message)


@settings(max_examples=1000, deadline=None)
@given(
    name=st.sampled_from(sorted(CODECS)),
    data=frames,
    port=st.none() | st.integers(min_value=0, max_value=255),
)
def test_codecs_read_any_bytes_or_say_why_not(name: str, data: bytes, port: int | None) -> None:
    try:
        fields, problems = CODECS[name](data, port)
    except DecodeError as exc:
        assert str(exc)
        return
    rejections: list[str] = []
    readings, _ = object_readings("dev", fields, RECEIVED, rejections)
    check(Decoded(device_id="dev", readings=tuple(readings), rejections=tuple(problems + rejections)))


@pytest.mark.parametrize("topic", TOPICS)
def test_every_sample_topic_has_its_decoder(topic: str) -> None:
    assert pick(DECODERS, topic) is not None


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_native_time_past_the_ends_of_the_calendar_is_rejected_with_a_reason(ts: str) -> None:
    payload = b'{"ts": "%s", "values": {"air_temperature": 1.0}}' % ts.encode()
    decoded = NativeDecoder().decode("placewatch/v1/devices/rs-1/readings", payload, RECEIVED)
    assert decoded.readings == ()
    assert decoded.rejections and "out of range" in decoded.rejections[0]
