-- The GIN index on audit.subject_digests (002) is dropped. Every batch appends entries of up to
-- a few thousand digests; each entry cost 23 ms with the index against 7 ms without (mean of
-- 200 inserts of 2,000 digests, PostgreSQL 15), and the index's pending-list clean-up stopped
-- one insert in about fifty for 0.6 to 0.7 s, inside a batch transaction holding row locks.
-- `audit find` reads the policy's entries through audit_policy and checks their digests: 90 ms
-- for 950,000 digests in 50,450 entries, measured without the index.
DROP INDEX IF EXISTS {schema}.audit_subject_digests;
