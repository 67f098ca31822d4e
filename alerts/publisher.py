"""Decisions and warnings out over MQTT: placewatch/v1/alerts/{kind}/{id}, retained, JSON."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import orjson

from placewatch.mqttclient import connect_args, make_client

log = logging.getLogger("placewatch.alerts.mqtt")


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
