"""The ingest service: MQTT in, decode, batch, commit with COPY, then acknowledge.

Threads: paho's network thread receives and decodes (a read pass's messages at once, on_messages: plain
native readings as one Chunk; any other message on its own, on_message) and puts into a bounded queue;
the writer thread (the caller of run()) takes batches, commits them, then sends the PUBACKs.
A message is acknowledged only after what it carried (readings or its dead letter) is committed,
so a crash anywhere loses nothing: the broker redelivers, and the store ignores duplicates.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg

from core.model import Decoded, DecodeError, Reading
from core.timeparse import check_time
from ingest.decoders.base import Decoder, topic_matches
from ingest.decoders.native import NativeDecoder
from ingest.queue import BoundedQueue
from ingest.transport import Delivered, Transport
from placewatch.metrics import MetricsServer, ingest_metrics
from placewatch.mqttclient import Raw, connect_args, make_client
from placewatch.settings import Settings
from store.db import connect
from store.migrate import engine as store_engine
from store.writer import Batch, DeadLetter, FastRows, Writer

log = logging.getLogger("placewatch.ingest")
DEAD_PAYLOAD_LIMIT = 64 * 1024  # bytes of an oversized payload kept in the dead-letter store
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# How long the MQTT thread lets a steady stream gather in the socket after taking all there was
# (placewatch.mqttclient.Client.read_pause_s), at most a quarter of the batch age: each wake-up (select, paho's loop,
# the read, a chunk) costs more than the messages it brings. On bench.ingest's 5,000 msg/s stream, 10 ms halved the
# receive cost; 25 ms took another 15 % off ingest's CPU (interleaved runs: consumer 28.8 and 30.1 core-ms per 1,000
# messages against 34.9 and 33.1 with 10 ms; the do-nothing subscriber 6.6 against 9.6); 50 ms 16 % off the stream's
# total (3 interleaved runs each: 45.0 core-ms per 1,000 messages on average with 25 ms, consumer 23.8, against 37.9,
# consumer 19.4), with the same time from the last publish to its commit (0.25 s). A message waits at most 50 ms
# more for its batch; a backlog is read through without pausing (the pause comes only once the socket is empty).
# It was off for a while because lone messages (a device's status) were "not applied within 20 s" in tests: they
# had never been delivered. Ingest logged "subscribed" when on_connect had only queued the SUBSCRIBE, the tests
# published on that line, and the pause held the SUBSCRIBE back 10 ms, so the broker had no subscription yet when
# the messages came. Now "subscribed" is logged on the broker's SUBACK, and the client never pauses with a packet
# waiting to be written.
READ_PAUSE_S = 0.05
# The cyclic garbage collector looks at the youngest objects once this many more live than at its last look (Python's
# default: 700). A message's objects (its Incoming, its rows) live until its batch commits, a few thousand objects a
# batch: at 700 each was looked at several times and moved to the oldest generation, whose full collections then came
# every few seconds. At 50,000 they are freed before the collector looks (ingest makes next to no reference cycles).
GC_YOUNG = 50_000
_TOPICS_MAX, _TOPIC_CACHED_LEN = 100_000, 160  # topics _on_messages remembers, as NativeDecoder.readings_device


@dataclass(slots=True)
class Incoming:
    """One received message, already decoded (or with the reason it could not be)."""

    mid: int
    qos: int
    session: int
    topic: str
    payload: bytes
    received_at: datetime
    decoded: Decoded | None
    error: str | None
    format: str | None
    size: int
    rows: int
    messages: int = 1  # what the queue counts


@dataclass(slots=True)
class Chunk:
    """The plain native readings messages of one MQTT read pass, in the order received, as one queue item: one
    object, one queue put and one arrival time for tens or hundreds of messages (a live stream's per-message cost
    in ingest's MQTT thread). Committed and acknowledged whole, as its messages would be one by one."""

    session: int
    received_at: datetime
    mids: list[int]  # the QoS 1 messages' ids, to acknowledge (QoS 0 has none)
    fast: FastRows  # (device id, readings) per message
    raw: list[tuple[str, bytes]]  # (topic, payload) per message: a dead letter's, should it fall back to decode()
    size: int
    rows: int
    messages: int


Item = Incoming | Chunk


@dataclass(slots=True)
class Counters:
    """Running totals, read by the stats log and /metrics."""

    received: int = 0
    committed_messages: int = 0
    committed_readings: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    db_errors: int = 0
    last_batch_ms: float = 0.0
    connected: bool = False


class IngestService:
    """Owns one MQTT client and one database connection; run() blocks until stop is set."""

    def __init__(
        self,
        settings: Settings,
        decoders: Sequence[Decoder],
        *,
        dsn: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_commit: Callable[[list[Item]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.decoders = list(decoders)
        self.dsn = dsn
        self.now = now
        self.on_commit = on_commit
        self.counters = Counters()
        self.queue: BoundedQueue[Item] = BoundedQueue(
            max_bytes=settings.ingest_queue_bytes, max_messages=2 * settings.ingest_max_inflight
        )
        self._session = 0  # bumped when the broker starts us a new session: older mids must not be acked
        self._known: set[str] = set()  # registered devices, kept until a device or series is deleted
        self._deletions: int | None = None  # the store's deletion count when _known was last valid
        self._auto_filters = [t.strip() for t in settings.auto_register_topics.split(",") if t.strip()]
        self._max_future = timedelta(minutes=settings.max_future_minutes)
        self._writer: Writer | None = None
        # The fast lane for plain native readings, when native is the first decoder (it owns its topics then).
        self._native = self.decoders[0] if self.decoders and isinstance(self.decoders[0], NativeDecoder) else None
        self._max_payload = settings.max_payload_bytes
        self._max_future_us = int(self._max_future / _US)
        self._earliest_us = (settings.earliest_reading - _UNIX) // _US
        self.client = make_client(
            settings.mqtt_url,
            client_id=settings.mqtt_client_id,
            protocol=settings.mqtt_protocol,
            persistent=True,
            manual_ack=True,
            ca_file=settings.mqtt_ca_file,
        )
        self.client.read_pause_s = min(READ_PAUSE_S, settings.ingest_batch_ms / 4_000)
        self.subscribed = threading.Event()  # set once the broker has acknowledged our subscriptions
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        if self._native is not None:
            self.client.on_messages = self._on_messages
        self._topics: dict[bytes, tuple[str | None, str | None]] = {}  # a raw topic: as text, and its readings device
        # PLACEWATCH_TRANSPORT=jetstream: a JetStream consumer feeds the same on_message and takes the acks.
        self.transport: Transport | None = None  # None: the MQTT client above
        if settings.transport == "jetstream":
            from ingest.jetstream import JetStreamTransport

            self.transport = JetStreamTransport(
                settings,
                self.decoders,
                deliver=self._on_message,
                subscribed=self.subscribed,
                connected=lambda up: setattr(self.counters, "connected", up),
            )

    # --- MQTT thread -------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """Topic filters to subscribe, with the shared-subscription prefix when configured."""
        filters: list[str] = []
        for d in self.decoders:
            for f in d.subscriptions():
                if f not in filters:
                    filters.append(f)
        group = self.settings.mqtt_shared_group
        return [f"$share/{group}/{f}" for f in filters] if group else filters

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, rc: object, props: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the connection: %s", rc)
            return
        if not flags.session_present:
            self._session += 1
        self.counters.connected = True
        client.subscribe([(f, 1) for f in self.subscriptions()])
        log.info(
            "connected to %s (session present: %s); subscribing to %s",
            self.settings.mqtt_url,
            flags.session_present,
            self.subscriptions(),
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: object, props: object = None
    ) -> None:
        # "subscribed" is said here, once the broker has acknowledged the SUBSCRIBE, not when on_connect has only
        # queued it: what is published from then on reaches us (tests and benches publish on this line).
        log.info("subscribed to %s", self.subscriptions())
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        self.counters.connected = False
        log.warning("disconnected from broker: %s", rc)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        """One message: a QoS 2 one, or one from JetStream. QoS 0 and 1 take the read pass's path (one fast lane for
        plain native readings); QoS 2 is acknowledged by paho's own exchange, so it goes on its own."""
        if self._native is not None and msg.qos != 2:
            self._on_messages(client, [(msg.topic.encode(), msg.mid, msg.qos, msg.payload)])
        else:
            self._put_one(msg)

    def _put_one(self, msg: mqtt.MQTTMessage) -> None:
        """Decode one message by its topic's decoder (or find why it cannot be) and queue it."""
        try:
            item = self._decode(msg)
        except Exception as exc:  # never raise into paho's loop
            log.exception("unexpected failure decoding a message on %s", msg.topic)
            item = self._incoming(msg, None, f"internal error while decoding: {type(exc).__name__}", None)
        self.counters.received += 1
        self.queue.put(item)

    def _on_messages(self, client: mqtt.Client, messages: list[Raw]) -> None:
        """A read pass's QoS 0 and 1 messages (placewatch.mqttclient's on_messages): plain native readings go into
        the queue as Chunks, the rest one by one (_put_one), in the order received."""
        native = self._native
        assert native is not None
        fast = native.fast
        topics = self._topics
        limit = self._max_payload
        session = self._session
        now = self.now()
        rows_of: FastRows = []
        raw: list[tuple[str, bytes]] = []
        mids: list[int] = []
        size = nrows = 0
        try:
            for topic_raw, mid, qos, payload in messages:
                entry = topics.get(topic_raw)
                if entry is None:
                    entry = self._topic(topic_raw)
                topic, device = entry
                if device is not None and len(payload) <= limit:
                    try:
                        rows = fast(payload)
                    except Exception:  # a bug in the fast lane costs speed, not the reading: decode() takes it
                        log.exception("the fast decoder failed on a message on %s; decoding it in full", topic)
                        rows = None
                    if rows is not None:
                        rows_of.append((device, rows))
                        raw.append((topic, payload))
                        if qos:
                            mids.append(mid)
                        size += len(payload) + 200
                        nrows += len(rows)
                        continue
                if raw:  # what came before it goes first
                    self._put_chunk(Chunk(session, now, mids, rows_of, raw, size, nrows, len(raw)))
                    rows_of, raw, mids, size, nrows = [], [], [], 0, 0
                if topic is None:  # brokers refuse such topics (MQTT requires UTF-8); kept, readable, with the reason
                    msg = Delivered(mid, qos, topic_raw.decode("utf-8", "backslashreplace"), payload)
                    self.counters.received += 1
                    self.queue.put(self._incoming(msg, None, "the topic is not valid UTF-8", None))  # type: ignore[arg-type]
                else:
                    self._put_one(Delivered(mid, qos, topic, payload))  # type: ignore[arg-type]
        finally:  # whatever happens, nothing gathered is lost: it is queued
            if raw:
                self._put_chunk(Chunk(session, now, mids, rows_of, raw, size, nrows, len(raw)))

    def _put_chunk(self, chunk: Chunk) -> None:
        self.counters.received += chunk.messages
        self.queue.put(chunk)

    def _topic(self, raw: bytes) -> tuple[str | None, str | None]:
        """A topic as text (None if it is not UTF-8) and the device of a native readings topic (else None);
        remembered per topic, as every message of a device comes on its one topic."""
        try:
            topic = raw.decode()
        except UnicodeDecodeError:
            return None, None
        assert self._native is not None
        entry = (topic, self._native.readings_device(topic))
        if len(raw) <= _TOPIC_CACHED_LEN:  # bounded in bytes too: a topic may be 64 KiB long
            if len(self._topics) >= _TOPICS_MAX:
                self._topics.clear()
            self._topics[raw] = entry
        return entry

    def _incoming(self, msg: mqtt.MQTTMessage, decoded: Decoded | None, error: str | None, fmt: str | None) -> Incoming:
        payload = msg.payload
        rows = len(decoded.readings) if decoded is not None else 1
        return Incoming(
            mid=msg.mid,
            qos=msg.qos,
            session=self._session,
            topic=msg.topic,
            payload=payload,
            received_at=self.now(),
            decoded=decoded,
            error=error,
            format=fmt,
            size=len(payload) + 200,
            rows=rows,
        )

    def _decode(self, msg: mqtt.MQTTMessage) -> Incoming:
        topic = msg.topic
        size = len(msg.payload)
        if size > self.settings.max_payload_bytes:
            return self._incoming(
                msg,
                None,
                f"payload of {size} bytes is larger than the limit of {self.settings.max_payload_bytes} bytes",
                None,
            )
        decoder = next((d for d in self.decoders if d.matches(topic)), None)
        if decoder is None:
            return self._incoming(msg, None, f"no decoder for topic {topic!r}", None)
        try:
            decoded = decoder.decode(topic, msg.payload, self.now())
        except DecodeError as exc:
            return self._incoming(msg, None, str(exc), decoder.name)
        return self._incoming(msg, decoded, None, decoder.name)

    # --- writer thread -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Connect, then commit batches until stop is set; on stop, flush and acknowledge what was received."""
        self._writer = self._connect_writer(stop)
        if self._writer is None:
            return
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG, *thresholds[1:])
        _freeze()
        metrics = self._start_metrics_server()
        if self.transport is not None:
            self.transport.start()
        else:
            self.client.connect_async(
                **connect_args(  # type: ignore[arg-type]
                    self.client,
                    keepalive=self.settings.mqtt_keepalive,
                    receive_maximum=self.settings.ingest_max_inflight,
                )
            )
            self.client.loop_start()
        stats_stop = threading.Event()
        stats = threading.Thread(target=self._stats_loop, args=(stats_stop,), name="ingest-stats", daemon=True)
        stats.start()
        # A stop request must not wait out a long batch age: wake the writer and flush at once.
        threading.Thread(target=lambda: (stop.wait(), self.queue.flush()), name="ingest-stop", daemon=True).start()
        stopping_since: float | None = None
        try:
            while True:
                if stop.is_set() and stopping_since is None:
                    # Never unsubscribe: the persistent session must keep queueing for us while we are down.
                    # Commit and acknowledge what we hold (for a few seconds at most), then disconnect;
                    # whatever is still unacknowledged is redelivered to the next ingest process.
                    stopping_since = time.monotonic()
                items = self.queue.take_batch(
                    max_rows=self.settings.ingest_batch_rows,
                    max_age_s=self.settings.ingest_batch_ms / 1000.0,
                    wait_s=0.2 if stopping_since is None else 0.05,
                    # The broker sends at most max_inflight unacknowledged messages: with half of them in
                    # hand, commit, so that the other half keeps arriving meanwhile.
                    max_messages=max(1, self.settings.ingest_max_inflight // 2),
                )
                if items:
                    if not self._commit(items, stop_deadline=None if stopping_since is None else stopping_since + 20):
                        break  # stopping while the database is down: leave them unacknowledged
                    self._ack(items)
                if stopping_since is not None and (not items or time.monotonic() - stopping_since > 5):
                    break
        finally:
            gc.set_threshold(*thresholds)
            stats_stop.set()
            if metrics is not None:
                metrics.stop()
            self._log_stats()
            if self.transport is not None:
                self.transport.stop()
            else:
                time.sleep(0.1)  # let paho write the last PUBACKs
                self.client.disconnect()
                self.client.loop_stop()
            if self._writer is not None:
                self._writer.conn.close()

    def _start_metrics_server(self) -> MetricsServer | None:
        """Serve the counters on PLACEWATCH_METRICS_PORT (off when 0); it only reads them."""
        if not self.settings.metrics_port:
            return None
        return MetricsServer(
            self.settings.api_host, self.settings.metrics_port, lambda: ingest_metrics(self.counters, len(self.queue))
        ).start()

    def _stats_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.stats_seconds):
            self._log_stats()

    def _log_stats(self) -> None:
        c = self.counters
        log.info(
            "ingest stats received=%d committed=%d readings=%d duplicates=%d dead_lettered=%d queue=%d "
            "db_errors=%d batch_ms=%.1f",
            c.received,
            c.committed_messages,
            c.committed_readings,
            c.duplicates,
            c.dead_lettered,
            len(self.queue),
            c.db_errors,
            c.last_batch_ms,
        )

    def _connect_writer(self, stop: threading.Event) -> Writer | None:
        delay = 0.5
        while not stop.is_set():
            try:
                conn = connect(self.dsn, autocommit=True)
                return Writer(conn, engine=store_engine(conn))
            except psycopg.Error as exc:
                self.counters.db_errors += 1
                log.warning("database unavailable (%s); retrying in %.1fs", str(exc).strip(), delay)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
        return None

    def _commit(self, items: list[Item], *, stop_deadline: float | None) -> bool:
        """Write a batch, retrying through database outages; False only if stopping gave up."""
        delay = 0.25
        while True:
            try:
                assert self._writer is not None
                started = time.perf_counter()
                batch = self._assemble(items)
                result = self._writer.write(batch)
                self.counters.last_batch_ms = (time.perf_counter() - started) * 1000
                break
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.counters.db_errors += 1
                if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
                    continue
                log.warning(
                    "database write failed (%s); holding %d messages unacknowledged", str(exc).strip(), len(items)
                )
                if stop_deadline is not None and time.monotonic() > stop_deadline:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._reconnect_writer()
            except psycopg.Error as exc:
                # Not an outage: something in this batch the database refuses. Isolate it.
                log.error("database refused a batch (%s); writing its messages one by one", str(exc).strip())
                try:
                    self._commit_one_by_one(items)
                except (psycopg.OperationalError, psycopg.InterfaceError) as outage:
                    # An outage or a passing error on the way: retry the whole batch, never dead-letter good data.
                    self.counters.db_errors += 1
                    log.warning("database write failed (%s) while isolating a batch; retrying", str(outage).strip())
                    if stop_deadline is not None and time.monotonic() > stop_deadline:
                        return False
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    self._reconnect_writer()
                    continue
                return True
        c = self.counters
        c.batches += 1
        c.committed_messages += sum(it.messages for it in items)
        c.committed_readings += result.inserted
        c.duplicates += result.duplicates
        c.dead_lettered += result.dead
        if self.on_commit is not None:
            self.on_commit(items)
        return True

    def _commit_one_by_one(self, items: list[Item]) -> None:
        assert self._writer is not None
        for it in (m for item in items for m in self._one_by_one(item)):
            try:
                self._writer.write(self._assemble([it]))
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # not this message's fault: the caller retries
            except psycopg.Error as exc:
                reason = f"the database refused this message: {str(exc).strip()[:300]}"
                self._writer.write(
                    Batch(dead=[DeadLetter(it.received_at, it.topic, it.payload[:DEAD_PAYLOAD_LIMIT], reason)])
                )
            self.counters.committed_messages += 1

    def _reconnect_writer(self) -> None:
        try:
            if self._writer is not None:
                self._writer.conn.close()
            conn = connect(self.dsn, autocommit=True)
            self._writer = Writer(conn, engine=store_engine(conn))
            self._known.clear()
            _freeze()
        except psycopg.Error:
            pass

    def _ack(self, items: list[Item]) -> None:
        mids: list[int] = []
        if self.transport is not None:
            for it in items:
                if type(it) is Chunk:
                    mids += it.mids
                else:
                    mids.append(it.mid)  # type: ignore[union-attr]
            self.transport.ack(mids)
            return
        # In the order received (MQTT's rule for PUBACKs); QoS 2 goes by paho's own exchange, after.
        session = self._session
        for it in items:
            if it.session != session:
                continue
            if type(it) is Chunk:
                mids += it.mids
            elif it.qos == 1:  # type: ignore[union-attr]
                mids.append(it.mid)  # type: ignore[union-attr]
        self.client.ack_many(mids)
        for it in items:
            if type(it) is Incoming and it.qos == 2 and it.session == session:
                self.client.ack(it.mid, it.qos)

    def _resolve_devices(self, items: list[Item]) -> set[str]:
        """Known device ids among those the batch names; auto-registers where the council allows it."""
        assert self._writer is not None
        # Devices are only added while ingest runs, except when the registry prunes them: a known device stays
        # known, and its series keep their ids, until the store's deletion count moves (read once a batch: one
        # sequence read). Emptying the cache every minute instead, as before, looked up every message's device on
        # a stream where each device sends every few minutes, and went on writing a deleted device's readings, under
        # series ids that no longer existed, for up to a minute.
        deletions = self._writer.deletions()
        if deletions != self._deletions:
            self._known.clear()
            self._writer.forget_series()
            self._deletions = deletions
        # Each device not known yet, with the first message that names it: (topic, format, metrics).
        named: dict[str, tuple[str, str | None, set[str]]] = {}
        known = self._known
        for it in items:
            if type(it) is Chunk:
                for k, (dev, rows) in enumerate(it.fast):
                    if dev not in known and dev not in named:
                        named[dev] = (it.raw[k][0], "native", {m for m, _, _ in rows})
                continue
            assert type(it) is Incoming
            if it.decoded is None:
                continue
            for dev in _device_ids(it.decoded):
                if dev not in known and dev not in named:
                    named[dev] = (it.topic, it.format, {r.metric for r in it.decoded.readings})
        if named:
            self._known |= self._writer.known_devices(named)
            if self.settings.auto_register:
                new = [
                    (dev, _guess_kind(metrics), fmt)
                    for dev, (topic, fmt, metrics) in named.items()
                    if dev not in self._known and self._auto_allowed(topic) and "\x00" not in dev
                ]
                self._writer.register(new)
                self._known |= {d for d, _, _ in new}
        return self._known

    def _auto_allowed(self, topic: str) -> bool:
        return not self._auto_filters or any(topic_matches(f, topic) for f in self._auto_filters)

    def _assemble(self, items: list[Item]) -> Batch:
        known = self._resolve_devices(items)
        batch = Batch()
        now = self.now()
        latest_us = (now - _UNIX) // _US + self._max_future_us
        earliest_us = self._earliest_us
        seen = batch.seen
        fast = batch.fast
        for item in items:
            if type(item) is Chunk:
                at = item.received_at
                for k, entry in enumerate(item.fast):
                    dev = entry[0]
                    if dev in known:
                        for _, us, _ in entry[1]:
                            if us < earliest_us or us > latest_us:
                                break
                        else:
                            fast.append(entry)
                            prev = seen.get(dev)
                            if prev is None or prev < at:
                                seen[dev] = at
                            continue
                    # An unknown device or an implausible time: decode() and the checks below give the reasons.
                    self._assemble_one(self._message(item, k), batch, known, now)
                continue
            assert type(item) is Incoming
            self._assemble_one(item, batch, known, now)
        return batch

    def _message(self, chunk: Chunk, k: int) -> Incoming:
        """The k-th message of a chunk as a message of its own, decoded in full (rare: an unknown device, an
        implausible time, a batch the database refused)."""
        topic, payload = chunk.raw[k]
        assert self._native is not None
        decoded, error = None, None
        try:
            decoded = self._native.decode(topic, payload, chunk.received_at)
        except DecodeError as exc:  # pragma: no cover - what fast() takes decode() takes too
            error = str(exc)
        return Incoming(
            mid=0,  # acknowledged with its chunk
            qos=1,
            session=chunk.session,
            topic=topic,
            payload=payload,
            received_at=chunk.received_at,
            decoded=decoded,
            error=error,
            format="native",
            size=len(payload) + 200,
            rows=len(chunk.fast[k][1]),
        )

    def _one_by_one(self, item: Item) -> list[Incoming]:
        """A queue item's messages, each on its own."""
        if type(item) is Chunk:
            return [self._message(item, k) for k in range(item.messages)]
        assert type(item) is Incoming
        return [item]

    def _assemble_one(self, it: Incoming, batch: Batch, known: set[str], now: datetime) -> None:
        """Add one decoded message to the batch: its readings, or its dead letter with the reason."""
        if it.decoded is None:
            batch.dead.append(
                DeadLetter(
                    it.received_at,
                    it.topic,
                    it.payload[:DEAD_PAYLOAD_LIMIT],
                    it.error or "unreadable",
                    _device_from_topic(it.topic, self.settings.topic_prefix),
                    it.format,
                )
            )
            return
        d = it.decoded
        unknown = sorted(dev for dev in _device_ids(d) if dev not in known)
        if unknown:
            batch.dead.append(
                DeadLetter(
                    it.received_at,
                    it.topic,
                    it.payload,
                    f"unknown device {unknown[0]!r}: not in the registry",
                    unknown[0],
                    it.format,
                )
            )
            if len(unknown) == len(_device_ids(d)):
                return
        rejections = list(d.rejections)
        kept: list[Reading] = []
        for r in d.readings:
            if r.device_id not in known:
                continue
            why = check_time(r.ts, now, max_future=self._max_future, earliest=self.settings.earliest_reading)
            if why is None:
                kept.append(r)
            else:
                rejections.append(f"{r.metric}: {why}")
        batch.readings.extend(kept)
        batch.statuses.extend(s for s in d.status if s.device_id in known)
        for dev in _device_ids(d):
            if dev in known:
                prev = batch.seen.get(dev)
                batch.seen[dev] = it.received_at if prev is None or prev < it.received_at else prev
        if rejections:
            total = len(kept) + len(rejections)
            prefix = f"stored {len(kept)} of {total} values; " if kept else ""
            batch.dead.append(
                DeadLetter(
                    it.received_at,
                    it.topic,
                    it.payload,
                    prefix + "; ".join(_dedupe(rejections))[:2000],
                    d.device_id,
                    it.format,
                )
            )


def _freeze() -> None:
    """Leave what exists now (modules, settings, the writer, and the caches ingest keeps and grows in place, such as
    its known devices) out of the cyclic garbage collector's generations. Each message's objects live for a batch
    (200 ms), long enough to reach the oldest generation, so full collections come every few seconds, and each
    walked every object made at start-up: on bench.ingest's stream the collector took 17 % of ingest's CPU, its full
    collections more than half of that. Nothing is kept alive by this: reference counting still frees these
    objects; only a reference cycle among them would stay, so cycles are collected first (a reconnect after a
    database error leaves some: an exception's traceback and its frames)."""
    gc.collect()
    gc.freeze()


def _device_ids(d: Decoded) -> set[str]:
    ids = {r.device_id for r in d.readings} | {s.device_id for s in d.status}
    if d.device_id is not None:
        ids.add(d.device_id)
    return ids


def _device_from_topic(topic: str, prefix: str) -> str | None:
    head = prefix.rstrip("/") + "/devices/"
    if topic.startswith(head):
        rest = topic[len(head) :]
        dev, _, _ = rest.rpartition("/")
        return dev or None
    return None


def _guess_kind(metrics: set[str]) -> str:
    if metrics & {"road_surface_temperature", "surface_state", "freezing_point"}:
        return "road_station"
    if metrics & {"temperature", "relative_humidity"}:
        return "home_sensor"
    return "unknown"


def _dedupe(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)
