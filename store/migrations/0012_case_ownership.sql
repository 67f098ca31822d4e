-- Case ownership and booked visits (issue 14): every damp and mould case has a responsible officer (a user
-- name, chosen from the officers of the home's patch when the case opens, reassignable), and the next visit
-- an officer has booked with the tenant (what the tenant page shows). Plain PostgreSQL.

ALTER TABLE damp_cases
    ADD COLUMN officer            text REFERENCES users (name) ON UPDATE CASCADE,
    ADD COLUMN visit_booked_for   timestamptz,  -- the next visit booked with the tenant (NULL: none booked)
    ADD COLUMN visit_booked_note  text;         -- what the tenant is told about it (who, what for)

-- The officers' open-case loads (assignment picks the least loaded officer of a patch) and "my cases".
CREATE INDEX damp_cases_officer_open ON damp_cases (officer) WHERE closed_at IS NULL;
-- Which notifications about a case reached nobody (events name their case in subject).
CREATE INDEX notification_events_subject ON notification_events (subject, id DESC) WHERE kind LIKE 'damp.%';
