"""Private clusters for the cluster and failover tests, started on loopback on free ports in a temporary directory.

- NatsCluster: N nats-server nodes joined by routes, each with JetStream and an MQTT listener; a node can
  be SIGKILLed and started again on the same ports and data.
- PostgresPair: a primary and a streaming standby made with pg_basebackup, synchronous replication
  (synchronous_standby_names) as in production; the primary can be SIGKILLed and the standby promoted. With
  engine="timescale" both run the PostgreSQL in PLACEWATCH_TEST_PG_BINDIR with TimescaleDB preloaded.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from placewatch.embedded import free_port
from placewatch.mqttclient import probe
from tests.faults.harness import PrivatePostgres, _pg_bin, preload_timescaledb

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


@dataclass
class NatsNode:
    """One nats-server of the cluster."""

    name: str
    dir: Path
    client_port: int
    cluster_port: int
    mqtt_port: int
    monitor_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def nats_url(self) -> str:
        """NATS clients connect here."""
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def mqtt_url(self) -> str:
        """MQTT devices connect here (MQTT 3.1.1 only)."""
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None


@dataclass
class NatsCluster:
    """Three (or n) routed nats-server nodes with JetStream and MQTT listeners."""

    root: Path
    size: int = 3
    nodes: list[NatsNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            d = self.root / f"nats-{i + 1}"
            d.mkdir(exist_ok=True)
            self.nodes.append(NatsNode(f"n{i + 1}", d, free_port(), free_port(), free_port(), free_port()))
        for node in self.nodes:
            routes = ", ".join(f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes if n is not node)
            (node.dir / "nats.conf").write_text(
                "\n".join(
                    [
                        f"server_name: {node.name}",
                        f"listen: 127.0.0.1:{node.client_port}",
                        f"http: 127.0.0.1:{node.monitor_port}",
                        "max_payload: 1MB",
                        "jetstream {",
                        f'  store_dir: "{node.dir / "js"}"',
                        "  max_memory_store: 256MB",
                        "  max_file_store: 4GB",
                        "}",
                        "cluster {",
                        "  name: placewatch",
                        f"  listen: 127.0.0.1:{node.cluster_port}",
                        f"  routes: [{routes}]",
                        "}",
                        "mqtt {",
                        f"  listen: 127.0.0.1:{node.mqtt_port}",
                        "  ack_wait: 30s",
                        "}",
                        "",
                    ]
                )
            )

    @property
    def nats_urls(self) -> str:
        """Every node, as PLACEWATCH_NATS_URL takes them."""
        return ",".join(n.nats_url for n in self.nodes)

    def start(self, node: NatsNode | None = None, *, timeout: float = 30.0) -> None:
        """Start every node (or one) and wait until its NATS and MQTT ports answer."""
        for n in [node] if node is not None else self.nodes:
            log = (n.dir / "nats.log").open("ab")
            n.proc = subprocess.Popen(
                [NATS_SERVER, "-c", str(n.dir / "nats.conf")], stdout=log, stderr=subprocess.STDOUT
            )
        for n in [node] if node is not None else self.nodes:
            deadline = time.monotonic() + timeout
            while not (_port_answers(n.client_port) and _port_answers(n.mqtt_port)):
                if n.proc is not None and n.proc.poll() is not None:
                    raise RuntimeError(f"nats-server {n.name} exited ({n.proc.returncode}); see {n.dir}/nats.log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server {n.name} did not listen within {timeout:g} s")
                time.sleep(0.1)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the cluster has a JetStream meta leader and MQTT accepts a connection on every node."""
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            while not (n.running and probe(n.mqtt_url, timeout=1.0, protocol="3.1.1")):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"MQTT on {n.name} not ready within {timeout:g} s; see {n.dir}/nats.log")
                time.sleep(0.3)

    def kill(self, node: NatsNode) -> None:
        """SIGKILL one node (its data stays for the restart)."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(10)

    def stop(self) -> None:
        """Stop every node that runs."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.terminate()
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(15)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    n.proc.wait(5)

    def logs(self) -> str:
        """The last lines each node logged."""
        out = []
        for n in self.nodes:
            p = n.dir / "nats.log"
            lines = p.read_text(errors="replace").splitlines()[-15:] if p.exists() else []
            out.append(f"--- {n.name} ---\n" + "\n".join(lines))
        return "\n".join(out)


def _replication_bin() -> Path:
    """The directory of the PostgreSQL binaries that has pg_basebackup too (a PATH of symlinks may not)."""
    first = Path(os.path.realpath(_pg_bin() / "pg_ctl")).parent
    for d in [first, *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]:
        if (d / "pg_basebackup").exists() and (d / "pg_ctl").exists():
            return d
    raise RuntimeError("no pg_basebackup beside pg_ctl: install PostgreSQL's server binaries")


