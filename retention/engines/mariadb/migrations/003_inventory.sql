-- Inventory of personal data: one row per scan, one row per column scanned.
-- Verdicts and evidence only (entity, confidence, shares of values matched): never a value,
-- not even a masked one. real: FLOAT (4 bytes, as PostgreSQL's real). Names are at most 64
-- characters in MariaDB (a "schema" is a database).
CREATE TABLE IF NOT EXISTS {schema}.scans (
    scan_id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    scanned_at   DATETIME(6) NOT NULL,
    stored_at    DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    scanned_by   VARCHAR(384) NOT NULL DEFAULT (CURRENT_USER()),
    scope        LONGTEXT NOT NULL DEFAULT ('{{}}'),
    seconds      FLOAT NOT NULL,
    columns      INT NOT NULL,
    personal     INT NOT NULL,
    CONSTRAINT scans_scope CHECK (JSON_VALID(scope)),
    INDEX scans_scanned_at (scanned_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The latest verdict of a column: ... ORDER BY scan_id DESC (MariaDB 10.6 reads the index
-- backwards; DESC is stored from 10.8).
CREATE TABLE IF NOT EXISTS {schema}.scan_columns (
    scan_id      BIGINT NOT NULL,
    schema_name  VARCHAR(64) NOT NULL,
    table_name   VARCHAR(64) NOT NULL,
    column_name  VARCHAR(64) NOT NULL,
    entity       TEXT,
    score        FLOAT NOT NULL,
    evidence     LONGTEXT NOT NULL,
    PRIMARY KEY (scan_id, schema_name, table_name, column_name),
    CONSTRAINT scan_columns_evidence CHECK (JSON_VALID(evidence)),
    CONSTRAINT scan_columns_scan FOREIGN KEY (scan_id)
        REFERENCES {schema}.scans (scan_id) ON DELETE CASCADE,
    INDEX scan_columns_column (schema_name, table_name, column_name, scan_id DESC)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
