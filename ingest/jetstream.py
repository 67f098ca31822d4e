"""Ingest from a NATS JetStream stream: devices publish MQTT to any node of a NATS cluster (its MQTT
listener), the stream keeps their messages (replicated), and N ingest workers share one durable pull
consumer (competing consumers: each message goes to one worker at a time).

The rest of ingest is unchanged: each message is handed to the service's on_message with the MQTT topic
it was published on (mapped back from its NATS subject), decoded, batched, committed with COPY, and only
then acknowledged. A worker that dies leaves its messages unacknowledged: JetStream delivers them again
after the consumer's ack wait, to any worker, and the store keeps a reading once per (series, time).
While a worker holds messages it cannot commit yet (the database is down), it tells JetStream it is still
working on them (+WPI), so they are not handed to another worker meanwhile.

nats-py is asyncio: its loop runs in a thread of its own, like paho's network thread on the MQTT path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import nats
from nats.errors import ConnectionClosedError, NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from ingest.decoders.base import Decoder
from ingest.transport import Delivered, filter_to_subject, subject_to_topic
from placewatch.settings import Settings

log = logging.getLogger("placewatch.ingest.jetstream")
FETCH_MAX = 1000  # messages asked for per pull request
FETCH_WAIT_S = 1.0  # how long a pull request waits for messages when there are none
PULLERS = 2  # pull requests in flight per worker (2 drained a backlog 1.4 times as fast as 1 here)


def stream_subjects(decoders: Sequence[Decoder]) -> list[str]:
    """The subjects the stream must hold: every decoder's MQTT filters, as NATS subjects."""
    out: list[str] = []
    for d in decoders:
        for f in d.subscriptions():
            s = filter_to_subject(f)
            if s not in out:
                out.append(s)
    return out


