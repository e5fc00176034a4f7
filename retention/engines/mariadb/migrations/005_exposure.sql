-- Exposure snapshots: the figures of `retention exposure`, stored at the end of every run (and
-- by the demo before its first run), so that the report can show how exposure falls over time.
-- Counts per subject table only, never a value or a subject key.
-- at: the date the clocks were read at; run_id NULL: not after a run; figures: the JSON of
-- `retention exposure`.
CREATE TABLE IF NOT EXISTS {schema}.exposure (
    snapshot_id  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    taken_at     DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    at           DATE NOT NULL,
    run_id       CHAR(36) CHARACTER SET ascii COLLATE ascii_bin,
    figures      LONGTEXT NOT NULL,
    CONSTRAINT exposure_figures CHECK (JSON_VALID(figures)),
    CONSTRAINT exposure_run FOREIGN KEY (run_id)
        REFERENCES {schema}.runs (run_id) ON DELETE SET NULL,
    INDEX exposure_taken_at (taken_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
