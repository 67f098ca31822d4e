-- Rows that ingest updates in every batch (a device's last_seen, a series' latest value, the current
-- hour's rollup) leave room in their page, so PostgreSQL can update them in place (HOT: no new index
-- entries). Measured with python -m bench.ingest: the PostgreSQL backend's CPU per message fell by a third.
-- Pages already full keep their layout until they are rewritten (VACUUM FULL or pg_repack).
ALTER TABLE devices SET (fillfactor = 50);
ALTER TABLE series SET (fillfactor = 50);
ALTER TABLE readings_hourly SET (fillfactor = 70);
