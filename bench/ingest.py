"""Ingest cost on the stream councils have, against real peers in the same run; and a backlog drain.

The headline: a live stream at a steady rate from many devices (50,000 by default), one reading message each
per interval, RFC 3339 times with Z and with offsets (mixed), two or three values per message
(bench/peers/stream.py). One after another, on the same private broker, publisher, stream and PostgreSQL:

- placewatch ingest (acknowledges each message only after what it carried is committed);
- the floor: a do-nothing subscriber on Placewatch's MQTT client with ingest's read pause, plus binary COPY of the
  same rows; the same subscriber without the pause, and on paho's own Client through its public API (issue 15);
- a simple Python COPY batcher (bench/peers/copy_batcher.py, acknowledges on arrival);
- Node-RED 5's batch flow (bench/peers/nodered: mqtt in -> batch 200 ms -> one multi-row INSERT; Node.js 22,
  Node-RED and pg installed from npm into ~/.cache/placewatch-bench on first use; skipped, saying why, when
  they cannot be installed; acknowledges on arrival).

Each pipeline first gets one message from every device (a warm-up: the state a running deployment has,
such as ingest's series), then the measured stream. For each: CPU core-milliseconds per 1,000 messages, the
consumer's process and its PostgreSQL backends (from /proc) apart, the cores and the machine's load
average; then the ratios. On a shared machine
compare the ratios of one run, not figures of different runs.

Second figure: draining a preloaded backlog (200,000 one-reading messages with epoch-millisecond times from
1,000 devices, after an outage say), against a do-nothing subscriber draining the same; with `--extras`
(default on) also one INSERT per message, two ingest processes, and 100-reading messages against COPY.

    python -m bench.ingest [--stream-devices 50000] [--stream-rate 5000] [--stream-seconds 20]
                           [--messages 200000] [--devices 1000] [--no-extras] [--no-peers]
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from bench.common import ROOT, Figure, cpu_seconds, load_now, print_table
from bench.engines import add_engine_args, engines_of, print_side_by_side
from bench.peers import nodered
from bench.peers.stream import StreamResult, publish_stream
from core.registry import parse_registry
from placewatch.embedded import start_mosquitto
from placewatch.mqttclient import connect_args, make_client
from simulators.fleet import device_ids, run_fleet
from store import registry
from store.db import connect
from tests.services import TIMESCALEDB_SETTING, fresh_database

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


def _at_most_every(seconds: float, check: Callable[[StreamResult], bool]) -> Callable[[StreamResult], bool]:
    """check, asked at most every `seconds` (False in between): asking may cost the pipeline being measured."""
    last = [0.0]

    def throttled(sent: StreamResult) -> bool:
        if time.monotonic() - last[0] < seconds:
            return False
        last[0] = time.monotonic()
        return check(sent)

    return throttled


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


@dataclass(frozen=True, slots=True)
class Cost:
    """CPU of one pipeline on the stream: its consumer process(es) and its PostgreSQL backends."""

    name: str
    messages: int
    consumer_s: float
    pg_s: float
    load: float
    acks_after_commit: bool
    tail_s: float = 0.0  # from the last acknowledged publish to the last commit

    @property
    def consumer_ms(self) -> float:
        """Consumer core-ms per 1,000 messages."""
        return self.consumer_s / self.messages * 1e6

    @property
    def pg_ms(self) -> float:
        """PostgreSQL core-ms per 1,000 messages."""
        return self.pg_s / self.messages * 1e6

    @property
    def total_ms(self) -> float:
        """Consumer plus PostgreSQL core-ms per 1,000 messages."""
        return self.consumer_ms + self.pg_ms

    def line(self) -> str:
        """The cost as printed."""
        return (
            f"{self.total_ms:6.1f} core-ms per 1,000 messages (consumer {self.consumer_ms:.1f} + PostgreSQL "
            f"{self.pg_ms:.1f}); {os.cpu_count()} cores, load {self.load:.1f}"
        )


def _backend_cpu(dsn: str, app: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend with this application_name."""
    out = {}
    for pid in _pg_backend_pids(dsn, app):
        try:
            out[pid] = cpu_seconds(pid)
        except (FileNotFoundError, PermissionError):
            pass
    return out


