-- The scrub ledger: texts that scrub has analysed and left without personal data, as the
-- SHA-256 of the text as it stands in its column, per column and per analyser (a fingerprint
-- of the model and recognisers). A scrubbed text is a fixed point, but finding that out again
-- costs a full analysis: a text whose digest is here is not pending for that column any more.
-- A text changed since (by the application) has another digest and is analysed again; a new
-- analyser (another model or recogniser version) has another fingerprint and analyses again.
-- Digests of texts already scrubbed only: no personal value, no subject key.
CREATE TABLE IF NOT EXISTS {schema}.scrubbed (
    target      text NOT NULL,   -- schema.table.column
    analyser    text NOT NULL,
    digest      bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, analyser, digest)
);
