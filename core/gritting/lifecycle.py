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
Whether an evaluation is a new decision at all is `material_change`.

The words (actions, statuses, runs, history events, and what people read for each) are core.gritting.vocab's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.gritting._text import LONDON
from core.gritting.decision import Decision
from core.gritting.policy import GrittingPolicy
from core.gritting.vocab import (
    ACTIVE,
    STATUS_WORDS,
    TREATING,
    CrewAction,
    DecisionEvent,
    DecisionStatus,
    RunStatus,
    action_label,
)

# The event each action writes in the decision's history.
EVENTS: dict[CrewAction, DecisionEvent] = {
    CrewAction.ACKNOWLEDGE: DecisionEvent.ACKNOWLEDGED,
    CrewAction.START: DecisionEvent.STARTED,
    CrewAction.COMPLETE: DecisionEvent.COMPLETED,
    CrewAction.CANCEL_RUN: DecisionEvent.RUN_CANCELLED,
    CrewAction.AMEND: DecisionEvent.NOTED,  # a correction of a run's figures is a note on the history, with the run
    CrewAction.CANCEL: DecisionEvent.CANCELLED,
    CrewAction.NOTE: DecisionEvent.NOTED,
}
# The actions that concern a run, and so may carry its figures (spread rate, tonnes, vehicle, crew).
RUN_ACTIONS: tuple[CrewAction, ...] = (CrewAction.START, CrewAction.COMPLETE, CrewAction.CANCEL_RUN, CrewAction.AMEND)


class LifecycleConflict(Exception):
    """An action that the decision or its runs do not allow now; the text says why, in words."""


@dataclass(frozen=True, slots=True)
class Run:
    """A treatment run as the rules need it."""

    id: int
    number: int
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action does: the decision's new status and the history event, and what happens to runs."""

    action: CrewAction
    event: DecisionEvent
    to_status: DecisionStatus
    open_run: bool = False  # start a new run
    run_number: int | None = None  # the new run's number
    discretionary: bool = False  # the new run was not asked for by the decision
    finish_run: int | None = None  # complete this run
    cancel_run: int | None = None  # cancel this run
    amend_run: int | None = None  # correct the figures of this run


def _clock(at: datetime) -> str:
    local = at.astimezone(LONDON)
    return f"{local:%H:%M} on {local:%A} {local.day} {local:%B}"


_ISSUED = (DecisionStatus.ISSUED, DecisionStatus.ESCALATED)  # nobody has acknowledged it yet
_STARTABLE = (*_ISSUED, DecisionStatus.ACKNOWLEDGED, DecisionStatus.COMPLETED)  # when no run is out


def open_run(runs: Sequence[Run]) -> Run | None:
    """The run that is out on the road, if any."""
    return next((r for r in runs if r.status == RunStatus.IN_PROGRESS), None)


def last_completed(runs: Sequence[Run]) -> Run | None:
    """The latest completed run, if any."""
    done = [r for r in runs if r.status == RunStatus.COMPLETED]
    return max(done, key=lambda r: (r.finished_at or r.started_at, r.id)) if done else None


def available(decision: Mapping[str, Any], runs: Sequence[Run]) -> tuple[CrewAction, ...]:
    """The actions a person may take now, in the order the route card offers them."""
    status = decision["status"]
    running = open_run(runs) is not None
    correct = (CrewAction.AMEND,) if not running and last_completed(runs) is not None else ()
    if replaced(decision) or status == DecisionStatus.CANCELLED:
        return (*correct, CrewAction.NOTE)
    out: list[CrewAction] = []
    if status in _ISSUED:
        out.append(CrewAction.ACKNOWLEDGE)
    if not running and status in _STARTABLE:
        out.append(CrewAction.START)
    if running:
        out += [CrewAction.COMPLETE, CrewAction.CANCEL_RUN]
    out += correct
    if status in ACTIVE:
        out.append(CrewAction.CANCEL)
    out.append(CrewAction.NOTE)
    return tuple(out)


def replaced(decision: Mapping[str, Any]) -> bool:
    """True when a newer decision for the route has replaced this one (whatever status it kept)."""
    return decision["status"] == DecisionStatus.SUPERSEDED or decision.get("superseded_by") is not None


def needs_reason(decision: Mapping[str, Any]) -> bool:
    """True when a run on this decision is at the officer's discretion (it does not ask for treatment)."""
    return decision["action"] not in TREATING


