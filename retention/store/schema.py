"""The tool's own schema (`retention` by default): created and migrated by the tool.

Migrations are numbered and each applies once, in order, one migrator at a time; what they
contain and how they are applied is the engine's (retention.engines.own_schema; PostgreSQL's are
SQL files in `retention/engines/postgresql/migrations/`, applied in one transaction).
"""

from __future__ import annotations

from retention.engines import Connection, engine_of, sql


def migrate(conn: Connection, schema: str = "retention") -> list[str]:
    """Create or upgrade the tool's schema; returns the names of the migrations applied."""
    return engine_of(conn).own_schema.migrate(conn, schema)


def holds_table(conn: Connection, schema: str = "retention") -> sql.Composable | None:
    """The holds table, or None when the tool's schema is not installed yet."""
    installed = engine_of(conn).catalogue.table_exists(conn, schema, "holds")
    return sql.Identifier(schema, "holds") if installed else None
