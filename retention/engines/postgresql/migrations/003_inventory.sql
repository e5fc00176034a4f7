-- Inventory of personal data: one row per scan, one row per column scanned.
-- Verdicts and evidence only (entity, confidence, shares of values matched): never a value,
-- not even a masked one.
CREATE TABLE IF NOT EXISTS {schema}.scans (
    scan_id      bigserial PRIMARY KEY,
    scanned_at   timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    scanned_by   text NOT NULL DEFAULT current_user,
    scope        jsonb NOT NULL DEFAULT '{{}}',   -- {{"schemas": [...], "tables": [...]}}
    seconds      real NOT NULL,
    columns      integer NOT NULL,
    personal     integer NOT NULL
);
CREATE INDEX IF NOT EXISTS scans_scanned_at ON {schema}.scans (scanned_at);

CREATE TABLE IF NOT EXISTS {schema}.scan_columns (
    scan_id      bigint NOT NULL REFERENCES {schema}.scans ON DELETE CASCADE,
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    column_name  text NOT NULL,
    entity       text,
    score        real NOT NULL,
    evidence     jsonb NOT NULL,
    PRIMARY KEY (scan_id, schema_name, table_name, column_name)
);
-- The latest verdict of a column: DISTINCT ON (column) ... ORDER BY scan_id DESC.
CREATE INDEX IF NOT EXISTS scan_columns_column
    ON {schema}.scan_columns (schema_name, table_name, column_name, scan_id DESC);
