"""Damp and mould cases on Awaab's Law clocks: pure rules over a case as a mapping of its columns
(store.damp.CASE_COLUMNS): what is outstanding and overdue, the status, and what an officer's action does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
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


class CaseConflict(Exception):
    """An action that the case's state does not allow; the text says why."""


def outstanding(case: Mapping[str, Any]) -> list[tuple[str, datetime]]:
    """Steps not done yet, with their deadlines, soonest first (none once closed). Mirrors store.damp.NEXT_DUE."""
    if case["closed_at"] is not None:
        return []
    steps: list[tuple[str, datetime | None, bool]] = [
        (
            "emergency",
            case["emergency_by"],
            case["investigation_done_at"] is not None and case["safety_work_done_at"] is not None,
        ),
        ("investigate", case["investigate_by"], case["investigation_done_at"] is not None),
        ("summary", case["summary_by"], case["summary_sent_at"] is not None),
        ("safety_work", case["safety_work_by"], case["safety_work_done_at"] is not None),
        ("preventative_begin", case["preventative_begin_by"], case["works_started_at"] is not None),
        ("preventative_start", case["preventative_physically_started_by"], case["works_started_at"] is not None),
    ]
    return sorted(((name, due) for name, due, done in steps if due is not None and not done), key=lambda s: s[1])


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
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if case["closed_at"] is not None:
        raise CaseConflict(f"the case was closed on {when(case['closed_at'])}; nothing more can be recorded on it")
    done = case["investigation_done_at"]

    def once(column: str, what: str) -> None:
        if case[column] is not None:
            raise CaseConflict(f"{what} was already recorded on {when(case[column], clock=True)}")

    def after_investigation(what: str) -> None:
        if done is None:
            raise CaseConflict(f"{what} follows the investigation: record investigation_done first")

    changes: dict[str, Any] = {}
    if action == "acknowledge":
        once("acknowledged_at", "the acknowledgement")
        changes["acknowledged_at"] = at
    elif action == "visit":
        changes["visited_at"] = at
    elif action == "investigation_done":
        once("investigation_done_at", "the end of the investigation")
        d = case_deadlines(case["aware_at"], investigation_done_at=at)
        changes |= {
            "investigation_done_at": at,
            "summary_by": d.summary_by,
            "safety_work_by": d.safety_work_by,
            "preventative_begin_by": d.preventative_begin_by,
            "preventative_physically_started_by": d.preventative_physically_started_by,
        }
    elif action == "summary_sent":
        after_investigation("the written summary")
        once("summary_sent_at", "the written summary")
        changes["summary_sent_at"] = at
    elif action == "safety_work_done":
        after_investigation("the safety work")
        once("safety_work_done_at", "the safety work")
        changes["safety_work_done_at"] = at
    elif action == "works_started":
        after_investigation("the preventative work")
        once("works_started_at", "the start of the preventative work")
        changes["works_started_at"] = at
    elif action == "confirm_emergency":
        once("emergency_confirmed_at", "the emergency")
        changes |= {"emergency_confirmed_at": at, "emergency_by": emergency_by(at), "level": "emergency"}
    elif action == "close":
        if done is None and not (note and note.strip()):
            raise CaseConflict("closing a case before its investigation is recorded needs a note saying why")
        changes["closed_at"] = at
    changes["status"] = derive_status({**case, **changes})
    return changes
