"""The cluster runs: readings published at QoS 1 while a NATS node, an ingest worker or the database primary
dies; afterwards every reading must be in the store exactly once, counted as the fault suite counts
(tests/faults/harness.py: Plan, Result and _measure).

run_nats: three routed nats-server nodes with JetStream (an R3 stream) and MQTT listeners; devices publish
MQTT 3.1.1 QoS 1 to different nodes; two `placewatch ingest` workers share one durable pull consumer. The
node leading the stream is SIGKILLed mid-stream and started again; so is one ingest worker.

run_failover: a primary and a synchronous streaming standby; ingest (MQTT, two workers on a shared
subscription), two schedulers and the API all use the multi-host connection string with
target_session_attrs=read-write. The primary is SIGKILLed mid-stream and the standby promoted; readings,
gritting decisions and the API must come through.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing as mp
import queue
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from api.security import hash_password
from placewatch.embedded import free_port
from store import users
from store.db import connect
from store.migrate import migrate
from store.registry import forget_readings
from tests.cluster.services import NatsCluster, PostgresPair
from tests.faults.harness import Plan, PrivateMosquitto, Result, _count, _measure
from tests.helpers import load, route, station
from tests.services import TIMESCALEDB_SETTING, Proc, fresh_database, start_service

SECRET = "cluster-run-secret-key-that-is-long-enough"


def _publisher_main(url: str, protocol: str, plan: Plan, part: int, parts: int, seconds: float, out: Any) -> None:
    """Publish this part's devices' readings (device index % parts == part) at QoS 1, paced over `seconds`.

    paho keeps each QoS 1 message until its PUBACK and sends it again after reconnecting, so a node that dies
    loses nothing it did not acknowledge; one acknowledged whose PUBACK was lost is published twice.
    """
    from simulators.publisher import Publisher

    name = f"pw-cluster-pub-{uuid.uuid4().hex[:6]}"
    pub = Publisher(url, protocol=protocol, client_id=name, window=200, timeout=None)
    pub.client.reconnect_delay_set(min_delay=1, max_delay=2)
    pub.connect(timeout=30)
    mine = [k for k in range(plan.total) if (k % plan.devices) % parts == part]
    t0 = time.monotonic()
    for n, k in enumerate(mine):
        topic, payload = plan.message(k)
        pub.publish(topic, payload)
        if n % 32 == 31:
            ahead = t0 + seconds * (n + 1) / len(mine) - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    deadline = time.monotonic() + 600
    while not pub.flush(1.0) and time.monotonic() < deadline:
        pass
    out.put({"part": part, "sent": pub.sent, "acked": pub.acked, "acked_s": time.monotonic() - t0})
    pub.close(offline=False)


@dataclass
class Publishing:
    """Publisher processes, one per part, each on its own broker address."""

    procs: list[Any] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    out: Any = None

    def start(self, urls: list[str], protocol: str, plan: Plan, seconds: float) -> None:
        """One publisher per url, each publishing its share of the plan's devices."""
        ctx = mp.get_context("spawn")
        self.out = ctx.Queue()
        for i, url in enumerate(urls):
            p = ctx.Process(
                target=_publisher_main, args=(url, protocol, plan, i, len(urls), seconds, self.out), daemon=True
            )
            p.start()
            self.procs.append(p)

    def poll(self) -> bool:
        """True once every publisher has reported."""
        while len(self.results) < len(self.procs):
            try:
                self.results.append(self.out.get(timeout=0))
            except queue.Empty:
                dead = [p for p in self.procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise RuntimeError(f"a publisher exited ({dead[0].exitcode}) before reporting") from None
                return False
        return True

    def summary(self) -> dict[str, Any]:
        """Totals of every publisher."""
        return {
            "sent": sum(r["sent"] for r in self.results),
            "acked": sum(r["acked"] for r in self.results),
            "acked_s": max((r["acked_s"] for r in self.results), default=0.0),
            "published_s": max((r["acked_s"] for r in self.results), default=0.0),
            "connects": len(self.results),
        }

    def stop(self) -> None:
        """End any publisher still running."""
        for p in self.procs:
            if p.is_alive():
                p.terminate()


def _settle(dsn: str, total: int, timeout: float, quiet: float = 60.0) -> float:
    """Wait until the store holds `total` readings, or nothing changed for `quiet` seconds; the seconds waited."""
    t0 = time.monotonic()
    last, last_change = -1, time.monotonic()
    while time.monotonic() - t0 < timeout:
        n = _count(dsn) or 0
        if n != last:
            last, last_change = n, time.monotonic()
        if n >= total or time.monotonic() - last_change > quiet:
            break
        time.sleep(0.5)
    time.sleep(2)  # anything still in flight lands (it would show as doubled)
    return time.monotonic() - t0


def _stream_leader(urls: str, stream: str) -> str | None:
    """The server name of the node leading the stream's replicas."""
    import nats

    async def ask() -> str | None:
        nc = await nats.connect(servers=urls.split(","), connect_timeout=2, max_reconnect_attempts=2)
        try:
            info = await nc.jetstream(timeout=5).stream_info(stream)
            return info.cluster.leader if info.cluster else None
        finally:
            await nc.close()

    try:
        return asyncio.run(ask())
    except Exception:
        return None


@dataclass
class Run:
    """What every run starts from: its seed and random schedule, its temporary directory, its plan."""

    seed: int
    rng: random.Random
    root: Path
    plan: Plan
    started: float

    @classmethod
    def begin(cls, prefix: str, devices: int, per_device: int, seed: int | None) -> Run:
        """A seeded run whose readings end 10 minutes before now, one a minute per device."""
        seed = random.randrange(1_000_000) if seed is None else seed
        now_ms = int(datetime.now(UTC).timestamp()) // 60 * 60_000
        plan = Plan(devices=devices, per_device=per_device, start_ms=now_ms - (per_device + 10) * 60_000)
        return cls(seed, random.Random(seed), Path(tempfile.mkdtemp(prefix=prefix)), plan, time.monotonic())


def run_nats(
    *,
    devices: int = 60,
    per_device: int = 500,
    seconds: float = 60.0,
    seed: int | None = None,
    keep: bool = False,
    kill_leader: bool = False,
    engine: str = "native",
    say: Callable[[str], None] = print,
) -> Result:
    """Kill a NATS node that does not lead the stream (`kill_leader`: the one that does) and one of two ingest
    workers mid-stream; count what the store holds.

    The stream's leader is not the default victim: with it killed, readings that NATS's MQTT listeners had
    acknowledged to the devices while the stream elected a new leader never reached the stream, whatever ingest
    did (measured here on a busy 2-core machine: 1,505 to 6,941 of 30,000 readings in four of five runs, none on
    a quiet one; README, Scaling out). That is NATS's to answer, not ingest's.

    `engine` ('native' or 'timescale', as PLACEWATCH_TEST_ENGINE) is asked of the migration explicitly: a server
    without TimescaleDB refuses 'timescale'."""
    run = Run.begin("pw-cluster-", devices, per_device, seed)
    rng, root, plan, seed, started = run.rng, run.root, run.plan, run.seed, run.started
    result = Result(expected=plan.total, seed=seed)
    node_kill_at = rng.uniform(0.25, 0.4) * seconds
    node_down_s = rng.uniform(5.0, 10.0)
    worker_kill_at = rng.uniform(0.5, 0.7) * seconds
    victim_words = "stream leader" if kill_leader else "a NATS node (not the stream leader)"
    say(
        f"cluster run ({engine}): seed={seed}, {plan.total} readings from {devices} devices over {seconds:.0f} s, "
        f"in {root}; {victim_words} SIGKILLed at {node_kill_at:.1f} s for {node_down_s:.1f} s, an ingest worker at "
        f"{worker_kill_at:.1f} s"
    )
    cluster = NatsCluster(root / "nats")
    workers: list[Proc] = []
    publishing = Publishing()
    try:
        cluster.start()
        cluster.wait_ready()
        with fresh_database() as dsn:
            with connect(dsn) as conn:
                migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])
            load(dsn, *[station(d) for d in plan.device_ids()])
            env = {
                "PLACEWATCH_DATABASE_URL": dsn,
                "PLACEWATCH_TRANSPORT": "jetstream",
                "PLACEWATCH_NATS_URL": cluster.nats_urls,
                "PLACEWATCH_NATS_STREAM": "PLACEWATCH",
                "PLACEWATCH_NATS_CONSUMER": "ingest",
                "PLACEWATCH_NATS_REPLICAS": "3",
                "PLACEWATCH_NATS_ACK_WAIT_S": "10",
                "PLACEWATCH_ENVIRONMENT": "test",
                "PLACEWATCH_FORMATS": "native",
                "PLACEWATCH_STATS_SECONDS": "2",
                "PLACEWATCH_SECRET_KEY": SECRET,
            }

            def start_worker(i: int) -> Proc:
                p = start_service(["ingest"], {**env, "PLACEWATCH_MQTT_CLIENT_ID": f"pw-cluster-ingest-{i}"})
                workers.append(p)
                return p

            current = [start_worker(1), start_worker(2)]
            for p in current:
                p.wait_for("subscribed", timeout=90)
            leader_name = _stream_leader(cluster.nats_urls, "PLACEWATCH")
            publishing.start([n.mqtt_url for n in cluster.nodes], "3.1.1", plan, seconds)
            t0 = time.monotonic()
            killed_node = None
            node_back = worker_back = False
            next_report = 10.0
            while True:
                elapsed = time.monotonic() - t0
                if killed_node is None and elapsed >= node_kill_at:
                    leader_name = _stream_leader(cluster.nats_urls, "PLACEWATCH") or leader_name
                    killed_node = next(
                        (n for n in cluster.nodes if (n.name == leader_name) == kill_leader), cluster.nodes[1]
                    )
                    cluster.kill(killed_node)
                    result.broker_restarts += 1
                    say(f"  {elapsed:6.1f}s SIGKILL nats-server {killed_node.name} (stream leader: {leader_name})")
                if killed_node is not None and not node_back and elapsed >= node_kill_at + node_down_s:
                    cluster.start(killed_node)
                    node_back = True
                    say(f"  {time.monotonic() - t0:6.1f}s nats-server {killed_node.name} started again")
                if result.kills == 0 and elapsed >= worker_kill_at:
                    victim = current[0]
                    from tests.faults.harness import _holding

                    note = _holding(victim)
                    victim.stop(signal.SIGKILL)
                    result.kills += 1
                    say(f"  {elapsed:6.1f}s SIGKILL ingest worker 1 {note}")
                if result.kills and not worker_back and elapsed >= worker_kill_at + 3:
                    current[0] = start_worker(3)
                    worker_back = True
                    say(f"  {time.monotonic() - t0:6.1f}s ingest worker started again")
                for i, p in enumerate(current):
                    if p.popen.poll() is not None and not (i == 0 and result.kills and not worker_back):
                        result.unexpected_exits.append(f"exit {p.popen.returncode}:\n{p.log()}")
                        current[i] = start_worker(10 + len(workers))
                if elapsed >= next_report:
                    say(f"  {elapsed:6.1f}s stored={_count(dsn)}")
                    next_report += 10
                if publishing.poll() and node_back and worker_back:
                    break
                if elapsed > seconds + 900:
                    raise TimeoutError("the publishers did not finish within 15 minutes of their schedule")
                time.sleep(0.1)
            result.publisher = publishing.summary()
            result.settle_s = _settle(dsn, plan.total, 300)
            codes = [p.stop(signal.SIGTERM) for p in current]
            result.final_exit = max(codes)
            result.log_tail = "\n".join(p.log() for p in current)
            _measure(dsn, plan, result)
    finally:
        publishing.stop()
        for p in workers:
            if p.popen.poll() is None:
                p.stop(signal.SIGKILL)
        cluster.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


