"""core.cases: which actions may come next (one definition, used to refuse and to offer), who is responsible for a
case, and the visit booked with the tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.cases import (
    ACTIONS,
    CaseConflict,
    allowed_actions,
    apply_action,
    assignee_refusal,
    book_visit,
    choose_officers,
    next_visit,
    notice_problem,
    owner_problem,
    patch_problems,
    refusal,
)
from core.workdays import add_working_days

AWARE = datetime(2026, 12, 1, 9, tzinfo=UTC)
COLUMNS = (
    "acknowledged_at visited_at investigation_done_at summary_by summary_sent_at safety_work_by safety_work_done_at "
    "preventative_begin_by preventative_physically_started_by works_started_at works_completed_at "
    "emergency_confirmed_at emergency_by closed_at officer visit_booked_for visit_booked_note"
).split()


def case(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = dict.fromkeys(COLUMNS)
    c |= {"id": 7, "home_id": "h", "level": "red", "status": "open", "opened_at": AWARE, "aware_at": AWARE}
    c |= {"investigate_by": add_working_days(AWARE, 10), "overdue_steps": [], "patch": "north"}
    return c | over


def offered(c: dict[str, Any]) -> list[str]:
    return [a["action"] for a in allowed_actions(c)]


def test_a_new_case_offers_acknowledge_visit_investigation_emergency_and_close_with_a_note():
    c = case()
    assert offered(c) == ["acknowledge", "visit", "investigation_done", "confirm_emergency", "close"]
    assert [a["needs_note"] for a in allowed_actions(c) if a["action"] == "close"] == [True]
    assert all(a["label"] and "_" not in a["label"] for a in allowed_actions(c))  # words, not codes


def test_after_the_investigation_the_follow_up_steps_are_offered_and_done_ones_are_not():
    c = case()
    c |= apply_action(c, "acknowledge", AWARE + timedelta(hours=2), None)
    c |= apply_action(c, "investigation_done", AWARE + timedelta(days=3), None)
    assert offered(c) == ["visit", "summary_sent", "safety_work_done", "works_started", "confirm_emergency", "close"]
    c |= apply_action(c, "works_started", AWARE + timedelta(days=4), None)
    assert "works_completed" in offered(c) and "works_started" not in offered(c)
    c |= apply_action(c, "summary_sent", AWARE + timedelta(days=4), None)
    assert "summary_sent" not in offered(c)
    assert [a["needs_note"] for a in allowed_actions(c) if a["action"] == "close"] == [False]


def test_every_action_not_offered_is_refused_with_a_sentence_and_every_offered_one_is_accepted():
    stages = [case()]
    stages.append(stages[-1] | apply_action(stages[-1], "acknowledge", AWARE + timedelta(hours=1), None))
    stages.append(stages[-1] | apply_action(stages[-1], "investigation_done", AWARE + timedelta(days=2), None))
    stages.append(stages[-1] | apply_action(stages[-1], "close", AWARE + timedelta(days=9), None))
    for c in stages:
        allowed = set(offered(c))
        for action in ACTIONS:
            if action in allowed:
                apply_action(c, action, AWARE + timedelta(days=10), "a note")
            else:
                with pytest.raises(CaseConflict) as err:
                    apply_action(c, action, AWARE + timedelta(days=10), "a note")
                assert str(err.value) == refusal(c, action)
                assert "_" not in str(err.value)  # no internal action names in what people read
    assert offered(stages[-1]) == []


def test_out_of_order_steps_say_what_must_come_first_in_words():
    with pytest.raises(CaseConflict, match=r"^the written summary follows the investigation: record that the inv"):
        apply_action(case(), "summary_sent", AWARE, None)


def test_new_cases_go_to_the_least_loaded_officer_of_their_patch_and_none_when_the_patch_has_none():
    loads = {"north": {"bea": 2, "ann": 0}, "south": {"cal": 5}}
    got = choose_officers(["north"] * 4, loads)
    assert got == ["ann", "ann", "ann", "bea"]  # 0->1->2 ties bea (2) and ann wins by name; then ann 3 > bea 2
    assert choose_officers(["south", "east", None], loads) == ["cal", None, None]
    assert loads == {"north": {"bea": 2, "ann": 0}, "south": {"cal": 5}}  # the caller's counts are untouched


def test_only_an_enabled_officer_of_the_homes_patch_may_be_made_responsible():
    officer = {"role": "officer", "disabled": False, "patch": "north"}
    assert assignee_refusal(officer, "ann", "north") is None
    assert assignee_refusal(None, "zed", "north") == "there is no user called zed"
    assert assignee_refusal(officer | {"role": "tenant"}, "ann", "north") == "ann is not a housing officer"
    assert assignee_refusal(officer | {"disabled": True}, "ann", "north") == "ann's account is disabled"
    assert "looks after patch north, not south" in (assignee_refusal(officer, "ann", "south") or "")
    assert "no patch" in (assignee_refusal(officer, "ann", None) or "")


def test_a_case_with_no_officer_or_one_who_cannot_act_has_an_owner_problem_in_words():
    assert owner_problem(case()) == "No officer is responsible for this case: assign one."
    good = case(officer="ann", officer_role="officer", officer_patch="north", officer_disabled=False)
    assert owner_problem(good) is None
    assert "disabled" in (owner_problem(good | {"officer_disabled": True}) or "")
    assert "not north" not in (owner_problem(good) or "")
    assert "looks after patch south, not north" in (owner_problem(good | {"officer_patch": "south"}) or "")
    assert "no account" in (owner_problem(good | {"officer_role": None}) or "")
    assert owner_problem(case(closed_at=AWARE)) is None  # a closed case needs nobody


def test_a_notification_that_reached_nobody_is_a_problem_and_patches_say_what_is_missing():
    sent = {"title": "Case 7 opened", "routed_at": AWARE, "deliveries": 0}
    assert "Nobody was notified of “Case 7 opened”" in (notice_problem(sent) or "")
    assert notice_problem(sent | {"deliveries": 2}) is None
    assert notice_problem(sent | {"routed_at": None}) is None  # not routed yet
    assert notice_problem(None) is None
    assert len(patch_problems([], 0)) == 2
    assert patch_problems(["ann"], 1) == []
    assert patch_problems(["ann"], 1, 2) == ["2 open cases have no officer able to act on them."]


def test_a_visit_is_booked_for_a_time_to_come_shown_until_its_day_ends_and_cleared_when_it_happens():
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    c = case()
    with pytest.raises(CaseConflict, match="has passed"):
        book_visit(c, now - timedelta(hours=1), None, now)
    c |= book_visit(c, now + timedelta(days=1), "  Sam from repairs, to look at the bedroom  ", now)
    assert c["visit_booked_note"] == "Sam from repairs, to look at the bedroom"
    shown = next_visit(c, now)
    assert shown is not None and shown["when"] == "Thursday 3 December 2026 12:00"
    assert next_visit(c, now + timedelta(days=1, hours=11)) is not None  # the day of the visit
    assert next_visit(c, now + timedelta(days=2, hours=1)) is None  # the next day
    c |= apply_action(c, "visit", now + timedelta(days=1), None)
    assert c["visit_booked_for"] is None and next_visit(c, now) is None
    with pytest.raises(CaseConflict, match="closed"):
        book_visit(case(closed_at=now), now + timedelta(days=1), None, now)
