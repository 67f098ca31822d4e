-- One row of state per device, not per series: a message of 2 or 3 values updates one row.
--
-- On the stream councils have (each device sends once every few minutes, so nearly every message of a batch is
-- from another device), ingest's PostgreSQL cost was the update of every series row a message carried, about
-- 2.3 per message: its latest value, when a message last carried it (seen_at), its time before the batch (prev_ts)
-- and, on plain PostgreSQL, its current hour. Now series rows never change after they are made, and a device's
-- state is one row, updated once per batch that carries the device (store/writer.py):
--   seen_at      when the newest message that carried a reading of it arrived (devices.last_seen keeps the rest:
--                status messages, and what a history import says)
--   max_ts       the newest reading time of any of its metrics
--   latest       each metric's newest reading as the API shows it: {"metric": {"ts": ..., "value": ...}}, the value
--                a number, or the label where the reading has no value
--   late         whether the last batch that wrote it held a reading at or before what its metric held: the
--                writer's one statement learns from it whether to mark a late window (PostgreSQL 15's RETURNING
--                gives only new values, so the update computes it from the old row and keeps it here)
-- The hourly rollup leaves the series rows too (migration 0027 on plain PostgreSQL; TimescaleDB keeps its own).

CREATE TABLE device_state (
    device_id  text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    seen_at    timestamptz,
    max_ts     timestamptz,
    late       boolean NOT NULL DEFAULT false,
    latest     jsonb NOT NULL DEFAULT '{}'::jsonb
) WITH (fillfactor = 50);  -- updated in every batch: room in the page to update in place (HOT)

-- The newest reading of each metric, kept: the state the series rows held.
INSERT INTO device_state (device_id, seen_at, max_ts, latest)
SELECT s.device_id, max(s.seen_at), max(s.last_ts),
       coalesce(jsonb_object_agg(s.metric, jsonb_build_object(
           'ts', s.last_ts, 'value', coalesce(to_jsonb(s.last_value), to_jsonb(s.last_label))))
           FILTER (WHERE s.last_ts IS NOT NULL), '{}'::jsonb)
FROM series s GROUP BY s.device_id;

-- The merge of a batch's newest readings into a device's (new: {"metric": {"ts", "value"}}): a metric moves
-- forward only. The writer calls it only where a batch's readings are not all after everything the device held
-- (else new || old is the same); timestamps compared as times, not as text.
CREATE FUNCTION pw_latest_merge(old jsonb, new jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT old || coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb)
    FROM jsonb_each(new) n
    WHERE old -> n.key IS NULL OR (old -> n.key ->> 'ts')::timestamptz < (n.value ->> 'ts')::timestamptz
$$;

-- Whether any metric's earliest reading of a batch (firsts: {"metric": {"ts": ...}}, the shape of latest) is at
-- or before that metric's newest in the device's state (old): the batch is then late or out of order for it.
CREATE FUNCTION pw_latest_late(old jsonb, firsts jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1 FROM jsonb_each(firsts) f
        WHERE (old -> f.key ->> 'ts')::timestamptz >= (f.value ->> 'ts')::timestamptz)
$$;

-- Each series' latest reading, for readers that want it by series (open data, device health).
CREATE VIEW series_latest AS
SELECT s.id, s.device_id, s.metric, (x.e ->> 'ts')::timestamptz AS last_ts,
       CASE WHEN jsonb_typeof(x.e -> 'value') = 'number' THEN (x.e ->> 'value')::double precision END AS last_value,
       CASE WHEN jsonb_typeof(x.e -> 'value') = 'string' THEN x.e ->> 'value' END AS last_label
FROM series s
JOIN device_state d ON d.device_id = s.device_id
CROSS JOIN LATERAL (SELECT d.latest -> s.metric) x(e)
WHERE x.e IS NOT NULL;

COMMENT ON VIEW series_latest IS
    'Each series'' newest reading (time, value or label), from its device''s row of device_state.';

CREATE OR REPLACE VIEW device_seen AS
SELECT d.id, seen_last(d.last_seen, s.seen_at) AS last_seen
FROM devices d LEFT JOIN device_state s ON s.device_id = d.id;

ALTER TABLE series DROP COLUMN last_ts, DROP COLUMN last_value, DROP COLUMN last_label,
    DROP COLUMN seen_at, DROP COLUMN prev_ts;
