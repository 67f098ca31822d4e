"""A FIFO bounded by bytes and by count of messages: when the database is slow, the MQTT thread waits here.

An item is one message or several (ingest's Chunk: a read pass's plain readings); it says how many it holds."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    size: int  # bytes
    rows: int
    messages: int


T = TypeVar("T", bound=Sized)


class BoundedQueue(Generic[T]):
    """put() blocks while the queue holds more than max_bytes or max_messages; take_batch() drains by rows,
    messages or age."""

    def __init__(self, *, max_bytes: int, max_messages: int) -> None:
        self._items: deque[T] = deque()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_messages = max_messages
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._flushing = False
        self._takers = 0  # take_batch() calls waiting for items
        self._rows = 0  # rows held
        self._messages = 0  # messages held
        self._wanted = 1  # rows the waiting take_batch() needs before it is worth waking
        self._wanted_messages = 1  # or messages
        self._putters = 0  # put() calls waiting for room

    def __len__(self) -> int:
        """Messages held."""
        return self._messages

    @property
    def bytes(self) -> int:
        """Bytes of payload held."""
        return self._bytes

    def flush(self) -> None:
        """From now on, take_batch() returns what it has at once instead of waiting for rows or age."""
        with self._cond:
            self._flushing = True
            self._cond.notify_all()

    def put(self, item: T) -> None:
        """Add an item, waiting while the queue is full (an item larger than the bound still goes in alone)."""
        # The plain lock, and a notification only when someone waits: put() runs once per MQTT message.
        with self._lock:
            while self._items and (self._bytes + item.size > self._max_bytes or self._messages >= self._max_messages):
                self._putters += 1
                try:
                    self._cond.wait()
                finally:
                    self._putters -= 1
            self._items.append(item)
            self._bytes += item.size
            self._rows += max(item.rows, 1)
            self._messages += item.messages
            if self._takers and (self._rows >= self._wanted or self._messages >= self._wanted_messages):
                self._cond.notify_all()

    def take_batch(self, *, max_rows: int, max_age_s: float, wait_s: float, max_messages: int = 0) -> list[T]:
        """Items in arrival order: waits up to wait_s for the first, then until max_rows rows (or max_messages
        messages, when given) are there or max_age_s passes. An item is never split, so a batch may end one item
        beyond either bound."""
        out: list[T] = []
        rows = 0
        messages = 0
        max_messages = max_messages or 1 << 62
        with self._cond:
            if not self._items and not self._flushing:
                self._wait(wait_s, 1, 1)
                if not self._items:
                    return out
            deadline = time.monotonic() + max_age_s
            while True:
                while self._items and rows < max_rows and messages < max_messages:
                    item = self._items.popleft()
                    self._bytes -= item.size
                    out.append(item)
                    n = max(item.rows, 1)
                    rows += n
                    self._rows -= n
                    messages += item.messages
                    self._messages -= item.messages
                if self._putters:
                    self._cond.notify_all()
                remaining = deadline - time.monotonic()
                if rows >= max_rows or messages >= max_messages or remaining <= 0 or self._flushing:
                    return out
                self._wait(remaining, max_rows - rows, max_messages - messages)

    def _wait(self, timeout: float, wanted: int, wanted_messages: int) -> None:
        self._wanted = wanted
        self._wanted_messages = wanted_messages
        self._takers += 1
        try:
            self._cond.wait(timeout)
        finally:
            self._takers -= 1
