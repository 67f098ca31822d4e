"""The ingest queue: bounded, and it wakes the writer when a batch is full, not for every message."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ingest.queue import BoundedQueue


@dataclass
class Item:
    n: int
    size: int = 100
    rows: int = 2
    messages: int = 1


def test_a_full_batch_is_taken_at_once_without_waiting_for_its_age():
    q: BoundedQueue[Item] = BoundedQueue(max_bytes=10**9, max_messages=10**6)
    out: list[list[Item]] = []
    started = time.monotonic()
    t = threading.Thread(target=lambda: out.append(q.take_batch(max_rows=100, max_age_s=30, wait_s=30)))
    t.start()
    for i in range(50):
        q.put(Item(i))
        time.sleep(0.001)
    t.join(5)
    assert not t.is_alive() and time.monotonic() - started < 5
    assert [i.n for i in out[0]] == list(range(50))


def test_a_partial_batch_is_taken_when_it_is_old_enough():
    q: BoundedQueue[Item] = BoundedQueue(max_bytes=10**9, max_messages=10**6)
    q.put(Item(1))
    started = time.monotonic()
    batch = q.take_batch(max_rows=1000, max_age_s=0.3, wait_s=1)
    assert [i.n for i in batch] == [1] and 0.25 <= time.monotonic() - started < 2


def test_an_empty_queue_returns_nothing_after_the_wait_and_flush_wakes_a_waiting_writer():
    q: BoundedQueue[Item] = BoundedQueue(max_bytes=10**9, max_messages=10**6)
    assert q.take_batch(max_rows=10, max_age_s=1, wait_s=0.05) == []
    q.put(Item(1))
    out: list[list[Item]] = []
    t = threading.Thread(target=lambda: out.append(q.take_batch(max_rows=1000, max_age_s=60, wait_s=60)))
    t.start()
    time.sleep(0.2)
    q.flush()
    t.join(5)
    assert not t.is_alive() and [i.n for i in out[0]] == [1]


def test_put_waits_while_full_and_goes_on_when_the_writer_takes():
    q: BoundedQueue[Item] = BoundedQueue(max_bytes=1000, max_messages=10**6)
    for i in range(10):
        q.put(Item(i))  # 1000 bytes: full
    done = threading.Event()
    t = threading.Thread(target=lambda: (q.put(Item(10)), done.set()))
    t.start()
    assert not done.wait(0.3)
    assert len(q.take_batch(max_rows=4, max_age_s=0, wait_s=0)) == 2
    assert done.wait(5)
    assert len(q) == 9 and q.bytes == 900


def test_a_batch_closes_at_max_messages_even_with_few_rows():
    q: BoundedQueue[Item] = BoundedQueue(max_bytes=10**9, max_messages=10**6)
    out: list[list[Item]] = []
    t = threading.Thread(
        target=lambda: out.append(q.take_batch(max_rows=10**6, max_age_s=30, wait_s=30, max_messages=20))
    )
    t.start()
    for i in range(25):
        q.put(Item(i))
    t.join(5)
    assert not t.is_alive() and [i.n for i in out[0]] == list(range(20)) and len(q) == 5


def test_an_item_of_several_messages_counts_them_and_is_never_split():
    q: BoundedQueue[Item] = BoundedQueue(max_bytes=10**9, max_messages=10**6)
    for i in range(3):
        q.put(Item(i, messages=3))
    assert len(q) == 9
    batch = q.take_batch(max_rows=10**6, max_age_s=0, wait_s=0, max_messages=5)
    assert [i.n for i in batch] == [0, 1] and len(q) == 3
