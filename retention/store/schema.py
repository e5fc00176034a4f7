"""The tool's own schema (`retention` by default): created and migrated by the tool.

Migrations are numbered SQL files shipped in the package; each applies once, in order, in one
transaction under an advisory lock, and is recorded in `schema_version`.
"""

from __future__ import annotations

from importlib import resources

from retention.engines import Connection, errors, sql
from retention.errors import DatabaseError

_LOCK_KEY = 0x7265_7465_6E74  # "retent": serialises concurrent migrations


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL text) of every shipped migration, in order."""
    folder = resources.files("retention.store") / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            version = int(item.name.split("_", 1)[0])
            found.append((version, item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: Connection, schema: str = "retention") -> list[str]:
    """Create or upgrade the tool's schema; returns the names of the migrations applied."""
    applied: list[str] = []
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_version (version int PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(sql.Identifier(schema))
            )
            done = {
                row[0]
                for row in conn.execute(
                    sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
                )
            }
            for version, name, text in migrations():
                if version in done:
                    continue
                conn.execute(sql.SQL(text).format(schema=sql.Identifier(schema)))
                conn.execute(
                    sql.SQL("INSERT INTO {}.schema_version (version, name) VALUES (%s, %s)").format(
                        sql.Identifier(schema)
                    ),
                    (version, name),
                )
                applied.append(name)
    except errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"cannot create or upgrade the '{schema}' schema: {exc.diag.message_primary}",
            hint="run 'retention init' once as the database owner",
        ) from None
    return applied


def holds_table(conn: Connection, schema: str = "retention") -> sql.Composable | None:
    """The holds table, or None when the tool's schema is not installed yet."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{sql.Identifier(schema).as_string(None)}.holds",)
    ).fetchone()
    return sql.Identifier(schema, "holds") if row and row[0] else None
