"""Forward-only numbered SQL migrations, applied once each and recorded, under an advisory lock.

A migration is store/migrations/NNNN_name.sql, or a pair NNNN_name.native.sql / NNNN_name.timescale.sql
of which the runner applies the one for the time-series engine in use (chosen on the first run and kept).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(native|timescale))?\.sql$")
_LOCK_KEY = 0x706C6163  # 'plac': one migrator at a time across processes


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    engine: str | None
    path: Path


def available(directory: Path = MIGRATIONS) -> list[Migration]:
    """All migration files, ordered by version; refuses unparseable names."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} is not NNNN_name[.native|.timescale].sql")
        found.append(Migration(int(m.group(1)), m.group(2), m.group(3), path))
    return found


class EngineError(RuntimeError):
    """The time-series engine asked for cannot be had here; the message says how to fix it."""


_PRELOAD_FIX = (
    "add timescaledb to shared_preload_libraries in postgresql.conf (shared_preload_libraries = 'timescaledb') "
    "and restart PostgreSQL"
)


def timescaledb_state(conn: psycopg.Connection) -> str:
    """What the server offers: 'missing' (not installed), 'not preloaded' (installed, but TimescaleDB cannot be
    created or used until it is in shared_preload_libraries) or 'ready'."""
    if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is None:
        return "missing"
    libs = str(conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0])  # type: ignore[index]
    if "timescaledb" not in [lib.strip().strip('"') for lib in libs.split(",")]:
        return "not preloaded"
    return "ready"


def _detect_engine(conn: psycopg.Connection, wanted: str) -> str:
    """'timescale' or 'native' for a database set up now. `on` refuses (EngineError, with the fix) when
    TimescaleDB cannot be used; `auto` falls back to plain PostgreSQL with a warning."""
    if wanted == "off":
        return "native"
    state = timescaledb_state(conn)
    if state != "ready":
        why = (
            "the timescaledb extension is not installed on this server"
            if state == "missing"
            else f"the timescaledb extension is installed but not preloaded: {_PRELOAD_FIX}"
        )
        if wanted == "on":
            raise EngineError(f"PLACEWATCH_TIMESCALEDB=on but {why}")
        if state == "not preloaded":  # the usual state right after installing the package: say so
            log.warning("%s; using plain PostgreSQL (PLACEWATCH_TIMESCALEDB=off silences this)", why)
        return "native"
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        if wanted == "on" or conn.broken or conn.closed:
            raise EngineError(f"TimescaleDB cannot be created in this database: {str(exc).strip()}") from exc
        log.warning("timescaledb is installed but cannot be created (%s); using plain PostgreSQL", str(exc).strip())
        return "native"
    return "timescale"


def _check_engine(recorded: str, wanted: str) -> None:
    """A database keeps the engine it was set up with; `on` refuses one set up on plain PostgreSQL."""
    if wanted == "on" and recorded != "timescale":
        raise EngineError(
            "PLACEWATCH_TIMESCALEDB=on but this database was set up on plain PostgreSQL (the engine is chosen "
            "once, at its first migration): use a new database, or PLACEWATCH_TIMESCALEDB=auto"
        )
    if wanted == "off" and recorded == "timescale":
        log.warning("PLACEWATCH_TIMESCALEDB=off but this database was set up on TimescaleDB; it stays on TimescaleDB")


def migrate(conn: psycopg.Connection, *, timescaledb: str = "auto") -> list[str]:
    """Apply pending migrations; return the names applied. Safe to run from several processes at once."""
    conn.autocommit = True
    applied_now: list[str] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY, name text NOT NULL, engine text,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        conn.execute("CREATE TABLE IF NOT EXISTS placewatch_meta (key text PRIMARY KEY, value text NOT NULL)")
        row = conn.execute("SELECT value FROM placewatch_meta WHERE key = 'engine'").fetchone()
        engine = row[0] if row else _detect_engine(conn, timescaledb)
        if row:
            _check_engine(engine, timescaledb)
        else:
            conn.execute("INSERT INTO placewatch_meta (key, value) VALUES ('engine', %s)", (engine,))
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for mig in available():
            if mig.version in done or (mig.engine is not None and mig.engine != engine):
                continue
            with conn.transaction():
                conn.execute(mig.path.read_text())  # type: ignore[arg-type]
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, engine) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.engine),
                )
            done.add(mig.version)
            applied_now.append(mig.path.name)
            log.info("applied migration %s", mig.path.name)
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def engine(conn: psycopg.Connection) -> str:
    """The time-series engine chosen at migration: 'timescale' or 'native'."""
    row = conn.execute("SELECT value FROM placewatch_meta WHERE key = 'engine'").fetchone()
    return str(row[0]) if row else "native"
