"""Gritting decisions: how fast a threshold-crossing reading becomes a decision people can see, and how long
one evaluation sweep over 1,000 routes of 3 stations takes.

Method, latency: a private Mosquitto and a fresh database; `placewatch ingest`, `placewatch alerts` and
`placewatch api` run as processes, as in production. Each of N routes has one road station holding an hour
of a wet road at +1.2 C (the evaluator's decision: monitor). Then, one route at a time, the station
publishes one reading at +0.3 C, at or below the +0.5 C trigger; the clock starts just before that
publish. The decision is "visible" when GET /api/v1/routes/{id} shows precautionary_salt (polled every
few ms) and when the retained alert with that action arrives on placewatch/v1/alerts/gritting/{id}.
Reference, in the same run: when the reading itself is committed (series_latest.last_ts polled in PostgreSQL),
which is ingest's share of the time; the rest is notification, debounce (0.5 s), evaluation and publishing.

Method, sweep: a second fresh database with 1,000 routes of 3 stations each and 6 h of readings every
10 minutes from the road simulator (a mix of its scenarios), written with ingest's COPY writer; then
GrittingEvaluator.evaluate over every route with a real pool and a real MQTT publisher, at a fixed
`now`: first when every route needs a new decision (1,000 decisions stored and published), then again
when nothing changed. Reference: core.gritting.decide alone over the same inputs in memory.

    python -m bench.decisions [--iterations 60] [--routes 1000] [--stations-per-route 3] [--skip-sweep]

Targets: p99 under 2 s to the API and to MQTT; the sweep in a few seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from alerts.context import AlertContext
from alerts.gritting import GrittingEvaluator
from alerts.publisher import AlertPublisher
from api.security import hash_password
from bench.common import Figure, print_table
from core.gritting import GrittingPolicy, RouteInput, StationObs, StationSample, decide
from core.model import Reading
from core.registry import parse_registry
from placewatch.embedded import free_port, start_mosquitto
from placewatch.mqttclient import connect_args, make_client
from placewatch.settings import Settings
from simulators.publisher import payload_of, readings_topic
from simulators.road import SCENARIOS, RoadStation
from store import registry, users
from store.db import connect, open_pool
from store.migrate import migrate
from store.writer import Batch, Writer
from tests.helpers import collection, route, station
from tests.services import Proc, Publisher, fresh_database, start_service

TARGET_P99_S = 2.0
STEP = timedelta(minutes=10)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


def _env(dsn: str, mqtt_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PLACEWATCH_DATABASE_URL": dsn,
        "PLACEWATCH_MQTT_URL": mqtt_url,
        "PLACEWATCH_ENVIRONMENT": "test",
        "PLACEWATCH_LOG_LEVEL": "info",
        "PLACEWATCH_SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
        "PLACEWATCH_MQTT_CLIENT_ID": f"pw-bench-ingest-{uuid.uuid4().hex[:6]}",
    }
    env.update(extra)
    return env


class _Alerts:
    """Records when each route's retained gritting alert first shows an action."""

    def __init__(self, url: str) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = make_client(url, client_id=f"pw-bench-sub-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("placewatch/v1/alerts/gritting/#", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._message
        self.client.connect(**connect_args(self.client))  # type: ignore[arg-type]
        self.client.loop_start()
        ready.wait(10)

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.perf_counter()
        if not msg.payload:
            return
        body = orjson.loads(msg.payload)
        with self.lock:
            self.seen.setdefault((body["route_id"], body["action"]), now)

    def at(self, route_id: str, action: str) -> float | None:
        with self.lock:
            return self.seen.get((route_id, action))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wet(ts: datetime, rst: float) -> dict[str, object]:
    return {"road_surface_temperature": rst, "air_temperature": 2.0, "dew_point": 0.0, "surface_state": "wet"}


def latency(
    iterations: int,
    mqtt_url: str,
    *,
    ingest_env: dict[str, str] | None = None,
    readings_url: str | None = None,
    readings_protocol: str = "5",
) -> dict[str, list[float]]:
    """Seconds from publishing a trigger-crossing reading to the decision in the API and on MQTT.

    Readings go to `readings_url` (default: the broker ingest and alerts use) and ingest runs with `ingest_env`
    added: bench.cluster sends them through a NATS cluster's MQTT listener to a JetStream ingest."""
    procs: list[Proc] = []
    out: dict[str, list[float]] = {"api": [], "mqtt": [], "both": [], "reading": []}
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn)
        n = iterations + 1  # the first is a warm-up
        tag = uuid.uuid4().hex[:6]
        stations = [f"bench-lat-{tag}-{i}" for i in range(n)]
        routes = [f"BL-{tag}-{i}" for i in range(n)]
        text = collection(
            *[station(s) for s in stations], *[route(r, [s]) for r, s in zip(routes, stations, strict=True)]
        )
        with connect(dsn) as conn:
            registry.load(conn, parse_registry(text), text=text)
            users.add_user(conn, name="bench-duty", password_hash=hash_password("bench-password"), role="highways")
            conn.commit()
        port = free_port()
        try:
            procs.append(start_service(["ingest"], _env(dsn, mqtt_url, **(ingest_env or {}))))
            procs[-1].wait_for("subscribed", timeout=30)
            procs.append(start_service(["alerts"], _env(dsn, mqtt_url)))
            procs[-1].wait_for("leading the alerting scheduler", timeout=30)
            procs.append(start_service(["api"], _env(dsn, mqtt_url, PLACEWATCH_API_PORT=str(port))))
            api = f"http://127.0.0.1:{port}"
            http = httpx.Client(base_url=api, timeout=5)
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get("/api/v1/live")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            token = http.post("/api/v1/auth/token", data={"username": "bench-duty", "password": "bench-password"})
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            subscriber = _Alerts(mqtt_url)
            pub = Publisher(readings_url or mqtt_url, readings_protocol)
            db = connect(dsn, autocommit=True)
            try:
                # An hour of a wet road at +1.2 C on every station: monitor, within 2 C of the trigger.
                now = datetime.now(UTC).replace(microsecond=0)
                for s in stations:
                    entries = [(now - k * STEP, _wet(now - k * STEP, 1.2)) for k in range(6, 0, -1)]
                    pub.publish(readings_topic(s), payload_of(entries))
                for r in routes:
                    _wait(lambda r=r: _action(http, r) == "monitor", 60)
                for i, (s, r) in enumerate(zip(stations, routes, strict=True)):
                    ts = datetime.now(UTC).replace(microsecond=0)
                    body = payload_of([(ts, _wet(ts, 0.3))])
                    t0 = time.perf_counter()
                    pub.publish(readings_topic(s), body)
                    t_reading = t_api = None
                    deadline = time.monotonic() + 20
                    while (t_api is None or t_reading is None) and time.monotonic() < deadline:
                        if t_reading is None and _committed(db, s, ts):
                            t_reading = time.perf_counter()
                        if t_api is None and _action(http, r) == "precautionary_salt":
                            t_api = time.perf_counter()
                        time.sleep(0.002)
                    t_mqtt = _wait(lambda r=r: subscriber.at(r, "precautionary_salt"), 20)
                    if t_api is None or t_reading is None:
                        raise RuntimeError(f"route {r}: no decision within 20 s")
                    if i == 0:
                        continue  # warm-up: first connections, first plans
                    out["api"].append(t_api - t0)
                    out["mqtt"].append(t_mqtt - t0)
                    out["both"].append(max(t_api, t_mqtt) - t0)
                    out["reading"].append(t_reading - t0)
            finally:
                db.close()
                pub.close()
                subscriber.close()
                http.close()
        finally:
            for p in procs:
                p.stop()
    return out


