-- A legal hold protects a person, not one policy: a hold without a policy (policy NULL) holds
-- the subject key `subject_key` of the table `subject_table` (schema.table) through the key
-- column `subject_column`, under every policy whose subject is that table and key, archive
-- expiry included. A hold with a policy stays narrowed to that policy, as before: the holds
-- recorded before this migration all name one and keep that meaning (see README, Legal holds).
ALTER TABLE {schema}.holds ALTER COLUMN policy DROP NOT NULL;
ALTER TABLE {schema}.holds ADD COLUMN IF NOT EXISTS subject_table text;
ALTER TABLE {schema}.holds ADD COLUMN IF NOT EXISTS subject_column text;
ALTER TABLE {schema}.holds ADD CONSTRAINT holds_scope CHECK (
    policy IS NOT NULL OR (subject_table IS NOT NULL AND subject_column IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS holds_person
    ON {schema}.holds (subject_table, subject_column, subject_key) WHERE policy IS NULL;
