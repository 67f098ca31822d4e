"""core.jsonready: what goes out as JSON (API bodies, MQTT alerts, stored evidence) writes every time as
core.timeparse.utc_z does, however deep it sits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.jsonready import json_ready


@dataclass(frozen=True)
class _Inner:
    at: datetime
    values: tuple[float, ...]


def test_times_anywhere_are_utc_z_and_tuples_lists():
    eastern = datetime(2026, 12, 2, 13, 0, tzinfo=timezone(timedelta(hours=-5)))
    value = {"outer": [(_Inner(eastern, (1.0, 2.5)), None)], 3: "x"}
    assert json_ready(value) == {"outer": [[{"at": "2026-12-02T18:00:00Z", "values": [1.0, 2.5]}, None]], "3": "x"}


def test_a_naive_time_is_refused_not_guessed():
    with pytest.raises(ValueError, match="no time zone"):
        json_ready({"at": datetime(2026, 12, 2, 18, 0)})


def test_plain_values_pass_through():
    assert json_ready(["a", 1, 2.5, True, None]) == ["a", 1, 2.5, True, None]
    assert json_ready(datetime(2026, 12, 2, 18, 0, tzinfo=UTC)) == "2026-12-02T18:00:00Z"
