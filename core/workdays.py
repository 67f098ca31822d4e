"""Working days in England and Wales, and the Awaab's Law clocks that count them (DOMAIN.md section 2).

How we count "within N working days of becoming aware" (SI 2025/1042):
- The day of awareness is the Europe/London calendar day on which the landlord became aware;
  it never counts, whatever the hour (like "clear days" in most statutory time limits).
- Working day 1 is the first working day after that day; the deadline is the very end of
  working day N, 23:59:59.999999 Europe/London, returned as an aware UTC datetime.
- A working day is Monday to Friday and not a bank holiday in England and Wales, substitute
  days included (Boxing Day 2026 falls on a Saturday and is observed on Monday 28 December).

So a report on Monday 21 December 2026 must be investigated by the end of Thursday 7 January 2027.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")

INVESTIGATE_WORKING_DAYS = 10
SUMMARY_WORKING_DAYS = 3
SAFETY_WORK_WORKING_DAYS = 5
PREVENTATIVE_BEGIN_WORKING_DAYS = 5
PREVENTATIVE_START_CALENDAR_DAYS = 84  # 12 weeks
EMERGENCY_HOURS = 24


@cache
def _bank_holidays(year: int) -> frozenset[date]:
    # observed=True puts substitute days ("Boxing Day (observed)") in the calendar as days of
    # their own; the original weekend dates stay in too, which is harmless for weekdays.
    cal = holidays.country_holidays("GB", subdiv="ENG", years=year, observed=True)
    return frozenset(cal.keys())


def is_working_day(d: date) -> bool:
    """True for Monday to Friday that is not a bank holiday (or substitute day) in England and Wales."""
    if isinstance(d, datetime):
        # A datetime's date depends on its zone; make the caller choose the London day.
        raise TypeError("is_working_day takes a Europe/London date, not a datetime")
    return d.weekday() < 5 and d not in _bank_holidays(d.year)


def _london_day(at: datetime) -> date:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time {at.isoformat()} has no time zone")
    return at.astimezone(LONDON).date()


def _end_of_day(d: date) -> datetime:
    return datetime.combine(d, time.max, tzinfo=LONDON).astimezone(UTC)


def nth_working_day_after(day: date, n: int) -> date:
    """The nth working day after `day` (which itself never counts); n >= 1."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    d = day
    while n:
        d += timedelta(days=1)
        if is_working_day(d):
            n -= 1
    return d


def add_working_days(start: datetime, n: int) -> datetime:
    """End (23:59:59.999999 London, as UTC) of the nth working day after the London day of `start`."""
    return _end_of_day(nth_working_day_after(_london_day(start), n))


def working_days_between(a: datetime, b: datetime) -> int:
    """Working days after a's London day up to and including b's (negative if b is earlier): the 'days left'."""
    da, db = _london_day(a), _london_day(b)
    sign = 1
    if db < da:
        da, db, sign = db, da, -1
    count = 0
    d = da + timedelta(days=1)
    while d <= db:
        count += is_working_day(d)
        d += timedelta(days=1)
    return sign * count


def summary_by(investigation_done_at: datetime) -> datetime:
    """Deadline for the written summary to the tenant: 3 working days after the investigation ends."""
    return add_working_days(investigation_done_at, SUMMARY_WORKING_DAYS)


def safety_work_by(investigation_done_at: datetime) -> datetime:
    """Deadline for safety work on a significant hazard: 5 working days after the investigation ends."""
    return add_working_days(investigation_done_at, SAFETY_WORK_WORKING_DAYS)


def preventative_begin_by(investigation_done_at: datetime) -> datetime:
    """Deadline to begin (or take steps to begin) preventative work: 5 working days after the investigation ends."""
    return add_working_days(investigation_done_at, PREVENTATIVE_BEGIN_WORKING_DAYS)


def preventative_physically_started_by(investigation_done_at: datetime) -> datetime:
    """Deadline for preventative work to physically start: end of the London day 12 weeks after investigation."""
    return _end_of_day(_london_day(investigation_done_at) + timedelta(days=PREVENTATIVE_START_CALENDAR_DAYS))


def emergency_by(confirmed_at: datetime) -> datetime:
    """Deadline to investigate and make safe an emergency hazard a person has confirmed: 24 hours, to the minute."""
    _london_day(confirmed_at)  # refuse naive times here as everywhere else
    return confirmed_at.astimezone(UTC) + timedelta(hours=EMERGENCY_HOURS)


@dataclass(frozen=True, slots=True)
class AwaabDeadlines:
    """The Awaab's Law deadlines of one significant damp and mould case; later steps are None until known."""

    aware_at: datetime
    investigate_by: datetime
    investigation_done_at: datetime | None = None
    summary_by: datetime | None = None
    safety_work_by: datetime | None = None
    preventative_begin_by: datetime | None = None
    preventative_physically_started_by: datetime | None = None


def case_deadlines(aware_at: datetime, *, investigation_done_at: datetime | None = None) -> AwaabDeadlines:
    """All deadlines of a significant damp and mould case known so far (UTC, aware)."""
    investigate = add_working_days(aware_at, INVESTIGATE_WORKING_DAYS)
    aware_utc = aware_at.astimezone(UTC)
    if investigation_done_at is None:
        return AwaabDeadlines(aware_utc, investigate)
    summary = summary_by(investigation_done_at)  # first, so a naive time is refused before use
    return AwaabDeadlines(
        aware_utc,
        investigate,
        investigation_done_at.astimezone(UTC),
        summary,
        safety_work_by(investigation_done_at),
        preventative_begin_by(investigation_done_at),
        preventative_physically_started_by(investigation_done_at),
    )
