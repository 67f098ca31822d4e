"""Damp and mould cases on Awaab's Law clocks: pure rules over a case as a mapping of its columns
(store.damp.CASE_COLUMNS): what is outstanding and overdue, the status, and what an officer's action does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from core.timeparse import utc_z, utc_z_or_none
from core.workdays import LONDON, case_deadlines, emergency_by, working_days_between

_HOUR = 3600


class CaseAction(StrEnum):
    """What an officer records on a case, in the order of the case's life. The values are the public contract (the
    API's JSON, the history lines in the database) and never change; the words are ACTION_LABELS and ACTION_NOTICES."""

    ACKNOWLEDGE = "acknowledge"
    VISIT = "visit"
    INVESTIGATION_DONE = "investigation_done"
    SUMMARY_SENT = "summary_sent"
    SAFETY_WORK_DONE = "safety_work_done"
    WORKS_STARTED = "works_started"
    WORKS_COMPLETED = "works_completed"
    CONFIRM_EMERGENCY = "confirm_emergency"
    CLOSE = "close"


class CaseEvent(StrEnum):
    """A line of a case's history that is not an officer's action: what Placewatch and the ownership steps record."""

    OPENED = "opened"
    LEVEL_CHANGED = "level_changed"
    OVERDUE = "overdue"
    ASSIGN = "assign"
    BOOK_VISIT = "book_visit"
    CANCEL_VISIT = "cancel_visit"


class CaseStatus(StrEnum):
    """Where a case stands: its first step not yet done (derive_status), in the order of the case's life."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    INVESTIGATED = "investigated"
    SAFETY_WORK = "safety_work"
    PREVENTATIVE_WORK = "preventative_work"
    WORKS_STARTED = "works_started"
    CLOSED = "closed"


class CaseStep(StrEnum):
    """An Awaab's Law step with a deadline (STEPS says which columns hold its deadline and its done time)."""

    EMERGENCY = "emergency"
    INVESTIGATE = "investigate"
    SUMMARY = "summary"
    SAFETY_WORK = "safety_work"
    PREVENTATIVE_BEGIN = "preventative_begin"
    PREVENTATIVE_START = "preventative_start"


class CaseLevel(StrEnum):
    """How serious a case is: opened at red, an emergency once a person confirms one."""

    RED = "red"
    EMERGENCY = "emergency"


ACTIONS: tuple[CaseAction, ...] = tuple(CaseAction)

# -- the words people read ------------------------------------------------------------------------------------
# An emergency case's level, shown in place of the home's level while the case is an emergency (the damp levels'
# words are core.damp.LEVEL_LABELS and its neighbours): on its own, in a sentence, and to the tenant.
EMERGENCY_LABEL = "Emergency"
EMERGENCY_MEANING = "Emergency: a serious risk to health that must be made safe within 24 hours"
EMERGENCY_EXPLANATION = (
    "Your landlord has confirmed a serious risk to health. They must make your home safe within 24 hours."
)