def _stream_cost(
    name: str,
    *,
    dsn: str,
    url: str,
    a: argparse.Namespace,
    prefix: str,
    pids: Callable[[], list[int]],
    app: str | None,
    done: Callable[[StreamResult], bool],
    acks_after_commit: bool,
    timeout: float = 180.0,
) -> Cost:
    """Publish the stream to a consumer already subscribed under `prefix`: first one message from every device
    (a warm-up: the state a running deployment has, such as ingest's series), then the measured stream. CPU
    from the first publish of the stream to the consumer's last commit (`done`: given what was published in
    all), of its processes and of its PostgreSQL backends (`app`)."""

    def publish(count: int, before: StreamResult | None) -> tuple[StreamResult, float]:
        sent = publish_stream(
            url,
            devices=a.stream_devices,
            count=count,
            rate=a.stream_rate,
            prefix=prefix,
            processes=a.processes_stream,
        )
        if sent.acked != sent.messages:
            raise RuntimeError(f"{name}: the broker acknowledged {sent.acked} of {sent.messages} published messages")
        if before is not None:
            sent = StreamResult(
                sent.messages + before.messages,
                sent.readings + before.readings,
                sent.acked + before.acked,
                sent.seconds,
            )
        published = time.perf_counter()
        deadline = time.monotonic() + timeout
        while not done(sent):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not all of the stream committed within {timeout:.0f} s after publishing")
            time.sleep(0.05)
        return sent, time.perf_counter() - published

    warm = publish(a.stream_devices, None)[0] if a.warmup else None
    pg0 = _backend_cpu(dsn, app) if app else {}
    c0 = {p: cpu_seconds(p) for p in pids()}
    total, tail = publish(a.stream_rate * a.stream_seconds, warm)
    sent = StreamResult(total.messages - (warm.messages if warm else 0), 0, 0, 0.0)
    consumer = sum(cpu_seconds(p) - c0.get(p, 0.0) for p in pids())
    pg1 = _backend_cpu(dsn, app) if app else {}
    pg = sum(cpu - pg0.get(pid, 0.0) for pid, cpu in pg1.items())
    return Cost(name, sent.messages, consumer, pg, load_now(), acks_after_commit, tail)


