"""`placewatch run`: the whole platform in one process, for a demo or a small council."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from placewatch.embedded import (
    RunInfo,
    RunLock,
    Started,
    embedded_postgres,
    ensure_broker,
    free_port,
    public_url,
    running,
)
from placewatch.settings import Settings

log = logging.getLogger("placewatch.run")
DEMO_REGISTRY = Path(__file__).resolve().parent.parent / "registry" / "demo.geojson"
DEMO_USERS = (
    ("admin", "admin", None, None),
    ("highways", "highways", None, None),
    ("officer", "officer", None, "north"),
    ("tenant", "tenant", "first-home", None),
)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _demo_users(settings: Settings, data_dir: Path) -> Path:
    """Demo accounts with random passwords, written once to var/demo-users.txt."""
    from api.security import hash_password
    from store import users
    from store.db import connect

    path = data_dir / "demo-users.txt"
    if path.exists():
        return path
    with connect(settings.dsn(), autocommit=True) as conn:
        first_home, first_patch = users.first_home(conn), users.first_patch(conn)
        lines = []
        for name, role, home, patch in DEMO_USERS:
            home = first_home if home else None
            patch = first_patch if patch else None
            password = secrets.token_urlsafe(9)
            users.add_user(conn, name=name, password_hash=hash_password(password), role=role, home_id=home, patch=patch)
            lines.append(f"{name}\t{password}\t{role}\t{home or patch or ''}")
    path.write_text("user\tpassword\trole\tscope\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def run_all(settings: Settings, *, registry: Path | None, simulate: bool) -> int:
    """Start what is missing, then ingest, alerts, simulators and the API until Ctrl-C or SIGTERM."""
    import uvicorn

    from api.app import create_app
    from core.formats import FORMATS
    from core.registry import parse_registry
    from ingest.decoders.registry import build_decoders
    from ingest.service import IngestService
    from store import registry as store_registry
    from store.db import connect
    from store.migrate import migrate

    data_dir = settings.data_dir
    lock = RunLock(data_dir)
    if not lock.acquire():
        _already_running(data_dir)
        return 0
    started: list[Started] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        update: dict[str, Any] = {}
        if settings.database_url is None:
            pg = embedded_postgres(data_dir / "pg")
            started.append(pg)
            from pydantic import SecretStr

            update["database_url"] = SecretStr(pg.url)
        broker = ensure_broker(settings.mqtt_url, settings.mqtt_protocol, data_dir / "mqtt")
        started.append(broker)
        update["mqtt_url"] = broker.url
        update["mqtt_protocol"] = broker.protocol
        if not _port_free(settings.api_host, settings.api_port):
            update["api_port"] = free_port()
        if "formats" not in settings.model_fields_set:
            # A newcomer's LoRaWAN or Zigbee test device is heard at once; PLACEWATCH_FORMATS narrows it.
            update["formats"] = ",".join(FORMATS)
        settings = settings.model_copy(update=update)

        with connect(settings.dsn()) as conn:
            applied = migrate(conn, timescaledb=settings.timescaledb)
            log.info("migrations applied: %s", ", ".join(applied) or "none pending")
        reg_path = registry or settings.registry_file or DEMO_REGISTRY
        text = reg_path.read_text(encoding="utf-8")
        with connect(settings.dsn()) as conn:
            result = store_registry.load(conn, parse_registry(text), text=text, loaded_by="run")
        log.info("registry %s: %d features, %d changes", reg_path, result.features, result.changed)
        users_file = _demo_users(settings, data_dir) if reg_path == DEMO_REGISTRY else None

        ingest = IngestService(settings, build_decoders(settings.decoder_config()), dsn=settings.dsn())
        threads.append(threading.Thread(target=ingest.run, args=(stop,), name="ingest"))
        from alerts.scheduler import run_scheduler  # an evaluator that cannot be imported stops `run` here, saying why

        threads.append(threading.Thread(target=run_scheduler, args=(settings, stop), name="alerts"))
        if simulate:
            from simulators.demo import run_demo

            threads.append(
                threading.Thread(
                    target=run_demo,
                    kwargs={
                        "mqtt_url": settings.mqtt_url,
                        "protocol": settings.mqtt_protocol,
                        "registry_path": reg_path,
                        "speed": settings.simulate_speed,
                        "stop_event": stop,
                    },
                    name="simulators",
                )
            )
        threads[0].start()  # ingest first: a broker keeps nothing for a subscriber it has never seen
        if not ingest.subscribed.wait(30):
            log.warning("ingest has not subscribed after 30 s; starting the rest anyway")
        for t in threads[1:]:
            t.start()

        app = create_app(settings)
        # log_config=None: uvicorn's loggers go through the root handler of logs.setup (JSON when asked).
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=settings.api_host, port=settings.api_port, log_level=settings.log_level, log_config=None
            )
        )
        address = f"http://{settings.api_host}:{settings.api_port}"
        embedded = "database_url" in update
        info = RunInfo(
            pid=os.getpid(),
            address=address,
            database_url=settings.dsn() if embedded else "",
            database=f"embedded PostgreSQL at {settings.dsn()}" if embedded else "PLACEWATCH_DATABASE_URL",
            broker=f"{public_url(broker.url)} ({broker.kind}, MQTT {broker.protocol})",
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        lock.publish(info)
        print(f"\nPlacewatch is running at {address}  (API docs {address}/docs)", flush=True)
        print(f"  database: {info.database}", flush=True)
        if embedded:
            print(f'    (`placewatch` commands run from {Path.cwd()} find it; psql "{settings.dsn()}")', flush=True)
        print(f"  broker: {info.broker}", flush=True)
        if broker.note:
            print(f"    ({broker.note})", flush=True)
        print(
            f"  device formats: {', '.join(settings.format_list)}"
            f"{'' if 'formats' in update else ' (PLACEWATCH_FORMATS)'}",
            flush=True,
        )
        if users_file:
            print(f"  demo accounts and passwords: {users_file}", flush=True)
        print("  Ctrl-C stops everything.\n", flush=True)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

        def on_signal(signum: int, frame: object) -> None:
            stop.set()
            server.should_exit = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        server.run()
        return 0
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for s in reversed(started):
            s.stop()
        lock.release()


def _already_running(data_dir: Path) -> None:
    """Say where the `placewatch run` that holds this data directory runs (instead of fighting it)."""
    info = running(data_dir)
    pid = info.pid if info else "?"
    print(f"Placewatch is already running from {data_dir.resolve()} (process {pid}).", flush=True)
    if info and info.address:
        print(f"  at {info.address}; database: {info.database}; broker: {info.broker}", flush=True)
    else:
        print("  It is still starting: its address will be in the first one's output.", flush=True)
    print(
        f"  Use that one, stop it (Ctrl-C where it runs, or kill {pid}), or start another elsewhere with "
        "PLACEWATCH_DATA_DIR set to another directory.",
        flush=True,
    )
