-- Rows that ingest updates in every batch (a device's last_seen, a series' latest value) leave room in
-- their page, so PostgreSQL can update them in place (HOT: no new index entries). The hourly rollup is a
-- continuous aggregate here, maintained by TimescaleDB, not by ingest.
ALTER TABLE devices SET (fillfactor = 50);
ALTER TABLE series SET (fillfactor = 50);
