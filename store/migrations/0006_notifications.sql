-- Notifications: an outbox of events, written in the same transaction as the decision or case change that
-- caused them, and one delivery per channel and target, sent and retried by alerts/notify.py. Plain PostgreSQL.

-- The outbox. dedupe_key makes recording idempotent: the same event is never recorded (nor sent) twice.
CREATE TABLE notification_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,              -- gritting.decision, gritting.escalation, damp.case, ...
    subject     text NOT NULL,              -- what it is about: a route, case, home or device id
    audience    text[] NOT NULL CHECK (cardinality(audience) > 0),  -- team:highways, patch:P, home:H, user:N
    title       text NOT NULL,
    body        text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    routed_at   timestamptz,                -- NULL until fanned out into deliveries
    deliveries  integer                     -- how many deliveries routing made (0: nobody is configured)
);
CREATE INDEX notification_events_unrouted ON notification_events (id) WHERE routed_at IS NULL;
CREATE INDEX notification_events_kind ON notification_events (kind, created_at DESC);

-- One message to one target. idempotency_key is sent with every attempt, so a receiver can drop repeats.
CREATE TABLE notification_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         bigint NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target           text NOT NULL,          -- an email address or a webhook URL
    rule             text NOT NULL,          -- which routing rule chose it: 'user:NAME' or 'file entry N'
    idempotency_key  text NOT NULL UNIQUE,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,   -- when pending: due time; when sending: end of the claim's lease
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    reported_at      timestamptz,            -- when a failure was reported to the admins
    UNIQUE (event_id, channel, target)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'sending');
CREATE INDEX notification_deliveries_unreported ON notification_deliveries (id)
    WHERE status = 'failed' AND reported_at IS NULL;
CREATE INDEX notification_deliveries_event ON notification_deliveries (event_id);
CREATE INDEX notification_deliveries_status ON notification_deliveries (status, id DESC);
