"""A device alert whose publish fails (the broker is away) is published on the next sweep, not lost until the
device's problems change again: through a real Mosquitto that is stopped and started again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts.health import DeviceHealthEvaluator
from store import health
from tests.alert_retry import away_broker
from tests.helpers import load, station

pytestmark = pytest.mark.integration


def test_a_device_alert_not_published_while_the_broker_is_away_is_published_on_the_next_sweep(
    database_url: str, db: Any, uid: str, tmp_path: Path
) -> None:
    dev = f"unheard-{uid}"
    load(database_url, station(dev))  # registered, never heard from: stale
    with away_broker(database_url, tmp_path) as broker:
        evaluator = DeviceHealthEvaluator(broker.settings)
        broker.away()
        evaluator.sweep(broker.ctx)  # the problem is opened; its alert cannot be published
        opened = db.execute(
            "SELECT id, code FROM device_problems WHERE device_id = %s AND closed_at IS NULL", (dev,)
        ).fetchall()
        assert [code for _, code in opened] == ["stale"]
        assert health.pending_alerts(db)[dev] == [opened[0][0]], "the unpublished alert must stay pending"

        broker.back()
        evaluator.sweep(broker.ctx)  # nothing about the device changed: only the retry can publish its alert

        retained, body = broker.retained("device", dev)
        assert retained
        assert body["device_id"] == dev
        assert [p["code"] for p in body["problems"]] == ["stale"]
        assert "never sent a message" in body["problems"][0]["message"]
        assert dev not in health.pending_alerts(db), "a published alert must not be published again"
