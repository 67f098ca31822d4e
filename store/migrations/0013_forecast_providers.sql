-- Road weather forecasts fetched from providers (alerts/forecast_fetch.py): each provider's state for the page and
-- /metrics, each station's hourly forecast weather as last fetched (kept: its cloud is what the road-minus-air fit
-- is classed by), and the fitted road-minus-air offsets (core/gritting/road_from_air.py).

CREATE TABLE forecast_provider_status (
    provider              text PRIMARY KEY,
    last_attempt_at       timestamptz NOT NULL,
    last_success_at       timestamptz,
    last_error            text,
    last_error_at         timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    attempts              bigint NOT NULL DEFAULT 0,
    failures              bigint NOT NULL DEFAULT 0,
    stations              integer NOT NULL DEFAULT 0,   -- asked for in the last attempt
    stations_failed       integer NOT NULL DEFAULT 0,   -- of them, without a usable answer
    routes                integer NOT NULL DEFAULT 0,   -- given a forecast by the last attempt
    last_issued_at        timestamptz                   -- the issue time of the last forecast stored
);

CREATE TABLE forecast_hours (
    station_id        text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    valid_at          timestamptz NOT NULL,  -- the hour starting here
    provider          text NOT NULL,
    fetched_at        timestamptz NOT NULL,
    air_temperature   double precision NOT NULL,
    dew_point         double precision,
    cloud_cover       double precision,
    wind_speed        double precision,
    precipitation_mm  double precision,
    snow_mm           double precision,
    precipitation     text,
    road_surface_temperature double precision,  -- derived
    PRIMARY KEY (station_id, valid_at)
);

CREATE TABLE road_offsets (
    station_id  text PRIMARY KEY,  -- '*': the pooled fit of every station
    fitted_at   timestamptz NOT NULL,
    hours       integer NOT NULL,
    cells       jsonb NOT NULL     -- [[local hour, cloud class or "any", road minus air degC, hours], ...]
);
