"""What the crews did: the life of a gritting decision and of its treatment runs, as pure rules over the
decision's columns and its runs (store.gritting reads them, asks here, and writes what comes back).

A decision: issued -> acknowledged -> in_progress (a run is out) -> completed, or cancelled from any active
status; 'escalated' is an issued treating decision nobody acknowledged by its call-out time; 'superseded'
when a newer decision replaced it. A run: in_progress -> completed, or cancelled. Only the route's current
decision takes runs: one replaced by a newer decision (superseded, or completed before it) takes only notes
and corrections of its runs' figures.

| action     | allowed when                                                       | the decision becomes       |
|------------|--------------------------------------------------------------------|----------------------------|
| acknowledge| issued or escalated                                                | acknowledged               |
| start      | issued, escalated, acknowledged or completed, and no run is out;   | in_progress (a new run)    |
|            | on a decision that does not ask for treatment (None, Monitor), the |                            |
|            | run is at the officer's discretion and needs a reason              |                            |
| complete   | a run is out; it cannot finish before it started                   | completed                  |
| cancel_run | a run is out (the crew is called back)                             | completed if an earlier    |
|            |                                                                    | run was, else acknowledged |
| amend      | no run is out and one was completed: corrects the figures of the   | (unchanged)                |
|            | latest completed run (tonnes weighed at the depot, say), even once |                            |
|            | the decision has been replaced or cancelled                        |                            |
| cancel     | issued, escalated, acknowledged or in_progress (a run out is       | cancelled                  |
|            | cancelled with it)                                                 |                            |
| note       | always                                                             | (unchanged)                |

Starting again after a completed run records a second (third...) run on the same decision.

A re-issued decision (the evaluator's newer one for the same route) keeps the previous one's acknowledgement
and notes when it asks the crews for the same treatment (action, spread rate, passes, dry or pre-wetted) and
does not bring the call-out forward; a run still out carries on under the new decision whatever it says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.gritting._text import LONDON

TREATING = ("precautionary_salt", "salt", "plough_and_salt", "escalate")
ACTIVE = ("issued", "acknowledged", "in_progress", "escalated")
ACTIONS = ("acknowledge", "start", "complete", "cancel_run", "amend", "cancel", "note")
RUN_STATUSES = ("in_progress", "completed", "cancelled")

# The words people read for each decision action (the API's codes stay in the data, never in a message).
ACTION_WORDS = {
    "none": "No action",
    "monitor": "Monitor",
    "precautionary_salt": "Precautionary salting",
    "salt": "Salting",
    "plough_and_salt": "Plough and salt",
    "escalate": "Escalated to the duty officer",
}
STATUS_WORDS = {
    "issued": "issued",
    "acknowledged": "acknowledged",
    "in_progress": "under way",
    "completed": "completed",
    "cancelled": "cancelled",
    "superseded": "replaced by a newer decision",
    "escalated": "escalated",
}
# The event each action writes in the decision's history.
EVENTS = {
    "acknowledge": "acknowledged",
    "start": "started",
    "complete": "completed",
    "cancel_run": "run_cancelled",
    "amend": "noted",  # a correction of a run's figures is a note on the history, with the run
    "cancel": "cancelled",
    "note": "noted",
}


class LifecycleConflict(Exception):
    """An action that the decision or its runs do not allow now; the text says why, in words."""


@dataclass(frozen=True, slots=True)
class Run:
    """A treatment run as the rules need it."""

    id: int
    number: int
    status: str
    started_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action does: the decision's new status and the history event, and what happens to runs."""

    action: str
    event: str
    to_status: str
    open_run: bool = False  # start a new run
    run_number: int | None = None  # the new run's number
    discretionary: bool = False  # the new run was not asked for by the decision
    finish_run: int | None = None  # complete this run
    cancel_run: int | None = None  # cancel this run
    amend_run: int | None = None  # correct the figures of this run


def _clock(at: datetime) -> str:
    local = at.astimezone(LONDON)
    return f"{local:%H:%M} on {local:%A} {local.day} {local:%B}"


def open_run(runs: Sequence[Run]) -> Run | None:
    """The run that is out on the road, if any."""
    return next((r for r in runs if r.status == "in_progress"), None)


def last_completed(runs: Sequence[Run]) -> Run | None:
    """The latest completed run, if any."""
    done = [r for r in runs if r.status == "completed"]
    return max(done, key=lambda r: (r.finished_at or r.started_at, r.id)) if done else None


def available(decision: Mapping[str, Any], runs: Sequence[Run]) -> tuple[str, ...]:
    """The actions a person may take now, in the order the route card offers them."""
    status = decision["status"]
    running = open_run(runs) is not None
    correct = ("amend",) if not running and last_completed(runs) is not None else ()
    if replaced(decision) or status == "cancelled":
        return (*correct, "note")
    out = []
    if status in ("issued", "escalated"):
        out.append("acknowledge")
    if not running and status in ("issued", "escalated", "acknowledged", "completed"):
        out.append("start")
    if running:
        out += ["complete", "cancel_run"]
    out += correct
    if status in ACTIVE:
        out.append("cancel")
    out.append("note")
    return tuple(out)


def replaced(decision: Mapping[str, Any]) -> bool:
    """True when a newer decision for the route has replaced this one (whatever status it kept)."""
    return decision["status"] == "superseded" or decision.get("superseded_by") is not None


