-- The intent journal of batches on tables without transactions (MariaDB's MyISAM or Aria; see
-- the MariaDB migration of the same number and retention.engine.intents). Every PostgreSQL
-- table has transactions, so no batch writes here: the table exists so that the two engines'
-- schemas keep the same migrations, and stays empty.
CREATE TABLE IF NOT EXISTS {schema}.intents (
    intent_id     bigserial PRIMARY KEY,
    run_id        uuid NOT NULL,
    policy        text NOT NULL,
    policy_sha256 text NOT NULL,
    phases        jsonb NOT NULL,
    subject_keys  jsonb NOT NULL,
    link_values   jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
