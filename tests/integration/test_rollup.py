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
