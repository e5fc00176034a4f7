"""The tool's own schema on MariaDB (MySQL 8 designed for): a database of its own, migrated step
by step.

The migrations are the SQL files of `migrations/`, numbered as PostgreSQL's (same tables, same
columns in the same order, same meaning; docs/ENGINES.md, 2.9). MariaDB commits every DDL
statement by itself, so a migration cannot be one transaction as on PostgreSQL. Instead:

- each statement of a file is one *step*, idempotent by itself (`CREATE ... IF NOT EXISTS`,
  `ADD COLUMN IF NOT EXISTS`, `MODIFY`): running it again after a crash changes nothing;
- each step done is recorded in `schema_steps`, the migration in `schema_version` after its
  last step; the next `migrate` skips what is recorded and runs the rest, so a crash between
  two steps (or between a step and its record) is completed by the next run;
- one migrator at a time: `GET_LOCK` on a name that holds the tool's database (named locks
  are server-wide); the second waits, then finds nothing left to do.

`append_only_problems` lists what would let the connected account rewrite the audit trail:
a missing or altered trigger, or a privilege (UPDATE, DELETE, DROP which TRUNCATE needs,
ALTER, TRIGGER) at any level, to the account, PUBLIC or a role it can enable. MariaDB shows an
account its own privileges only: run as the tool's account (what `check` does), it sees that
account's own grants, names the roles it could enable without seeing theirs (nor PUBLIC's),
and sees that both triggers exist but not their bodies (reading them needs the TRIGGER
privilege, which the account must not have); an administrator's run compares the bodies too.

Steps commit one by one: `migrate` refuses to run inside a transaction (the first DDL would
commit the caller's work).

MySQL 8 (designed for; 9.7 tested) has no `ADD COLUMN`, `ADD CONSTRAINT` or
`CREATE INDEX ... IF NOT EXISTS` (008, 009), and `CREATE TRIGGER IF NOT EXISTS` (002) from
8.0.29 only. Where the engine lacks them (capability `ddl_if_not_exists`), such a step asks
information_schema whether its object exists, and runs without `IF NOT EXISTS` only when it does
not (`guarded`): idempotent as MariaDB's, on any 8.0. The other steps use what MySQL 8.0 takes
(`CREATE TABLE IF NOT EXISTS`, expression defaults, CHECKs, `MODIFY`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import LiteralString

from psycopg.pq import TransactionStatus

from retention.engines import Connection, engine_of, errors, sql
from retention.engines.mariadb import flavour
from retention.engines.mariadb.catalogue import Catalogue
from retention.engines.own_schema import SHARED_COLUMNS, Migration
from retention.errors import DatabaseError

TRAIL = "audit"
# What refuses the trail's rows being changed, by event; the bodies are read from 002.
TRIGGERS = {"UPDATE": "audit_no_update", "DELETE": "audit_no_delete"}
# Privileges that let an account rewrite the trail: UPDATE and DELETE change rows (before the
# triggers refuse them, if they exist), DROP allows TRUNCATE (no trigger fires) and DROP TABLE,
# ALTER rewrites columns, TRIGGER drops the triggers.
REWRITING = ("UPDATE", "DELETE", "DROP", "ALTER", "TRIGGER")
LOCK_WAIT_SECONDS = 300.0

_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_TRIGGER_BODY = re.compile(r"FOR EACH ROW\s+(.*)$", re.DOTALL)
_LOCK_NAME_MAX = 64  # MySQL refuses longer names; MariaDB accepts them

# Before the first pending migration: the database, and where progress is recorded.
BOOTSTRAP = (
    "CREATE DATABASE IF NOT EXISTS {schema} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {schema}.schema_version ("
    "version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, "
    "applied_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6))"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS {schema}.schema_steps ("
    "version INT NOT NULL, step INT NOT NULL, "
    "applied_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)), PRIMARY KEY (version, step)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
)


class OwnSchema:
    """The tool's schema on MariaDB, as the engine serves it (docs/ENGINES.md, 3: OwnSchema)."""

    def migrations(self) -> list[Migration]:
        return migrations()

    def columns(self) -> Mapping[str, tuple[str, ...]]:
        return {
            **SHARED_COLUMNS,
            # a segment's subjects (PostgreSQL: a text[] column of the segment)
            "archive_segment_subjects": ("file_id", "grp", "ord", "digest"),
            # transaction locks (the trail's appenders): named locks outlive a transaction
            "locks": ("name",),
            "schema_steps": ("version", "step", "applied_at"),  # each migration step done
        }

    def migrate(self, conn: Connection, schema: str) -> list[str]:
        return migrate(conn, schema)

    def append_only_problems(self, conn: Connection, schema: str) -> list[str]:
        return append_only_problems(conn, schema)

    def trigger_problems(self, conn: Connection, schema: str) -> list[str]:
        return _trigger_problems(conn, schema)

    def repair(self, conn: Connection, schema: str) -> list[str]:
        """Each trigger missing or changed made again from migration 002's statement."""
        problems = _trigger_problems(conn, schema)
        audit = next(m for m in migrations() if m.version == 2)
        for name in TRIGGERS.values():
            if not any(quote(schema, name) in p for p in problems):
                continue
            made = next(
                s
                for s in audit.statements
                if s.startswith(f"CREATE TRIGGER IF NOT EXISTS {{schema}}.{name} ")
            )
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {}").format(sql.Identifier(schema, name)))
            # dropped just now: made without IF NOT EXISTS, which MySQL takes from 8.0.29 only
            conn.execute(render(made.replace(" IF NOT EXISTS", "", 1), schema))
        return [p for p in problems if any(quote(schema, n) in p for n in TRIGGERS.values())]

    def serves_this_database(self, conn: Connection, other: str) -> bool:
        named = conn.execute(
            "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 'holds' AND COLUMN_NAME = 'subject_table'",
            (other,),
        ).fetchone()
        if named is None:
            return False  # a version before holds named their table: none names this database
        try:
            # a savepoint inside the caller's transaction (a plan's): a refusal leaves it usable
            with conn.transaction():
                row = conn.execute(
                    sql.SQL(
                        "SELECT 1 FROM {} WHERE LEFT(subject_table, CHAR_LENGTH(DATABASE()) + 1) "
                        "= CONCAT(DATABASE(), '.') LIMIT 1"
                    ).format(sql.Identifier(other, "holds"))
                ).fetchone()
        except errors.InsufficientPrivilege:
            return False  # not readable by this account: nothing it recorded there
        except (errors.UndefinedTable, errors.InvalidCatalogName):
            # dropped since information_schema listed it (another tool database removed
            # meanwhile: seen in the suite, its tests side by side; MySQL says the database
            # is unknown where MariaDB says the table is): it keeps nothing now
            return False
        return row is not None