STEP_TEXT: dict[CaseStep, str] = {
    CaseStep.EMERGENCY: "making the home safe after the confirmed emergency",
    CaseStep.INVESTIGATE: "the investigation",
    CaseStep.SUMMARY: "the written summary to the tenant",
    CaseStep.SAFETY_WORK: "the safety work",
    CaseStep.PREVENTATIVE_BEGIN: "beginning the preventative work",
    CaseStep.PREVENTATIVE_START: "physically starting the preventative work",
}
# What an officer picks from, in the words of the page (the API offers only the ones allowed_actions allows).
ACTION_LABELS: dict[CaseAction, str] = {
    CaseAction.ACKNOWLEDGE: "Acknowledge the report (the tenant has been contacted)",
    CaseAction.VISIT: "Record a visit to the home",
    CaseAction.INVESTIGATION_DONE: "Record that the investigation is done",
    CaseAction.SUMMARY_SENT: "Record that the written summary was sent to the tenant",
    CaseAction.SAFETY_WORK_DONE: "Record that the safety work is done",
    CaseAction.WORKS_STARTED: "Record that the preventative work has started",
    CaseAction.WORKS_COMPLETED: "Record that the works are completed",
    CaseAction.CONFIRM_EMERGENCY: "Confirm an emergency (the home must be made safe within 24 hours)",
    CaseAction.CLOSE: "Close the case",
}
# What the officer and the tenant are told of each action (never the officer's own note, which may be internal).
ACTION_NOTICES: dict[CaseAction, str] = {
    CaseAction.ACKNOWLEDGE: "The landlord has acknowledged the report.",
    CaseAction.VISIT: "The landlord has visited the home.",
    CaseAction.INVESTIGATION_DONE: "The landlord has finished investigating.",
    CaseAction.SUMMARY_SENT: "The written summary of the investigation has been sent to the tenant.",
    CaseAction.SAFETY_WORK_DONE: "The work to make the home safe is done.",
    CaseAction.WORKS_STARTED: "The work to stop the damp coming back has started.",
    CaseAction.WORKS_COMPLETED: "The work to stop the damp coming back is completed.",
    CaseAction.CONFIRM_EMERGENCY: (
        "A person has confirmed this is an emergency: the home must be made safe within 24 hours."
    ),
    CaseAction.CLOSE: "The case is closed. If the damp or mould comes back, please tell the landlord.",
}
STATUS_TEXT: dict[CaseStatus, str] = {
    CaseStatus.OPEN: "Open: not yet acknowledged",
    CaseStatus.INVESTIGATING: "Being investigated",
    CaseStatus.INVESTIGATED: "Investigated: written summary to send",
    CaseStatus.SAFETY_WORK: "Safety work to do",
    CaseStatus.PREVENTATIVE_WORK: "Preventative work to start",
    CaseStatus.WORKS_STARTED: "Preventative work started",
    CaseStatus.CLOSED: "Closed",
}
# Each line of a case's history, in words (officers' actions, and what Placewatch and the ownership steps record).
EVENT_TEXT: dict[str, str] = {
    CaseEvent.OPENED: "Case opened by Placewatch",
    CaseEvent.LEVEL_CHANGED: "The home's level changed",
    CaseEvent.OVERDUE: "A step became overdue and was escalated",
    CaseAction.ACKNOWLEDGE: "Report acknowledged",
    CaseAction.VISIT: "Home visited",
    CaseAction.INVESTIGATION_DONE: "Investigation done",
    CaseAction.SUMMARY_SENT: "Written summary sent to the tenant",
    CaseAction.SAFETY_WORK_DONE: "Safety work done",
    CaseAction.WORKS_STARTED: "Preventative work started",
    CaseAction.WORKS_COMPLETED: "Works completed",
    CaseAction.CONFIRM_EMERGENCY: "Emergency confirmed",
    CaseAction.CLOSE: "Case closed",
    CaseEvent.ASSIGN: "Responsible officer changed",
    CaseEvent.BOOK_VISIT: "Visit booked",
    CaseEvent.CANCEL_VISIT: "Booked visit cancelled",
}
# Actions recorded once: the column that records each, and what it is called in a message.
_ONCE: dict[str, tuple[str, str]] = {
    CaseAction.ACKNOWLEDGE: ("acknowledged_at", "the acknowledgement"),
    CaseAction.INVESTIGATION_DONE: ("investigation_done_at", "the end of the investigation"),
    CaseAction.SUMMARY_SENT: ("summary_sent_at", "the written summary"),
    CaseAction.SAFETY_WORK_DONE: ("safety_work_done_at", "the safety work"),
    CaseAction.WORKS_STARTED: ("works_started_at", "the start of the preventative work"),
    CaseAction.WORKS_COMPLETED: ("works_completed_at", "the end of the works"),
    CaseAction.CONFIRM_EMERGENCY: ("emergency_confirmed_at", "the emergency"),
}
# Actions that follow the investigation, and what each is called in a message.
_AFTER_INVESTIGATION: dict[str, str] = {
    CaseAction.SUMMARY_SENT: "the written summary",
    CaseAction.SAFETY_WORK_DONE: "the safety work",
    CaseAction.WORKS_STARTED: "the preventative work",
}


class CaseConflict(Exception):
    """An action that the case's state does not allow; the text says why."""


