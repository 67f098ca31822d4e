"""The clustered transport against the MQTT path, in the same run: a three-node NATS cluster (JetStream, an R3
stream, MQTT listeners) beside a private Mosquitto, one fresh database.

Backlog drain, per path, with one and then two ingest workers: a backlog of one-reading messages from 1,000
devices is published (MQTT QoS 1; to Mosquitto, or to a NATS node's MQTT listener, MQTT 3.1.1) while no worker
runs, then the workers start and drain it. Figures: messages/s from the first worker's subscription to the
last commit, and core-ms per 1,000 messages of the ingest workers plus their PostgreSQL backends (from /proc),
with the broker's own CPU beside it (Mosquitto, or the three nats-servers together). The MQTT path with two
workers uses a shared subscription; the JetStream path's workers share one durable pull consumer.

Latency: reading -> gritting decision in the API (the method of bench/decisions.py: each route's station has an
hour of a wet road at +1.2 C, then one reading at +0.3 C crosses the trigger; the clock starts just before that
publish), with readings arriving through Mosquitto and through the NATS cluster, in the same run.

    python -m bench.cluster [--messages 50000] [--devices 1000] [--iterations 30]

Run one benchmark at a time (flock /tmp/pw-bench.lock): on 2 cores the brokers, PostgreSQL and ingest share them.

It compares transports, not engines: the backlog's database is plain PostgreSQL, asked for explicitly
(PLACEWATCH_TIMESCALEDB=off) even on a server that offers TimescaleDB; the latency runs migrate as bench.decisions
does. bench.ingest, bench.queries and bench.damp compare the engines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import decisions
from bench.common import ROOT, Figure, cpu_seconds, load_now, print_table
from bench.decisions import percentile
from bench.ingest import _committed as committed_readings
from bench.ingest import _free_port, _pg_backend_pids
from core.registry import parse_registry
from simulators.fleet import device_ids, run_fleet
from store import registry
from store.db import connect
from store.migrate import migrate
from tests.cluster.services import NatsCluster
from tests.faults.harness import PrivateMosquitto
from tests.helpers import collection, station

START = datetime(2025, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def _env(dsn: str, mqtt_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PLACEWATCH_DATABASE_URL": dsn,
        "PLACEWATCH_MQTT_URL": mqtt_url,
        "PLACEWATCH_TOPIC_PREFIX": prefix,
        "PLACEWATCH_ENVIRONMENT": "test",
        "PLACEWATCH_LOG_LEVEL": "info",
        "PLACEWATCH_STATS_SECONDS": "3600",
        "PLACEWATCH_SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
        **extra,
    }


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "placewatch.cli", "ingest"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _subscribed_at(proc: subprocess.Popen[bytes], out: dict[int, tuple[float, float]]) -> None:
    """When (and at what CPU time) the worker has subscribed: timing starts there, not at start-up."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"subscribed" in line and proc.pid not in out:
            out[proc.pid] = (time.perf_counter(), cpu_seconds(proc.pid))


