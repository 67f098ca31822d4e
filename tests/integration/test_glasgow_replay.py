"""A replay of real homes: the Glasgow households of summer 2023 (Smart Citizen Kit, one reading a minute)
published through the broker, stored by ingest and judged by the DampEvaluator day by day as they were
recorded. Summer homes in Glasgow are not damp enough to open a case, and the short recordings are 'not
enough data', never green."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from alerts.context import AlertContext
from alerts.damp import DampEvaluator
from alerts.publisher import AlertPublisher
from core.registry import parse_registry
from placewatch.settings import Settings
from simulators.publisher import payload_of, readings_topic
from simulators.replay import default_glasgow_files, glasgow_device_id, glasgow_file_messages, registry_for_glasgow
from store import registry
from store.db import connect, open_pool
from tests.conftest import wait_until
from tests.helpers import collection

pytestmark = pytest.mark.integration

FILES = default_glasgow_files()
PER_MESSAGE = 2000


def _registry(uid: str) -> tuple[str, dict[str, str]]:
    """The replay's registry with ids made unique for this run; (text, sensor id -> home id)."""
    features = registry_for_glasgow(FILES, patch=f"glasgow-{uid}")["features"]
    homes = {}
    for f in features:
        props = f["properties"]
        props["id"] = f"{props['id']}-{uid}"
        if props["kind"] == "home_sensor":
            props["home"] = f"{props['home']}-{uid}"
            homes[props["id"]] = props["home"]
    return collection(*features), homes


@pytest.mark.skipif(not FILES, reason="the Glasgow data is not in the shared data directory")
def test_glasgow_summer_homes_open_no_case(database_url, db, ingest, publisher, api_url, token_for, mqtt_broker, uid):
    text, homes = _registry(uid)
    with connect(database_url) as conn:
        registry.load(conn, parse_registry(text), text=text)
    ingest()
    expected: dict[str, int] = {}
    windows = []
    messages = []
    for path in FILES:
        dev = f"{glasgow_device_id(path)}-{uid}"
        rows = glasgow_file_messages(path)
        entries = [(m.ts, m.values) for m in rows]
        messages += [
            (readings_topic(dev), payload_of(entries[i : i + PER_MESSAGE])) for i in range(0, len(entries), PER_MESSAGE)
        ]
        expected[dev] = len({m.ts for m in rows if "relative_humidity" in m.values})
        windows.append((dev, rows[0].ts, rows[-1].ts))
    publisher.publish_many(messages)

    def stored() -> bool:
        got = dict(
            db.execute(
                """SELECT s.device_id, count(*) FROM series s JOIN readings r ON r.series_id = s.id
                   WHERE s.device_id = ANY(%s) AND s.metric = 'relative_humidity' GROUP BY 1""",
                (list(expected),),
            ).fetchall()
        )
        return got == expected

    wait_until(stored, timeout=40)

    # Judge the homes at noon on each day of the recordings, as the scheduler would have then.
    settings = Settings(database_url=database_url, mqtt_url=mqtt_broker.url, mqtt_protocol=mqtt_broker.protocol)
    pool = open_pool(database_url, max_size=2)
    pub = AlertPublisher(mqtt_broker.url, protocol=mqtt_broker.protocol, prefix="placewatch/v1")
    evaluator = DampEvaluator(settings)
    day = datetime(2023, 8, 7, 12, tzinfo=UTC)
    try:
        while day <= datetime(2023, 9, 1, 12, tzinfo=UTC):
            ctx = AlertContext(settings=settings, pool=pool, publisher=pub, now=lambda day=day: day)
            evaluator.on_late(ctx, windows)
            day += timedelta(days=1)
    finally:
        pub.close()
        pool.close()

    home_ids = sorted(set(homes.values()))
    levels = db.execute(
        """SELECT home_id, array_agg(level ORDER BY assessed_at) FROM damp_assessments
           WHERE home_id = ANY(%s) GROUP BY 1""",
        (home_ids,),
    ).fetchall()
    assert {h for h, _ in levels} == set(home_ids)  # every home was judged
    assert all("red" not in seen for _, seen in levels)
    longest = f"glasgow-home-BL007-56-{uid}"
    assert "green" in dict(levels)[longest]  # 25 days of readings: judged, and dry enough
    assert set(dict(levels)[f"glasgow-home-BL007-14-{uid}"]) == {"insufficient_data"}  # a day and a half only
    admin = token_for("admin")
    for hid in home_ids:
        assert httpx.get(f"{api_url}/api/v1/damp/cases", headers=admin, params={"home_id": hid}).json() == []
    officer = token_for("officer", patch=f"glasgow-{uid}")
    home = httpx.get(f"{api_url}/api/v1/homes/{quote(longest, safe='')}", headers=officer).json()
    assert home["damp"]["level"] == "green"
    assert home["damp"]["outdoor_source"] == "typical_month"
    assert any("heating season" in n for n in home["damp"]["notes"])
    assert home["sensors"][0]["room"] == "unknown"
