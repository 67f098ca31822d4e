"""Killing ingest between receive and commit loses nothing: unacknowledged messages come back."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import wait_until
from tests.helpers import load, station

pytestmark = pytest.mark.integration


def _stored(db, dev: str) -> int:
    return int(
        db.execute(
            "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
        ).fetchone()[0]
    )


def test_sigkill_after_receive_before_commit_loses_nothing(database_url, db, ingest, publisher, uid):
    dev = f"crash-{uid}"
    load(database_url, station(dev))
    # A batch that waits a minute: the process holds everything it received, uncommitted, unacknowledged.
    prefix = f"pwtest-{uid}/v1"  # our own topic tree: other traffic on a shared broker cannot disturb the counts
    first = ingest(
        PLACEWATCH_INGEST_BATCH_MS="60000", PLACEWATCH_INGEST_BATCH_ROWS="100000", PLACEWATCH_TOPIC_PREFIX=prefix
    )
    n = 300
    publisher.publish_many(
        [
            (
                f"{prefix}/devices/{dev}/readings",
                json.dumps(
                    {"ts": f"2026-01-15T{6 + i // 60:02d}:{i % 60:02d}:00Z", "values": {"air_temperature": i / 100}}
                ),
            )
            for i in range(n)
        ]
    )
    first.wait_for(f"received={n} committed=0", timeout=30)
    assert _stored(db, dev) == 0
    first.stop(9)  # SIGKILL: no flush, no acknowledgement
    ingest(PLACEWATCH_TOPIC_PREFIX=prefix)  # same client id: the broker resumes the session and redelivers
    wait_until(lambda: _stored(db, dev) == n, timeout=30)
    assert _stored(db, dev) == n


def test_sigterm_flushes_and_acknowledges_before_exit(database_url, db, ingest, publisher, uid):
    dev = f"term-{uid}"
    load(database_url, station(dev))
    prefix = f"pwtest-{uid}/v1"
    proc = ingest(
        PLACEWATCH_INGEST_BATCH_MS="60000", PLACEWATCH_INGEST_BATCH_ROWS="100000", PLACEWATCH_TOPIC_PREFIX=prefix
    )
    publisher.publish_many(
        [
            (
                f"{prefix}/devices/{dev}/readings",
                json.dumps({"ts": f"2026-01-16T06:{i:02d}:00Z", "values": {"air_temperature": 1.0}}),
            )
            for i in range(50)
        ]
    )
    proc.wait_for("received=50 committed=0", timeout=30)
    assert proc.stop(15) == 0
    assert _stored(db, dev) == 50
    last = [ln for ln in proc.lines if "ingest stats" in ln][-1]
    assert re.search(r"committed=50\b", last)


def test_messages_published_while_ingest_is_restarting_are_not_lost(database_url, db, ingest, publisher, uid):
    dev = f"restart-{uid}"
    load(database_url, station(dev))
    prefix = f"pwtest-{uid}/v1"
    proc = ingest(PLACEWATCH_TOPIC_PREFIX=prefix)
    topic = f"{prefix}/devices/{dev}/readings"
    publisher.publish(topic, json.dumps({"ts": "2026-01-17T06:00:00Z", "values": {"air_temperature": 1.0}}))
    wait_until(lambda: _stored(db, dev) == 1)
    assert proc.stop(15) == 0  # a rolling restart: graceful stop...
    publisher.publish_many(
        [  # ...while devices keep publishing
            (topic, json.dumps({"ts": f"2026-01-17T07:{i:02d}:00Z", "values": {"air_temperature": 2.0}}))
            for i in range(40)
        ]
    )
    ingest(PLACEWATCH_TOPIC_PREFIX=prefix)
    wait_until(lambda: _stored(db, dev) == 41, timeout=30)
