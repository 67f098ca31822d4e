"""The damp evaluator against real PostgreSQL, from the hourly rollup on: every hourly mean lands in its series' row
and hour (store.damp.hourly_inputs), whatever the order the server gives the rows in, with gaps, empty hours, rows
outside the window and outdoor feeds shared by many homes; and a sweep in worker processes, which publishes each
chunk's alerts while the next are judged, leaves and publishes what a sweep in one process does."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from alerts.context import AlertContext
from alerts.damp import DampEvaluator
from placewatch.settings import Settings
from store import damp as damp_store
from store import rollup
from store.db import open_pool
from tests.alert_retry import away_broker

pytestmark = pytest.mark.integration

END = datetime(2027, 1, 20, 10, 0, tzinfo=UTC)
START = END - timedelta(days=30)
HOURS = 30 * 24


@pytest.fixture
def native(db):
    """Skip on TimescaleDB, where the rollup is a continuous aggregate that cannot be written directly."""
    row = db.execute("SELECT value FROM placewatch_meta WHERE key = 'engine'").fetchone()
    if row is None or row[0] != "native":
        pytest.skip("the hourly rollup is written directly only on plain PostgreSQL")
    # The rows written straight into readings_hourly_closed are read there when their hours are before the
    # rollup's watermark: moved past END as the scheduler would have by then (raw readings on the way are closed).
    rollup.advance(db, END + timedelta(hours=2), lag=timedelta(0))
    return db


def _series(db, device: str, metric: str) -> int:
    row = db.execute("INSERT INTO series (device_id, metric) VALUES (%s, %s) RETURNING id", (device, metric)).fetchone()
    return int(row[0])


def _rollup(db, sid: int, rows: list[tuple[int, int, float | None]]) -> None:
    """Hourly rows (hour index from START, n, total) for a series; hours outside 0..HOURS-1 too."""
    with db.cursor().copy("COPY readings_hourly_closed (series_id, hour, n, total, vmin, vmax) FROM STDIN") as copy:
        for h, n, total in rows:
            copy.write_row((sid, START + timedelta(hours=h), n, total, total, total))


def test_hourly_inputs_put_every_mean_in_its_series_and_hour(native, uid) -> None:
    db = native
    r = random.Random(uid)
    station = f"st-{uid}"
    db.execute("INSERT INTO devices (id, kind) VALUES (%s, 'road_station')", (station,))
    outdoor = _series(db, station, "air_temperature")
    homes = [f"h-{uid}-{i:02d}" for i in range(12)]
    expected: dict[int, np.ndarray] = {}
    want: dict[int, list[tuple[int, int, float | None]]] = {}
    for i, home in enumerate(homes):
        db.execute(
            "INSERT INTO homes (id, address, patch, outdoor) VALUES (%s, %s, 'p1', %s)",
            (home, f"{i} Test Street", station),
        )
        for room in ("bedroom", "kitchen")[: 1 + i % 2]:
            dev = f"{home}-{room}"
            db.execute(
                "INSERT INTO devices (id, kind, home_id, room) VALUES (%s, 'home_sensor', %s, %s)", (dev, home, room)
            )
            for metric in ("temperature", "relative_humidity"):
                sid = _series(db, dev, metric)
                values = np.full(HOURS, np.nan)
                rows: list[tuple[int, int, float | None]] = []
                for h in range(-30, HOURS + 10):
                    if r.random() < (0.9 if i % 3 else 0.02):  # some series nearly empty, one row or none
                        n = r.choice((1, 3, 12, 0))
                        total = None if r.random() < 0.05 else r.uniform(-5.0, 95.0) * max(n, 1)
                        rows.append((h, n, total))
                        if 0 <= h < HOURS and n > 0 and total is not None:
                            values[h] = total / n
                r.shuffle(rows)  # the table's order is not the hours' order
                want[sid] = rows
                expected[sid] = values
    te = np.full(HOURS, np.nan)
    station_rows = [(h, 6, 6 * (3.0 + 0.01 * h)) for h in range(HOURS) if h % 17]
    for h, n, total in station_rows:
        te[h] = total / n
    expected[outdoor] = te
    want[outdoor] = station_rows
    for sid, rows in r.sample(sorted(want.items()), len(want)):
        _rollup(db, sid, rows)

    known: dict[int, np.ndarray] = {}
    for part in (homes[:5], homes[5:]):  # two chunks of one sweep: the outdoor feed is read once
        inputs = damp_store.hourly_inputs(db, part, START, END, outdoor_known=known)
        assert sorted(inputs.sensors) == sorted(part)
        for home in part:
            assert inputs.outdoor[home].series_id == outdoor
            got = inputs.series(outdoor)
            assert got is not None
            np.testing.assert_array_equal(got, te)
            for sensor in inputs.sensors[home]:
                for sid in (sensor.temperature_series, sensor.humidity_series):
                    got = inputs.series(sid)
                    assert got is not None
                    np.testing.assert_array_equal(got, expected[sid])
    assert outdoor in known
    assert inputs.rows == sum(
        int(np.count_nonzero(~np.isnan(expected[s.temperature_series])))
        + int(np.count_nonzero(~np.isnan(expected[s.humidity_series])))
        for home in homes[5:]
        for s in inputs.sensors[home]
        if s.temperature_series is not None and s.humidity_series is not None
    )


class _Recorder:
    """Stands in for the alert publisher: keeps what would be published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any] | None]] = []

    def publish(self, kind: str, ident: str, body: dict[str, Any] | None, *, timeout: float = 10.0) -> bool:
        self.sent.append((ident, body))
        return True


