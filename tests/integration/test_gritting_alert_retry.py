"""A gritting alert whose publish fails (the broker is away) stays pending in the store and is published the next
time the evaluator publishes, though the decision did not change: the one way every evaluator tracks what the
broker has (alerts.publisher.publish_pending), through a real Mosquitto that is stopped and started again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.gritting import GrittingEvaluator
from core.gritting import Forecast
from store import gritting as gritting_store
from tests.alert_retry import away_broker
from tests.helpers import load, route

pytestmark = pytest.mark.integration


def test_a_gritting_alert_not_published_while_the_broker_is_away_is_published_next_time(
    database_url: str, db: Any, uid: str, tmp_path: Path
) -> None:
    rid = f"G-retry-{uid}"
    load(database_url, route(rid, [], treatment_minutes=None))  # no stations: the forecast alone decides
    now = datetime.now(UTC)
    forecast = gritting_store.ForecastInput(
        forecast=Forecast(
            issued_at=now - timedelta(minutes=10), min_rst=-3.0, min_rst_at=now + timedelta(hours=8), dew_point=-2.0
        ),
        route_ids=(rid,),
    )
    gritting_store.load_forecasts(db, [forecast], loaded_by="test")
    with away_broker(database_url, tmp_path) as broker:
        evaluator = GrittingEvaluator(broker.settings, learned_nowcast=False)
        broker.away()
        stored = evaluator.evaluate(broker.ctx, [rid])  # the decision is stored; its alert cannot be published
        assert len(stored) == 1
        pending = gritting_store.pending_publications(db, route_ids=[rid])
        assert [p.id for p in pending] == stored, "the unpublished alert must stay pending"

        broker.back()
        assert evaluator.escalate(broker.ctx, [rid]) == []  # nothing to escalate or decide: only the retry publishes

        retained, body = broker.retained("gritting", rid)
        assert retained
        assert body["id"] == stored[0] and body["status"] == "issued"
        assert gritting_store.pending_publications(db, route_ids=[rid]) == [], "published: not published again"
