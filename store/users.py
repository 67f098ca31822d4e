"""Users: stored with a password hash, never the password."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from core.model import Role
from store.rows import MappingRow, typed


@dataclass(frozen=True, slots=True)
class User(MappingRow):
    """A users row as sign-in and the admin pages read it (a mapping too: core.cases.assignee_refusal reads it)."""

    id: int
    name: str
    password_hash: str
    role: Role  # the table's CHECK keeps it one of these
    home_id: str | None
    patch: str | None
    email: str | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class UserListed:
    """A user as the admin list shows them (never the password hash), with their open damp cases."""

    name: str
    role: Role
    home_id: str | None
    patch: str | None
    email: str | None
    disabled: bool
    created_at: datetime
    open_cases: int = field(metadata={"description": "open damp cases this user is the responsible officer for"})


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


def get_user(conn: psycopg.Connection, name: str) -> User | None:
    """A user row by name, or None."""
    return (
        typed(conn, User)
        .execute(
            "SELECT id, name, password_hash, role, home_id, patch, email, disabled FROM users WHERE name = %s", (name,)
        )
        .fetchone()
    )


def home_exists(conn: psycopg.Connection, home_id: str) -> bool:
    """True if the registry has this home."""
    return conn.execute("SELECT 1 FROM homes WHERE id = %s", (home_id,)).fetchone() is not None


def list_users(conn: psycopg.Connection) -> list[UserListed]:
    """Every user (never the password hash), with the open damp cases each is responsible for, by name."""
    return list(
        typed(conn, UserListed).execute(
            """SELECT u.name, u.role, u.home_id, u.patch, u.email, u.disabled, u.created_at,
                      (SELECT count(*) FROM damp_cases c WHERE c.officer = u.name AND c.closed_at IS NULL)
                        AS open_cases
               FROM users u ORDER BY u.name"""
        )
    )


def update_user(conn: psycopg.Connection, name: str, changes: dict[str, Any]) -> bool:
    """Change some of a user's role, home_id, patch, email, disabled and password_hash; False when there is none."""
    allowed = {"role", "home_id", "patch", "email", "disabled", "password_hash"}
    bad = set(changes) - allowed
    if bad:
        raise ValueError(f"cannot change user column(s) {', '.join(sorted(bad))}")
    if not changes:
        return get_user(conn, name) is not None
    sets = ", ".join(f"{col} = %({col})s" for col in changes)
    row = conn.execute(f"UPDATE users SET {sets} WHERE name = %(name)s RETURNING id", changes | {"name": name})
    return row.fetchone() is not None


def patch_exists(conn: psycopg.Connection, patch: str) -> bool:
    """True if the registry has a home in this patch."""
    return conn.execute("SELECT 1 FROM homes WHERE patch = %s LIMIT 1", (patch,)).fetchone() is not None


def first_home(conn: psycopg.Connection) -> str | None:
    """The registry's first home by id (a demo tenant's), or None when it has none."""
    row = conn.execute("SELECT id FROM homes ORDER BY id LIMIT 1").fetchone()
    return row[0] if row else None


def first_patch(conn: psycopg.Connection) -> str | None:
    """The registry's first patch by name (a demo officer's), or None when no home has one."""
    row = conn.execute("SELECT patch FROM homes WHERE patch IS NOT NULL ORDER BY patch LIMIT 1").fetchone()
    return row[0] if row else None
