"""Archives: records that leave the live database into files the host cannot read.

A policy phase `action: archive` deletes a subject's record (the subject row and every related
row) in the batch's transaction and writes it, before the commit, into an age-encrypted file
(X25519 public keys of the custodian; the host has no private key). Files are grouped by the
month each record's legal retention ends, and destroyed when it has. See docs/ARCHIVE.md.

Layout: `container` (the file format), `codec` (rows to JSON and back, in SQL), `storage`
(where files go), `writer` (one batch), `catalog` (the tool's tables), `reconcile` and `expiry`
(at run start), `restore` and `verify` (for the custodian and auditors), `session` (a run).
"""
