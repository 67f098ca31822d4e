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


@st.composite
def plain(draw: Any) -> list[dict[str, Any]]:
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        pairs = draw(st.lists(value_in_range, min_size=1, max_size=4, unique_by=lambda p: p[0]))
        entries.append({"ts": draw(st.one_of(ts_ms, ts_s)), "values": dict(pairs)})
    return entries


twists = st.sampled_from(
    [
        lambda e: e.__setitem__("ts", e["ts"] + 0.5),
        lambda e: e.__setitem__("ts", "2026-01-15T06:00:00Z"),
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
