-- Damp and mould (DOMAIN.md section 2): the policy values each judgement used, assessments with their
-- evidence, each home's current level (the hysteresis state), cases on Awaab's Law clocks and their
-- audit log. Plain PostgreSQL.

-- Every distinct set of damp policy values ever used, so any assessment can be re-run or explained later.
CREATE TABLE damp_policies (
    id          text PRIMARY KEY,  -- sha256 of the canonical JSON of the values
    policy      jsonb NOT NULL,
    first_used  timestamptz NOT NULL DEFAULT now()
);

-- Stored when a home's level or reasons change (not every hour): the judgement and all it rested on.
CREATE TABLE damp_assessments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    home_id       text NOT NULL REFERENCES homes (id),
    assessed_at   timestamptz NOT NULL,
    level         text NOT NULL CHECK (level IN ('green', 'advice', 'watch', 'red', 'insufficient_data')),
    raw_level     text NOT NULL CHECK (raw_level IN ('green', 'advice', 'watch', 'red', 'insufficient_data')),
    worst_room    text,
    coverage      real NOT NULL,
    reasons       jsonb NOT NULL,   -- the sentences people read, most serious first
    evidence      jsonb NOT NULL,   -- figures per room, findings, notes, advice, hysteresis state, inputs
    policy_id     text NOT NULL REFERENCES damp_policies (id),
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL
);
CREATE INDEX damp_assessments_home ON damp_assessments (home_id, assessed_at DESC);

-- One row per evaluated home: the level people see now, and what the next evaluation needs.
CREATE TABLE damp_home_state (
    home_id        text PRIMARY KEY REFERENCES homes (id),
    level          text NOT NULL,
    raw_level      text NOT NULL,
    hold_level     text,            -- core.damp.PreviousLevel: the level held...
    hold_since     timestamptz,     -- ...and when the readings last supported it
    red_since      timestamptz,     -- start of the current red spell (NULL when not red)
    assessed_at    timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    signature      text NOT NULL,   -- md5 of the level and reasons of the last stored assessment
    assessment_id  bigint REFERENCES damp_assessments (id),
    published_sig  text,            -- what the retained MQTT alert last said (NULL: no alert)
    published_at   timestamptz
);
CREATE INDEX damp_home_state_level ON damp_home_state (level);

-- A significant damp and mould hazard and its Awaab's Law clocks (SI 2025/1042). Deadlines are aware
-- UTC instants: the end of a Europe/London working day, or 24 hours after a person confirmed an emergency.
CREATE TABLE damp_cases (
    id                                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    home_id                             text NOT NULL REFERENCES homes (id),
    level                               text NOT NULL CHECK (level IN ('red', 'emergency')),
    status                              text NOT NULL CHECK (status IN ('open', 'investigating', 'investigated',
                                            'safety_work', 'preventative_work', 'works_started', 'closed')),
    opened_at                           timestamptz NOT NULL,
    aware_at                            timestamptz NOT NULL,
    aware_source                        text NOT NULL DEFAULT 'sensors',
    assessment_id                       bigint REFERENCES damp_assessments (id),
    evidence                            jsonb NOT NULL,  -- the assessment that opened the case, whole
    investigate_by                      timestamptz NOT NULL,
    acknowledged_at                     timestamptz,
    visited_at                          timestamptz,     -- the latest visit
    investigation_done_at               timestamptz,
    summary_by                          timestamptz,
    summary_sent_at                     timestamptz,
    safety_work_by                      timestamptz,
    safety_work_done_at                 timestamptz,
    preventative_begin_by               timestamptz,
    preventative_physically_started_by  timestamptz,
    works_started_at                    timestamptz,
    emergency_confirmed_at              timestamptz,
    emergency_by                        timestamptz,
    closed_at                           timestamptz,
    overdue_steps                       text[] NOT NULL DEFAULT '{}',  -- steps escalated (once each)
    updated_at                          timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX damp_cases_one_open ON damp_cases (home_id) WHERE closed_at IS NULL;
CREATE INDEX damp_cases_home ON damp_cases (home_id, opened_at DESC);
CREATE INDEX damp_cases_updated ON damp_cases (updated_at);

-- The audit log of a case: who did what, when, and how the status moved. Append-only.
CREATE TABLE damp_case_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES damp_cases (id),
    at           timestamptz NOT NULL,               -- when it happened
    recorded_at  timestamptz NOT NULL DEFAULT now(), -- when it was written down
    actor        text NOT NULL,                      -- user name, or 'placewatch' for the evaluator
    actor_role   text NOT NULL,                      -- admin, officer, or system
    action       text NOT NULL,
    note         text,
    from_status  text,
    to_status    text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX damp_case_events_case ON damp_case_events (case_id, id);

CREATE FUNCTION damp_case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'damp_case_events is an audit log: rows are never changed or removed';
END
$$;
CREATE TRIGGER damp_case_events_append_only BEFORE UPDATE OR DELETE ON damp_case_events
    FOR EACH ROW EXECUTE FUNCTION damp_case_events_append_only();

-- The evaluator finds a home's sensors, and the homes fed by an outdoor station, by these.
CREATE INDEX IF NOT EXISTS damp_devices_home ON devices (home_id) WHERE home_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS damp_homes_outdoor ON homes (outdoor) WHERE outdoor IS NOT NULL;
