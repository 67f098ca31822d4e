"""Notifications through the real path: events recorded in PostgreSQL, routed and sent by the dispatcher to a
real SMTP server (aiosmtpd) and a real HTTP webhook receiver that checks the HMAC signature, with retries
driven by a controllable clock, and failures visible through the HTTP API."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from alerts.context import AlertContext
from alerts.health import DeviceHealthEvaluator
from alerts.notify import NotificationEvaluator
from alerts.publisher import AlertPublisher
from placewatch.embedded import free_port
from placewatch.settings import Settings
from store import notifications, users
from store.db import connect, open_pool
from tests.helpers import home, load, sensor, station

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-the-tests-0123456789"


# -- real services: an SMTP server and a webhook receiver ------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[tuple[str, ...], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((tuple(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str, containing: str = "") -> list[email.message.EmailMessage]:
        """Messages for this address whose subject contains the text."""
        return [m for rcpts, m in self.messages if address in rcpts and containing in str(m["Subject"])]


class Receiver:
    """A webhook receiver over real HTTP: checks the signature, records requests, fails when told to."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: dict[str, int] = {}  # path -> failures still to give (-1: always)
        self.delay_s = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ts = self.headers.get("X-Placewatch-Timestamp", "")
                expected = "sha256=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(expected, self.headers.get("X-Placewatch-Signature", ""))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "signed": signed}
                    )
                    left = receiver.failures.get(self.path, 0)
                    if left > 0:
                        receiver.failures[self.path] = left - 1
                time.sleep(receiver.delay_s)
                code = 401 if not signed else 503 if left else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[dict[str, Any]]:
        """Requests received on this path."""
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on loopback."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A real HTTP webhook receiver on loopback."""
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[Any]:
    """A connection pool like the scheduler's."""
    p = open_pool(database_url, max_size=6)
    yield p
    p.close()


@pytest.fixture(scope="module")
def alert_publisher(mqtt_broker: Any) -> Iterator[AlertPublisher]:
    """The scheduler's MQTT publisher (the AlertContext carries one)."""
    pub = AlertPublisher(mqtt_broker.url, protocol=mqtt_broker.protocol, prefix="placewatch/v1")
    yield pub
    pub.close()


class Clock:
    """A clock the test moves. It starts a month ahead, at 03:00 UTC, so nothing else in the run's database is
    due at the same moments, and because the duty officer must hear about the roads at night."""

    def __init__(self) -> None:
        day = (datetime.now(UTC) + timedelta(days=31)).date()
        self.at = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(database_url, mqtt_broker, smtp, pool, alert_publisher, clock, tmp_path) -> Any:
    """Build a dispatcher (settings, optional rules file) and its AlertContext on the test's clock."""

    def build(rules: list[dict[str, Any]] | None = None, **settings: Any) -> tuple[NotificationEvaluator, AlertContext]:
        path = None
        if rules is not None:
            path = tmp_path / f"rules-{len(list(tmp_path.iterdir()))}.json"
            path.write_text(json.dumps(rules, indent=2))
        values = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_starttls": False,
            "smtp_from": "Placewatch <placewatch@council.example>",
            **settings,
        }
        s = Settings(
            database_url=database_url,
            mqtt_url=mqtt_broker.url,
            mqtt_protocol=mqtt_broker.protocol,
            notifications_file=path,
            **values,
        )
        evaluator = NotificationEvaluator(s, report_every=timedelta(0))
        return evaluator, AlertContext(settings=s, pool=pool, publisher=alert_publisher, now=clock)

    return build


def add_user(dsn: str, name: str, role: str, **scope: str | None) -> str:
    """A user with an email; returns the address."""
    address = f"{name}@council.example"
    with connect(dsn, autocommit=True) as conn:
        users.add_user(conn, name=name, password_hash="!", role=role, email=address, **scope)
    return address


def enqueue(dsn: str, **event: Any) -> int | None:
    """Record an event as an evaluator would, in its own committed transaction."""
    with connect(dsn) as conn:
        return notifications.enqueue(conn, **event)


def deliveries(dsn: str, event_id: int) -> list[notifications.DeliveryRow]:
    with connect(dsn) as conn:
        return notifications.deliveries(conn, event_id=event_id)


# -- the tests ---------------------------------------------------------------------------------------------------


