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
        return self.trigger_problems(conn, schema)

    def trigger_problems(self, conn: Connection, schema: str) -> list[str]:
        """The trail's two triggers (migration 002), missing or not firing: a superuser or the
        owner can drop or disable them, and the trail then takes UPDATE, DELETE and TRUNCATE
        (the chain still shows the change; nothing refuses it any more)."""
        found = dict(
            conn.execute(
                "SELECT t.tgname, t.tgenabled FROM pg_trigger AS t JOIN pg_class AS c "
                "ON c.oid = t.tgrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = 'audit' AND NOT t.tgisinternal",
                (schema,),
            ).fetchall()
        )
        problems = []
        for name, refuses in TRIGGERS.items():
            state = found.get(name)
            if state is None:
                problems.append(
                    f"the trigger {name} on {schema}.audit is missing: {refuses} on the trail "
                    "are not refused (run 'retention init' as the owner to restore it)"
                )
            elif str(state) not in ("O", "A"):  # D: disabled; R: fires on replicas only
                problems.append(
                    f"the trigger {name} on {schema}.audit is disabled: {refuses} on the trail "
                    "are not refused (run 'retention init' as the owner to enable it)"
                )
        return problems

    def repair(self, conn: Connection, schema: str) -> list[str]:
        """Restore the trail's triggers when missing or disabled (as the owner); what was
        repaired."""
        problems = self.trigger_problems(conn, schema)
        if not problems:
            return []
        # the end of migration 002, from the function on: every statement of it idempotent
        text = next(m for m in self.migrations() if m.version == 2).statements[0]
        repair = text[text.index(f"CREATE OR REPLACE FUNCTION {{schema}}.{FUNCTION}()") :]
        with conn.transaction():
            conn.execute(sql.SQL(repair).format(schema=sql.Identifier(schema)))
        return problems


# the trail's triggers (migration 002) and what each refuses
TRIGGERS = {"audit_append_only": "UPDATE and DELETE", "audit_no_truncate": "TRUNCATE"}
FUNCTION = "audit_append_only"


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
