"""Notifications (admin): deliveries and their state, the effective routing, and a test notification."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.notify import effective_rules, load_rules
from api.deps import Admin, Conn, SettingsDep
from api.row_models import RowModels
from core.notifications import BACKOFF, check_audience, check_kind, route
from store import notifications as store

router = APIRouter(prefix="/notifications", tags=["notifications"])
Status = store.DeliveryStatus


def _file_rules(settings: Any) -> list[Any]:
    try:
        return load_rules(settings.notifications_file)
    except ValueError as exc:
        raise HTTPException(500, detail=f"the notifications file is refused: {exc}") from None


# A delivery as the admins' list shows it: the store's row (times through utc_z).
Delivery = RowModels({store.DeliveryRow: "Delivery"})[store.DeliveryRow]


class RuleView(BaseModel):
    """A routing rule as an admin sees it (a webhook's secret only as whether there is one)."""

    audience: str
    kinds: list[str]
    channel: str
    to: str
    source: str
    signed: bool | None = Field(default=None, description="webhooks only: whether deliveries are signed")


class EmailView(BaseModel):
    """How email is sent."""

    model_config = ConfigDict(populate_by_name=True)

    configured: bool
    host: str | None
    port: int
    from_: str = Field(alias="from")


class RetryView(BaseModel):
    """How failed deliveries are retried."""

    max_attempts: int
    backoff_s: list[int]
    webhook_timeout_s: float


class Routing(BaseModel):
    """What goes where: the rules file and every user's defaults, email, retries, and deliveries by status."""

    file: str | None
    rules: list[RuleView]
    email: EmailView
    retry: RetryView
    deliveries: dict[str, int] = Field(description="how many deliveries are in each status")


class RouteView(BaseModel):
    """Where a notification goes."""

    channel: str
    to: str
    rule: str


class TestSent(BaseModel):
    """The test event recorded, and where it will go."""

    event_id: int | None
    kind: str
    audience: list[str]
    routes: list[RouteView]


@router.get(
    "/deliveries",
    response_model=list[Delivery],
    summary="Notification deliveries, newest first, with status, attempts and errors (admin)",
)
def deliveries(
    user: Admin,
    conn: Conn,
    status: Status | None = None,
    kind: str | None = None,
    event_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
) -> list[store.DeliveryRow]:
    """Filter by status (pending, sending, delivered, failed) and event kind; page with before_id."""
    return store.deliveries(conn, status=status, kind=kind, event_id=event_id, limit=limit, before_id=before_id)


@router.get(
    "/rules",
    response_model=Routing,
    response_model_exclude_unset=True,
    summary="The effective routing: the rules file and every user's defaults (admin)",
)
def rules(user: Admin, conn: Conn, settings: SettingsDep) -> Routing:
    """What goes where. The file is shown as it is now; the dispatcher reads it when it starts."""
    file_rules = _file_rules(settings)
    people = store.recipients(conn)
    routing = {
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
    return Routing.model_validate(routing)


class TestNotification(BaseModel):
    """A test notification: who it is for, and (optionally) the kind to route it as."""

    audience: list[str] | str = Field(description="e.g. 'team:highways', 'patch:north', 'user:alice'")
    kind: str = Field(default="notify.test", description="route it as this kind, e.g. 'gritting.decision'")
    title: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=10_000)


@router.post(
    "/test", status_code=202, response_model=TestSent, summary="Send a test notification to an audience (admin)"
)
def send_test(test: TestNotification, user: Admin, conn: Conn, settings: SettingsDep) -> TestSent:
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
    return TestSent(
        event_id=event_id,
        kind=kind,
        audience=keys,
        routes=[RouteView(channel=t.channel, to=t.to, rule=t.source) for t in targets],
    )