def _drain(
    name: str, dsn: str, envs: list[dict[str, str]], broker_pids: list[int], *, messages: int, preload
) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Start the workers once (sessions, stream and consumer exist), stop them, preload, then time the drain."""
    first = [_start(e) for e in envs]
    seen: dict[int, tuple[float, float]] = {}
    for p in first:
        threading.Thread(target=_subscribed_at, args=(p, seen), daemon=True).start()
    deadline = time.monotonic() + 120
    while len(seen) < len(first):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: the workers did not subscribe within 120 s")
        time.sleep(0.05)
    for p in first:
        p.terminate()
    for p in first:
        p.wait(60)
    preload()
    procs = [_start(e) for e in envs]
    connected: dict[int, tuple[float, float]] = {}
    for p in procs:
        threading.Thread(target=_subscribed_at, args=(p, connected), daemon=True).start()
    b0 = {pid: cpu_seconds(pid) for pid in broker_pids}
    pg0: dict[int, float] = {}  # each worker's PostgreSQL backend, with its CPU when first seen
    deadline = time.monotonic() + 900
    polled = 0.0
    while committed_readings(envs) < messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: {committed_readings(envs)} of {messages} committed within 900 s")
        if len(pg0) < len(procs) and time.monotonic() - polled > 0.2:
            polled = time.monotonic()
            for pid in _pg_backend_pids(dsn, "placewatch"):
                if pid not in pg0 and (cpu := _cpu(pid)) is not None:
                    pg0[pid] = cpu
        time.sleep(0.02)
    t1 = time.perf_counter()
    t0 = min(t for t, _ in connected.values())
    ingest = sum(cpu_seconds(p.pid) - connected.get(p.pid, (0.0, 0.0))[1] for p in procs)
    pg = sum((_cpu(pid) or start) - start for pid, start in pg0.items())
    broker = sum(cpu_seconds(pid) - b0[pid] for pid in broker_pids)
    load = load_now()
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)
    secs = t1 - t0
    out = {
        "msgs_s": messages / secs,
        "ms_per_1000": (ingest + pg) / messages * 1e6,
        "ingest_ms": ingest / messages * 1e6,
        "pg_ms": pg / messages * 1e6,
        "broker_ms": broker / messages * 1e6,
        "load": load,
    }
    print(
        f"{name}: {out['msgs_s']:,.0f} msg/s; {out['ms_per_1000']:.1f} core-ms per 1,000 messages (ingest "
        f"{out['ingest_ms']:.1f} + PostgreSQL {out['pg_ms']:.1f}); broker {out['broker_ms']:.1f}; "
        f"{os.cpu_count()} cores, load {load:.1f}",
        flush=True,
    )
    return out


def _cpu(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return None


def _wait_stream(cluster: NatsCluster, stream: str, messages: int, timeout: float = 300) -> None:
    """Wait until the stream holds `messages` messages (the MQTT listeners hand them on asynchronously)."""
    import asyncio

    import nats

    async def count() -> int:
        nc = await nats.connect(servers=cluster.nats_urls.split(","))
        try:
            return int((await nc.jetstream().stream_info(stream)).state.messages)
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while (n := asyncio.run(count())) < messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"stream {stream} holds {n} of {messages} messages")
        time.sleep(0.5)


def backlog(
    dsn: str, mosquitto_url: str, mosquitto_pid: int, cluster: NatsCluster, a: argparse.Namespace
) -> list[Figure]:
    """Both paths, one and two workers, on the same database and machine."""
    results: dict[tuple[str, int], dict[str, float]] = {}
    nats_pids = [n.proc.pid for n in cluster.nodes if n.proc is not None]
    for k, (path, workers) in enumerate([("mqtt", 1), ("jetstream", 1), ("mqtt", 2), ("jetstream", 2)]):
        prefix = f"bc{k}{uuid.uuid4().hex[:4]}/v1"
        ids = device_ids(a.devices, prefix=f"bench{k}")
        text = collection(*[station(d) for d in ids])
        with connect(dsn) as conn:
            registry.load(conn, parse_registry(text), text=text)
            conn.commit()
        start = START.replace(year=START.year - k)
        group = f"bc{k}"
        envs = []
        for w in range(workers):
            extra = {"PLACEWATCH_METRICS_PORT": str(_free_port()), "PLACEWATCH_MQTT_CLIENT_ID": f"{group}-{w}"}
            if path == "mqtt":
                extra["PLACEWATCH_MQTT_SHARED_GROUP"] = group if workers > 1 else ""
            else:
                extra |= {
                    "PLACEWATCH_TRANSPORT": "jetstream",
                    "PLACEWATCH_NATS_URL": cluster.nats_urls,
                    "PLACEWATCH_NATS_STREAM": f"BENCH_{group.upper()}",
                    "PLACEWATCH_NATS_CONSUMER": group,
                }
            envs.append(_env(dsn, mosquitto_url, prefix, **extra))

        def preload(
            path: str = path, prefix: str = prefix, start: datetime = start, k: int = k, group: str = group
        ) -> None:
            url = mosquitto_url if path == "mqtt" else cluster.nodes[0].mqtt_url
            res = run_fleet(
                url,
                protocol="5" if path == "mqtt" else "3.1.1",
                devices=a.devices,
                count=a.messages,
                processes=2,
                start=start,
                prefix=prefix,
                id_prefix=f"bench{k}",
                window=200,
            )
            if res.acked != a.messages:
                raise RuntimeError(f"publisher: only {res.acked} of {a.messages} acknowledged")
            if path == "jetstream":
                _wait_stream(cluster, f"BENCH_{group.upper()}", a.messages)

        broker = [mosquitto_pid] if path == "mqtt" else nats_pids
        name = f"{path} path, {workers} worker{'s' if workers > 1 else ''}"
        results[(path, workers)] = _drain(name, dsn, envs, broker, messages=a.messages, preload=preload)
    figures = []
    for workers in (1, 2):
        m, j = results[("mqtt", workers)], results[("jetstream", workers)]
        w = f"{workers} worker{'s' if workers > 1 else ''}"
        figures += [
            Figure(
                f"JetStream path, {w}: backlog drain",
                j["msgs_s"],
                "msg/s",
                f"MQTT path, {w}: {m['msgs_s']:,.0f} msg/s",
                j["msgs_s"] / m["msgs_s"],
                load=j["load"],
            ),
            Figure(
                f"JetStream path, {w}: ingest + PostgreSQL",
                j["ms_per_1000"],
                "ms/1k",
                f"MQTT path: {m['ms_per_1000']:.1f} core-ms per 1,000",
                j["ms_per_1000"] / m["ms_per_1000"],
                load=j["load"],
            ),
            Figure(
                f"JetStream path, {w}: the 3 nats-servers",
                j["broker_ms"],
                "ms/1k",
                f"Mosquitto: {m['broker_ms']:.1f} core-ms per 1,000",
                j["broker_ms"] / m["broker_ms"] if m["broker_ms"] else None,
                load=j["load"],
            ),
        ]
    return figures


def latency(mosquitto_url: str, cluster: NatsCluster, iterations: int) -> list[Figure]:
    """Reading -> decision in the API (bench.decisions' method), readings through Mosquitto and through NATS."""
    runs = {
        "mqtt": decisions.latency(iterations, mosquitto_url),
        "jetstream": decisions.latency(
            iterations,
            mosquitto_url,  # decisions are still published to Mosquitto
            ingest_env={
                "PLACEWATCH_TRANSPORT": "jetstream",
                "PLACEWATCH_NATS_URL": cluster.nats_urls,
                "PLACEWATCH_NATS_STREAM": f"BENCH_LAT_{uuid.uuid4().hex[:6]}",
            },
            readings_url=cluster.nodes[1].mqtt_url,
            readings_protocol="3.1.1",
        ),
    }
    for path, r in runs.items():
        print(
            f"{path}: reading -> decision in the API p50 {percentile(r['api'], 50):.2f} s, "
            f"p99 {percentile(r['api'], 99):.2f} s; reading committed p50 {percentile(r['reading'], 50):.2f} s",
            flush=True,
        )
    m, j = runs["mqtt"], runs["jetstream"]
    m99, j99 = percentile(m["api"], 99), percentile(j["api"], 99)
    m50r, j50r = percentile(m["reading"], 50), percentile(j["reading"], 50)
    return [
        Figure(
            "JetStream path: reading -> decision in the API, p99",
            j99,
            "s",
            f"MQTT path: p99 {m99:.2f} s, p50 {percentile(m['api'], 50):.2f} s",
            j99 / m99,
            target="< 2 s",
            ok=j99 < 2.0,
            load=load_now(),
        ),
        Figure(
            "JetStream path: the reading committed, p50",
            j50r,
            "s",
            f"MQTT path: p50 {m50r:.2f} s",
            j50r / m50r,
            load=load_now(),
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run both sections; print and return the figures."""
    ap = argparse.ArgumentParser(prog="python -m bench.cluster")
    ap.add_argument("--messages", type=int, default=50_000, help="backlog per case")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--iterations", type=int, default=30, help="decisions timed per path")
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args(argv)
    from tests.services import fresh_database

    work = Path(tempfile.mkdtemp(prefix="pw-bench-cluster-"))
    mosquitto = PrivateMosquitto(work)  # ours: its process's CPU is measured
    cluster = NatsCluster(work / "nats")
    figures: list[Figure] = []
    try:
        mosquitto.start()
        cluster.start()
        cluster.wait_ready()
        with fresh_database() as dsn:
            with connect(dsn) as conn:
                migrate(conn, timescaledb="off")  # plain PostgreSQL, whatever the server offers (see the docstring)
            assert mosquitto.proc is not None
            figures += backlog(dsn, mosquitto.url, mosquitto.proc.pid, cluster, a)
        if not a.skip_latency:
            figures += latency(mosquitto.url, cluster, a.iterations)
    finally:
        cluster.stop()
        mosquitto.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_table("bench.cluster: the JetStream path against the MQTT path, same run", figures)
    return figures


if __name__ == "__main__":
    main()
