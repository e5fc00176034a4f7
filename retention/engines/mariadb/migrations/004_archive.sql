-- Catalogue of encrypted archive files (see docs/ARCHIVE.md). Nothing personal: subjects as
-- keyed digests, rows as counts, contents as SHA-256 of ciphertext. A file is catalogued in the
-- transaction that deleted its rows, with that batch's audit entry.
-- recipients (text[], never searched): a JSON array of the age public keys the segments are
-- encrypted to. name: the current version, relative to archive_dir.
CREATE TABLE IF NOT EXISTS {schema}.archive_files (
    file_id        CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    name           VARCHAR(255) NOT NULL,
    version        INT NOT NULL DEFAULT 1,
    run_id         CHAR(36) CHARACTER SET ascii COLLATE ascii_bin,
    policy         VARCHAR(64) NOT NULL,
    policy_sha256  TEXT NOT NULL,
    phase          TEXT NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    bytes          BIGINT NOT NULL,
    sha256         TEXT NOT NULL,
    recipients     LONGTEXT NOT NULL,
    destroyed_at   DATETIME(6),
    CONSTRAINT archive_files_name UNIQUE (name),
    CONSTRAINT archive_files_version CHECK (version >= 1),
    CONSTRAINT archive_files_file_id CHECK (
        file_id REGEXP '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'
    ),
    CONSTRAINT archive_files_run_id CHECK (
        run_id REGEXP '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'
    ),
    CONSTRAINT archive_files_recipients CHECK (
        JSON_VALID(recipients) AND JSON_TYPE(recipients) = 'ARRAY'
    ),
    INDEX archive_files_policy (policy, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- grp: 'YYYY-MM', 'YYYY' or 'undated'; expires_on NULL: never by itself ('undated').
-- PostgreSQL's partial index (expires_on) WHERE destroyed_at IS NULL: no partial indexes
-- here, so (destroyed_at, expires_on) serves `destroyed_at IS NULL AND expires_on <= ...`.
-- subject_digests (text[] + GIN, searched by restore): in archive_segment_subjects below.
CREATE TABLE IF NOT EXISTS {schema}.archive_segments (
    file_id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    grp              VARCHAR(16) NOT NULL,
    expires_on       DATE,
    subjects         INT NOT NULL,
    `rows`           LONGTEXT NOT NULL,
    bytes            BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    destroyed_at     DATETIME(6),
    PRIMARY KEY (file_id, grp),
    CONSTRAINT archive_segments_rows CHECK (JSON_VALID(`rows`)),
    CONSTRAINT archive_segments_file FOREIGN KEY (file_id)
        REFERENCES {schema}.archive_files (file_id),
    INDEX archive_segments_expiry (destroyed_at, expires_on)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- MariaDB only: archive_segments.subject_digests, one row per digest in the segment's order
-- (ord from 1): the digest index finds the segments holding a subject, as the GIN index does
-- on PostgreSQL (MariaDB cannot index the elements of a JSON array).
CREATE TABLE IF NOT EXISTS {schema}.archive_segment_subjects (
    file_id  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    grp      VARCHAR(16) NOT NULL,
    ord      INT NOT NULL,
    digest   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (file_id, grp, ord),
    CONSTRAINT archive_segment_subjects_segment FOREIGN KEY (file_id, grp)
        REFERENCES {schema}.archive_segments (file_id, grp),
    INDEX archive_segment_subjects_digest (digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
