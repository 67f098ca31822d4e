"""The native decoder's fast lane: whenever it takes a message, decode() would store exactly the same.

NativeDecoder.fast() handles the plain messages that make up nearly all traffic without building
Reading objects or datetimes; anything unusual it hands to decode(), which gives the reasons. The
property: for any payload, fast() either declines (None) or yields the readings decode() yields,
with no rejection. Payloads: plain ones, and plain ones with one thing changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from core.metrics import METRICS
from core.model import DecodeError
from core.timeparse import parse_rfc3339, rfc3339_us
from ingest.decoders.native import NativeDecoder

RECEIVED = datetime(2026, 1, 15, 6, 30, tzinfo=UTC)
NATIVE = NativeDecoder()
TOPIC = "placewatch/v1/devices/rs/1 a:b/readings"
NUMERIC = sorted(m.name for m in METRICS.values() if m.categories is None)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _decode_as_fast(payload: bytes) -> list[tuple[str, int, float]] | None:
    """What decode() stores for the payload, in fast()'s shape; None if it rejects anything."""
    try:
        d = NATIVE.decode(TOPIC, payload, RECEIVED)
    except DecodeError:
        return None
    if d.rejections:
        return None
    return [(r.metric, _us(r.ts), r.value) for r in d.readings]  # type: ignore[misc]


value_in_range = st.sampled_from(NUMERIC).flatmap(
    lambda m: st.tuples(
        st.just(m),
        st.one_of(
            st.floats(METRICS[m].low, METRICS[m].high, allow_nan=False),
            st.integers(int(METRICS[m].low), int(METRICS[m].high)),
        ),
    )
)
ts_ms = st.integers(100_000_000_000, 4_102_444_800_000)  # 1973 to 2100, milliseconds
ts_s = st.integers(100_000_000, 4_102_444_800)


def _offset(minutes: int) -> str:
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@st.composite
def rfc3339_valid(draw: Any) -> str:
    """A real instant written as devices write it: Z or an offset, 0 to 9 fractional digits, T/Z in either case."""
    instant = draw(st.datetimes(datetime(1990, 1, 1), datetime(2100, 12, 31)))
    minutes = draw(st.sampled_from([0, 0, 60, -300, 330, 345, -570, 840, -720, 1439, -1439]))
    wall = instant + timedelta(minutes=minutes)
    text = wall.strftime("%Y-%m-%d") + draw(st.sampled_from("Tt")) + wall.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + f"{wall.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    zone = draw(st.sampled_from(["Z", "z", "offset"]))
    if zone != "offset" or (minutes == 0 and draw(st.booleans())):
        return text + (zone if zone != "offset" else draw(st.sampled_from(["+00:00", "-00:00"])))
    return text + _offset(minutes)


@st.composite
def rfc3339_odd(draw: Any) -> str:
    """Strings near the common form: impossible dates (Feb 29 of common years, day 31 of short months), hour 24,
    second 60, offsets past 23:59, missing zones, other separators, short fields, years at datetime's ends."""
    y = draw(st.sampled_from([1, 999, 1000, 1900, 2000, 2023, 2024, 2100, 9998, 9999]))
    mo = draw(st.integers(0, 13))
    d = draw(st.sampled_from([0, 1, 28, 29, 30, 31, 32]))
    h = draw(st.sampled_from([0, 1, 23, 24]))
    mi = draw(st.sampled_from([0, 59, 60]))
    sec = draw(st.sampled_from([0, 59, 60, 61]))
    sep = draw(st.sampled_from(["T", "t", " ", "_", ""]))
    width = draw(st.sampled_from([2, 2, 2, 1]))
    frac = draw(st.sampled_from(["", "", ".5", ".123", ".1234567891", ".", ",5"]))
    zones = ["Z", "z", "", "+00:00", "-00:00", "+01:00", "-23:59", "+24:00", "+00:60", "+0100", "+01", " Z"]
    zone = draw(st.sampled_from(zones))
    text = f"{y:04d}-{mo:0{width}d}-{d:02d}{sep}{h:02d}:{mi:02d}:{sec:02d}{frac}{zone}"
    return draw(st.sampled_from([text, " " + text, text + " ", text.replace("-", "/", 1)]))


@st.composite
def plain(draw: Any) -> list[dict[str, Any]]:
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        pairs = draw(st.lists(value_in_range, min_size=1, max_size=4, unique_by=lambda p: p[0]))
        entries.append({"ts": draw(st.one_of(ts_ms, ts_s, rfc3339_valid())), "values": dict(pairs)})
    return entries


