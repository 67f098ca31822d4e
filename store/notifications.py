"""Notifications: the outbox of events and the deliveries made from it (all the SQL for them).

Evaluators call enqueue() inside the transaction that records their decision or case change, so an event
exists exactly when the change does. alerts/notify.py fans events out into deliveries and sends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
import psycopg
from psycopg.types.json import Jsonb

from core.notifications import Recipient, check_audience, check_kind
from store.rows import typed

_EVENT_COLUMNS = (
    "e.id AS event_id, e.kind, e.subject, e.audience, e.title, e.body, e.payload, e.dedupe_key, e.created_at"
)
# A delivery with its event, as the sender and the failure report read it (notification_events e).
_DELIVERY_COLUMNS = f"""d.id, d.channel, d.target, d.rule, d.attempts, d.last_error, d.idempotency_key, d.updated_at,
                        {_EVENT_COLUMNS}"""


DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]  # notification_deliveries' CHECK


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A notification event: what happened, to whom it matters, and what people and webhooks read of it."""

    event_id: int
    kind: str
    subject: str
    audience: list[str]
    title: str
    body: str
    payload: dict[str, Any]
    dedupe_key: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Sending(OutboxEvent):
    """A delivery of an event to one target, with the event (claimed to send, expired or failed)."""

    id: int
    channel: str
    target: str
    rule: str
    attempts: int
    last_error: str | None
    idempotency_key: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as the admins' list shows it, with its event's kind, subject, title and audience."""

    id: int
    event_id: int
    kind: str
    subject: str
    title: str
    audience: list[str]
    dedupe_key: str
    channel: str
    target: str
    rule: str
    idempotency_key: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = field(
        metadata={"description": "while pending or sending: when it is tried next"}
    )
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    reported_at: datetime | None


def _jsonb(value: dict[str, Any]) -> Jsonb:
    return Jsonb(value, dumps=lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode())


def enqueue(
    conn: psycopg.Connection,
    *,
    kind: str,
    subject: str,
    audience: Sequence[str],
    title: str,
    body: str,
    payload: dict[str, Any] | None = None,
    dedupe_key: str,
    now: datetime | None = None,
) -> int | None:
    """Record a notification event in the caller's transaction; return its id, or None if already recorded.

    - kind: what happened, dotted: 'gritting.decision', 'gritting.escalation', 'damp.case', 'damp.overdue',
      'damp.advice', 'device.problem' (routing matches kinds by pattern, e.g. 'gritting.*').
    - subject: the id of what it is about (route, case, home or device).
    - audience: who it concerns, one or more of 'team:highways', 'patch:<patch>', 'home:<home id>',
      'user:<name>', 'role:<role>'. A damp case of home H in patch P is ['patch:P', 'home:H'], so the
      officer of P and the tenant of H both get it (each by their own defaults).
    - title: one line (the email subject); body: plain text people read; payload: JSON for webhooks.
    - dedupe_key: unique per real-world event, e.g. f'gritting.decision:{decision_id}'. Recording the same
      key again does nothing, so a re-run or retried evaluation never notifies twice.
    - now: the event time (the evaluator's clock); default the database's.

    Nothing is sent here: the notification dispatcher picks the event up within seconds of the commit, and
    if the caller's transaction rolls back the event is gone with the change it described.
    """
    keys = check_audience(audience)
    check_kind(kind)
    if not dedupe_key:
        raise ValueError("dedupe_key must be given: it is what stops the same event being sent twice")
    row = conn.execute(
        """INSERT INTO notification_events (kind, subject, audience, title, body, payload, dedupe_key, created_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
        (kind, subject, keys, title, body, _jsonb(payload or {}), dedupe_key, now),
    ).fetchone()
    return int(row[0]) if row else None


def claim_unrouted(conn: psycopg.Connection, *, limit: int) -> list[OutboxEvent]:
    """Events not yet fanned out, locked for this transaction (others skip them)."""
    return list(
        typed(conn, OutboxEvent).execute(
            f"""SELECT {_EVENT_COLUMNS} FROM notification_events e
                WHERE e.routed_at IS NULL ORDER BY e.id LIMIT %s FOR UPDATE SKIP LOCKED""",
            (limit,),
        )
    )


def recipients(conn: psycopg.Connection) -> list[Recipient]:
    """Users who can receive email (enabled, with an address)."""
    return [
        Recipient(name=name, role=role, email=email.strip(), home_id=home, patch=patch)
        for name, role, email, home, patch in conn.execute(
            """SELECT name, role, email, home_id, patch FROM users
               WHERE NOT disabled AND email IS NOT NULL AND btrim(email) <> '' ORDER BY name"""
        )
    ]


def add_delivery(
    conn: psycopg.Connection,
    *,
    event_id: int,
    channel: str,
    target: str,
    rule: str,
    idempotency_key: str,
    due: datetime,
) -> bool:
    """A pending delivery of an event to one target; False if it already exists."""
    row = conn.execute(
        """INSERT INTO notification_deliveries
             (event_id, channel, target, rule, idempotency_key, next_attempt_at, created_at, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id""",
        (event_id, channel, target, rule, idempotency_key, due, due, due),
    ).fetchone()
    return row is not None


def mark_routed(conn: psycopg.Connection, event_id: int, *, now: datetime, deliveries: int) -> None:
    """The event has been fanned out into this many deliveries."""
    conn.execute(
        "UPDATE notification_events SET routed_at = %s, deliveries = %s WHERE id = %s", (now, deliveries, event_id)
    )


def expire_exhausted(conn: psycopg.Connection, *, now: datetime, max_attempts: int) -> list[Sending]:
    """Fail due deliveries that have no attempts left (a claim whose sender died, or a lowered maximum)."""
    return list(
        typed(conn, Sending).execute(
            f"""UPDATE notification_deliveries d SET status = 'failed', updated_at = %(now)s,
                   last_error = CASE WHEN d.status = 'sending'
                       THEN 'the sender stopped during attempt ' || d.attempts || ' (outcome unknown)'
                       ELSE coalesce(d.last_error, 'no attempts left') END
                FROM notification_events e
                WHERE e.id = d.event_id AND d.status IN ('pending', 'sending')
                  AND d.next_attempt_at <= %(now)s AND d.attempts >= %(max)s
                RETURNING {_DELIVERY_COLUMNS}""",
            {"now": now, "max": max_attempts},
        )
    )


def claim_due(
    conn: psycopg.Connection,
    *,
    now: datetime,
    lease_until: datetime,
    max_attempts: int,
    skip_targets: Sequence[str] = (),
    skip_channels: Sequence[str] = (),
) -> Sending | None:
    """Claim the next due delivery for one attempt, or None.

    The claim is committed (status 'sending', attempts + 1, leased until lease_until) before anything is
    sent, and rows are picked with FOR UPDATE SKIP LOCKED, so two dispatchers never send the same delivery;
    if the sender dies, the delivery is due again when the lease ends. Targets in skip_targets and channels
    in skip_channels (failing in this sweep) are left for the next one."""
    with conn.transaction():
        row = (
            typed(conn, Sending)
            .execute(
                f"""WITH due AS (
                    SELECT id FROM notification_deliveries
                    WHERE status IN ('pending', 'sending') AND next_attempt_at <= %(now)s
                      AND attempts < %(max)s
                      AND target <> ALL(%(skip)s::text[]) AND channel <> ALL(%(skip_channels)s::text[])
                    ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                UPDATE notification_deliveries d
                SET status = 'sending', attempts = d.attempts + 1, next_attempt_at = %(lease)s, updated_at = %(now)s
                FROM due, notification_events e
                WHERE d.id = due.id AND e.id = d.event_id
                RETURNING {_DELIVERY_COLUMNS}""",
                {
                    "now": now,
                    "max": max_attempts,
                    "lease": lease_until,
                    "skip": list(skip_targets),
                    "skip_channels": list(skip_channels),
                },
            )
            .fetchone()
        )
    return row


def mark_delivered(conn: psycopg.Connection, *, delivery_id: int, attempt: int, now: datetime) -> bool:
    """Attempt `attempt` succeeded; False if the claim had been lost (the lease ran out)."""
    with conn.transaction():
        cur = conn.execute(
            """UPDATE notification_deliveries SET status = 'delivered', sent_at = %s, updated_at = %s
               WHERE id = %s AND attempts = %s AND status = 'sending'""",
            (now, now, delivery_id, attempt),
        )
        return cur.rowcount == 1


def mark_attempt_failed(
    conn: psycopg.Connection,
    *,
    delivery_id: int,
    attempt: int,
    now: datetime,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Attempt `attempt` failed: pending again until retry_at, or 'failed' when retry_at is None."""
    with conn.transaction():
        cur = conn.execute(
            """UPDATE notification_deliveries
               SET status = CASE WHEN %(retry)s::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
                   next_attempt_at = coalesce(%(retry)s, next_attempt_at), last_error = %(error)s,
                   updated_at = %(now)s
               WHERE id = %(id)s AND attempts = %(attempt)s AND status = 'sending'""",
            {"retry": retry_at, "error": error[:2000], "now": now, "id": delivery_id, "attempt": attempt},
        )
        return cur.rowcount == 1


def take_unreported_failures(conn: psycopg.Connection, *, now: datetime) -> list[Sending]:
    """Failed deliveries not yet reported, marked reported (in the caller's transaction)."""
    return list(
        typed(conn, Sending).execute(
            f"""WITH todo AS (
                    SELECT id FROM notification_deliveries
                    WHERE status = 'failed' AND reported_at IS NULL ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED)
                UPDATE notification_deliveries d SET reported_at = %s
                FROM todo, notification_events e WHERE d.id = todo.id AND e.id = d.event_id
                RETURNING {_DELIVERY_COLUMNS}""",
            (now,),
        )
    )


def last_event_at(conn: psycopg.Connection, kind: str) -> datetime | None:
    """When the latest event of this kind was recorded."""
    row = conn.execute("SELECT max(created_at) FROM notification_events WHERE kind = %s", (kind,)).fetchone()
    return row[0] if row else None


def deliveries(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    event_id: int | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[DeliveryRow]:
    """Deliveries with their event, newest first; page with before_id."""
    return list(
        typed(conn, DeliveryRow).execute(
            """SELECT d.id, d.event_id, e.kind, e.subject, e.title, e.audience, e.dedupe_key, d.channel, d.target,
                      d.rule, d.idempotency_key, d.status, d.attempts,
                      CASE WHEN d.status IN ('pending', 'sending') THEN d.next_attempt_at END AS next_attempt_at,
                      d.last_error,
                      d.created_at, d.updated_at, d.sent_at, d.reported_at
               FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id
               WHERE (%(status)s::text IS NULL OR d.status = %(status)s)
                 AND (%(kind)s::text IS NULL OR e.kind = %(kind)s)
                 AND (%(event)s::bigint IS NULL OR d.event_id = %(event)s)
                 AND (%(before)s::bigint IS NULL OR d.id < %(before)s)
               ORDER BY d.id DESC LIMIT %(limit)s""",
            {"status": status, "kind": kind, "event": event_id, "before": before_id, "limit": limit},
        )
    )


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    """How many deliveries are in each status."""
    return {s: int(n) for s, n in conn.execute("SELECT status, count(*) FROM notification_deliveries GROUP BY 1")}
