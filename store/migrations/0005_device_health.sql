-- Device health problems: open while the problem lasts, closed when it is gone (kept as history).
CREATE TABLE device_problems (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    code        text NOT NULL,
    message     text NOT NULL,
    team        text NOT NULL,
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    closed_at   timestamptz
);
CREATE UNIQUE INDEX device_problems_open ON device_problems (device_id, code) WHERE closed_at IS NULL;
CREATE INDEX device_problems_device ON device_problems (device_id, opened_at DESC);
