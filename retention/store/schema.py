"""The tool's own schema (`retention` by default): created and migrated by the tool.

Migrations are numbered and each applies once, in order, one migrator at a time; what they
contain and how they are applied is the engine's (retention.engines.own_schema; PostgreSQL's are
SQL files in `retention/engines/postgresql/migrations/`, applied in one transaction).
"""

from __future__ import annotations

import re

from retention.engines import Connection, engine_of, errors, sql
from retention.errors import RetentionError, SchemaNameError

# the tables that make a schema (a database on MariaDB/MySQL) the tool's own
_OWN_TABLES = ("audit", "holds", "schema_version")


def migrate(conn: Connection, schema: str = "retention") -> list[str]:
    """Create or upgrade the tool's schema; returns the names of the migrations applied."""
    return engine_of(conn).own_schema.migrate(conn, schema)


def installed_elsewhere(conn: Connection, schema: str) -> list[str]:
    """When `schema` does not exist: the other schemas holding the tool's own tables that this
    account sees and that keep what concerns this database (`OwnSchema.serves_this_database`:
    on MariaDB/MySQL several application databases may each have a tool database on one
    server)."""
    engine = engine_of(conn)
    if engine.catalogue.table_exists(conn, schema, "audit"):
        return []
    rows = conn.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name IN (%s, %s, %s) "
        "GROUP BY table_schema HAVING COUNT(DISTINCT table_name) = 3 ORDER BY table_schema",
        _OWN_TABLES,
    ).fetchall()
    others = [str(r[0]) for r in rows if str(r[0]) != schema]
    return [other for other in others if engine.own_schema.serves_this_database(conn, other)]


def refuse_a_stray_schema(conn: Connection, schema: str) -> None:
    """A command about to create the tool's schema `schema`, or to read its legal holds,
    stops when that schema does not exist but another one holds the tool's tables: a misspelt
    `schema_name` would otherwise start an empty trail and plan and run without the legal
    holds recorded in the real one. `retention init` creates it on purpose."""
    others = installed_elsewhere(conn, schema)
    if others:
        raise SchemaNameError(
            f"the tool's schema '{schema}' (setting schema_name) does not exist in this "
            f"database, but {', '.join(repr(o) for o in others)} holds the tool's tables "
            "(audit trail, legal holds, approvals)",
            hint=f"set schema_name to {others[0]!r} (RETENTION_SCHEMA_NAME); or create "
            f"'{schema}' on purpose with `retention init`",
        )


_CREATED = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?\{schema\}\.(\w+)", re.IGNORECASE)


def missing_tables(conn: Connection, schema: str) -> list[str]:
    """The tables the applied migrations create that are not there (dropped, or hidden from
    this account): `init` found the schema 'up to date' with its holds or its trail dropped,
    and an empty table made again would hide what it held (a review of bad inputs)."""
    engine = engine_of(conn)
    names = dict.fromkeys(
        name
        for migration in engine.own_schema.migrations()
        for statement in migration.statements
        for name in _CREATED.findall(statement)
    )
    return [name for name in names if not engine.catalogue.table_exists(conn, schema, name)]


def pending_migrations(conn: Connection, schema: str) -> list[str] | None:
    """The shipped migrations `schema` has not applied (an upgrade of the tool whose `init`
    has not run yet), by name; None when this account cannot read `schema_version`."""
    engine = engine_of(conn)
    try:
        rows = conn.execute(
            sql.SQL("SELECT version FROM {}").format(sql.Identifier(schema, "schema_version"))
        ).fetchall()
    except (errors.InsufficientPrivilege, errors.UndefinedTable):
        return None
    applied = {int(row[0]) for row in rows}
    return [m.name for m in engine.own_schema.migrations() if m.version not in applied]


def not_upgraded_error(schema: str, pending: list[str], said: str = "") -> SchemaAlteredError:
    """The error of a tool's schema older than this version of the tool (`init` not run);
    `said`: what the database said, when a command stopped on it."""
    return SchemaAlteredError(
        f"the tool's schema '{schema}' is older than this version of retention: its "
        f"migrations {', '.join(pending)} have not been applied{said}",
        hint="run `retention init` once as the owner of the schema (it applies them; the "
        "tool's roles cannot)",
    )