def _homes_with_rollup(db, prefix: str, station: str, profiles: list[tuple[float, float]]) -> list[str]:
    """Homes (one bedroom sensor each) with 30 days of hourly means at (temperature, RH) and a daily swing."""
    homes = []
    for i, (t, rh) in enumerate(profiles):
        home = f"{prefix}-{i}"
        db.execute(
            "INSERT INTO homes (id, address, patch, outdoor) VALUES (%s, %s, %s, %s)",
            (home, f"{i} Parallel Road", f"patch-{prefix}", station),
        )
        dev = f"{home}-bedroom"
        db.execute(
            "INSERT INTO devices (id, kind, home_id, room) VALUES (%s, 'home_sensor', %s, 'bedroom')", (dev, home)
        )
        for metric, base, swing in (("temperature", t, 0.8), ("relative_humidity", rh, 4.0)):
            sid = _series(db, dev, metric)
            _rollup(db, sid, [(h, 12, 12 * (base + swing * ((h * 7) % 24 - 12) / 12)) for h in range(HOURS) if h % 29])
        homes.append(home)
    return homes


def _open_overdue_case(db, home: str) -> None:
    """An open case whose investigation was due a week before the sweep."""
    opened = START
    db.execute(
        """INSERT INTO damp_cases (home_id, level, status, opened_at, aware_at, evidence, investigate_by)
           VALUES (%s, 'red', 'open', %s, %s, '{}', %s)""",
        (home, opened, opened, END - timedelta(days=7)),
    )