class JetStreamTransport:
    """One worker of the shared durable pull consumer."""

    def __init__(
        self,
        settings: Settings,
        decoders: Sequence[Decoder],
        *,
        deliver: Callable[[Any, Any, Delivered], None],
        subscribed: threading.Event,
        connected: Callable[[bool], None],
    ) -> None:
        self.settings = settings
        self.servers = [u.strip() for u in settings.nats_url.split(",") if u.strip()]
        self.subjects = stream_subjects(decoders)
        self._deliver = deliver
        self._subscribed = subscribed
        self._connected = connected
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, float]] = {}  # id -> (reply subject to ack, when delivered or last +WPI)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._tasks: set[asyncio.Future[None]] = set()  # acks being sent (kept referenced until done)

    # --- called from the service's threads -------------------------------------------------------

    def start(self) -> None:
        """Run the client's event loop in its own thread; it connects and retries by itself."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ingest-jetstream", daemon=True)
        self._thread.start()

    def ack(self, mids: list[int]) -> None:
        """Acknowledge committed messages (the writer thread calls this after each commit)."""
        with self._lock:
            replies = [r for m in mids if (r := self._pending.pop(m, (None, 0.0))[0]) is not None]
        if replies and self._loop is not None:
            self._loop.call_soon_threadsafe(self._publish_all, replies, b"+ACK")

    def stop(self) -> None:
        """Ask JetStream to deliver at once what we hold but did not commit (-NAK), then disconnect."""
        if self._loop is None or self._thread is None:
            return
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(15)

    @property
    def holding(self) -> int:
        """Messages delivered to this worker and not yet acknowledged."""
        return len(self._pending)

    # --- the event loop thread -------------------------------------------------------------------

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception:
            log.exception("the JetStream transport stopped on an unexpected error")
        finally:
            self._loop.close()

    def _publish_all(self, replies: list[str], body: bytes) -> None:
        """Send +ACK, +WPI or -NAK to each reply subject (in the loop thread; one task per call, in order)."""
        if self._nc is not None:
            task = asyncio.ensure_future(self._send(self._nc, replies, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _send(nc: Any, replies: list[str], body: bytes) -> None:
        # publish() appends to the client's buffer (its flusher writes it out); while reconnecting it buffers.
        # One that fails is not retried: the message is delivered again after the ack wait and stored once.
        for r in replies:
            try:
                await nc.publish(r, body)
            except Exception as exc:
                log.warning("could not send %s for %d messages (%s); they will be redelivered", body, len(replies), exc)
                return

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        s = self.settings

        async def disconnected() -> None:
            self._connected(False)
            log.warning("disconnected from NATS")

        async def reconnected() -> None:
            self._connected(True)
            log.info("reconnected to NATS at %s", self._nc.connected_url.netloc if self._nc else "?")

        async def error(exc: Exception) -> None:
            log.warning("NATS: %s", exc)

        while not self._stopping.is_set():
            try:
                self._nc = await nats.connect(
                    servers=self.servers,
                    name=f"placewatch-ingest {s.mqtt_client_id}",
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    ping_interval=5,
                    max_outstanding_pings=2,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                )
                break
            except (TimeoutError, NoServersError, OSError, NatsTimeout) as exc:
                log.warning("NATS unavailable at %s (%s); retrying", ", ".join(self.servers), exc)
                await self._sleep(1.0)
        if self._nc is None:
            return
        self._connected(True)
        js = self._nc.jetstream(timeout=5)
        psubs: list[Any] = []
        while not psubs and not self._stopping.is_set():
            try:
                await self._ensure(js)
                # Several pull requests in flight at once (each on its own inbox), so one batch's round trip
                # does not leave the worker idle.
                psubs = [
                    await js.pull_subscribe_bind(durable=s.nats_consumer, stream=s.nats_stream) for _ in range(PULLERS)
                ]
            except Exception as exc:  # a cluster electing leaders answers 503 or not at all for a while
                log.warning("JetStream stream %s not ready (%s); retrying", s.nats_stream, exc)
                await self._sleep(1.0)
        if psubs:
            log.info(
                "connected to NATS %s; subscribed JetStream stream %s %s as consumer %s",
                self._nc.connected_url.netloc,
                s.nats_stream,
                self.subjects,
                s.nats_consumer,
            )
            self._subscribed.set()
            keepalive = asyncio.ensure_future(self._keep_working())
            try:
                await asyncio.gather(*(self._pull(p) for p in psubs))
            finally:
                keepalive.cancel()
        await self._close()

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _ensure(self, js: Any) -> None:
        """Create the stream and the durable consumer if they do not exist (identical concurrent creates agree)."""
        s = self.settings
        try:
            info = await js.stream_info(s.nats_stream)
            missing = [x for x in self.subjects if x not in (info.config.subjects or [])]
            if missing:
                log.warning("stream %s does not capture %s: those will not reach ingest", s.nats_stream, missing)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=s.nats_stream,
                    subjects=self.subjects,
                    retention=RetentionPolicy.WORK_QUEUE,  # a message is gone once a worker acknowledges it
                    storage=StorageType.FILE,
                    num_replicas=s.nats_replicas,
                    max_age=s.nats_max_age_hours * 3600.0,
                    discard=DiscardPolicy.OLD,
                )
            )
            log.info("created stream %s on %s (%d replicas)", s.nats_stream, self.subjects, s.nats_replicas)
        try:
            await js.consumer_info(s.nats_stream, s.nats_consumer)
        except NotFoundError:
            await js.add_consumer(
                s.nats_stream,
                ConsumerConfig(
                    durable_name=s.nats_consumer,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=s.nats_ack_wait_s,
                    max_ack_pending=s.nats_max_ack_pending,
                    max_deliver=-1,  # never give up: a message that cannot be stored is dead-lettered, then acked
                    deliver_policy=DeliverPolicy.ALL,
                    max_waiting=512,
                ),
            )
            log.info(
                "created durable consumer %s (ack wait %.0f s, at most %d unacknowledged)",
                s.nats_consumer,
                s.nats_ack_wait_s,
                s.nats_max_ack_pending,
            )

    async def _pull(self, psub: Any) -> None:
        """Fetch while there is room (at most PLACEWATCH_INGEST_MAX_INFLIGHT held), hand each message on."""
        assert self._stopping is not None
        limit = self.settings.ingest_max_inflight
        deliver = self._deliver
        pending = self._pending
        ids = self._ids
        while not self._stopping.is_set():
            room = limit - len(pending)
            if room <= 0:
                await self._sleep(0.005)
                continue
            try:
                msgs = await psub.fetch(batch=min(FETCH_MAX, room), timeout=FETCH_WAIT_S)
            except (TimeoutError, NatsTimeout):
                continue
            except (ConnectionClosedError, OSError) as exc:
                log.warning("pull from JetStream failed (%s); retrying", exc)
                await self._sleep(0.5)
                continue
            except Exception as exc:  # a stream or consumer leader changing: the next pull goes to the new one
                log.warning("pull from JetStream failed (%s); retrying", exc)
                await self._sleep(0.5)
                continue
            now = time.monotonic()
            for m in msgs:
                mid = next(ids)
                with self._lock:
                    pending[mid] = (m.reply, now)
                # May wait while ingest's queue is full, as paho's thread does; acks are queued to this loop meanwhile.
                deliver(None, None, Delivered(mid, 1, subject_to_topic(m.subject), m.data))

    async def _keep_working(self) -> None:
        """Every third of the ack wait, +WPI for messages held that long (e.g. through a database outage)."""
        every = max(0.5, self.settings.nats_ack_wait_s / 3)
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            with self._lock:
                old = [(mid, r) for mid, (r, at) in self._pending.items() if now - at >= every]
                for mid, r in old:
                    self._pending[mid] = (r, now)
            if old:
                self._publish_all([r for _, r in old], b"+WPI")

    async def _close(self) -> None:
        with self._lock:
            held = [r for r, _ in self._pending.values()]
            self._pending.clear()
        if self._nc is None:
            return
        if held:
            await self._send(self._nc, held, b"-NAK")
            log.info("handed %d uncommitted messages back to JetStream", len(held))
        with contextlib.suppress(Exception):
            await self._nc.flush(timeout=5)  # the last acks and naks reach the server (a round trip)
        with contextlib.suppress(Exception):
            await self._nc.close()
        self._connected(False)