def altered_tables(conn: Connection, schema: str) -> list[str]:
    """The tool's tables found without a column their migrations made (dropped or renamed by
    hand), one line each: until now `init` said 'up to date' and a command stopped on a bare
    'column ... does not exist' (a review of bad inputs). Tables missing altogether, or that
    this account cannot see, are `missing_tables`' to name. Compares with every shipped
    migration: on a schema every migration was applied to (`pending_migrations` empty)."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        (schema,),
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), set()).add(str(column))
    problems = []
    for table, columns in engine_of(conn).own_schema.columns().items():
        lacking = [c for c in columns if table in found and c not in found[table]]
        if lacking:
            noun = "column" if len(lacking) == 1 else "columns"
            problems.append(f"{schema}.{table} lacks the {noun} {', '.join(lacking)}")
    return problems


class SchemaAlteredError(RetentionError):
    """The tool's tables are not as their migrations made them."""

    exit_code = 4


def altered_error(
    schema: str, problems: list[str], *, init: bool, said: str = ""
) -> SchemaAlteredError:
    """The error naming what was changed in the tool's schema by hand (`altered_tables`);
    `said`: what the database said, when a command stopped on it."""
    because = "" if init else ", which stopped this command"
    return SchemaAlteredError(
        f"the tool's schema '{schema}' was changed by hand{because}: {'; '.join(problems)}"
        + (": init does not change its tables back" if init else said),
        hint="restore those tables from a backup (their rows are the audit trail, the legal "
        "holds, the runs and the archive catalogue), or add the columns again as the "
        "migrations shipped with retention define them (retention/engines/<engine>/"
        "migrations); `retention init` checks the schema again",
    )


class TrailMissingError(RetentionError):
    """The tool's schema is there without its audit trail: as broken a trail as can be."""

    exit_code = 1


def require_installed(conn: Connection, schema: str) -> None:
    """A command that reads the tool's schema (the audit trail) and cannot do without it:
    a clear error when it does not exist (`refuse_a_stray_schema` first: another one may)."""
    catalogue = engine_of(conn).catalogue
    if catalogue.table_exists(conn, schema, "audit"):
        return
    refuse_a_stray_schema(conn, schema)
    if catalogue.table_exists(conn, schema, "runs"):  # the schema is there, its trail is not
        raise TrailMissingError(
            f"the audit trail {schema}.audit is missing while the tool's other tables are in "
            f"{schema}: it was dropped",
            hint="restore it from a backup; 'retention audit verify --head FILE' on the "
            "restored trail tells which entries the head file knew",
        )
    raise SchemaNameError(
        f"the tool's schema '{schema}' (setting schema_name) does not exist in this database: "
        "there is no audit trail to read",
        hint="run `retention init` once as the owner, or set schema_name to the tool's schema",
    )


class HoldsMissingError(RetentionError):
    """The tool's schema is there, but not its legal holds for this account."""

    exit_code = 1


def holds_table(conn: Connection, schema: str = "retention") -> sql.Composable | None:
    """The holds table, or None when the tool's schema is not installed yet (no hold can
    have been recorded). The schema there without a holds table this account sees (dropped,
    or no privilege on it) is an error: a plan, a report or an exposure would show held
    records as due, and say nothing (an outside review)."""
    catalogue = engine_of(conn).catalogue
    if catalogue.table_exists(conn, schema, "holds"):
        return sql.Identifier(schema, "holds")
    refuse_a_stray_schema(conn, schema)  # not the holds of another schema, unseen
    if any(catalogue.table_exists(conn, schema, t) for t in ("audit", "runs", "schema_version")):
        raise HoldsMissingError(
            f"the legal holds table {schema}.holds is missing, or this account cannot read "
            f"it, while the tool's other tables are in {schema}: nothing is planned, run or "
            "reported without the legal holds",
            hint=f"grant SELECT on {schema}.holds to this account (`retention grants` prints "
            "what each role needs); if it was dropped, restore it from a backup (its rows are "
            "the legal holds); if `retention init` stopped before creating it, run it again",
        )
    return None
