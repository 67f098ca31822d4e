"""`placewatch registry load FILE --prune [--dry-run]` and PUT /api/v1/registry?prune=&dry_run=: what a newer
file no longer lists goes (with what it would orphan said first), the rest stays, a bad file is still refused
whole. Runs on a database of its own: a prune removes everything another test loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.security import hash_password
from core.model import Reading
from store import users
from store.db import connect
from store.migrate import engine, migrate
from store.writer import Batch, Writer
from tests.conftest import start_api
from tests.helpers import collection, home, route, sensor, station
from tests.services import ROOT, fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_db() -> Iterator[str]:
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn)
        yield dsn


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "placewatch.cli", "registry", "load", *args],
        cwd=ROOT,
        env={**os.environ, "PLACEWATCH_DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ids(dsn: str, sql: str) -> list[str]:
    with connect(dsn, autocommit=True) as conn:
        return sorted(r[0] for r in conn.execute(sql))


FIRST = collection(
    station("st-keep", -1.90, 52.48),
    station("st-old", -1.95, 52.47),
    route("R-keep", ["st-keep"]),
    route("R-old", ["st-old"]),
    home("h-keep"),
    home("h-old"),
    sensor("s-keep", "h-keep"),
    sensor("s-old", "h-old"),
)
NEWER = collection(
    station("st-keep", -1.90, 52.48), route("R-keep", ["st-keep"]), home("h-keep"), sensor("s-keep", "h-keep")
)


def test_prune_dry_run_says_what_would_go_then_prune_removes_it(own_db, tmp_path):
    first, newer = tmp_path / "first.geojson", tmp_path / "newer.geojson"
    first.write_text(FIRST)
    newer.write_text(NEWER)
    assert _cli(own_db, str(first)).returncode == 0
    now = datetime.now(UTC)
    with connect(own_db, autocommit=True) as conn:
        Writer(conn, engine=engine(conn)).write(
            Batch(
                readings=[
                    Reading("st-old", "road_surface_temperature", now - timedelta(minutes=m), 1.0) for m in (0, 10)
                ],
                seen={"st-old": now},
            )
        )
        users.add_user(conn, name="tenant-old", password_hash=hash_password("x" * 12), role="tenant", home_id="h-old")

    dry = _cli(own_db, str(newer), "--prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    assert "dry run: nothing changed" in out
    assert "would remove 1 routes: R-old" in out
    assert "would remove 2 devices: s-old, st-old" in out
    assert "would remove 1 homes: h-old" in out
    assert "user 'tenant-old' (tenant) is linked to removed home" in out
    assert "2 reading(s) of removed devices go with them" in out
    # Nothing changed.
    assert _ids(own_db, "SELECT id FROM routes") == ["R-keep", "R-old"]
    assert _ids(own_db, "SELECT id FROM devices") == ["s-keep", "s-old", "st-keep", "st-old"]

    # Without --prune the newer file removes nothing (the old behaviour).
    plain = _cli(own_db, str(newer))
    assert plain.returncode == 0 and "remove" not in plain.stdout
    assert _ids(own_db, "SELECT id FROM routes") == ["R-keep", "R-old"]

    done = _cli(own_db, str(newer), "--prune")
    assert done.returncode == 0, done.stderr
    assert "removed 1 routes: R-old" in done.stdout
    assert _ids(own_db, "SELECT id FROM routes") == ["R-keep"]
    assert _ids(own_db, "SELECT id FROM devices") == ["s-keep", "st-keep"]
    assert _ids(own_db, "SELECT id FROM homes") == ["h-keep"]
    with connect(own_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM series WHERE device_id = 'st-old'").fetchone()[0] == 0
    # Idempotent: the same prune again changes nothing.
    again = _cli(own_db, str(newer), "--prune")
    assert again.returncode == 0 and "0 changes" in again.stdout and "remove" not in again.stdout


def test_a_prune_that_would_leave_a_route_without_its_station_is_refused_whole_with_the_line(own_db, tmp_path):
    (tmp_path / "base.geojson").write_text(NEWER)
    assert _cli(own_db, str(tmp_path / "base.geojson")).returncode == 0
    # The route still names st-keep, which this file no longer lists: with --prune it would dangle.
    text = collection(route("R-keep", ["st-keep"]), home("h-keep"))
    (tmp_path / "bad.geojson").write_text(text)
    r = _cli(own_db, str(tmp_path / "bad.geojson"), "--prune")
    assert r.returncode == 1
    assert "refused" in r.stderr and "line " in r.stderr and "st-keep" in r.stderr
    assert _ids(own_db, "SELECT id FROM devices WHERE kind = 'road_station'") == ["st-keep"]


def test_far_features_are_warned_about_but_loaded(own_db, tmp_path):
    text = collection(
        station("st-keep", -1.90, 52.48),
        station("st-b", -1.91, 52.47),
        station("st-c", -1.92, 52.49),
        station("st-swapped", 52.46, -1.93),
        route("R-keep", ["st-keep"]),
        home("h-keep"),
        sensor("s-keep", "h-keep"),
    )
    (tmp_path / "far.geojson").write_text(text)
    r = _cli(own_db, str(tmp_path / "far.geojson"))
    assert r.returncode == 0
    assert "warning: line" in r.stderr and "road_station 'st-swapped'" in r.stderr and "swapped" in r.stderr
    assert "st-swapped" in _ids(own_db, "SELECT id FROM devices")


def test_the_api_takes_prune_and_dry_run_as_query_parameters(own_db, mqtt_broker):
    proc, url = start_api(own_db, mqtt_broker)
    try:
        with connect(own_db, autocommit=True) as conn:
            users.add_user(conn, name="prune-admin", password_hash=hash_password("a-long-password"), role="admin")
        tok = httpx.post(url + "/api/v1/auth/token", data={"username": "prune-admin", "password": "a-long-password"})
        headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        base = collection(station("st-keep", -1.90, 52.48), station("st-x", -1.91, 52.47), route("R-keep", ["st-keep"]))
        assert httpx.put(url + "/api/v1/registry", content=base, headers=headers).status_code == 200
        smaller = collection(station("st-keep", -1.90, 52.48), route("R-keep", ["st-keep"]))
        dry = httpx.put(url + "/api/v1/registry?prune=true&dry_run=true", content=smaller, headers=headers).json()
        assert dry["dry_run"] is True and "st-x" in dry["removed"]["devices"]
        assert "st-x" in _ids(own_db, "SELECT id FROM devices")
        done = httpx.put(url + "/api/v1/registry?prune=true", content=smaller, headers=headers).json()
        assert done["dry_run"] is False and "st-x" in done["removed"]["devices"]
        assert "st-x" not in _ids(own_db, "SELECT id FROM devices")
        swapped = collection(
            station("st-keep", -1.90, 52.48),
            station("st-y", -1.91, 52.47),
            station("st-z", -1.92, 52.49),
            station("st-w", 52.5, -1.9),
            route("R-keep", ["st-keep"]),
        )
        warned = httpx.put(url + "/api/v1/registry", content=swapped, headers=headers).json()
        assert [w["id"] for w in warned["warnings"]] == ["st-w"] and warned["warnings"][0]["line"] > 1
    finally:
        proc.stop()