def needs_reason(decision: Mapping[str, Any]) -> bool:
    """True when a run on this decision is at the officer's discretion (it does not ask for treatment)."""
    return decision["action"] not in TREATING


def plan(
    decision: Mapping[str, Any],
    runs: Sequence[Run],
    action: str,
    *,
    at: datetime,
    now: datetime,
    reason: str | None = None,
    note: str | None = None,
) -> Plan:
    """What `action` at time `at` does to the decision and its runs; LifecycleConflict says why not."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if at > now:
        raise LifecycleConflict(f"{_clock(at)} is still to come: record what the crews did once they have done it")
    status = decision["status"]
    running = open_run(runs)
    issued = decision.get("issued_at")
    if issued is not None and at < issued:
        raise LifecycleConflict(
            f"this decision was issued at {_clock(issued)}: what happened before then belongs to the decision before it"
        )
    if action == "note":
        if not (note and note.strip()):
            raise LifecycleConflict("write the note first: there is nothing to add to the history")
        return Plan(action, EVENTS[action], status)
    if action == "amend":  # a correction of the record: allowed whatever became of the decision since
        if running is not None:
            raise LifecycleConflict(f"run {running.number} is still out: give its figures when completing it")
        last = last_completed(runs)
        if last is None:
            raise LifecycleConflict("no run has been completed on this decision: there are no figures to correct")
        return Plan(action, EVENTS[action], status, amend_run=last.id)
    if replaced(decision):
        raise LifecycleConflict(
            "this decision has been replaced by a newer one for the route: record what the crews do on the "
            "route's current decision"
        )
    if status == "cancelled":
        raise LifecycleConflict("this decision was cancelled: nothing more can be recorded on it but a note")
    what = ACTION_WORDS.get(decision["action"], decision["action"])
    if action == "acknowledge":
        if status not in ("issued", "escalated"):
            raise LifecycleConflict(f"the decision is already {STATUS_WORDS[status]}: there is nothing to acknowledge")
        return Plan(action, EVENTS[action], "acknowledged")
    if action == "start":
        if running is not None:
            raise LifecycleConflict(
                f"run {running.number} has been out since {_clock(running.started_at)}: complete or cancel it "
                "before starting another"
            )
        discretionary = needs_reason(decision)
        if discretionary and not (reason and reason.strip()):
            raise LifecycleConflict(
                f"the decision for this route is '{what}', so a treatment is at the officer's discretion: "
                "give the reason for it"
            )
        number = len(runs) + 1
        return Plan(
            action, EVENTS[action], "in_progress", open_run=True, run_number=number, discretionary=discretionary
        )
    if action == "complete":
        if running is None:
            raise LifecycleConflict("treatment has not started on this route: start a run before completing it")
        if at < running.started_at:
            raise LifecycleConflict(
                f"run {running.number} started at {_clock(running.started_at)}: it cannot finish before that"
            )
        return Plan(action, EVENTS[action], "completed", finish_run=running.id)
    if action == "cancel_run":
        if running is None:
            raise LifecycleConflict("no treatment run is out on this route: there is no run to cancel")
        done_before = any(r.status == "completed" for r in runs)
        return Plan(action, EVENTS[action], "completed" if done_before else "acknowledged", cancel_run=running.id)
    # cancel
    if status == "completed":
        raise LifecycleConflict("the treatment is already completed: there is nothing left to cancel")
    return Plan(action, EVENTS[action], "cancelled", cancel_run=running.id if running is not None else None)


def same_treatment(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when a newer decision asks the crews for what the previous one did and no sooner."""
    keys = ("action", "spread_rate_g_m2", "passes", "spread_type")
    if any(previous.get(k) != new.get(k) for k in keys):
        return False
    before, after = previous.get("call_out_by"), new.get("call_out_by")
    return not (before is not None and after is not None and after < before)


def carried_status(previous: Mapping[str, Any], new: Mapping[str, Any], *, run_out: bool) -> str | None:
    """The status a re-issued decision takes over from the one it replaces (None: it starts as issued)."""
    if run_out:
        return "in_progress"  # the crew is on the road: their run carries on under the new decision
    if previous.get("status") == "acknowledged" and same_treatment(previous, new):
        return "acknowledged"
    return None


_FIGURE_WORDS = (
    ("spread_rate_g_m2", "spread rate", " g/m²"),
    ("tonnes", "salt", " t"),
    ("vehicle", "vehicle", ""),
    ("crew", "crew", ""),
)


def correction(number: int, before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """The words a correction of a run's figures leaves in the history ('run 2 corrected: salt 2.5 t -> 2.7 t'),
    from the figures recorded and those given (None: left as it was); None when nothing changes."""
    changes = []
    for key, word, unit in _FIGURE_WORDS:
        new = after.get(key)
        old = before.get(key)
        if new is None or new == old:
            continue
        was = "not recorded" if old is None else f"{old:g}{unit}" if isinstance(old, float) else f"{old}{unit}"
        now = f"{new:g}{unit}" if isinstance(new, float) else f"{new}{unit}"
        changes.append(f"{word} {was} -> {now}")
    return f"run {number} corrected: {', '.join(changes)}" if changes else None
