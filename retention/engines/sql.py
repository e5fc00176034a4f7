"""Composing SQL from names that come from policy files: the one composition API callers use.

The objects are psycopg's (`psycopg.sql`): on PostgreSQL psycopg renders them; other engines
render the same trees with their own quoting (`retention/engines/mariadb/render.py`). Names
are always `Identifier`s and values always parameters, never pasted into the text.
"""

from __future__ import annotations

from psycopg.adapt import PyFormat
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal, Placeholder

__all__ = ["SQL", "Composable", "Composed", "Identifier", "Literal", "Placeholder", "parameter"]


def parameter(name: str, *, binary: bool = False) -> Placeholder:
    """The named placeholder `%(name)s`; `binary`: sent in binary format where the engine's
    driver can (PostgreSQL: arrays of thousands of keys, which the text format escapes element
    by element), as an ordinary parameter elsewhere."""
    return Placeholder(name, PyFormat.BINARY if binary else PyFormat.AUTO)
