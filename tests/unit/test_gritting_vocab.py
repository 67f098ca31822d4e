"""Gritting's vocabulary (core.gritting.vocab): the codes are the public contract and never change, every code has
its words, everyone takes them from core (the API's models, CAP, the lifecycle's refusals, the pages' module)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from alerts import cap
from api.routers.gritting import DecisionOut, EventOut, RunOut
from core.gritting import lifecycle
from core.gritting.vocab import (
    ACTION_INSTRUCTIONS,
    ACTION_LABELS,
    ACTIVE,
    EVENT_LABELS,
    SEVERITY,
    STATUS_LABELS,
    STATUS_WORDS,
    TREATING,
    Action,
    CrewAction,
    DecisionEvent,
    DecisionStatus,
    GrittingAction,
    RunStatus,
    action_label,
)
from dashboards import gritting_words

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "store" / "migrations"
T = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


def test_the_codes_are_the_contract_and_keep_their_spelling():
    # API JSON, MQTT payloads and database columns carry these strings: renaming one is a breaking change.
    assert [a.value for a in GrittingAction] == [
        "none", "monitor", "precautionary_salt", "salt", "plough_and_salt", "escalate",
    ]  # fmt: skip
    assert [s.value for s in DecisionStatus] == [
        "issued", "acknowledged", "in_progress", "completed", "cancelled", "superseded", "escalated",
    ]  # fmt: skip
    assert [s.value for s in RunStatus] == ["in_progress", "completed", "cancelled"]
    assert [a.value for a in CrewAction] == [
        "acknowledge", "start", "complete", "cancel_run", "amend", "cancel", "note",
    ]  # fmt: skip
    assert [e.value for e in DecisionEvent] == [
        "issued", "acknowledged", "started", "completed", "cancelled", "superseded", "escalated", "run_cancelled",
        "noted", "carried_over",
    ]  # fmt: skip


def test_the_rules_literal_type_names_the_same_actions():
    assert get_args(Action) == tuple(a.value for a in GrittingAction)


def _check_values(sql: str, column: str) -> list[str]:
    """The values of the last `CHECK (column IN (...))` in these migrations."""
    found = re.findall(rf"CHECK \({column} IN \(([^)]*)\)\)", sql)
    assert found, f"no CHECK on {column}"
    return re.findall(r"'([^']*)'", found[-1])


def test_the_database_accepts_exactly_these_words():
    gritting = (MIGRATIONS / "0003_gritting.sql").read_text(encoding="utf-8")
    treatments = (MIGRATIONS / "0011_treatments.sql").read_text(encoding="utf-8")
    assert _check_values(gritting, "action") == [a.value for a in GrittingAction]
    assert _check_values(gritting, "status") == [s.value for s in DecisionStatus]
    assert _check_values(treatments, "status") == [s.value for s in RunStatus]
    assert sorted(_check_values(treatments, "event")) == sorted(e.value for e in DecisionEvent)


def test_which_actions_treat_which_statuses_are_active_and_how_severe():
    assert {str(a) for a in TREATING} == {"precautionary_salt", "salt", "plough_and_salt", "escalate"}
    assert {str(s) for s in ACTIVE} == {"issued", "acknowledged", "in_progress", "escalated"}
    assert sorted(SEVERITY, key=SEVERITY.__getitem__) == list(GrittingAction)
    # plain strings from the database find the same entries
    assert "salt" in TREATING and "monitor" not in TREATING and SEVERITY["escalate"] > SEVERITY["plough_and_salt"]


@pytest.mark.parametrize(
    ("words", "codes"),
    [
        (ACTION_LABELS, GrittingAction),
        (ACTION_INSTRUCTIONS, GrittingAction),
        (STATUS_LABELS, DecisionStatus),
        (STATUS_WORDS, DecisionStatus),
        (EVENT_LABELS, DecisionEvent),
    ],
)
def test_every_code_has_its_words(words, codes):
    assert set(words) == set(codes)
    assert all(w.strip() and w == w.strip() for w in words.values())


def test_an_escalated_decision_is_said_as_escalated_everywhere():
    # The duty officer reads the message: the evaluator has escalated the road to them ("Escalate" had drifted in).
    assert ACTION_LABELS[GrittingAction.ESCALATE] == "Escalated to the duty officer"
    assert ACTION_INSTRUCTIONS[GrittingAction.ESCALATE] == "Escalated to the duty officer"
    assert action_label("escalate") == "Escalated to the duty officer"
    assert action_label("not_a_code") == "not_a_code"


def _decision(**over):
    d = {
        "id": 7, "route_id": "P1", "route_name": "P1 A456", "action": "escalate", "rule": "too_cold_for_salt",
        "spread_rate_g_m2": None, "passes": 1, "spread_type": "dry", "treat_now": False, "late": False,
        "reasons": [], "message": "m", "confidence": 0.8, "horizon_hours": 0.0, "issued_at": T.isoformat(),
        "status": "issued", "status_at": T.isoformat(), "status_by": "evaluator",
    }  # fmt: skip
    return d | over


def test_cap_headlines_say_core_s_instruction():
    root = cap.alert(_decision(), sender="placewatch@test", now=T)
    headline = root.find(f"{{{cap.CAP_NS}}}info/{{{cap.CAP_NS}}}headline")
    assert headline is not None and headline.text == "P1 A456: Escalated to the duty officer"


def test_a_discretionary_run_is_refused_in_core_s_words():
    with pytest.raises(lifecycle.LifecycleConflict) as e:
        lifecycle.plan({"status": "issued", "action": "none", "issued_at": T}, [], "start", at=T, now=T)
    assert "the decision for this route is 'No treatment needed'" in str(e.value)


def test_the_lifecycle_answers_in_the_vocabulary():
    p = lifecycle.plan({"status": "issued", "action": "salt", "issued_at": T}, [], "start", at=T, now=T)
    assert (p.action, p.event, p.to_status) == (CrewAction.START, DecisionEvent.STARTED, DecisionStatus.IN_PROGRESS)
    assert lifecycle.available({"status": "issued", "action": "salt"}, []) == (
        CrewAction.ACKNOWLEDGE, CrewAction.START, CrewAction.CANCEL, CrewAction.NOTE,
    )  # fmt: skip
    assert set(lifecycle.EVENTS) == set(CrewAction)
    with pytest.raises(ValueError, match="unknown action 'wave'; one of acknowledge, start"):
        lifecycle.plan({"status": "issued", "action": "salt"}, [], "wave", at=T, now=T)


@pytest.mark.parametrize(
    ("action", "given", "refused"),
    [
        ("start", True, None),
        ("complete", True, None),
        ("cancel_run", True, None),
        ("amend", True, None),
        ("amend", False, "give the figures to correct"),
        ("acknowledge", True, "belong to a run"),
        ("note", True, "belong to a run"),
        ("cancel", False, None),
    ],
)
def test_which_actions_carry_a_run_s_figures(action, given, refused):
    why = lifecycle.figures_refusal(action, figures_given=given)
    assert (why is None) == (refused is None)
    assert refused is None or (why is not None and refused in why)


def test_the_api_models_take_the_codes_and_give_back_the_same_strings():
    d = DecisionOut.model_validate(_decision(action="precautionary_salt", status="escalated"))
    assert d.model_dump(mode="json")["action"] == "precautionary_salt"
    assert d.model_dump(mode="json")["status"] == "escalated"
    with pytest.raises(ValidationError):
        DecisionOut.model_validate(_decision(action="Precautionary salting"))
    e = EventOut(at=T, event="run_cancelled", from_status="in_progress", to_status="acknowledged", actor="a", note=None)
    assert e.model_dump(mode="json")["event"] == "run_cancelled"
    schema = RunOut.model_json_schema()
    assert schema["$defs"]["RunStatus"]["enum"] == ["in_progress", "completed", "cancelled"]


def test_the_pages_words_are_written_from_core():
    # Fails when core's words change and dashboards/static/gritting_words.js was not written again:
    # run `python -m dashboards.gritting_words`.
    assert gritting_words.PATH.read_text(encoding="utf-8") == gritting_words.module_text()
    text = gritting_words.module_text()
    assert '"escalate": "Escalated to the duty officer"' in text
    assert 'export const TREATING = ["precautionary_salt", "salt", "plough_and_salt", "escalate"];' in text
