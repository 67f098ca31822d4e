"""For the tests that an alert whose publish failed is published later: a real Mosquitto of the test's own that is
stopped while an evaluator publishes and started again, and the retained alert read back from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alerts.context import AlertContext
from alerts.publisher import AlertPublisher
from placewatch.settings import Settings
from store.db import open_pool
from tests.conftest import wait_until
from tests.faults.harness import PrivateMosquitto
from tests.services import subscribe_collect


class AwayBroker:
    """A private broker with the scheduler's publisher connected to it, and the context evaluators run in."""

    def __init__(self, database_url: str, tmp_path: Path, **context: Any) -> None:
        self.mosquitto = PrivateMosquitto(tmp_path)
        self.mosquitto.start()
        self.settings = Settings(database_url=database_url, mqtt_url=self.mosquitto.url, mqtt_protocol="5")
        self.pool = open_pool(database_url, max_size=2)
        self.publisher = AlertPublisher(self.mosquitto.url, protocol="5", prefix="placewatch/v1")
        self.ctx = AlertContext(settings=self.settings, pool=self.pool, publisher=self.publisher, **context)
        wait_until(self.publisher.client.is_connected)

    def away(self) -> None:
        """Stop the broker: publishes fail until back()."""
        self.mosquitto.stop()
        wait_until(lambda: not self.publisher.client.is_connected())

    def back(self) -> None:
        """Start the broker again and wait for the publisher to reconnect (paho's back-off is up to 30 s)."""
        self.mosquitto.start()
        wait_until(self.publisher.client.is_connected, timeout=45)

    def retained(self, kind: str, ident: str) -> tuple[bool, dict[str, Any]]:
        """The retained alert on placewatch/v1/alerts/{kind}/{ident}: (whether it came retained, its body)."""
        subscriber, got = subscribe_collect(self.mosquitto.url, f"placewatch/v1/alerts/{kind}/{ident}")
        try:
            first = wait_until(lambda: [m for m in got if m.payload], timeout=10)[0]
            return bool(first.retain), json.loads(first.payload)
        finally:
            subscriber.disconnect()
            subscriber.loop_stop()

    def close(self) -> None:
        """Disconnect, and stop the broker."""
        self.publisher.close()
        self.pool.close()
        self.mosquitto.stop()


@contextmanager
def away_broker(database_url: str, tmp_path: Path, **context: Any) -> Iterator[AwayBroker]:
    """An AwayBroker, closed at the end."""
    broker = AwayBroker(database_url, tmp_path, **context)
    try:
        yield broker
    finally:
        broker.close()