twists = st.sampled_from(
    [
        lambda e: e.__setitem__("ts", e["ts"] + 0.5 if type(e["ts"]) is int else e["ts"] + " "),
        lambda e: e.__setitem__("ts", "2026-01-15T06:00:00Z"),
        lambda e: e.__setitem__("ts", "2026-01-15T06:00:00"),
        lambda e: e.__setitem__("ts", "2026-02-29T06:00:00Z"),
        lambda e: e.__setitem__("ts", "2026-01-15 06:00:00+01:00"),
        lambda e: e.__setitem__("ts", "2026-01-15T06:00:00.1234567890Z"),
        lambda e: e.__setitem__("ts", -5),
        lambda e: e.__setitem__("ts", 99),
        lambda e: e.__setitem__("ts", True),
        lambda e: e.__setitem__("ts", 10**18),
        lambda e: e.__setitem__("units", {"temperature": "F"}),
        lambda e: e.__setitem__("device_id", "rs/1 a:b"),
        lambda e: e.__setitem__("device_id", "someone-else"),
        lambda e: e.__setitem__("extra", 1),
        lambda e: e["values"].__setitem__("temperature", 1e9),
        lambda e: e["values"].__setitem__("temperature", "20.5"),
        lambda e: e["values"].__setitem__("temperature", None),
        lambda e: e["values"].__setitem__("temperature", True),
        lambda e: e["values"].__setitem__("surface_state", "icy"),
        lambda e: e["values"].__setitem__("no_such_metric", 1.0),
        lambda e: e["values"].clear(),
        lambda e: e.pop("values"),
        lambda e: e.pop("ts"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(plain(), st.booleans())
def test_plain_messages_take_the_fast_lane_and_match_decode(entries, as_array):
    payload = orjson.dumps(entries if as_array or len(entries) > 1 else entries[0])
    rows = NATIVE.fast(payload)
    assert rows is not None
    assert rows == _decode_as_fast(payload)


@settings(max_examples=600, deadline=None)
@given(plain(), twists, st.integers(0, 3))
def test_anything_else_is_declined_or_identical(entries, twist, which):
    twist(entries[which % len(entries)])
    payload = orjson.dumps(entries)
    rows = NATIVE.fast(payload)
    if rows is not None:
        assert rows == _decode_as_fast(payload)


@settings(max_examples=600, deadline=None)
@given(rfc3339_valid())
def test_rfc3339_in_the_common_form_is_taken_and_equals_the_general_parser(text):
    assert rfc3339_us(text) == _us(parse_rfc3339(text))


@settings(max_examples=1500, deadline=None)
@given(st.one_of(rfc3339_odd(), st.text(max_size=40), st.from_regex(r"\A[0-9T:.+\-Zz ]{15,35}\Z")))
def test_any_other_text_is_declined_or_equals_the_general_parser(text):
    us = rfc3339_us(text)
    if us is not None:
        assert us == _us(parse_rfc3339(text))


@settings(max_examples=600, deadline=None)
@given(plain(), st.one_of(rfc3339_odd(), rfc3339_valid()), st.integers(0, 3))
def test_messages_with_rfc3339_times_are_declined_or_identical(entries, ts, which):
    entries[which % len(entries)]["ts"] = ts
    payload = orjson.dumps(entries)
    rows = NATIVE.fast(payload)
    if rows is not None:
        assert rows == _decode_as_fast(payload)
    elif all(rfc3339_us(e["ts"]) is not None for e in entries if type(e["ts"]) is str):
        raise AssertionError("a plain message in the common form must take the fast lane")


def test_rfc3339_edges():
    assert rfc3339_us("2024-02-29T23:59:59.999999999Z") == _us(datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC))
    assert rfc3339_us("2026-01-15t06:00:00+05:45") == _us(datetime(2026, 1, 15, 0, 15, tzinfo=UTC))
    assert rfc3339_us("2026-01-15T06:00:00.5-01:30z") is None
    for bad in (
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-01-15T24:00:00Z",
        "2026-12-31T23:59:60Z",
        "2026-01-15T06:00:00",
        "2026-01-15T06:00:00+24:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-01:00",
        "２026-01-15T06:00:00Z",
    ):
        assert rfc3339_us(bad) is None, bad
    # what the fast lane declines still gets the general parser's verdict and reason
    assert _decode_as_fast(b'{"ts": "2023-02-29T00:00:00Z", "values": {"temperature": 20}}') is None


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(payload):
    rows = NATIVE.fast(payload)
    if rows is not None:
        assert rows == _decode_as_fast(payload)


def test_the_reasons_still_come_from_decode():
    # fast() declines; decode() says why.
    for payload in (b"", b"{", b"[]", b"{}", b'{"ts": 1, "values": {"temperature": 20}}'):
        assert NATIVE.fast(payload) is None


def test_readings_topic_gives_the_device_id():
    assert NATIVE.readings_device("placewatch/v1/devices/a/b c/readings") == "a/b c"
    assert NATIVE.readings_device("placewatch/v1/devices//readings") is None
    assert NATIVE.readings_device("placewatch/v1/devices/a/status") is None
    assert NATIVE.readings_device("elsewhere/v1/devices/a/readings") is None


def test_readings_topic_gives_the_same_device_id_when_remembered_and_long_topics_are_not_kept():
    native = NativeDecoder()
    topics = ["placewatch/v1/devices/a/b c/readings", "placewatch/v1/devices//readings", "elsewhere/x/readings"]
    first = [native.readings_device(t) for t in topics]
    assert [native.readings_device(t) for t in topics] == first == ["a/b c", None, None]
    long_id = "d" * 200
    assert native.readings_device(f"placewatch/v1/devices/{long_id}/readings") == long_id
    # A flood of long or one-off topics must not grow the memory of topics without bound.
    assert len(native._readings) == len(topics)