def test_each_person_gets_what_their_role_and_scope_cover_by_email_even_at_three_in_the_morning(
    database_url, smtp, make, uid
):
    box, _ = smtp
    hw = add_user(database_url, f"duty-{uid}", "highways")
    oa = add_user(database_url, f"officer-a-{uid}", "officer", patch=f"A-{uid}")
    ob = add_user(database_url, f"officer-b-{uid}", "officer", patch=f"B-{uid}")
    t1 = add_user(database_url, f"tenant-1-{uid}", "tenant", home_id=f"H1-{uid}")
    t2 = add_user(database_url, f"tenant-2-{uid}", "tenant", home_id=f"H2-{uid}")
    admin = add_user(database_url, f"admin-{uid}", "admin")
    evaluator, ctx = make()
    grit = enqueue(
        database_url,
        kind="gritting.decision",
        subject=f"R-{uid}",
        audience=["team:highways"],
        title=f"Route R-{uid}: salt at 10 g/m² by 05:00",
        body="Road surface 0.4 °C and falling; wet.\n\nCall out the crews by 04:00.",
        payload={"route_id": f"R-{uid}", "action": "salt", "spread_rate_g_m2": 10},
        dedupe_key=f"gritting.decision:{uid}",
    )
    case = enqueue(
        database_url,
        kind="damp.case",
        subject=f"case-{uid}",
        audience=[f"patch:A-{uid}", f"home:H1-{uid}"],
        title=f"Damp case opened for H1-{uid}",
        body="Relative humidity above 80 % in the bedroom for 9 days.",
        dedupe_key=f"damp.case:{uid}",
    )
    enqueue(
        database_url,
        kind="damp.advice",
        subject=f"H1-{uid}",
        audience=[f"home:H1-{uid}"],
        title=f"Advice for your home H1-{uid}",
        body="Open the bedroom window for ten minutes each morning.",
        dedupe_key=f"damp.advice:{uid}",
    )
    assert ctx.now().hour == 3

    evaluator.sweep(ctx)

    [grit_mail] = box.to(hw, f"Route R-{uid}")
    assert grit_mail["From"] == "Placewatch <placewatch@council.example>"
    assert grit_mail["Auto-Submitted"] == "auto-generated"
    assert grit_mail["X-Placewatch-Event"] == "gritting.decision"
    plain = grit_mail.get_body(("plain",)).get_content()
    assert "Call out the crews by 04:00." in plain and "Placewatch user duty-" in plain
    assert "<h2>Route R-" in grit_mail.get_body(("html",)).get_content()
    [grit_delivery] = deliveries(database_url, grit)
    assert grit_delivery.status == "delivered" and grit_delivery.rule == f"user:duty-{uid}"
    assert grit_mail["X-Placewatch-Delivery"] == grit_delivery.idempotency_key

    assert len(box.to(oa, f"Damp case opened for H1-{uid}")) == 1
    assert box.to(ob, uid) == []  # another patch
    assert {str(m["Subject"]) for m in box.to(t1, uid)} == {
        f"Damp case opened for H1-{uid}",
        f"Advice for your home H1-{uid}",
    }
    assert box.to(t2, uid) == []  # someone else's home
    assert box.to(admin, uid) == []  # admins get no domain events by default
    assert {d.target for d in deliveries(database_url, case)} == {oa, t1}