def migrations() -> list[Migration]:
    """Every shipped migration, in order; each statement is one step (a template holding
    `{schema}`)."""
    folder = resources.files("retention.engines.mariadb") / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            text = item.read_text(encoding="utf-8")
            version = int(item.name.split("_", 1)[0])
            found.append(Migration(version, item.name, split_statements(text)))
    return sorted(found, key=lambda m: m.version)


def split_statements(text: str) -> tuple[str, ...]:
    """The statements of a migration file: whole-line `--` comments dropped, split at each `;`
    that ends a line (trigger bodies are one statement, without `;`)."""
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return tuple(part.strip() for part in _STATEMENT_END.split(kept) if part.strip())


def render(template: str, schema: str) -> sql.Composed:
    """A step for the tool's database `schema` (the template's `{{` `}}` are braces)."""
    return sql.SQL(template).format(schema=sql.Identifier(schema))


def quote(*names: str) -> str:
    """A qualified name as MariaDB writes it, for messages and printed scripts."""
    return ".".join("`" + name.replace("`", "``") + "`" for name in names)


def migrate(
    conn: Connection, schema: str = "retention", *, lock_wait: float = LOCK_WAIT_SECONDS
) -> list[str]:
    """Create or upgrade the tool's database `schema`; the names of the migrations applied
    (none when it was up to date). Waits up to `lock_wait` seconds for another migrator."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("migrate runs outside a transaction: each DDL step commits")
    try:
        with migration_lock(conn, schema, lock_wait):
            return upgrade(conn, schema, migrations())
    except errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"cannot create or upgrade the '{schema}' database: {exc.diag.message_primary}",
            hint="run 'retention init' once as an administrator of the server",
        ) from None


def upgrade(conn: Connection, schema: str, wanted: Sequence[Migration]) -> list[str]:
    """Apply the steps of `wanted` not recorded yet (the caller holds the migration lock)."""
    versions, steps = progress(conn, schema)
    pending = [m for m in wanted if m.version not in versions]
    if not pending:
        return []
    for template in BOOTSTRAP:
        conn.execute(render(template, schema))
    applied = []
    for migration in pending:
        for step in range(1, len(migration.statements) + 1):
            if (migration.version, step) not in steps:
                apply_step(conn, schema, migration, step)
        conn.execute(
            sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(
                sql.Identifier(schema, "schema_version")
            ),
            (migration.version, migration.name),
        )
        applied.append(migration.name)
    return applied


def apply_step(conn: Connection, schema: str, migration: Migration, step: int) -> None:
    """Run step `step` (from 1) of `migration` and record it (two commits: a crash between
    them runs the idempotent step again)."""
    statement = migration.statements[step - 1]
    guard = None if engine_of(conn).capabilities.ddl_if_not_exists else guarded(statement)
    if guard is None:
        conn.execute(render(statement, schema))
    elif conn.execute(guard.exists, (schema, *guard.names)).fetchone() is None:
        conn.execute(render(guard.statement, schema))
    conn.execute(
        sql.SQL("INSERT INTO {} (version, step) VALUES (%s, %s)").format(
            sql.Identifier(schema, "schema_steps")
        ),
        (migration.version, step),
    )


@dataclass(frozen=True)
class Guard:
    """A step made idempotent by `IF NOT EXISTS`, for an engine without that form: whether its
    object exists (`exists`, parameters: the tool's database, then `names`), and the step
    without `IF NOT EXISTS`."""

    exists: LiteralString
    names: tuple[str, ...]
    statement: str


_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"
_GUARDS: tuple[tuple[re.Pattern[str], LiteralString], ...] = (
    (
        re.compile(rf"^ALTER TABLE \{{schema\}}\.{_NAME} ADD COLUMN IF NOT EXISTS {_NAME}\s"),
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s AND COLUMN_NAME = %s",
    ),
    (
        re.compile(rf"^ALTER TABLE \{{schema\}}\.{_NAME} ADD CONSTRAINT IF NOT EXISTS {_NAME}\s"),
        "SELECT 1 FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s "
        "AND TABLE_NAME = %s AND CONSTRAINT_NAME = %s",
    ),
    (
        re.compile(rf"^CREATE INDEX IF NOT EXISTS {_NAME}\s+ON \{{schema\}}\.{_NAME}\s"),
        "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "AND INDEX_NAME = %s AND TABLE_NAME = %s",
    ),
    (
        re.compile(rf"^CREATE TRIGGER IF NOT EXISTS \{{schema\}}\.{_NAME}\s"),
        "SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s AND TRIGGER_NAME = %s",
    ),
)


def guarded(statement: str) -> Guard | None:
    """The guard of a step written with MariaDB's `IF NOT EXISTS` (None: the step as it is)."""
    for pattern, exists in _GUARDS:
        found = pattern.match(statement)
        if found is not None:
            plain = statement.replace(" IF NOT EXISTS", "", 1)
            return Guard(exists, found.groups(), plain)
    return None


def progress(conn: Connection, schema: str) -> tuple[set[int], set[tuple[int, int]]]:
    """The versions applied and the steps recorded (none when the database is not there)."""
    present = {
        row[0]
        for row in conn.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME IN ('schema_version', 'schema_steps')",
            (schema,),
        )
    }
    versions: set[int] = set()
    steps: set[tuple[int, int]] = set()
    if "schema_version" in present:
        query = sql.SQL("SELECT version FROM {}").format(sql.Identifier(schema, "schema_version"))
        versions = {int(row[0]) for row in conn.execute(query)}
    if "schema_steps" in present:
        query = sql.SQL("SELECT version, step FROM {}").format(
            sql.Identifier(schema, "schema_steps")
        )
        steps = {(int(row[0]), int(row[1])) for row in conn.execute(query)}
    return versions, steps


