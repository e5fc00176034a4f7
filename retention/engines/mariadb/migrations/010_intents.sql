-- The intent journal: a batch whose phase changes a table without transactions (an accepted
-- MyISAM or Aria table) writes here, in a transaction of its own that commits first, what it
-- decided (its policy, phases and subjects, verified due under lock), then acts, and deletes the
-- row in its own transaction: gone if and only if the batch committed. A crash in between leaves
-- the row, and the next run completes the batch before anything else (retention.engine.intents).
-- `subject_keys`: the batch's keys per phase; `link_values`: for a purge, the link values of the
-- rows of its tables without transactions that other rows point to (what finds their children
-- once they are deleted). Internal identifiers needed to complete the batch, deleted with its
-- commit; never logged, printed or written to the audit trail.
CREATE TABLE IF NOT EXISTS {schema}.intents (
    intent_id     BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id        CHAR(36) NOT NULL,
    policy        VARCHAR(255) NOT NULL,
    policy_sha256 CHAR(64) NOT NULL,
    phases        JSON NOT NULL,
    subject_keys  JSON NOT NULL,
    link_values   JSON NOT NULL,
    created_at    DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
