-- The learned road surface temperature nowcast (core/gritting/learned.py), fitted daily by alerts/nowcast_fit.py:
-- the pooled models fitted on the store's own nights (the newest is in force; with none, the default shipped in
-- core/gritting/nowcast_default.json), and what each station's own nights taught on top of the model in force.

CREATE TABLE nowcast_models (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fitted_at   timestamptz NOT NULL,
    params      jsonb NOT NULL,  -- NowcastModel.to_json(): horizons, bins, trees, bands, held-out errors
    trained_on  jsonb NOT NULL,  -- stations, nights, examples, from, to
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nowcast_models_fitted_at ON nowcast_models (fitted_at DESC, id DESC);

CREATE TABLE nowcast_stations (
    station_id       text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    fitted_at        timestamptz NOT NULL,
    model_fitted_at  timestamptz NOT NULL,  -- the pooled model its errors are measured against
    params           jsonb NOT NULL         -- station_to_json(): nights, mean error per horizon, memory of evenings
);
