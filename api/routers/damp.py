"""Damp and mould cases on Awaab's Law clocks: the list, one case with its history, and officers' actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field, field_validator

from alerts.damp import audience, notify
from alerts.notify import effective_rules, load_rules
from api.deps import Conn, SettingsDep, require
from core.cases import (
    ACTIONS,
    EVENT_TEXT,
    STEP_TEXT,
    CaseConflict,
    allowed_actions,
    apply_action,
    assignee_refusal,
    book_visit,
    case_summary,
    next_visit,
    notice_problem,
    outstanding,
    owner_problem,
    patch_problems,
    when,
)
from core.damp import CASE_STATUSES
from core.model import Principal
from core.notifications import route
from store import damp as damp_store
from store import notifications as notifications_store
from store import users as users_store

router = APIRouter(prefix="/damp", tags=["damp"])

# Highways staff see roads, not homes.
HomeReader = Annotated[Principal, Depends(require("admin", "officer", "tenant"))]
CaseWorker = Annotated[Principal, Depends(require("admin", "officer"))]

Action = Literal[ACTIONS]  # type: ignore[valid-type]  # the case rules' own list of actions
_FUTURE_SLACK = timedelta(minutes=5)
# What the officer and the tenant are told of each action (never the officer's own note, which may be internal).
ACTION_TEXT = {
    "acknowledge": "The landlord has acknowledged the report.",
    "visit": "The landlord has visited the home.",
    "investigation_done": "The landlord has finished investigating.",
    "summary_sent": "The written summary of the investigation has been sent to the tenant.",
    "safety_work_done": "The work to make the home safe is done.",
    "works_started": "The work to stop the damp coming back has started.",
    "works_completed": "The work to stop the damp coming back is completed.",
    "confirm_emergency": "A person has confirmed this is an emergency: the home must be made safe within 24 hours.",
    "close": "The case is closed. If the damp or mould comes back, please tell the landlord.",
}
BIGINT_MAX = 2**63 - 1
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Not allowed on the case now; the detail says why"}}
CaseId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
# Every deadline and done time of a case (the summary already carries opened, aware and investigate-by).
_TIMES = tuple(
    c
    for c in damp_store.CASE_COLUMNS
    if c.endswith(("_at", "_by")) and c not in {"opened_at", "aware_at", "investigate_by"}
)


class ActionIn(BaseModel):
    """An officer's action on a case."""

    action: Action
    note: str | None = Field(default=None, max_length=4000)
    at: datetime | None = Field(default=None, description="when it happened (RFC 3339 with a zone); default now")

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("at needs a time zone, for example 2026-11-24T10:30:00Z")
        try:
            return v.astimezone(UTC)
        except OverflowError:
            raise ValueError("at is out of range") from None

    @field_validator("note")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("note must not contain NUL characters")
        return v


def text_param(value: str | None, name: str) -> str | None:
    """A query value as given; 422 for text PostgreSQL cannot hold (NUL characters)."""
    if value is not None and "\x00" in value:
        raise HTTPException(422, detail=f"{name} must not contain NUL characters")
    return value


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_view(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": _iso(e["at"]),
        "recorded_at": _iso(e["recorded_at"]),
        "actor": e["actor"],
        "role": e["actor_role"],
        "action": e["action"],
        "what": EVENT_TEXT.get(e["action"], e["action"].replace("_", " ")),
        "note": e["note"],
        "from_status": e["from_status"],
        "to_status": e["to_status"],
        "details": e["details"],
    }


