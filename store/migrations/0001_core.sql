-- Devices, series, readings, dead letters, the registry, users.

CREATE TABLE devices (
    id                  text PRIMARY KEY,
    kind                text NOT NULL DEFAULT 'unknown',
    name                text,
    model               text,
    format              text,
    home_id             text,
    room                text,
    expected_interval_s integer CHECK (expected_interval_s IS NULL OR expected_interval_s > 0),
    geometry            jsonb,
    properties          jsonb NOT NULL DEFAULT '{}'::jsonb,
    source              text NOT NULL DEFAULT 'registry' CHECK (source IN ('registry', 'auto')),
    status              text CHECK (status IN ('online', 'offline')),
    status_at           timestamptz,
    last_seen           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One row per (device, metric): readings refer to it by a small integer, and it keeps the latest value.
CREATE TABLE series (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    metric      text NOT NULL,
    last_ts     timestamptz,
    last_value  double precision,
    last_label  text,
    UNIQUE (device_id, metric)
);

-- Keyed by (series, time): a re-delivered message never doubles a row.
CREATE TABLE readings (
    series_id  integer NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision,
    label      text,
    PRIMARY KEY (series_id, ts)
);

CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    device_id    text,
    format       text
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_device ON dead_letters (device_id, received_at DESC) WHERE device_id IS NOT NULL;

-- Time windows that late or out-of-order readings touched, for the rules to re-evaluate.
CREATE TABLE late_windows (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id  text NOT NULL,
    start_ts   timestamptz NOT NULL,
    end_ts     timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE depots (
    id                    text PRIMARY KEY,
    name                  text,
    mobilisation_minutes  integer NOT NULL DEFAULT 60,
    geometry              jsonb
);

CREATE TABLE routes (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    priority              integer NOT NULL DEFAULT 1,
    treatment_minutes     integer NOT NULL DEFAULT 180,
    mobilisation_minutes  integer NOT NULL DEFAULT 60,
    depot                 text,
    geometry              jsonb,
    properties            jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE route_stations (
    route_id   text NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    device_id  text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    PRIMARY KEY (route_id, device_id)
);
CREATE INDEX route_stations_device ON route_stations (device_id);

CREATE TABLE homes (
    id          text PRIMARY KEY,
    address     text,
    patch       text,
    geometry    jsonb,
    outdoor     text,
    properties  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX homes_patch ON homes (patch);

CREATE TABLE registry_loads (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    sha256     text NOT NULL,
    features   integer NOT NULL,
    changed    integer NOT NULL,
    loaded_by  text
);

CREATE TABLE users (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'highways', 'officer', 'tenant')),
    home_id        text,
    patch          text,
    email          text,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
