"""Working days in England and Wales and the Awaab's Law clocks (DOMAIN.md section 2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.workdays import (
    LONDON,
    add_working_days,
    case_deadlines,
    emergency_by,
    is_working_day,
    nth_working_day_after,
    preventative_begin_by,
    preventative_physically_started_by,
    safety_work_by,
    summary_by,
    working_days_between,
)


def _london(at: datetime) -> datetime:
    return at.astimezone(LONDON)


def test_boxing_day_2026_is_observed_on_monday_28_december() -> None:
    assert not is_working_day(date(2026, 12, 25))
    assert not is_working_day(date(2026, 12, 28))  # substitute for Saturday 26th
    assert is_working_day(date(2026, 12, 29))


def test_christmas_2027_on_a_weekend_moves_both_holidays_to_monday_and_tuesday() -> None:
    assert not is_working_day(date(2027, 12, 27))
    assert not is_working_day(date(2027, 12, 28))
    assert is_working_day(date(2027, 12, 29))


def test_weekends_are_not_working_days() -> None:
    assert not is_working_day(date(2027, 1, 9))  # Saturday
    assert not is_working_day(date(2027, 1, 10))  # Sunday
    assert is_working_day(date(2027, 1, 11))


def test_a_datetime_is_refused_because_its_day_depends_on_the_zone() -> None:
    with pytest.raises(TypeError):
        is_working_day(datetime(2027, 1, 11, 12, tzinfo=UTC))


def test_the_working_days_after_21_december_2026_skip_christmas_boxing_day_and_new_year() -> None:
    days = [nth_working_day_after(date(2026, 12, 21), n) for n in range(1, 11)]
    assert days == [
        date(2026, 12, 22),
        date(2026, 12, 23),
        date(2026, 12, 24),
        date(2026, 12, 29),
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 4),
        date(2027, 1, 5),
        date(2027, 1, 6),
        date(2027, 1, 7),
    ]


def test_aware_monday_21_december_2026_investigate_by_end_of_thursday_7_january_2027() -> None:
    deadlines = case_deadlines(datetime(2026, 12, 21, 9, 15, tzinfo=LONDON))
    assert deadlines.investigate_by == datetime(2027, 1, 7, 23, 59, 59, 999999, tzinfo=UTC)  # GMT = UTC
    assert deadlines.investigate_by.tzinfo is UTC
    assert _london(deadlines.investigate_by).strftime("%A") == "Thursday"


def test_easter_2027_good_friday_and_easter_monday_are_skipped_and_the_deadline_is_in_bst() -> None:
    assert not is_working_day(date(2027, 3, 26))
    assert not is_working_day(date(2027, 3, 29))
    # Aware Thursday 25 March: day 1 is Tuesday 30 March, day 10 is Monday 12 April.
    by = add_working_days(datetime(2027, 3, 25, 16, 0, tzinfo=LONDON), 10)
    assert _london(by) == datetime(2027, 4, 12, 23, 59, 59, 999999, tzinfo=LONDON)
    assert by == datetime(2027, 4, 12, 22, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize("day", [8, 9, 10])  # Friday evening, Saturday, Sunday
def test_awareness_at_the_weekend_starts_counting_on_monday(day: int) -> None:
    by = add_working_days(datetime(2027, 1, day, 23, 30, tzinfo=LONDON), 10)
    assert _london(by).date() == date(2027, 1, 22)


def test_the_day_of_awareness_is_the_london_day_not_the_utc_day() -> None:
    # 23:30 UTC on Tuesday 30 June 2026 is 00:30 on Wednesday 1 July in London.
    by = add_working_days(datetime(2026, 6, 30, 23, 30, tzinfo=UTC), 10)
    assert _london(by).date() == date(2026, 7, 15)


def test_working_days_between_counts_the_days_left() -> None:
    aware = datetime(2026, 12, 21, 9, 0, tzinfo=UTC)
    deadline = case_deadlines(aware).investigate_by
    assert working_days_between(aware, deadline) == 10
    assert working_days_between(datetime(2027, 1, 4, 10, tzinfo=UTC), deadline) == 3
    assert working_days_between(deadline, datetime(2027, 1, 4, 10, tzinfo=UTC)) == -3
    assert working_days_between(deadline, deadline) == 0


def test_later_steps_count_from_the_end_of_the_investigation() -> None:
    done = datetime(2027, 1, 7, 15, 0, tzinfo=UTC)  # Thursday
    assert _london(summary_by(done)).date() == date(2027, 1, 12)  # Fri 8, Mon 11, Tue 12
    assert _london(safety_work_by(done)).date() == date(2027, 1, 14)
    assert _london(preventative_begin_by(done)).date() == date(2027, 1, 14)
    # 12 weeks = 84 calendar days, to the end of that London day (BST by then).
    assert preventative_physically_started_by(done) == datetime(2027, 4, 1, 22, 59, 59, 999999, tzinfo=UTC)


def test_emergency_deadline_is_24_hours_after_a_person_confirms() -> None:
    confirmed = datetime(2027, 3, 27, 21, 40, tzinfo=UTC)  # the night the clocks go forward
    assert emergency_by(confirmed) == confirmed + timedelta(hours=24)


def test_case_deadlines_fill_in_the_later_steps_once_investigated() -> None:
    aware = datetime(2026, 12, 21, 9, 0, tzinfo=UTC)
    assert case_deadlines(aware).summary_by is None
    done = datetime(2027, 1, 7, 15, 0, tzinfo=UTC)
    full = case_deadlines(aware, investigation_done_at=done)
    assert full.summary_by == summary_by(done)
    assert full.safety_work_by == safety_work_by(done)
    assert full.preventative_physically_started_by == preventative_physically_started_by(done)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        add_working_days(datetime(2026, 12, 21, 9, 0), 10)
    with pytest.raises(ValueError, match="time zone"):
        case_deadlines(datetime(2026, 12, 21, 9, 0, tzinfo=UTC), investigation_done_at=datetime(2027, 1, 7))
    with pytest.raises(ValueError, match="time zone"):
        emergency_by(datetime(2027, 1, 7))


def test_zero_working_days_is_refused() -> None:
    with pytest.raises(ValueError):
        add_working_days(datetime(2026, 12, 21, 9, 0, tzinfo=UTC), 0)