def lock_name(schema: str) -> str:
    """The migration lock's name: server-wide, so it holds the tool's database name (a digest
    of it when the whole would pass MySQL's 64 characters)."""
    name = f"retention.migrate.{schema}"
    if len(name) <= _LOCK_NAME_MAX:
        return name
    return "retention.migrate." + hashlib.sha256(schema.encode()).hexdigest()[:40]


@contextmanager
def migration_lock(conn: Connection, schema: str, wait: float) -> Iterator[None]:
    """Hold the migration lock for the block; a clear error when another migrator keeps it."""
    name = lock_name(schema)
    row = conn.execute("SELECT GET_LOCK(%s, %s)", (name, wait)).fetchone()
    if row is None or row[0] != 1:
        holder = conn.execute("SELECT IS_USED_LOCK(%s)", (name,)).fetchone()
        who = f" (connection {holder[0]})" if holder and holder[0] is not None else ""
        raise DatabaseError(
            f"another process{who} is creating or upgrading the '{schema}' database: "
            f"its lock '{name}' was not released within {wait:g} s",
            hint="let it finish, then run the command again",
        )
    try:
        yield
    finally:
        conn.execute("SELECT RELEASE_LOCK(%s)", (name,)).fetchall()


# -- append-only --------------------------------------------------------------------------------


