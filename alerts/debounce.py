"""The one debouncer of the evaluators: something (a home, a full sweep, a check of the store) is let through at
most once every `every_s` seconds, on the monotonic clock, so the wall clock moving does not change it."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
ONCE = "once"  # the key of a debouncer that guards one thing


class Debouncer:
    """At most once every `every_s` seconds per key. A key never marked is due at once."""

    def __init__(self, every_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._last: dict[Hashable, float] = {}

    def due(self, key: Hashable = ONCE) -> bool:
        """True when the key was never marked, or last marked `every_s` seconds ago or more."""
        last = self._last.get(key)
        return last is None or self.clock() - last >= self.every_s

    def ready(self, keys: Iterable[K]) -> list[K]:
        """The keys that are due, in the order given."""
        return [k for k in keys if self.due(k)]

    def mark(self, keys: Iterable[Hashable] = (ONCE,)) -> None:
        """The keys ran now: each is due again `every_s` seconds from now."""
        now = self.clock()
        self._last.update((k, now) for k in keys)

    def take(self, key: Hashable = ONCE) -> bool:
        """When the key is due, mark it and say True; otherwise False (and it stays as it was)."""
        if not self.due(key):
            return False
        self.mark((key,))
        return True