def case_view(
    case: dict[str, Any],
    now: datetime,
    history: list[dict[str, Any]],
    *,
    evidence: bool = False,
    notice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A case as the API shows it: summary, who is responsible and what is wrong with that, the actions allowed
    next, the booked visit, every deadline and done time, and its audit log."""
    out = case_summary(case, now) | {
        "owner_problem": owner_problem(case),
        "notice_problem": notice_problem(notice),
        "allowed_actions": allowed_actions(case),
        "next_visit": next_visit(case, now),
        "address": case.get("address"),
        "patch": case.get("patch"),
        "home_level": case.get("home_level"),
        "aware_source": case["aware_source"],
        "assessment_id": case["assessment_id"],
    }
    out |= {col: _iso(case[col]) for col in _TIMES}
    out["overdue_flagged"] = list(case["overdue_steps"])
    out["history"] = [_event_view(e) for e in history]
    if evidence:
        out["evidence"] = case.get("evidence")
    return out


@router.get("/cases", summary="Damp and mould cases with home_id, level, opened_at, investigate_by, status, history")
def list_cases(
    user: HomeReader,
    conn: Conn,
    status: Annotated[str | None, Query(description="a status, or 'active' for every status but closed")] = None,
    patch: str | None = None,
    home_id: str | None = None,
    overdue: Annotated[bool | None, Query(description="true: only cases with a step past its deadline")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    officer: Annotated[
        str | None, Query(description="only this officer's cases; empty: only cases with no officer")
    ] = None,
) -> list[dict[str, Any]]:
    """Cases the caller may see, newest first (a tenant: their home's; an officer: their patch's)."""
    if status is not None and status != "active" and status not in (*CASE_STATUSES, "works_started"):
        raise HTTPException(422, detail=f"status must be 'active' or one of {', '.join(CASE_STATUSES)}, works_started")
    now = datetime.now(UTC)
    rows = damp_store.list_cases(
        conn,
        user,
        status=status,
        patch=text_param(patch, "patch"),
        home_id=text_param(home_id, "home_id"),
        overdue_at=now if overdue else None,
        limit=limit,
        before_id=before_id,
        officer=text_param(officer, "officer"),
    )
    ids = [r["id"] for r in rows]
    history = damp_store.case_events(conn, ids)
    notices = damp_store.last_notices(conn, ids)
    views = [case_view(r, now, history.get(r["id"], []), notice=notices.get(r["id"])) for r in rows]
    if overdue is False:
        views = [v for v in views if not v["overdue"]]
    return views


@router.get("/cases/{case_id}", summary="One case with its evidence and full history")
def get_case(case_id: CaseId, user: HomeReader, conn: Conn) -> dict[str, Any]:
    """One case the caller may see, else 404."""
    case = damp_store.get_case(conn, user, case_id)
    if case is None:
        raise HTTPException(404, detail=f"no case {case_id}")
    return _view(conn, case, datetime.now(UTC), evidence=True)


def _view(conn: Any, case: dict[str, Any], now: datetime, *, evidence: bool = False) -> dict[str, Any]:
    """One case's view, with its history and the fate of its last notification."""
    cid = case["id"]
    history = damp_store.case_events(conn, [cid]).get(cid, [])
    return case_view(case, now, history, evidence=evidence, notice=damp_store.last_notices(conn, [cid]).get(cid))


@router.post(
    "/cases/{case_id}/actions",
    summary="Record an officer's action (acknowledge, visit, investigation_done, summary_sent, safety_work_done, "
    "works_started, confirm_emergency, close); 409 with the reason when the case does not allow it",
    responses=CONFLICT,
)
def act(case_id: CaseId, body: ActionIn, user: CaseWorker, conn: Conn) -> dict[str, Any]:
    """Move a case on; the action is recorded with the user in the case history."""
    now = datetime.now(UTC)
    at = (body.at or now).astimezone(UTC)
    if at > now + _FUTURE_SLACK:
        raise HTTPException(422, detail="at is in the future")
    with conn.transaction():
        case = damp_store.get_case(conn, user, case_id, for_update=True)
        if case is None:
            raise HTTPException(404, detail=f"no case {case_id}")
        if at < case["aware_at"]:
            raise HTTPException(422, detail=f"at is before the landlord became aware ({_iso(case['aware_at'])})")
        try:
            changes = apply_action(case, body.action, at, body.note)
        except CaseConflict as exc:
            raise HTTPException(409, detail=str(exc)) from None
        _record(conn, user, case, body.action, at, body.note, changes)
        after = {**case, **changes}
        steps = outstanding(after)
        nxt = (
            f" Next: {STEP_TEXT[steps[0][0]]}, by {when(steps[0][1], clock=steps[0][0] == 'emergency')}."
            if steps
            else ""
        )
        what = EVENT_TEXT.get(body.action, body.action)
        notify(
            conn,
            kind="damp.case",
            subject=str(case_id),
            audience=audience(case["patch"], case["home_id"], *[f"user:{o}" for o in [case["officer"]] if o]),
            title=f"Damp and mould case {case_id} (home {case['home_id']}): {what.lower()}",
            body=f"{ACTION_TEXT[body.action]}{nxt}",
            payload={
                "case_id": case_id,
                "home_id": case["home_id"],
                "action": body.action,
                "at": _iso(at),
                "status": changes["status"],
            },
            dedupe_key=f"damp.case:{case_id}:{body.action}:{_iso(at)}:{_iso(now)}",
            now=now,
        )
    case = damp_store.get_case(conn, user, case_id)
    assert case is not None
    return _view(conn, case, now)


class OfficerIn(BaseModel):
    """Who becomes responsible for a case."""

    officer: str = Field(min_length=1, max_length=200, description="the user name of a housing officer of the patch")
    note: str | None = Field(default=None, max_length=4000)


class VisitIn(BaseModel):
    """A visit booked with the tenant."""

    at: datetime = Field(description="when the visit is booked for (RFC 3339 with a zone)")
    note: str | None = Field(default=None, max_length=500, description="what the tenant is told: who comes, what for")

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("at needs a time zone, for example 2026-11-24T10:30:00Z")
        return v.astimezone(UTC)


def _record(
    conn: Any,
    user: Principal,
    case: dict[str, Any],
    action: str,
    at: datetime,
    note: str | None,
    changes: dict[str, Any],
) -> None:
    """Apply changes to a case (inside the transaction holding its lock) and log them with the user in its history."""
    damp_store.update_case(
        conn,
        case["id"],
        changes,
        damp_store.Event(
            at=at,
            actor=user.name,
            actor_role=user.role,
            action=action,
            note=note,
            from_status=case["status"],
            to_status=changes.get("status", case["status"]),
            details={k: _iso(v) if isinstance(v, datetime) else v for k, v in changes.items()},
        ),
    )


def _change(conn: Any, user: Principal, case_id: int, action: str, note: str | None, make: Any) -> dict[str, Any]:
    """Apply changes made by `make(case)` (which may raise CaseConflict) to a case, logged as `action`."""
    now = datetime.now(UTC)
    with conn.transaction():
        case = damp_store.get_case(conn, user, case_id, for_update=True)
        if case is None:
            raise HTTPException(404, detail=f"no case {case_id}")
        try:
            changes = make(case, now)
        except CaseConflict as exc:
            raise HTTPException(409, detail=str(exc)) from None
        _record(conn, user, case, action, now, note, changes)
    case = damp_store.get_case(conn, user, case_id)
    assert case is not None
    return _view(conn, case, now)


@router.put(
    "/cases/{case_id}/officer",
    summary="Make a housing officer of the home's patch responsible for a case (409 with the reason otherwise)",
    responses=CONFLICT,
)
def assign(case_id: CaseId, body: OfficerIn, user: CaseWorker, conn: Conn) -> dict[str, Any]:
    """Reassign a case (an officer may take it on or hand it to another officer of the patch)."""
    candidate = users_store.get_user(conn, body.officer)

    def make(case: dict[str, Any], now: datetime) -> dict[str, Any]:
        if case["closed_at"] is not None:
            raise CaseConflict(f"the case was closed on {when(case['closed_at'])}; it needs nobody responsible now")
        why = assignee_refusal(candidate, body.officer, case["patch"])
        if why is not None:
            raise CaseConflict(why)
        if case["officer"] == body.officer and owner_problem(case) is None:
            raise CaseConflict(f"{body.officer} is already responsible for this case")
        return {"officer": body.officer}

    return _change(conn, user, case_id, "assign", body.note, make)


@router.put("/cases/{case_id}/visit", summary="Book (or move) the next visit to the tenant's home", responses=CONFLICT)
def put_visit(case_id: CaseId, body: VisitIn, user: CaseWorker, conn: Conn) -> dict[str, Any]:
    """Record the visit booked with the tenant: when, and what they are told about it."""
    return _change(
        conn, user, case_id, "book_visit", body.note, lambda case, now: book_visit(case, body.at, body.note, now)
    )


@router.delete("/cases/{case_id}/visit", summary="Cancel the visit booked on a case", responses=CONFLICT)
def delete_visit(case_id: CaseId, user: CaseWorker, conn: Conn) -> dict[str, Any]:
    """The booked visit is off (the history keeps that it was booked and cancelled)."""

    def make(case: dict[str, Any], now: datetime) -> dict[str, Any]:
        if case["visit_booked_for"] is None:
            raise CaseConflict("no visit is booked on this case")
        return {"visit_booked_for": None, "visit_booked_note": None}

    return _change(conn, user, case_id, "cancel_visit", None, make)


class OfficerLoad(BaseModel):
    """A housing officer of a patch."""

    name: str
    email: bool = Field(description="whether they have an email address (and so hear of the patch's cases)")
    open_cases: int


class PatchView(BaseModel):
    """Who looks after a patch's cases, and what is wrong with that, in words."""

    patch: str
    homes: int
    open_cases: int
    unowned_cases: int = Field(description="open cases with no officer able to act on them")
    officers: list[OfficerLoad]
    recipients: list[str] = Field(description="who is notified of a new case in the patch (addresses or URLs)")
    problems: list[str]


@router.get("/patches", response_model=list[PatchView], summary="Patches: officers, unowned cases, who is notified")
def patches(user: CaseWorker, conn: Conn, settings: SettingsDep) -> list[PatchView]:
    """Each patch the caller may see (an officer: their own) with its officers, its open cases with nobody
    responsible, and who hears of a new case there; problems in words (shown in red on the pages)."""
    try:
        file_rules = load_rules(settings.notifications_file)
    except ValueError as exc:
        raise HTTPException(500, detail=f"the notifications file is refused: {exc}") from None
    rules = effective_rules(file_rules, notifications_store.recipients(conn))
    out = []
    for row in damp_store.patch_overview(conn, user):
        targets = sorted({t.to for t in route("damp.case", [f"patch:{row['patch']}"], rules)})
        officers = [OfficerLoad(**o) for o in row["officers"]]
        problems = patch_problems([o.name for o in officers], len(targets), row["unowned_cases"])
        out.append(
            PatchView(
                patch=row["patch"],
                homes=row["homes"],
                open_cases=row["open_cases"],
                unowned_cases=row["unowned_cases"],
                officers=officers,
                recipients=targets,
                problems=problems,
            )
        )
    return out
