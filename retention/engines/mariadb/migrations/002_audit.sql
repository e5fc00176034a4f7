-- Runs and the tamper-evident audit trail.
-- uuid: CHAR(36), ASCII, lower-case canonical form only (the CHECK): compared byte for byte.
CREATE TABLE IF NOT EXISTS {schema}.runs (
    run_id      CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    started_at  DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    ended_at    DATETIME(6),
    outcome     TEXT NOT NULL DEFAULT ('running'),
    command     TEXT NOT NULL,
    host        TEXT NOT NULL,
    os_user     TEXT NOT NULL,
    db_user     VARCHAR(384) NOT NULL DEFAULT (CURRENT_USER()),
    pid         INT NOT NULL,
    CONSTRAINT runs_run_id CHECK (
        run_id REGEXP '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'
    )
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Append-only and hash-chained: hash = sha256(prev_hash || canonical JSON of the entry).
-- Subjects appear only as keyed digests (HMAC with the audit key), never as raw keys.
-- jsonb: LONGTEXT holding valid JSON (the CHECK), kept as written. text[] subject_digests:
-- a JSON array in the entry's own row, so that one INSERT appends the whole entry and the
-- append-only triggers protect all of it; no index (PostgreSQL dropped its GIN index in 006,
-- `audit find` reads a policy's entries through audit_policy). `rows` is a reserved word.
CREATE TABLE IF NOT EXISTS {schema}.audit (
    seq             BIGINT NOT NULL PRIMARY KEY,
    recorded_at     DATETIME(6) NOT NULL,
    run_id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin,
    event           TEXT NOT NULL,
    policy          VARCHAR(64),
    policy_sha256   TEXT,
    phase           TEXT,
    action          TEXT,
    `rows`          LONGTEXT NOT NULL DEFAULT ('{{}}'),
    subjects        INT NOT NULL DEFAULT 0,
    subject_digests LONGTEXT NOT NULL DEFAULT ('[]'),
    key_id          TEXT,
    actor           LONGTEXT NOT NULL,
    outcome         TEXT NOT NULL,
    detail          LONGTEXT NOT NULL DEFAULT ('{{}}'),
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    CONSTRAINT audit_run_id CHECK (
        run_id REGEXP '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'
    ),
    CONSTRAINT audit_rows CHECK (JSON_VALID(`rows`)),
    CONSTRAINT audit_subject_digests CHECK (
        JSON_VALID(subject_digests) AND JSON_TYPE(subject_digests) = 'ARRAY'
    ),
    CONSTRAINT audit_actor CHECK (JSON_VALID(actor)),
    CONSTRAINT audit_detail CHECK (JSON_VALID(detail)),
    INDEX audit_policy (policy, recorded_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- PostgreSQL's audit_append_only trigger function, as two row triggers that refuse with the
-- same message and the same SQLSTATE, 42501 insufficient_privilege (MariaDB error 1644; the
-- engine's connection raises it as errors.InsufficientPrivilege, as on PostgreSQL). TRUNCATE
-- fires no trigger: it needs the DROP privilege, which the tool's account never has
-- (engines/mariadb/grants.py; schema.append_only_problems checks it).
CREATE TRIGGER IF NOT EXISTS {schema}.audit_no_update BEFORE UPDATE ON {schema}.audit
    FOR EACH ROW SIGNAL SQLSTATE '42501'
        SET MESSAGE_TEXT = 'the audit trail is append-only: UPDATE is not allowed';
CREATE TRIGGER IF NOT EXISTS {schema}.audit_no_delete BEFORE DELETE ON {schema}.audit
    FOR EACH ROW SIGNAL SQLSTATE '42501'
        SET MESSAGE_TEXT = 'the audit trail is append-only: DELETE is not allowed';

-- MariaDB only: PostgreSQL serialises the chain's appenders with pg_advisory_xact_lock;
-- MariaDB's named locks (GET_LOCK) outlive the transaction, so an appender locks this row
-- FOR UPDATE instead, held until its transaction ends.
CREATE TABLE IF NOT EXISTS {schema}.locks (
    name  VARCHAR(64) NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO {schema}.locks (name)
    SELECT 'audit chain' FROM DUAL
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.locks WHERE name = 'audit chain');
