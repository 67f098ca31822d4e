-- A device's last_seen kept where ingest writes anyway: in the rows of its series.
--
-- Ingest updates each series a message carries (its latest value) in every batch. Updating the device's row too,
-- for its last_seen, was a second row write per message: on a stream where every device sends once every few
-- minutes, 8 of the 47 PostgreSQL core-ms per 1,000 messages (bench.ingest_writer --compare). The series row now
-- also keeps when the newest message that carried it arrived (seen_at), in the same update; devices.last_seen is
-- written only for what carries no reading (a status message). A device was last seen at the later of the two:
-- device_seen is that rule, the one place it is written; every reader of last_seen reads it.
--
-- prev_ts is the series' latest reading time before the last batch that wrote it: the writer's one statement
-- learns from it whether that batch held late readings (PostgreSQL 15's RETURNING gives only new values).

ALTER TABLE series ADD COLUMN seen_at timestamptz, ADD COLUMN prev_ts timestamptz;

CREATE VIEW device_seen AS
SELECT d.id, greatest(d.last_seen, (SELECT max(s.seen_at) FROM series s WHERE s.device_id = d.id)) AS last_seen
FROM devices d;

COMMENT ON VIEW device_seen IS
    'When each device last sent anything: the later of devices.last_seen (messages without readings) and its series'' seen_at.';
