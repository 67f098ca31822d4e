"""Connections: every Placewatch connection talks UTC, and pools open and wait so start-up fails fast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

# TCP keepalives and a user timeout: a database server that vanishes without closing its sockets (a machine lost,
# a network cut) is noticed within about 30 s, so ingest, the scheduler and the API move on to the new primary
# of a multi-host connection string (target_session_attrs=read-write) instead of waiting on a dead socket.
CONNECT_KWARGS = {
    "options": "-c timezone=UTC -c application_name=placewatch",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # binary timestamps count microseconds from here


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    """One connection in UTC."""
    return psycopg.connect(dsn, autocommit=autocommit, **CONNECT_KWARGS)  # type: ignore[arg-type]


def open_pool(dsn: str, *, max_size: int = 10, min_size: int = 1, timeout: float = 10.0) -> ConnectionPool:
    """A pool opened and checked (raises PoolTimeout when the database cannot be reached).

    Each connection is checked as it is lent (one round trip), so after a failover a request never gets a
    connection to the lost primary: the pool drops it and connects again, to whichever host is writable."""
    pool = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs=dict(CONNECT_KWARGS),
        open=False,
        name="placewatch",
        check=ConnectionPool.check_connection,
        reconnect_timeout=24 * 3600,  # keep trying through a long outage (the default gives up after 5 minutes)
    )
    pool.open()
    pool.wait(timeout=timeout)
    return pool


def try_advisory_lock(conn: psycopg.Connection, key: int) -> bool:
    """Take the session advisory lock `key` if no other session holds it: True when taken. It is held until
    released or until this connection closes (a process that dies gives it up with its connection)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def listen(conn: psycopg.Connection, channel: str) -> None:
    """LISTEN on `channel`; the notifications arrive through conn.notifies() (an autocommit connection)."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def jit_off(conn: psycopg.Connection) -> None:
    """No JIT on this connection's session: compiling many small queries costs far more than running them."""
    conn.execute("SET jit = off")


@contextmanager
def autocommit(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Use a pooled connection in autocommit mode (each write opens its own transaction) and without JIT, then
    put it back as it was. JIT compiling many small queries costs far more than running them."""
    before = conn.autocommit
    if not before:
        conn.rollback()
        conn.autocommit = True
    jit_off(conn)
    try:
        yield conn
    finally:
        if not conn.closed:
            conn.execute("RESET jit")
            if not before:
                conn.autocommit = False
