"""Password hashing (argon2) and signed, expiring bearer tokens (JWT, HS256)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.model import ROLES, Principal

_hasher = PasswordHasher()
# Verifying against this keeps the time for an unknown user close to that of a wrong password.
_DUMMY_HASH = _hasher.hash("placewatch-dummy-password")


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """True if the password matches the hash (constant work when there is no user)."""
    try:
        return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def make_token(p: Principal, *, secret: str, minutes: int, now: datetime | None = None) -> str:
    """A signed token naming the user, role and scope, valid for `minutes`."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": p.name,
        "role": p.role,
        "home": p.home_id,
        "patch": p.patch,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=minutes)).timestamp()),
        "iss": "placewatch",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, *, secret: str) -> Principal | None:
    """The principal of a valid, unexpired token, or None."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer="placewatch", options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    role = claims.get("role")
    if role not in ROLES or not isinstance(claims.get("sub"), str):
        return None
    return Principal(name=claims["sub"], role=role, home_id=claims.get("home"), patch=claims.get("patch"))
