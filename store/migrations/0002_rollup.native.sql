-- Plain PostgreSQL: a BRIN index on time for range scans and an hourly rollup kept by the writer.

CREATE INDEX readings_ts_brin ON readings USING brin (ts) WITH (pages_per_range = 32);

CREATE TABLE readings_hourly (
    series_id  integer NOT NULL,
    hour       timestamptz NOT NULL,
    n          bigint NOT NULL,
    total      double precision,
    vmin       double precision,
    vmax       double precision,
    PRIMARY KEY (series_id, hour)
);
