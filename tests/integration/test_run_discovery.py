"""`placewatch run` and the other commands from the same directory: the CLI finds the embedded database, a second
run says where the first one runs, and the broker is started where the configuration says."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from placewatch.embedded import RunInfo, RunLock, ensure_broker, free_port, running
from placewatch.mqttclient import probe

pytestmark = pytest.mark.integration


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLACEWATCH_", "DATABASE_URL"))}
    env.update(extra)
    return env


def _cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "placewatch.cli", *args],
        cwd=cwd,
        env=_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_uses_the_database_of_the_run_holding_its_data_directory(database_url, tmp_path):
    lock = RunLock(tmp_path / "var")
    assert lock.acquire()
    try:
        lock.publish(RunInfo(pid=os.getpid(), address="http://127.0.0.1:1", database_url=database_url))
        assert running(tmp_path / "var").database_url == database_url
        r = _cli("migrate", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "using the embedded database of `placewatch run`" in r.stderr and "up to date" in r.stdout
        # A second lock on the same directory is refused while the first is held.
        assert not RunLock(tmp_path / "var").acquire()
    finally:
        lock.release()
    # Once the run has ended (or was killed, leaving its file behind), nothing is found.
    (tmp_path / "var" / "run.json").write_text('{"pid": 1, "database_url": "postgresql://nowhere/x"}')
    assert running(tmp_path / "var") is None
    r = _cli("migrate", cwd=tmp_path)
    assert r.returncode == 2 and "PLACEWATCH_DATABASE_URL is required" in r.stderr and "no `placewatch run`" in r.stderr


def test_a_broker_is_started_at_the_configured_port_or_a_note_says_why_not(tmp_path):
    port = free_port()
    started = ensure_broker(f"mqtt://localhost:{port}", "5", tmp_path / "a")
    try:
        assert started.kind in ("mosquitto", "amqtt") and started.url == f"mqtt://localhost:{port}"
        assert started.note == "" and probe(f"mqtt://127.0.0.1:{port}", timeout=2)
    finally:
        started.stop()
    other = ensure_broker(f"mqtts://127.0.0.1:{free_port()}", "5", tmp_path / "b")
    try:
        assert "cannot start a TLS broker" in other.note and other.url.startswith("mqtt://127.0.0.1:")
    finally:
        other.stop()


@pytest.mark.slow
def test_make_run_serves_an_embedded_database_the_cli_finds_and_a_second_run_steps_aside(mqtt_broker, tmp_path):
    pytest.importorskip("pgserver", reason="the embedded PostgreSQL (pgserver) is not installed")
    api_port = free_port()
    env = {
        "PLACEWATCH_MQTT_URL": mqtt_broker.url,
        "PLACEWATCH_MQTT_PROTOCOL": mqtt_broker.protocol,
        "PLACEWATCH_API_PORT": str(api_port),
        "PLACEWATCH_MQTT_CLIENT_ID": f"pw-test-run-{api_port}",
        "PLACEWATCH_ALERTS_INTERVAL_MINUTES": "60",
    }
    out = (tmp_path / "run.log").open("w")
    first = subprocess.Popen(
        [sys.executable, "-m", "placewatch.cli", "run", "--no-simulate"],
        cwd=tmp_path,
        env=_env(**env),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        text = ""
        while "Ctrl-C stops everything" not in text:
            assert first.poll() is None, text
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
            text = (tmp_path / "run.log").read_text()
        assert "database: embedded PostgreSQL at postgresql://" in text
        assert "device formats: native, tts, chirpstack, zigbee2mqtt, tasmota, senml" in text
        info = running(tmp_path / "var")
        assert info is not None and info.pid == first.pid and info.database_url in text

        # Any command from the same directory, with no PLACEWATCH_DATABASE_URL, reaches that database.
        csv_path = tmp_path / "h.csv"
        csv_path.write_text("id,t,where,rst\nrun-st-1,2025-01-10T06:00:00Z,POINT (-1.9 52.48),-1.5\n")
        mapping = tmp_path / "m.json"
        mapping.write_text(
            '{"station": "id", "time": {"column": "t"}, "position": {"wkt": "where"},'
            ' "metrics": {"road_surface_temperature": {"column": "rst", "unit": "degC"}}}'
        )
        r = _cli("history", "import", str(csv_path), "--format", "csv", "--mapping", str(mapping), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "using the embedded database" in r.stderr and "1 new road stations registered" in r.stdout
        assert httpx.get(f"http://127.0.0.1:{api_port}/api/v1/live", timeout=5).status_code == 200

        # A second run in the same directory says where the first one runs, and leaves it alone.
        second = _cli("run", "--no-simulate", cwd=tmp_path, **env)
        assert second.returncode == 0, second.stderr
        assert f"already running from {tmp_path / 'var'} (process {first.pid})" in second.stdout
        assert f"http://127.0.0.1:{api_port}" in second.stdout
        assert first.poll() is None
    finally:
        first.terminate()
        try:
            first.wait(60)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait(10)
        out.close()
    assert running(tmp_path / "var") is None
    assert not (tmp_path / "var" / "run.json").exists()
