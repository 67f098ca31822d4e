-- What the crews did (core.gritting.lifecycle): treatment runs with the spread rate actually used, tonnes,
-- vehicle and crew; notes and run events in a decision's history; acknowledgements carried over to a
-- re-issued decision that asks for the same treatment. And the "works completed" step of a damp case, whose
-- before-and-after readings the season report compares.

CREATE TABLE gritting_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route_id          text NOT NULL,  -- no foreign key: the record outlives a route taken out of the registry
    decision_id       bigint NOT NULL REFERENCES gritting_decisions (id),  -- the decision it is recorded on now
    started_under     bigint NOT NULL REFERENCES gritting_decisions (id),  -- the decision current when it started
    number            smallint NOT NULL CHECK (number >= 1),  -- 1 the first run of the decision, 2 a second...
    discretionary     boolean NOT NULL DEFAULT false,  -- the decision did not ask for treatment
    reason            text,
    status            text NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'completed', 'cancelled')),
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    spread_rate_g_m2  double precision CHECK (spread_rate_g_m2 IS NULL OR spread_rate_g_m2 > 0),
    tonnes            double precision CHECK (tonnes IS NULL OR tonnes >= 0),
    vehicle           text,
    crew              text,
    started_by        text NOT NULL,
    finished_by       text,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'in_progress') = (finished_at IS NULL)),
    CHECK (finished_at IS NULL OR finished_at >= started_at),
    CHECK (NOT discretionary OR reason IS NOT NULL)
);
CREATE UNIQUE INDEX gritting_runs_one_out ON gritting_runs (route_id) WHERE status = 'in_progress';
CREATE INDEX gritting_runs_decision ON gritting_runs (decision_id, id);
CREATE INDEX gritting_runs_finished ON gritting_runs (finished_at) WHERE status = 'completed';

-- True when the decision took over the acknowledgement (or the run out) of the one it replaced.
ALTER TABLE gritting_decisions ADD COLUMN carried_over boolean NOT NULL DEFAULT false;

ALTER TABLE gritting_decision_events ADD COLUMN run_id bigint REFERENCES gritting_runs (id);
ALTER TABLE gritting_decision_events DROP CONSTRAINT IF EXISTS gritting_decision_events_event_check;
ALTER TABLE gritting_decision_events ADD CONSTRAINT gritting_decision_events_event_check
    CHECK (event IN ('issued', 'acknowledged', 'started', 'completed', 'cancelled', 'superseded', 'escalated',
                     'run_cancelled', 'noted', 'carried_over'));

-- Decisions started or completed before runs were recorded become runs, so their history and the season
-- report see them (figures unknown: the report estimates their salt from the decided spread rate).
INSERT INTO gritting_runs (route_id, decision_id, started_under, number, status, started_at, finished_at,
                           started_by, finished_by)
SELECT d.route_id, d.id, d.id, 1,
       CASE WHEN c.at IS NOT NULL THEN 'completed' WHEN d.status = 'in_progress' THEN 'in_progress' ELSE 'cancelled' END,
       s.at, CASE WHEN c.at IS NOT NULL THEN greatest(c.at, s.at) WHEN d.status = 'in_progress' THEN NULL
                  ELSE greatest(d.status_at, s.at) END,
       s.actor, coalesce(c.actor, CASE WHEN d.status = 'in_progress' THEN NULL ELSE d.status_by END)
FROM gritting_decisions d
JOIN LATERAL (SELECT at, actor FROM gritting_decision_events e
              WHERE e.decision_id = d.id AND e.event = 'started' ORDER BY at, id LIMIT 1) s ON true
LEFT JOIN LATERAL (SELECT at, actor FROM gritting_decision_events e
                   WHERE e.decision_id = d.id AND e.event = 'completed' ORDER BY at, id LIMIT 1) c ON true
ORDER BY d.id;

-- Damp: the preventative or remedial works finished (core.cases "works_completed").
ALTER TABLE damp_cases ADD COLUMN works_completed_at timestamptz;
