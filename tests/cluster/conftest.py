"""The cluster and failover runs start private NATS clusters and PostgreSQL pairs and take minutes: they run
only when PLACEWATCH_CLUSTER=1 (make test-cluster). Their databases take the engine PLACEWATCH_TEST_ENGINE
chooses, as tests/conftest.py's do (each in turn with `both`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.conftest import engine  # noqa: F401  # the engine fixture, shared

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
