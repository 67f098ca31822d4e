"""Connections: every Placewatch connection talks UTC, and pools open and wait so start-up fails fast."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

CONNECT_KWARGS = {"options": "-c timezone=UTC -c application_name=placewatch"}


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    """One connection in UTC."""
    return psycopg.connect(dsn, autocommit=autocommit, **CONNECT_KWARGS)  # type: ignore[arg-type]


def open_pool(dsn: str, *, max_size: int = 10, min_size: int = 1, timeout: float = 10.0) -> ConnectionPool:
    """A pool opened and checked (raises PoolTimeout when the database cannot be reached)."""
    pool = ConnectionPool(
        dsn, min_size=min_size, max_size=max_size, kwargs=dict(CONNECT_KWARGS), open=False, name="placewatch"
    )
    pool.open()
    pool.wait(timeout=timeout)
    return pool
