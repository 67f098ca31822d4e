"""A read pass's messages, handed over together (placewatch.mqttclient's on_messages), are committed and acknowledged
as they would be one by one: plain readings of known devices stored, everything else dead-lettered with its own
reason, every QoS 1 message acknowledged once after the commit, in the order received."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from ingest.service import Chunk, Incoming, IngestService
from placewatch.cli import build_decoders
from placewatch.settings import Settings

pytestmark = pytest.mark.integration


def _service(database_url: str, uid: str) -> IngestService:
    settings = Settings(
        database_url=SecretStr(database_url),
        mqtt_url="mqtt://127.0.0.1:1",  # never connected: the test hands messages over itself
        mqtt_client_id=f"pw-test-chunks-{uid}",
        metrics_port=0,
        environment="test",
        auto_register=False,
    )
    service = IngestService(settings, build_decoders(settings), dsn=database_url)
    service._writer = service._connect_writer(threading.Event())
    return service


def _device(db: Any, uid: str, suffix: str) -> str:
    """A registered home sensor of this test's own."""
    dev = f"chunk-{uid}-{suffix}"
    db.execute("INSERT INTO devices (id, kind) VALUES (%s, 'home_sensor')", (dev,))
    db.commit()
    return dev


def _topic(service: IngestService, device: str) -> bytes:
    return f"{service.settings.topic_prefix}/devices/{device}/readings".encode()


def _reading(ts: datetime, temperature: float) -> bytes:
    """A plain native reading message."""
    return orjson.dumps({"ts": ts.isoformat(), "values": {"temperature": temperature}})


def _values(db: Any, device: str) -> list[float]:
    """The device's stored values, in order."""
    rows = db.execute(
        "SELECT r.value FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s ORDER BY 1",
        (device,),
    ).fetchall()
    return [v for (v,) in rows]


def test_a_read_pass_is_stored_dead_lettered_and_acknowledged_as_one_by_one(db: Any, database_url: str, uid: str):
    known, unknown = _device(db, uid, "a"), f"chunk-{uid}-b"
    service = _service(database_url, uid)
    acked: list[int] = []
    service.client.ack_many = acked.extend  # type: ignore[method-assign]
    now = datetime.now(UTC).replace(microsecond=0)

    def topic(dev: str) -> bytes:
        return _topic(service, dev)

    def plain(t: datetime, temp: float) -> bytes:  # with Z, where _reading writes +00:00
        return orjson.dumps({"ts": t.isoformat().replace("+00:00", "Z"), "values": {"temperature": temp}})

    in_f = orjson.dumps({"ts": now.isoformat(), "values": {"temperature": 65.75}, "units": {"temperature": "degF"}})
    passes = [
        (topic(known), 1, 1, plain(now - timedelta(minutes=3), 18.5)),
        (topic(unknown), 2, 1, plain(now, 19.0)),  # not in the registry
        (topic(known), 3, 1, plain(datetime(1999, 6, 1, tzinfo=UTC), 17.0)),  # before the earliest reading
        (topic(known), 4, 1, in_f),  # not plain (units): decode()
        (topic(known), 5, 1, b"{not json"),
        (topic(known), 0, 0, plain(now - timedelta(minutes=1), 18.25)),  # QoS 0: nothing to acknowledge
        (topic(known), 6, 1, plain(now - timedelta(minutes=2), 18.0)),
    ]
    service._on_messages(service.client, passes)
    items = service.queue.take_batch(max_rows=10_000, max_age_s=0, wait_s=0)
    # Plain messages gather in chunks; one that is not plain goes on its own, in its place.
    assert [type(it).__name__ for it in items] == ["Chunk", "Incoming", "Incoming", "Chunk"]
    assert [it.messages for it in items] == [3, 1, 1, 2] and service.counters.received == 7
    assert isinstance(items[0], Chunk) and isinstance(items[1], Incoming)
    assert service._commit(items, stop_deadline=None)
    service._ack(items)
    assert acked == [1, 2, 3, 4, 5, 6]
    assert service.counters.committed_messages == 7

    stored = db.execute(
        """SELECT r.ts, r.value FROM readings r JOIN series s ON s.id = r.series_id
           WHERE s.device_id = %s AND s.metric = 'temperature' ORDER BY r.ts""",
        (known,),
    ).fetchall()
    assert [v for _, v in stored] == [18.5, 18.0, 18.25, 18.75]
    reasons = dict(
        db.execute(
            "SELECT payload, reason FROM dead_letters WHERE topic LIKE %s ORDER BY id", (f"%chunk-{uid}-%",)
        ).fetchall()
    )
    assert len(reasons) == 3
    assert "unknown device" in reasons[passes[1][3]] and unknown in reasons[passes[1][3]]
    assert "1999" in reasons[passes[2][3]] or "earliest" in reasons[passes[2][3]]
    assert reasons[passes[4][3]]  # unreadable, with its reason
    seen = db.execute("SELECT seen_at FROM device_state WHERE device_id = %s", (known,)).fetchone()[0]
    assert seen is not None
    service._writer.conn.close()  # type: ignore[union-attr]


