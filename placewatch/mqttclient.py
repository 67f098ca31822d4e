"""One way to make a paho-mqtt 2 client from a URL, used by ingest, alerts and the simulators.

The client is paho's with a faster receive path. paho reads each packet with three or more recv()
calls (command byte, length bytes, body), one packet per select(), builds a full MQTT 5 Properties
object (two dicts of every property name) for every PUBLISH even when it carries none, and sends each
PUBACK with its own wake-up and send(). At tens of thousands of messages a second that, not the
broker, is the limit (python -m bench.ingest measures both). Client therefore reads the socket
64 KiB at a time and parses every whole packet in the buffer in one pass, decodes PUBLISH itself
(Properties only when a packet has some), and sends a batch of PUBACKs as one write (ack_many). With
read_pause_s (ingest's: ingest.service.READ_PAUSE_S), having read all the socket held and with nothing to
write, it waits that long before the next read, so that a steady stream of small messages is read many per
wake-up.
Everything else (connect, subscribe, keepalive, reconnect, TLS, QoS 2, callbacks) is paho's.

It overrides private methods of paho's Client (_sock_recv, _sock_close, _packet_read, _handle_publish,
_handle_on_message), calls others (_packet_handle, _send_puback, _packet_queue, _easy_log) and reads its
private state (_in_packet, _out_packet, _sock, _protocol, _manual_ack, _on_message, _on_message_filtered, _userdata,
_msgtime_mutex, _last_bytes_received, _in_callback_mutex), none of which paho promises to keep. So
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
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
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


_READ_SIZE = 65536
_PUBLISH = 0x30
_PUBACK = 0x40
_H = struct.Struct("!H")


class Client(mqtt.Client):
    """paho's Client with buffered reads, its own PUBLISH decoding and bulk acknowledgements."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._rbuf = b""
        self._rpos = 0
        self._ack_lock = threading.Lock()
        self.read_pause_s = 0.0  # see loop_read
        self._drained = True  # the last recv() took everything the socket had

    # --- reading -----------------------------------------------------------------------------

    def _sock_recv(self, bufsize: int) -> bytes:
        """Serve paho's small reads from a buffer filled 64 KiB at a time."""
        avail = len(self._rbuf) - self._rpos
        if avail <= 0:
            size = max(bufsize, _READ_SIZE)
            data = super()._sock_recv(size)
            self._drained = len(data) < size
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
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Read what select() said is there, then every whole packet already buffered."""
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTT_ERR_SUCCESS and self._sock is not None and self._rpos < len(self._rbuf):
            rc = super().loop_read(1)
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
        if self._in_packet["command"] == 0:
            buf, pos = self._rbuf, self._rpos
            n = len(buf)
            if n - pos >= 2:
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
                if end <= n:
                    self._rpos = end
                    self._in_packet["command"] = buf[pos]
                    self._in_packet["packet"] = buf[i:end]
                    self._in_packet["pos"] = 0
                    try:
                        rc = self._packet_handle()
                    except mqtt.MalformedPacket:
                        rc = mqtt.MQTT_ERR_PROTOCOL
                    self._in_packet["command"] = 0
                    self._in_packet["packet"] = bytearray(b"")
                    with self._msgtime_mutex:
                        self._last_bytes_received = mqtt.time_func()
                    return rc
        return super()._packet_read()

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if qos == 2:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        (slen,) = _H.unpack_from(packet, 0)
        p = 2 + slen
        topic = bytes(packet[2:p])
        if not topic and self._protocol != mqtt.MQTTv5:
            raise mqtt.MalformedPacket("topic can't be empty in MQTTv3")
        mid = 0
        if qos:
            (mid,) = _H.unpack_from(packet, p)
            p += 2
        properties = None
        if self._protocol == mqtt.MQTTv5:
            if packet[p] == 0:  # no properties: the usual case
                p += 1
            else:
                properties = Properties(PacketTypes.PUBLISH)
                _, used = properties.unpack(bytes(packet[p:]))
                p += used
        message = mqtt.MQTTMessage(mid=mid, topic=topic)
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.properties = properties
        message.payload = bytes(packet[p:])
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTT_ERR_SUCCESS

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
        # PUBACK: 0x40, remaining length 2, message id; as one big-endian 32-bit word each.
        words = [0x40020000 | m for m in mids]
        packet = struct.pack(f"!{len(words)}I", *words)
        self._packet_queue(_PUBACK, packet, 0, 0)


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