# --- database failover ----------------------------------------------------------------------------------


ROUTES = 12
STEP = timedelta(minutes=10)


def _wet(rst: float | None) -> dict[str, object]:
    """A wet road at `rst`; None: the station reports its wet surface but no road temperature (monitor: cannot
    judge the frost risk), so the scenario's first decision does not depend on what the nowcast projects."""
    values: dict[str, object] = {"air_temperature": 2.0, "dew_point": 0.0, "surface_state": "wet"}
    return values if rst is None else {"road_surface_temperature": rst, **values}


def _route_ids() -> list[tuple[str, str]]:
    return [(f"FO-{i:02d}", f"fo-station-{i:02d}") for i in range(ROUTES)]


@dataclass
class FailoverResult(Result):
    """Result, plus what the schedulers and the API did through the failover."""

    decisions: dict[str, list[str]] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    leaders: int = 0
    api_after: str = ""
    promoted_after_s: float = 0.0

    def decisions_summary(self) -> str:
        """One line per route's decisions, the ones issued twice and the ones missing."""
        lines = [f"{r}: {' -> '.join(a)}" for r, a in sorted(self.decisions.items())[:4]]
        return "\n".join(
            [
                *lines,
                f"primary SIGKILLed, standby promoted {self.promoted_after_s:.1f} s later; "
                f"routes={len(self.decisions)} repeated={self.repeated} missed={self.missed} "
                f"scheduler leadership terms={self.leaders} api={self.api_after}",
            ]
        )


