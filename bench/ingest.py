"""Ingest throughput: `placewatch ingest` against the broker's own delivery rate, a naive subscriber and COPY.

Method: each consumer first subscribes with a persistent session and disconnects; a multi-process
publisher then loads the same messages into a private Mosquitto (so the publisher is never the
bottleneck of the measurement); then the consumer reconnects and drains them. Rates are messages
(or rows) committed per second from the consumer's (re)connection to its last commit.

The do-nothing subscriber is measured twice: built on placewatch.mqttclient.Client (what ingest uses:
paho with buffered reads and bulk acknowledgements), the strict reference the ratio is taken against,
and on paho's own Client, for comparison. The 1,000 devices each send 200 messages in the backlog, so a
batch holds several messages per device: this measures draining a backlog (after an outage, say),
where ingest's batches fill to PLACEWATCH_INGEST_BATCH_ROWS.

    python -m bench.ingest [--messages 200000] [--devices 1000] [--naive 20000] [--batch-messages 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from bench.common import ROOT, Figure, cpu_seconds, print_table
from core.registry import parse_registry
from placewatch.embedded import start_mosquitto
from placewatch.mqttclient import connect_args, make_client
from simulators.fleet import device_ids, run_fleet
from store import registry
from store.db import connect
from tests.services import fresh_database

START = datetime(2026, 1, 1, tzinfo=UTC)


def _registry(devices: list[str]) -> str:
    feats = [
        {
            "type": "Feature",
            "geometry": None,
            "properties": {"kind": "home", "id": "bench-home", "address": "Bench", "patch": "bench"},
        }
    ]
    feats += [
        {
            "type": "Feature",
            "geometry": None,
            "properties": {"kind": "home_sensor", "id": d, "home": "bench-home", "room": "bedroom"},
        }
        for d in devices
    ]
    return json.dumps({"type": "FeatureCollection", "features": feats})


_CASES: dict[str, int] = {}


def _preload(url: str, prefix: str, *, messages: int, devices: int, per_message: int, processes: int) -> float:
    # Each case gets its own year of timestamps, so no case's readings are duplicates of another's.
    start = START.replace(year=START.year - _CASES.setdefault(prefix, len(_CASES)))
    res = run_fleet(
        url,
        devices=devices,
        count=messages,
        processes=processes,
        readings_per_message=per_message,
        start=start,
        prefix=prefix,
        id_prefix="bench",
        window=200,
    )
    if res.acked != messages:
        raise RuntimeError(f"publisher: only {res.acked} of {messages} acknowledged")
    return res.rate


class _Drain:
    """A persistent-session subscriber that does `work` per message and records first/last times."""

    def __init__(self, url: str, topic: str, work=None, *, stock: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.url, self.topic, self.work, self.stock = url, topic, work, stock
        self.count = 0
        self.t0 = self.t1 = 0.0
        self.done = threading.Event()
        self.target = 0
        self.cid = f"bench-drain-{uuid.uuid4().hex[:8]}"

    def _client(self):  # type: ignore[no-untyped-def]
        c = make_client(self.url, client_id=self.cid, persistent=True)
        if self.stock:  # paho's own Client, configured the same way (for comparison)
            c = paho_stock_client(self.url, client_id=self.cid)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(self.topic, qos=1)
        return c

    def register(self) -> None:
        """Create the session and subscription, then leave."""
        c = self._client()
        sub = threading.Event()
        c.on_subscribe = lambda *a: sub.set()
        c.connect(**connect_args(c, receive_maximum=20000))
        c.loop_start()
        sub.wait(10)
        c.disconnect()
        c.loop_stop()

    def drain(self, target: int, timeout: float = 600) -> float:
        """Reconnect and consume target messages; messages per second."""
        self.target = target
        c = self._client()

        def on_message(cl, u, m):  # type: ignore[no-untyped-def]
            if self.work is not None:
                self.work(m)
            self.count += 1
            if self.count >= self.target:
                self.t1 = time.perf_counter()
                self.done.set()

        c.on_message = on_message
        self.t0 = time.perf_counter()
        c.connect(**connect_args(c, receive_maximum=20000))
        c.loop_start()
        if not self.done.wait(timeout):
            raise RuntimeError(f"drain: {self.count} of {target} in {timeout}s")
        c.disconnect()
        c.loop_stop()
        return target / (self.t1 - self.t0)


def paho_stock_client(url: str, *, client_id: str):  # type: ignore[no-untyped-def]
    """paho-mqtt's own Client (not placewatch.mqttclient.Client), MQTT 5 with a persistent session."""
    import paho.mqtt.client as mqtt

    from placewatch import mqttclient

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    mqttclient._CONFIG[c] = (mqttclient.BrokerAddress.parse(url), True, mqtt.MQTTv5)
    return c