def refusal(case: Mapping[str, Any], action: str) -> str | None:
    """Why this action cannot be recorded on the case now, in words (None: it can). The one definition of which
    action may follow which: apply_action refuses with it and allowed_actions offers what it lets through."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if case["closed_at"] is not None:
        return f"the case was closed on {when(case['closed_at'])}; nothing more can be recorded on it"
    if action in _ONCE:
        column, what = _ONCE[action]
        if case[column] is not None:
            return f"{what} was already recorded on {when(case[column], clock=True)}"
    if action == CaseAction.WORKS_COMPLETED and case["works_started_at"] is None:
        return "the end of the works follows their start: record that the preventative work has started first"
    if action in _AFTER_INVESTIGATION and case["investigation_done_at"] is None:
        what = _AFTER_INVESTIGATION[action]
        return f"{what} follows the investigation: record that the investigation is done first"
    return None


def needs_note(case: Mapping[str, Any], action: str) -> bool:
    """True when the action must come with a note saying why (closing before the investigation is recorded)."""
    return action == CaseAction.CLOSE and case["investigation_done_at"] is None


def allowed_actions(case: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The actions an officer may record on the case now, in the order of the case's life, with their words."""
    return [
        {"action": a, "label": ACTION_LABELS[a], "needs_note": needs_note(case, a)}
        for a in ACTIONS
        if refusal(case, a) is None
    ]


# Each Awaab's Law step: its deadline column, and the columns that, all set, mean it is done (the latest is when).
# The one definition of what is outstanding: outstanding() reads it here, and store.damp.NEXT_DUE (the soonest
# outstanding deadline, in SQL) is made from it.
STEPS: tuple[tuple[CaseStep, str, tuple[str, ...]], ...] = (
    (CaseStep.EMERGENCY, "emergency_by", ("investigation_done_at", "safety_work_done_at")),
    (CaseStep.INVESTIGATE, "investigate_by", ("investigation_done_at",)),
    (CaseStep.SUMMARY, "summary_by", ("summary_sent_at",)),
    (CaseStep.SAFETY_WORK, "safety_work_by", ("safety_work_done_at",)),
    (CaseStep.PREVENTATIVE_BEGIN, "preventative_begin_by", ("works_started_at",)),
    (CaseStep.PREVENTATIVE_START, "preventative_physically_started_by", ("works_started_at",)),
)


def _steps(case: Mapping[str, Any]) -> Iterator[tuple[CaseStep, datetime | None, datetime | None]]:
    for name, due, done_by in STEPS:
        done = [case[c] for c in done_by]
        yield name, case[due], None if any(d is None for d in done) else max(done)


def steps(case: Mapping[str, Any]) -> list[tuple[str, datetime | None, datetime | None]]:
    """Every step of the case: (name, a CaseStep; deadline or None; when it was done or None), in STEPS order."""
    return list(_steps(case))


def outstanding(case: Mapping[str, Any]) -> list[tuple[CaseStep, datetime]]:
    """Steps not done yet, with their deadlines, soonest first (none once closed). store.damp.NEXT_DUE is the
    soonest of these in SQL, made from the same STEPS."""
    if case["closed_at"] is not None:
        return []
    return sorted(
        ((name, due) for name, due, done in _steps(case) if due is not None and done is None), key=lambda s: s[1]
    )


def overdue_steps(case: Mapping[str, Any], now: datetime) -> list[CaseStep]:
    """Steps past their deadline and not done."""
    return [name for name, due in outstanding(case) if due < now]


def derive_status(case: Mapping[str, Any]) -> CaseStatus:
    """The status a case is in: its first step not yet done."""
    if case["closed_at"] is not None:
        return CaseStatus.CLOSED
    if case["investigation_done_at"] is None:
        return CaseStatus.INVESTIGATING if case["acknowledged_at"] or case["visited_at"] else CaseStatus.OPEN
    if case["summary_sent_at"] is None:
        return CaseStatus.INVESTIGATED
    if case["safety_work_done_at"] is None:
        return CaseStatus.SAFETY_WORK
    if case["works_started_at"] is None:
        return CaseStatus.PREVENTATIVE_WORK
    return CaseStatus.WORKS_STARTED


