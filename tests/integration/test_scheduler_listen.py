"""The scheduler's LISTEN connection on the real PostgreSQL: commits notified while it was not listening (its
connection lost, a failover) are not lost: once it listens again, every evaluator hears "all changed"."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from alerts.scheduler import Scheduler
from placewatch.settings import Settings

pytestmark = pytest.mark.integration


def _wait(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def _listeners(db: Any) -> list[int]:
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
        " AND pid <> pg_backend_pid()"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_lost_listen_connection_comes_back_and_re_evaluates_everything_once(database_url: str, db: Any) -> None:
    sched = Scheduler(Settings(), [], dsn=database_url)
    stop, lead_over, listening = threading.Event(), threading.Event(), threading.Event()
    t = threading.Thread(target=sched._listen, args=(stop, lead_over, listening), daemon=True)
    t.start()
    try:
        assert listening.wait(20), "the listener listens"
        assert _wait(lambda: len(_listeners(db)) == 1)
        db.execute("NOTIFY placewatch_readings, '[\"dev-1\"]'")
        assert _wait(lambda: sched._pending == {"dev-1"})
        assert not sched._pending_all  # the first LISTEN of a term: the term's first sweeps read after it
        sched._pending.clear()
        sched._wake.clear()

        [pid] = _listeners(db)
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Committed while nobody listens: notified to nobody.
        db.execute("NOTIFY placewatch_readings, '[\"dev-2\"]'")
        assert _wait(lambda: _listeners(db) not in ([], [pid])), "it listens again on a new connection"
        assert _wait(lambda: sched._pending_all and sched._wake.is_set()), "and re-evaluates everything once"
    finally:
        stop.set()
        t.join(10)
