-- A legal hold protects a person, not one policy: a hold without a policy (policy NULL) holds
-- the subject key `subject_key` of the table `subject_table` (schema.table) through the key
-- column `subject_column`, under every policy whose subject is that table and key, archive
-- expiry included. A hold with a policy and a subject table is narrowed to that policy. The
-- holds recorded before this migration name a policy and no subject table: --policy was then
-- required, so they hold the person under every policy on the same subject table and key as
-- that policy (resolved from the loaded policies; see README, Legal holds).
ALTER TABLE {schema}.holds ALTER COLUMN policy DROP NOT NULL;
ALTER TABLE {schema}.holds ADD COLUMN IF NOT EXISTS subject_table text;
ALTER TABLE {schema}.holds ADD COLUMN IF NOT EXISTS subject_column text;
ALTER TABLE {schema}.holds ADD CONSTRAINT holds_scope CHECK (
    policy IS NOT NULL OR (subject_table IS NOT NULL AND subject_column IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS holds_person
    ON {schema}.holds (subject_table, subject_column, subject_key) WHERE policy IS NULL;