def tenant_deadline(case: Mapping[str, Any]) -> datetime | None:
    """The deadline the tenant is told about for the case's status (an emergency's 24 hours come first)."""
    steps = dict(outstanding(case))
    if CaseStep.EMERGENCY in steps:
        return steps[CaseStep.EMERGENCY]
    by_status: dict[str, CaseStep] = {
        CaseStatus.OPEN: CaseStep.INVESTIGATE,
        CaseStatus.INVESTIGATING: CaseStep.INVESTIGATE,
        CaseStatus.INVESTIGATED: CaseStep.SUMMARY,
        CaseStatus.SAFETY_WORK: CaseStep.SAFETY_WORK,
        CaseStatus.PREVENTATIVE_WORK: CaseStep.PREVENTATIVE_BEGIN,
    }
    step = by_status.get(case["status"])
    return steps.get(step) if step else None


def when(at: datetime, *, clock: bool = False) -> str:
    """A time as people read it: 'Tuesday 8 December 2026' (with the London time if clock)."""
    local = at.astimezone(LONDON)
    text = f"{local:%A} {local.day} {local:%B} {local.year}"
    return f"{text} {local:%H:%M}" if clock else text


def case_summary(case: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What an officer's list and an alert show of a case: status, the next step and how long is left."""
    steps = outstanding(case)
    nxt: dict[str, Any] | None = None
    if steps:
        name, due = steps[0]
        nxt = {"step": name, "what": STEP_TEXT[name], "due": utc_z(due), "overdue": due < now}
        if name == CaseStep.EMERGENCY:
            nxt["hours_left"] = round((due - now).total_seconds() / _HOUR, 1)
        else:
            nxt["working_days_left"] = working_days_between(now, due)
    return {
        "id": case["id"],
        "home_id": case["home_id"],
        "level": case["level"],
        "status": case["status"],
        "status_text": STATUS_TEXT.get(case["status"], case["status"]),
        "officer": case.get("officer"),
        "emergency": case["emergency_confirmed_at"] is not None,
        "opened_at": utc_z_or_none(case["opened_at"]),
        "aware_at": utc_z_or_none(case["aware_at"]),
        "investigate_by": utc_z_or_none(case["investigate_by"]),
        "next_step": nxt,
        "overdue": [name for name, due in steps if due < now],
        "escalated": bool(case["overdue_steps"]),
    }


def apply_action(case: Mapping[str, Any], action: str, at: datetime, note: str | None) -> dict[str, Any]:
    """The column changes an officer's action makes (status included); CaseConflict when not allowed now."""
    why = refusal(case, action)
    if why is not None:
        raise CaseConflict(why)
    if needs_note(case, action) and not (note and note.strip()):
        raise CaseConflict("closing a case before its investigation is recorded needs a note saying why")
    changes: dict[str, Any] = {}
    if action in _ONCE:
        changes[_ONCE[action][0]] = at
    if action == CaseAction.VISIT:
        changes["visited_at"] = at
        if case.get("visit_booked_for") is not None:  # the booked visit has happened (or this one replaces it)
            changes |= {"visit_booked_for": None, "visit_booked_note": None}
    elif action == CaseAction.INVESTIGATION_DONE:
        d = case_deadlines(case["aware_at"], investigation_done_at=at)
        changes |= {
            "summary_by": d.summary_by,
            "safety_work_by": d.safety_work_by,
            "preventative_begin_by": d.preventative_begin_by,
            "preventative_physically_started_by": d.preventative_physically_started_by,
        }
    elif action == CaseAction.CONFIRM_EMERGENCY:
        changes |= {"emergency_by": emergency_by(at), "level": CaseLevel.EMERGENCY}
    elif action == CaseAction.CLOSE:
        changes["closed_at"] = at
        if case.get("visit_booked_for") is not None:
            changes |= {"visit_booked_for": None, "visit_booked_note": None}
    changes["status"] = derive_status({**case, **changes})
    return changes


# ---------------------------------------------------------------------------------------------
# Who is responsible, and the next visit booked with the tenant

OFFICER = "officer"


def choose_officers(patches: Sequence[str | None], loads: Mapping[str, Mapping[str, int]]) -> list[str | None]:
    """The responsible officer of each new case, in order, given the home's patch of each: the officer of that
    patch with the fewest open cases (the cases given out here counted; ties by name), None when the patch has
    no officer. `loads`: patch -> {officer: open cases} for the enabled officers of each patch."""
    counts = {patch: dict(officers) for patch, officers in loads.items()}
    out: list[str | None] = []
    for patch in patches:
        officers = counts.get(patch) if patch is not None else None
        if not officers:
            out.append(None)
            continue
        name = min(officers, key=lambda n: (officers[n], n))
        officers[name] += 1
        out.append(name)
    return out


def assignee_refusal(user: Mapping[str, Any] | None, name: str, patch: str | None) -> str | None:
    """Why this user (a users row, or None when there is no such user) cannot be made responsible for a case in
    this patch, in words; None when they can: an enabled housing officer of the home's patch (the only officers
    who can see the case)."""
    if user is None:
        return f"there is no user called {name}"
    if user["role"] != OFFICER:
        return f"{name} is not a housing officer"
    if user["disabled"]:
        return f"{name}'s account is disabled"
    if patch is None:
        return "the home is in no patch, so no officer can see it: give it a patch in the registry first"
    if user["patch"] != patch:
        where = f"patch {user['patch']}" if user["patch"] else "no patch"
        return f"{name} looks after {where}, not {patch}, so could not see this case"
    return None


def owner_problem(case: Mapping[str, Any]) -> str | None:
    """What is wrong with who is responsible for an open case, in words (None: nothing). The case mapping carries
    `officer` and, from the users row of that officer, `officer_role`, `officer_patch`, `officer_disabled`."""
    if case["closed_at"] is not None:
        return None
    name = case.get("officer")
    if name is None:
        return "No officer is responsible for this case: assign one."
    if case.get("officer_role") is None:
        return f"{name}, the responsible officer, has no account any more: assign another officer."
    user = {
        "role": case["officer_role"],
        "disabled": bool(case.get("officer_disabled")),
        "patch": case.get("officer_patch"),
    }
    why = assignee_refusal(user, name, case.get("patch"))
    return None if why is None else f"The responsible officer cannot act on this case: {why}. Assign another officer."


def notice_problem(last_notice: Mapping[str, Any] | None) -> str | None:
    """What is wrong with the last notification about a case (a notification_events row with `title`, `routed_at`
    and `deliveries`), in words; None when it reached someone, is still being routed, or there was none."""
    if last_notice is None or last_notice["routed_at"] is None or last_notice["deliveries"]:
        return None
    return (
        f"Nobody was notified of “{last_notice['title']}”: no officer of the patch has an email address and no "
        "notification rule covers it."
    )


def patch_problems(officers: Sequence[str], recipients: int, unowned: int = 0) -> list[str]:
    """What is wrong with how a patch's cases are looked after, in words: no officer, nobody notified of new cases,
    open cases with no officer able to act on them."""
    out = []
    if unowned:
        they = "case has no officer able to act on it" if unowned == 1 else "cases have no officer able to act on them"
        out.append(f"{unowned} open {they}.")
    if not officers:
        out.append("No housing officer looks after this patch: its cases have nobody responsible.")
    if not recipients:
        out.append(
            "Nobody is notified of new or overdue cases in this patch: no officer of it has an email address "
            "and no notification rule covers it."
        )
    return out


def book_visit(case: Mapping[str, Any], visit_at: datetime, note: str | None, now: datetime) -> dict[str, Any]:
    """The column changes that book (or move) the next visit to the home; CaseConflict when it cannot be booked."""
    if case["closed_at"] is not None:
        raise CaseConflict(f"the case was closed on {when(case['closed_at'])}; no visit can be booked on it")
    if visit_at.tzinfo is None or visit_at.utcoffset() is None:
        raise ValueError("a visit time needs a time zone")
    if visit_at < now - _BOOKING_SLACK:
        raise CaseConflict(
            f"{when(visit_at, clock=True)} has passed: book a visit still to come, or record a visit that took place"
        )
    return {"visit_booked_for": visit_at, "visit_booked_note": (note or "").strip() or None}


_BOOKING_SLACK = timedelta(minutes=5)


def next_visit(case: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The visit booked on an open case, if it is today (UK time) or later: what the tenant and officer see."""
    at = case.get("visit_booked_for")
    if at is None or case["closed_at"] is not None:
        return None
    today = now.astimezone(LONDON).replace(hour=0, minute=0, second=0, microsecond=0)
    if at < today:
        return None
    return {"at": utc_z(at), "when": when(at, clock=True), "note": case.get("visit_booked_note")}