def trigger_bodies() -> dict[str, str]:
    """What each append-only trigger must do, by event, as migration 002 creates it."""
    audit = next(m for m in migrations() if m.version == 2)
    bodies = {}
    for statement in audit.statements:
        for event, name in TRIGGERS.items():
            if statement.startswith(f"CREATE TRIGGER IF NOT EXISTS {{schema}}.{name} "):
                body = _TRIGGER_BODY.search(statement)
                assert body is not None, f"002 creates {name} without a body"
                bodies[event] = _normal(body.group(1))
    return bodies


def append_only_problems(conn: Connection, schema: str) -> list[str]:
    """What would let the connected account rewrite the trail `schema`.audit (empty: nothing):
    a trigger missing or changed, the table not InnoDB, a rewriting privilege granted."""
    return [*_trigger_problems(conn, schema), *_privilege_problems(conn, schema)]


def _trigger_problems(conn: Connection, schema: str) -> list[str]:
    table = quote(schema, TRAIL)
    engine = conn.execute(
        "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (schema, TRAIL),
    ).fetchone()
    if engine is None:
        return [f"the audit trail {table} does not exist: run 'retention init'"]
    problems = []
    if str(engine[0]).lower() != "innodb":
        problems.append(
            f"the audit trail {table} uses the {engine[0]} storage engine, not InnoDB: "
            "its entries are not written in the transaction of the work they record"
        )
    found = {
        (str(row[0]), str(row[1]), str(row[2])): row[3]
        for row in conn.execute(
            "SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT "
            "FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = %s "
            "AND EVENT_OBJECT_TABLE = %s",
            (schema, TRAIL),
        )
    }
    # information_schema.TRIGGERS shows a table's triggers only to an account with a
    # privilege other than SELECT on it (MySQL: with TRIGGER): not seen is not missing
    seeing = "TRIGGER" if flavour.of(conn).server == "mysql" else "INSERT"
    if not found and Catalogue().may(conn, schema, TRAIL, (seeing,)) is False:
        return [
            *problems,
            f"the triggers that refuse UPDATE and DELETE on {table} cannot be seen by this "
            f"account (no {seeing} on it): run `retention check` as the owner to check them",
        ]
    for event, body in trigger_bodies().items():
        name = TRIGGERS[event]
        if (name, event, "BEFORE") not in found:
            problems.append(
                f"the trigger {quote(schema, name)} that refuses {event} on {table} is missing"
            )
        elif (actual := found[name, event, "BEFORE"]) is not None and _normal(actual) != body:
            problems.append(
                f"the trigger {quote(schema, name)} on {table} was changed: it must refuse "
                f"every {event} ({body})"
            )
    return problems


