"""The COPY writer against a real PostgreSQL: duplicates never double rows or rollups, on either path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.model import Reading
from store.db import connect
from store.migrate import engine
from store.writer import Batch, Writer
from tests.helpers import load, station

pytestmark = pytest.mark.integration
T0 = datetime(2026, 2, 1, 6, 0, tzinfo=UTC)


def _rows(dev: str, minutes: range, value: float = 1.0) -> list[Reading]:
    return [Reading(dev, "air_temperature", T0 + timedelta(minutes=m), value + m, None) for m in minutes]


def test_redelivered_and_in_batch_duplicates_are_stored_once_with_correct_rollups(database_url, db, uid):
    dev = f"w-{uid}"
    load(database_url, station(dev))
    with connect(database_url, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn))
        first = w.write(Batch(readings=_rows(dev, range(0, 30))))  # fast path
        assert (first.inserted, first.duplicates) == (30, 0)
        again = w.write(Batch(readings=_rows(dev, range(20, 90))))  # overlaps: the conflict path
        assert (again.inserted, again.duplicates) == (60, 10)
        inner = w.write(Batch(readings=_rows(dev, range(90, 95)) + _rows(dev, range(90, 95))))  # duplicates inside
        assert (inner.inserted, inner.duplicates) == (5, 5)
    total = db.execute(
        "SELECT count(*), sum(value) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s", (dev,)
    ).fetchone()
    assert total[0] == 95 and total[1] == pytest.approx(sum(1.0 + m for m in range(95)))
    if engine(db) == "native":
        hourly = db.execute(
            """SELECT h.hour, h.n, h.total, h.vmin, h.vmax FROM readings_hourly h JOIN series s ON s.id = h.series_id
               WHERE s.device_id = %s ORDER BY h.hour""",
            (dev,),
        ).fetchall()
        assert [(n, vmin, vmax) for _, n, _, vmin, vmax in hourly] == [(60, 1.0, 60.0), (35, 61.0, 95.0)]
        assert hourly[0][2] == pytest.approx(sum(1.0 + m for m in range(60)))
    last = db.execute("SELECT last_ts, last_value FROM series_latest WHERE device_id = %s", (dev,)).fetchone()
    assert last == (T0 + timedelta(minutes=94), 95.0)


def test_a_batch_that_waits_too_long_for_a_lock_fails_whole_and_is_written_once_the_lock_is_gone(database_url, db, uid):
    """The writer's lock_timeout: a batch blocked by a lock on readings (a chunk being compressed, say) fails with
    LockNotAvailable, which ingest treats as an outage (messages kept unacknowledged, retried), and nothing of it
    is kept; once the lock is released the same batch is written."""
    import time

    import psycopg

    dev = f"wr-lock-{uid}"
    load(database_url, station(dev))
    batch = Batch(readings=_rows(dev, range(3)), seen={dev: T0})
    with connect(database_url, autocommit=True) as conn, connect(database_url) as holder:
        w = Writer(conn, engine=engine(conn), lock_timeout_s=0.3)
        # (released by the server after 15 s should the writer wait for it regardless: a failure, not a hang)
        holder.execute("SET idle_in_transaction_session_timeout = '15s'")
        holder.execute("LOCK TABLE readings IN SHARE ROW EXCLUSIVE MODE")  # conflicts with any insert
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable) as err:
            w.write(batch)
        assert isinstance(err.value, psycopg.OperationalError)  # ingest's outage path: retry, never dead-letter
        assert time.monotonic() - started < 10
        holder.rollback()
        stored = "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = %s"
        assert db.execute(stored, (dev,)).fetchone()[0] == 0
        assert w.write(batch).inserted == 3
        assert db.execute(stored, (dev,)).fetchone()[0] == 3


def _us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_fast_lane_rows_and_decoded_readings_are_stored_alike_in_one_batch(database_url, db, uid):
    dev = f"wf-{uid}"
    load(database_url, station(dev))
    odd = T0 + timedelta(minutes=3, microseconds=123457)  # sub-millisecond times survive both paths
    fast = [(dev, [("air_temperature", _us(T0 + timedelta(minutes=m)), -2.5 + m) for m in range(3)])]
    fast.append((dev, [("air_temperature", _us(odd), 7.25), ("road_surface_temperature", _us(odd), -0.5)]))
    decoded = [
        Reading(dev, "surface_state", T0, None, "icy"),
        Reading(dev, "dew_point", T0 + timedelta(minutes=10), -4.0, None),
    ]
    with connect(database_url, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn))
        first = w.write(Batch(readings=decoded, fast=fast))
        assert (first.inserted, first.duplicates) == (7, 0) and first.devices == (dev,)
        # Redelivered, with one new row: the conflict path keeps exactly one of each.
        fast2 = [*fast, (dev, [("air_temperature", _us(T0 + timedelta(minutes=50)), 1.0)])]
        again = w.write(Batch(readings=decoded, fast=fast2))
        assert (again.inserted, again.duplicates) == (1, 7)
    rows = db.execute(
        """SELECT s.metric, r.ts, r.value, r.label FROM readings r JOIN series s ON s.id = r.series_id
           WHERE s.device_id = %s ORDER BY s.metric, r.ts""",
        (dev,),
    ).fetchall()
    assert rows == [
        ("air_temperature", T0, -2.5, None),
        ("air_temperature", T0 + timedelta(minutes=1), -1.5, None),
        ("air_temperature", T0 + timedelta(minutes=2), -0.5, None),
        ("air_temperature", odd, 7.25, None),
        ("air_temperature", T0 + timedelta(minutes=50), 1.0, None),
        ("dew_point", T0 + timedelta(minutes=10), -4.0, None),
        ("road_surface_temperature", odd, -0.5, None),
        ("surface_state", T0, None, "icy"),
    ]
    latest = dict(db.execute("SELECT metric, last_value FROM series_latest WHERE device_id = %s", (dev,)).fetchall())
    assert latest == {
        "air_temperature": 1.0,
        "dew_point": -4.0,
        "road_surface_temperature": -0.5,
        "surface_state": None,
    }


def test_late_windows_and_latest_values_for_forward_overlapping_and_older_batches(database_url, db, uid):
    # One device per case; the age rule is set far off so only the order of times decides what is late.
    ahead, among, behind, mixed = (f"wl-{c}-{uid}" for c in "abcd")
    for dev in (ahead, among, behind, mixed):
        load(database_url, station(dev))

    def at(dev: str, *minutes: int, metric: str = "air_temperature") -> tuple[str, list[tuple[str, int, float]]]:
        return dev, [(metric, _us(T0 + timedelta(minutes=m)), float(m)) for m in minutes]

    with connect(database_url, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn), late_after_s=10**9)
        first = w.write(
            Batch(fast=[at(ahead, 10), at(among, 10), at(behind, 10), at(mixed, 10), at(mixed, 10, metric="dew_point")])
        )
        assert first.devices == tuple(sorted((ahead, among, behind, mixed)))
        second = w.write(
            Batch(
                fast=[
                    at(ahead, 20),  # after everything stored: not late
                    at(among, 5, 15),  # one row before the stored latest, one after: late, latest moves
                    at(behind, 3),  # before the stored latest: late, latest stays
                    at(mixed, 30),
                    at(mixed, 1, metric="dew_point"),  # one series forward, one behind: the device's window spans both
                ]
            )
        )
        assert second.inserted == 6 and second.devices == tuple(sorted((ahead, among, behind, mixed)))
    windows = dict(
        db.execute(
            "SELECT device_id, array_agg((start_ts, end_ts)::text) FROM late_windows WHERE device_id = ANY(%s)"
            " GROUP BY device_id",
            ([ahead, among, behind, mixed],),
        ).fetchall()
    )

    def span(a: int, b: int) -> list[str]:
        return [
            db.execute(
                "SELECT (%s::timestamptz, %s::timestamptz)::text",
                (T0 + timedelta(minutes=a), T0 + timedelta(minutes=b)),
            ).fetchone()[0]
        ]

    assert windows == {among: span(5, 15), behind: span(3, 3), mixed: span(1, 30)}
    latest = dict(
        db.execute(
            "SELECT device_id || '/' || metric, last_value FROM series_latest WHERE device_id = ANY(%s)",
            ([ahead, among, behind, mixed],),
        ).fetchall()
    )
    assert latest == {
        f"{ahead}/air_temperature": 20.0,
        f"{among}/air_temperature": 15.0,
        f"{behind}/air_temperature": 10.0,
        f"{mixed}/air_temperature": 30.0,
        f"{mixed}/dew_point": 10.0,
    }


@pytest.mark.parametrize(("seed", "stream"), [(1, False), (2, False), (3, False), (4, True), (5, True)])
def test_hourly_rollup_latest_values_and_late_windows_match_the_raw_readings_over_random_batches(
    database_url, db, uid, seed, stream
):
    """Batches in any order (a backlog spanning hours, late and out-of-order readings, redeliveries, hours that
    only labels touched): after every batch, readings_hourly says what the stored readings say (on plain
    PostgreSQL these hours are before the rollup's watermark: the writer adds them to readings_hourly_closed,
    migration 0027; tests/integration/test_rollup.py covers both sides of it), each series' latest value is its
    newest reading, a device's batch is marked late exactly when one of its new readings is at or before what
    its series held, and device_seen is the newest arrival. `stream`: each device at most once a batch, as on a
    live stream (one state row update per device and batch)."""
    import random

    rng = random.Random(seed)
    devs = [f"wr{seed}-{i}-{uid}" for i in range(6 if stream else 3)]
    for dev in devs:
        load(database_url, station(dev))
    metrics = ("air_temperature", "road_surface_temperature")
    stored: dict[tuple[str, str], set[int]] = {}
    last: dict[tuple[str, str], int] = {}
    arrived = T0 + timedelta(days=400)
    with connect(database_url, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn), late_after_s=10**9)
        for b in range(25):
            fast: list[tuple[str, list[tuple[str, int, float]]]] = []
            labels: list[Reading] = []
            picks = rng.sample(devs, rng.randint(1, len(devs))) if stream else [rng.choice(devs) for _ in range(12)]
            for dev in picks[: len(picks) if stream else rng.randint(1, 12)]:
                # Mostly forward in time, sometimes hours back; minutes repeat, so some rows are redelivered.
                minute = rng.randint(0, 60 * 6) if rng.random() < 0.3 else min(360, b * 15 + rng.randint(0, 20))
                ts = T0 + timedelta(minutes=minute)
                if rng.random() < 0.15:
                    labels.append(Reading(dev, "surface_state", ts, None, rng.choice(["dry", "wet"])))
                else:
                    fast.append((dev, [(m, _us(ts), float(rng.randint(-50, 50)) / 4) for m in metrics]))
            arrived += timedelta(seconds=rng.randint(1, 60))
            devices = {d for d, _ in fast} | {r.device_id for r in labels}
            # What is new, and late, by the rules, from what is stored so far.
            batch_rows: dict[tuple[str, str], set[int]] = {}
            for dev, rows in fast:
                for m, us, _ in rows:
                    batch_rows.setdefault((dev, m), set()).add(us)
            for r in labels:
                batch_rows.setdefault((r.device_id, r.metric), set()).add(_us(r.ts))
            late_devices = set()
            for key, times in batch_rows.items():
                new = times - stored.get(key, set())
                if new and key in last and min(new) <= last[key]:
                    late_devices.add(key[0])
            before = db.execute("SELECT coalesce(max(id), 0) FROM late_windows").fetchone()[0]
            w.write(Batch(readings=labels, fast=fast, seen={d: arrived for d in devices}))
            for key, times in batch_rows.items():
                stored.setdefault(key, set()).update(times)
                last[key] = max(stored[key])
            marked = {
                r[0]
                for r in db.execute(
                    "SELECT device_id FROM late_windows WHERE id > %s AND device_id = ANY(%s)", (before, devs)
                )
            }
            assert marked == late_devices, f"batch {b}"
            # (TimescaleDB's aggregate also has rows for hours of labels only, with n = 0: readers skip them)
            hourly = db.execute(
                """SELECT s.device_id, s.metric, h.hour, h.n, h.total, h.vmin, h.vmax
                   FROM readings_hourly h JOIN series s ON s.id = h.series_id
                   WHERE s.device_id = ANY(%s) AND h.n > 0 ORDER BY 1, 2, 3""",
                (devs,),
            ).fetchall()
            raw = db.execute(
                """SELECT s.device_id, s.metric, date_trunc('hour', r.ts), count(*), sum(r.value), min(r.value),
                          max(r.value)
                   FROM readings r JOIN series s ON s.id = r.series_id
                   WHERE s.device_id = ANY(%s) AND r.value IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
                (devs,),
            ).fetchall()
            assert [h[:4] for h in hourly] == [r[:4] for r in raw], f"batch {b}"
            for h, r in zip(hourly, raw, strict=True):
                assert h[4] == pytest.approx(r[4]) and (h[5], h[6]) == (r[5], r[6])
            newest = db.execute(
                """SELECT s.device_id, s.metric, s.last_ts, s.last_value, s.last_label,
                          r.ts, r.value, r.label
                   FROM series_latest s JOIN LATERAL (SELECT ts, value, label FROM readings WHERE series_id = s.id
                                                      ORDER BY ts DESC LIMIT 1) r ON true
                   WHERE s.device_id = ANY(%s)""",
                (devs,),
            ).fetchall()
            for row in newest:
                assert row[2:5] == row[5:8], f"batch {b}: {row}"
            seen = db.execute("SELECT id, last_seen FROM device_seen WHERE id = ANY(%s)", (list(devices),)).fetchall()
            assert {d: t for d, t in seen} == {d: arrived for d in devices}