class _Counting:
    """A peer process that prints a running count, one number a line; the last one read is kept."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.count = 0
        self.subscribed = threading.Event()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.isdigit():
                self.count = int(line)
            elif line == "subscribed":
                self.subscribed.set()
            else:
                self.output.append(line)

    def wait_subscribed(self, what: str) -> None:
        if not self.subscribed.wait(30):
            self.stop()
            raise RuntimeError(f"{what} did not subscribe: {' / '.join(self.output[-5:])}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _stream_ingest(dsn: str, url: str, a: argparse.Namespace) -> Cost:
    prefix = "bench-live/v1"
    prep = _run_ingest(dsn, url, prefix, target_rows=0, msgs=0)
    procs = [prep["start"](e) for e in prep["envs"]]
    connected: dict[int, tuple[float, float]] = {}
    for p in procs:
        threading.Thread(target=_connected_at, args=(p, connected), daemon=True).start()
    deadline = time.monotonic() + 60
    while len(connected) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the subscription's acknowledgement
    try:
        return _stream_cost(
            "placewatch ingest",
            dsn=dsn,
            url=url,
            a=a,
            prefix=prefix,
            pids=lambda: [p.pid for p in procs],
            app="placewatch",
            # Each ask is an HTTP request to ingest's /metrics: its CPU, counted as ingest's; four a second.
            done=_at_most_every(0.25, lambda sent: _committed(prep["envs"]) >= sent.readings),
            acks_after_commit=True,
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)


def _stream_null(dsn: str, url: str, a: argparse.Namespace, *, pause: float, paho: bool = False) -> Cost:
    """The do-nothing subscriber on the stream: on our client with a read pause (ingest's: the floor), or on paho's
    own Client through its public API only (issue 15)."""
    prefix = f"bench-null{'-paho' if paho else ''}-{int(pause * 1000)}/v1"
    if paho:
        name = "do-nothing subscriber, paho's own Client (public API)"
    else:
        name = f"do-nothing subscriber, our client, read pause {pause * 1000:.0f} ms"
    peer = _Counting(
        ["bench.peers.null_subscriber", url, f"{prefix}/devices/#", str(pause), *(["paho"] if paho else [])]
    )
    try:
        peer.wait_subscribed("the do-nothing subscriber")
        return _stream_cost(
            name,
            dsn=dsn,
            url=url,
            a=a,
            prefix=prefix,
            pids=lambda: [peer.proc.pid],
            app=None,
            done=lambda sent: peer.count >= sent.messages,
            acks_after_commit=False,
        )
    finally:
        peer.stop()


def _stream_batcher(dsn: str, url: str, a: argparse.Namespace) -> Cost:
    prefix = "bench-batcher/v1"
    peer = _Counting(["bench.peers.copy_batcher", url, f"{prefix}/devices/#", dsn])
    try:
        peer.wait_subscribed("the Python COPY batcher")
        return _stream_cost(
            "simple Python COPY batcher",
            dsn=dsn,
            url=url,
            a=a,
            prefix=prefix,
            pids=lambda: [peer.proc.pid],
            app="bench-batcher",
            done=lambda sent: peer.count >= sent.messages,
            acks_after_commit=False,
        )
    finally:
        peer.stop()


NODE_RED = "Node-RED 5, batch 200 ms -> one multi-row INSERT"


def _stream_nodered(dsn: str, url: str, a: argparse.Namespace, work: Path) -> Cost | str:
    """Node-RED's batch flow on the stream, or why it could not run."""
    got = nodered.install()
    if isinstance(got, str):
        return got
    node, modules = got
    with connect(dsn, autocommit=True) as conn:
        conn.execute(nodered.TABLE)
    prefix = "bench-nodered/v1"
    from placewatch.mqttclient import BrokerAddress

    broker = BrokerAddress.parse(url)
    proc = nodered.start(
        node,
        modules,
        host=broker.host,
        port=broker.port,
        topic=f"{prefix}/devices/#",
        dsn=dsn,
        ui_port=_free_port(),
        work=work / "nodered",
    )
    log: list[str] = []
    connected = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            log.append(line)
            if "Connected to broker" in line:
                connected.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not connected.wait(90):
            return "Node-RED did not connect to the broker: " + " / ".join(log[-5:])
        time.sleep(1.0)  # the subscription's acknowledgement
        counter = connect(dsn, autocommit=True)

        def counted(sent: StreamResult) -> bool:
            return int(counter.execute("SELECT count(*) FROM nodered_readings").fetchone()[0]) >= sent.readings

        done = _at_most_every(0.5, counted)  # counting costs PostgreSQL CPU, though not the measured backends'

        try:
            return _stream_cost(
                NODE_RED,
                dsn=dsn,
                url=url,
                a=a,
                prefix=prefix,
                pids=lambda: [proc.pid],
                app="bench-nodered",
                done=done,
                acks_after_commit=False,
            )
        except RuntimeError as exc:
            return f"{exc}; its log: {' / '.join(log[-3:])}"
        finally:
            counter.close()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _copy_cost(dsn: str, a: argparse.Namespace, readings: int, messages: int) -> Cost:
    """Binary COPY of as many reading rows as the stream carried, in commits of what 200 ms of it holds, into a
    table keyed like readings: the client's CPU (this thread) and its backend's."""
    per_commit = max(1, int(a.stream_rate * 0.2 * readings / messages))
    series = int(a.stream_devices * readings / messages)
    base = datetime.now(UTC)
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS copy_stream (series_id integer, ts timestamptz, value double precision,"
            " label text, PRIMARY KEY (series_id, ts))"
        )
        conn.commit()
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        pg0, c0 = cpu_seconds(backend), time.thread_time()
        for start in range(0, readings, per_commit):
            with conn.cursor().copy("COPY copy_stream FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "timestamptz", "float8", "text"])
                for i in range(start, min(start + per_commit, readings)):
                    cp.write_row((1 + i % series, base + timedelta(seconds=i // series), 20.0 + (i % 97) / 10, None))
            conn.commit()
        consumer, pg = time.thread_time() - c0, cpu_seconds(backend) - pg0
    return Cost("binary COPY of the same rows", messages, consumer, pg, load_now(), False)


def _stream_section(dsn: str, url: str, a: argparse.Namespace, work: Path) -> list[Figure]:
    """The headline: every pipeline on the same live stream, one after another."""
    print(
        f"live stream: {a.stream_rate:,} msg/s for {a.stream_seconds} s from {a.stream_devices:,} devices, one message"
        " each per interval, RFC 3339 times (Z and offsets), 2 or 3 values; one pipeline after another",
        flush=True,
    )
    if a.floor_only:
        from ingest.service import READ_PAUSE_S

        for pause in (READ_PAUSE_S, 0.0):
            null = _stream_null(dsn, url, a, pause=pause)
            print(f"  {null.name:<50} {null.line()}", flush=True)
        return []
    ours = _stream_ingest(dsn, url, a)
    print(f"  {ours.name:<50} {ours.line()}; committed {ours.tail_s:.2f} s after the last publish", flush=True)
    if not a.peers:
        return [
            Figure(
                "live stream: ingest + PostgreSQL per 1,000 msgs",
                ours.total_ms,
                "ms",
                "peers not run",
                None,
                "<= 40",
                ours.total_ms <= 40,
                ours.load,
            )
        ]
    from ingest.service import READ_PAUSE_S

    null = _stream_null(dsn, url, a, pause=READ_PAUSE_S)  # the floor: receiving as ingest receives
    print(f"  {null.name:<50} {null.line()}", flush=True)
    unpaused = _stream_null(dsn, url, a, pause=0.0)
    print(f"  {unpaused.name:<50} {unpaused.line()}", flush=True)
    stock = _stream_null(dsn, url, a, pause=0.0, paho=True)
    print(f"  {stock.name:<50} {stock.line()}", flush=True)
    copy = _copy_cost(dsn, a, int(ours.messages * _readings_per_message(a)), ours.messages)
    print(f"  {copy.name:<50} {copy.line()}", flush=True)
    batcher = _stream_batcher(dsn, url, a)
    print(f"  {batcher.name:<50} {batcher.line()}", flush=True)
    red = _stream_nodered(dsn, url, a, work)
    if isinstance(red, str):
        print(f"  {NODE_RED}: SKIPPED: {red}", flush=True)
    else:
        print(f"  {red.name:<50} {red.line()}", flush=True)
    floor = null.total_ms + copy.total_ms
    print(f"  floor (do-nothing subscriber + binary COPY): {floor:.1f} core-ms per 1,000 messages")
    print(
        f"  ratios: placewatch / floor {ours.total_ms / floor:.2f}; Python COPY batcher / placewatch "
        f"{batcher.total_ms / ours.total_ms:.2f}",
        end="",
    )
    if not isinstance(red, str):
        print(f"; Node-RED / placewatch {red.total_ms / ours.total_ms:.2f}", end="")
    print(f"; only placewatch acknowledges after commit ({os.cpu_count()} cores)", flush=True)
    figures = [
        Figure(
            "live stream: ingest + PostgreSQL per 1,000 msgs",
            ours.total_ms,
            "ms",
            f"ingest {ours.consumer_ms:.1f} + PostgreSQL {ours.pg_ms:.1f}",
            None,
            "<= 40",
            ours.total_ms <= 40,
            ours.load,
        ),
        Figure(
            "  vs the floor (do-nothing subscriber + COPY)",
            ours.total_ms,
            "ms",
            f"floor {floor:.1f} ({null.total_ms:.1f} + {copy.total_ms:.1f})",
            ours.total_ms / floor,
            "<= 1.5",
            ours.total_ms / floor <= 1.5,
            null.load,
        ),
        Figure(
            "  receiving: paho's own Client vs ours, no pause",
            stock.total_ms,
            "ms",
            f"our client {unpaused.total_ms:.1f} (with ingest's pause {null.total_ms:.1f})",
            stock.total_ms / unpaused.total_ms,
            "(issue 15)",
            None,
            stock.load,
        ),
        Figure(
            "  vs a simple Python COPY batcher",
            ours.total_ms,
            "ms",
            f"batcher {batcher.total_ms:.1f} ({batcher.consumer_ms:.1f} + {batcher.pg_ms:.1f})",
            batcher.total_ms / ours.total_ms,
            "(x cheaper)",
            None,
            batcher.load,
        ),
    ]
    if isinstance(red, str):
        figures.append(Figure("  vs Node-RED 5 batch flow: skipped", ours.total_ms, "ms", red[:44], None))
    else:
        figures.append(
            Figure(
                "  vs Node-RED 5 batch 200 ms -> multi-row INSERT",
                ours.total_ms,
                "ms",
                f"Node-RED {red.total_ms:.1f} ({red.consumer_ms:.1f} + {red.pg_ms:.1f})",
                red.total_ms / ours.total_ms,
                ">= 2 (x cheaper)",
                red.total_ms / ours.total_ms >= 2,
                red.load,
            )
        )
    return figures


def _readings_per_message(a: argparse.Namespace) -> float:
    from bench.peers.stream import values_per_message

    return values_per_message(a.stream_devices)


def _backlog_section(dsn: str, url: str, a: argparse.Namespace) -> list[Figure]:
    """Draining a preloaded backlog, against a do-nothing subscriber draining the same; extras if asked."""
    n = a.messages
    print(f"backlog drain: {n:,} messages of 1 reading (2 values, epoch-ms times) from {a.devices:,} devices")
    null = _Drain(url, "bench-a/v1/devices/#")
    null.register()
    pub_rate = _preload(url, "bench-a/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
    rate_a = null.drain(n)
    print(f"  publisher loaded at {pub_rate:,.0f} msg/s; null subscriber drained at {rate_a:,.0f} msg/s")
    prep = _run_ingest(dsn, url, "bench-d/v1", target_rows=2 * n, msgs=n)
    _preload(url, "bench-d/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
    d = _measure_ingest(dsn, prep, target_rows=2 * n, msgs=n)
    load = load_now()
    print(
        f"  placewatch ingest: {d['msgs_s']:,.0f} msg/s, {d['rows_s']:,.0f} rows/s, "
        f"{d['cpu_ms_per_1000']:.1f} core-ms per 1,000 messages (ingest {d['cpu_ingest_ms_per_1000']:.1f}"
        f" + PostgreSQL backend {d['cpu_pg_ms_per_1000']:.1f}); {os.cpu_count()} cores, load {load:.1f}"
    )
    figures = [
        Figure(
            "backlog: ingest + PostgreSQL per 1,000 msgs",
            d["cpu_ms_per_1000"],
            "ms",
            f"ingest {d['cpu_ingest_ms_per_1000']:.1f} + PostgreSQL {d['cpu_pg_ms_per_1000']:.1f}",
            None,
            "<= 25",
            d["cpu_ms_per_1000"] <= 25,
            load,
        ),
        Figure(
            "backlog: ingest msg/s vs a do-nothing subscriber",
            d["msgs_s"],
            "msg/s",
            f"null subscriber (our client) {rate_a:,.0f} msg/s",
            d["msgs_s"] / rate_a,
            ">= 0.8",
            d["msgs_s"] / rate_a >= 0.8,
            load,
        ),
    ]
    if not a.extras:
        return figures
    stock = _Drain(url, "bench-s/v1/devices/#", stock=True)
    stock.register()
    _preload(url, "bench-s/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
    rate_s = stock.drain(n)
    print(f"  the do-nothing subscriber on paho's own Client: {rate_s:,.0f} msg/s")
    naive = _Drain(url, "bench-b/v1/devices/#", _naive_worker(dsn))
    naive.register()
    _preload(url, "bench-b/v1", messages=a.naive, devices=a.devices, per_message=1, processes=a.processes)
    rate_b = naive.drain(a.naive)
    print(f"  naive subscriber (INSERT + commit per message): {rate_b:,.0f} msg/s")
    prep2 = _run_ingest(dsn, url, "bench-e/v1", target_rows=2 * n, workers=2, msgs=n)
    _preload(url, "bench-e/v1", messages=n, devices=a.devices, per_message=1, processes=a.processes)
    e = _measure_ingest(dsn, prep2, target_rows=2 * n, msgs=n)
    print(f"  two ingest processes: {e['msgs_s']:,.0f} msg/s")
    m = a.batch_messages
    rows100 = m * 100 * 2
    prep3 = _run_ingest(dsn, url, "bench-c/v1", target_rows=rows100, msgs=m)
    _preload(url, "bench-c/v1", messages=m, devices=a.devices, per_message=100, processes=a.processes)
    c = _measure_ingest(dsn, prep3, target_rows=rows100, msgs=m)
    copy_rate = _copy_rate(dsn, rows100)
    print(f"  100-reading messages: {c['rows_s']:,.0f} rows/s; binary COPY of the same rows {copy_rate:,.0f} rows/s")
    load = load_now()
    return [
        *figures,
        Figure(
            "  (backlog, against paho's own Client doing nothing)",
            d["msgs_s"],
            "msg/s",
            f"paho null subscriber {rate_s:,.0f} msg/s",
            d["msgs_s"] / rate_s,
            "",
            None,
            load,
        ),
        Figure(
            "backlog: ingest msg/s vs one INSERT + commit per msg",
            d["msgs_s"],
            "msg/s",
            f"naive {rate_b:,.0f} msg/s",
            d["msgs_s"] / rate_b,
            ">= 6",
            d["msgs_s"] / rate_b >= 6,
            load,
        ),
        Figure(
            "ingest rows/s, 100-reading messages, vs binary COPY",
            c["rows_s"],
            "rows/s",
            f"COPY {copy_rate:,.0f} rows/s",
            c["rows_s"] / copy_rate,
            ">= 0.5",
            c["rows_s"] / copy_rate >= 0.5,
            load,
        ),
        Figure(
            f"two ingest processes vs one ({os.cpu_count()} cores)",
            e["msgs_s"],
            "msg/s",
            f"one process {d['msgs_s']:,.0f} msg/s",
            e["msgs_s"] / d["msgs_s"],
            ">= 1.6*",
            None,
            load,
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the ingest benchmark and print its table."""
    ap = argparse.ArgumentParser(prog="python -m bench.ingest")
    ap.add_argument("--stream-devices", type=int, default=50_000, help="devices of the live stream")
    ap.add_argument("--stream-rate", type=int, default=5_000, help="messages/s of the live stream")
    ap.add_argument("--stream-seconds", type=int, default=20)
    ap.add_argument("--processes-stream", type=int, default=2, help="publisher processes of the live stream")
    ap.add_argument(
        "--warmup", action=argparse.BooleanOptionalAction, default=True, help="one message from every device first"
    )
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="run the peers")
    ap.add_argument(
        "--floor-only",
        action="store_true",
        help="only the do-nothing subscriber on our client, with ingest's read pause and without (the client's cost)",
    )
    ap.add_argument("--backlog", action=argparse.BooleanOptionalAction, default=True, help="the backlog drain")
    ap.add_argument("--extras", action=argparse.BooleanOptionalAction, default=True, help="the backlog's extras")
    ap.add_argument("--messages", type=int, default=200_000, help="messages of the backlog")
    ap.add_argument("--devices", type=int, default=1000, help="devices of the backlog")
    ap.add_argument("--naive", type=int, default=20_000, help="messages for the naive subscriber")
    ap.add_argument("--batch-messages", type=int, default=4000, help="messages of 100 readings")
    ap.add_argument("--processes", type=int, default=3, help="publisher processes of the backlog")
    add_engine_args(ap)  # --engine native|timescale|both, --timescale-url (bench.engines)
    a = ap.parse_args(argv)
    runs = engines_of(ap, a)
    figures: list[Figure] = []
    by_engine: dict[str, list[Figure]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    broker = start_mosquitto(tmp, persistence=False)
    url = broker.url
    devices = device_ids(max(a.devices, a.stream_devices), "bench")
    try:
        for eng, admin in runs:  # one engine after the other (bench.engines)
            with fresh_database(admin) as dsn:
                from store.migrate import migrate

                with connect(dsn) as conn:
                    migrate(conn, timescaledb=TIMESCALEDB_SETTING[eng])  # refuses a server without the engine
                text = _registry(devices)
                with connect(dsn) as conn:
                    registry.load(conn, parse_registry(text), text=text)
                print(f"ingest bench on {eng}: broker {url}; {os.cpu_count()} cores, load {load_now():.1f}", flush=True)
                got = _stream_section(dsn, url, a, tmp)
                if a.backlog:
                    got += _backlog_section(dsn, url, a)
                print_table(f"ingest on {eng}", got)
                by_engine[eng] = got
                figures += got
        if len(by_engine) > 1:
            pairs = zip(by_engine["native"], by_engine["timescale"], strict=False)
            rows = [(n.name, _cell(n), _cell(t)) for n, t in pairs]
            print_side_by_side("ingest on both engines", rows)
        print(
            "* where cores allow: the broker, PostgreSQL, publisher and both workers share "
            f"{os.cpu_count()} cores here."
        )
    finally:
        broker.stop()
    return figures


def _cell(f: Figure) -> str:
    """A figure for the side-by-side table: its ratio against its reference where it has one (the rows that compare
    Placewatch with the floor and the peers all measure the same stream), with its target where it has one (a
    target in parentheses, such as "(x cheaper)", is a note, not a target), else its value."""
    if f.ratio is not None:
        target = f" (target {f.target})" if f.target and not f.target.startswith("(") else ""
        return f"{f.ratio:.2f}{target}"
    return f"{f.value:,.1f} {f.unit}"


if __name__ == "__main__":
    main()
