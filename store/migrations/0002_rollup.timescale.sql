-- TimescaleDB: the only Timescale-specific SQL in Placewatch. Hypertable, compression,
-- an hourly continuous aggregate (same columns as the native rollup) and, optionally, retention.

SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days', migrate_data => true);

ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id',
                          timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('readings', interval '14 days');

CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous) AS
SELECT series_id, time_bucket(interval '1 hour', ts) AS hour,
       count(value) AS n, sum(value) AS total, min(value) AS vmin, max(value) AS vmax
FROM readings GROUP BY series_id, time_bucket(interval '1 hour', ts)
WITH NO DATA;
ALTER MATERIALIZED VIEW readings_hourly SET (timescaledb.materialized_only = false);
SELECT add_continuous_aggregate_policy('readings_hourly', start_offset => NULL,
       end_offset => interval '1 hour', schedule_interval => interval '5 minutes');
