"""What the crews did: the rules of a gritting decision's life and its treatment runs (core.gritting.lifecycle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.gritting.lifecycle import (
    LifecycleConflict,
    Run,
    available,
    carried_status,
    correction,
    plan,
    same_treatment,
)

NOW = datetime(2026, 1, 15, 21, 0, tzinfo=UTC)


def decision(action: str = "precautionary_salt", status: str = "issued") -> dict[str, object]:
    return {"action": action, "status": status}


def run(n: int, status: str, started: datetime, finished: datetime | None = None) -> Run:
    return Run(id=100 + n, number=n, status=status, started_at=started, finished_at=finished)


def test_an_issued_treating_decision_offers_acknowledge_start_cancel_and_a_note():
    assert available(decision(), []) == ("acknowledge", "start", "cancel", "note")


def test_an_acknowledged_monitor_route_can_still_be_treated_at_the_officers_discretion():
    # The bug people met: after acknowledging a Monitor route every button was greyed out.
    assert "start" in available(decision("monitor", "acknowledged"), [])
    p = plan(decision("monitor", "acknowledged"), [], "start", at=NOW, now=NOW, reason="ice reported by police")
    assert p.to_status == "in_progress" and p.open_run and p.discretionary and p.run_number == 1


def test_a_discretionary_run_needs_a_reason_said_in_words():
    with pytest.raises(LifecycleConflict) as e:
        plan(decision("monitor", "acknowledged"), [], "start", at=NOW, now=NOW, reason="  ")
    assert "'Monitor'" in str(e.value) and "reason" in str(e.value)
    assert "monitor" not in str(e.value)  # the word people read, not the code


def test_a_treatment_the_decision_asked_for_is_not_discretionary_and_needs_no_reason():
    p = plan(decision("salt", "issued"), [], "start", at=NOW, now=NOW)
    assert not p.discretionary and p.to_status == "in_progress"


def test_a_run_out_offers_complete_and_cancel_run_but_not_another_start():
    out = [run(1, "in_progress", NOW - timedelta(hours=1))]
    assert available(decision(status="in_progress"), out) == ("complete", "cancel_run", "cancel", "note")
    with pytest.raises(LifecycleConflict, match="run 1 has been out since 20:00"):
        plan(decision(status="in_progress"), out, "start", at=NOW, now=NOW)


def test_completing_finishes_the_run_out_and_completes_the_decision():
    out = [run(1, "in_progress", NOW - timedelta(hours=2))]
    p = plan(decision(status="in_progress"), out, "complete", at=NOW, now=NOW)
    assert (p.to_status, p.finish_run, p.cancel_run) == ("completed", 101, None)


def test_a_run_cannot_finish_before_it_started():
    out = [run(1, "in_progress", NOW)]
    with pytest.raises(LifecycleConflict, match="cannot finish before"):
        plan(decision(status="in_progress"), out, "complete", at=NOW - timedelta(minutes=5), now=NOW)


def test_a_second_run_after_a_completed_one_is_number_two():
    done = [run(1, "completed", NOW - timedelta(hours=5), NOW - timedelta(hours=3))]
    assert "start" in available(decision(status="completed"), done)
    p = plan(decision(status="completed"), done, "start", at=NOW, now=NOW)
    assert p.run_number == 2 and p.to_status == "in_progress"


def test_calling_a_run_back_returns_to_completed_after_an_earlier_run_else_acknowledged():
    first_out = [run(1, "in_progress", NOW - timedelta(hours=1))]
    assert plan(decision(status="in_progress"), first_out, "cancel_run", at=NOW, now=NOW).to_status == "acknowledged"
    second_out = [run(1, "completed", NOW - timedelta(hours=5), NOW - timedelta(hours=3)), run(2, "in_progress", NOW)]
    p = plan(decision(status="in_progress"), second_out, "cancel_run", at=NOW, now=NOW)
    assert (p.to_status, p.cancel_run) == ("completed", 102)


def test_cancelling_the_decision_cancels_the_run_out_with_it():
    out = [run(1, "in_progress", NOW - timedelta(hours=1))]
    p = plan(decision(status="in_progress"), out, "cancel", at=NOW, now=NOW)
    assert (p.to_status, p.cancel_run) == ("cancelled", 101)


def test_nothing_but_a_note_on_a_superseded_or_cancelled_decision():
    for status in ("superseded", "cancelled"):
        assert available(decision(status=status), []) == ("note",)
        with pytest.raises(LifecycleConflict):
            plan(decision(status=status), [], "start", at=NOW, now=NOW)
        assert (
            plan(decision(status=status), [], "note", at=NOW, now=NOW, note="gritter 4 back at depot").event == "noted"
        )


def test_an_empty_note_is_refused():
    with pytest.raises(LifecycleConflict, match="write the note"):
        plan(decision(), [], "note", at=NOW, now=NOW, note=" ")


def test_acknowledging_twice_says_so_in_words():
    with pytest.raises(LifecycleConflict, match="already acknowledged"):
        plan(decision(status="acknowledged"), [], "acknowledge", at=NOW, now=NOW)
    with pytest.raises(LifecycleConflict, match="already under way"):
        plan(decision(status="in_progress"), [run(1, "in_progress", NOW)], "acknowledge", at=NOW, now=NOW)


def test_a_completed_treatment_cannot_be_cancelled():
    done = [run(1, "completed", NOW - timedelta(hours=3), NOW - timedelta(hours=1))]
    with pytest.raises(LifecycleConflict, match="already completed"):
        plan(decision(status="completed"), done, "cancel", at=NOW, now=NOW)


def test_what_is_still_to_come_cannot_be_recorded():
    with pytest.raises(LifecycleConflict, match="still to come"):
        plan(decision(), [], "acknowledge", at=NOW + timedelta(minutes=1), now=NOW)


def test_unknown_actions_are_a_programming_error():
    with pytest.raises(ValueError):
        plan(decision(), [], "explode", at=NOW, now=NOW)


TREATMENT = {"action": "salt", "spread_rate_g_m2": 10.0, "passes": 1, "spread_type": "dry"}


def test_a_reissued_decision_asking_the_same_keeps_the_acknowledgement():
    prev = TREATMENT | {"status": "acknowledged", "call_out_by": NOW}
    assert carried_status(prev, TREATMENT | {"call_out_by": NOW + timedelta(minutes=40)}, run_out=False) == (
        "acknowledged"
    )


def test_a_different_treatment_or_an_earlier_call_out_needs_a_new_acknowledgement():
    prev = TREATMENT | {"status": "acknowledged", "call_out_by": NOW}
    assert carried_status(prev, TREATMENT | {"spread_rate_g_m2": 15.0, "call_out_by": NOW}, run_out=False) is None
    assert carried_status(prev, TREATMENT | {"call_out_by": NOW - timedelta(hours=1)}, run_out=False) is None
    assert not same_treatment(prev, TREATMENT | {"action": "plough_and_salt", "call_out_by": NOW})


def test_an_unacknowledged_decision_carries_nothing_over():
    prev = TREATMENT | {"status": "issued", "call_out_by": NOW}
    assert carried_status(prev, TREATMENT | {"call_out_by": NOW}, run_out=False) is None


def test_a_run_out_carries_on_under_a_reissued_decision_whatever_it_says():
    prev = TREATMENT | {"status": "in_progress", "call_out_by": NOW}
    assert carried_status(prev, {"action": "none", "call_out_by": None}, run_out=True) == "in_progress"


def test_a_completed_decision_replaced_by_a_newer_one_takes_only_notes():
    old = {"action": "salt", "status": "completed", "superseded_by": 42}
    assert available(old, []) == ("note",)
    with pytest.raises(LifecycleConflict, match="replaced by a newer one"):
        plan(old, [], "start", at=NOW, now=NOW)


def test_nothing_is_recorded_on_a_decision_before_it_was_issued():
    d = {"action": "salt", "status": "issued", "issued_at": NOW}
    with pytest.raises(LifecycleConflict, match="issued at 21:00"):
        plan(d, [], "acknowledge", at=NOW - timedelta(minutes=1), now=NOW + timedelta(hours=1))
    assert plan(d, [], "acknowledge", at=NOW, now=NOW).to_status == "acknowledged"


def test_the_figures_of_the_latest_completed_run_can_be_corrected_even_after_the_decision_was_replaced():
    done = [
        run(1, "completed", NOW - timedelta(hours=6), NOW - timedelta(hours=4)),
        run(2, "completed", NOW - timedelta(hours=3), NOW - timedelta(hours=1)),
    ]
    assert available(decision(status="completed"), done) == ("start", "amend", "note")
    assert plan(decision(status="completed"), done, "amend", at=NOW, now=NOW).amend_run == 102
    replaced = {"action": "salt", "status": "superseded"}
    assert available(replaced, done) == ("amend", "note")
    assert plan(replaced, done, "amend", at=NOW, now=NOW).to_status == "superseded"


def test_no_correction_without_a_completed_run_or_while_one_is_out():
    with pytest.raises(LifecycleConflict, match="no figures to correct"):
        plan(decision(status="acknowledged"), [], "amend", at=NOW, now=NOW)
    out = [run(1, "in_progress", NOW - timedelta(hours=1))]
    assert "amend" not in available(decision(status="in_progress"), out)
    with pytest.raises(LifecycleConflict, match="still out"):
        plan(decision(status="in_progress"), out, "amend", at=NOW, now=NOW)


def test_a_correction_says_what_changed_in_words():
    before = {"spread_rate_g_m2": 10.0, "tonnes": None, "vehicle": "Gritter 7", "crew": "J. Smith"}
    after = {"spread_rate_g_m2": 10.0, "tonnes": 2.7, "vehicle": "Gritter 8", "crew": None}
    assert correction(2, before, after) == "run 2 corrected: salt not recorded -> 2.7 t, vehicle Gritter 7 -> Gritter 8"
    assert correction(2, before, {"spread_rate_g_m2": 10.0}) is None
