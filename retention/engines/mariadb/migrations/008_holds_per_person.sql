-- A legal hold protects a person, not one policy: a hold without a policy (policy NULL) holds
-- the subject key `subject_key` of the table `subject_table` (schema.table) through the key
-- column `subject_column`, under every policy whose subject is that table and key, archive
-- expiry included. A hold with a policy and a subject table is narrowed to that policy. The
-- holds recorded before this migration name a policy and no subject table: --policy was then
-- required, so they hold the person under every policy on the same subject table and key as
-- that policy (resolved from the loaded policies; see README, Legal holds).
-- PostgreSQL's partial index (... WHERE policy IS NULL): policy leads the index instead.
ALTER TABLE {schema}.holds MODIFY policy VARCHAR(64) NULL;
ALTER TABLE {schema}.holds ADD COLUMN IF NOT EXISTS subject_table VARCHAR(129);
ALTER TABLE {schema}.holds ADD COLUMN IF NOT EXISTS subject_column VARCHAR(64);
ALTER TABLE {schema}.holds ADD CONSTRAINT IF NOT EXISTS holds_scope CHECK (
    policy IS NOT NULL OR (subject_table IS NOT NULL AND subject_column IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS holds_person
    ON {schema}.holds (policy, subject_table, subject_column, subject_key(255));
