-- Plain PostgreSQL: the current hour's rollup of each series kept in its series row.
--
-- The writer upserted one readings_hourly row per series and message: on a stream where each device sends once
-- every few minutes, every message's values were a row update there beside the series update that keeps the
-- latest value (10 of 47 PostgreSQL core-ms per 1,000 messages, bench.ingest_writer --compare). Now the same
-- series update keeps the newest hour's count, sum, min and max (hour_*); when a later hour arrives, the hour it
-- closes moves to readings_hourly_closed in the same statement (closed_*: what the update replaced, which
-- RETURNING can give), once per series and hour instead of once per message. Readings for hours before a series'
-- current hour (late, or a backlog spanning hours) are added to readings_hourly_closed as before.
--
-- readings_hourly is a view with the same columns as the table it replaces: the closed hours and each series'
-- current hour. Readers are unchanged; what loads hourly means directly (benchmarks, tests) writes
-- readings_hourly_closed. A series' current hour is never also in readings_hourly_closed (store/writer.py).
-- TimescaleDB keeps its own continuous aggregate (migrations 0002, 0015) and has none of this.

ALTER TABLE readings_hourly RENAME TO readings_hourly_closed;
ALTER INDEX readings_hourly_pkey RENAME TO readings_hourly_closed_pkey;

ALTER TABLE series
    ADD COLUMN hour_start timestamptz, ADD COLUMN hour_n bigint, ADD COLUMN hour_total double precision,
    ADD COLUMN hour_min double precision, ADD COLUMN hour_max double precision,
    ADD COLUMN closed_hour timestamptz, ADD COLUMN closed_n bigint, ADD COLUMN closed_total double precision,
    ADD COLUMN closed_min double precision, ADD COLUMN closed_max double precision;

-- Each series' newest hour moves from the table into its row.
WITH newest AS (
    DELETE FROM readings_hourly_closed h
    USING (SELECT DISTINCT ON (series_id) series_id, hour FROM readings_hourly_closed ORDER BY series_id, hour DESC) x
    WHERE h.series_id = x.series_id AND h.hour = x.hour
    RETURNING h.series_id, h.hour, h.n, h.total, h.vmin, h.vmax
)
UPDATE series s SET hour_start = x.hour, hour_n = x.n, hour_total = x.total, hour_min = x.vmin, hour_max = x.vmax
FROM newest x WHERE s.id = x.series_id;

CREATE VIEW readings_hourly AS
SELECT series_id, hour, n, total, vmin, vmax FROM readings_hourly_closed
UNION ALL
SELECT id, hour_start, hour_n, hour_total, hour_min, hour_max FROM series WHERE hour_n > 0;

COMMENT ON VIEW readings_hourly IS
    'Hourly count, sum, min and max of each series: closed hours (readings_hourly_closed) and each series'' current hour (series.hour_*).';
