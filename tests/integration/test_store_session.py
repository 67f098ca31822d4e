"""The statements the scheduler, `placewatch run` and /metrics used to write themselves, now named in store/
(SQL only in store/, issue 15): the scheduler's leader lock and LISTEN (store.db), the demo users' first home
and patch (store.users), the scrape's statement timeout (store.metrics). Against a real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from store import metrics as store_metrics
from store import queries, users
from store.db import connect, listen, try_advisory_lock
from store.migrate import migrate
from tests.helpers import home, load
from tests.services import fresh_database

pytestmark = pytest.mark.integration


def test_the_advisory_lock_has_one_holder_until_its_connection_closes(database_url, uid):
    key = int(uid, 16)  # this test's own lock
    first = connect(database_url, autocommit=True)
    with connect(database_url, autocommit=True) as second:
        assert try_advisory_lock(first, key)
        assert not try_advisory_lock(second, key)
        assert queries.ping(first)  # the leader's keepalive
        first.close()  # a leader that goes gives the lock up with its connection
        # The server releases it when the backend has exited, which follows the client's close by a moment
        # (a follower retries on its own interval, as the scheduler does): poll for a bounded time.
        deadline = time.monotonic() + 10
        while not try_advisory_lock(second, key):
            assert time.monotonic() < deadline, "the lock was never released after its holder closed"
            time.sleep(0.05)


def test_listen_hears_notifications_on_the_channel(database_url, db, uid):
    channel = f"pwtest_{uid}"
    with connect(database_url, autocommit=True) as conn:
        listen(conn, channel)
        db.execute("SELECT pg_notify(%s, 'payload')", (channel,))
        notes = [n for n in conn.notifies(timeout=5, stop_after=1)]
    assert [(n.channel, n.payload) for n in notes] == [(channel, "payload")]


def test_the_demo_users_first_home_and_patch():
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate(conn, timescaledb="off")
        with connect(dsn, autocommit=True) as conn:
            assert users.first_home(conn) is None and users.first_patch(conn) is None
        load(dsn, home("home-b", patch="south"), home("home-c", patch="north"), home("home-a", patch="south"))
        with connect(dsn, autocommit=True) as conn:
            assert users.first_home(conn) == "home-a"
            assert users.first_patch(conn) == "north"


def _timeout_ms(conn) -> int:
    return int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'").fetchone()[0])


def test_the_scrapes_reads_run_under_the_statement_timeout_and_leave_it_behind(database_url, db):
    default = _timeout_ms(db)
    assert default != store_metrics.STATEMENT_TIMEOUT_MS
    with connect(database_url) as conn:  # as the pool lends it: no transaction open yet
        with store_metrics.bounded(conn):
            assert _timeout_ms(conn) == store_metrics.STATEMENT_TIMEOUT_MS
        assert _timeout_ms(conn) == default
        conn.rollback()
        f = store_metrics.forecast_figures(conn, now=datetime.now(UTC), max_age_hours=12)
        assert {"providers", "routes_without"} <= set(f)
        assert _timeout_ms(conn) == default
