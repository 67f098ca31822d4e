"""When an evaluation is a new decision (core.gritting.lifecycle.material_change), without services."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.gritting import Decision, GrittingPolicy
from core.gritting.lifecycle import Current, material_change

T = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
POLICY = GrittingPolicy(material_rounding_minutes=15)
CALL, START, DONE = T + timedelta(hours=1), T + timedelta(hours=2), T + timedelta(hours=5)


def current(**over: object) -> Current:
    values: dict[str, object] = {
        "id": 1, "action": "precautionary_salt", "spread_rate_g_m2": 10.0, "passes": 1, "spread_type": "dry",
        "call_out_by": CALL, "start_by": START, "complete_by": DONE, "treat_now": False, "status": "issued",
        "rule": "below_trigger",
    }  # fmt: skip
    return Current(**(values | over))  # type: ignore[arg-type]


def decision(**over: object) -> Decision:
    d = Decision(
        route_id="P1", action="precautionary_salt", rule="below_trigger", decided_at=T, spread_rate_g_m2=10.0,
        call_out_by=CALL, start_by=START, complete_by=DONE,
    )  # fmt: skip
    return replace(d, **over)  # type: ignore[arg-type]


def test_a_route_without_a_decision_gets_one():
    assert material_change(None, decision(), POLICY)


def test_the_same_instruction_is_not_issued_again():
    assert not material_change(current(), decision(), POLICY)


@pytest.mark.parametrize(
    "over",
    [
        {"action": "salt"},
        {"spread_rate_g_m2": 15.0},
        {"spread_rate_g_m2": None},
        {"passes": 2},
        {"spread_type": "pre-wetted"},
        {"treat_now": True},
    ],
)
def test_another_treatment_is_a_new_decision(over):
    assert material_change(current(), decision(**over), POLICY)


def test_times_move_the_decision_only_by_the_policy_s_tolerance():
    assert not material_change(current(), decision(call_out_by=CALL + timedelta(minutes=14)), POLICY)
    assert material_change(current(), decision(call_out_by=CALL + timedelta(minutes=15)), POLICY)
    assert material_change(current(), decision(start_by=START - timedelta(minutes=20)), POLICY)
    assert material_change(current(), decision(complete_by=DONE + timedelta(minutes=30)), POLICY)
    # a looser policy holds the same move
    assert not material_change(
        current(), decision(call_out_by=CALL + timedelta(minutes=20)), GrittingPolicy(material_rounding_minutes=30)
    )


def test_a_time_wobbling_across_a_rounding_boundary_is_not_a_new_decision():
    # 18:07 and 18:08 round to 18:00 and 18:15 (material_key differs), but they are a minute apart.
    before, after = T + timedelta(minutes=7), T + timedelta(minutes=8)
    assert decision(call_out_by=before).material_key() != decision(call_out_by=after).material_key()
    assert not material_change(current(call_out_by=before), decision(call_out_by=after), POLICY)


def test_a_time_that_appears_or_goes_is_a_new_decision():
    assert material_change(current(call_out_by=None), decision(), POLICY)
    assert material_change(current(), decision(complete_by=None), POLICY)


def test_treat_now_follows_the_clock_so_its_times_do_not_count():
    later = timedelta(hours=1)
    now_current = current(treat_now=True)
    moved = decision(treat_now=True, call_out_by=CALL + later, start_by=START + later, complete_by=DONE + later)
    assert not material_change(now_current, moved, POLICY)
    assert material_change(now_current, decision(treat_now=True, action="salt"), POLICY)


def test_a_code_from_the_database_compares_with_the_rules_action():
    # the store reads plain strings; the rules write literals: the same code is the same action
    assert not material_change(current(action="salt"), decision(action="salt"), POLICY)


def test_a_route_seen_again_after_cannot_judge_is_a_new_decision() -> None:
    """The demo's first sweep ran before the stations reported: "monitor, cannot judge" stood all morning while
    the map showed the stations' readings, because monitor -> monitor was no change of instruction."""
    blind = current(action="monitor", spread_rate_g_m2=None, call_out_by=None, start_by=None, complete_by=None,
                    rule="no_data")  # fmt: skip
    seen = decision(action="monitor", rule="within_monitor_band", spread_rate_g_m2=None, call_out_by=None,
                    start_by=None, complete_by=None)  # fmt: skip
    assert material_change(blind, seen, POLICY)
    # and the other way: a route whose stations stop reporting is told so at once
    watched = replace(blind, rule="within_monitor_band")
    assert material_change(watched, replace(seen, rule="no_data"), POLICY)
    assert material_change(watched, replace(seen, rule="no_rst"), POLICY)
    # blind to blind, or seen to seen with the same instruction, is no change
    assert not material_change(blind, replace(seen, rule="no_rst"), POLICY)
    assert not material_change(watched, replace(seen, rule="dry_road_dry_air"), POLICY)
