"""Damp and mould cases on Awaab's Law clocks: the list, one case with its history, and officers' actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field, field_validator

from alerts.damp import audience, notify
from alerts.notify import effective_rules, load_rules
from api.deps import Conn, SettingsDep, require
from core.cases import (
    ACTION_NOTICES,
    EVENT_TEXT,
    STEP_TEXT,
    CaseAction,
    CaseConflict,
    CaseEvent,
    CaseLevel,
    CaseStatus,
    CaseStep,
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
from core.damp import DampLevel
from core.model import Principal
from core.notifications import route
from core.timeparse import utc_z, utc_z_or_none
from store import damp as damp_store
from store import notifications as notifications_store
from store import users as users_store

router = APIRouter(prefix="/damp", tags=["damp"])

# Highways staff see roads, not homes.
HomeReader = Annotated[Principal, Depends(require("admin", "officer", "tenant"))]
CaseWorker = Annotated[Principal, Depends(require("admin", "officer"))]

_FUTURE_SLACK = timedelta(minutes=5)
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

    action: CaseAction
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


# -- what the case routes answer (the JSON is the contract's: the models say it, they do not change it) -------------
# A next step has hours_left (an emergency) or working_days_left (any other step), never both: the routes answer
# with response_model_exclude_unset, so a field left unset is not in the JSON, and a field set to None is null.


class NextStep(BaseModel):
    """The case's soonest outstanding step."""

    step: CaseStep
    what: str = Field(description="the step in words")
    due: str
    overdue: bool
    hours_left: float | None = Field(default=None, description="an emergency: hours left (negative: overdue)")
    working_days_left: int | None = Field(default=None, description="any other step: working days left")


class CaseSummary(BaseModel):
    """What an officer's list, a home and an alert show of a case (core.cases.case_summary)."""

    id: int
    home_id: str
    level: CaseLevel
    status: CaseStatus
    status_text: str
    officer: str | None
    emergency: bool
    opened_at: str
    aware_at: str
    investigate_by: str
    next_step: NextStep | None
    overdue: list[CaseStep] = Field(description="the steps past their deadline and not done")
    escalated: bool


class NextVisit(BaseModel):
    """The visit booked with the tenant."""

    at: str
    when: str = Field(description="the time in words, UK time")
    note: str | None


class HomeCase(CaseSummary):
    """A home's open case, with the visit booked."""

    next_visit: NextVisit | None


class AllowedAction(BaseModel):
    """An action that may be recorded on the case now."""

    action: CaseAction
    label: str
    needs_note: bool


class HistoryLine(BaseModel):
    """A line of a case's audit log."""

    at: str
    recorded_at: str
    actor: str
    role: str
    action: CaseAction | CaseEvent
    what: str = Field(description="the action in words")
    note: str | None
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    details: dict[str, Any]


class CaseView(HomeCase):
    """A case as the API shows it: its summary, who is responsible and what is wrong with that, the actions allowed
    next, the booked visit, every deadline and done time, and its audit log."""

    owner_problem: str | None
    notice_problem: str | None
    allowed_actions: list[AllowedAction]
    address: str | None
    patch: str | None
    home_level: DampLevel | None
    aware_source: str
    assessment_id: int | None
    acknowledged_at: str | None
    visited_at: str | None
    investigation_done_at: str | None
    summary_by: str | None
    summary_sent_at: str | None
    safety_work_by: str | None
    safety_work_done_at: str | None
    preventative_begin_by: str | None
    preventative_physically_started_by: str | None
    works_started_at: str | None
    works_completed_at: str | None
    emergency_confirmed_at: str | None
    emergency_by: str | None
    closed_at: str | None
    updated_at: str | None
    overdue_flagged: list[CaseStep] = Field(description="the steps escalated as overdue (once each)")
    history: list[HistoryLine]


class CaseDetail(CaseView):
    """One case with the evidence it was opened on (the assessment, whole)."""

    evidence: dict[str, Any] | None


# The routes that change a case answer with the case as it is now, or 409 with why not.
_CHANGES_A_CASE: dict[str, Any] = {
    "response_model": CaseView,
    "response_model_exclude_unset": True,
    "responses": CONFLICT,
}


def text_param(value: str | None, name: str) -> str | None:
    """A query value as given; 422 for text PostgreSQL cannot hold (NUL characters)."""
    if value is not None and "\x00" in value:
        raise HTTPException(422, detail=f"{name} must not contain NUL characters")
    return value