def test_a_parallel_sweep_judges_and_publishes_what_a_serial_one_does(native, database_url, uid) -> None:
    db = native
    now = END + timedelta(minutes=10)
    station = f"st-par-{uid}"
    db.execute("INSERT INTO devices (id, kind) VALUES (%s, 'road_station')", (station,))
    _rollup(db, _series(db, station, "air_temperature"), [(h, 6, 6 * (4.0 + (h % 24) / 8)) for h in range(HOURS)])
    profiles = [(16.0, 84.0), (21.0, 45.0), (19.0, 63.0), (15.5, 50.0), (17.0, 78.0), (20.5, 70.0), (16.5, 88.0)]
    settings = Settings(database_url=database_url)
    pool = open_pool(database_url, max_size=2)
    results = {}
    try:
        for mode, workers in (("serial", 1), ("parallel", 2)):
            prefix = f"{mode}-{uid}"
            homes = _homes_with_rollup(db, prefix, station, profiles)
            _open_overdue_case(db, homes[0])  # held back until the escalation has flagged it
            recorder = _Recorder()
            ctx = AlertContext(settings=settings, pool=pool, publisher=recorder, now=lambda: now)  # type: ignore[arg-type]
            evaluator = DampEvaluator(settings, workers=workers, chunk_homes=2, housekeeping_s=0)
            if workers > 1:  # the fork server was started with the evaluator, not by its first sweep
                evaluator.wait_ready(120)
                assert evaluator._warming is not None and not evaluator._warming.is_alive()
            evaluator.sweep(ctx)
            published = [(ident, body) for ident, body in recorder.sent if ident.startswith(prefix)]
            assert len({ident for ident, _ in published}) == len(published)  # each home's alert once
            assessments = db.execute(
                """SELECT a.home_id, a.level, a.raw_level, a.reasons, a.evidence, s.level, s.signature
                   FROM damp_assessments a JOIN damp_home_state s ON s.assessment_id = a.id
                   WHERE a.home_id = ANY(%s) ORDER BY a.home_id""",
                (homes,),
            ).fetchall()
            cases = db.execute(
                """SELECT home_id, level, status, investigate_by, overdue_steps, evidence FROM damp_cases
                   WHERE home_id = ANY(%s) ORDER BY home_id""",
                (homes,),
            ).fetchall()
            events = db.execute(
                """SELECT c.home_id, e.action, e.note FROM damp_case_events e JOIN damp_cases c ON c.id = e.case_id
                   WHERE c.home_id = ANY(%s) ORDER BY c.home_id, e.id""",
                (homes,),
            ).fetchall()
            for _, body in published:
                if body is not None and body["case"] is not None:
                    body["case"].pop("id")
            held = dict(published)[homes[0]]
            assert held is not None and held["case"]["escalated"] is True  # published after the escalation
            results[mode] = json.loads(
                json.dumps([sorted(published, key=lambda p: p[0]), assessments, cases, events], default=str).replace(
                    prefix, "HOME"
                )
            )
    finally:
        pool.close()
    assert results["parallel"][1] and results["parallel"][2]  # judged, with cases opened
    assert results["parallel"] == results["serial"]


def test_a_damp_alert_not_published_while_the_broker_is_away_is_published_after_a_restart(
    native, database_url, uid, tmp_path
) -> None:
    """What the broker did not acknowledge stays pending in the store, not in the evaluator's memory: an evaluator
    started afresh (a restart, or another process taking the lead) publishes it though nothing changed."""
    db = native
    now = END + timedelta(minutes=10)
    station = f"st-retry-{uid}"
    db.execute("INSERT INTO devices (id, kind) VALUES (%s, 'road_station')", (station,))
    _rollup(db, _series(db, station, "air_temperature"), [(h, 6, 6 * (4.0 + (h % 24) / 8)) for h in range(HOURS)])
    damp, dry = _homes_with_rollup(db, f"retry-{uid}", station, [(16.0, 88.0), (21.0, 45.0)])
    with away_broker(database_url, tmp_path, now=lambda: now) as broker:
        broker.away()
        DampEvaluator(broker.settings, housekeeping_s=0).sweep(broker.ctx)  # judged; the alert cannot be published
        level = db.execute("SELECT level FROM damp_home_state WHERE home_id = %s", (damp,)).fetchone()[0]
        assert level in ("advice", "watch", "red")
        pending = damp_store.homes_to_publish(db)
        assert damp in pending, "the unpublished alert must stay pending"
        assert dry not in pending, "a home with no alert has nothing to publish"

        broker.back()
        DampEvaluator(broker.settings, housekeeping_s=0).on_readings(broker.ctx, [])  # afresh; nothing new to judge

        retained, body = broker.retained("damp", damp)
        assert retained
        assert body["home_id"] == damp and body["level"] == level
        assert damp not in damp_store.homes_to_publish(db), "published: not published again"