def test_latest_times_are_written_as_postgresql_writes_them_in_json(db):
    """device_state.latest is what the API shows (migration 0026): its times must read as PostgreSQL's own JSON
    of a timestamptz did when the API built it from the series rows."""
    import random

    from store.writer import _iso

    rng = random.Random(7)
    times = [0, 1, 999_999, 1_000_000, 1_705_300_200_000_000, 1_705_300_200_500_000, 1_705_300_200_000_100]
    times += [rng.randrange(0, 4_102_444_800_000_000) for _ in range(200)]
    for us in times:
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
        assert _iso(us) == db.execute("SELECT to_jsonb(%s::timestamptz) #>> '{}'", (ts,)).fetchone()[0], us


@pytest.mark.parametrize("seed", range(4))
def test_a_live_stream_batch_is_packed_in_one_pass_exactly_as_the_general_path_packs_it(database_url, db, uid, seed):
    """Writer._live (a batch where each device sends one message, of distinct metrics at one time) must give the
    same COPY data as the general path (_pack, _states, _device_rows): readings, device rows in id order, earliest
    time; and must leave any other batch to the general path."""
    import random

    from store.writer import _device_rows

    rng = random.Random(seed)
    devs = [f"lv{seed}-{i}-{uid}" for i in range(40)]
    for dev in devs:
        load(database_url, station(dev))
    metrics = ("air_temperature", "road_surface_temperature", "relative_humidity", "battery")
    with connect(database_url, autocommit=True) as conn:
        w = Writer(conn, engine=engine(conn))
        for b in range(6):
            fast: list[tuple[str, list[tuple[str, int, float]]]] = []
            for dev in rng.sample(devs, rng.randint(1, len(devs))):
                ts = _us(T0 + timedelta(minutes=b * 10 + rng.randint(0, 9))) + rng.choice([0, 0, 500_000, 123])
                chosen = rng.sample(metrics, rng.randint(1, len(metrics)))
                fast.append((dev, [(m, ts, float(rng.randint(-400, 400)) / 8) for m in chosen]))
            batch = Batch(fast=fast)
            pending: dict[tuple[str, str], int] = {}
            live = w._live(batch.fast, pending)
            assert live is not None
            packed, devices, device_data, first = live
            states, general_first = w._states(batch, pending, None)
            general = w._pack(batch, dict(pending))
            # The same header, rows (38 bytes each; in another order where series ids were made on the way), trailer.
            assert packed[:19] == general[:19] and packed[-2:] == general[-2:] and len(packed) == len(general)
            assert sorted(packed[i : i + 38] for i in range(19, len(packed) - 2, 38)) == sorted(
                general[i : i + 38] for i in range(19, len(general) - 2, 38)
            )
            assert (devices, device_data, first) == (sorted(states), _device_rows(states), general_first)
            w.write(batch)  # series made: the next batches find them cached
        # Not a live stream's batch: the general path takes it.
        ts = _us(T0)
        assert w._live([(devs[0], [("battery", ts, 1.0)]), (devs[0], [("battery", ts + 1, 2.0)])], {}) is None
        assert w._live([(devs[0], [("battery", ts, 1.0), ("battery", ts + 1, 2.0)])], {}) is None
        assert w._live([(devs[0], [("battery", ts, 1.0), ("air_temperature", ts + 1, 2.0)])], {}) is None
