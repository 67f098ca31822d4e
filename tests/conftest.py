"""Fixtures: a fresh real PostgreSQL database and a real broker per test run; services as processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.security import hash_password
from store import users
from store.db import connect
from store.migrate import EngineError, migrate
from tests.season_world import season  # noqa: F401 (the seeded season, once per run)
from tests.services import TIMESCALEDB_SETTING, Proc, Publisher, broker, fresh_database, start_service, test_engines

ENGINES = test_engines()


def pytest_configure(config: pytest.Config) -> None:
    """The engine marker."""
    config.addinivalue_line(
        "markers", "engine(name): needs this time-series engine ('native' or 'timescale'); skipped on the other"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose engine no database of this run has (PLACEWATCH_TEST_ENGINE)."""
    for item in items:
        mark = item.get_closest_marker("engine")
        if mark is not None and mark.args[0] not in ENGINES:
            why = f"needs {mark.args[0]} (PLACEWATCH_TEST_ENGINE={','.join(ENGINES)})"
            item.add_marker(pytest.mark.skip(reason=why))


def migrate_as(conn: Any, engine: str) -> None:
    """Migrate a new database on this engine, refusing (the run stops) when the server cannot give it."""
    try:
        migrate(conn, timescaledb=TIMESCALEDB_SETTING[engine])
    except EngineError as exc:
        pytest.exit(f"PLACEWATCH_TEST_ENGINE={engine}: {exc}", returncode=3)


@pytest.fixture(scope="session", params=ENGINES if len(ENGINES) > 1 else None)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new migrated database for the whole run (one per engine with PLACEWATCH_TEST_ENGINE=both)."""
    with fresh_database() as dsn:
        with connect(dsn) as conn:
            migrate_as(conn, getattr(request, "param", ENGINES[0]))
        yield dsn


@pytest.fixture(scope="session")
def store_engine(database_url: str) -> str:
    """The engine of the run's database: 'native' or 'timescale'."""
    from store.migrate import engine

    with connect(database_url) as conn:
        return engine(conn)


@pytest.fixture(autouse=True)
def _engine_guard(request: pytest.FixtureRequest) -> None:
    """With both engines in one run, a test marked for one engine is skipped on the other's database."""
    mark = request.node.get_closest_marker("engine")
    if mark is not None and len(ENGINES) > 1 and "database_url" in request.fixturenames:
        if request.getfixturevalue("store_engine") != mark.args[0]:
            pytest.skip(f"needs {mark.args[0]}")


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Any]:
    """A real MQTT broker (url, protocol)."""
    with broker() as b:
        yield b


@pytest.fixture
def db(database_url: str) -> Iterator[Any]:
    """An autocommit connection to the run's database."""
    with connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def uid() -> str:
    """A short unique suffix so tests sharing the run's database never collide."""
    return uuid.uuid4().hex[:8]


def service_env(database_url: str, mqtt_broker: Any, **extra: str) -> dict[str, str]:
    """Environment for a Placewatch service process in the tests."""
    env = {
        "PLACEWATCH_DATABASE_URL": database_url,
        "PLACEWATCH_MQTT_URL": mqtt_broker.url,
        "PLACEWATCH_MQTT_PROTOCOL": mqtt_broker.protocol,
        "PLACEWATCH_ENVIRONMENT": "test",
        "PLACEWATCH_STATS_SECONDS": "0.2",
        "PLACEWATCH_LOG_LEVEL": "info",
        "PLACEWATCH_SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
        "PLACEWATCH_MAP_TILE_URL": "",  # the tests run offline: maps on a plain background (tests/e2e/test_map.py)
    }
    env.update(extra)
    return env


@pytest.fixture
def ingest(database_url: str, mqtt_broker: Any, uid: str) -> Iterator[Any]:
    """Start `placewatch ingest` processes on demand (each with a unique client id unless given)."""
    procs: list[Proc] = []

    def start(**extra: str) -> Proc:
        extra.setdefault("PLACEWATCH_MQTT_CLIENT_ID", f"pw-test-ingest-{uid}")
        p = start_service(["ingest"], service_env(database_url, mqtt_broker, **extra))
        procs.append(p)
        p.wait_for("subscribed", timeout=30)
        return p

    yield start
    for p in procs:
        p.stop(9)


def start_api(database_url: str, mqtt_broker: Any, **extra: str) -> tuple[Proc, str]:
    """`placewatch api` on a free port of loopback, answering; (the process, its URL)."""
    from placewatch.embedded import free_port

    port = free_port()
    p = start_service(["api"], service_env(database_url, mqtt_broker, PLACEWATCH_API_PORT=str(port), **extra))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/api/v1/live", timeout=1)
            break
        except httpx.HTTPError:
            if p.popen.poll() is not None:
                raise AssertionError("api exited:\n" + p.log()) from None
            time.sleep(0.1)
    return p, url


@pytest.fixture(scope="session")
def api_url(database_url: str, mqtt_broker: Any) -> Iterator[str]:
    """`placewatch api` running as a real HTTP server for the run."""
    p, url = start_api(database_url, mqtt_broker)
    yield url
    p.stop()


@pytest.fixture(scope="session")
def make_user(database_url: str) -> Any:
    """Create a user directly in the store and return (name, password)."""

    def make(role: str, *, home: str | None = None, patch: str | None = None) -> tuple[str, str]:
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        password = uuid.uuid4().hex
        with connect(database_url, autocommit=True) as conn:
            users.add_user(conn, name=name, password_hash=hash_password(password), role=role, home_id=home, patch=patch)
        return name, password

    return make


@pytest.fixture(scope="session")
def token_for(api_url: str, make_user: Any) -> Any:
    """A bearer token header for a new user of a role."""

    def tok(role: str, **scope: str) -> dict[str, str]:
        name, password = make_user(role, **scope)
        r = httpx.post(api_url + "/api/v1/auth/token", data={"username": name, "password": password})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return tok


@pytest.fixture
def publisher(mqtt_broker: Any) -> Iterator[Publisher]:
    """A publisher connected to the run's broker."""
    p = Publisher(mqtt_broker.url, mqtt_broker.protocol)
    yield p
    p.close()


def wait_until(fn: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll fn until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
