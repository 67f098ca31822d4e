"""The registry through `placewatch registry load`, and settings errors at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import collection, home, route, sensor, station
from tests.services import ROOT

pytestmark = pytest.mark.integration


def _cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "placewatch.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_loading_the_same_registry_twice_changes_nothing(database_url, db, uid, tmp_path):
    path = tmp_path / "reg.geojson"
    path.write_text(
        collection(
            station(f"rs-a-{uid}"),
            station(f"rs-b-{uid}"),
            route(f"R-{uid}", [f"rs-a-{uid}", f"rs-b-{uid}"]),
            home(f"H-{uid}"),
            sensor(f"hs-{uid}", f"H-{uid}", "kitchen"),
        )
    )
    env = {"PLACEWATCH_DATABASE_URL": database_url}
    first = _cli("registry", "load", str(path), env=env)
    assert first.returncode == 0, first.stderr
    assert "5 features" in first.stdout and "0 changes" not in first.stdout
    loads_before = db.execute("SELECT count(*) FROM registry_loads").fetchone()[0]
    second = _cli("registry", "load", str(path), env=env)
    assert second.returncode == 0 and "0 changes" in second.stdout
    assert db.execute("SELECT count(*) FROM registry_loads").fetchone()[0] == loads_before
    assert db.execute("SELECT count(*) FROM route_stations WHERE route_id = %s", (f"R-{uid}",)).fetchone()[0] == 2
    assert db.execute("SELECT room FROM devices WHERE id = %s", (f"hs-{uid}",)).fetchone()[0] == "kitchen"


def test_a_bad_registry_is_refused_whole_with_its_line(database_url, db, uid, tmp_path):
    good = station(f"ok-{uid}")
    bad = route(f"R-bad-{uid}", [f"nowhere-{uid}"])
    text = collection(good, bad)
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    r = _cli("registry", "load", str(path), env={"PLACEWATCH_DATABASE_URL": database_url})
    assert r.returncode == 1
    starts = [i for i, ln in enumerate(text.splitlines(), 1) if ln == "    {"]  # where each feature begins
    line = starts[1]
    assert f"line {line}" in r.stderr and f"nowhere-{uid}" in r.stderr
    # Nothing of the file was kept, not even the good station.
    assert db.execute("SELECT count(*) FROM devices WHERE id = %s", (f"ok-{uid}",)).fetchone()[0] == 0


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f["properties"].update(kind="lamp"), "properties.kind must be one of"),
        (lambda f: f["properties"].pop("id"), "properties.id is required"),
        (lambda f: f.update(geometry={"type": "LineString", "coordinates": [[500, 52], [1, 52]]}), "outside longitude"),
        (lambda f: f["properties"].update(treatment_minutes="three hours"), "must be a whole number"),
    ],
)
def test_registry_errors_name_the_reason(mutate, needle, tmp_path, database_url, uid):
    feat = route(f"R-{uid}", [])
    mutate(feat)
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feat]}, indent=2))
    r = _cli("registry", "load", str(path), env={"PLACEWATCH_DATABASE_URL": database_url})
    assert r.returncode == 1 and needle in r.stderr and "line 4" in r.stderr


def test_invalid_json_registry_names_the_line(tmp_path, database_url):
    path = tmp_path / "broken.geojson"
    path.write_text('{\n  "type": "FeatureCollection",\n  "features": [\n    {"type": "Feature",,}\n  ]\n}\n')
    r = _cli("registry", "load", str(path), env={"PLACEWATCH_DATABASE_URL": database_url})
    assert r.returncode == 1 and "line 4" in r.stderr and "not valid JSON" in r.stderr


def test_a_bad_setting_stops_start_up_naming_it():
    r = _cli(
        "migrate", env={"PLACEWATCH_DATABASE_URL": "postgresql://x@127.0.0.1/x", "PLACEWATCH_MQTT_URL": "http://x"}
    )
    assert r.returncode == 2 and "PLACEWATCH_MQTT_URL" in r.stderr
    r = _cli("ingest", env={"PLACEWATCH_INGEST_BATCH_ROWS": "lots"})
    assert r.returncode == 2 and "PLACEWATCH_INGEST_BATCH_ROWS" in r.stderr
    r = _cli("api", env={"PLACEWATCH_ENVIRONMENT": "production", "PLACEWATCH_SECRET_KEY": "change-me"})
    assert r.returncode == 2 and "PLACEWATCH_SECRET_KEY" in r.stderr


def test_a_database_that_does_not_answer_is_one_clear_line_not_a_traceback(tmp_path):
    # Port 9 on loopback: nothing listens (the discard port), so the connection is refused at once.
    url = "postgresql://postgres@127.0.0.1:9/placewatch"
    env = {"PLACEWATCH_DATABASE_URL": url, "PLACEWATCH_DATA_DIR": str(tmp_path)}
    for args in (("backtest", "gritting", "--start", "2025-10-01", "--end", "2025-10-02"), ("migrate",)):
        r = _cli(*args, env=env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "cannot reach the database (PLACEWATCH_DATABASE_URL)" in r.stderr and "Traceback" not in r.stderr


def test_users_add_reads_the_password_from_stdin_and_the_token_works(database_url, api_url, uid):
    import httpx

    r = _cli(
        "users",
        "add",
        f"duty-{uid}",
        "--role",
        "highways",
        env={"PLACEWATCH_DATABASE_URL": database_url},
        stdin="correct horse battery\n",
    )
    assert r.returncode == 0, r.stderr
    tok = httpx.post(
        f"{api_url}/api/v1/auth/token", data={"username": f"duty-{uid}", "password": "correct horse battery"}
    )
    assert tok.status_code == 200 and tok.json()["token_type"] == "bearer"
    me = httpx.get(f"{api_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {tok.json()['access_token']}"})
    assert me.json()["role"] == "highways"
