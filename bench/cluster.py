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
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from api.security import hash_password
from bench.common import ROOT, Figure, cpu_seconds, load_now, print_table
from bench.decisions import _action, _committed, _wet, percentile
from bench.ingest import _committed as committed_readings
from bench.ingest import _free_port, _pg_backend_pids
from core.registry import parse_registry
from simulators.fleet import device_ids, run_fleet
from simulators.publisher import payload_of, readings_topic
from store import registry, users
from store.db import connect
from store.migrate import migrate
from tests.cluster.services import NatsCluster
from tests.faults.harness import PrivateMosquitto
from tests.helpers import collection, route, station
from tests.services import Proc, start_service

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


def latency(dsn: str, mosquitto_url: str, cluster: NatsCluster, iterations: int) -> list[Figure]:
    """Reading -> decision in the API, readings through Mosquitto and through the NATS cluster."""
    out: dict[str, list[float]] = {}
    reading: dict[str, list[float]] = {}
    with connect(dsn) as conn:
        users.add_user(conn, name="bench-cluster", password_hash=hash_password("bench-password"), role="highways")
        conn.commit()
    for path in ("mqtt", "jetstream"):
        tag = uuid.uuid4().hex[:6]
        n = iterations + 1  # the first is a warm-up
        stations = [f"bench-cl-{tag}-{i}" for i in range(n)]
        routes = [f"BC-{tag}-{i}" for i in range(n)]
        text = collection(
            *[station(s) for s in stations], *[route(r, [s]) for r, s in zip(routes, stations, strict=True)]
        )
        with connect(dsn) as conn:
            registry.load(conn, parse_registry(text), text=text)
            conn.commit()
        extra = {"PLACEWATCH_MQTT_CLIENT_ID": f"bench-cl-{tag}"}
        if path == "jetstream":
            extra |= {
                "PLACEWATCH_TRANSPORT": "jetstream",
                "PLACEWATCH_NATS_URL": cluster.nats_urls,
                "PLACEWATCH_NATS_STREAM": f"BENCH_LAT_{tag}",
            }
        prefix = "placewatch/v1"
        procs: list[Proc] = []
        port = _free_port()
        try:
            procs.append(start_service(["ingest"], _env(dsn, mosquitto_url, prefix, **extra)))
            procs[-1].wait_for("subscribed", timeout=60)
            procs.append(start_service(["alerts"], _env(dsn, mosquitto_url, prefix)))
            procs[-1].wait_for("leading the alerting scheduler", timeout=60)
            procs.append(start_service(["api"], _env(dsn, mosquitto_url, prefix, PLACEWATCH_API_PORT=str(port))))
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get("/api/v1/live")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            tok = http.post("/api/v1/auth/token", data={"username": "bench-cluster", "password": "bench-password"})
            http.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"
            from tests.services import Publisher

            pub_url = mosquitto_url if path == "mqtt" else cluster.nodes[1].mqtt_url
            pub = Publisher(pub_url, "5" if path == "mqtt" else "3.1.1")
            db = connect(dsn, autocommit=True)
            try:
                now = datetime.now(UTC).replace(microsecond=0)
                for s in stations:
                    pub.publish(
                        readings_topic(s), payload_of([(now - k * STEP, _wet(now, 1.2)) for k in range(6, 0, -1)])
                    )
                for r in routes:
                    _until(lambda r=r, http=http: _action(http, r) == "monitor", 60)
                lat, rd = [], []
                for i, (s, r) in enumerate(zip(stations, routes, strict=True)):
                    ts = datetime.now(UTC).replace(microsecond=0)
                    t0 = time.perf_counter()
                    pub.publish(readings_topic(s), payload_of([(ts, _wet(ts, 0.3))]))
                    t_reading = t_api = None
                    deadline = time.monotonic() + 20
                    while (t_api is None or t_reading is None) and time.monotonic() < deadline:
                        if t_reading is None and _committed(db, s, ts):
                            t_reading = time.perf_counter()
                        if t_api is None and _action(http, r) == "precautionary_salt":
                            t_api = time.perf_counter()
                        time.sleep(0.002)
                    if t_api is None or t_reading is None:
                        raise RuntimeError(f"{path}: route {r}: no decision within 20 s")
                    if i:
                        lat.append(t_api - t0)
                        rd.append(t_reading - t0)
                out[path], reading[path] = lat, rd
            finally:
                db.close()
                pub.close()
                http.close()
        finally:
            for p in procs:
                p.stop()
        print(
            f"{path}: reading -> decision in the API p50 {percentile(out[path], 50):.2f} s, "
            f"p99 {percentile(out[path], 99):.2f} s; reading committed p50 {percentile(reading[path], 50):.2f} s",
            flush=True,
        )
    m99, j99 = percentile(out["mqtt"], 99), percentile(out["jetstream"], 99)
    return [
        Figure(
            "JetStream path: reading -> decision in the API, p99",
            j99,
            "s",
            f"MQTT path: p99 {m99:.2f} s, p50 {percentile(out['mqtt'], 50):.2f} s",
            j99 / m99,
            target="< 2 s",
            ok=j99 < 2.0,
            load=load_now(),
        ),
        Figure(
            "JetStream path: the reading committed, p50",
            percentile(reading["jetstream"], 50),
            "s",
            f"MQTT path: p50 {percentile(reading['mqtt'], 50):.2f} s",
            percentile(reading["jetstream"], 50) / percentile(reading["mqtt"], 50),
            load=load_now(),
        ),
    ]


def _until(fn, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.01)
    raise RuntimeError(f"condition not met within {timeout} s")


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
                migrate(conn)
            assert mosquitto.proc is not None
            figures += backlog(dsn, mosquitto.url, mosquitto.proc.pid, cluster, a)
            if not a.skip_latency:
                figures += latency(dsn, mosquitto.url, cluster, a.iterations)
    finally:
        cluster.stop()
        mosquitto.stop()
    print_table("bench.cluster: the JetStream path against the MQTT path, same run", figures)
    return figures


if __name__ == "__main__":
    main()
