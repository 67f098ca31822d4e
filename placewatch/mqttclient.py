"""One way to make a paho-mqtt 2 client from a URL, used by ingest, alerts and the simulators."""

from __future__ import annotations

import ssl
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
) -> mqtt.Client:
    """A configured, not yet connected paho v2 client. persistent keeps the session across reconnects."""
    addr = BrokerAddress.parse(url)
    proto = protocol_of(protocol)
    kwargs: dict[str, object] = {}
    if proto != mqtt.MQTTv5:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(
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