class PostgresPair:
    """A primary and a streaming standby on loopback; synchronous replication unless synchronous=False.

    engine="timescale": PLACEWATCH_TEST_PG_BINDIR's PostgreSQL with TimescaleDB preloaded (preload_timescaledb)."""

    def __init__(self, root: Path, *, synchronous: bool = True, engine: str = "native") -> None:
        (root / "primary").mkdir(parents=True)
        for d in (root.parent, root):  # PostgreSQL runs as the OS user postgres when we are root: let it in
            os.chmod(d, 0o755)
        self.primary = PrivatePostgres(root / "primary")
        if engine == "timescale":
            preload_timescaledb(self.primary)  # the standby is cloned from it: same binaries and settings
        else:
            self.primary.bin = _replication_bin()
        self.synchronous = synchronous
        conf = self.primary.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\nwal_level = replica\nmax_wal_senders = 5\nwal_keep_size = '256MB'\nhot_standby = on\n"
                + ("synchronous_standby_names = 'FIRST 1 (standby)'\nsynchronous_commit = on\n" if synchronous else "")
            )
        with (self.primary.data / "pg_hba.conf").open("a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        self.standby_root = root / "standby"
        self.standby_root.mkdir()
        self.standby: PrivatePostgres | None = None
        self.pids: dict[str, int] = {}

    @property
    def url(self) -> str:
        """The multi-host connection string every service uses: whichever of the two is writable."""
        assert self.standby is not None
        return (
            f"postgresql://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}/placewatch"
            "?target_session_attrs=read-write&connect_timeout=3"
        )

    def start(self) -> None:
        """Start the primary, clone it with pg_basebackup, start the standby streaming from it."""
        self.primary.start()
        standby = PrivatePostgres.__new__(PrivatePostgres)
        standby.bin = self.primary.bin
        standby.data = self.standby_root / "pgdata"
        standby.log = self.standby_root / "postgres.log"
        standby.port = free_port()
        standby._as = self.primary._as
        if standby._as:
            user = pwd.getpwnam("postgres")
            os.chown(self.standby_root, user.pw_uid, user.pw_gid)
            standby.log.touch()
            os.chown(standby.log, user.pw_uid, user.pw_gid)
        standby._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-D",
            str(standby.data),
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "--no-sync",
        )
        with (standby.data / "postgresql.auto.conf").open("a") as f:
            f.write(
                f"cluster_name = 'standby'\nprimary_conninfo = 'host=127.0.0.1 port={self.primary.port} "
                "user=postgres application_name=standby'\n"
            )
        standby.url = f"postgresql://postgres@127.0.0.1:{standby.port}/postgres"
        self.standby = standby
        standby.start()
        self.wait_streaming()

    def wait_streaming(self, timeout: float = 60.0) -> None:
        """Wait until the primary sees the standby streaming (and, when synchronous, as its sync standby)."""
        want = "sync" if self.synchronous else "async"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(self.primary.url, autocommit=True) as conn:
                row = conn.execute("SELECT state, sync_state FROM pg_stat_replication").fetchone()
            if row is not None and row[0] == "streaming" and row[1] == want:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the standby is not streaming ({want}) within {timeout:g} s")

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster (and so, as a machine loss does, every backend with it)."""
        pid = int((self.primary.data / "postmaster.pid").read_text().split()[0])
        pids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
        os.kill(pid, signal.SIGKILL)
        for child in pids:
            try:
                os.kill(int(child), signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _port_answers(self.primary.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        (self.primary.data / "postmaster.pid").unlink(missing_ok=True)

    def promote(self) -> None:
        """Promote the standby (pg_ctl promote waits until it accepts writes), as an operator or Patroni does.

        The new primary has no standby of its own yet: with synchronous_standby_names still naming one, every
        commit would wait for it for ever. So it is cleared (ALTER SYSTEM, reload) until a new standby is made
        from the new primary with pg_basebackup and the setting restored."""
        assert self.standby is not None
        self.standby._run("pg_ctl", "promote", "-D", str(self.standby.data), "-w", "-t", "60")
        if self.synchronous:
            with psycopg.connect(self.standby.url, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
                conn.execute("SELECT pg_reload_conf()")

    def stop(self) -> None:
        """Stop whatever still runs."""
        for pg in (self.primary, self.standby):
            if pg is not None and pg.running():
                try:
                    pg.stop()
                except RuntimeError:
                    pass