def _event_view(e: damp_store.CaseLogEntry) -> dict[str, Any]:
    return {
        "at": utc_z_or_none(e.at),
        "recorded_at": utc_z_or_none(e.recorded_at),
        "actor": e.actor,
        "role": e.actor_role,
        "action": e.action,
        "what": EVENT_TEXT.get(e.action, e.action.replace("_", " ")),
        "note": e.note,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "details": e.details,
    }


def case_view(
    case: damp_store.Case,
    now: datetime,
    history: list[damp_store.CaseLogEntry],
    *,
    evidence: bool = False,
    notice: damp_store.Notice | None = None,
) -> CaseView:
    """A case as the API shows it: summary, who is responsible and what is wrong with that, the actions allowed
    next, the booked visit, every deadline and done time, and its audit log."""
    out = case_summary(case, now) | {
        "owner_problem": owner_problem(case),
        "notice_problem": notice_problem(notice),
        "allowed_actions": allowed_actions(case),
        "next_visit": next_visit(case, now),
        "address": case.address,
        "patch": case.patch,
        "home_level": case.home_level,
        "aware_source": case.aware_source,
        "assessment_id": case.assessment_id,
    }
    out |= {col: utc_z_or_none(getattr(case, col)) for col in _TIMES}
    out["overdue_flagged"] = list(case.overdue_steps)
    out["history"] = [_event_view(e) for e in history]
    if evidence:
        out["evidence"] = case.evidence
        return CaseDetail.model_validate(out)
    return CaseView.model_validate(out)


@router.get(
    "/cases",
    response_model=list[CaseView],
    response_model_exclude_unset=True,
    summary="Damp and mould cases with home_id, level, opened_at, investigate_by, status, history",
)
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
) -> list[CaseView]:
    """Cases the caller may see, newest first (a tenant: their home's; an officer: their patch's)."""
    if status is not None and status != "active" and status not in tuple(CaseStatus):
        raise HTTPException(422, detail=f"status must be 'active' or one of {', '.join(CaseStatus)}")
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
    ids = [r.id for r in rows]
    history = damp_store.case_events(conn, ids)
    notices = damp_store.last_notices(conn, ids)
    views = [case_view(r, now, history.get(r.id, []), notice=notices.get(r.id)) for r in rows]
    if overdue is False:
        views = [v for v in views if not v.overdue]
    return views


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    response_model_exclude_unset=True,
    summary="One case with its evidence and full history",
)
def get_case(case_id: CaseId, user: HomeReader, conn: Conn) -> CaseView:
    """One case the caller may see, else 404."""
    case = damp_store.get_case(conn, user, case_id)
    if case is None:
        raise HTTPException(404, detail=f"no case {case_id}")
    return _view(conn, case, datetime.now(UTC), evidence=True)


def _view(conn: Any, case: damp_store.Case, now: datetime, *, evidence: bool = False) -> CaseView:
    """One case's view, with its history and the fate of its last notification."""
    cid = case.id
    history = damp_store.case_events(conn, [cid]).get(cid, [])
    return case_view(case, now, history, evidence=evidence, notice=damp_store.last_notices(conn, [cid]).get(cid))


