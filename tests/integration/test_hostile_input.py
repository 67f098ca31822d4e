"""Hostile input on every format's topics, through the real broker into the running ingest process.

Every hostile message is dead-lettered with a reason a person can act on (or, where the contract says
so, harmlessly ignored), the valid readings published between them are all stored, nothing hostile is
stored, and ingest is still alive and committing afterwards. Then random payloads (hypothesis) on the
same topics: ingest never files an internal error and never stops storing valid traffic.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.metrics import METRICS
from ingest.service import DEAD_PAYLOAD_LIMIT
from tests.conftest import wait_until
from tests.helpers import load
from tests.hostile_corpus import SIZE_LIMIT, Ids, corpus, valid

pytestmark = pytest.mark.integration
FORMATS = "native,tts,chirpstack,zigbee2mqtt,tasmota,senml"


def _start(ingest: Any, ids: Ids) -> Any:
    return ingest(
        PLACEWATCH_FORMATS=FORMATS,
        PLACEWATCH_FORMAT_OPTIONS=json.dumps(ids.format_options()),
        PLACEWATCH_TOPIC_PREFIX=ids.native,
        PLACEWATCH_MAX_PAYLOAD_BYTES=str(SIZE_LIMIT),
        PLACEWATCH_INGEST_BATCH_MS="50",
    )


def _stored(db: Any, ids: Ids) -> set[tuple[str, str, datetime]]:
    rows = db.execute(
        "SELECT s.device_id, s.metric, r.ts FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.device_id = ANY(%s)",
        (ids.devices(),),
    ).fetchall()
    return {(d, m, ts.astimezone(UTC)) for d, m, ts in rows}


def _dead(db: Any, topics: list[str], after: int = 0) -> list[tuple[int, str, bytes, str]]:
    rows = db.execute(
        "SELECT id, topic, payload, reason FROM dead_letters WHERE topic = ANY(%s) AND id > %s ORDER BY id",
        (topics, after),
    ).fetchall()
    return [(i, t, bytes(p), r) for i, t, p, r in rows]


def _wait_stored(db: Any, ids: Ids, expected: set[tuple[str, str, datetime]], proc: Any, timeout: float = 30) -> None:
    try:
        wait_until(lambda: _stored(db, ids) >= expected, timeout=timeout)
    except AssertionError:
        missing = sorted(expected - _stored(db, ids))
        problems = [ln for ln in proc.lines if "ingest stats" not in ln][-40:]
        shown = "\n".join(problems)
        raise AssertionError(f"{len(missing)} valid readings not stored: {missing[:10]}\n{shown}") from None


def _healthy(proc: Any) -> None:
    assert proc.popen.poll() is None, "ingest exited:\n" + proc.log()
    text = "\n".join(proc.lines)
    assert "Traceback" not in text and "unexpected failure" not in text, proc.log()


def test_hostile_corpus_is_dead_lettered_with_reasons_while_valid_traffic_flows(
    database_url, db, ingest, publisher, uid
):
    ids = Ids(uid)
    load(database_url, *ids.registry())
    proc = _start(ingest, ids)
    now = datetime.now(UTC)
    hostile = corpus(ids, now)
    assert len({h.kind for h in hostile}) >= 40
    assert len({(h.topic, h.payload) for h in hostile}) == len(hostile), "each message must be told apart"

    messages: list[tuple[str, bytes | str]] = []
    expected: set[tuple[str, str, datetime]] = set()
    topics = {h.topic for h in hostile}
    for k, h in enumerate(hostile):  # each hostile message followed by a valid one of another format
        messages.append((h.topic, h.payload))
        topic, payload, key = valid(ids, k, now)
        messages.append((topic, payload))
        expected.add(key)
        topics.add(topic)
    publisher.publish_many(messages)

    _wait_stored(db, ids, expected, proc)
    want = [h for h in hostile if h.words is not None]
    wait_until(lambda: len(_dead(db, sorted(topics))) >= len(want), timeout=30)

    # Still alive and still committing: a reading published after all of it is stored.
    topic, payload, key = valid(ids, len(hostile), now)
    publisher.publish(topic, payload)
    expected.add(key)
    _wait_stored(db, ids, expected, proc, timeout=15)
    _healthy(proc)

    rows: dict[tuple[str, bytes], list[str]] = {}
    for _, t, p, reason in _dead(db, sorted(topics)):
        rows.setdefault((t, p), []).append(reason)
    problems = []
    for h in hostile:
        kept = h.payload if len(h.payload) <= SIZE_LIMIT else h.payload[:DEAD_PAYLOAD_LIMIT]
        reasons = rows.pop((h.topic, kept), [])
        if h.words is None:
            if reasons:
                problems.append(f"{h.kind}: should be ignored, was dead-lettered: {reasons}")
            continue
        if len(reasons) != 1:
            problems.append(f"{h.kind}: expected one dead letter, found {len(reasons)}: {reasons}")
            continue
        missing = [w for w in h.words if w.lower() not in reasons[0].lower()]
        if missing or reasons[0].startswith("internal error"):
            problems.append(f"{h.kind}: reason {reasons[0][:300]!r} lacks {missing}")
    if rows:
        problems.append(f"dead letters for valid messages: {[(t, r) for (t, _), r in rows.items()]}")
    assert not problems, "\n".join(problems)

    assert _stored(db, ids) == expected, "hostile values were stored, or valid ones are missing"
    big = db.execute(
        "SELECT reason, length(payload) FROM dead_letters WHERE topic = %s AND reason LIKE %s",
        (f"{ids.native}/devices/{ids.station}/readings", "payload of 1000000 bytes%"),
    ).fetchone()
    assert big is not None and f"limit of {SIZE_LIMIT} bytes" in big[0] and big[1] == DEAD_PAYLOAD_LIMIT


# --- random payloads through the broker -------------------------------------------------------------

KEYS = [
    "ts", "values", "units", "device_id", "state", "end_device_ids", "uplink_message", "decoded_payload",
    "frm_payload", "received_at", "deviceInfo", "devEui", "object", "time", "batteryLevel", "temperature",
    "humidity", "battery", "voltage", "last_seen", "Time", "TempUnit", "AM2301", "ESP32", "Temperature",
    "bn", "bt", "n", "u", "v", "vs", "t", "air_temperature", "surface_state", "history", "timestamp",
]  # fmt: skip
leaves = (
    st.none()
    | st.booleans()
    | st.floats(min_value=-50, max_value=120)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=10)  # includes NUL and other control characters
    | st.sampled_from(["2026-01-15T06:30:00Z", "1970-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "Cel", "wet"])
)
trees = st.recursive(
    leaves,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids, max_size=5)
    ),
    max_leaves=25,
)
payloads = (
    st.binary(max_size=200)
    | trees.map(orjson.dumps)
    | st.integers(min_value=1, max_value=1500).map(lambda d: b"[" * d + b"]" * d)
    | st.builds(lambda depth, key: orjson.dumps({key: 1})[:-2] + b":" + b"[" * depth + b"1" + b"]" * depth + b"}",
                st.integers(min_value=30, max_value=1000), st.sampled_from(["ts", "device_id", "state", "values"]))
)  # fmt: skip


def _topics(ids: Ids) -> list[str]:
    return [
        f"{ids.native}/devices/{ids.station}/readings",
        f"{ids.native}/devices/{ids.station}/status",
        f"{ids.native}/devices/rand-{ids.uid}/readings",
        f"v3/{ids.tts_app}/devices/{ids.tts_dev}/up",
        f"v3/{ids.tts_app}/devices/up",
        f"application/{ids.cs_app}/device/{ids.cs_eui}/event/up",
        f"application/{ids.cs_app}/device/{ids.cs_eui}/event/status",
        f"{ids.z2m}/{ids.z2m_dev}",
        f"{ids.z2m}/{ids.z2m_dev}/availability",
        f"{ids.tele}/{ids.tasmota_dev}/SENSOR",
        f"{ids.tele}/{ids.tasmota_dev}/LWT",
        f"{ids.senml}/gw",
    ]


def test_random_payloads_on_every_format_never_stop_ingest(database_url, db, ingest, publisher, uid):
    ids = Ids(uid)
    load(database_url, *ids.registry())
    proc = _start(ingest, ids)
    topics = _topics(ids)
    sentinel_topic = topics[0]
    counter = itertools.count()
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
    watermark = [0]

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(messages=st.lists(st.tuples(st.sampled_from(topics), payloads), min_size=1, max_size=6))
    def check(messages: list[tuple[str, bytes]]) -> None:
        ts = start + timedelta(minutes=next(counter))  # far from the random times, so never overwritten
        sentinel = orjson.dumps({"ts": ts.isoformat(), "values": {"air_temperature": 4.2}})
        publisher.publish_many([*messages, (sentinel_topic, sentinel)])
        _wait_stored(db, ids, {(ids.station, "air_temperature", ts)}, proc, timeout=15)
        _healthy(proc)
        new = _dead(db, topics, watermark[0])
        if new:
            watermark[0] = new[-1][0]
        for _, topic, _, reason in new:
            assert reason.strip(), topic
            assert not reason.startswith(("internal error", "the database refused")), (topic, reason)

    check()
    for metric, low, high in db.execute(
        "SELECT s.metric, min(r.value), max(r.value) FROM readings r JOIN series s ON s.id = r.series_id "
        "WHERE s.device_id = ANY(%s) AND r.value IS NOT NULL GROUP BY 1",
        (ids.devices(),),
    ).fetchall():
        assert METRICS[metric].low <= low <= high <= METRICS[metric].high, metric
