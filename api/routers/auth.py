"""OAuth2 password flow: a username and password for a signed, expiring bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import Conn, SettingsDep, User
from api.ratelimit import login_rate_limit
from api.security import make_token, verify_password
from core.model import Principal
from store import users

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class Me(BaseModel):
    """The current user."""

    name: str
    role: str
    home_id: str | None
    patch: str | None


@router.post(
    "/token",
    response_model=Token,
    dependencies=[Depends(login_rate_limit)],
    responses={
        401: {"description": "Wrong username or password"},
        429: {"description": "Too many failed sign-ins from this address or for this user; see Retry-After"},
    },
)
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], conn: Conn, settings: SettingsDep) -> Token:
    """Exchange a username and password for a bearer token."""
    row = users.get_user(conn, form.username)
    if not verify_password(form.password, row.password_hash if row else None) or row is None or row.disabled:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    p = Principal(name=row.name, role=row.role, home_id=row.home_id, patch=row.patch)
    tok = make_token(p, secret=settings.secret_key.get_secret_value(), minutes=settings.token_minutes)
    return Token(access_token=tok, expires_in=settings.token_minutes * 60)


@router.get("/me", response_model=Me)
def me(user: User) -> Me:
    """Who the token belongs to."""
    return Me(name=user.name, role=user.role, home_id=user.home_id, patch=user.patch)
