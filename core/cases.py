"""Damp and mould cases on Awaab's Law clocks: pure rules over a case as a mapping of its columns
(store.damp.CASE_COLUMNS): what is outstanding and overdue, the status, and what an officer's action does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.workdays import LONDON, case_deadlines, emergency_by, working_days_between

_HOUR = 3600


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


ACTIONS = (
    "acknowledge",
    "visit",
    "investigation_done",
    "summary_sent",
    "safety_work_done",
    "works_started",
    "works_completed",
    "confirm_emergency",
    "close",
)
STEP_TEXT = {
    "emergency": "making the home safe after the confirmed emergency",
    "investigate": "the investigation",
    "summary": "the written summary to the tenant",
    "safety_work": "the safety work",
    "preventative_begin": "beginning the preventative work",
    "preventative_start": "physically starting the preventative work",
}


# What an officer picks from, in the words of the page (the API offers only the ones allowed_actions allows).
ACTION_LABELS = {
    "acknowledge": "Acknowledge the report (the tenant has been contacted)",
    "visit": "Record a visit to the home",
    "investigation_done": "Record that the investigation is done",
    "summary_sent": "Record that the written summary was sent to the tenant",
    "safety_work_done": "Record that the safety work is done",
    "works_started": "Record that the preventative work has started",
    "works_completed": "Record that the works are completed",
    "confirm_emergency": "Confirm an emergency (the home must be made safe within 24 hours)",
    "close": "Close the case",
}
STATUS_TEXT = {
    "open": "Open: not yet acknowledged",
    "investigating": "Being investigated",
    "investigated": "Investigated: written summary to send",
    "safety_work": "Safety work to do",
    "preventative_work": "Preventative work to start",
    "works_started": "Preventative work started",
    "closed": "Closed",
}
# Each line of a case's history, in words (officers' actions, and what Placewatch and the ownership steps record).
EVENT_TEXT = {
    "opened": "Case opened by Placewatch",
    "level_changed": "The home's level changed",
    "overdue": "A step became overdue and was escalated",
    "acknowledge": "Report acknowledged",
    "visit": "Home visited",
    "investigation_done": "Investigation done",
    "summary_sent": "Written summary sent to the tenant",
    "safety_work_done": "Safety work done",
    "works_started": "Preventative work started",
    "works_completed": "Works completed",
    "confirm_emergency": "Emergency confirmed",
    "close": "Case closed",
    "assign": "Responsible officer changed",
    "book_visit": "Visit booked",
    "cancel_visit": "Booked visit cancelled",
}
# Actions recorded once: the column that records each, and what it is called in a message.
_ONCE = {
    "acknowledge": ("acknowledged_at", "the acknowledgement"),
    "investigation_done": ("investigation_done_at", "the end of the investigation"),
    "summary_sent": ("summary_sent_at", "the written summary"),
    "safety_work_done": ("safety_work_done_at", "the safety work"),
    "works_started": ("works_started_at", "the start of the preventative work"),
    "works_completed": ("works_completed_at", "the end of the works"),
    "confirm_emergency": ("emergency_confirmed_at", "the emergency"),
}
# Actions that follow the investigation, and what each is called in a message.
_AFTER_INVESTIGATION = {
    "summary_sent": "the written summary",
    "safety_work_done": "the safety work",
    "works_started": "the preventative work",
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
    if action == "works_completed" and case["works_started_at"] is None:
        return "the end of the works follows their start: record that the preventative work has started first"
    if action in _AFTER_INVESTIGATION and case["investigation_done_at"] is None:
        what = _AFTER_INVESTIGATION[action]
        return f"{what} follows the investigation: record that the investigation is done first"
    return None


def needs_note(case: Mapping[str, Any], action: str) -> bool:
    """True when the action must come with a note saying why (closing before the investigation is recorded)."""
    return action == "close" and case["investigation_done_at"] is None


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
STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("emergency", "emergency_by", ("investigation_done_at", "safety_work_done_at")),
    ("investigate", "investigate_by", ("investigation_done_at",)),
    ("summary", "summary_by", ("summary_sent_at",)),
    ("safety_work", "safety_work_by", ("safety_work_done_at",)),
    ("preventative_begin", "preventative_begin_by", ("works_started_at",)),
    ("preventative_start", "preventative_physically_started_by", ("works_started_at",)),
)


def steps(case: Mapping[str, Any]) -> list[tuple[str, datetime | None, datetime | None]]:
    """Every step of the case: (name, deadline or None, when it was done or None), in STEPS order."""
    out = []
    for name, due, done_by in STEPS:
        done = [case[c] for c in done_by]
        out.append((name, case[due], None if any(d is None for d in done) else max(done)))
    return out


def outstanding(case: Mapping[str, Any]) -> list[tuple[str, datetime]]:
    """Steps not done yet, with their deadlines, soonest first (none once closed). store.damp.NEXT_DUE is the
    soonest of these in SQL, made from the same STEPS."""
    if case["closed_at"] is not None:
        return []
    return sorted(
        ((name, due) for name, due, done in steps(case) if due is not None and done is None), key=lambda s: s[1]
    )


def overdue_steps(case: Mapping[str, Any], now: datetime) -> list[str]:
    """Steps past their deadline and not done."""
    return [name for name, due in outstanding(case) if due < now]


def derive_status(case: Mapping[str, Any]) -> str:
    """The status a case is in: its first step not yet done."""
    if case["closed_at"] is not None:
        return "closed"
    if case["investigation_done_at"] is None:
        return "investigating" if case["acknowledged_at"] or case["visited_at"] else "open"
    if case["summary_sent_at"] is None:
        return "investigated"
    if case["safety_work_done_at"] is None:
        return "safety_work"
    if case["works_started_at"] is None:
        return "preventative_work"
    return "works_started"


def tenant_deadline(case: Mapping[str, Any]) -> datetime | None:
    """The deadline the tenant is told about for the case's status (an emergency's 24 hours come first)."""
    steps = dict(outstanding(case))
    if "emergency" in steps:
        return steps["emergency"]
    by_status = {
        "open": "investigate",
        "investigating": "investigate",
        "investigated": "summary",
        "safety_work": "safety_work",
        "preventative_work": "preventative_begin",
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
        nxt = {"step": name, "what": STEP_TEXT[name], "due": _iso(due), "overdue": due < now}
        if name == "emergency":
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
        "opened_at": _iso(case["opened_at"]),
        "aware_at": _iso(case["aware_at"]),
        "investigate_by": _iso(case["investigate_by"]),
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
    if action == "visit":
        changes["visited_at"] = at
        if case.get("visit_booked_for") is not None:  # the booked visit has happened (or this one replaces it)
            changes |= {"visit_booked_for": None, "visit_booked_note": None}
    elif action == "investigation_done":
        d = case_deadlines(case["aware_at"], investigation_done_at=at)
        changes |= {
            "summary_by": d.summary_by,
            "safety_work_by": d.safety_work_by,
            "preventative_begin_by": d.preventative_begin_by,
            "preventative_physically_started_by": d.preventative_physically_started_by,
        }
    elif action == "confirm_emergency":
        changes |= {"emergency_by": emergency_by(at), "level": "emergency"}
    elif action == "close":
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
    return {"at": _iso(at), "when": when(at, clock=True), "note": case.get("visit_booked_note")}
