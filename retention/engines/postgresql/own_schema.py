"""The tool's schema on PostgreSQL: numbered SQL files shipped in `migrations/` (plpgsql
triggers, jsonb, text[] with a GIN index); every pending one applies in one transaction under an
advisory lock, and is recorded in `schema_version`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from retention.engines import Connection, errors, sql
from retention.engines.locks import TransactionLock
from retention.engines.own_schema import SHARED_COLUMNS, Migration
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

    def columns(self) -> Mapping[str, tuple[str, ...]]:
        # a segment's subjects: a text[] column (MariaDB: a table of their own)
        segments = (*SHARED_COLUMNS["archive_segments"], "subject_digests")
        return {**SHARED_COLUMNS, "archive_segments": segments}

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
        """The trail's two triggers (migration 002), missing, not firing, or changed (their
        definition, or their function's body): a superuser or the owner can do any of it, and
        the trail then takes UPDATE, DELETE and TRUNCATE (the chain still shows the change;
        nothing refuses it any more)."""
        found = {
            str(name): (str(enabled), str(definition))
            for name, enabled, definition in conn.execute(
                "SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger AS t "
                "JOIN pg_class AS c ON c.oid = t.tgrelid JOIN pg_namespace AS n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'audit' "
                "AND NOT t.tgisinternal",
                (schema,),
            ).fetchall()
        }
        problems = []
        row = conn.execute("SELECT quote_ident(%s)", (schema,)).fetchone()
        quoted = str(row[0]) if row else schema  # as pg_get_triggerdef writes it
        table, function = f"{quoted}.audit", f"{quoted}.{FUNCTION}"
        for name, (refuses, events, each) in TRIGGERS.items():
            state = found.get(name)
            wanted = (
                f"CREATE TRIGGER {name} BEFORE {events} ON {table} FOR EACH {each} "
                f"EXECUTE FUNCTION {function}()"
            )
            if state is None:
                what = "is missing"
            elif state[0] not in ("O", "A"):  # D: disabled; R: fires on replicas only
                what = "is disabled"
            elif state[1] != wanted:
                what = "was changed"
            else:
                continue
            problems.append(
                f"the trigger {name} on {schema}.audit {what}: {refuses} on the trail are not "
                "refused (run 'retention init' as the owner to make it again)"
            )
        body = conn.execute(
            "SELECT p.prosrc FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = %s",
            (schema, FUNCTION),
        ).fetchone()
        if body is not None and " ".join(str(body[0]).split()) != _expected_body(self):
            problems.append(
                f"the function {schema}.{FUNCTION}() of the trail's triggers was changed: it "
                "must refuse every UPDATE, DELETE and TRUNCATE (run 'retention init' as the "
                "owner to make it again)"
            )
        return problems

    def repair(self, conn: Connection, schema: str) -> list[str]:
        """Restore the trail's triggers when missing or disabled (as the owner); what was
        repaired."""
        problems = self.trigger_problems(conn, schema)
        if not problems:
            return []
        # the end of migration 002, from the function on: every statement of it idempotent
        text = _trail_migration(self)
        repair = text[text.index(f"CREATE OR REPLACE FUNCTION {{schema}}.{FUNCTION}()") :]
        with conn.transaction():
            conn.execute(sql.SQL(repair).format(schema=sql.Identifier(schema)))
        return problems


# name: what it refuses, and its definition's events and level (as pg_get_triggerdef says them)
TRIGGERS = {
    "audit_append_only": ("UPDATE and DELETE", "DELETE OR UPDATE", "ROW"),
    "audit_no_truncate": ("TRUNCATE", "TRUNCATE", "STATEMENT"),
}
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


def _trail_migration(schema: OwnSchema) -> str:
    """Migration 002's text: the trail, its triggers and their function."""
    return next(m for m in schema.migrations() if m.version == 2).statements[0]


def _expected_body(schema: OwnSchema) -> str:
    """The body of the triggers' function as migration 002 writes it, its spaces folded."""
    text = _trail_migration(schema)
    start = text.index("$$", text.index(f"FUNCTION {{schema}}.{FUNCTION}()")) + 2
    return " ".join(text[start : text.index("$$", start)].split())
