-- Homes whose retained alert the broker has not acknowledged (published_at NULL: alerts.damp retries them on
-- each housekeeping pass via store.damp.homes_to_publish): a partial index, so the pass reads only those homes
-- rather than scanning every home's state.
CREATE INDEX IF NOT EXISTS damp_home_state_unpublished ON damp_home_state (home_id) WHERE published_at IS NULL;
