"""One time format in every response (core.timeparse.utc_z): RFC 3339 in UTC with a Z, whatever zone the time
came in; a naive time is refused rather than guessed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.cases import case_summary, next_visit
from core.timeparse import parse_rfc3339, utc_z, utc_z_or_none

ROOT = Path(__file__).resolve().parents[2]


def test_an_aware_time_in_another_zone_is_written_in_utc_with_a_z() -> None:
    london_summer = datetime(2026, 7, 1, 19, 30, tzinfo=ZoneInfo("Europe/London"))  # BST, 18:30 UTC
    assert utc_z(london_summer) == "2026-07-01T18:30:00Z"
    assert utc_z(datetime(2026, 12, 2, 13, 0, tzinfo=timezone(timedelta(hours=-5)))) == "2026-12-02T18:00:00Z"
    assert utc_z(datetime(2026, 12, 2, 18, 0, tzinfo=UTC)) == "2026-12-02T18:00:00Z"


def test_microseconds_are_kept_when_there_are_some_and_the_text_reads_back_as_the_same_instant() -> None:
    at = datetime(2020, 2, 12, 16, 15, 45, 789585, tzinfo=timezone(timedelta(hours=1)))
    assert utc_z(at) == "2020-02-12T15:15:45.789585Z"
    assert parse_rfc3339(utc_z(at)) == at


def test_a_naive_time_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        utc_z(datetime(2026, 12, 2, 18, 0))
    with pytest.raises(ValueError, match="no time zone"):
        utc_z_or_none(datetime(2026, 12, 2, 18, 0))


def test_no_time_stays_none() -> None:
    assert utc_z_or_none(None) is None
    assert utc_z_or_none(datetime(2026, 12, 2, 18, 0, tzinfo=UTC)) == "2026-12-02T18:00:00Z"


def test_a_case_written_from_a_non_utc_session_has_utc_z_times() -> None:
    # PostgreSQL gives timestamptz in the session's zone: the case's times are written in UTC all the same.
    bst = ZoneInfo("Europe/London")
    opened = datetime(2026, 7, 1, 9, 0, tzinfo=bst)
    case = {
        "id": 1, "home_id": "h", "level": "red", "status": "open", "closed_at": None,
        "emergency_confirmed_at": None, "overdue_steps": [], "opened_at": opened, "aware_at": opened,
        "investigate_by": datetime(2026, 7, 15, 23, 59, 59, tzinfo=bst), "emergency_by": None, "summary_by": None,
        "safety_work_by": None, "preventative_begin_by": None, "preventative_physically_started_by": None,
        "investigation_done_at": None, "summary_sent_at": None, "safety_work_done_at": None,
        "works_started_at": None, "visit_booked_for": datetime(2026, 7, 2, 10, 0, tzinfo=bst),
    }  # fmt: skip
    s = case_summary(case, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert s["opened_at"] == s["aware_at"] == "2026-07-01T08:00:00Z"
    assert s["investigate_by"] == s["next_step"]["due"] == "2026-07-15T22:59:59Z"
    visit = next_visit(case, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert visit is not None and visit["at"] == "2026-07-02T09:00:00Z"


# Where responses are written.
_RESPONSE_WRITERS = [
    *(ROOT / "api" / "routers").glob("*.py"),
    ROOT / "api" / "row_models.py",
    ROOT / "alerts" / "gritting.py",
    ROOT / "store" / "gritting.py",
    ROOT / "core" / "gritting" / "decision.py",
    ROOT / "core" / "jsonready.py",
    ROOT / "alerts" / "damp.py",
    ROOT / "alerts" / "health.py",
    ROOT / "alerts" / "notify.py",
    ROOT / "dashboards" / "open_data.py",
    ROOT / "store" / "damp.py",
    ROOT / "store" / "health.py",
    ROOT / "store" / "notifications.py",
    ROOT / "store" / "open_data.py",
    ROOT / "core" / "cases.py",
    ROOT / "core" / "damp.py",
]
# A time turned into text by hand: .isoformat() on something that is not a date (dates and the words of error
# messages are fine), or a zone suffix patched on.
_HAND_WRITTEN = re.compile(
    r'replace\("\+00:00"|\]\.isoformat\(\)|\bnow\.isoformat\(\)|opened\.isoformat\(\)|def _iso\('
)


@pytest.mark.parametrize("path", _RESPONSE_WRITERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_responses_write_times_only_through_utc_z(path: Path) -> None:
    hits = [
        f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1) if _HAND_WRITTEN.search(line)
    ]
    assert hits == []
