"""An answer of 200 means the change is committed: a client that reads the store the moment it has its answer
(another service, a script, the next request on another connection) sees what it was told was done.

The API's request connection commits before the response is sent, not after (FastAPI runs a yield dependency's
exit after sending unless it is function-scoped): a season fixture that recorded the next decision straight after
completing a run once found the run's decision still in progress and superseded it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from store import gritting as grit_store
from store.db import connect
from tests.helpers import load, route, station
from tests.season_world import decision_row

pytestmark = pytest.mark.integration


def test_what_the_api_says_it_did_is_committed_when_the_answer_arrives(api_url: str, database_url: str, token_for: Any):
    h = token_for("highways")
    uid = uuid.uuid4().hex[:6]
    rid, dev = f"K-{uid}", f"rws-k-{uid}"
    load(database_url, station(dev), route(rid, [dev]))
    now = datetime.now(UTC).replace(microsecond=0)
    previous = None
    with connect(database_url, autocommit=True) as reader, httpx.Client(base_url=api_url, headers=h) as client:
        for i in range(25):
            issued = now - timedelta(hours=50 - 2 * i)
            with connect(database_url) as conn:
                stored, _ = grit_store.record_decisions(
                    conn,
                    decisions=[decision_row(rid, previous, "salt", issued, rate=10.0 + 5 * (i % 2))],
                    evaluated=[rid],
                    at=issued,
                )
                conn.commit()
            previous = stored[0][0]
            r = client.post(
                f"/api/v1/gritting/decisions/{previous}/acknowledge",
                json={"at": (issued + timedelta(minutes=5)).isoformat()},
            )
            assert r.status_code == 200, r.text
            (status,) = reader.execute("SELECT status FROM gritting_decisions WHERE id = %s", (previous,)).fetchone()
            assert status == "acknowledged", f"answer {i}: 200, but the store still says {status}"