def test_a_webhook_that_fails_twice_gets_the_same_signed_delivery_three_times_and_it_ends_delivered(
    database_url, receiver, make, clock, uid, monkeypatch
):
    path = f"/hooks/flaky-{uid}"
    receiver.failures[path] = 2
    monkeypatch.setenv("PW_TEST_HOOK_SECRET", SECRET)
    evaluator, ctx = make(
        [
            {
                "audience": f"team:control-room-{uid}",
                "kinds": ["gritting.*"],
                "channel": "webhook",
                "to": receiver.url + path,
                "secret": "env:PW_TEST_HOOK_SECRET",
            }
        ]
    )
    event = enqueue(
        database_url,
        kind="gritting.escalation",
        subject=f"R-{uid}",
        audience=[f"team:control-room-{uid}"],
        title=f"Route R-{uid} not acknowledged: escalated",
        body="Nobody acknowledged the 04:00 call-out.",
        payload={"route_id": f"R-{uid}", "decision_id": 7},
        dedupe_key=f"gritting.escalation:{uid}",
    )
    t0 = clock()
    evaluator.sweep(ctx)
    assert len(receiver.to(path)) == 1
    [d] = deliveries(database_url, event)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 1, t0 + timedelta(seconds=30))
    assert d.last_error == "HTTP 503"

    clock.advance(seconds=20)
    evaluator.sweep(ctx)  # not due yet
    assert len(receiver.to(path)) == 1
    clock.advance(seconds=11)
    evaluator.sweep(ctx)
    assert len(receiver.to(path)) == 2
    clock.advance(minutes=2)
    evaluator.sweep(ctx)

    got = receiver.to(path)
    assert len(got) == 3
    [d] = deliveries(database_url, event)
    assert (d.status, d.attempts) == ("delivered", 3)
    assert all(r["signed"] for r in got)
    keys = {r["headers"]["Idempotency-Key"] for r in got}
    assert keys == {d.idempotency_key} == {r["headers"]["X-Placewatch-Delivery"] for r in got}
    assert [r["headers"]["X-Placewatch-Attempt"] for r in got] == ["1", "2", "3"]
    assert {r["body"] for r in got} == {got[0]["body"]}  # the same JSON every time; only the signature moves
    assert got[2]["headers"]["X-Placewatch-Timestamp"] == str(int(clock().timestamp()))
    assert got[0]["headers"]["X-Placewatch-Event"] == "gritting.escalation"
    body = json.loads(got[0]["body"])
    assert body["event"] == "gritting.escalation" and body["delivery"] == d.idempotency_key
    assert body["created_at"].endswith("Z")  # the one time format: UTC with a Z
    assert body["payload"] == {"route_id": f"R-{uid}", "decision_id": 7}
    assert body["title"] == f"Route R-{uid} not acknowledged: escalated"

    clock.advance(hours=3)
    evaluator.sweep(ctx)
    assert len(receiver.to(path)) == 3  # delivered means never again


def test_a_webhook_that_always_fails_ends_failed_is_logged_listed_and_reported_to_admins(
    database_url, receiver, smtp, make, clock, api_url, token_for, uid, caplog
):
    box, _ = smtp
    admin = add_user(database_url, f"admin-{uid}", "admin")
    path = f"/hooks/down-{uid}"
    receiver.failures[path] = -1
    evaluator, ctx = make(
        [
            {
                "audience": f"patch:P-{uid}",
                "kinds": ["damp.*"],
                "channel": "webhook",
                "to": receiver.url + path,
                "secret": SECRET,
            }
        ],
        notify_max_attempts=3,
    )
    event = enqueue(
        database_url,
        kind="damp.overdue",
        subject=f"case-{uid}",
        audience=[f"patch:P-{uid}"],
        title=f"Case {uid}: investigation overdue",
        body="The investigation was due yesterday.",
        dedupe_key=f"damp.overdue:{uid}",
    )
    with caplog.at_level(logging.WARNING, logger="placewatch.alerts.notify"):
        evaluator.sweep(ctx)
        clock.advance(seconds=30)
        evaluator.sweep(ctx)
        clock.advance(minutes=2)
        evaluator.sweep(ctx)
    assert len(receiver.to(path)) == 3
    [d] = deliveries(database_url, event)
    assert (d.status, d.attempts, d.last_error) == ("failed", 3, "HTTP 503")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"delivery {d.id} " in m and "FAILED" in m and path in m for m in errors)

    clock.advance(hours=5)
    evaluator.sweep(ctx)  # sends the admins' summary, and never tries the failed delivery again
    assert len(receiver.to(path)) == 3
    [summary] = box.to(admin, "could not be delivered")
    text = summary.get_body(("plain",)).get_content()
    assert f"Case {uid}: investigation overdue" in text and path in text and "HTTP 503" in text

    r = httpx.get(
        f"{api_url}/api/v1/notifications/deliveries",
        params={"status": "failed", "kind": "damp.overdue"},
        headers=token_for("admin"),
    )
    assert r.status_code == 200
    [listed] = [x for x in r.json() if x["event_id"] == event]
    assert (listed["status"], listed["attempts"], listed["last_error"]) == ("failed", 3, "HTTP 503")
    assert listed["target"] == receiver.url + path and listed["reported_at"] is not None
    assert listed["next_attempt_at"] is None  # failed: no next attempt (the stored time is only for pending ones)
    assert listed["created_at"].endswith("Z") and listed["reported_at"].endswith("Z")
    officer = token_for("officer", patch=f"P-{uid}")
    assert httpx.get(f"{api_url}/api/v1/notifications/deliveries", headers=officer).status_code == 403


