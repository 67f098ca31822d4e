"""Damp and mould cases on Awaab's Law clocks: the list, one case with its history, and officers' actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field, field_validator

from alerts.damp import audience, notify
from api.deps import Conn, require
from core.cases import ACTIONS, STEP_TEXT, CaseConflict, apply_action, case_summary, outstanding, when
from core.damp import CASE_STATUSES
from core.model import Principal
from store import damp as damp_store

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
    "confirm_emergency": "A person has confirmed this is an emergency: the home must be made safe within 24 hours.",
    "close": "The case is closed. If the damp or mould comes back, please tell the landlord.",
}
BIGINT_MAX = 2**63 - 1
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
        "note": e["note"],
        "from_status": e["from_status"],
        "to_status": e["to_status"],
        "details": e["details"],
    }


def case_view(
    case: dict[str, Any], now: datetime, history: list[dict[str, Any]], *, evidence: bool = False
) -> dict[str, Any]:
    """A case as the API shows it: summary, every deadline and done time, and its audit log."""
    out = case_summary(case, now) | {
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
    )
    history = damp_store.case_events(conn, [r["id"] for r in rows])
    views = [case_view(r, now, history.get(r["id"], [])) for r in rows]
    if overdue is False:
        views = [v for v in views if not v["overdue"]]
    return views


@router.get("/cases/{case_id}", summary="One case with its evidence and full history")
def get_case(case_id: CaseId, user: HomeReader, conn: Conn) -> dict[str, Any]:
    """One case the caller may see, else 404."""
    case = damp_store.get_case(conn, user, case_id)
    if case is None:
        raise HTTPException(404, detail=f"no case {case_id}")
    return case_view(case, datetime.now(UTC), damp_store.case_events(conn, [case_id]).get(case_id, []), evidence=True)


@router.post(
    "/cases/{case_id}/actions",
    summary="Record an officer's action (acknowledge, visit, investigation_done, summary_sent, safety_work_done, "
    "works_started, confirm_emergency, close); 409 with the reason when the case does not allow it",
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
        details = {k: _iso(v) if isinstance(v, datetime) else v for k, v in changes.items()}
        damp_store.update_case(
            conn,
            case_id,
            changes,
            damp_store.Event(
                at=at,
                actor=user.name,
                actor_role=user.role,
                action=body.action,
                note=body.note,
                from_status=case["status"],
                to_status=changes["status"],
                details=details,
            ),
        )
        after = {**case, **changes}
        steps = outstanding(after)
        nxt = (
            f" Next: {STEP_TEXT[steps[0][0]]}, by {when(steps[0][1], clock=steps[0][0] == 'emergency')}."
            if steps
            else ""
        )
        notify(
            conn,
            kind="damp.case",
            subject=str(case_id),
            audience=audience(case["patch"], case["home_id"]),
            title=f"Damp and mould case {case_id} (home {case['home_id']}): {body.action.replace('_', ' ')}",
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
    return case_view(case, now, damp_store.case_events(conn, [case_id]).get(case_id, []))
