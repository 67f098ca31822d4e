"""One way to make a paho-mqtt 2 client from a URL, used by ingest, alerts and the simulators.

The client is paho's with a faster receive path. paho reads each packet with three or more recv()
calls (command byte, length bytes, body), one packet per select(), builds a full MQTT 5 Properties
object (two dicts of every property name) for every PUBLISH even when it carries none, and sends each
PUBACK with its own wake-up and send(). At tens of thousands of messages a second that, not the
broker, is the limit (python -m bench.ingest measures both). Client therefore reads the socket
64 KiB at a time and parses every whole packet in the buffer in one pass, decodes PUBLISH itself
(Properties only when a packet has some; the message a Received, paho's MQTTMessage without the
Condition paho makes for every message), and sends a batch of PUBACKs as one write: ack_many with
manual_ack, else those of one read pass, at its end. With on_messages set, it hands over a read pass's QoS 0
and 1 messages together, at its end, as plain tuples (ingest's consumer: no object, callback or lock per
message). With
read_pause_s (ingest's: ingest.service.READ_PAUSE_S), having read all the socket held and with nothing to
write, it waits that long before the next read, so that a steady stream of small messages is read many per
wake-up.
Everything else (connect, subscribe, keepalive, reconnect, TLS, QoS 2, callbacks) is paho's.

It overrides private methods of paho's Client (_sock_recv, _sock_close, _packet_read, _handle_publish,
_handle_on_message), calls others (_packet_handle, _packet_queue, _loop_rc_handle, _easy_log) and reads its
private state (_in_packet, _out_packet, _sock, _protocol, _manual_ack, _on_message, _on_message_filtered, _userdata,
_msgtime_mutex, _last_bytes_received, _in_callback_mutex; MQTTMessage's slots), none of which paho promises to keep.
So
pyproject.toml pins paho-mqtt to exactly the version these were read from and tested with (2.2.0), and
tests/unit/test_paho_pin.py fails, saying why, when the installed paho is another version or any private
name used here is gone. Moving to another paho: read its Client against this file, then move the pin.
"""

from __future__ import annotations

import ssl
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker is and how to log in, parsed from mqtt://user:pass@host:port or mqtts://."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse an mqtt:// or mqtts:// URL; raise ValueError naming what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"MQTT URL {url!r} has no host")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ValueError(f"MQTT URL {url!r} has a bad port") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


# A PUBLISH as on_messages receives it: topic (bytes, as sent), message id (0 at QoS 0), QoS, payload.
Raw = tuple[bytes, int, int, bytes]

_READ_SIZE = 65536
_PUBLISH = 0x30
_PUBACK = 0x40
_H = struct.Struct("!H")
_INFO = mqtt.MQTTMessage.__dict__["info"]  # the slot paho's MQTTMessage keeps its MQTTMessageInfo in


class Received(mqtt.MQTTMessage):
    """A received PUBLISH, as paho's MQTTMessage: made without paho's MQTTMessageInfo (a threading.Condition and its
    lock, more than half of what paho's message costs to make, and meaningless for a message received rather than
    sent), which is made only if asked for."""

    __slots__ = ()

    @property
    def info(self) -> mqtt.MQTTMessageInfo:
        """paho's MQTTMessageInfo, made on first use."""
        try:
            return _INFO.__get__(self, Received)  # type: ignore[no-any-return]
        except AttributeError:
            info = mqtt.MQTTMessageInfo(self.mid)
            _INFO.__set__(self, info)
            return info

    @info.setter
    def info(self, value: mqtt.MQTTMessageInfo) -> None:
        _INFO.__set__(self, value)


