"""Parameters that need more than their Python value: JSON documents, and values worth sending
in the engine's binary form.

The objects are psycopg's, as `retention.engines.sql` is: PostgreSQL's driver adapts them; another
engine's connection translates them (a JSON document becomes its text, a binary placeholder an
ordinary one).
"""

from __future__ import annotations

from psycopg.adapt import PyFormat
from psycopg.types.json import Jsonb as Json

from retention.engines import sql

__all__ = ["Json", "binary"]


def binary(name: str = "") -> sql.Placeholder:
    """A placeholder whose value travels in binary where the engine can: thousands of keys or
    digests in one array, which the text form would escape one by one."""
    return sql.Placeholder(name, PyFormat.BINARY)
