-- Exposure snapshots: the figures of `retention exposure`, stored at the end of every run (and
-- by the demo before its first run), so that the report can show how exposure falls over time.
-- Counts per subject table only, never a value or a subject key.
CREATE TABLE IF NOT EXISTS {schema}.exposure (
    snapshot_id  bigserial PRIMARY KEY,
    taken_at     timestamptz NOT NULL DEFAULT now(),
    at           date NOT NULL,                      -- the date the clocks were read at
    run_id       uuid REFERENCES {schema}.runs ON DELETE SET NULL,  -- NULL: not after a run
    figures      jsonb NOT NULL                      -- the JSON of `retention exposure`
);
CREATE INDEX IF NOT EXISTS exposure_taken_at ON {schema}.exposure (taken_at);
