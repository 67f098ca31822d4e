"""Plain PostgreSQL's hourly rollup around its watermark (store.rollup, migration 0027): whatever the order of
batches and moves, readings_hourly says what the raw readings say; a move waits for batches in flight."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.model import Reading
from store import rollup
from store.db import connect
from store.migrate import migrate
from store.writer import Batch, Writer
from tests.services import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.engine("native")]

H0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return (t - _UNIX) // timedelta(microseconds=1)


def _hourly(conn) -> tuple[list, list]:  # type: ignore[no-untyped-def]
    view = conn.execute(
        "SELECT series_id, hour, n, total, vmin, vmax FROM readings_hourly WHERE n > 0 ORDER BY 1, 2"
    ).fetchall()
    raw = conn.execute(
        """SELECT series_id, date_trunc('hour', ts), count(value), sum(value), min(value), max(value)
           FROM readings WHERE value IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"""
    ).fetchall()
    return view, raw


@pytest.fixture
def fresh():  # type: ignore[no-untyped-def]
    with fresh_database() as dsn:
        with connect(dsn, autocommit=True) as conn:
            migrate(conn, timescaledb="off")
            conn.execute("INSERT INTO devices (id, kind) SELECT 'r' || i, 'road_station' FROM generate_series(0, 3) i")
            conn.execute("UPDATE hourly_watermark SET wm = %s", (H0,))
        yield dsn


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_readings_hourly_matches_the_raw_readings_while_batches_and_moves_interleave(fresh, seed):
    rng = random.Random(seed)
    devs = [f"r{i}" for i in range(4)]
    moves = 0
    with connect(fresh, autocommit=True) as conn, connect(fresh, autocommit=True) as mover:
        w = Writer(conn, engine="native", late_after_s=10**9)
        for b in range(40):
            if rng.random() < 0.25:
                wm = rollup.watermark(mover)
                assert wm is not None
                now = wm + timedelta(hours=rng.choice([0, 1, 1, 2]), minutes=rng.randint(0, 59)) + rollup.LAG
                done = rollup.advance(mover, now)
                assert done.watermark == max(wm, (now - rollup.LAG).replace(minute=0, second=0, microsecond=0))
                moves += done.hours
            wm = rollup.watermark(mover)
            assert wm is not None
            fast = []
            labels = []
            for dev in rng.sample(devs, rng.randint(1, 4)):
                # Around the watermark: before it (late: added to the closed hours), after it (read from raw).
                ts = wm + timedelta(minutes=rng.randint(-150, 150))
                if rng.random() < 0.1:
                    labels.append(Reading(dev, "surface_state", ts, None, "wet"))
                else:
                    fast.append((dev, [("air_temperature", _us(ts), float(rng.randint(-40, 40)) / 4)]))
            w.write(Batch(fast=fast, readings=labels, seen={d: H0 for d, _ in fast}))
            if rng.random() < 0.2:  # a redelivery of the same batch: nothing counted twice
                w.write(Batch(fast=fast, readings=labels, seen={d: H0 for d, _ in fast}))
            view, raw = _hourly(conn)
            assert [v[:3] for v in view] == [r[:3] for r in raw], f"batch {b}"
            for v, r in zip(view, raw, strict=True):
                assert v[3] == pytest.approx(r[3]) and (v[4], v[5]) == (r[4], r[5])
    assert moves > 0


def test_a_move_waits_for_a_batch_in_flight_and_counts_its_readings_once(fresh):
    with connect(fresh, autocommit=True) as conn, connect(fresh, autocommit=True) as mover:
        w = Writer(conn, engine="native", late_after_s=10**9)
        ts = H0 + timedelta(minutes=20)
        # A batch in flight (a history import's transaction): it holds the rollup's lock shared.
        with conn.transaction():
            w.write(Batch(fast=[("r0", [("air_temperature", _us(ts), 1.5)])]))
            done = rollup.advance(mover, H0 + timedelta(hours=2), lock_timeout_s=0.2)
            assert done.waited_out and done.hours == 0 and done.watermark == H0
            # A move that waits for it goes on once the batch commits, and counts it.
            result: list[rollup.Moved] = []
            t = threading.Thread(target=lambda: result.append(rollup.advance(mover, H0 + timedelta(hours=2))))
            t.start()
            time.sleep(0.5)
            assert t.is_alive()
        t.join(10)
        assert result and result[0].hours == 1 and result[0].watermark == H0 + timedelta(hours=1)
        assert conn.execute("SELECT n, total FROM readings_hourly_closed").fetchall() == [(1, 1.5)]
        # A late reading of the closed hour is added to it by the writer.
        w.write(Batch(fast=[("r0", [("air_temperature", _us(ts + timedelta(minutes=1)), 2.5)])]))
        assert conn.execute("SELECT n, total FROM readings_hourly_closed").fetchall() == [(2, 4.0)]
        view, raw = _hourly(conn)
        assert view == raw


def test_a_move_that_stopped_half_way_is_finished_and_counts_every_reading_once(fresh):
    with connect(fresh, autocommit=True) as conn:
        w = Writer(conn, engine="native", late_after_s=10**9)
        w.write(Batch(fast=[("r1", [("air_temperature", _us(H0 + timedelta(minutes=5)), 1.0)])]))
        # Step 1 of a move done (wm_next named), then a crash: batches since add readings before wm_next to the
        # closed hours themselves, while readers still take those hours from the raw readings.
        conn.execute("UPDATE hourly_watermark SET wm_next = %s", (H0 + timedelta(hours=2),))
        w.write(Batch(fast=[("r1", [("air_temperature", _us(H0 + timedelta(minutes=70)), 3.0)])]))
        assert conn.execute("SELECT hour, n, total FROM readings_hourly_closed").fetchall() == [
            (H0 + timedelta(hours=1), 1, 3.0)
        ]
        view, raw = _hourly(conn)
        assert view == raw
        done = rollup.advance(conn, H0 + timedelta(hours=3), lag=timedelta(0))
        assert done.watermark == H0 + timedelta(hours=3) and done.hours == 3
        assert conn.execute("SELECT wm_next FROM hourly_watermark").fetchone() == (None,)
        view, raw = _hourly(conn)
        assert view == raw and len(view) == 2
        assert conn.execute("SELECT n FROM readings_hourly_closed ORDER BY hour").fetchall() == [(1,), (1,)]


def test_batches_committing_while_the_watermark_moves_are_each_counted_once(fresh):
    """A writer thread commits batches either side of the watermark while moves run: whichever step of a move a
    batch lands in, once the watermark has passed every hour the closed hours hold each reading once."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        rng = random.Random(11)
        try:
            with connect(fresh, autocommit=True) as conn:
                w = Writer(conn, engine="native", late_after_s=10**9)
                while not stop.is_set():
                    fast = [
                        (f"r{i}", [("air_temperature", _us(H0 + timedelta(minutes=rng.randint(-60, 420))), 1.0)])
                        for i in range(4)
                    ]
                    try:
                        w.write(Batch(fast=fast))
                    except Exception as exc:  # a duplicate time is stored once; anything else fails the test
                        errors.append(exc)
                        return
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    t = threading.Thread(target=write)
    t.start()
    try:
        with connect(fresh, autocommit=True) as mover:
            for k in range(1, 8):
                time.sleep(0.15)
                rollup.advance(mover, H0 + timedelta(hours=k), lag=timedelta(0))
    finally:
        stop.set()
        t.join(30)
    assert not errors
    with connect(fresh, autocommit=True) as conn:
        rollup.advance(conn, H0 + timedelta(hours=9), lag=timedelta(0))
        closed = conn.execute("SELECT series_id, hour, n FROM readings_hourly_closed ORDER BY 1, 2").fetchall()
        raw = conn.execute(
            "SELECT series_id, date_trunc('hour', ts), count(*) FROM readings GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        assert closed == raw and sum(r[2] for r in raw) > 100