def _privilege_problems(conn: Connection, schema: str) -> list[str]:
    """Rewriting privileges of the account, its roles and PUBLIC, at every level."""
    account, roles = _account(conn)
    grantees = [account, "'PUBLIC'@''", *(f"'{role}'@''" for role in roles)]
    problems = []
    for where, view, condition, params in _levels(schema):
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT GRANTEE, PRIVILEGE_TYPE FROM {} WHERE GRANTEE IN ({}) "
                "AND PRIVILEGE_TYPE IN ({}) {} ORDER BY GRANTEE, PRIVILEGE_TYPE"
            ).format(
                sql.Identifier("information_schema", view),
                sql.SQL(", ").join(sql.Placeholder() * len(grantees)),
                sql.SQL(", ").join(sql.Placeholder() * len(REWRITING)),
                sql.SQL(condition),
            ),
            [*grantees, *REWRITING, *params],
        ).fetchall()
        problems += [
            f"{row[0]} has {row[1]} {where}: it could rewrite the audit trail"
            + (" (TRUNCATE needs DROP, and fires no trigger)" if row[1] == "DROP" else "")
            for row in rows
        ]
    if roles and not _sees_other_accounts(conn, account):
        problems.append(
            f"{account} can enable the roles {', '.join(roles)} (SET ROLE), whose privileges "
            "only an administrator can read: check them as one, or grant the account its "
            "privileges directly, as `retention grants` does"
        )
    return problems


def _levels(schema: str) -> list[tuple[str, str, LiteralString, list[str]]]:
    """Where a privilege can be granted: how to say it, its view, the condition on it."""
    table = quote(schema, TRAIL)
    on_trail: LiteralString = "AND TABLE_SCHEMA = %s AND TABLE_NAME = %s"
    return [
        ("globally (*.*)", "USER_PRIVILEGES", "", []),
        # a database-level grant names a LIKE pattern (`_` and `%` unless escaped)
        (
            f"on the database {quote(schema)}",
            "SCHEMA_PRIVILEGES",
            "AND %s LIKE TABLE_SCHEMA",
            [schema],
        ),
        (f"on {table}", "TABLE_PRIVILEGES", on_trail, [schema, TRAIL]),
        (f"on columns of {table}", "COLUMN_PRIVILEGES", on_trail, [schema, TRAIL]),
    ]


def _account(conn: Connection) -> tuple[str, list[str]]:
    """The connected account as information_schema names grantees ('user'@'host'), and the
    roles it can enable (granted to it, or to those roles)."""
    row = conn.execute("SELECT CURRENT_USER()").fetchone()
    user, _, host = str(row[0]).rpartition("@")
    found = conn.execute("SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES").fetchall()
    return f"'{user}'@'{host}'", sorted({str(r[0]) for r in found if r[0] is not None})


def _sees_other_accounts(conn: Connection, account: str) -> bool:
    """information_schema shows an account only its own privileges, an administrator all."""
    query = "SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE GRANTEE <> %s LIMIT 1"
    return conn.execute(query, (account,)).fetchone() is not None


def _normal(text: str) -> str:
    return " ".join(str(text).split())