def _action(http: httpx.Client, route_id: str) -> str | None:
    r = http.get(f"/api/v1/routes/{route_id}")
    if r.status_code != 200:
        return None
    d = r.json().get("decision")
    return d["action"] if d else None


def _committed(db: Any, station_id: str, ts: datetime) -> bool:
    row = db.execute(
        "SELECT 1 FROM series_latest WHERE device_id = %s AND metric = 'road_surface_temperature' AND last_ts >= %s",
        (station_id, ts),
    ).fetchone()
    return row is not None


def _wait(fn: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.005)
    raise RuntimeError(f"condition not met within {timeout} s")


def sweep(routes: int, per_route: int, mqtt_url: str) -> dict[str, Any]:
    """Seconds for one evaluation of every route: all new, then unchanged; and core.decide alone."""
    names = sorted(SCENARIOS)
    now = datetime(2026, 1, 14, 21, 0, tzinfo=UTC)
    n_stations = routes * per_route
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn)
        t = time.perf_counter()
        sids = [f"bench-rws-{i}" for i in range(n_stations)]
        rids = [f"BS{i}" for i in range(routes)]
        text = collection(
            *[station(s, lon=-2.0 + (i % 100) * 0.01, lat=52.3 + (i // 100) * 0.01) for i, s in enumerate(sids)],
            *[route(r, sids[per_route * i : per_route * (i + 1)]) for i, r in enumerate(rids)],
        )
        with connect(dsn) as conn:
            registry.load(conn, parse_registry(text), text=text)
            conn.commit()
        samples: dict[str, list[StationSample]] = {}
        readings: list[Reading] = []
        times = [now - k * STEP for k in range(36, -1, -1)]
        for i, sid in enumerate(sids):
            model = RoadStation(names[i % len(names)], seed=i)
            rows = []
            for ts in times:
                v = model.values_at(ts)
                rows.append(StationSample(ts, v["road_surface_temperature"], v["air_temperature"], v["dew_point"],
                                          str(v["surface_state"])))  # fmt: skip
                for metric, value in v.items():
                    if isinstance(value, str):
                        readings.append(Reading(sid, metric, ts, label=value))
                    else:
                        readings.append(Reading(sid, metric, ts, value=float(value)))  # type: ignore[arg-type]
            samples[sid] = rows
        with connect(dsn, autocommit=True) as conn:
            writer = Writer(conn, engine="native", late_after_s=10 * 365 * 86400.0)
            for k in range(0, len(readings), 50_000):
                writer.write(Batch(readings=readings[k : k + 50_000]))
        setup_s = time.perf_counter() - t
        print(f"  sweep data: {routes:,} routes, {n_stations:,} stations, {len(readings):,} readings ({setup_s:.1f} s)")

        settings = Settings(database_url=dsn, mqtt_url=mqtt_url)
        pool = open_pool(dsn, max_size=4)
        publisher = AlertPublisher(mqtt_url, protocol="5", prefix=f"bench-{uuid.uuid4().hex[:6]}/v1")
        try:
            ctx = AlertContext(settings=settings, pool=pool, publisher=publisher, now=lambda: now)
            evaluator = GrittingEvaluator(settings)
            t = time.perf_counter()
            cold_ids = evaluator.evaluate(ctx)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            warm_ids = evaluator.evaluate(ctx)
            warm = time.perf_counter() - t
        finally:
            publisher.close()
            pool.close()
        policy = GrittingPolicy()
        inputs = [
            RouteInput(
                r, stations=tuple(StationObs(s, tuple(samples[s])) for s in sids[per_route * i : per_route * (i + 1)])
            )
            for i, r in enumerate(rids)
        ]
        t = time.perf_counter()
        for ri in inputs:
            decide(ri, now, policy)
        core_s = time.perf_counter() - t
    return {"cold": cold, "warm": warm, "core": core_s, "new_cold": len(cold_ids), "new_warm": len(warm_ids)}


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the decisions benchmark and print its table."""
    ap = argparse.ArgumentParser(prog="python -m bench.decisions")
    ap.add_argument("--iterations", type=int, default=60, help="threshold crossings timed (one route each)")
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--stations-per-route", type=int, default=3)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    a = ap.parse_args(argv)
    figures: list[Figure] = []
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    broker = start_mosquitto(tmp, persistence=False)
    try:
        if not a.skip_latency:
            print(f"decisions bench: latency over {a.iterations} threshold crossings; broker {broker.url}")
            lat = latency(a.iterations, broker.url)
            ref = percentile(lat["reading"], 50)
            for key, what in (("api", "API"), ("mqtt", "MQTT"), ("both", "API and MQTT")):
                p50, p99 = percentile(lat[key], 50), percentile(lat[key], 99)
                print(f"  to {what}: p50 {p50:.3f} s, p99 {p99:.3f} s (reading committed: p50 {ref:.3f} s)")
                name = f"reading -> decision visible ({what})"
                figures.append(
                    Figure(f"{name}, p50", p50 * 1000, "ms", f"reading committed by ingest, p50 {ref * 1000:.0f} ms",
                           p50 / ref if ref else None)
                )  # fmt: skip
                figures.append(
                    Figure(f"{name}, p99", p99 * 1000, "ms", f"target p99 < {TARGET_P99_S:g} s", p99 / TARGET_P99_S,
                           f"< {TARGET_P99_S:g} s", p99 < TARGET_P99_S)
                )  # fmt: skip
        if not a.skip_sweep:
            print(f"decisions bench: one sweep over {a.routes:,} routes of {a.stations_per_route} stations")
            s = sweep(a.routes, a.stations_per_route, broker.url)
            core = f"core.decide alone {s['core']:.2f} s"
            print(f"  first sweep ({s['new_cold']:,} new decisions stored and published): {s['cold']:.2f} s")
            print(f"  next sweep (nothing changed, {s['new_warm']} new): {s['warm']:.2f} s; {core}")
            size = f"{a.routes:,} routes x {a.stations_per_route}"
            figures.append(Figure(f"sweep {size}, all new decisions", s["cold"], "s", core, s["cold"] / s["core"]))
            figures.append(
                Figure(f"sweep {size}, nothing changed", s["warm"], "s", core, s["warm"] / s["core"], "a few s",
                       s["warm"] < 5.0)
            )  # fmt: skip
        print_table("gritting decisions", figures)
    finally:
        broker.stop()
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
    os._exit(0)  # paho's and psycopg's threads are done with; do not wait on them