def test_a_refused_chunk_is_written_message_by_message(db: Any, database_url: str, uid: str):
    # A batch the database refuses is isolated one message at a time: a chunk's messages each on their own.
    dev = _device(db, uid, "c")
    service = _service(database_url, uid)
    t = _topic(service, dev)
    now = datetime.now(UTC).replace(microsecond=0)
    service._on_messages(service.client, [(t, 1, 1, _reading(now - timedelta(minutes=k), k)) for k in range(3)])
    items = service.queue.take_batch(max_rows=10_000, max_age_s=0, wait_s=0)
    assert [it.messages for it in items] == [3]
    service._commit_one_by_one(items)
    n = db.execute(
        "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
    ).fetchone()[0]
    assert n == 3 and service.counters.committed_messages == 3
    service._writer.conn.close()  # type: ignore[union-attr]


def test_a_message_the_fast_decoder_fails_on_is_decoded_in_full_and_its_pass_kept(
    db: Any, database_url: str, uid: str, monkeypatch: pytest.MonkeyPatch
):
    # A bug in the fast lane costs speed, not the reading: that message goes on its own through decode().
    dev = _device(db, uid, "d")
    service = _service(database_url, uid)
    native = service._native
    assert native is not None
    real = native.fast

    def fast(payload: bytes) -> Any:  # a bug in the fast decoder, for one message
        if b"13.0" in payload:
            raise RuntimeError("boom")
        return real(payload)

    monkeypatch.setattr(native, "fast", fast)
    t = _topic(service, dev)
    now = datetime.now(UTC).replace(microsecond=0)
    temps = (12.5, 13.0, 14.5)
    service._on_messages(
        service.client, [(t, k + 1, 1, _reading(now - timedelta(minutes=k), v)) for k, v in enumerate(temps)]
    )
    items = service.queue.take_batch(max_rows=10_000, max_age_s=0, wait_s=0)
    assert [type(it).__name__ for it in items] == ["Chunk", "Incoming", "Chunk"]
    assert service._commit(items, stop_deadline=None)
    assert _values(db, dev) == [12.5, 13.0, 14.5]
    assert db.execute("SELECT count(*) FROM dead_letters WHERE topic = %s", (t.decode(),)).fetchone()[0] == 0
    service._writer.conn.close()  # type: ignore[union-attr]


def test_one_message_at_a_time_takes_the_same_lane(db: Any, database_url: str, uid: str):
    # What comes one by one (JetStream's messages; QoS 2) is handled as a read pass of one: a plain QoS 1 reading
    # is a chunk of one; a QoS 2 one goes on its own (paho's exchange acknowledges it).
    from ingest.transport import Delivered

    dev = _device(db, uid, "e")
    service = _service(database_url, uid)
    t = _topic(service, dev).decode()
    now = datetime.now(UTC).replace(microsecond=0)
    for k, qos in enumerate((1, 2)):
        body = _reading(now - timedelta(minutes=k), 20.0 + k)
        service._on_message(service.client, None, Delivered(k + 1, qos, t, body))  # type: ignore[arg-type]
    items = service.queue.take_batch(max_rows=10_000, max_age_s=0, wait_s=0)
    assert [type(it).__name__ for it in items] == ["Chunk", "Incoming"]
    assert service._commit(items, stop_deadline=None)
    assert _values(db, dev) == [20.0, 21.0]
    service._writer.conn.close()  # type: ignore[union-attr]


def test_a_topic_that_is_not_utf8_is_dead_lettered_with_the_reason(db: Any, database_url: str, uid: str):
    # Brokers refuse such topics (MQTT requires UTF-8), but ingest never takes a device id from one.
    service = _service(database_url, uid)
    bad = f"{service.settings.topic_prefix}/devices/x{uid}\xff/readings".encode("latin-1")
    service._on_messages(service.client, [(bad, 1, 1, _reading(datetime.now(UTC), 20.0))])
    items = service.queue.take_batch(max_rows=10_000, max_age_s=0, wait_s=0)
    assert service._commit(items, stop_deadline=None)
    (topic, reason) = db.execute(
        "SELECT topic, reason FROM dead_letters WHERE topic LIKE %s", (f"%x{uid}%",)
    ).fetchone()
    assert reason == "the topic is not valid UTF-8" and topic.endswith("\\xff/readings")
    assert db.execute("SELECT count(*) FROM devices WHERE id LIKE %s", (f"%x{uid}%",)).fetchone()[0] == 0
    service._writer.conn.close()  # type: ignore[union-attr]
