-- Catalogue of encrypted archive files (see docs/ARCHIVE.md). Nothing personal: subjects as
-- keyed digests, rows as counts, contents as SHA-256 of ciphertext. A file is catalogued in the
-- transaction that deleted its rows, with that batch's audit entry.
CREATE TABLE IF NOT EXISTS {schema}.archive_files (
    file_id        uuid PRIMARY KEY,
    name           text NOT NULL UNIQUE,         -- current version, relative to archive_dir
    version        integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    run_id         uuid,
    policy         text NOT NULL,
    policy_sha256  text NOT NULL,
    phase          text NOT NULL,
    created_at     timestamptz NOT NULL,
    bytes          bigint NOT NULL,
    sha256         text NOT NULL,
    recipients     text[] NOT NULL,              -- age public keys the segments are encrypted to
    destroyed_at   timestamptz
);
CREATE INDEX IF NOT EXISTS archive_files_policy ON {schema}.archive_files (policy, created_at);

CREATE TABLE IF NOT EXISTS {schema}.archive_segments (
    file_id          uuid NOT NULL REFERENCES {schema}.archive_files (file_id),
    grp              text NOT NULL,              -- 'YYYY-MM', 'YYYY' or 'undated'
    expires_on       date,                       -- NULL: never by itself ('undated')
    subjects         integer NOT NULL,
    subject_digests  text[] NOT NULL,
    rows             jsonb NOT NULL,
    bytes            bigint NOT NULL,
    sha256           text NOT NULL,
    destroyed_at     timestamptz,
    PRIMARY KEY (file_id, grp)
);
CREATE INDEX IF NOT EXISTS archive_segments_subjects
    ON {schema}.archive_segments USING gin (subject_digests);
CREATE INDEX IF NOT EXISTS archive_segments_expiry
    ON {schema}.archive_segments (expires_on) WHERE destroyed_at IS NULL;
