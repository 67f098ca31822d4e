-- What each device's retained alert (placewatch/v1/alerts/device/{id}) last told: the ids of the open problems it
-- listed ('{}': cleared). A device whose open problems differ from these is published again on the next sweep, so
-- an alert whose publish failed (broker away) is retried rather than lost until the device's problems change.
-- Starts empty: the first sweep after this migration republishes the alert of every device with open problems.
CREATE TABLE device_alert_state (
    device_id           text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    published_problems  bigint[] NOT NULL,
    published_at        timestamptz NOT NULL
);