def test_the_same_event_recorded_twice_is_sent_once(database_url, smtp, make, clock, uid):
    box, _ = smtp
    name = f"duty-{uid}"
    address = add_user(database_url, name, "highways")
    evaluator, ctx = make()
    event = {
        "kind": "gritting.decision",
        "subject": f"R-{uid}",
        "audience": [f"user:{name}"],
        "title": f"Once only {uid}",
        "body": "Salt by 05:00.",
        "dedupe_key": f"gritting.decision:once:{uid}",
    }
    first = enqueue(database_url, **event)
    assert first is not None
    assert enqueue(database_url, **event) is None
    evaluator.sweep(ctx)
    assert enqueue(database_url, **event) is None  # an evaluator re-running after the send
    clock.advance(minutes=5)
    evaluator.sweep(ctx)
    assert len(box.to(address, f"Once only {uid}")) == 1
    assert len(deliveries(database_url, first)) == 1


def test_an_event_whose_transaction_rolls_back_is_never_sent(database_url, smtp, make, uid):
    box, _ = smtp
    name = f"duty-{uid}"
    address = add_user(database_url, name, "highways")
    evaluator, ctx = make()
    with connect(database_url) as conn:
        notifications.enqueue(
            conn,
            kind="gritting.decision",
            subject="R",
            audience=[f"user:{name}"],
            title=f"Never {uid}",
            body="This decision was rolled back.",
            dedupe_key=f"rolled-back:{uid}",
        )
        conn.rollback()
    evaluator.sweep(ctx)
    assert box.to(address, uid) == []


def test_two_dispatchers_at_once_never_send_the_same_delivery(database_url, receiver, make, clock, uid):
    path = f"/hooks/busy-{uid}"
    rules = [
        {
            "audience": f"team:busy-{uid}",
            "kinds": ["*"],
            "channel": "webhook",
            "to": receiver.url + path,
            "secret": SECRET,
        }
    ]
    first, ctx = make(rules)
    second, _ = make(rules)
    for i in range(40):
        enqueue(
            database_url,
            kind="device.problem",
            subject=f"dev-{i}",
            audience=[f"team:busy-{uid}"],
            title=f"Device {i}",
            body="stale",
            dedupe_key=f"busy:{uid}:{i}",
        )
    first.route(ctx, clock())
    receiver.delay_s = 0.01
    attempted: dict[str, int] = {}
    try:
        threads = [
            threading.Thread(target=lambda ev=ev, n=n: attempted.__setitem__(n, ev.send_due(ctx)))
            for n, ev in (("first", first), ("second", second))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        receiver.delay_s = 0.0
    assert attempted["first"] > 0 and attempted["second"] > 0  # both really were sending
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.to(path)]
    assert len(keys) == 40 and len(set(keys)) == 40


def test_email_that_cannot_be_sent_is_retried_not_dropped_and_keeps_its_key(database_url, smtp, make, clock, uid):
    box, _ = smtp
    name = f"duty-{uid}"
    address = add_user(database_url, name, "highways")
    events = [
        enqueue(
            database_url,
            kind="gritting.decision",
            subject=f"R{i}-{uid}",
            audience=[f"user:{name}"],
            title=f"Route R{i}-{uid}: salt",
            body="Salt by 05:00.",
            dedupe_key=f"smtp-down:{uid}:{i}",
        )
        for i in range(2)
    ]
    down, ctx = make(smtp_port=free_port())  # nothing listens there
    down.sweep(ctx)
    first, second = (deliveries(database_url, e)[0] for e in events)
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error.startswith("mail server 127.0.0.1:")
    assert (second.status, second.attempts) == ("pending", 0)  # not tried again in the same sweep
    unconfigured, ctx = make(smtp_host="")
    clock.advance(seconds=30)
    unconfigured.sweep(ctx)
    second = deliveries(database_url, events[1])[0]  # the longest due goes first; then email stops for the sweep
    assert (second.attempts, second.last_error) == (1, "email is not configured: set PLACEWATCH_SMTP_HOST")
    assert deliveries(database_url, events[0])[0].attempts == 1

    working, ctx = make()
    clock.advance(minutes=2)
    working.sweep(ctx)
    for event in events:
        [d] = deliveries(database_url, event)
        assert d.status == "delivered"
        [msg] = box.to(address, d.title)
        assert msg["X-Placewatch-Delivery"] == d.idempotency_key


