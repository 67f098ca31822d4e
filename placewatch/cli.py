"""`placewatch`: one command line for every service. Settings are read once here and passed down."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from pathlib import Path

from placewatch import logs
from placewatch.runner import DEMO_REGISTRY
from placewatch.settings import Settings, SettingsError, load_settings

log = logging.getLogger("placewatch")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.info("signal %s: finishing what is in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply pending migrations."""
    from store.db import connect
    from store.migrate import EngineError, engine, migrate

    with connect(settings.dsn()) as conn:
        try:
            applied = migrate(conn, timescaledb=settings.timescaledb)
        except EngineError as exc:  # PLACEWATCH_TIMESCALEDB=on without TimescaleDB: refused, with the fix
            print(f"placewatch: {exc}", file=sys.stderr)
            return 2
        print(f"engine: {engine(conn)}; applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


def read_text_or_say(path: Path) -> str | None:
    """A command's input file as text, or None once standard error says why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read: {exc}", file=sys.stderr)
        return None


def cmd_registry_load(settings: Settings, args: argparse.Namespace) -> int:
    """Load a registry file; refuse it whole on the first error, naming the line."""
    from core.registry import RegistryError, far_features, parse_registry
    from store import registry
    from store.db import connect

    path = Path(args.file)
    text = read_text_or_say(path)
    if text is None:
        return 2
    try:
        reg = parse_registry(text)
        for far in far_features(reg, max_km=args.far_km or settings.registry_far_km):
            print(f"{path}: warning: {far}", file=sys.stderr)
        with connect(settings.dsn()) as conn:
            result = registry.load(conn, reg, text=text, loaded_by="cli", prune=args.prune, dry_run=args.dry_run)
    except RegistryError as exc:
        print(f"{path}: refused: {exc}", file=sys.stderr)
        return 1
    print(registry.describe(result, name=str(path)))
    return 0


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create or update a user; the password comes from standard input."""
    from api.security import hash_password
    from store import users
    from store.db import connect

    if args.role == "tenant" and not args.home:
        print("a tenant needs --home ID", file=sys.stderr)
        return 2
    if args.role == "officer" and not args.patch:
        print("an officer needs --patch ID", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return 2
    with connect(settings.dsn(), autocommit=True) as conn:
        if args.home and not users.home_exists(conn, args.home):
            print(f"warning: home {args.home!r} is not in the registry (yet)", file=sys.stderr)
        created = users.add_user(
            conn,
            name=args.name,
            password_hash=hash_password(password),
            role=args.role,
            home_id=args.home,
            patch=args.patch,
            email=args.email,
        )
    print(f"{'created' if created else 'updated'} user {args.name} ({args.role})")
    return 0


def build_decoders(settings: Settings) -> list:  # type: ignore[type-arg]
    """The decoders enabled by PLACEWATCH_FORMATS and PLACEWATCH_FORMAT_OPTIONS (checked by main() at start, with
    the other settings); ValueError names what is wrong."""
    from ingest.decoders.registry import build_decoders as build

    return build(settings.decoder_config())


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    """Run the MQTT ingest service until SIGTERM."""
    from ingest.service import IngestService

    stop = _stop_on_signals()
    service = IngestService(settings, build_decoders(settings), dsn=settings.dsn())
    service.run(stop)
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the HTTP API and pages."""
    import uvicorn

    from api.app import create_app

    app = create_app(settings)
    # log_config=None: uvicorn's loggers go through the root handler of logs.setup (JSON when asked).
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level=settings.log_level, log_config=None)
    return 0


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    """Run the alerting scheduler until SIGTERM."""
    from alerts.scheduler import run_scheduler

    stop = _stop_on_signals()
    run_scheduler(settings, stop)
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Run a device simulator against the configured broker."""
    from simulators import cli as sim

    return int(sim.run(args, mqtt_url=settings.mqtt_url, protocol=settings.mqtt_protocol))


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Everything in one process: database, broker, migrations, registry, ingest, alerts, simulators, API."""
    from placewatch.runner import run_all

    return run_all(
        settings,
        registry=Path(args.registry) if args.registry else None,
        simulate=settings.simulate and not args.no_simulate,
    )


def parser() -> argparse.ArgumentParser:
    """The argument parser (also used to check docker-compose.yml against the CLI)."""
    p = argparse.ArgumentParser(prog="placewatch", description="Placewatch: sensors for councils")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the whole platform in one process (embedded services when none answer)")
    r.add_argument("--registry", help=f"registry file to load (default: {DEMO_REGISTRY.name})")
    r.add_argument("--no-simulate", action="store_true", help="do not start the simulated devices")
    r.set_defaults(fn=cmd_run)
    sub.add_parser("ingest", help="MQTT ingest service").set_defaults(fn=cmd_ingest)
    sub.add_parser("api", help="HTTP API and pages").set_defaults(fn=cmd_api)
    sub.add_parser("alerts", help="alerting scheduler (gritting, damp, device health)").set_defaults(fn=cmd_alerts)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)
    reg = sub.add_parser("registry", help="device registry").add_subparsers(dest="registry_command", required=True)
    rl = reg.add_parser("load", help="load a registry GeoJSON file (idempotent)")
    rl.add_argument("file")
    rl.add_argument("--prune", action="store_true", help="remove routes, stations, sensors, homes it no longer lists")
    rl.add_argument("--dry-run", action="store_true", help="say what the load (and --prune) would do, change nothing")
    rl.add_argument("--far-km", type=float, help="warn about features this far from the rest")
    rl.set_defaults(fn=cmd_registry_load)
    us = sub.add_parser("users", help="user accounts").add_subparsers(dest="users_command", required=True)
    ua = us.add_parser("add", help="create or update a user; password from standard input")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=["admin", "highways", "officer", "tenant"])
    ua.add_argument("--home", help="the tenant's home id")
    ua.add_argument("--patch", help="the officer's patch")
    ua.add_argument("--email")
    ua.set_defaults(fn=cmd_users_add)
    try:
        from simulators import cli as sim

        sim.register(sub)
        sub.choices["simulate"].set_defaults(fn=cmd_simulate)
    except ImportError:  # pragma: no cover
        pass
    from placewatch import forecast_cli

    forecast_cli.register(sub)
    from placewatch import mqtt_security

    mqtt_security.register(sub)
    from placewatch import history_cli

    history_cli.register(sub)
    from placewatch import nowcast_cli

    nowcast_cli.register(sub)
    from placewatch import whatif_cli

    whatif_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"placewatch: {exc}", file=sys.stderr)
        return 2
    try:  # the formats' options are checked by the decoders that take them (ingest), refused at start like any setting
        build_decoders(settings)
    except ValueError as exc:
        print(f"placewatch: bad setting: PLACEWATCH_FORMAT_OPTIONS: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level)
    if settings.database_url is None and args.command not in ("run", "simulate"):
        from placewatch.embedded import with_running_database

        found = with_running_database(settings)  # the embedded database of `placewatch run` from this directory
        if found is None:
            print(
                "placewatch: bad setting: PLACEWATCH_DATABASE_URL is required for this command "
                f"(no `placewatch run` serves an embedded database from {settings.data_dir.resolve()})",
                file=sys.stderr,
            )
            return 2
        settings = found
    import psycopg

    try:
        return int(args.fn(settings, args))
    except psycopg.OperationalError as exc:  # the database is down or unreachable: say so, not a traceback
        reason = " ".join(str(exc).split())
        print(f"placewatch: cannot reach the database (PLACEWATCH_DATABASE_URL): {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
