"""Decoder fixes found by the hostile corpus (tests/hostile_corpus.py): each reason names what is wrong.

Before the fixes, a JSON value nested ~1000 deep as the native `ts`, `device_id` or a status `state`
was repr()'d into the reason, which raised RecursionError: ingest filed the message as "internal error
while decoding" instead of saying why. A non-string TTS device_id or ChirpStack devEui was reported as
missing ("the topic names no device") although the topic named one.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import orjson
import pytest

from core.model import DecodeError
from ingest.decoders.chirpstack import ChirpStackDecoder
from ingest.decoders.native import NativeDecoder, decode_status
from ingest.decoders.tts import TTSDecoder

RECEIVED = datetime(2026, 1, 15, 6, 30, tzinfo=UTC)
TOPIC = "placewatch/v1/devices/rs-1/readings"
DEEP = sys.getrecursionlimit() + 10  # deeper than repr() can go; orjson parses up to 1024


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.fixture(autouse=True)
def _deep_enough():
    if DEEP > 1020:
        pytest.skip("recursion limit raised above what orjson can parse")


def test_deeply_nested_time_is_refused_as_not_a_time_instead_of_crashing():
    payload = ('{"ts": ' + nested(DEEP) + ', "values": {"air_temperature": 1}}').encode()
    decoded = NativeDecoder().decode(TOPIC, payload, RECEIVED)
    assert decoded.readings == ()
    assert decoded.rejections == ("time must be an RFC 3339 string or epoch milliseconds, not an array",)


def test_time_given_as_an_object_names_its_json_type():
    payload = b'{"ts": {"when": "now"}, "values": {"air_temperature": 1}}'
    decoded = NativeDecoder().decode(TOPIC, payload, RECEIVED)
    assert decoded.rejections == ("time must be an RFC 3339 string or epoch milliseconds, not an object",)


def test_deeply_nested_device_id_is_refused_as_not_a_string():
    payload = ('{"device_id": ' + nested(DEEP) + ', "values": {"air_temperature": 1}}').encode()
    with pytest.raises(DecodeError, match=r"^payload's device_id must be a string, not an array$"):
        NativeDecoder().decode(TOPIC, payload, RECEIVED)


def test_device_id_naming_another_device_is_still_refused():
    payload = b'{"device_id": "rs-2", "values": {"air_temperature": 1}}'
    with pytest.raises(DecodeError, match="payload names device 'rs-2' but the topic names 'rs-1'"):
        NativeDecoder().decode(TOPIC, payload, RECEIVED)


@pytest.mark.parametrize(
    ("payload", "got"),
    [
        (('{"state": ' + nested(DEEP, '"online"') + "}").encode(), "an array"),
        (b'{"state": {"value": "online"}}', "an object"),
        (b'{"state": 1}', "a number"),
        (b'{"state": null}', "null"),
        (b"maybe", "'maybe'"),
    ],
)
def test_status_that_is_not_online_or_offline_says_what_it_got(payload, got):
    with pytest.raises(DecodeError, match=rf"^status must be 'online' or 'offline', got {got}$"):
        decode_status("rs-1", payload, RECEIVED, fmt="native")


def test_readings_payload_of_the_wrong_type_is_named_in_json_terms():
    with pytest.raises(DecodeError, match=r"an array of objects, not null$"):
        NativeDecoder().decode(TOPIC, b"null", RECEIVED)
    decoded = NativeDecoder().decode(TOPIC, b'[1, "two"]', RECEIVED)
    assert decoded.rejections == (
        "entry 0: must be an object, not a number",
        "entry 1: must be an object, not a string",
    )


def test_tts_device_id_that_is_not_a_string_is_named_as_such():
    doc = {"end_device_ids": {"device_id": 42}, "uplink_message": {"decoded_payload": {"temperature": 20}}}
    with pytest.raises(DecodeError, match=r"^end_device_ids.device_id must be a string, not a number$"):
        TTSDecoder().decode("v3/app/devices/dev-1/up", orjson.dumps(doc), RECEIVED)


def test_chirpstack_deveui_that_is_not_a_string_is_named_as_such():
    doc = {"deviceInfo": {"devEui": 12345}, "object": {"temperature": 20}}
    topic = "application/app/device/0102030405060708/event/up"
    with pytest.raises(DecodeError, match=r"^deviceInfo.devEui must be a string, not a number$"):
        ChirpStackDecoder().decode(topic, orjson.dumps(doc), RECEIVED)


def test_chirpstack_without_deveui_still_takes_the_device_from_the_topic():
    doc = {"object": {"temperature": 20}, "time": "2026-01-15T06:00:00Z"}
    topic = "application/app/device/0102030405060708/event/up"
    decoded = ChirpStackDecoder().decode(topic, orjson.dumps(doc), RECEIVED)
    assert [r.device_id for r in decoded.readings] == ["0102030405060708"]
