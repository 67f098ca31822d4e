"""The services `placewatch run` and the tests start when none answers: PostgreSQL (pgserver), MQTT broker;
and how the other `placewatch` commands find what a running `placewatch run` serves.

Broker, in order of preference: what answers at the configured URL; else Mosquitto from PATH, else amqtt
embedded in this process (MQTT 3.1.1 only), at the configured address when it is this machine's loopback and
its port is free (otherwise on a free port, saying why).

While `placewatch run` runs it holds an exclusive lock on DATA_DIR/run.lock and describes itself in
DATA_DIR/run.json (its process, address, broker and, when embedded, its database URL). The lock goes with the
process however it ends, so a file left behind by a killed run is never taken for a running one.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placewatch.mqttclient import BrokerAddress, probe

if TYPE_CHECKING:
    from placewatch.settings import Settings

log = logging.getLogger("placewatch.embedded")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Started:
    """Something we started, and how to stop it."""

    url: str
    protocol: str = "5"
    kind: str = "external"
    _stop: list[Any] = field(default_factory=list)
    note: str = ""  # why it is not where the configuration said, when it is not

    def stop(self) -> None:
        """Stop what was started (nothing for an external service)."""
        for fn in reversed(self._stop):
            try:
                fn()
            except Exception:
                log.exception("stopping %s", self.kind)
        self._stop.clear()


def embedded_postgres(data_dir: Path) -> Started:
    """A real PostgreSQL from the pgserver wheel, with its data under data_dir."""
    import pgserver  # optional dependency: only `placewatch run` without a database URL needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    srv = pgserver.get_server(str(data_dir.resolve()), cleanup_mode="stop")
    log.info("started embedded PostgreSQL in %s", data_dir)
    return Started(url=srv.get_uri(), kind="pgserver", _stop=[srv.cleanup])


_LOOPBACK = frozenset({"127.0.0.1", "localhost"})


def ensure_broker(url: str, protocol: str, data_dir: Path) -> Started:
    """The configured broker if it answers; else one started at the configured address (Mosquitto from PATH,
    else an embedded amqtt broker), or on a free port with a note saying why it could not be there."""
    if probe(url, protocol=protocol, timeout=2.0):
        return Started(url=url, protocol=protocol)
    address = BrokerAddress.parse(url)
    why = _cannot_start_at(address)
    port = None if why else address.port
    started = start_mosquitto(data_dir, port) if shutil.which("mosquitto") else start_amqtt(port)
    if why:
        started.note = f"nothing answers at {public_url(url)} and {why}, so it runs at {started.url}"
        log.warning("MQTT broker: %s", started.note)
    else:
        started.url = url  # the configured form (host name, login) reaches the broker started there
    return started


def _cannot_start_at(address: BrokerAddress) -> str | None:
    """Why a broker cannot be started at this address, or None when it can."""
    if address.tls:
        return "Placewatch cannot start a TLS broker (mqtts://) for you: it needs your certificates"
    if address.host not in _LOOPBACK:
        return f"{address.host} is not this machine's loopback address (127.0.0.1 or localhost)"
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", address.port))
        except OSError:
            return f"port {address.port} is taken by a program that does not answer MQTT"
    return None


def public_url(url: str) -> str:
    """The URL without its password."""
    a = BrokerAddress.parse(url)
    login = f"{a.username}@" if a.username else ""
    return f"{'mqtts' if a.tls else 'mqtt'}://{login}{a.host}:{a.port}"


def start_mosquitto(data_dir: Path, port: int | None = None, *, persistence: bool = True) -> Started:
    """Mosquitto on 127.0.0.1:port, with persistence under data_dir unless turned off."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / f"mosquitto-{port}.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                f"persistence {'true' if persistence else 'false'}",
                f"persistence_location {data_dir.resolve()}/",
                f"persistence_file mosquitto-{port}.db",
                "autosave_interval 1",
                "max_inflight_messages 0",
                "max_queued_messages 1000000",
                "message_size_limit 1048576",
                # As root, Mosquitto drops to the 'mosquitto' user, which cannot write our data directory.
                *(["user root"] if os.geteuid() == 0 else []),
                f"log_dest file {(data_dir / f'mosquitto-{port}.log').resolve()}",
                "log_type error",
                "log_type warning",
                "",
            ]
        )
    )
    # stderr to a file, never a pipe nobody reads (a full pipe would stall the broker).
    errors = (data_dir / f"mosquitto-{port}.err").open("wb")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=errors)  # noqa: S603,S607
    url = f"mqtt://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            errors.close()
            err = (data_dir / f"mosquitto-{port}.err").read_text(errors="replace")
            log_text = (
                (data_dir / f"mosquitto-{port}.log").read_text(errors="replace")
                if (data_dir / f"mosquitto-{port}.log").exists()
                else ""
            )
            raise RuntimeError(f"mosquitto exited: {(err + log_text).strip()[-2000:]}")
        if probe(url, timeout=0.5):
            log.info("started Mosquitto on %s", url)

            def stop() -> None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()

            return Started(url=url, kind="mosquitto", _stop=[stop])
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("mosquitto did not start within 10 s")


