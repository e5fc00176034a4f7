-- Runs and the tamper-evident audit trail.
CREATE TABLE IF NOT EXISTS {schema}.runs (
    run_id      uuid PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    outcome     text NOT NULL DEFAULT 'running',
    command     text NOT NULL,
    host        text NOT NULL,
    os_user     text NOT NULL,
    db_user     text NOT NULL DEFAULT current_user,
    pid         integer NOT NULL
);

-- Append-only and hash-chained: hash = sha256(prev_hash || canonical JSON of the entry).
-- Subjects appear only as keyed digests (HMAC with the audit key), never as raw keys.
CREATE TABLE IF NOT EXISTS {schema}.audit (
    seq             bigint PRIMARY KEY,
    recorded_at     timestamptz NOT NULL,
    run_id          uuid,
    event           text NOT NULL,
    policy          text,
    policy_sha256   text,
    phase           text,
    action          text,
    rows            jsonb NOT NULL DEFAULT '{{}}',
    subjects        integer NOT NULL DEFAULT 0,
    subject_digests text[] NOT NULL DEFAULT '{{}}',
    key_id          text,
    actor           jsonb NOT NULL,
    outcome         text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{{}}',
    prev_hash       text NOT NULL,
    hash            text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject_digests ON {schema}.audit USING gin (subject_digests);
CREATE INDEX IF NOT EXISTS audit_policy ON {schema}.audit (policy, recorded_at);

CREATE OR REPLACE FUNCTION {schema}.audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS audit_append_only ON {schema}.audit;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {schema}.audit
    FOR EACH ROW EXECUTE FUNCTION {schema}.audit_append_only();
DROP TRIGGER IF EXISTS audit_no_truncate ON {schema}.audit;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {schema}.audit
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.audit_append_only();
