"""The connection's account as information_schema's privilege tables name it (`GRANTEE`):
`'user'@'host'`, quoted, from CURRENT_USER() (the account the server matched, which may have
a wildcard host). SQL text with no parameter: it reads nothing from the caller."""

from __future__ import annotations

CURRENT_GRANTEE = (
    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
)
