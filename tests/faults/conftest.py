"""The fault suite stops and restarts services and takes minutes: it runs only when PLACEWATCH_FAULTS=1. Its
database takes the engine PLACEWATCH_TEST_ENGINE chooses, as tests/conftest.py's do (each in turn with `both`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services import test_engines

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (the project's marker list lives in pyproject.toml, which this suite leaves alone)."""
    config.addinivalue_line("markers", "faults: fault injection; minutes long; runs only with PLACEWATCH_FAULTS=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's tests unless PLACEWATCH_FAULTS=1 (so `make test` stays fast)."""
    if os.environ.get("PLACEWATCH_FAULTS") == "1":
        return
    skip = pytest.mark.skip(reason="fault injection runs with PLACEWATCH_FAULTS=1 (make test-faults)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(params=test_engines() if len(test_engines()) > 1 else None)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a run's database is migrated for: 'native' or 'timescale' (PLACEWATCH_TEST_ENGINE)."""
    return str(getattr(request, "param", test_engines()[0]))
