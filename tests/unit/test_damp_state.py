"""core.damp_state: a home's damp state from one evaluation to the next (red since, a rise, a level change logged on
the open case) and when a red home opens or reopens an Awaab's Law case, without services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.damp import Assessment, Level, PreviousLevel
from core.damp_state import REOPEN_AFTER, HomeBefore, HomeState, Opening, has_alert, next_state

NOW = datetime(2026, 12, 3, 8, tzinfo=UTC)
EARLIER = NOW - timedelta(days=3)


def judged(level: Level, *, raw: Level | None = None, hold: PreviousLevel | None = None) -> Assessment:
    return Assessment(
        level=level,
        reasons=(f"why {level}",),
        figures={},
        worst_room="bedroom",
        coverage=1.0,
        advice=(),
        raw_level=raw or level,
        state=hold,
    )


def red_before(*, since: datetime = EARLIER, open_case: bool = False, closed: datetime | None = None) -> HomeBefore:
    return HomeBefore(level="red", red_since=since, open_case=open_case, last_closed_at=closed)


# -- red since, and the new state -------------------------------------------------------------------------------


def test_the_new_state_is_the_assessment_s_level_raw_level_and_hysteresis_state() -> None:
    hold = PreviousLevel("watch", EARLIER)
    t = next_state(HomeBefore(level="watch", hold=hold), judged("watch", raw="advice", hold=hold), NOW)
    assert t.state == HomeState(level="watch", raw_level="advice", hold=hold, red_since=None)
    assert not t.changed
    assert t.was == "watch"


def test_a_red_spell_starts_at_the_first_red_evaluation() -> None:
    t = next_state(HomeBefore(level="watch"), judged("red"), NOW)
    assert t.state.red_since == NOW


def test_red_continuing_keeps_when_the_spell_started() -> None:
    t = next_state(red_before(since=EARLIER, open_case=True), judged("red"), NOW)
    assert t.state.red_since == EARLIER
    assert not t.changed


def test_red_with_no_start_recorded_starts_now() -> None:
    t = next_state(HomeBefore(level="red", red_since=None, open_case=True), judged("red"), NOW)
    assert t.state.red_since == NOW


@pytest.mark.parametrize("level", ["green", "advice", "watch", "insufficient_data"])
def test_any_other_level_ends_the_red_spell(level: Level) -> None:
    t = next_state(red_before(open_case=True), judged(level), NOW)
    assert t.state.red_since is None
    assert t.changed
    assert t.opening is None


def test_a_red_spell_ended_by_a_dead_sensor_starts_again_when_red_returns() -> None:
    gap = next_state(red_before(since=EARLIER), judged("insufficient_data"), NOW - timedelta(hours=1))
    back = next_state(HomeBefore(level=gap.state.level, red_since=gap.state.red_since), judged("red"), NOW)
    assert back.state.red_since == NOW


# -- opening a case ----------------------------------------------------------------------------------------------


def test_the_first_red_opens_a_case() -> None:
    t = next_state(HomeBefore(level="watch"), judged("red"), NOW)
    assert t.opening is Opening.FIRST


def test_red_at_the_first_evaluation_opens_a_case() -> None:
    t = next_state(HomeBefore(), judged("red"), NOW)
    assert t.opening is Opening.FIRST
    assert t.changed


@pytest.mark.parametrize("level", ["green", "advice", "watch", "insufficient_data"])
def test_no_case_opens_below_red(level: Level) -> None:
    assert next_state(HomeBefore(level="green"), judged(level), NOW).opening is None


def test_red_continuing_with_its_case_open_opens_nothing() -> None:
    t = next_state(red_before(open_case=True), judged("red"), NOW)
    assert t.opening is None


def test_a_home_going_red_with_a_case_still_open_opens_nothing() -> None:
    t = next_state(HomeBefore(level="watch", open_case=True, last_closed_at=NOW - 2 * REOPEN_AFTER), judged("red"), NOW)
    assert t.opening is None


def test_a_case_closed_during_this_red_spell_less_than_reopen_after_ago_is_not_reopened() -> None:
    closed = NOW - REOPEN_AFTER + timedelta(seconds=1)
    t = next_state(red_before(since=closed - timedelta(days=1), closed=closed), judged("red"), NOW)
    assert t.opening is None


def test_a_case_closed_during_this_red_spell_reopens_after_reopen_after() -> None:
    closed = NOW - REOPEN_AFTER
    t = next_state(red_before(since=closed - timedelta(days=1), closed=closed), judged("red"), NOW)
    assert t.opening is Opening.STILL_RED


def test_a_case_closed_the_moment_the_spell_started_counts_as_closed_during_it() -> None:
    closed = NOW - timedelta(days=1)
    t = next_state(red_before(since=closed, closed=closed), judged("red"), NOW)
    assert t.opening is None


def test_red_again_after_the_last_case_closed_opens_a_new_case_at_once() -> None:
    closed = NOW - timedelta(hours=2)
    t = next_state(HomeBefore(level="watch", last_closed_at=closed), judged("red"), NOW)
    assert t.opening is Opening.RED_AGAIN


def test_a_spell_started_after_the_close_opens_a_case_while_red_continues() -> None:
    closed = NOW - timedelta(days=2)
    t = next_state(red_before(since=closed + timedelta(hours=1), closed=closed), judged("red"), NOW)
    assert t.opening is Opening.RED_AGAIN


# -- a rise, and the level change logged on the open case --------------------------------------------------------


@pytest.mark.parametrize(("was", "now"), [("green", "advice"), ("advice", "watch"), ("watch", "red"), ("green", "red")])
def test_a_rise_from_a_judged_level_is_told(was: Level, now: Level) -> None:
    t = next_state(HomeBefore(level=was), judged(now), NOW)
    assert t.rose
    assert t.was == was


def test_advice_then_watch_then_red_is_a_rise_each_time() -> None:
    before, rises = HomeBefore(level="advice"), []
    for i, level in enumerate(("watch", "red")):
        t = next_state(before, judged(level), NOW + timedelta(hours=i))
        rises.append((t.was, t.state.level, t.rose))
        before = HomeBefore(level=t.state.level, red_since=t.state.red_since, open_case=t.opening is not None)
    assert rises == [("advice", "watch", True), ("watch", "red", True)]


@pytest.mark.parametrize(("was", "now"), [("red", "watch"), ("watch", "advice"), ("advice", "green"), ("red", "green")])
def test_falling_back_is_not_a_rise(was: Level, now: Level) -> None:
    t = next_state(HomeBefore(level=was), judged(now), NOW)
    assert t.changed
    assert not t.rose


@pytest.mark.parametrize("level", ["green", "advice", "watch", "red"])
def test_a_level_after_insufficient_data_or_the_first_evaluation_is_not_a_rise(level: Level) -> None:
    assert not next_state(HomeBefore(level="insufficient_data"), judged(level), NOW).rose
    assert not next_state(HomeBefore(), judged(level), NOW).rose


def test_the_same_level_is_no_change_and_no_rise() -> None:
    t = next_state(HomeBefore(level="watch", open_case=True), judged("watch"), NOW)
    assert (t.changed, t.rose, t.log_on_case, t.opening) == (False, False, False, None)


def test_a_level_change_is_logged_on_the_open_case() -> None:
    t = next_state(red_before(open_case=True), judged("watch"), NOW)
    assert t.log_on_case
    assert t.was == "red"


def test_a_level_change_with_no_case_open_logs_nothing() -> None:
    assert not next_state(HomeBefore(level="green"), judged("watch"), NOW).log_on_case


def test_the_first_evaluation_logs_nothing_on_an_open_case() -> None:
    assert not next_state(HomeBefore(open_case=True), judged("watch"), NOW).log_on_case


# -- the retained alert ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "open_case", "alert"),
    [
        ("advice", False, True),
        ("watch", False, True),
        ("red", False, True),
        ("green", False, False),
        ("insufficient_data", False, False),
        (None, False, False),
        ("green", True, True),
        ("insufficient_data", True, True),
    ],
)
def test_a_home_has_an_alert_at_advice_or_above_or_with_a_case_open(
    level: str | None, open_case: bool, alert: bool
) -> None:
    assert has_alert(level, open_case) is alert