def figures_refusal(action: str, *, figures_given: bool) -> str | None:
    """Why the figures of a run (spread rate, tonnes, vehicle, crew) cannot go with this action, or None."""
    if action == CrewAction.AMEND and not figures_given:
        return "give the figures to correct: spread rate, tonnes, vehicle or crew"
    if action not in RUN_ACTIONS and figures_given:
        return "spread rate, tonnes, vehicle and crew belong to a run: give them when starting or completing it"
    return None


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
    try:
        act = CrewAction(action)
    except ValueError:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(CrewAction)}") from None
    if at > now:
        raise LifecycleConflict(f"{_clock(at)} is still to come: record what the crews did once they have done it")
    status = DecisionStatus(decision["status"])
    running = open_run(runs)
    issued = decision.get("issued_at")
    if issued is not None and at < issued:
        raise LifecycleConflict(
            f"this decision was issued at {_clock(issued)}: what happened before then belongs to the decision before it"
        )
    event = EVENTS[act]
    if act == CrewAction.NOTE:
        if not (note and note.strip()):
            raise LifecycleConflict("write the note first: there is nothing to add to the history")
        return Plan(act, event, status)
    if act == CrewAction.AMEND:  # a correction of the record: allowed whatever became of the decision since
        if running is not None:
            raise LifecycleConflict(f"run {running.number} is still out: give its figures when completing it")
        last = last_completed(runs)
        if last is None:
            raise LifecycleConflict("no run has been completed on this decision: there are no figures to correct")
        return Plan(act, event, status, amend_run=last.id)
    if replaced(decision):
        raise LifecycleConflict(
            "this decision has been replaced by a newer one for the route: record what the crews do on the "
            "route's current decision"
        )
    if status == DecisionStatus.CANCELLED:
        raise LifecycleConflict("this decision was cancelled: nothing more can be recorded on it but a note")
    if act == CrewAction.ACKNOWLEDGE:
        if status not in _ISSUED:
            raise LifecycleConflict(f"the decision is already {STATUS_WORDS[status]}: there is nothing to acknowledge")
        return Plan(act, event, DecisionStatus.ACKNOWLEDGED)
    if act == CrewAction.START:
        if running is not None:
            raise LifecycleConflict(
                f"run {running.number} has been out since {_clock(running.started_at)}: complete or cancel it "
                "before starting another"
            )
        discretionary = needs_reason(decision)
        if discretionary and not (reason and reason.strip()):
            raise LifecycleConflict(
                f"the decision for this route is '{action_label(decision['action'])}', so a treatment is at the "
                "officer's discretion: give the reason for it"
            )
        number = len(runs) + 1
        return Plan(
            act, event, DecisionStatus.IN_PROGRESS, open_run=True, run_number=number, discretionary=discretionary
        )
    if act == CrewAction.COMPLETE:
        if running is None:
            raise LifecycleConflict("treatment has not started on this route: start a run before completing it")
        if at < running.started_at:
            raise LifecycleConflict(
                f"run {running.number} started at {_clock(running.started_at)}: it cannot finish before that"
            )
        return Plan(act, event, DecisionStatus.COMPLETED, finish_run=running.id)
    if act == CrewAction.CANCEL_RUN:
        if running is None:
            raise LifecycleConflict("no treatment run is out on this route: there is no run to cancel")
        done_before = any(r.status == RunStatus.COMPLETED for r in runs)
        to = DecisionStatus.COMPLETED if done_before else DecisionStatus.ACKNOWLEDGED
        return Plan(act, event, to, cancel_run=running.id)
    # cancel
    if status == DecisionStatus.COMPLETED:
        raise LifecycleConflict("the treatment is already completed: there is nothing left to cancel")
    return Plan(act, event, DecisionStatus.CANCELLED, cancel_run=running.id if running is not None else None)


def same_treatment(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when a newer decision asks the crews for what the previous one did and no sooner."""
    keys = ("action", "spread_rate_g_m2", "passes", "spread_type")
    if any(previous.get(k) != new.get(k) for k in keys):
        return False
    before, after = previous.get("call_out_by"), new.get("call_out_by")
    return not (before is not None and after is not None and after < before)


def carried_status(previous: Mapping[str, Any], new: Mapping[str, Any], *, run_out: bool) -> DecisionStatus | None:
    """The status a re-issued decision takes over from the one it replaces (None: it starts as issued)."""
    if run_out:
        return DecisionStatus.IN_PROGRESS  # the crew is on the road: their run carries on under the new decision
    if previous.get("status") == DecisionStatus.ACKNOWLEDGED and same_treatment(previous, new):
        return DecisionStatus.ACKNOWLEDGED
    return None


@dataclass(frozen=True, slots=True)
class Current:
    """A route's current (newest) decision as recorded: what a new evaluation is compared with."""

    id: int
    action: str
    spread_rate_g_m2: float | None
    passes: int
    spread_type: str
    call_out_by: datetime | None
    start_by: datetime | None
    complete_by: datetime | None
    treat_now: bool
    status: str
    rule: str  # the rule that decided it (Decision.rule)


# Decisions that rest on no road surface temperature at all: the route cannot be seen. A route that goes blind,
# or is seen again, is a new decision even when the word (monitor) stays the same: "cannot judge" must not stand
# once the stations report, nor a judgement on readings once they stop.
BLIND_RULES = frozenset({"no_data", "no_rst"})


def material_change(current: Current | None, d: Decision, policy: GrittingPolicy) -> bool:
    """True when d is a different instruction from the route's current decision, so it is issued as a new one.

    Different: the action, spread rate, passes, spread type or "treat now" changed; the route went blind or was
    seen again (BLIND_RULES); or (unless it is "treat now", whose times follow the clock) a call-out, start or
    completion time appeared, went, or moved by the policy's material_rounding_minutes or more. A tolerance
    rather than Decision.material_key's rounding, so a time that wobbles across a rounding boundary does not
    re-issue the decision."""
    if current is None:
        return True
    if (current.action, current.spread_rate_g_m2, current.passes, current.spread_type, current.treat_now) != (
        d.action,
        d.spread_rate_g_m2,
        d.passes,
        d.spread_type,
        d.treat_now,
    ):
        return True
    if (current.rule in BLIND_RULES) != (d.rule in BLIND_RULES):
        return True
    if d.treat_now:
        return False
    tolerance = timedelta(minutes=policy.material_rounding_minutes)
    for before, after in (
        (current.call_out_by, d.call_out_by),
        (current.start_by, d.start_by),
        (current.complete_by, d.complete_by),
    ):
        if (before is None) != (after is None):
            return True
        if before is not None and after is not None and abs(after - before) >= tolerance:
            return True
    return False


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