def start_amqtt(port: int | None = None) -> Started:
    """An amqtt broker in a background thread (MQTT 3.1.1 only: clients must use protocol 3.1.1)."""
    from amqtt.broker import Broker

    port = port or free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        broker = Broker(config, loop=loop)
        holder["broker"] = broker
        loop.run_until_complete(broker.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=serve, name="amqtt", daemon=True)
    t.start()
    if not ready.wait(15):
        raise RuntimeError("embedded amqtt broker did not start")
    url = f"mqtt://127.0.0.1:{port}"
    log.info("started embedded amqtt broker on %s (MQTT 3.1.1)", url)

    def stop() -> None:
        fut = asyncio.run_coroutine_threadsafe(holder["broker"].shutdown(), loop)
        try:
            fut.result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            t.join(5)

    return Started(url=url, protocol="3.1.1", kind="amqtt", _stop=[stop])


# -- one `placewatch run` per data directory, and how the other commands find it --------------------------------

RUN_LOCK = "run.lock"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunInfo:
    """What a running `placewatch run` serves (empty fields while it is still starting)."""

    pid: int
    address: str = ""
    database_url: str = ""  # only the embedded database's: an external URL may hold a password
    database: str = ""  # how to describe the database to a person
    broker: str = ""
    started_at: str = ""


class RunLock:
    """Held by `placewatch run` for its whole life, so a second one in the same data directory steps aside."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        for attempt in range(5):  # `running` holds it shared for an instant while it looks
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    os.close(fd)
                    return False
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        (self.dir / RUN_FILE).unlink(missing_ok=True)  # a killed run's description
        return True

    def publish(self, info: RunInfo) -> None:
        """Describe the run for the commands that look for it (written whole, readable by this user only)."""
        tmp = self.dir / f".{RUN_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(info.__dict__, indent=1) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.dir / RUN_FILE)

    def release(self) -> None:
        """Remove the description and let go of the lock."""
        if self._fd is None:
            return
        (self.dir / RUN_FILE).unlink(missing_ok=True)
        os.close(self._fd)  # closing the only descriptor releases the lock
        self._fd = None


def running(data_dir: Path) -> RunInfo | None:
    """The `placewatch run` serving from this data directory, or None when none runs there."""
    lock = data_dir / RUN_LOCK
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: a run is there
        else:
            return None  # nobody holds it: whatever run.json says is from a run that has ended
        try:
            doc = json.loads((data_dir / RUN_FILE).read_text())
            return RunInfo(**{k: v for k, v in doc.items() if k in RunInfo.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return RunInfo(pid=int(text) if text.isdigit() else 0)  # still starting
    finally:
        os.close(fd)


def with_running_database(settings: Settings) -> Settings | None:
    """These settings with the embedded database of the `placewatch run` serving from their data directory
    (saying so on stderr), or None when none does."""
    from pydantic import SecretStr

    info = running(settings.data_dir)
    if info is None or not info.database_url:
        return None
    print(
        f"placewatch: using the embedded database of `placewatch run` (process {info.pid}): {info.database_url}",
        file=sys.stderr,
    )
    return settings.model_copy(update={"database_url": SecretStr(info.database_url)})
