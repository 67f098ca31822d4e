"""Real services for the tests: a fresh PostgreSQL database per run and a real MQTT broker.

Uses what answers at PLACEWATCH_TEST_DATABASE_URL / PLACEWATCH_TEST_MQTT_URL (defaults: the local
PostgreSQL and Mosquitto on their standard ports); starts pgserver / Mosquitto / amqtt when nothing does.

PLACEWATCH_TEST_ENGINE chooses the time-series engine of the run's databases: `native` (plain PostgreSQL, the
default and what CI runs), `timescale` (TimescaleDB, required: a server without it stops the run) or `both`
(every test that touches the store runs once on each, on the same server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from placewatch.embedded import Started, embedded_postgres, ensure_broker
from placewatch.mqttclient import connect_args, make_client

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT = "mqtt://127.0.0.1:1883"
ENGINES = {"native": ("native",), "timescale": ("timescale",), "both": ("native", "timescale")}
TIMESCALEDB_SETTING = {"native": "off", "timescale": "on"}  # PLACEWATCH_TIMESCALEDB for each engine


def test_engines() -> tuple[str, ...]:
    """The engines this run's databases use (PLACEWATCH_TEST_ENGINE: native, timescale or both)."""
    value = os.environ.get("PLACEWATCH_TEST_ENGINE", "native").strip().lower()
    if value not in ENGINES:
        raise ValueError(f"PLACEWATCH_TEST_ENGINE={value!r}: use one of {', '.join(ENGINES)}")
    return ENGINES[value]


test_engines.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever its name


def _pg_answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@contextmanager
def fresh_database(admin: str | None = None) -> Iterator[str]:
    """A new, empty database for this run (dropped afterwards), on the server that answers or on pgserver.

    `admin` names the server (default PLACEWATCH_TEST_DATABASE_URL); one given must answer."""
    given = admin is not None
    admin = admin or os.environ.get("PLACEWATCH_TEST_DATABASE_URL", DEFAULT_PG)
    started: Started | None = None
    tmp = None
    if not _pg_answers(admin):
        if given or "timescale" in test_engines():
            raise RuntimeError(f"no PostgreSQL answers at {admin} (TimescaleDB cannot be started embedded)")
        tmp = tempfile.mkdtemp(prefix="pw-pg-")
        started = embedded_postgres(Path(tmp))
        admin = started.url
    name = f"pw_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**info)
    try:
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if started is not None:
            started.stop()


def refresh_hourly(conn: psycopg.Connection, start: Any, end: Any, *, call: str | None = None) -> None:
    """TimescaleDB: refresh the hourly aggregate over [start, end) (or run `call`, e.g. a policy's job) as its
    policy would, waiting out a refresh the policy's own background job has in hand (autocommit connection)."""
    sql = call or "CALL refresh_continuous_aggregate('readings_hourly_cagg', %s::timestamptz, %s::timestamptz)"
    deadline = time.monotonic() + 60
    while True:
        try:
            conn.execute(sql, () if call else (start, end))
            return
        except psycopg.errors.LockNotAvailable:  # "due to a concurrent refresh": the background job's
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def broker() -> Iterator[Started]:
    """The broker that answers, else one started for the run."""
    url = os.environ.get("PLACEWATCH_TEST_MQTT_URL", DEFAULT_MQTT)
    tmp = tempfile.mkdtemp(prefix="pw-mqtt-")
    b = ensure_broker(url, "5", Path(tmp))
    try:
        yield b
    finally:
        b.stop()


class Publisher:
    """A paho client that publishes and waits for the broker's acknowledgement."""

    def __init__(self, url: str, protocol: str = "5") -> None:
        self.client = make_client(url, client_id=f"pw-test-pub-{uuid.uuid4().hex[:8]}", protocol=protocol)
        self.client.max_inflight_messages_set(1000)
        self.client.connect(**connect_args(self.client))  # type: ignore[arg-type]
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker has it."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def publish_many(self, messages: list[tuple[str, bytes | str]], *, qos: int = 1) -> None:
        """Publish many, keeping at most 500 unacknowledged."""
        pending = []
        for topic, payload in messages:
            pending.append(self.client.publish(topic, payload, qos=qos))
            if len(pending) >= 500:
                for p in pending:
                    p.wait_for_publish(30)
                pending.clear()
        for p in pending:
            p.wait_for_publish(30)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Proc:
    """A Placewatch service running as its own process, with its log collected."""

    popen: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        """Wait until a log line contains needle; return it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                line = self.lines[seen]
                seen += 1
                if needle in line:
                    return line
            if self.popen.poll() is not None and seen >= len(self.lines):
                raise AssertionError(f"process exited ({self.popen.returncode}) before {needle!r}:\n" + self.log())
            time.sleep(0.05)
        raise AssertionError(f"no log line with {needle!r} within {timeout}s:\n" + self.log())

    def log(self) -> str:
        """Everything it logged so far."""
        return "\n".join(self.lines[-80:])

    def stop(self, sig: int = 15, timeout: float = 30.0) -> int:
        """Send a signal and wait for exit."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return int(self.popen.returncode)


def start_service(args: list[str], env: dict[str, str]) -> Proc:
    """Start `placewatch ARGS` with env added to ours; its stderr is collected line by line."""
    full = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    popen = subprocess.Popen(
        [sys.executable, "-m", "placewatch.cli", *args],
        cwd=ROOT,
        env=full,
        stdout=subprocess.STDOUT if False else subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    proc = Proc(popen)

    def pump() -> None:
        assert popen.stdout is not None
        for raw in popen.stdout:
            proc.lines.append(raw.decode(errors="replace").rstrip())

    threading.Thread(target=pump, daemon=True).start()
    return proc


def subscribe_collect(url: str, topic: str, protocol: str = "5") -> tuple[mqtt.Client, list[mqtt.MQTTMessage]]:
    """A subscriber that collects every message on topic (call .disconnect() when done)."""
    got: list[mqtt.MQTTMessage] = []
    ready = threading.Event()
    client = make_client(url, client_id=f"pw-test-sub-{uuid.uuid4().hex[:8]}", protocol=protocol)
    client.on_message = lambda c, u, m: got.append(m)
    client.on_subscribe = lambda *a: ready.set()
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
    client.connect(**connect_args(client))  # type: ignore[arg-type]
    client.loop_start()
    ready.wait(10)
    return client, got
