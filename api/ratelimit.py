"""Login rate limiting: failed token requests per client address and per username, in this process.

In-process and in memory: each API process counts on its own (N replicas allow N times the limit) and a
restart forgets. That is enough to turn password guessing from thousands of tries a minute into a few;
a shared limit needs the reverse proxy or a shared store. Only failures count, so an office behind one
address is not locked out by its own successful logins; once a key is over the limit, every attempt is
refused with 429 and Retry-After, right passwords included, until its oldest failure leaves the window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

MAX_KEYS = 100_000  # bounded memory under a flood of made-up usernames: the least recently failed go first


class SlidingWindowLimiter:
    """At most `limit` failures per key within `window_s` seconds. Thread-safe."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, keys: Sequence[str]) -> float | None:
        """Seconds until every key is under its limit again, or None when all are under it now."""
        if self.limit <= 0:
            return None
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                hits = self._recent(key, now)
                if hits is not None and len(hits) >= self.limit:
                    wait = max(wait, hits[len(hits) - self.limit] + self.window_s - now)
        return wait if wait > 0 else None

    def failed(self, keys: Sequence[str]) -> None:
        """Count one failure against each key."""
        if self.limit <= 0:
            return
        now = self.clock()
        with self._lock:
            for key in keys:
                hits = self._recent(key, now)
                if hits is None:
                    hits = self._failures[key] = deque(maxlen=self.limit)
                hits.append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._failures.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._failures[key]
            return None
        return hits


def client_address(request: Request) -> str:
    """The caller's address as uvicorn saw it (X-Forwarded-For is honoured only from its trusted proxies)."""
    return request.client.host if request.client else "unknown"


def login_rate_limit(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Iterator[None]:
    """Refuse with 429 while the address or the username has too many recent failures; count this one if it fails."""
    limiter: SlidingWindowLimiter | None = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        yield
        return
    keys = (f"address:{client_address(request)}", f"user:{form.username.strip().casefold()}")
    wait = limiter.retry_after(keys)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed sign-in attempts; try again later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        yield
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            limiter.failed(keys)
        raise
