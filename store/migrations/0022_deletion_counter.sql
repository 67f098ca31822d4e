-- Ingest caches which devices are registered and the id of each (device, metric) series, so that a steady stream
-- does not look them up for every message. A deleted device or series must leave those caches at once: its
-- readings would otherwise be written under a series id that no longer exists, and a device registered again
-- under the same id has new series. Any DELETE or TRUNCATE of devices or series (a registry prune; devices'
-- series go with them) moves this counter; ingest reads it (pg_sequence_last_value, no lock) and empties its
-- caches when it has moved. A sequence, not a table: moving it takes no row lock and is never rolled back (a
-- delete rolled back only empties the caches once more).
CREATE SEQUENCE pw_deletions;

CREATE FUNCTION pw_count_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('pw_deletions');
    RETURN NULL;
END
$$;

CREATE TRIGGER devices_deleted AFTER DELETE OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION pw_count_deletion();
CREATE TRIGGER series_deleted AFTER DELETE OR TRUNCATE ON series
    FOR EACH STATEMENT EXECUTE FUNCTION pw_count_deletion();
