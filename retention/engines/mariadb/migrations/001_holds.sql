-- Legal holds (R1112-7: a claim suspends the clock). Subject keys are stored as text.
-- MariaDB: the tool's schema is a database of its own; every table is InnoDB (transactional)
-- and compares text exactly (utf8mb4_bin), as PostgreSQL does. Times are DATETIME(6) in UTC
-- (the default is UTC_TIMESTAMP, whatever the session's time zone); who acted is the
-- account, `user@host`. subject_key stays unbounded text (TEXT), indexed on its first 255
-- characters. One statement per step: each is idempotent (see engines/mariadb/schema.py).
CREATE TABLE IF NOT EXISTS {schema}.holds (
    hold_id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    policy       VARCHAR(64) NOT NULL,
    subject_key  TEXT NOT NULL,
    reason       TEXT NOT NULL,
    held_since   DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    held_by      VARCHAR(384) NOT NULL DEFAULT (CURRENT_USER()),
    released_at  DATETIME(6),
    released_by  VARCHAR(384),
    CONSTRAINT holds_released CHECK (released_at IS NULL OR released_at >= held_since),
    INDEX holds_policy_subject (policy, subject_key(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