def test_a_delivery_claimed_by_a_dispatcher_that_died_is_sent_again_after_its_lease(
    database_url, receiver, make, clock, uid
):
    path = f"/hooks/orphan-{uid}"
    evaluator, ctx = make(
        [
            {
                "audience": f"team:o-{uid}",
                "kinds": ["*"],
                "channel": "webhook",
                "to": receiver.url + path,
                "secret": SECRET,
            }
        ]
    )
    event = enqueue(
        database_url,
        kind="gritting.decision",
        subject="R",
        audience=[f"team:o-{uid}"],
        title="Orphan",
        body="b",
        dedupe_key=f"orphan:{uid}",
    )
    evaluator.route(ctx, clock())
    with connect(database_url) as conn:  # a dispatcher claims it, then dies before sending
        claimed = notifications.claim_due(
            conn, now=clock(), lease_until=clock() + evaluator.lease, max_attempts=6, skip_targets=[], skip_channels=[]
        )
    assert claimed is not None and claimed.event_id == event
    evaluator.sweep(ctx)
    assert receiver.to(path) == []  # still leased to the other dispatcher
    clock.advance(seconds=evaluator.lease.total_seconds() + 1)
    evaluator.sweep(ctx)
    [req] = receiver.to(path)
    assert req["headers"]["X-Placewatch-Attempt"] == "2"
    assert deliveries(database_url, event)[0].status == "delivered"


def test_a_device_problem_goes_to_the_team_that_looks_after_the_device(
    database_url, smtp, make, pool, alert_publisher, uid
):
    box, _ = smtp
    hw = add_user(database_url, f"duty-{uid}", "highways")
    oa = add_user(database_url, f"officer-a-{uid}", "officer", patch=f"A-{uid}")
    ob = add_user(database_url, f"officer-b-{uid}", "officer", patch=f"B-{uid}")
    load(database_url, station(f"rs-{uid}"), home(f"H-{uid}", patch=f"A-{uid}"), sensor(f"hs-{uid}", f"H-{uid}"))
    settings = Settings(database_url=database_url)
    health_ctx = AlertContext(settings=settings, pool=pool, publisher=alert_publisher)
    DeviceHealthEvaluator(settings).sweep(health_ctx)  # neither device has ever sent a message
    DeviceHealthEvaluator(settings).sweep(health_ctx)  # still the same problems: no new notification
    evaluator, ctx = make()
    evaluator.sweep(ctx)
    [road] = box.to(hw, f"Device rs-{uid}")
    assert "never sent a message" in road.get_body(("plain",)).get_content()
    assert len(box.to(oa, f"Device hs-{uid}")) == 1
    assert box.to(oa, f"Device rs-{uid}") == [] and box.to(ob, uid) == [] and box.to(hw, f"Device hs-{uid}") == []
    for dev in (f"rs-{uid}", f"hs-{uid}"):  # clear the retained alerts this test left
        alert_publisher.publish("device", dev, None)


def test_admins_see_the_effective_routing_and_can_send_a_test(database_url, smtp, make, api_url, token_for, uid):
    box, _ = smtp
    name = f"officer-{uid}"
    address = add_user(database_url, name, "officer", patch=f"P-{uid}")
    admin = token_for("admin")
    rules = httpx.get(f"{api_url}/api/v1/notifications/rules", headers=admin).json()
    mine = [r for r in rules["rules"] if r["source"] == f"user:{name}"]
    assert {(r["audience"], tuple(r["kinds"])) for r in mine} == {
        (f"user:{name}", ("*",)),
        (f"patch:P-{uid}", ("damp.*", "device.problem")),
    }
    assert rules["retry"]["backoff_s"] == [30, 120, 600, 1800, 7200]

    r = httpx.post(
        f"{api_url}/api/v1/notifications/test",
        json={"audience": f"patch:P-{uid}", "kind": "damp.case", "title": f"Test {uid}"},
        headers=admin,
    )
    assert r.status_code == 202, r.text
    assert r.json()["routes"] == [{"channel": "email", "to": address, "rule": f"user:{name}"}]
    evaluator, ctx = make()
    evaluator.sweep(ctx)
    [msg] = box.to(address, f"Test {uid}")
    assert "This is a test" in msg.get_body(("plain",)).get_content()
    bad = httpx.post(f"{api_url}/api/v1/notifications/test", json={"audience": "everyone"}, headers=admin)
    assert bad.status_code == 422