class Client(mqtt.Client):
    """paho's Client with buffered reads, its own PUBLISH decoding and bulk acknowledgements."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._rbuf = b""
        self._rpos = 0
        self._ack_lock = threading.Lock()
        self.read_pause_s = 0.0  # see loop_read
        self._drained = True  # the last recv() took everything the socket had
        self._acks: list[int] = []  # QoS 1 messages received (not manual_ack) whose PUBACK is not queued yet
        # With on_messages set, the QoS 0 and 1 messages of a read pass are handed over together, at its end, as
        # (topic bytes, mid, qos, payload): no message object, no callback and no lock per message. QoS 2 messages
        # (and all when per-topic callbacks are added) still go one by one to on_message, after those before them.
        self.on_messages: Callable[[Client, list[Raw]], None] | None = None
        self._pass: list[Raw] = []

    # --- reading -----------------------------------------------------------------------------

    def _sock_recv(self, bufsize: int) -> bytes:
        """Serve paho's small reads from a buffer filled 64 KiB at a time."""
        avail = len(self._rbuf) - self._rpos
        if avail <= 0:
            size = max(bufsize, _READ_SIZE)
            data = super()._sock_recv(size)
            self._drained = len(data) < size
            if data:
                # Once a read, not once a packet: the keepalive's clock of the last bytes from the broker.
                with self._msgtime_mutex:
                    self._last_bytes_received = mqtt.time_func()
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, bufsize
            return data[:bufsize]
        end = self._rpos + min(bufsize, avail)
        out = self._rbuf[self._rpos : end]
        self._rpos = end
        return out

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0  # bytes of a dead connection must never reach a new one
        self._acks.clear()  # their messages are redelivered on the next connection, with its own ids
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Read what select() said is there, then every whole packet already buffered."""
        try:
            rc = super().loop_read(max_packets)
            # Then packet after packet from the buffer, as paho's loop_read(1) would take them one per call.
            while rc == mqtt.MQTT_ERR_SUCCESS and self._sock is not None and self._rpos < len(self._rbuf):
                rc = self._packet_read()
                if rc == mqtt.MQTT_ERR_AGAIN:
                    rc = mqtt.MQTT_ERR_SUCCESS
                    break
                if rc > 0:
                    rc = self._loop_rc_handle(rc)
        finally:
            if self._pass:  # what was read is handed over, even if the connection then failed (as one by one)
                self._deliver_pass()
        if self._acks and self._sock is not None:
            # The PUBACKs of what this pass received (without manual_ack): one packet, written now, rather than one
            # queued packet, wake-up and send() per message. In the order received, as MQTT requires.
            mids, self._acks = self._acks, []
            self._packet_queue(_PUBACK, _pubacks(mids), 0, 0)
            if rc == mqtt.MQTT_ERR_SUCCESS:
                rc = self.loop_write()
        if self.read_pause_s and self._drained and rc == mqtt.MQTT_ERR_SUCCESS and not self._out_packet:
            # A steady stream of small messages wakes a reader once per packet or two, and each wake-up (select,
            # paho's loop, the read) costs more than the messages it brings. Having taken all there was, let the
            # next ones gather in the socket for a moment: one wake-up then reads many. Only once the socket is
            # empty (the last read was not a full one): a backlog is read through first, and then the broker
            # refills the socket while we wait (ingest measured no loss of throughput on a backlog). Never while
            # a packet waits to be written: what the packets just read queued (a SUBSCRIBE from on_connect, a
            # PUBACK) goes out first, on paho's next turn of its loop.
            time.sleep(self.read_pause_s)
        return rc

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        # Fast path: no packet half-read and a whole one waiting in the buffer.
        if self._in_packet["command"] != 0:
            return super()._packet_read()
        buf, pos = self._rbuf, self._rpos
        n = len(buf)
        if n - pos < 2:
            return super()._packet_read()
        length = 0
        mult = 1
        i = pos + 1
        while i < n and i <= pos + 4:
            b = buf[i]
            length += (b & 127) * mult
            mult *= 128
            i += 1
            if not b & 128:
                break
        else:
            return super()._packet_read()
        end = i + length
        if end > n:
            return super()._packet_read()
        self._rpos = end
        header = buf[pos]
        self._in_packet["command"] = header
        self._in_packet["packet"] = buf[i:end]
        self._in_packet["pos"] = 0
        try:
            if header & 0xF0 == _PUBLISH:
                rc = self._handle_publish()  # paho's _packet_handle would first test for four other packet types
            else:
                self._in_packet["remaining_length"] = length  # what paho's handlers of PINGRESP, SUBACK... check
                rc = self._packet_handle()
                self._in_packet["remaining_length"] = 0
        except MalformedPacket:
            rc = mqtt.MQTT_ERR_PROTOCOL
        self._in_packet["command"] = 0
        self._in_packet["packet"] = bytearray(b"")
        return rc

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if qos == 2 or qos == 3:
            # QoS 2 (and 3, which paho refuses): paho's own handling. It acknowledges at once, so the PUBACKs of the
            # messages read before it go first: a broker takes them in the order it sent the messages. The
            # messages read before it are handed over first, in the order received.
            if self._pass:
                self._deliver_pass()
            if self._acks:
                mids, self._acks = self._acks, []
                self._packet_queue(_PUBACK, _pubacks(mids), 0, 0)
            return super()._handle_publish()
        raw: bytes | bytearray = self._in_packet["packet"]
        # paho's own read of a packet that came in several pieces is a bytearray; slices of it would be too
        packet = raw if isinstance(raw, bytes) else bytes(raw)
        end = len(packet)
        if end < 2:
            raise MalformedPacket("PUBLISH too short for its topic's length")
        (slen,) = _H.unpack_from(packet, 0)
        p = 2 + slen
        topic = packet[2:p]
        if qos:
            if p + 2 > end:
                raise MalformedPacket("PUBLISH too short for its message id")
            (mid,) = _H.unpack_from(packet, p)
            p += 2
        else:
            mid = 0
        if p > end:
            raise MalformedPacket("PUBLISH too short for its topic")
        properties = None
        if self._protocol == mqtt.MQTTv5:
            if p >= end:
                raise MalformedPacket("PUBLISH without its properties' length")
            if packet[p] == 0:  # no properties: the usual case
                p += 1
            else:
                properties = Properties(PacketTypes.PUBLISH)
                try:
                    _, used = properties.unpack(packet[p:])
                except (IndexError, struct.error, UnicodeDecodeError) as exc:
                    raise MalformedPacket(f"PUBLISH properties: {exc}") from None
                p += used
        elif not topic:
            raise MalformedPacket("topic can't be empty in MQTTv3")
        if self.on_messages is not None and not self._on_message_filtered._root._children:  # type: ignore[attr-defined]
            self._pass.append((topic, mid, qos, packet[p:]))
            if qos and not self._manual_ack:
                self._acks.append(mid)
            return mqtt.MQTT_ERR_SUCCESS
        if self._pass:
            self._deliver_pass()
        message = Received.__new__(Received)
        message._topic = topic
        message.mid = mid
        message.qos = qos
        message.dup = bool(header & 0x08)
        message.retain = bool(header & 0x01)
        message.properties = properties
        message.payload = packet[p:]
        message.state = mqtt.mqtt_ms_invalid
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if qos and not self._manual_ack:
            self._acks.append(mid)  # acknowledged, with the others of this read pass, at its end (loop_read)
        return mqtt.MQTT_ERR_SUCCESS

    def _deliver_pass(self) -> None:
        """Hand the messages gathered by this read pass to on_messages (as paho calls on_message: under its callback
        lock; an exception is logged, and raised unless suppress_exceptions)."""
        batch, self._pass = self._pass, []
        on_messages = self.on_messages
        if on_messages is None:
            return
        with self._in_callback_mutex:
            try:
                on_messages(self, batch)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_messages: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # Without per-topic callbacks (message_callback_add), straight to on_message: paho would walk
        # its topic matcher and take a second lock for every message.
        if self._on_message_filtered._root._children:  # type: ignore[attr-defined]
            super()._handle_on_message(message)
            return
        on_message = self._on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    # --- acknowledging -----------------------------------------------------------------------

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge these QoS 1 messages (manual_ack mode) with one write."""
        if not mids:
            return
        self._packet_queue(_PUBACK, _pubacks(mids), 0, 0)