@router.post(
    "/cases/{case_id}/actions",
    summary="Record an officer's action (acknowledge, visit, investigation_done, summary_sent, safety_work_done, "
    "works_started, confirm_emergency, close); 409 with the reason when the case does not allow it",
    **_CHANGES_A_CASE,
)
def act(case_id: CaseId, body: ActionIn, user: CaseWorker, conn: Conn) -> CaseView:
    """Move a case on; the action is recorded with the user in the case history."""
    now = datetime.now(UTC)
    at = (body.at or now).astimezone(UTC)
    if at > now + _FUTURE_SLACK:
        raise HTTPException(422, detail="at is in the future")
    with conn.transaction():
        case = damp_store.get_case(conn, user, case_id, for_update=True)
        if case is None:
            raise HTTPException(404, detail=f"no case {case_id}")
        if at < case.aware_at:
            raise HTTPException(422, detail=f"at is before the landlord became aware ({utc_z(case.aware_at)})")
        try:
            changes = apply_action(case, body.action, at, body.note)
        except CaseConflict as exc:
            raise HTTPException(409, detail=str(exc)) from None
        _record(conn, user, case, body.action, at, body.note, changes)
        after = replace(case, **changes)
        steps = outstanding(after)
        nxt = (
            f" Next: {STEP_TEXT[steps[0][0]]}, by {when(steps[0][1], clock=steps[0][0] == CaseStep.EMERGENCY)}."
            if steps
            else ""
        )
        what = EVENT_TEXT.get(body.action, body.action)
        notify(
            conn,
            kind="damp.case",
            subject=str(case_id),
            audience=audience(case.patch, case.home_id, *[f"user:{o}" for o in [case.officer] if o]),
            title=f"Damp and mould case {case_id} (home {case.home_id}): {what.lower()}",
            body=f"{ACTION_NOTICES[body.action]}{nxt}",
            payload={
                "case_id": case_id,
                "home_id": case.home_id,
                "action": body.action,
                "at": utc_z(at),
                "status": changes["status"],
            },
            dedupe_key=f"damp.case:{case_id}:{body.action}:{utc_z(at)}:{utc_z(now)}",
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
    case: damp_store.Case,
    action: str,
    at: datetime,
    note: str | None,
    changes: dict[str, Any],
) -> None:
    """Apply changes to a case (inside the transaction holding its lock) and log them with the user in its history."""
    damp_store.update_case(
        conn,
        case.id,
        changes,
        damp_store.Event(
            at=at,
            actor=user.name,
            actor_role=user.role,
            action=action,
            note=note,
            from_status=case.status,
            to_status=changes.get("status", case.status),
            details={k: utc_z_or_none(v) if isinstance(v, datetime) else v for k, v in changes.items()},
        ),
    )


def _change(conn: Any, user: Principal, case_id: int, action: str, note: str | None, make: Any) -> CaseView:
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
    **_CHANGES_A_CASE,
)
def assign(case_id: CaseId, body: OfficerIn, user: CaseWorker, conn: Conn) -> CaseView:
    """Reassign a case (an officer may take it on or hand it to another officer of the patch)."""
    candidate = users_store.get_user(conn, body.officer)

    def make(case: damp_store.Case, now: datetime) -> dict[str, Any]:
        if case.closed_at is not None:
            raise CaseConflict(f"the case was closed on {when(case.closed_at)}; it needs nobody responsible now")
        why = assignee_refusal(candidate, body.officer, case.patch)
        if why is not None:
            raise CaseConflict(why)
        if case.officer == body.officer and owner_problem(case) is None:
            raise CaseConflict(f"{body.officer} is already responsible for this case")
        return {"officer": body.officer}

    return _change(conn, user, case_id, CaseEvent.ASSIGN, body.note, make)


@router.put(
    "/cases/{case_id}/visit",
    summary="Book (or move) the next visit to the tenant's home",
    **_CHANGES_A_CASE,
)
def put_visit(case_id: CaseId, body: VisitIn, user: CaseWorker, conn: Conn) -> CaseView:
    """Record the visit booked with the tenant: when, and what they are told about it."""

    def make(case: damp_store.Case, now: datetime) -> dict[str, Any]:
        return book_visit(case, body.at, body.note, now)

    return _change(conn, user, case_id, CaseEvent.BOOK_VISIT, body.note, make)


@router.delete(
    "/cases/{case_id}/visit",
    summary="Cancel the visit booked on a case",
    **_CHANGES_A_CASE,
)
def delete_visit(case_id: CaseId, user: CaseWorker, conn: Conn) -> CaseView:
    """The booked visit is off (the history keeps that it was booked and cancelled)."""

    def make(case: damp_store.Case, now: datetime) -> dict[str, Any]:
        if case.visit_booked_for is None:
            raise CaseConflict("no visit is booked on this case")
        return {"visit_booked_for": None, "visit_booked_note": None}

    return _change(conn, user, case_id, CaseEvent.CANCEL_VISIT, None, make)


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
        targets = sorted({t.to for t in route("damp.case", [f"patch:{row.patch}"], rules)})
        officers = [OfficerLoad(**o) for o in row.officers]
        problems = patch_problems([o.name for o in officers], len(targets), row.unowned_cases)
        out.append(
            PatchView(
                patch=row.patch,
                homes=row.homes,
                open_cases=row.open_cases,
                unowned_cases=row.unowned_cases,
                officers=officers,
                recipients=targets,
                problems=problems,
            )
        )
    return out
