"""The fault-injection run: readings published at QoS 1 while ingest is killed, PostgreSQL is stopped and
Mosquitto is restarted; afterwards every reading must be in the store exactly once.

Everything runs against private services started here (a PostgreSQL cluster and a Mosquitto with
persistence on, each on a free loopback port in a temporary directory), never the shared ones: this
run stops and restarts them. Ingest runs as `placewatch ingest` processes (tests/services.py), the
publisher as its own process (simulators/publisher.py), and the faults follow a seeded schedule, so a
failing run can be repeated with the same --seed.
"""

from __future__ import annotations

import contextlib
import glob
import multiprocessing as mp
import os
import pwd
import queue
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from placewatch.embedded import free_port
from placewatch.mqttclient import probe
from store.db import connect
from store.migrate import migrate
from tests.helpers import load, station
from tests.services import TIMESCALEDB_SETTING, Proc, start_service

METRIC = "air_temperature"
CLIENT_ID = "pw-faults-ingest"  # every ingest process resumes the same persistent session


# --- private PostgreSQL ------------------------------------------------------------------------------


def _pg_bin() -> Path:
    """Where initdb and pg_ctl are: PLACEWATCH_PG_BIN, the PATH, the newest Debian cluster, or pgserver's."""
    candidates = [os.environ.get("PLACEWATCH_PG_BIN", "")]
    on_path = shutil.which("pg_ctl")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(debian, key=lambda p: Path(p).parent.name.zfill(4), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    try:
        from pgserver._commands import POSTGRES_BIN_PATH  # the embedded wheel's own binaries, last

        return Path(POSTGRES_BIN_PATH)
    except ImportError:
        pass
    raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl): set PLACEWATCH_PG_BIN")


def preload_timescaledb(pg: PrivatePostgres) -> None:
    """Make a private PostgreSQL, before it starts, a TimescaleDB server: the binaries in PLACEWATCH_TEST_PG_BINDIR
    (a PostgreSQL with TimescaleDB installed, pg_basebackup too for a standby) and the extension preloaded, its
    telemetry off, as docker-compose.yml runs it."""
    given = os.environ.get("PLACEWATCH_TEST_PG_BINDIR")
    if not given or not (Path(given) / "pg_ctl").exists():
        raise RuntimeError(
            "PLACEWATCH_TEST_ENGINE=timescale: a private PostgreSQL needs PLACEWATCH_TEST_PG_BINDIR, the bin directory "
            f"of a PostgreSQL with TimescaleDB installed; got {given!r}"
        )
    pg.bin = Path(given)
    with (pg.data / "postgresql.conf").open("a") as f:
        f.write("\nshared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n")


