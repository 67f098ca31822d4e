-- Closed days of the hourly rollup packed one row per series and UTC day (store/hourly_days.py): the damp
-- sweep reads 30 of them per sensor instead of 720 rollup rows. Filled by the scheduler's leader on plain
-- PostgreSQL; on TimescaleDB it stays empty and readers read the continuous aggregate.
CREATE TABLE hourly_days (
    series_id integer NOT NULL,
    day       date NOT NULL,      -- UTC
    means     bytea,              -- 24 big-endian float8, NaN for an hour without readings; NULL: stale, repack
    version   integer NOT NULL DEFAULT 0,  -- raised by every stale mark, so a packing never overwrites one
    PRIMARY KEY (series_id, day)
);
CREATE INDEX hourly_days_stale ON hourly_days (day) WHERE means IS NULL;

-- The days packed: every day in [first_day, last_day] has a row for each series with readings that day.
CREATE TABLE hourly_days_state (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    first_day date NOT NULL,
    last_day  date NOT NULL
);
