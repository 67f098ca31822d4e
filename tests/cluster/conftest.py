"""The cluster and failover runs start private NATS clusters and PostgreSQL pairs and take minutes: they run
only when PLACEWATCH_CLUSTER=1 (make test-cluster). Their databases take the engine PLACEWATCH_TEST_ENGINE
chooses, as tests/conftest.py's do (each in turn with `both`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services import test_engines

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line("markers", "cluster: NATS cluster and database failover runs; PLACEWATCH_CLUSTER=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's tests unless PLACEWATCH_CLUSTER=1 (so `make test` stays fast)."""
    if os.environ.get("PLACEWATCH_CLUSTER") == "1":
        return
    skip = pytest.mark.skip(reason="cluster and failover runs need PLACEWATCH_CLUSTER=1 (make test-cluster)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(params=test_engines() if len(test_engines()) > 1 else None)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine this run's databases are migrated for: 'native' or 'timescale' (PLACEWATCH_TEST_ENGINE)."""
    return str(getattr(request, "param", test_engines()[0]))
