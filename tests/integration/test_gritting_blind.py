"""A route that cannot be seen, then can: the decision says so at once (core.gritting.lifecycle.BLIND_RULES).

`make run` showed it: the scheduler's first sweep ran before the simulated stations had reported, every route got
"Monitor: no recent readings, cannot judge", and that stood all morning while the map showed each station's
reading, because monitor to monitor was no change of instruction. Against the real PostgreSQL, broker and ingest,
with the evaluator run in the test's process (no scheduler deciding the same route meanwhile)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.context import AlertContext
from alerts.gritting import GrittingEvaluator
from alerts.publisher import AlertPublisher
from placewatch.settings import Settings
from simulators.publisher import payload_of, readings_topic
from store.db import open_pool
from tests.conftest import wait_until
from tests.helpers import load, route, station

pytestmark = pytest.mark.integration


def _decisions(db: Any, rid: str) -> list[tuple[int, str, str, str]]:
    return [
        (int(r[0]), str(r[1]), str(r[2]), str(r[3]))
        for r in db.execute(
            "SELECT id, action, rule, status FROM gritting_decisions WHERE route_id = %s ORDER BY id", (rid,)
        ).fetchall()
    ]


def test_cannot_judge_is_replaced_once_the_stations_report_and_comes_back_when_they_stop(
    database_url, mqtt_broker, db, ingest, publisher, uid
):
    dev, rid = f"rws-blind-{uid}", f"B-{uid}"
    load(database_url, station(dev), route(rid, [dev]))
    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(settings.mqtt_url, protocol=settings.mqtt_protocol, prefix=settings.topic_prefix)
    ev = GrittingEvaluator(settings)

    def evaluate(at: datetime) -> list[int]:
        return list(ev.evaluate(AlertContext(settings=settings, pool=pool, publisher=pub, now=lambda: at), [rid]))

    try:
        now = datetime.now(UTC).replace(microsecond=0)
        evaluate(now)  # nothing reported yet
        [(first, action, rule, _)] = _decisions(db, rid)
        assert (action, rule) == ("monitor", "no_data")

        # The station reports a warm, dry road for an hour: the route can be judged.
        ingest()
        entries = [
            (now - timedelta(minutes=10 * k), {"road_surface_temperature": 12.0, "air_temperature": 13.0,
                                                "dew_point": 4.0, "surface_state": "dry"})
            for k in range(6, -1, -1)
        ]  # fmt: skip
        publisher.publish(readings_topic(dev), payload_of(entries))
        wait_until(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
                ).fetchone()[0]
                >= 7 * 4
            )
        )
        evaluate(now + timedelta(minutes=1))
        seen = _decisions(db, rid)
        assert len(seen) == 2, seen
        assert seen[0][0] == first and seen[0][3] == "superseded"
        assert seen[1][2] != "no_data", seen  # judged on the readings, whatever the action
        # Judged again on the same readings: nothing material changed, no new decision.
        evaluate(now + timedelta(minutes=2))
        assert _decisions(db, rid) == seen

        # Four hours on, nothing more has come: the route is blind again, and says so.
        evaluate(now + timedelta(hours=4))
        blind = _decisions(db, rid)
        assert len(blind) == 3, blind
        assert (blind[2][1], blind[2][2]) == ("monitor", "no_data")
    finally:
        pub.close()
        pool.close()
