"""Users: stored with a password hash, never the password."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def add_user(
    conn: psycopg.Connection,
    *,
    name: str,
    password_hash: str,
    role: str,
    home_id: str | None = None,
    patch: str | None = None,
    email: str | None = None,
) -> bool:
    """Create or update a user; True if created."""
    row = conn.execute(
        """INSERT INTO users (name, password_hash, role, home_id, patch, email) VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
             home_id = excluded.home_id, patch = excluded.patch, email = coalesce(excluded.email, users.email),
             disabled = false
           RETURNING (xmax = 0)""",
        (name, password_hash, role, home_id, patch, email),
    ).fetchone()
    return bool(row and row[0])


def get_user(conn: psycopg.Connection, name: str) -> dict[str, Any] | None:
    """A user row by name, or None."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, name, password_hash, role, home_id, patch, email, disabled FROM users WHERE name = %s", (name,)
        )
        .fetchone()
    )


def home_exists(conn: psycopg.Connection, home_id: str) -> bool:
    """True if the registry has this home."""
    return conn.execute("SELECT 1 FROM homes WHERE id = %s", (home_id,)).fetchone() is not None
