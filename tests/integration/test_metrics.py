"""Operability through real processes: /metrics from the API and from ingest, JSON logs from uvicorn too,
and a clean exit on SIGTERM for the API and the alerting scheduler. The exposition format itself (escaping,
prometheus-client's writer) is tested without services in tests/unit/test_metrics_exposition.py."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from placewatch.embedded import free_port
from tests.conftest import service_env, wait_until
from tests.helpers import load, station
from tests.services import Proc, start_service

pytestmark = pytest.mark.integration
# uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so the exit status says why it ended.
GRACEFUL = (0, -signal.SIGTERM)
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def parse(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """Prometheus text exposition into {name: {labels: value}}, failing on any line that is not well formed."""
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge"), line
            types[name] = kind
            out.setdefault(name, {})  # a family with no samples yet is still there
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not exposition format: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert name in types, f"{name} has no TYPE line"
        pairs = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        out.setdefault(name, {})[pairs] = float(value)
    return out


def one(metrics: dict[str, dict[frozenset[tuple[str, str]], float]], name: str, **labels: str) -> float:
    return metrics.get(name, {}).get(frozenset(labels.items()), 0.0)


def _scrape(url: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def test_api_metrics_count_readings_dead_letters_and_devices_as_the_api_reports_them(
    api_url, database_url, db, ingest, publisher, token_for, uid
):
    dev = f"metrics-{uid}"
    load(database_url, station(dev))
    before = _scrape(api_url + "/metrics")
    assert one(before, "placewatch_database_up") == 1
    prefix = f"pwtest-{uid}/v1"
    ingest(PLACEWATCH_TOPIC_PREFIX=prefix)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    publisher.publish(f"{prefix}/devices/{dev}/readings", json.dumps({"ts": now, "values": {"air_temperature": 1.0}}))
    publisher.publish(f"{prefix}/devices/{dev}/readings", b"not json")
    wait_until(
        lambda: db.execute("SELECT count(*) FROM dead_letters WHERE topic LIKE %s", (f"{prefix}/%",)).fetchone()[0]
    )
    wait_until(lambda: db.execute("SELECT last_seen FROM device_seen WHERE id = %s", (dev,)).fetchone()[0])

    # Exact below 100,000 rows; past that, PostgreSQL's live-row statistic (an estimate that follows within
    # seconds), so it cannot promise +1: check what each regime promises.
    def readings_ok() -> bool:
        exact = db.execute("SELECT count(*) FROM readings").fetchone()[0]
        got = one(_scrape(api_url + "/metrics"), "placewatch_readings")
        return got == exact if exact < 100_000 else 0.5 * exact <= got <= 1.5 * exact

    wait_until(readings_ok)
    after = _scrape(api_url + "/metrics")
    assert one(after, "placewatch_dead_letters_last_hour") >= one(before, "placewatch_dead_letters_last_hour") + 1
    assert one(after, "placewatch_dead_letters") >= one(after, "placewatch_dead_letters_last_hour")
    assert "placewatch_late_windows_pending" in after
    # The same online / offline / stale as GET /api/v1/devices, by kind.
    listed: dict[tuple[str, str], int] = {}
    for d in httpx.get(api_url + "/api/v1/devices", headers=token_for("admin")).json():
        listed[(d["kind"], d["status"])] = listed.get((d["kind"], d["status"]), 0) + 1
    exposed = {
        (dict(labels)["kind"], dict(labels)["status"]): int(v) for labels, v in after["placewatch_devices"].items()
    }
    assert exposed == listed
    assert one(after, "placewatch_devices", kind="road_station", status="online") >= 1
    # Tables built by other parts of Placewatch appear once they exist (they do after the migrations).
    for table, metric in (
        ("gritting_decisions", "placewatch_gritting_decisions"),
        ("damp_cases", "placewatch_damp_cases"),
    ):
        exists = db.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
        assert (metric in after) == exists, metric
    assert "placewatch_metrics_figure_errors" not in after


def test_ingest_serves_its_counters_on_the_metrics_port(database_url, ingest, publisher, uid):
    dev = f"imetrics-{uid}"
    load(database_url, station(dev))
    port = free_port()
    prefix = f"pwtest-{uid}/v1"
    ingest(PLACEWATCH_TOPIC_PREFIX=prefix, PLACEWATCH_METRICS_PORT=str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    start = _scrape(url)
    assert one(start, "placewatch_ingest_broker_connected") == 1
    assert one(start, "placewatch_ingest_received_total") == 0
    for i in range(3):
        body = {"ts": f"2026-01-15T06:3{i}:00Z", "values": {"air_temperature": float(i)}}
        publisher.publish(f"{prefix}/devices/{dev}/readings", json.dumps(body))
    publisher.publish(f"{prefix}/devices/{dev}/readings", b"[]")
    wait_until(lambda: one(_scrape(url), "placewatch_ingest_committed_messages_total") == 4)
    m = _scrape(url)
    assert one(m, "placewatch_ingest_received_total") == 4
    assert one(m, "placewatch_ingest_committed_readings_total") == 3
    assert one(m, "placewatch_ingest_dead_lettered_total") == 1
    assert one(m, "placewatch_ingest_queue_depth") == 0
    assert one(m, "placewatch_ingest_batches_total") >= 1
    assert one(m, "placewatch_ingest_last_batch_seconds") > 0
    assert "placewatch_ingest_db_errors_total" in m
    assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404


@pytest.fixture
def api_process(database_url: str, mqtt_broker: Any) -> Iterator[Any]:
    """Start `placewatch api` processes with extra settings; each is stopped afterwards."""
    procs: list[Proc] = []

    def start(**extra: str) -> tuple[Proc, str]:
        port = free_port()
        proc = start_service(["api"], service_env(database_url, mqtt_broker, PLACEWATCH_API_PORT=str(port), **extra))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/api/v1/live", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.popen.poll() is None, proc.log()
                return False

        wait_until(up, timeout=30)
        return proc, url

    yield start
    for p in procs:
        p.stop(9)


def test_with_json_logs_every_line_the_api_writes_is_json_including_uvicorns(api_process):
    proc, url = api_process(PLACEWATCH_LOG_FORMAT="json")
    httpx.get(url + "/api/v1/live")
    wait_until(lambda: any("/api/v1/live" in line for line in proc.lines))
    assert proc.stop(signal.SIGTERM) in GRACEFUL
    docs = [json.loads(line) for line in proc.lines if line.strip()]  # fails on any line that is not JSON
    loggers = {d["logger"] for d in docs}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers
    assert any("Application startup complete" in d["msg"] for d in docs)


def test_the_api_exits_cleanly_on_sigterm(api_process):
    proc, url = api_process()
    assert httpx.get(url + "/api/v1/live").status_code == 200
    started = time.monotonic()
    assert proc.stop(signal.SIGTERM, timeout=20) in GRACEFUL
    assert time.monotonic() - started < 15
    # In-flight requests finished, the lifespan closed the pool, then uvicorn's server ended.
    done = [line for line in proc.lines if "shutdown complete" in line or "Finished server process" in line]
    assert len(done) == 2, proc.log()


def test_the_alerts_leader_exits_cleanly_on_sigterm_and_a_standby_takes_over(database_url, mqtt_broker):
    env = service_env(database_url, mqtt_broker)
    first = start_service(["alerts"], env)
    second: Proc | None = None
    try:
        first.wait_for("leading the alerting scheduler", timeout=30)
        second = start_service(["alerts"], env)
        second.wait_for("another scheduler leads; standing by", timeout=30)
        started = time.monotonic()
        assert first.stop(signal.SIGTERM, timeout=40) == 0
        assert time.monotonic() - started < 30
        # The advisory lock went with the leader's connection: the standby leads within its retry interval.
        second.wait_for("leading the alerting scheduler", timeout=30)
        assert second.stop(signal.SIGTERM, timeout=40) == 0
    finally:
        first.stop(9)
        if second is not None:
            second.stop(9)