class PrivatePostgres:
    """A PostgreSQL cluster of our own (PostgreSQL refuses to run as root: then it runs as the OS user postgres)."""

    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs an OS user 'postgres' to run PostgreSQL as") from None
            self._as = ["runuser", "-u", "postgres", "--"]
            os.chmod(root, 0o755)
            self.log.touch()
            os.chown(self.log, user.pw_uid, user.pw_gid)
            self.data.mkdir(mode=0o700)
            os.chown(self.data, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as, str(self.bin / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='{self.data}'"
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", opts)

    def stop(self) -> None:
        """Stop it the way an operator does (fast: sessions are cut, what was committed stays)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def running(self) -> bool:
        """True while the postmaster runs."""
        return (self.data / "postmaster.pid").exists()


# --- private Mosquitto ---------------------------------------------------------------------------------


class PrivateMosquitto:
    """Mosquitto on a free port with persistence on and room to queue every message for an offline ingest.

    Like placewatch.embedded.start_mosquitto, but restartable on the same port and data, with its log in a
    file (a pipe nobody reads would stall the broker on a long run), and with the data directory owned by
    the user Mosquitto drops to when started as root (else it cannot write its persistence file).
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "mosquitto"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.dir}/",
                    "persistence_file mosquitto.db",
                    "autosave_interval 1",
                    "max_inflight_messages 0",
                    # The default (1000) silently drops QoS 1 messages for a persistent client that is offline
                    # or slow: a killed ingest would lose readings at the broker, not in Placewatch.
                    "max_queued_messages 1000000",
                    "max_queued_bytes 0",
                    "message_size_limit 1048576",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("mosquitto")
                os.chown(self.dir, user.pw_uid, user.pw_gid)
            except KeyError:
                with self.conf.open("a") as f:
                    f.write("user root\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it accepts an MQTT connection."""
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}); see {self.log}")
            if probe(self.url, timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError("mosquitto did not start within 20 s")

    def stop(self) -> None:
        """SIGTERM, which makes it write its persistence file, and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        """Stop and start again on the same port and persistence file."""
        self.stop()
        self.start()


# --- the publisher process -------------------------------------------------------------------------


def device_id(i: int) -> str:
    """The i-th device of the run."""
    return f"faults-{i:03d}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Which readings the run publishes: `devices` devices, `per_device` timestamps each, one value each."""

    devices: int = 100
    per_device: int = 1000
    start_ms: int = 0
    step_ms: int = 60_000

    @property
    def total(self) -> int:
        """Readings (and messages) in the run."""
        return self.devices * self.per_device

    def device_ids(self) -> list[str]:
        """faults-000 ... faults-099."""
        return [device_id(i) for i in range(self.devices)]

    @staticmethod
    def value(i: int, j: int) -> float:
        """The value device i reports at its j-th time: varied, plausible, in range."""
        return round(((i * 7919 + j * 104729) % 1000) / 20 - 25, 2)

    def message(self, k: int) -> tuple[str, bytes]:
        """The k-th message: round robin over devices, so each device's timestamps rise."""
        j, i = divmod(k, self.devices)
        payload = orjson.dumps({"ts": self.start_ms + j * self.step_ms, "values": {METRIC: self.value(i, j)}})
        return f"placewatch/v1/devices/{device_id(i)}/readings", payload

    def expected(self) -> dict[tuple[str, str, datetime], float]:
        """Every (device, metric, ts) the run publishes, with its value."""
        out = {}
        for j in range(self.per_device):
            ts = datetime.fromtimestamp((self.start_ms + j * self.step_ms) / 1000, UTC)
            for i in range(self.devices):
                out[(device_id(i), METRIC, ts)] = self.value(i, j)
        return out


def _publisher_main(url: str, plan: Plan, seconds: float, progress: Any, results: Any) -> None:
    """Publish every reading of the plan at QoS 1, paced over `seconds`, through broker restarts.

    Paho keeps each QoS 1 message until its PUBACK and sends it again after reconnecting (with DUP), so a
    message the broker never acknowledged is published again; one it acknowledged but whose PUBACK was lost
    is published twice, and the store must keep one.
    """
    from simulators.publisher import Publisher

    pub = Publisher(url, client_id=f"pw-faults-pub-{uuid.uuid4().hex[:6]}", window=200, timeout=None)
    pub.client.reconnect_delay_set(min_delay=1, max_delay=2)
    connects = [0]
    on_connect = pub.client.on_connect

    def counting(*args: Any) -> None:
        connects[0] += 1
        on_connect(*args)

    pub.client.on_connect = counting
    pub.connect(timeout=30)
    t0 = time.monotonic()
    total = plan.total
    for k in range(total):
        topic, payload = plan.message(k)
        pub.publish(topic, payload)
        if k % 64 == 63:
            progress.value = pub.acked
            ahead = t0 + seconds * (k + 1) / total - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    published_s = time.monotonic() - t0
    deadline = time.monotonic() + 600
    while not pub.flush(1.0) and time.monotonic() < deadline:
        progress.value = pub.acked
    progress.value = pub.acked
    results.put(
        {
            "sent": pub.sent,
            "acked": pub.acked,
            "connects": connects[0],
            "published_s": published_s,
            "acked_s": time.monotonic() - t0,
        }
    )
    pub.close(offline=False)


# --- the schedule ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One fault at `at` seconds after publishing starts."""

    at: float
    action: str  # "kill", "db_stop", "db_start", "broker_restart"


def schedule(rng: random.Random, *, seconds: float, kills: int, db_down: float) -> list[Event]:
    """One database outage, one broker restart and `kills` SIGKILLs of ingest, all while publishing.

    The broker restart and one kill fall inside the outage, while an ingest that connected before the
    database went down holds thousands of received, uncommitted, unacknowledged messages (the harshest
    moment for both: acks held back, redelivery with DUP into a full queue, then the holder killed). No other
    kill comes from 8 s before the outage until then, so that holder has connected and lives that long. The
    other kills are at random moments at least 3 s apart, before, during and after the outage.
    """
    events: list[Event] = []
    times: list[float] = []
    avoid = (-1.0, -1.0)
    if db_down > 0:
        db_at = rng.uniform(15.0, max(16.0, seconds - db_down - 5))
        events += [Event(db_at, "db_stop"), Event(db_at + db_down, "db_start")]
        events.append(Event(db_at + rng.uniform(0.15, 0.45) * db_down, "broker_restart"))
        held_until = db_at + rng.uniform(0.55, 0.9) * db_down
        if kills:
            times.append(held_until)
        avoid = (db_at - 8, held_until)
    else:
        events.append(Event(rng.uniform(8, max(9.0, seconds - 5)), "broker_restart"))
    while len(times) < kills:
        t = rng.uniform(4, max(5.0, seconds))
        crowded = any(abs(t - u) < 3 for u in times) and len(times) * 3 < seconds
        if not crowded and not avoid[0] <= t < avoid[1]:
            times.append(t)
    events += [Event(t, "kill") for t in times]
    return sorted(events, key=lambda e: e.at)


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Result:
    """What the run found."""

    expected: int
    stored_distinct: int = 0
    lost: int = 0
    doubled: int = 0
    extra: int = 0
    rollup_count: int = 0
    dead_letters: int = 0
    kills: int = 0
    broker_restarts: int = 0
    db_down_s: float = 0.0
    unexpected_exits: list[str] = field(default_factory=list)
    publisher: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    settle_s: float = 0.0
    final_exit: int | None = None
    wrong_values: int = 0
    connects: int = 0
    sessions_resumed: int = 0
    seed: int = 0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing doubled, nothing extra, rollup agrees, ingest never died on its own."""
        return (
            self.lost == 0
            and self.doubled == 0
            and self.extra == 0
            and self.wrong_values == 0
            and self.rollup_count == self.expected
            and self.dead_letters == 0
            and not self.unexpected_exits
            and self.final_exit == 0
        )

    def summary(self) -> str:
        """The lines the run prints."""
        pub = self.publisher
        return "\n".join(
            [
                f"lost={self.lost} doubled={self.doubled}",
                f"expected={self.expected} stored={self.stored_distinct} extra={self.extra} "
                f"wrong_values={self.wrong_values} "
                f"rollup_count={self.rollup_count} dead_letters={self.dead_letters}",
                f"faults: ingest SIGKILLed {self.kills} times, PostgreSQL down {self.db_down_s:.0f} s, "
                f"Mosquitto restarted {self.broker_restarts} time(s); ingest exits not caused by us: "
                f"{len(self.unexpected_exits)}; final SIGTERM exit code {self.final_exit}",
                f"ingest connected to the broker {self.connects} times, resuming its session {self.sessions_resumed} "
                "times (the first connect starts it)",
                f"publisher: sent={pub.get('sent')} acked={pub.get('acked')} connects={pub.get('connects')} "
                f"published in {pub.get('published_s', 0):.0f} s, all acknowledged after {pub.get('acked_s', 0):.0f} s",
                f"seed={self.seed} settle={self.settle_s:.0f} s duration={self.seconds:.0f} s",
            ]
        )


def _holding(proc: Proc) -> str:
    """What an ingest process last said it had received and committed (the difference is unacknowledged)."""
    for line in reversed(proc.lines):
        if "ingest stats" in line:
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            return f"(it had received {fields.get('received')}, committed {fields.get('committed')})"
    return "(before it connected)"


def _count(dsn: str) -> int | None:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return None


def _measure(dsn: str, plan: Plan, result: Result) -> None:
    expected = plan.expected()
    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT s.device_id, s.metric, r.ts, r.value FROM readings r JOIN series s ON s.id = r.series_id"
        ).fetchall()
        result.rollup_count = int(conn.execute("SELECT coalesce(sum(n), 0) FROM readings_hourly").fetchone()[0])  # type: ignore[index]
        result.dead_letters = int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])  # type: ignore[index]
    counts = Counter((d, m, ts.astimezone(UTC)) for d, m, ts, _ in rows)
    result.wrong_values = sum(
        1 for d, m, ts, v in rows if (k := (d, m, ts.astimezone(UTC))) in expected and v != expected[k]
    )
    result.stored_distinct = len(counts)
    result.lost = len(expected.keys() - counts.keys())
    result.extra = len(counts.keys() - expected.keys())
    result.doubled = sum(c - 1 for c in counts.values() if c > 1)


def run(
    *,
    devices: int = 100,
    per_device: int = 1000,
    seconds: float = 150.0,
    kills: int = 10,
    db_down: float = 60.0,
    seed: int | None = None,
    settle_timeout: float = 300.0,
    keep: bool = False,
    engine: str = "native",
    say: Callable[[str], None] = print,
) -> Result:
    """Run the whole fault schedule and count what the store holds; `engine` ('native' or 'timescale', as
    PLACEWATCH_TEST_ENGINE) is asked of the migration explicitly (timescale: preload_timescaledb)."""
    seed = random.randrange(1_000_000) if seed is None else seed
    rng = random.Random(seed)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="pw-faults-"))
    now_ms = int(datetime.now(UTC).timestamp()) // 60 * 60_000
    plan = Plan(devices=devices, per_device=per_device, start_ms=now_ms - (per_device + 10) * 60_000)
    result = Result(expected=plan.total, seed=seed)
    events = schedule(rng, seconds=seconds, kills=kills, db_down=db_down)
    say(f"fault run ({engine}): seed={seed}, {plan.total} readings from {devices} devices over {seconds:.0f} s")
    say(f"in {root}")
    say("schedule: " + ", ".join(f"{e.action}@{e.at:.1f}s" for e in events))
    pg = PrivatePostgres(root)
    if engine == "timescale":
        preload_timescaledb(pg)
    broker = PrivateMosquitto(root)
    procs: list[Proc] = []
    pub_proc = None
    try:
        pg.start()
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE placewatch")
        dsn = pg.url.rsplit("/", 1)[0] + "/placewatch"
        with connect(dsn) as conn:
            migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])
        load(dsn, *[station(d) for d in plan.device_ids()])
        broker.start()
        env = {
            "PLACEWATCH_DATABASE_URL": dsn,
            "PLACEWATCH_MQTT_URL": broker.url,
            "PLACEWATCH_MQTT_PROTOCOL": "5",
            "PLACEWATCH_MQTT_CLIENT_ID": CLIENT_ID,
            "PLACEWATCH_ENVIRONMENT": "test",
            "PLACEWATCH_FORMATS": "native",
            "PLACEWATCH_TOPIC_PREFIX": "placewatch/v1",
            "PLACEWATCH_STATS_SECONDS": "2",
            "PLACEWATCH_LOG_LEVEL": "info",
            "PLACEWATCH_SECRET_KEY": "fault-run-secret-key-that-is-long-enough",
        }

        def start_ingest() -> Proc:
            p = start_service(["ingest"], env)
            procs.append(p)
            return p

        current = start_ingest()
        current.wait_for("subscribed", timeout=60)

        ctx = mp.get_context("spawn")
        progress = ctx.Value("q", 0, lock=False)
        results = ctx.Queue()
        pub_proc = ctx.Process(target=_publisher_main, args=(broker.url, plan, seconds, progress, results), daemon=True)
        pub_proc.start()
        t0 = time.monotonic()
        pending = list(events)
        db_stopped_at: float | None = None
        next_report = 10.0
        publisher_result: dict[str, Any] | None = None
        while True:
            elapsed = time.monotonic() - t0
            while pending and pending[0].at <= elapsed:
                ev = pending.pop(0)
                note = ""
                if ev.action == "kill":
                    note = _holding(current)
                    current.stop(signal.SIGKILL)
                    result.kills += 1
                    current = start_ingest()
                elif ev.action == "db_stop":
                    db_stopped_at = time.monotonic()  # sessions are cut as soon as the stop begins
                    pg.stop()
                elif ev.action == "db_start":
                    pg.start()
                    result.db_down_s = time.monotonic() - (db_stopped_at or time.monotonic())
                elif ev.action == "broker_restart":
                    broker.restart()
                    result.broker_restarts += 1
                say(f"  {time.monotonic() - t0:6.1f}s {ev.action} {note}".rstrip())
            if current.popen.poll() is not None:
                # Not one of ours: ingest is supposed to ride out every fault. Note it, and keep the run going.
                result.unexpected_exits.append(f"exit {current.popen.returncode}:\n{current.log()}")
                say(f"  {elapsed:6.1f}s ingest exited by itself ({current.popen.returncode}); restarting")
                current = start_ingest()
            if publisher_result is None:
                with contextlib.suppress(queue.Empty):  # still publishing
                    publisher_result = results.get(timeout=0 if pub_proc.is_alive() else 5)
                if publisher_result is None and not pub_proc.is_alive():
                    raise RuntimeError(f"the publisher process exited ({pub_proc.exitcode}) before reporting")
            if elapsed >= next_report:
                stored = _count(dsn) if pg.running() else None
                shown = "-" if stored is None else stored
                say(f"  {elapsed:6.1f}s acked by broker={progress.value} stored={shown}")
                next_report += 10
            if publisher_result is not None and not pending:
                break
            if elapsed > seconds + 900:
                raise TimeoutError("the publisher did not finish within 15 minutes of its schedule")
            time.sleep(0.1)
        result.publisher = publisher_result
        # Settle: wait until everything is stored, or nothing has changed for a minute.
        settle_from = time.monotonic()
        last, last_change = -1, time.monotonic()
        while time.monotonic() - settle_from < settle_timeout:
            n = _count(dsn) or 0
            if n != last:
                last, last_change = n, time.monotonic()
            if n >= plan.total or time.monotonic() - last_change > 60:
                break
            time.sleep(0.5)
        time.sleep(2)  # anything still in flight lands (it would show as extra or doubled)
        result.settle_s = time.monotonic() - settle_from
        result.final_exit = current.stop(signal.SIGTERM)
        result.log_tail = current.log()
        connects = [ln for p in procs for ln in p.lines if "session present:" in ln]
        result.sessions_resumed = sum("session present: True" in ln for ln in connects)
        result.connects = len(connects)
        _measure(dsn, plan, result)
    finally:
        if pub_proc is not None and pub_proc.is_alive():
            pub_proc.terminate()
        for p in procs:
            if p.popen.poll() is None:
                p.stop(signal.SIGKILL)
        broker.stop()
        if pg.running():
            try:
                pg.stop()
            except RuntimeError as exc:
                say(f"could not stop the private PostgreSQL: {exc}")
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result
