-- TimescaleDB: every reader of hourly data sees every committed reading at once, late and re-sent ones too.
--
-- The continuous aggregate materialises as before, renamed readings_hourly_cagg (materialised rows only), and
-- readings_hourly becomes a view with the same columns: the materialised hours where the aggregate is current,
-- and the hours computed from raw readings where it may not be (readings_hourly_stale): above its watermark (what
-- real-time aggregation does) and in the ranges written since they were materialised. Those ranges are
-- TimescaleDB's own invalidation logs, which it writes in the transaction that writes the readings and empties in
-- the transaction that materialises them, so a reader sees the readings and the ranges of one snapshot.
-- Raw chunks dropped by retention are no range: their materialised hours stay.
--
-- The only place Placewatch reads TimescaleDB's catalog: tests/integration/test_timescale.py checks it against
-- the raw readings, so an upgrade of TimescaleDB that changes it fails the suite rather than hiding data.

ALTER MATERIALIZED VIEW readings_hourly RENAME TO readings_hourly_cagg;
ALTER MATERIALIZED VIEW readings_hourly_cagg SET (timescaledb.materialized_only = true);

-- TimescaleDB's internal time of a timestamptz (microseconds since 1970), with its sentinels beyond the
-- timestamptz range read as the infinities.
CREATE FUNCTION readings_hourly_time(v bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN v <= -210866803200000000 THEN '-infinity'::timestamptz
                WHEN v >= 9222424646400000000 THEN 'infinity'::timestamptz
                ELSE timestamptz 'epoch' + v * interval '1 microsecond' END
$$;

-- The hours as hour-aligned, disjoint ranges [lo, hi) that cover all time, in order: `stale` where
-- readings_hourly_cagg may not hold what the raw readings say, else current. A few rows. A PL/pgSQL function, so
-- the planner sees a small set (ROWS 3) and reads the aggregate and raw readings by index, range by range, and
-- its plan is made once a session.
CREATE FUNCTION readings_hourly_ranges() RETURNS TABLE (lo timestamptz, hi timestamptz, stale boolean)
LANGUAGE plpgsql STABLE ROWS 3 AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH cagg AS (
        SELECT c.mat_hypertable_id AS mat, c.raw_hypertable_id AS raw
        FROM _timescaledb_catalog.continuous_agg c
        WHERE c.user_view_schema = current_schema() AND c.user_view_name = 'readings_hourly_cagg'
    ), logged AS (  -- internal times: [lowest, greatest] inclusive, microseconds since 1970
        SELECT l.lowest_modified_value AS lo, l.greatest_modified_value AS hi
        FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l JOIN cagg ON l.hypertable_id = cagg.raw
        UNION ALL
        SELECT m.lowest_modified_value, m.greatest_modified_value
        FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log m JOIN cagg ON m.materialization_id = cagg.mat
    ), hours AS (
        SELECT time_bucket(interval '1 hour', readings_hourly_time(lo)) AS lo,
               time_bucket(interval '1 hour', readings_hourly_time(hi)) + interval '1 hour' AS hi
        FROM logged
        UNION ALL
        SELECT coalesce(readings_hourly_time(_timescaledb_functions.cagg_watermark(cagg.mat)), '-infinity'), 'infinity'
        FROM cagg
    ), kept AS (  -- raw readings begin at the oldest chunk retention has not dropped
        SELECT coalesce(min(c.range_start), 'infinity') AS since
        FROM timescaledb_information.chunks c
        WHERE c.hypertable_schema = current_schema() AND c.hypertable_name = 'readings'
    ), starts AS (
        SELECT lo, hi, CASE WHEN lo <= max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                            THEN 0 ELSE 1 END AS starts
        FROM hours
    ), islands AS (
        SELECT lo, hi, sum(starts) OVER (ORDER BY lo, hi) AS island FROM starts
    ), stale AS (
        SELECT greatest(min(i.lo), kept.since) AS lo, max(i.hi) AS hi
        FROM islands i CROSS JOIN kept
        GROUP BY i.island, kept.since
        HAVING greatest(min(i.lo), kept.since) < max(i.hi)
    ), ranges AS (
        SELECT s.lo, s.hi, true AS stale FROM stale s
        UNION ALL  -- the gaps before, between and after them: current
        SELECT coalesce(lag(s.hi) OVER (ORDER BY s.lo), '-infinity'), s.lo, false FROM stale s
        UNION ALL
        SELECT coalesce(max(s.hi), '-infinity'), 'infinity', false FROM stale s
    )
    SELECT r.lo, r.hi, r.stale FROM ranges r WHERE r.lo < r.hi;
END
$fn$;

CREATE VIEW readings_hourly AS
SELECT c.series_id, c.hour, c.n, c.total, c.vmin, c.vmax
FROM readings_hourly_ranges() g JOIN readings_hourly_cagg c ON c.hour >= g.lo AND c.hour < g.hi
WHERE NOT g.stale
UNION ALL
SELECT x.series_id, x.hour, x.n, x.total, x.vmin, x.vmax
FROM readings_hourly_ranges() g
CROSS JOIN LATERAL (  -- grouped per range: the readers' series and hours reach inside, each range is its own scan
    SELECT r.series_id, time_bucket(interval '1 hour', r.ts) AS hour,
           count(r.value) AS n, sum(r.value) AS total, min(r.value) AS vmin, max(r.value) AS vmax
    FROM readings r WHERE r.ts >= g.lo AND r.ts < g.hi
    GROUP BY r.series_id, time_bucket(interval '1 hour', r.ts)
) x
WHERE g.stale;

COMMENT ON VIEW readings_hourly IS
    'Per series and hour: count, sum, min and max of the values, as the raw readings committed so far say.';
