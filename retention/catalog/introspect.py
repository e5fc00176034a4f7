"""Read the database catalogue once: tables, columns and types, keys, foreign keys, indexes.

The result is plain immutable data (`retention/engines/catalogue.py`, the same on every
engine); binding a policy and computing a plan only read it. The connection's engine reads
it: PostgreSQL from `pg_catalog`, MariaDB/MySQL from `information_schema`.
"""

from __future__ import annotations

from retention.engines import Connection, engine_of
from retention.engines.catalogue import Catalog, Column, ColumnKind, ForeignKey, Hook, Table

__all__ = ["Catalog", "Column", "ColumnKind", "ForeignKey", "Hook", "Table", "read_catalog"]


def read_catalog(conn: Connection, *, tool_schema: str = "retention") -> Catalog:
    """Introspect every user table (system schemas and the tool's own are left out)."""
    return engine_of(conn).catalogue.read(conn, tool_schema=tool_schema)
