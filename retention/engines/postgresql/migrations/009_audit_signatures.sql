-- Every entry's hash is signed with the trail's Ed25519 key, which the database never sees
-- (retention.audit.seal): `sig_key` is the key's fingerprint (SHA256:..., as ssh-keygen -l
-- prints it), `signature` the base64 Ed25519 signature of the hash. Entries written before this
-- migration have neither: `audit verify` reports them as written before signing began, and an
-- unsigned entry after a signed one as forged.
ALTER TABLE {schema}.audit ADD COLUMN IF NOT EXISTS sig_key text;
ALTER TABLE {schema}.audit ADD COLUMN IF NOT EXISTS signature text;