def _decisions(dsn: str) -> dict[str, list[str]]:
    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT route_id, action FROM gritting_decisions WHERE route_id LIKE 'FO-%' ORDER BY route_id, id"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for r, a in rows:
        out.setdefault(r, []).append(a)
    return out


def _publish_phase(url: str, rst: float | None, times: list[datetime]) -> None:
    """Every failover route's station reports a wet road at `rst` at each of `times`."""
    from simulators.publisher import payload_of, readings_topic
    from tests.services import Publisher

    pub = Publisher(url)
    try:
        for _, s in _route_ids():
            pub.publish(readings_topic(s), payload_of([(t, _wet(rst)) for t in times]))
    finally:
        pub.close()


def _wait_actions(dsn: str, action: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = _decisions(dsn)
        except psycopg.Error:
            got = {}
        if len(got) == ROUTES and all(a and a[-1] == action for a in got.values()):
            return True
        time.sleep(0.5)
    return False


def run_failover(
    *,
    devices: int = 40,
    per_device: int = 500,
    seconds: float = 60.0,
    synchronous: bool = True,
    seed: int | None = None,
    keep: bool = False,
    engine: str = "native",
    say: Callable[[str], None] = print,
) -> FailoverResult:
    """SIGKILL the primary mid-stream and promote the standby; count readings and decisions afterwards.

    engine="timescale": the pair runs PLACEWATCH_TEST_PG_BINDIR's PostgreSQL with TimescaleDB preloaded, and the
    migration is asked for TimescaleDB explicitly (PostgresPair)."""
    run = Run.begin("pw-failover-", devices, per_device, seed)
    rng, root, plan, seed, started = run.rng, run.root, run.plan, run.seed, run.started
    result = FailoverResult(expected=plan.total, seed=seed)
    kill_at = rng.uniform(0.35, 0.55) * seconds
    promote_after = rng.uniform(2.0, 5.0)  # an operator's (or Patroni's) reaction time
    say(
        f"failover run ({engine}): seed={seed}, {plan.total} readings over {seconds:.0f} s, "
        f"{'synchronous' if synchronous else 'asynchronous'} standby; primary SIGKILLed at {kill_at:.1f} s, "
        f"standby promoted {promote_after:.1f} s later; in {root}"
    )
    pair = PostgresPair(root / "pg", synchronous=synchronous, engine=engine)
    broker = PrivateMosquitto(root)
    procs: list[Proc] = []
    publishing = Publishing()
    try:
        pair.start()
        with psycopg.connect(pair.primary.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE placewatch")
        dsn = pair.url
        with connect(dsn) as conn:
            migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])
        load(
            dsn,
            *[station(d) for d in plan.device_ids()],
            *[station(s) for _, s in _route_ids()],
            *[route(r, [s]) for r, s in _route_ids()],
        )
        with connect(dsn, autocommit=True) as conn:
            users.add_user(conn, name="fo-duty", password_hash=hash_password("fo-password"), role="highways")
        broker.start()
        policy = root / "policy.json"
        policy.write_text(json.dumps({"escalate_at_or_below_c": -30.0}), encoding="utf-8")
        env = {
            "PLACEWATCH_DATABASE_URL": dsn,
            "PLACEWATCH_GRITTING_POLICY_FILE": str(policy),
            "PLACEWATCH_MQTT_URL": broker.url,
            "PLACEWATCH_MQTT_PROTOCOL": "5",
            "PLACEWATCH_MQTT_SHARED_GROUP": "ingest",
            "PLACEWATCH_ENVIRONMENT": "test",
            "PLACEWATCH_FORMATS": "native",
            "PLACEWATCH_STATS_SECONDS": "2",
            "PLACEWATCH_SECRET_KEY": SECRET,
        }
        for i in (1, 2):
            procs.append(start_service(["ingest"], {**env, "PLACEWATCH_MQTT_CLIENT_ID": f"pw-fo-ingest-{i}"}))
            procs[-1].wait_for("subscribed", timeout=60)
        schedulers = [start_service(["alerts"], env) for _ in range(2)]
        procs += schedulers
        port = free_port()
        api_proc = start_service(["api"], {**env, "PLACEWATCH_API_PORT": str(port)})
        procs.append(api_proc)
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        _wait_http(api, api_proc)
        token = api.post("/api/v1/auth/token", data={"username": "fo-duty", "password": "fo-password"})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        # Before: every route's station has reported a wet road for an hour but no road temperature (monitor:
        # cannot judge). Then +0.3 C on the wet road, below the trigger: precautionary salt whatever the nowcast
        # projects (the policy escalates only below -30 C: a deep projected fall does not make it 'escalate').
        # Neither decision rests on the hour or the season the suite runs in.
        now = datetime.now(UTC).replace(microsecond=0)
        _publish_phase(broker.url, None, [now - k * STEP for k in range(6, 0, -1)])
        if not _wait_actions(dsn, "monitor", 90):
            raise RuntimeError(f"no monitor decisions before the failover: {_decisions(dsn)}")
        publishing.start([broker.url, broker.url], "5", plan, seconds)
        t0 = time.monotonic()
        killed = promoted = crossed = False
        next_report = 10.0
        while True:
            elapsed = time.monotonic() - t0
            if not killed and elapsed >= kill_at:
                pair.kill_primary()
                killed = True
                say(f"  {elapsed:6.1f}s SIGKILL the primary")
                # Readings that cross the trigger arrive while there is no writable database.
                _publish_phase(broker.url, 0.3, [datetime.now(UTC).replace(microsecond=0)])
                crossed = True
                say(f"  {time.monotonic() - t0:6.1f}s every route's station reported +0.3 C (trigger crossed)")
            if killed and not promoted and elapsed >= kill_at + promote_after:
                p0 = time.monotonic()
                pair.promote()
                promoted = True
                result.promoted_after_s = time.monotonic() - t0 - kill_at
                say(f"  {time.monotonic() - t0:6.1f}s standby promoted ({time.monotonic() - p0:.1f} s)")
            for p in procs:
                if p.popen.poll() is not None:
                    result.unexpected_exits.append(f"exit {p.popen.returncode}:\n{p.log()}")
                    raise RuntimeError("a service exited by itself:\n" + p.log())
            if elapsed >= next_report:
                say(f"  {elapsed:6.1f}s stored={_count(dsn)}")
                next_report += 10
            if publishing.poll() and promoted and crossed:
                break
            if elapsed > seconds + 900:
                raise TimeoutError("the publishers did not finish within 15 minutes of their schedule")
            time.sleep(0.1)
        result.publisher = publishing.summary()
        result.settle_s = _settle(dsn, plan.total, 300)
        _wait_actions(dsn, "precautionary_salt", 120)
        # The API answers from the new primary: health, and a route's decision.
        health = api.get("/api/v1/health")
        r = api.get(f"/api/v1/routes/{_route_ids()[0][0]}")
        action = (r.json().get("decision") or {}).get("action") if r.status_code == 200 else None
        result.api_after = f"health {health.status_code}, route {r.status_code} {action}"
        result.decisions = _decisions(dsn)
        for rid, actions in result.decisions.items():
            if any(a == b for a, b in itertools.pairwise(actions)):
                result.repeated.append(rid)
            if actions[-1:] != ["precautionary_salt"]:
                result.missed.append(rid)
        result.missed += [r for r, _ in _route_ids() if r not in result.decisions]
        result.leaders = sum(1 for p in schedulers for ln in p.lines if "leading the alerting scheduler" in ln)
        codes = [p.stop(signal.SIGTERM) for p in procs if p is not api_proc]
        api_proc.stop(signal.SIGTERM)
        result.final_exit = max(codes)
        result.log_tail = "\n".join(p.log() for p in procs)
        with connect(dsn, autocommit=True) as conn:  # the routes' stations are counted as decisions, not here
            fo = conn.execute("SELECT id FROM series WHERE device_id LIKE 'fo-station-%'").fetchall()
            forget_readings(conn, [r[0] for r in fo])
        _measure(dsn, plan, result)
    finally:
        publishing.stop()
        for p in procs:
            if p.popen.poll() is None:
                p.stop(signal.SIGKILL)
        broker.stop()
        pair.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def _wait_http(api: httpx.Client, proc: Proc) -> None:
    deadline = time.monotonic() + 120  # a loaded 2-core machine takes its time to import FastAPI and the rest
    while True:
        with contextlib.suppress(httpx.HTTPError):
            api.get("/api/v1/live")
            return
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the API did not start:\n" + proc.log())
        time.sleep(0.1)
