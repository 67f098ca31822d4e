"""The words of gritting, defined once: what a decision asks for, where it stands, what the crews record, and the
words people read for each. Pure.

The values are the public contract (the API's JSON, the MQTT alerts, the database's columns and CHECKs): a
member's value never changes. Everyone else (store, alerts, the API, the pages through
dashboards/static/gritting_words.js, generated from here) takes the words from this module.

Two ways of saying a decision's action, each for its own place:
- ACTION_LABELS name what the decision is, where people read it as a state: a route card, the map's key, the
  crews' refusals ("the decision for this route is 'Monitor'");
- ACTION_INSTRUCTIONS tell the crews what to do, at the head of a message line or a CAP headline ("Salt now").
An escalated decision is "Escalated to the duty officer" in both: the evaluator has handed it to the duty
officer, who is the one reading it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class GrittingAction(StrEnum):
    """What a decision asks the crews to do on a route, mildest first."""

    NONE = "none"
    MONITOR = "monitor"
    PRECAUTIONARY_SALT = "precautionary_salt"
    SALT = "salt"
    PLOUGH_AND_SALT = "plough_and_salt"
    ESCALATE = "escalate"  # salt alone may not work: the duty officer decides


# The same words as a type, for the rules that write them as literals (mypy checks each literal against it);
# tests/unit/test_gritting_vocab.py fails if it ever names other words than GrittingAction.
Action = Literal["none", "monitor", "precautionary_salt", "salt", "plough_and_salt", "escalate"]


class DecisionStatus(StrEnum):
    """Where a decision stands (core.gritting.lifecycle says how it moves)."""

    ISSUED = "issued"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    ESCALATED = "escalated"  # issued, treating, and nobody acknowledged it by its call-out time


class RunStatus(StrEnum):
    """Where a treatment run stands."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class CrewAction(StrEnum):
    """What people record on a decision, in the order a route card offers them."""

    ACKNOWLEDGE = "acknowledge"
    START = "start"
    COMPLETE = "complete"
    CANCEL_RUN = "cancel_run"
    AMEND = "amend"  # correct the figures of the latest completed run
    CANCEL = "cancel"
    NOTE = "note"


class DecisionEvent(StrEnum):
    """A step of a decision's history."""

    ISSUED = "issued"
    ACKNOWLEDGED = "acknowledged"
    STARTED = "started"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    ESCALATED = "escalated"
    RUN_CANCELLED = "run_cancelled"
    NOTED = "noted"
    CARRIED_OVER = "carried_over"


# The actions that send crews out (or hand the road to the duty officer): they are escalated when nobody
# acknowledges them, notified to the highways team, and a treatment on them needs no reason.
TREATING: frozenset[GrittingAction] = frozenset(
    {GrittingAction.PRECAUTIONARY_SALT, GrittingAction.SALT, GrittingAction.PLOUGH_AND_SALT, GrittingAction.ESCALATE}
)
# How severe each action is: the worst station's decides a route, and a message line lists the worst first.
SEVERITY: dict[str, int] = {a: i for i, a in enumerate(GrittingAction)}
# The statuses in which a decision still asks something of the crews (it can be cancelled, or superseded).
ACTIVE: frozenset[DecisionStatus] = frozenset(
    {DecisionStatus.ISSUED, DecisionStatus.ACKNOWLEDGED, DecisionStatus.IN_PROGRESS, DecisionStatus.ESCALATED}
)

# -- the words people read ------------------------------------------------------------------------------------

ACTION_LABELS: dict[GrittingAction, str] = {
    GrittingAction.NONE: "No treatment needed",
    GrittingAction.MONITOR: "Monitor",
    GrittingAction.PRECAUTIONARY_SALT: "Precautionary salting",
    GrittingAction.SALT: "Salting",
    GrittingAction.PLOUGH_AND_SALT: "Plough and salt",
    GrittingAction.ESCALATE: "Escalated to the duty officer",
}
ACTION_INSTRUCTIONS: dict[GrittingAction, str] = {
    GrittingAction.NONE: "No action",
    GrittingAction.MONITOR: "Monitor",
    GrittingAction.PRECAUTIONARY_SALT: "Precautionary salt",
    GrittingAction.SALT: "Salt now",
    GrittingAction.PLOUGH_AND_SALT: "Plough and salt",
    GrittingAction.ESCALATE: "Escalated to the duty officer",
}
# A status on its own (a badge, the map's popup).
STATUS_LABELS: dict[DecisionStatus, str] = {
    DecisionStatus.ISSUED: "Issued, not yet acknowledged",
    DecisionStatus.ACKNOWLEDGED: "Acknowledged",
    DecisionStatus.IN_PROGRESS: "Treatment in progress",
    DecisionStatus.COMPLETED: "Treatment completed",
    DecisionStatus.CANCELLED: "Cancelled",
    DecisionStatus.SUPERSEDED: "Superseded",
    DecisionStatus.ESCALATED: "Escalated: not acknowledged in time",
}
# A status inside a sentence ("the decision is already under way").
STATUS_WORDS: dict[DecisionStatus, str] = {
    DecisionStatus.ISSUED: "issued",
    DecisionStatus.ACKNOWLEDGED: "acknowledged",
    DecisionStatus.IN_PROGRESS: "under way",
    DecisionStatus.COMPLETED: "completed",
    DecisionStatus.CANCELLED: "cancelled",
    DecisionStatus.SUPERSEDED: "replaced by a newer decision",
    DecisionStatus.ESCALATED: "escalated",
}
# A step of a decision's history, as its route card lists it.
EVENT_LABELS: dict[DecisionEvent, str] = {
    DecisionEvent.ISSUED: "Decision issued",
    DecisionEvent.ACKNOWLEDGED: "Acknowledged",
    DecisionEvent.STARTED: "Run started",
    DecisionEvent.COMPLETED: "Run completed",
    DecisionEvent.RUN_CANCELLED: "Run called back",
    DecisionEvent.CANCELLED: "Decision cancelled",
    DecisionEvent.SUPERSEDED: "Replaced by a newer decision",
    DecisionEvent.ESCALATED: "Escalated: not acknowledged by its call-out time",
    DecisionEvent.NOTED: "Note",  # corrections of a run's figures are notes too
    DecisionEvent.CARRIED_OVER: "Carried over to the re-issued decision",
}

# Who took a step that no person took: the evaluator that issues, escalates, replaces and carries over decisions
# (store.gritting records it as the actor); what people read for it. Any other actor is a user's name, read as it is.
EVALUATOR = "evaluator"
ACTOR_LABELS: dict[str, str] = {EVALUATOR: "Placewatch (automatic)"}


def action_label(action: str) -> str:
    """The name of a decision's action for people; an unknown code as it is (never a KeyError in a message)."""
    try:
        return ACTION_LABELS[GrittingAction(action)]
    except ValueError:
        return action


def is_treating(action: str) -> bool:
    """True when the action sends crews out (or hands the road to the duty officer)."""
    return action in TREATING
