"""Notifications (admin): deliveries and their state, the effective routing, and a test notification."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from alerts.notify import effective_rules, load_rules
from api.deps import Admin, Conn, SettingsDep
from core.notifications import BACKOFF, check_audience, check_kind, route
from store import notifications as store

router = APIRouter(prefix="/notifications", tags=["notifications"])
Status = Literal["pending", "sending", "delivered", "failed"]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _file_rules(settings: Any) -> list[Any]:
    try:
        return load_rules(settings.notifications_file)
    except ValueError as exc:
        raise HTTPException(500, detail=f"the notifications file is refused: {exc}") from None


@router.get("/deliveries", summary="Notification deliveries, newest first, with status, attempts and errors (admin)")
def deliveries(
    user: Admin,
    conn: Conn,
    status: Status | None = None,
    kind: str | None = None,
    event_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Filter by status (pending, sending, delivered, failed) and event kind; page with before_id."""
    rows = store.deliveries(conn, status=status, kind=kind, event_id=event_id, limit=limit, before_id=before_id)
    return [
        {
            "id": r["id"],
            "event_id": r["event_id"],
            "kind": r["kind"],
            "subject": r["subject"],
            "title": r["title"],
            "audience": r["audience"],
            "channel": r["channel"],
            "target": r["target"],
            "rule": r["rule"],
            "idempotency_key": r["idempotency_key"],
            "status": r["status"],
            "attempts": r["attempts"],
            "next_attempt_at": _iso(r["next_attempt_at"]) if r["status"] in ("pending", "sending") else None,
            "last_error": r["last_error"],
            "created_at": _iso(r["created_at"]),
            "sent_at": _iso(r["sent_at"]),
            "reported_at": _iso(r["reported_at"]),
        }
        for r in rows
    ]


@router.get("/rules", summary="The effective routing: the rules file and every user's defaults (admin)")
def rules(user: Admin, conn: Conn, settings: SettingsDep) -> dict[str, Any]:
    """What goes where. The file is shown as it is now; the dispatcher reads it when it starts."""
    file_rules = _file_rules(settings)
    people = store.recipients(conn)
    return {
        "file": str(settings.notifications_file) if settings.notifications_file else None,
        "rules": [r.view() for r in effective_rules(file_rules, people)],
        "email": {
            "configured": bool(settings.smtp_host),
            "host": settings.smtp_host or None,
            "port": settings.smtp_port,
            "from": settings.smtp_from,
        },
        "retry": {
            "max_attempts": settings.notify_max_attempts,
            "backoff_s": [int(d.total_seconds()) for d in BACKOFF],
            "webhook_timeout_s": settings.webhook_timeout_s,
        },
        "deliveries": store.status_counts(conn),
    }


class TestNotification(BaseModel):
    """A test notification: who it is for, and (optionally) the kind to route it as."""

    audience: list[str] | str = Field(description="e.g. 'team:highways', 'patch:north', 'user:alice'")
    kind: str = Field(default="notify.test", description="route it as this kind, e.g. 'gritting.decision'")
    title: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=10_000)


@router.post("/test", status_code=202, summary="Send a test notification to an audience (admin)")
def send_test(test: TestNotification, user: Admin, conn: Conn, settings: SettingsDep) -> dict[str, Any]:
    """Record a test event; the dispatcher sends it within seconds. Answers with where it will go."""
    audience = [test.audience] if isinstance(test.audience, str) else test.audience
    try:
        keys = check_audience(audience)
        kind = check_kind(test.kind)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    targets = route(kind, keys, effective_rules(_file_rules(settings), store.recipients(conn)))
    title = test.title or f"Placewatch test notification ({kind})"
    body = test.body or (
        f"This is a test sent by {user.name} to check that notifications for {', '.join(keys)} arrive. "
        "Nothing has happened; no action is needed."
    )
    dedupe_key = f"notify.test:{uuid.uuid4().hex}"
    event_id = store.enqueue(
        conn,
        kind=kind,
        subject="test",
        audience=keys,
        title=title,
        body=body,
        payload={"test": True, "sent_by": user.name},
        dedupe_key=dedupe_key,
    )
    conn.commit()
    return {
        "event_id": event_id,
        "kind": kind,
        "audience": keys,
        "routes": [{"channel": t.channel, "to": t.to, "rule": t.source} for t in targets],
    }
