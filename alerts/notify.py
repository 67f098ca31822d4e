"""The notification dispatcher: outbox events fanned out into deliveries, sent by email (SMTP) and signed
webhooks, retried with backoff, and failures reported, never dropped.

- Evaluators record events with store.notifications.enqueue() in the transaction of the change itself.
- Every sweep (every few seconds) routes new events: core.notifications.route() over the rules file
  (PLACEWATCH_NOTIFICATIONS_FILE, read at start-up) and each user's defaults (their email, role and
  scope), making one delivery per channel and target with an idempotency key that never changes.
- Due deliveries are claimed one at a time (FOR UPDATE SKIP LOCKED, committed before sending) and sent.
  Email: one SMTP connection per sweep, plain text and HTML. Webhook: a JSON POST signed with HMAC-SHA256
  over "<timestamp>.<body>", with the idempotency key in X-Placewatch-Delivery and Idempotency-Key.
  Success is a 2xx answer (or the mail server accepting the message).
- A failed attempt is retried after 30 s, 2 min, 10 min, 30 min, then every 2 h, up to
  PLACEWATCH_NOTIFY_MAX_ATTEMPTS attempts; then the delivery is 'failed', logged at error level, listed at
  GET /api/v1/notifications/deliveries?status=failed, and summarised in one notify.failure event to the
  admins (at most one summary per REPORT_EVERY). A target that fails is not tried again in the same sweep,
  so one dead webhook cannot hold up the duty officer's email.
"""

from __future__ import annotations

import html
import logging
import os
import smtplib
import ssl
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from alerts.context import AlertContext, Evaluator
from core.notifications import (
    BACKOFF,
    FAILURE_KIND,
    Recipient,
    Rule,
    RulesError,
    default_rules,
    delivery_key,
    parse_rules,
    retry_delay,
    route,
    sign,
    valid_email,
)
from core.timeparse import utc_z
from placewatch.settings import Settings
from store import notifications as store

log = logging.getLogger("placewatch.alerts.notify")
SWEEP_S = 5.0
ROUTE_BATCH = 200  # events fanned out per transaction
SEND_BATCH = 200  # deliveries attempted per sweep; the rest wait for the next sweep, seconds later
SMTP_TIMEOUT_S = 30.0
REPORT_EVERY = timedelta(minutes=15)  # at most one failure summary to the admins this often
USER_AGENT = "Placewatch-Notify/1"


