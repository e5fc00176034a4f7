"""The tool's schema on PostgreSQL: numbered SQL files shipped in `migrations/` (plpgsql
triggers, jsonb, text[] with a GIN index); every pending one applies in one transaction under an
advisory lock, and is recorded in `schema_version`.
"""

from __future__ import annotations

from importlib import resources

from retention.engines import Connection, errors, sql
from retention.engines.locks import TransactionLock
from retention.engines.own_schema import Migration
from retention.engines.postgresql.locks import Locks
from retention.errors import DatabaseError


class OwnSchema:
    def migrations(self) -> list[Migration]:
        folder = resources.files("retention.engines.postgresql") / "migrations"
        found = []
        for item in folder.iterdir():
            if item.name.endswith(".sql"):
                version = int(item.name.split("_", 1)[0])
                found.append(Migration(version, item.name, (item.read_text(encoding="utf-8"),)))
        return sorted(found, key=lambda m: m.version)

    def migrate(self, conn: Connection, schema: str) -> list[str]:
        applied: list[str] = []
        try:
            with conn.transaction():
                Locks().lock_in_transaction(conn, TransactionLock.MIGRATIONS)
                _apply(conn, schema, self.migrations(), applied)
        except errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                f"cannot create or upgrade the '{schema}' schema: {exc.diag.message_primary}",
                hint="run 'retention init' once as the database owner",
            ) from None
        return applied

    def serves_this_database(self, conn: Connection, other: str) -> bool:
        return True  # a schema of this very database

    def append_only_problems(self, conn: Connection, schema: str) -> list[str] | None:
        return None


def _apply(conn: Connection, schema: str, pending: list[Migration], applied: list[str]) -> None:
    """Inside the migration's transaction: the schema, its version table, then each migration
    not applied yet (appended to `applied` as it runs)."""
    name = sql.Identifier(schema)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.schema_version (version int PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(name)
    )
    done = {
        row[0]
        for row in conn.execute(sql.SQL("SELECT version FROM {}.schema_version").format(name))
    }
    for migration in pending:
        if migration.version in done:
            continue
        for text in migration.statements:
            conn.execute(sql.SQL(text).format(schema=name))
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_version (version, name) VALUES (%s, %s)").format(name),
            (migration.version, migration.name),
        )
        applied.append(migration.name)
