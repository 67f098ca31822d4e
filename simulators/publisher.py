"""The one publisher every simulator uses: connect, publish QoS 1 with a bounded window, device status, pacing."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import paho.mqtt.client as mqtt

from placewatch.mqttclient import connect_args, make_client

DEFAULT_PREFIX = "placewatch/v1"
# Client ids carry this run's id: two simulators of the same device on one broker must not take over
# each other's connection (MQTT drops the older client with the same id).
RUN_ID = uuid.uuid4().hex[:6]
# Paho sends at most this many QoS 1 messages before their PUBACKs and queues the rest itself.
# Mosquitto advertises Receive Maximum 20 to MQTT 5 clients; more in flight gains nothing.
PAHO_INFLIGHT = 20
MAX_ENTRIES_PER_MESSAGE = 100  # batching history into arrays; ingest accepts up to 10,000

Values = Mapping[str, object]


def readings_topic(device_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The native readings topic of a device."""
    return f"{prefix}/devices/{device_id}/readings"


def status_topic(device_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The native (retained) status topic of a device."""
    return f"{prefix}/devices/{device_id}/status"


def rfc3339(ts: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with Z, whole seconds (milliseconds when it has them)."""
    u = ts.astimezone(UTC)
    if u.microsecond:
        return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"
    return u.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(ts: datetime, values: Values) -> dict[str, Any]:
    """One native reading object: {"ts": ..., "values": {...}}."""
    return {"ts": rfc3339(ts), "values": dict(values)}


def payload_of(entries: Iterable[tuple[datetime, Values]]) -> bytes:
    """Native payload bytes: one object for one entry, an array for several."""
    items = [entry(ts, v) for ts, v in entries]
    if not items:
        raise ValueError("no readings to encode")
    return orjson.dumps(items[0] if len(items) == 1 else items)


@dataclass(frozen=True, slots=True)
class Message:
    """One readings message for one device at one simulated time, before it is encoded."""

    device_id: str
    ts: datetime
    values: dict[str, object]

    def payload(self) -> bytes:
        """The native JSON payload of this message."""
        return orjson.dumps(entry(self.ts, self.values))


class Publisher:
    """One MQTT connection that publishes with QoS 1, at most `window` messages unacknowledged.

    With `device_id` the connection is that device: its will is `offline` on the device's
    status topic (retained), and it publishes a retained `online` on every (re)connect.
    `threaded=False` runs paho's network loop in the caller's thread (no thread hand-offs: faster
    for a process that only publishes, as the fleet does; no automatic reconnect).
    `timeout` is how long publish() waits for a free slot (None: as long as it takes, while paho
    reconnects and resends); a set `stop` event ends such an endless wait with InterruptedError.
    """

    def __init__(
        self,
        mqtt_url: str,
        *,
        protocol: str = "5",
        client_id: str = "",
        device_id: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        window: int = 100,
        qos: int = 1,
        keepalive: int = 30,
        threaded: bool = True,
        timeout: float | None = 60.0,
        stop: threading.Event | None = None,
    ) -> None:
        if not 1 <= window < 65_535:
            raise ValueError("window must be between 1 and 65,534 messages")
        self.device_id = device_id
        self.prefix = prefix
        self.qos = qos
        self.window = window
        self.threaded = threaded
        self.timeout = timeout
        self._stop = stop
        self.sent = 0  # written by the caller's thread only
        self.acked = 0  # written by the network thread only
        self._keepalive = keepalive
        self._waiting = False
        self._progress = threading.Event()
        self._untracked: set[int] = set()  # mids published from the network thread (status on reconnect)
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = make_client(mqtt_url, client_id=client_id, protocol=protocol)
        self._client.max_inflight_messages_set(min(PAHO_INFLIGHT, window))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        if device_id is not None:
            self._client.will_set(status_topic(device_id, prefix), b"offline", qos=1, retain=True)

    # -- network thread callbacks -------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        if self.device_id is not None:
            info = client.publish(status_topic(self.device_id, self.prefix), b"online", qos=1, retain=True)
            self._untracked.add(info.mid)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, _reason: Any, _props: Any) -> None:
        self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _ud: Any, mid: int, _reason: Any, _props: Any) -> None:
        if self._untracked and mid in self._untracked:
            self._untracked.discard(mid)
            return
        self.acked += 1
        if self._waiting:
            self._progress.set()

    # -- caller API -------------------------------------------------------------------------------

    @property
    def client(self) -> mqtt.Client:
        """The underlying paho client."""
        return self._client

    @property
    def connected(self) -> bool:
        """True while the connection is up."""
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        """Messages published and not yet acknowledged."""
        return self.sent - self.acked

    def connect(self, timeout: float = 10.0) -> Publisher:
        """Connect (and start the network thread); raise ConnectionError if the broker does not accept us in time."""
        try:
            self._client.connect(**connect_args(self._client, keepalive=self._keepalive))  # type: ignore[arg-type]
        except OSError as exc:
            raise ConnectionError(f"cannot reach the MQTT broker: {exc}") from exc
        if self.threaded:
            self._client.loop_start()
        deadline = time.monotonic() + timeout
        while not self._connected.is_set():
            if self.threaded:
                self._connected.wait(0.05)
            else:
                self._client.loop(0.05)
            if self._refused is not None or time.monotonic() > deadline:
                if self.threaded:
                    self._client.loop_stop()
                why = self._refused or f"no CONNACK within {timeout:g} s"
                raise ConnectionError(f"MQTT broker refused the connection: {why}")
        return self

    def _wait_below(self, limit: int, timeout: float | None) -> bool:
        """Wait until fewer than `limit` messages are unacknowledged (limit 1: all acknowledged)."""
        if self.sent - self.acked < limit:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.sent - self.acked >= limit:
            if deadline is None and self._stop is not None and self._stop.is_set():
                raise InterruptedError("stopped while waiting for PUBACKs")
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return False
            if self.threaded:
                self._waiting = True
                self._progress.clear()
                if self.sent - self.acked >= limit:  # an ack may have come between the test and clear()
                    self._progress.wait(left)
                self._waiting = False
            else:
                rc = self._client.loop(left)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    raise ConnectionError(f"lost the MQTT connection: {mqtt.error_string(rc)}")
        return True

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish one message; block while `window` messages await their PUBACK (TimeoutError after `timeout`)."""
        if self.sent - self.acked >= self.window and not self._wait_below(self.window, self.timeout):
            raise TimeoutError(f"no PUBACK for {self.window} messages within {self.timeout} s (broker gone?)")
        info = self._client.publish(topic, payload, qos=self.qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # Paho refused it outright (queue full, mid clash): say so rather than lose it silently.
            raise RuntimeError(f"paho refused to publish on {topic}: {mqtt.error_string(info.rc)}")
        # NO_CONN: paho keeps the QoS 1 message and sends it after reconnecting.
        self.sent += 1

    def publish_readings(self, device_id: str, entries: Iterable[tuple[datetime, Values]]) -> None:
        """Publish readings of one device as one native message (an object, or an array for several)."""
        self.publish(readings_topic(device_id, self.prefix), payload_of(entries))

    def publish_status(self, device_id: str, state: Literal["online", "offline"]) -> None:
        """Publish a retained online/offline on a device's status topic."""
        self.publish(status_topic(device_id, self.prefix), state.encode(), retain=True)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every message published so far is acknowledged; False on timeout."""
        return self._wait_below(1, timeout)

    def close(self, *, offline: bool = True, timeout: float = 10.0) -> None:
        """Say `offline` (when a device), wait for acknowledgements, disconnect cleanly."""
        try:
            if offline and self.device_id is not None and self.connected:
                self.publish_status(self.device_id, "offline")
            self.flush(timeout)
        except (InterruptedError, TimeoutError):
            pass  # shutting down with the broker unreachable: nothing more to deliver
        finally:
            self._client.disconnect()
            if self.threaded:
                self._client.loop_stop()

    def drop(self) -> None:
        """Lose the connection without DISCONNECT, like a device losing power: the broker publishes the will."""
        if self.threaded:
            self._client.loop_stop()
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if sock is not None:
            sock.close()
        self._connected.clear()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- simulated time -------------------------------------------------------------------------------


@dataclass(slots=True)
class SimClock:
    """Simulated time that runs `speed` times faster than the wall clock from `start`; speed 0: no waiting."""

    start: datetime
    speed: float = 1.0
    _wall0: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("SimClock start must be an aware datetime")
        if self.speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or positive")

    def now(self) -> datetime:
        """The simulated time now (start, at speed 0)."""
        if self.speed == 0:
            return self.start
        return self.start + timedelta(seconds=(time.monotonic() - self._wall0) * self.speed)

    def delay(self, ts: datetime) -> float:
        """Wall-clock seconds until simulated time reaches ts (0 when due or at speed 0)."""
        if self.speed == 0:
            return 0.0
        due = self._wall0 + (ts - self.start).total_seconds() / self.speed
        return max(0.0, due - time.monotonic())

    def wait_until(self, ts: datetime, stop: threading.Event | None = None) -> bool:
        """Sleep until simulated time reaches ts; False if `stop` was set first."""
        wait = self.delay(ts)
        if stop is not None:
            return not stop.wait(wait) if wait > 0 else not stop.is_set()
        if wait > 0:
            time.sleep(wait)
        return True


def floor_time(ts: datetime, step: timedelta) -> datetime:
    """ts rounded down to a whole multiple of step since the epoch (UTC)."""
    seconds = int(step.total_seconds())
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def default_start(speed: float, interval: timedelta, count: int | None, now: datetime | None = None) -> datetime:
    """Where a run starts when not told: now in real time; ending at now when accelerated with a count."""
    now = now or datetime.now(UTC)
    if speed != 1 and count:
        return floor_time(now - interval * count, interval)
    return floor_time(now, interval)


def run_device(
    publisher: Publisher,
    device_id: str,
    values_at: Callable[[datetime], Values | None],
    *,
    start: datetime,
    interval: timedelta,
    speed: float = 1.0,
    count: int | None = None,
    end: datetime | None = None,
    stop: threading.Event | None = None,
    backfill: timedelta = timedelta(0),
    not_ahead_of_wall_clock: bool = False,
    on_message: Callable[[datetime, Values], None] | None = None,
) -> int:
    """Publish values_at(t) every `interval` of simulated time from `start`; returns messages published.

    `backfill` first publishes the history before `start` at once, in arrays of up to 100 readings.
    values_at may return None for "no reading" (a gap). Stops after `count` readings, at `end`, or on `stop`.
    `not_ahead_of_wall_clock`: an accelerated run slows to real time once it catches up with now
    (ingest refuses readings from the future).
    """
    published = 0
    if backfill > timedelta(0):
        t = start - backfill
        batch: list[tuple[datetime, Values]] = []
        while t < start and not (stop is not None and stop.is_set()):
            v = values_at(t)
            if v:
                batch.append((t, v))
            if len(batch) >= MAX_ENTRIES_PER_MESSAGE:
                try:
                    publisher.publish_readings(device_id, batch)
                except InterruptedError:
                    return published
                published += 1
                batch = []
            t += interval
        if batch:
            try:
                publisher.publish_readings(device_id, batch)
            except InterruptedError:
                return published
            published += 1
    clock = SimClock(start, speed)
    t = start
    n = 0
    while (count is None or n < count) and (end is None or t < end):
        if not clock.wait_until(t, stop):
            break
        if not_ahead_of_wall_clock:
            ahead = (t - datetime.now(UTC)).total_seconds()
            if ahead > 0:
                if stop is None:
                    time.sleep(ahead)
                elif stop.wait(ahead):
                    break
        v = values_at(t)
        if v:
            try:
                publisher.publish_readings(device_id, [(t, v)])
            except InterruptedError:
                break
            published += 1
            if on_message is not None:
                on_message(t, v)
        n += 1
        t += interval
    return published
