"""Dependencies in one place: settings, a database connection from the pool, the current user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from api.security import read_token
from core.model import Principal, Role
from placewatch.settings import Settings
from store import users

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for the request: committed (or rolled back on an error) and returned to the pool before
    the response is sent, so that an answer of 200 means the change is in the store (see Conn)."""
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": the connection's exit (commit) runs before the response is sent; FastAPI's default runs it
# after, when a client may already act on an answer whose change is not yet committed.
Conn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]


def current_user(settings: SettingsDep, conn: Conn, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
    """The principal of the bearer token, with the role, home and patch the account has now (an admin's change
    takes effect at once); 401 when the token is missing, bad or expired, or the account is disabled or gone."""
    principal = read_token(token, secret=settings.secret_key.get_secret_value()) if token else None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing, invalid or expired bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    row = users.get_user(conn, principal.name)
    if row is None or row.disabled:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this account is disabled or no longer exists: ask an administrator",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(name=row.name, role=row.role, home_id=row.home_id, patch=row.patch)


User = Annotated[Principal, Depends(current_user)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only these roles through (403 for the others)."""

    def check(user: User) -> Principal:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this needs the role {' or '.join(roles)}")
        return user

    return check


Admin = Annotated[Principal, Depends(require("admin"))]
