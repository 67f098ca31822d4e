-- Gritting: road forecasts, decisions with the evidence they rest on, every status change (who, when,
-- why), and each route's current decision with what was last published for it.

-- One forecast as loaded (PUT /api/v1/gritting/forecast or `placewatch forecast load`), for some routes
-- or a whole forecast domain (routes.properties->>'domain', resolved to routes when loaded).
CREATE TABLE gritting_forecasts (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issued_at            timestamptz NOT NULL,
    loaded_at            timestamptz NOT NULL DEFAULT now(),
    loaded_by            text,
    source               text,
    domain               text,
    min_rst              double precision,
    min_rst_at           timestamptz,
    precipitation        text NOT NULL DEFAULT 'none'
                         CHECK (precipitation IN ('none', 'rain', 'sleet', 'snow', 'freezing_rain')),
    precipitation_mm     double precision CHECK (precipitation_mm IS NULL OR precipitation_mm >= 0),
    precipitation_start  timestamptz,
    precipitation_end    timestamptz,
    dew_point            double precision,
    rst_trace            jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [[ts, rst], ...]
    CHECK ((min_rst IS NULL) = (min_rst_at IS NULL)),
    CHECK (precipitation_end IS NULL OR precipitation_start IS NULL OR precipitation_end >= precipitation_start)
);

CREATE TABLE gritting_forecast_routes (
    route_id     text NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    forecast_id  bigint NOT NULL REFERENCES gritting_forecasts (id) ON DELETE CASCADE,
    issued_at    timestamptz NOT NULL,  -- copied from the forecast: the newest per route is one index read
    by_route     boolean NOT NULL,      -- named the route (true) or came with its domain (false)
    PRIMARY KEY (route_id, forecast_id)
);
CREATE INDEX gritting_forecast_routes_newest ON gritting_forecast_routes (route_id, issued_at DESC, forecast_id DESC);

-- A decision is never edited but for its status: a material change is a new row linked to the previous one.
CREATE TABLE gritting_decisions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route_id           text NOT NULL,  -- no foreign key: the record outlives a route taken out of the registry
    previous_id        bigint REFERENCES gritting_decisions (id),
    superseded_by      bigint REFERENCES gritting_decisions (id),
    action             text NOT NULL
                       CHECK (action IN ('none', 'monitor', 'precautionary_salt', 'salt', 'plough_and_salt', 'escalate')),
    rule               text NOT NULL,
    spread_rate_g_m2   double precision,
    passes             smallint NOT NULL DEFAULT 1,
    spread_type        text NOT NULL,
    road_wetness       text,
    call_out_by        timestamptz,
    start_by           timestamptz,
    complete_by        timestamptz,
    start_not_before   timestamptz,
    trigger_at         timestamptz,
    treat_now          boolean NOT NULL DEFAULT false,
    late               boolean NOT NULL DEFAULT false,
    worst_station      text,
    min_rst            double precision,
    min_rst_at         timestamptz,
    hazard             text,
    reasons            jsonb NOT NULL,  -- list of sentences
    message            text NOT NULL,
    confidence         double precision NOT NULL,
    horizon_hours      double precision NOT NULL DEFAULT 0,
    forecast_id        bigint REFERENCES gritting_forecasts (id) ON DELETE SET NULL,
    material_key       jsonb NOT NULL,
    evidence           jsonb NOT NULL,  -- inputs, policy values, rule, reasons, confidence: a winter can be replayed
    issued_at          timestamptz NOT NULL,
    status             text NOT NULL DEFAULT 'issued'
                       CHECK (status IN ('issued', 'acknowledged', 'in_progress', 'completed', 'cancelled',
                                         'superseded', 'escalated')),
    status_at          timestamptz NOT NULL,
    status_by          text NOT NULL,
    escalated_at       timestamptz
);
CREATE INDEX gritting_decisions_newest ON gritting_decisions (issued_at DESC, id DESC);
CREATE INDEX gritting_decisions_route ON gritting_decisions (route_id, issued_at DESC, id DESC);
CREATE INDEX gritting_decisions_unacknowledged ON gritting_decisions (call_out_by) WHERE status = 'issued';

-- History: every status a decision took, who set it, when, and why.
CREATE TABLE gritting_decision_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decision_id  bigint NOT NULL REFERENCES gritting_decisions (id),
    at           timestamptz NOT NULL,
    event        text NOT NULL
                 CHECK (event IN ('issued', 'acknowledged', 'started', 'completed', 'cancelled', 'superseded',
                                  'escalated')),
    from_status  text,
    to_status    text NOT NULL,
    actor        text NOT NULL,  -- a user name, or 'evaluator'
    note         text
);
CREATE INDEX gritting_decision_events_decision ON gritting_decision_events (decision_id, id);

-- Each route's current decision (one per route, by the primary key), when it was last evaluated, and
-- which decision and status were last published as its retained MQTT alert.
CREATE TABLE gritting_route_state (
    route_id               text PRIMARY KEY REFERENCES routes (id) ON DELETE CASCADE,
    decision_id            bigint REFERENCES gritting_decisions (id),
    evaluated_at           timestamptz,
    published_decision_id  bigint,
    published_status       text,
    published_at           timestamptz
);