def _naive_worker(dsn: str):  # type: ignore[no-untyped-def]
    conn = psycopg.connect(dsn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS naive_readings (device_id text, metric text, ts timestamptz, value float8,"
        " PRIMARY KEY (device_id, metric, ts))"
    )
    conn.commit()

    def work(m):  # type: ignore[no-untyped-def]
        dev = m.topic.split("/")[-2]
        doc = orjson.loads(m.payload)
        for e in doc if isinstance(doc, list) else [doc]:
            ts = datetime.fromtimestamp(e["ts"] / 1000, UTC)
            for k, v in e["values"].items():
                conn.execute(
                    "INSERT INTO naive_readings VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", (dev, k, ts, v)
                )
        conn.commit()

    return work


def _copy_rate(dsn: str, rows: int) -> float:
    """Binary COPY of `rows` rows shaped like readings straight into a keyed table; rows per second."""
    data = [(1 + i % 2000, START + timedelta(minutes=i // 2000), 20.0 + (i % 97) / 10, None) for i in range(rows)]
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE copy_readings (series_id integer, ts timestamptz, value double precision,"
            " label text, PRIMARY KEY (series_id, ts))"
        )
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor().copy("COPY copy_readings FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "timestamptz", "float8", "text"])
            for r in data:
                cp.write_row(r)
        conn.commit()
        return rows / (time.perf_counter() - t0)


def _pg_backend_pids(dsn: str, app: str) -> list[int]:
    with connect(dsn, autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
                " AND pid <> pg_backend_pid()",
                (app,),
            )
        ]


def _run_ingest(dsn: str, url: str, prefix: str, *, target_rows: int, workers: int = 1, msgs: int) -> dict[str, float]:
    """Drain `prefix` with `workers` ingest processes on a shared subscription; rows/s, msgs/s and CPU."""
    group = f"b{uuid.uuid4().hex[:6]}"
    envs = []
    for w in range(workers):
        envs.append(
            {
                **os.environ,
                "PLACEWATCH_METRICS_PORT": str(_free_port()),
                "PLACEWATCH_DATABASE_URL": dsn,
                "PLACEWATCH_MQTT_URL": url,
                "PLACEWATCH_TOPIC_PREFIX": prefix,
                "PLACEWATCH_MQTT_CLIENT_ID": f"{group}-{w}",
                "PLACEWATCH_MQTT_SHARED_GROUP": group if workers > 1 else "",
                "PLACEWATCH_STATS_SECONDS": "3600",
                "PLACEWATCH_LOG_LEVEL": "info",
                "PLACEWATCH_ENVIRONMENT": "test",
            }
        )

    def start(env):  # type: ignore[no-untyped-def]
        return subprocess.Popen(
            [sys.executable, "-m", "placewatch.cli", "ingest"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    # First run: create the persistent sessions, then stop.
    procs = [start(e) for e in envs]
    time.sleep(3)
    for p in procs:
        p.terminate()
        p.wait(30)
    return {"group": group, "envs": envs, "start": start}  # type: ignore[dict-item]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _committed(envs: list[dict[str, str]]) -> int:
    """Readings the ingest processes report committed (their /metrics): cheap to ask every few ms,
    unlike count(*) over readings, which would take PostgreSQL's CPU from the ingest being measured."""
    import urllib.request

    total = 0
    for env in envs:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{env['PLACEWATCH_METRICS_PORT']}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("placewatch_ingest_committed_readings_total"):
                total += int(float(line.split()[-1]))
    return total


def _count_rows(dsn: str) -> int:
    with connect(dsn, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]


def _connected_at(proc: subprocess.Popen[bytes], out: dict[int, tuple[float, float]]) -> None:
    """Record when (and at what CPU time) the process connects: timing starts there, not at start-up."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"connected to" in line and proc.pid not in out:
            out[proc.pid] = (time.perf_counter(), cpu_seconds(proc.pid))


def _measure_ingest(dsn: str, prep: dict, *, target_rows: int, msgs: int) -> dict[str, float]:  # type: ignore[type-arg]
    base = _count_rows(dsn)
    procs = [prep["start"](e) for e in prep["envs"]]
    connected: dict[int, tuple[float, float]] = {}
    for p in procs:
        threading.Thread(target=_connected_at, args=(p, connected), daemon=True).start()
    backends: list[int] = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if not backends:
            backends = _pg_backend_pids(dsn, "placewatch")
        if _committed(prep["envs"]) >= target_rows:
            break
    t1 = time.perf_counter()
    t0 = min(t for t, _ in connected.values()) if connected else t1
    cpu = sum(cpu_seconds(p.pid) - connected.get(p.pid, (0.0, 0.0))[1] for p in procs)
    cpu_pg = 0.0
    for pid in backends:
        try:
            cpu_pg += cpu_seconds(pid)
        except (FileNotFoundError, PermissionError):
            pass
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)
    rows = _count_rows(dsn) - base
    if rows < target_rows:
        raise RuntimeError(f"ingest committed {rows} of {target_rows} rows")
    secs = t1 - t0
    return {
        "secs": secs,
        "rows_s": rows / secs,
        "msgs_s": msgs / secs,
        "cpu_ms_per_1000": (cpu + cpu_pg) / msgs * 1e6,
        "cpu_ingest_ms_per_1000": cpu / msgs * 1e6,
        "cpu_pg_ms_per_1000": cpu_pg / msgs * 1e6,
    }


def _measure_steady(dsn: str, url: str, prep: dict, a: argparse.Namespace, msgs: int) -> dict[str, float]:  # type: ignore[type-arg]
    """Ingest a live stream at a fixed rate (each device once per steady_devices/steady_rate seconds):
    CPU per 1,000 messages of ingest and its PostgreSQL backend, while keeping up."""
    procs = [prep["start"](e) for e in prep["envs"]]
    connected: dict[int, tuple[float, float]] = {}
    for p in procs:
        threading.Thread(target=_connected_at, args=(p, connected), daemon=True).start()
    deadline = time.monotonic() + 60
    while not connected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    backends = _pg_backend_pids(dsn, "placewatch")
    ingest0 = sum(cpu_seconds(p.pid) for p in procs)
    pg0 = sum(cpu_seconds(b) for b in backends)
    run_fleet(
        url,
        devices=a.steady_devices,
        count=msgs,
        rate=a.steady_rate,
        processes=2,
        prefix="bench-f/v1",
        id_prefix="bench",
        window=200,
    )
    published = time.perf_counter()
    deadline = time.monotonic() + 120
    while _committed(prep["envs"]) < 2 * msgs and time.monotonic() < deadline:
        time.sleep(0.02)
    tail = time.perf_counter() - published
    cpu_ingest = sum(cpu_seconds(p.pid) for p in procs) - ingest0
    cpu_pg = sum(cpu_seconds(b) for b in backends) - pg0
    committed = _committed(prep["envs"])
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)
    if committed < 2 * msgs:
        raise RuntimeError(f"steady stream: ingest committed {committed} of {2 * msgs} rows")
    return {
        "cpu_ms_per_1000": (cpu_ingest + cpu_pg) / msgs * 1e6,
        "cpu_ingest_ms_per_1000": cpu_ingest / msgs * 1e6,
        "cpu_pg_ms_per_1000": cpu_pg / msgs * 1e6,
        "tail_s": tail,
    }


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the ingest benchmark and print its table."""
    ap = argparse.ArgumentParser(prog="python -m bench.ingest")
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--naive", type=int, default=20_000, help="messages for the naive subscriber")
    ap.add_argument("--batch-messages", type=int, default=4000, help="messages of 100 readings")
    ap.add_argument("--processes", type=int, default=3, help="publisher processes")
    ap.add_argument("--steady-devices", type=int, default=50_000, help="devices of the steady stream")
    ap.add_argument("--steady-rate", type=int, default=5_000, help="messages/s of the steady stream")
    ap.add_argument("--steady-seconds", type=int, default=20)
    a = ap.parse_args(argv)
    figures: list[Figure] = []
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    broker = start_mosquitto(tmp, persistence=False)
    url = broker.url
    devices = device_ids(max(a.devices, a.steady_devices), "bench")
    try:
        with fresh_database() as dsn:
            from store.migrate import migrate

            with connect(dsn) as conn:
                migrate(conn)
            text = _registry(devices)
            with connect(dsn) as conn:
                registry.load(conn, parse_registry(text), text=text)
            n = a.messages
            print(f"ingest bench: {n:,} messages of 1 reading (2 values) from {a.devices:,} devices; broker {url}")

            # (a) the broker delivering to a subscriber that does nothing
            null = _Drain(url, "bench-a/v1/devices/#")
            null.register()
            pub_rate = _preload(url, "bench-a/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
            rate_a = null.drain(n)
            print(f"  publisher loaded at {pub_rate:,.0f} msg/s; null subscriber drained at {rate_a:,.0f} msg/s")
            stock = _Drain(url, "bench-s/v1/devices/#", stock=True)
            stock.register()
            _preload(url, "bench-s/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
            rate_s = stock.drain(n)
            print(f"  the same with paho's own Client: {rate_s:,.0f} msg/s")

            # (d) placewatch ingest, one process
            prep = _run_ingest(dsn, url, "bench-d/v1", target_rows=2 * n, msgs=n)
            _preload(url, "bench-d/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
            d = _measure_ingest(dsn, prep, target_rows=2 * n, msgs=n)
            print(
                f"  placewatch ingest: {d['msgs_s']:,.0f} msg/s, {d['rows_s']:,.0f} rows/s, "
                f"{d['cpu_ms_per_1000']:.1f} core-ms per 1,000 messages (ingest {d['cpu_ingest_ms_per_1000']:.1f}"
                f" + PostgreSQL backend {d['cpu_pg_ms_per_1000']:.1f})"
            )

            # (b) naive: one INSERT and commit per message
            naive = _Drain(url, "bench-b/v1/devices/#", _naive_worker(dsn))
            naive.register()
            _preload(url, "bench-b/v1", messages=a.naive, devices=a.devices, per_message=1, processes=a.processes)
            rate_b = naive.drain(a.naive)
            print(f"  naive subscriber (INSERT + commit per message): {rate_b:,.0f} msg/s")

            # (e) two ingest processes on a shared subscription
            prep2 = _run_ingest(dsn, url, "bench-e/v1", target_rows=2 * n, workers=2, msgs=n)
            _preload(url, "bench-e/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
            e = _measure_ingest(dsn, prep2, target_rows=2 * n, msgs=n)
            print(f"  two ingest processes: {e['msgs_s']:,.0f} msg/s")

            # (c) 100-reading messages against binary COPY of the same number of rows
            m = a.batch_messages
            rows100 = m * 100 * 2
            prep3 = _run_ingest(dsn, url, "bench-c/v1", target_rows=rows100, msgs=m)
            _preload(url, "bench-c/v1", messages=m, devices=a.devices, per_message=100, processes=a.processes)
            c = _measure_ingest(dsn, prep3, target_rows=rows100, msgs=m)
            copy_rate = _copy_rate(dsn, rows100)
            print(
                f"  100-reading messages: {c['rows_s']:,.0f} rows/s; "
                f"binary COPY of the same rows {copy_rate:,.0f} rows/s"
            )

            # (f) steady state: a live stream in which each message comes from a different device
            sm = a.steady_rate * a.steady_seconds
            prep4 = _run_ingest(dsn, url, "bench-f/v1", target_rows=2 * sm, msgs=sm)
            steady = _measure_steady(dsn, url, prep4, a, sm)
            print(
                f"  steady stream of {a.steady_rate:,} msg/s from {a.steady_devices:,} devices: "
                f"{steady['cpu_ms_per_1000']:.1f} core-ms per 1,000 messages (ingest "
                f"{steady['cpu_ingest_ms_per_1000']:.1f} + PostgreSQL {steady['cpu_pg_ms_per_1000']:.1f}); "
                f"all committed {steady['tail_s']:.2f} s after the last publish"
            )

            figures += [
                Figure(
                    "ingest msg/s vs broker to a do-nothing subscriber",
                    d["msgs_s"],
                    "msg/s",
                    f"null subscriber (our client) {rate_a:,.0f} msg/s",
                    d["msgs_s"] / rate_a,
                    ">= 0.8",
                    d["msgs_s"] / rate_a >= 0.8,
                ),
                Figure(
                    "  (same, against paho's own Client doing nothing)",
                    d["msgs_s"],
                    "msg/s",
                    f"paho null subscriber {rate_s:,.0f} msg/s",
                    d["msgs_s"] / rate_s,
                    "",
                    None,
                ),
                Figure(
                    "ingest msg/s vs one INSERT + commit per message",
                    d["msgs_s"],
                    "msg/s",
                    f"naive {rate_b:,.0f} msg/s",
                    d["msgs_s"] / rate_b,
                    ">= 6",
                    d["msgs_s"] / rate_b >= 6,
                ),
                Figure(
                    "ingest rows/s, 100-reading messages, vs binary COPY",
                    c["rows_s"],
                    "rows/s",
                    f"COPY {copy_rate:,.0f} rows/s",
                    c["rows_s"] / copy_rate,
                    ">= 0.5",
                    c["rows_s"] / copy_rate >= 0.5,
                ),
                Figure(
                    f"two ingest processes vs one ({os.cpu_count()} cores)",
                    e["msgs_s"],
                    "msg/s",
                    f"one process {d['msgs_s']:,.0f} msg/s",
                    e["msgs_s"] / d["msgs_s"],
                    ">= 1.6*",
                    None,
                ),
                Figure(
                    "CPU of ingest + PostgreSQL per 1,000 messages",
                    d["cpu_ms_per_1000"],
                    "ms",
                    "Python COPY batcher 55 (measured by issue)",
                    d["cpu_ms_per_1000"] / 55,
                    "<= 40",
                    d["cpu_ms_per_1000"] <= 40,
                ),
            ]
            figures.append(
                Figure(
                    f"  steady stream, {a.steady_rate:,} msg/s, each from another device",
                    steady["cpu_ms_per_1000"],
                    "ms",
                    "backlog drain above",
                    steady["cpu_ms_per_1000"] / d["cpu_ms_per_1000"],
                    "",
                    None,
                )
            )
            print_table("ingest", figures)
            print(
                "* where cores allow: the broker, PostgreSQL, publisher and both workers share "
                f"{os.cpu_count()} cores here."
            )
    finally:
        broker.stop()
    return figures


if __name__ == "__main__":
    main()
