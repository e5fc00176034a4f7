-- The scrub ledger: texts that scrub has analysed and left without personal data, as the
-- SHA-256 of the text as it stands in its column, per column and per analyser (a fingerprint
-- of the model and recognisers). A scrubbed text is a fixed point, but finding that out again
-- costs a full analysis: a text whose digest is here is not pending for that column any more.
-- A text changed since (by the application) has another digest and is analysed again; a new
-- analyser (another model or recogniser version) has another fingerprint and analyses again.
-- Digests of texts already scrubbed only: no personal value, no subject key.
-- target: schema.table.column (names of at most 64 characters); digest: bytea as VARBINARY
-- (32 bytes of SHA-256; a longer value is refused, never cut).
CREATE TABLE IF NOT EXISTS {schema}.scrubbed (
    target      VARCHAR(194) NOT NULL,
    analyser    VARCHAR(64) NOT NULL,
    digest      VARBINARY(32) NOT NULL,
    recorded_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    PRIMARY KEY (target, analyser, digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