def _pubacks(mids: list[int]) -> bytes:
    """PUBACK packets for these message ids, back to back: 0x40, remaining length 2, the id; one big-endian 32-bit
    word each."""
    return struct.pack(f"!{len(mids)}I", *[0x40020000 | m for m in mids])


_CONFIG: weakref.WeakKeyDictionary[mqtt.Client, tuple[BrokerAddress, bool, mqtt.MQTTProtocolVersion]] = (
    weakref.WeakKeyDictionary()
)


def protocol_of(version: str) -> mqtt.MQTTProtocolVersion:
    """'5' or '3.1.1' to paho's protocol constant."""
    if version == "5":
        return mqtt.MQTTv5
    if version in ("3.1.1", "311", "4"):
        return mqtt.MQTTv311
    raise ValueError(f"MQTT protocol {version!r} must be 5 or 3.1.1")


def make_client(
    url: str,
    *,
    client_id: str = "",
    protocol: str = "5",
    persistent: bool = False,
    manual_ack: bool = False,
    ca_file: str | None = None,
) -> Client:
    """A configured, not yet connected paho v2 client. persistent keeps the session across reconnects."""
    addr = BrokerAddress.parse(url)
    proto = protocol_of(protocol)
    kwargs: dict[str, object] = {}
    if proto != mqtt.MQTTv5:
        kwargs["clean_session"] = not persistent
    client = Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=proto,
        manual_ack=manual_ack,
        **kwargs,  # type: ignore[arg-type]
    )
    if addr.username is not None:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    # Remember how to connect, so connect_args() needs only the client (userdata stays the caller's).
    _CONFIG[client] = (addr, persistent, proto)
    return client


def connect_args(
    client: mqtt.Client,
    *,
    keepalive: int = 30,
    session_expiry: int = 7 * 24 * 3600,
    receive_maximum: int | None = None,
) -> dict[str, object]:
    """Keyword arguments for client.connect()/connect_async() matching how make_client configured it.

    receive_maximum (MQTT 5) caps how many unacknowledged QoS 1 messages the broker sends us:
    with acks held until commit, that is ingest's flow control.
    """
    addr, persistent, proto = _CONFIG[client]
    args: dict[str, object] = {"host": addr.host, "port": addr.port, "keepalive": keepalive}
    if proto == mqtt.MQTTv5:
        args["clean_start"] = not persistent
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = session_expiry
        if receive_maximum:
            props.ReceiveMaximum = receive_maximum
        if persistent or receive_maximum:
            args["properties"] = props
    return args


def probe(url: str, *, protocol: str = "5", timeout: float = 2.0, ca_file: str | None = None) -> bool:
    """True when the broker accepts an MQTT connection within timeout seconds."""
    import threading
    import uuid

    done = threading.Event()
    ok: list[bool] = []
    client = make_client(url, client_id=f"placewatch-probe-{uuid.uuid4().hex[:8]}", protocol=protocol, ca_file=ca_file)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object = None) -> None:
        ok.append(not getattr(rc, "is_failure", False))
        done.set()

    client.on_connect = on_connect
    try:
        client.connect_async(**connect_args(client, keepalive=10))  # type: ignore[arg-type]
        client.loop_start()
        done.wait(timeout)
    except OSError:
        return False
    finally:
        try:
            client.disconnect()
        finally:
            client.loop_stop()
    return bool(ok and ok[0])
