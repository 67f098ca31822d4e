"""Decisions and warnings out over MQTT: placewatch/v1/alerts/{kind}/{id}, retained, JSON.

What each retained alert last told is kept in the database by the evaluator that owns it (gritting:
gritting_route_state.published_*, damp: damp_home_state.published_sig, device health: device_alert_state), and
every evaluator publishes the same way: it asks its store what is pending (what the broker does not have yet,
including what failed to publish before), publishes it with publish_pending, and tells its store what the broker
acknowledged (mark_published). What was not acknowledged stays pending and is retried on the next sweep; a restart
neither loses nor repeats an alert."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson

from placewatch.mqttclient import connect_args, make_client

log = logging.getLogger("placewatch.alerts.mqtt")
M = TypeVar("M")


class AlertPublisher:
    """A long-lived MQTT connection that publishes retained alerts at QoS 1."""

    def __init__(self, url: str, *, protocol: str, prefix: str, ca_file: str | None = None) -> None:
        self.prefix = prefix.rstrip("/")
        self._connected = threading.Event()
        self.client = make_client(
            url, client_id=f"placewatch-alerts-{uuid.uuid4().hex[:8]}", protocol=protocol, ca_file=ca_file
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: self._connected.set()
        self.client.on_disconnect = lambda c, u, f, rc, p=None: self._connected.clear()
        self.client.connect_async(**connect_args(self.client))  # type: ignore[arg-type]
        self.client.loop_start()

    def topic(self, kind: str, ident: str) -> str:
        """The alert topic for a kind (gritting, damp, device) and an id."""
        return f"{self.prefix}/alerts/{kind}/{ident}"

    def publish(self, kind: str, ident: str, body: dict[str, Any] | None, *, timeout: float = 10.0) -> bool:
        """Publish (retained) and wait for the broker's acknowledgement; None clears the retained alert."""
        if not self._connected.wait(timeout):
            log.warning("alert %s/%s not published: broker not connected", kind, ident)
            return False
        payload = b"" if body is None else orjson.dumps(body)
        info = self.client.publish(self.topic(kind, ident), payload, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            log.warning("alert %s/%s not published: %s", kind, ident, exc)
            return False
        return info.is_published()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class Publishes(Protocol):
    """What publish_pending needs of a publisher (AlertPublisher)."""

    def publish(self, kind: str, ident: str, body: dict[str, Any] | None) -> bool:
        """Publish retained; True once the broker acknowledged it."""
        ...


@dataclass(frozen=True)
class Pending(Generic[M]):
    """A retained alert the broker does not have yet: its body (None clears the alert) and `marker`, what the
    evaluator's store remembers as published once the broker has acknowledged it."""

    ident: str
    body: dict[str, Any] | None
    marker: M


def publish_pending(publisher: Publishes, kind: str, pending: Iterable[Pending[M]]) -> list[M]:
    """Publish each pending alert in order; return the markers of those the broker acknowledged (for the store's
    mark_published). An alert refused for what it is (an id that is no valid topic) is logged and skipped; when the
    broker does not acknowledge one, the rest are not tried. Either way they stay pending in the store, so the
    next sweep publishes them."""
    items = list(pending)
    done: list[M] = []
    for p in items:
        try:
            ok = publisher.publish(kind, p.ident, p.body)
        except (ValueError, TypeError, RuntimeError) as exc:
            log.warning("%s alert %s not published: %s", kind, p.ident, exc)
            continue
        if not ok:
            log.warning("%s alerts not published (broker away): %d are retried next time", kind, len(items) - len(done))
            break
        done.append(p.marker)
    return done
