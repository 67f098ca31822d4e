"""The services `placewatch run` and the tests start when none answers: PostgreSQL (pgserver), MQTT broker.

Order of preference: what answers at the configured URL; else Mosquitto from PATH on a free port;
else amqtt embedded in this process (MQTT 3.1.1 only).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placewatch.mqttclient import probe

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


def ensure_broker(url: str, protocol: str, data_dir: Path) -> Started:
    """The configured broker if it answers, else Mosquitto on a free port, else an embedded amqtt broker."""
    if probe(url, protocol=protocol, timeout=2.0):
        return Started(url=url, protocol=protocol)
    if shutil.which("mosquitto"):
        return start_mosquitto(data_dir)
    return start_amqtt()


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