def load_rules(path: Path | None, *, env: Mapping[str, str] | None = None) -> list[Rule]:
    """The rules of the notifications file (none without one); a bad file raises ValueError naming line and entry."""
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
        return parse_rules(text, env=os.environ if env is None else env)
    except OSError as exc:
        raise ValueError(f"PLACEWATCH_NOTIFICATIONS_FILE {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"PLACEWATCH_NOTIFICATIONS_FILE {path}: not UTF-8 text") from None
    except RulesError as exc:
        raise ValueError(f"PLACEWATCH_NOTIFICATIONS_FILE {path}: {exc}") from None


def effective_rules(file_rules: Iterable[Rule], recipients: Iterable[Recipient]) -> list[Rule]:
    """The rules the dispatcher routes by: the file's, then every user's defaults."""
    return [*file_rules, *(r for rec in recipients for r in default_rules(rec))]


class SendError(Exception):
    """One attempt failed; `breaks` names a target or channel not to try again in this sweep."""

    def __init__(self, reason: str, *, breaks: tuple[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.breaks = breaks  # ('target', url) or ('channel', 'email')


class Mailer:
    """One SMTP connection, opened on first use and reused until closed or broken."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if not s.smtp_host:
            raise SendError("email is not configured: set PLACEWATCH_SMTP_HOST", breaks=("channel", "email"))
        tls = ssl.create_default_context()
        if s.smtp_ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S, context=tls)
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S)
            if s.smtp_starttls:
                smtp.starttls(context=tls)
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            smtp.login(s.smtp_username, password)
        return smtp

    def send(self, msg: EmailMessage, to: str) -> None:
        """Hand one message for one address to the mail server."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            envelope_from = parseaddr(self.settings.smtp_from)[1] or self.settings.smtp_from
            self._smtp.send_message(msg, from_addr=envelope_from, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            raise SendError(f"the mail server refused the address: {code} {_text(text)}") from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise SendError(
                f"the mail server said {exc.smtp_code} {_text(exc.smtp_error)}", breaks=("channel", "email")
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            where = f"{self.settings.smtp_host}:{self.settings.smtp_port}"
            raise SendError(f"mail server {where}: {exc or type(exc).__name__}", breaks=("channel", "email")) from None

    def close(self) -> None:
        """Say goodbye to the server, if connected."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _why(rule: str) -> str:
    """Why a person got this message, in words."""
    if rule.startswith("user:"):
        return f"you receive this as the Placewatch user {rule[5:]}"
    return f"you receive this because of the council's notification rules ({rule})"


def email_message(delivery: store.Sending, settings: Settings, now: datetime) -> EmailMessage:
    """The email for a delivery: the title as subject, the body as plain text and simple HTML."""
    key, kind = delivery.idempotency_key, delivery.kind
    msg = EmailMessage()
    msg["Subject"] = _one_line(delivery.title)
    msg["From"] = settings.smtp_from
    msg["To"] = delivery.target
    msg["Date"] = format_datetime(now)
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "placewatch"
    msg["Message-ID"] = f"<{key}@{domain}>"  # the same on every attempt, so a repeat is recognisable
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    msg["X-Placewatch-Event"] = kind
    msg["X-Placewatch-Delivery"] = key
    footer = f"Placewatch · {kind} · {delivery.subject}\n{_why(delivery.rule)}."
    msg.set_content(f"{delivery.body.rstrip()}\n\n-- \n{footer}\n")
    paragraphs = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in para.splitlines()) + "</p>\n"
        for para in delivery.body.strip().split("\n\n")
        if para.strip()
    )
    msg.add_alternative(
        '<!DOCTYPE html>\n<html><body style="font-family: sans-serif">\n'
        f"<h2>{html.escape(delivery.title)}</h2>\n{paragraphs}"
        f'<hr><p style="color: #666; font-size: small">{"<br>".join(map(html.escape, footer.splitlines()))}</p>\n'
        "</body></html>\n",
        subtype="html",
    )
    return msg


def webhook_body(delivery: store.Sending) -> bytes:
    """The JSON a webhook receives; the same bytes on every attempt."""
    return orjson.dumps(
        {
            "delivery": delivery.idempotency_key,
            "event": delivery.kind,
            "event_id": delivery.event_id,
            "subject": delivery.subject,
            "audience": delivery.audience,
            "title": delivery.title,
            "body": delivery.body,
            "payload": delivery.payload,
            "created_at": utc_z(delivery.created_at),
        }
    )


def webhook_headers(delivery: store.Sending, body: bytes, secret: str, now: datetime) -> dict[str, str]:
    """The headers of one webhook attempt, with the signature of this attempt's timestamp and the body."""
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Placewatch-Event": delivery.kind,
        "X-Placewatch-Delivery": delivery.idempotency_key,
        "Idempotency-Key": delivery.idempotency_key,
        "X-Placewatch-Attempt": str(delivery.attempts),
        "X-Placewatch-Timestamp": timestamp,
        "X-Placewatch-Signature": sign(secret, timestamp, body),
    }


def _where(delivery: store.Sending, *, address: bool = False) -> str:
    """The target as logs show it: a webhook without its query string (which may hold a token), an email by
    its rule rather than the address (unless address is asked for: the admins' summary)."""
    if delivery.channel == "webhook":
        url = urlsplit(delivery.target)
        return f"webhook {url.scheme}://{url.netloc}{url.path}"
    return f"email to {delivery.target}" if address else f"email ({delivery.rule})"


class NotificationEvaluator(Evaluator):
    """Routes outbox events into deliveries, sends what is due, retries with backoff and reports failures."""

    name = "notifications"

    def __init__(
        self,
        settings: Settings,
        *,
        rules: Sequence[Rule] | None = None,
        backoff: Sequence[timedelta] = BACKOFF,
        report_every: timedelta = REPORT_EVERY,
    ) -> None:
        self.settings = settings
        self.rules = list(rules) if rules is not None else load_rules(settings.notifications_file)
        if not backoff:
            raise ValueError("backoff needs at least one delay")
        self.backoff = tuple(backoff)
        self.report_every = report_every
        self.max_attempts = settings.notify_max_attempts
        self.interval_s = SWEEP_S
        # A claim outlives a slow send: the sender would have given up long before the lease ends.
        self.lease = timedelta(seconds=max(300.0, 4 * settings.webhook_timeout_s, 4 * SMTP_TIMEOUT_S))
        self._secrets = {r.to: r.secret for r in self.rules if r.channel == "webhook" and r.secret}
        self._lock = threading.Lock()
        self._bad_emails: set[str] = set()
        log.info(
            "notifications: %d rule(s) from the file, email %s",
            len(self.rules),
            f"via {settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host else "not configured",
        )

    # -- the evaluator: a sweep only (events arrive through the outbox, not with readings) ------------------

    def sweep(self, ctx: AlertContext) -> None:
        """Route new events, send due deliveries, and report failures."""
        with self._lock:
            now = ctx.now()
            self._expire(ctx, now)
            self.route(ctx, now)
            self.send_due(ctx)
            self.report(ctx, ctx.now())

    # -- the steps ---------------------------------------------------------------------------------------

    def route(self, ctx: AlertContext, now: datetime) -> int:
        """Fan every unrouted event out into deliveries; return how many events were routed."""
        total = 0
        while True:
            with ctx.pool.connection() as conn, conn.transaction():
                events = store.claim_unrouted(conn, limit=ROUTE_BATCH)
                if not events:
                    return total
                people = store.recipients(conn)
                for p in people:
                    if not valid_email(p.email) and p.name not in self._bad_emails:
                        self._bad_emails.add(p.name)
                        log.warning("user %s has an email that is not a plain address; they get no email", p.name)
                rules = effective_rules(self.rules, people)
                for ev in events:
                    targets = route(ev.kind, ev.audience, rules)
                    for t in targets:
                        store.add_delivery(
                            conn,
                            event_id=ev.event_id,
                            channel=t.channel,
                            target=t.to,
                            rule=t.source,
                            idempotency_key=delivery_key(ev.dedupe_key, t.channel, t.to),
                            due=now,
                        )
                    store.mark_routed(conn, ev.event_id, now=now, deliveries=len(targets))
                    if not targets:
                        log.warning(
                            "notification event %s (%s for %s) has no recipient: no user or rule covers it",
                            ev.event_id,
                            ev.kind,
                            ", ".join(ev.audience),
                        )
            total += len(events)
            if len(events) < ROUTE_BATCH:
                return total

    def send_due(self, ctx: AlertContext) -> int:
        """Attempt every due delivery once (up to SEND_BATCH); return how many were attempted."""
        skip: dict[str, set[str]] = {"target": set(), "channel": set()}
        mailer = Mailer(self.settings)
        client = httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False)
        attempted = 0
        try:
            with ctx.pool.connection() as conn:
                while attempted < SEND_BATCH:
                    now = ctx.now()
                    d = store.claim_due(
                        conn,
                        now=now,
                        lease_until=now + self.lease,
                        max_attempts=self.max_attempts,
                        skip_targets=sorted(skip["target"]),
                        skip_channels=sorted(skip["channel"]),
                    )
                    if d is None:
                        break
                    attempted += 1
                    try:
                        if d.channel == "email":
                            mailer.send(email_message(d, self.settings, now), d.target)
                        else:
                            self._post(client, d, now)
                    except SendError as exc:
                        if exc.breaks:
                            skip[exc.breaks[0]].add(exc.breaks[1])
                        self._attempt_failed(conn, d, exc.reason, ctx.now())
                    except Exception as exc:  # a bug must not leave the delivery claimed until the lease ends
                        log.exception("delivery %s: unexpected error", d.id)
                        self._attempt_failed(conn, d, f"internal error: {exc!r}", ctx.now())
                    else:
                        if store.mark_delivered(conn, delivery_id=d.id, attempt=d.attempts, now=ctx.now()):
                            log.info(
                                "delivery %s (%s) delivered by %s, attempt %d",
                                d.id,
                                d.kind,
                                _where(d),
                                d.attempts,
                            )
        finally:
            mailer.close()
            client.close()
        return attempted

    def report(self, ctx: AlertContext, now: datetime) -> int:
        """Summarise newly failed deliveries in one notify.failure event to the admins; return how many."""
        with ctx.pool.connection() as conn, conn.transaction():
            last = store.last_event_at(conn, FAILURE_KIND)
            if last is not None and timedelta(0) <= now - last < self.report_every:
                return 0
            failed = store.take_unreported_failures(conn, now=now)
            # A failed failure summary is logged and listed, but not summarised again: no loops.
            about = [f for f in failed if f.kind != FAILURE_KIND]
            if not about:
                return 0
            lines = [
                f'- {f.kind} "{_one_line(f.title, 100)}" by {_where(f, address=True)}: {f.last_error} '
                f"(delivery {f.id}, {f.attempts} attempt(s))"
                for f in about
            ]
            store.enqueue(
                conn,
                kind=FAILURE_KIND,
                subject="deliveries",
                audience=["role:admin"],
                title=f"Placewatch: {len(about)} notification(s) could not be delivered",
                body=(
                    "These notifications were not delivered after every retry. Nobody has been told by "
                    "these channels; please check the targets and tell the people concerned another way.\n\n"
                    + "\n".join(lines)
                    + "\n\nAll failures: GET /api/v1/notifications/deliveries?status=failed"
                ),
                payload={"deliveries": [f.id for f in about]},
                dedupe_key=f"{FAILURE_KIND}:{about[0].id}:{about[-1].id}:{len(about)}",
                now=now,
            )
        return len(about)

    # -- helpers -----------------------------------------------------------------------------------------

    def _post(self, client: httpx.Client, d: store.Sending, now: datetime) -> None:
        secret = self._secrets.get(d.target)
        if secret is None:
            raise SendError("no rule in the notifications file names this webhook now; not sent unsigned")
        body = webhook_body(d)
        try:
            r = client.post(d.target, content=body, headers=webhook_headers(d, body, secret, now))
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc or 'no answer'}", breaks=("target", d.target)) from None
        if not 200 <= r.status_code < 300:
            text = _one_line(r.text, 200) if r.content else ""
            broken = r.status_code >= 500 or r.status_code == 429
            raise SendError(
                f"HTTP {r.status_code}{': ' + text if text else ''}",
                breaks=("target", d.target) if broken else None,
            )

    def _attempt_failed(self, conn: Any, d: store.Sending, error: str, now: datetime) -> None:
        attempt = d.attempts
        retry_at = now + retry_delay(attempt, self.backoff) if attempt < self.max_attempts else None
        if not store.mark_attempt_failed(
            conn, delivery_id=d.id, attempt=attempt, now=now, error=error, retry_at=retry_at
        ):
            return
        if retry_at is None:
            log.error(
                'delivery %s (%s "%s") FAILED by %s after %d attempt(s): %s',
                d.id,
                d.kind,
                _one_line(d.title, 80),
                _where(d),
                attempt,
                error,
            )
        else:
            log.warning(
                "delivery %s (%s) by %s: attempt %d of %d failed (%s); retrying at %s",
                d.id,
                d.kind,
                _where(d),
                attempt,
                self.max_attempts,
                error,
                retry_at.isoformat(timespec="seconds"),
            )

    def _expire(self, ctx: AlertContext, now: datetime) -> None:
        with ctx.pool.connection() as conn, conn.transaction():
            for d in store.expire_exhausted(conn, now=now, max_attempts=self.max_attempts):
                log.error(
                    "delivery %s (%s) FAILED by %s after %d attempt(s): %s",
                    d.id,
                    d.kind,
                    _where(d),
                    d.attempts,
                    d.last_error,
                )
