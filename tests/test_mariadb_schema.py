"""The tool's own schema on MariaDB: migrations, append-only trail, grants, against a real server.

Each test creates its own databases (the tool's database is one: a MariaDB "schema" is a
database) and accounts, and drops them afterwards.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

from retention import db
from retention.engines import engine_for, engine_of, errors, sql
from retention.engines.mariadb import ENGINE, grants, schema
from retention.engines.mariadb.connection import MariaDBConnection
from retention.engines.mariadb.errors import errno_of
from retention.engines.mariadb.flavour import MARIADB_CAPABILITIES
from retention.errors import DatabaseError, UsageError
from retention.settings import Settings
from retention.store import schema as pg_schema
from tests.fix_mariadb import server_is_mysql, with_database
from tests.test_run_mariadb import general_log
from tests.thread_helpers import in_threads

MARIADB_ONLY = {"schema_steps", "locks", "archive_segment_subjects"}


# -- fixtures: the server of tests/fix_mariadb.py ----------------------------------------------


@pytest.fixture
def admin(mariadb_conn: MariaDBConnection) -> MariaDBConnection:
    """The tool's connection as root, to a fresh database (the hospital's, where one is needed)."""
    return mariadb_conn


@pytest.fixture
def databases(admin: MariaDBConnection) -> Iterator[list[str]]:
    """Names for this test's other databases (`databases.append(...)`), dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        _run(admin, f"DROP DATABASE IF EXISTS {schema.quote(name)}")


@pytest.fixture
def tool_db(databases: list[str]) -> str:
    return _new_database(databases)


def _new_database(databases: list[str]) -> str:
    name = f"rt_ms_{secrets.token_hex(6)}"
    databases.append(name)
    return name


@pytest.fixture
def account(admin: MariaDBConnection) -> Iterator[tuple[str, str]]:
    """A real account (user, password) with no privilege yet, dropped afterwards."""
    user, password = f"rt_ms_{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    # the server takes no parameter there: the driver escapes it into the text
    admin.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", [password], prepare=False)
    yield user, password
    _run(admin, f"DROP USER IF EXISTS '{user}'@'%'")


def _connect(url: str) -> MariaDBConnection:
    conn = db.connect(Settings(), url=url)
    assert isinstance(conn, MariaDBConnection)
    return conn


def _connect_as(admin_url: str, user: str, password: str, database: str = "") -> MariaDBConnection:
    scheme, rest = with_database(admin_url, database).split("://", 1)
    return _connect(f"{scheme}://{user}:{password}@{rest.split('@', 1)[1]}")


def _run(
    conn: MariaDBConnection, statement: sql.SQL | sql.Composed | str, params: tuple[Any, ...] = ()
) -> list[Any]:
    cursor = conn.execute(statement, params or None)
    return list(cursor.fetchall()) if cursor.description else []


def _refused(conn: MariaDBConnection, statement: str, params: tuple[Any, ...] = ()) -> int | None:
    """The MariaDB error number of a statement the server refuses."""
    with pytest.raises(psycopg.Error) as caught:
        _run(conn, statement, params)
    return errno_of(caught.value)


def _dump(conn: MariaDBConnection, db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything that makes the tool's database what it is, its own name left out."""
    queries = {
        "tables": "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s ORDER BY 1",
        "columns": "SELECT TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, "
        "COLUMN_DEFAULT, COLLATION_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s ORDER BY 1, 2",
        "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, "
        "NON_UNIQUE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2, 3",
        # MySQL's CHECK_CONSTRAINTS has no TABLE_NAME: TABLE_CONSTRAINTS has, on both
        "checks": "SELECT t.TABLE_NAME, c.CONSTRAINT_NAME, c.CHECK_CLAUSE FROM "
        "information_schema.CHECK_CONSTRAINTS AS c JOIN information_schema.TABLE_CONSTRAINTS "
        "AS t ON t.CONSTRAINT_SCHEMA = c.CONSTRAINT_SCHEMA AND t.CONSTRAINT_NAME = "
        "c.CONSTRAINT_NAME AND t.CONSTRAINT_TYPE = 'CHECK' WHERE c.CONSTRAINT_SCHEMA = %s "
        "ORDER BY 1, 2",
        "foreign keys": "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, "
        "REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY 1, 2, 3",
        "triggers": "SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT "
        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY 1",
        "versions": f"SELECT version, name FROM {schema.quote(db, 'schema_version')} ORDER BY 1",
        "steps": f"SELECT version, step FROM {schema.quote(db, 'schema_steps')} ORDER BY 1, 2",
        "locks": f"SELECT name FROM {schema.quote(db, 'locks')}",
    }
    return {
        what: [tuple(row) for row in _run(conn, q, (db,) if "%s" in q else ())]
        for what, q in queries.items()
    }


def _tables(conn: MariaDBConnection, db: str) -> set[str]:
    query = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
    return {row[0] for row in _run(conn, query, (db,))}


# -- migrations -----------------------------------------------------------------------------------


def test_migration_numbers_and_names_match_postgresql() -> None:
    ours = [(m.version, m.name) for m in schema.migrations()]
    theirs = engine_for("postgresql://").own_schema.migrations()
    assert ours == [(m.version, m.name) for m in theirs]


def test_every_step_is_one_statement_of_mariadb_ddl() -> None:
    steps = [s for m in schema.migrations() for s in m.statements]
    assert steps and all(s.split()[0] in {"CREATE", "ALTER", "INSERT"} for s in steps)
    assert all("--" not in s and not s.rstrip().endswith(";") for s in steps)
    created = [s for s in steps if s.startswith("CREATE TABLE")]
    assert all("ENGINE=InnoDB" in s and "COLLATE=utf8mb4_bin" in s for s in created)
    by_version = {m.version: m.statements for m in schema.migrations()}
    assert by_version[6] == ()  # PostgreSQL drops an index MariaDB never had


def test_migrate_from_empty_creates_every_table_and_records_every_step(
    admin: MariaDBConnection, tool_db: str
) -> None:
    applied = schema.migrate(admin, tool_db)

    assert applied == [m.name for m in schema.migrations()]
    dump = _dump(admin, tool_db)
    assert dump["versions"] == [(m.version, m.name) for m in schema.migrations()]
    assert dump["steps"] == [
        (m.version, step) for m in schema.migrations() for step in range(1, len(m.statements) + 1)
    ]
    assert {engine for _, engine, _ in dump["tables"]} == {"InnoDB"}
    assert {collation for _, _, collation in dump["tables"]} == {"utf8mb4_bin"}
    assert dump["locks"] == [("audit chain",)]
    user, host = str(_run(admin, "SELECT CURRENT_USER()")[0][0]).rsplit("@", 1)
    assert schema.append_only_problems(admin, tool_db) == [
        f"'{user}'@'{host}' has {p} globally (*.*): it could rewrite the audit trail"
        + (" (TRUNCATE needs DROP, and fires no trigger)" if p == "DROP" else "")
        for p in sorted(schema.REWRITING)
    ]  # root may do anything: only the privileges are named, the triggers are in place


def test_migrate_twice_changes_nothing(admin: MariaDBConnection, tool_db: str) -> None:
    schema.migrate(admin, tool_db)
    before = _dump(admin, tool_db)

    assert schema.OwnSchema().migrate(admin, tool_db) == []  # as the engine serves it
    assert _dump(admin, tool_db) == before


@pytest.mark.mariadb_only("runs each step as MariaDB takes it (IF NOT EXISTS)")
def test_every_step_run_again_changes_nothing(admin: MariaDBConnection, tool_db: str) -> None:
    """What lets a crash between a step and its record be completed by running it again."""
    schema.migrate(admin, tool_db)
    before = _dump(admin, tool_db)

    for migration in schema.migrations():
        for statement in migration.statements:
            _run(admin, schema.render(statement, tool_db))

    assert _dump(admin, tool_db) == before


def test_a_crash_between_steps_is_completed_by_the_next_migrate(
    admin: MariaDBConnection, databases: list[str]
) -> None:
    straight, crashed = _new_database(databases), _new_database(databases)
    schema.migrate(admin, straight)
    # a first run dies in migration 2: 001's steps done (its version not recorded), 002's
    # first three done and recorded, its fourth done but not recorded
    audit = schema.migrations()[1]
    assert audit.version == 2 and len(audit.statements) > 4
    schema.upgrade(admin, crashed, [])  # nothing pending: creates nothing
    assert _tables(admin, crashed) == set()
    for template in schema.BOOTSTRAP:
        _run(admin, schema.render(template, crashed))
    schema.apply_step(admin, crashed, schema.migrations()[0], 1)
    for step in (1, 2, 3):
        schema.apply_step(admin, crashed, audit, step)
    _run(admin, schema.render(audit.statements[3], crashed))

    applied = schema.migrate(admin, crashed)

    assert applied == [m.name for m in schema.migrations()]
    assert _dump(admin, crashed) == _dump(admin, straight)


def test_every_if_not_exists_step_but_create_table_has_a_guard_for_mysql() -> None:
    steps = [s for m in schema.migrations() for s in m.statements]
    unguarded = [
        s
        for s in steps
        if "IF NOT EXISTS" in s
        and not s.startswith("CREATE TABLE IF NOT EXISTS")
        and schema.guarded(s) is None
    ]
    assert unguarded == []
    guards = [g for g in map(schema.guarded, steps) if g is not None]
    assert len(guards) == 8  # 2 triggers (002), 2 columns, a check and an index (008), 2 (009)
    assert all("IF NOT EXISTS" not in g.statement for g in guards)
    assert schema.guarded("CREATE TABLE IF NOT EXISTS {schema}.x (a INT)") is None


def test_without_if_not_exists_ddl_migrate_asks_information_schema_and_ends_the_same(
    admin: MariaDBConnection,
    databases: list[str],
    mariadb_admin_url: str,
    mysql_capabilities: None,
) -> None:
    """MySQL's path, on MariaDB: the same database as MariaDB's own steps make, no statement
    of the migration written with an `IF NOT EXISTS` MySQL 8.0 refuses, and every step run
    again (a crash before its record) changes nothing."""
    assert not engine_of(admin).capabilities.ddl_if_not_exists
    mysql, own = _new_database(databases), _new_database(databases)

    applied, logged = general_log(mariadb_admin_url, lambda: schema.migrate(admin, mysql))

    assert applied == [m.name for m in schema.migrations()]
    ours = [text for _, kind, text in logged if kind in ("Query", "Execute") and mysql in text]
    assert any(t.startswith("ALTER TABLE") and "ADD COLUMN" in t for t in ours)
    assert any(t.startswith("CREATE TRIGGER") for t in ours)
    refused = [
        t
        for t in ours
        if "IF NOT EXISTS" in t
        and not t.startswith(("CREATE TABLE IF NOT EXISTS", "CREATE DATABASE IF NOT EXISTS"))
    ]
    assert refused == []
    with pytest.MonkeyPatch.context() as own_ddl:
        own_ddl.setattr(type(ENGINE), "capabilities", MARIADB_CAPABILITIES)
        schema.migrate(admin, own)
    assert _dump(admin, mysql) == _dump(admin, own)

    # a migrator that died after every step, before recording any: the next one runs each
    # step again, and the guarded ones find their objects there
    before = _dump(admin, mysql)
    for table in ("schema_steps", "schema_version"):
        _run(admin, sql.SQL("DELETE FROM {}").format(sql.Identifier(mysql, table)))

    assert schema.migrate(admin, mysql) == applied
    assert _dump(admin, mysql) == before


def test_a_second_migrator_waits_for_the_first(
    admin: MariaDBConnection, tool_db: str, mariadb_url: str
) -> None:
    holder = _connect(mariadb_url)
    try:
        assert _run(holder, "SELECT GET_LOCK(%s, 0)", (schema.lock_name(tool_db),)) == [(1,)]
        with pytest.raises(DatabaseError, match=r"another process .* is creating or upgrading"):
            schema.migrate(admin, tool_db, lock_wait=0)
        assert _tables(admin, tool_db) == set()
    finally:
        holder.close()  # the server releases a session's named locks when it ends
    # the next migrator waits (the server may end the holder's session a moment later)
    assert len(schema.migrate(admin, tool_db)) == len(schema.migrations())


def test_two_migrators_at_once_apply_each_step_once(
    admin: MariaDBConnection, tool_db: str, mariadb_url: str
) -> None:
    results: list[list[str]] = []

    def migrator(_: int) -> None:
        conn = _connect(mariadb_url)
        try:
            results.append(schema.migrate(conn, tool_db))
        finally:
            conn.close()

    failures = in_threads(migrator, 2)

    assert failures == []
    assert sorted(results, key=len) == [[], [m.name for m in schema.migrations()]]
    steps = _dump(admin, tool_db)["steps"]
    assert len(steps) == len(set(steps)) == sum(len(m.statements) for m in schema.migrations())


def test_lock_names_hold_the_database_and_fit_mysql() -> None:
    assert schema.lock_name("retention") == "retention.migrate.retention"
    long_names = {schema.lock_name("r" * 63), schema.lock_name("r" * 62 + "s")}
    assert len(long_names) == 2 and all(len(n) <= 64 for n in long_names)


def test_an_account_without_ddl_privileges_gets_a_clear_error(
    tool_db: str, account: tuple[str, str], mariadb_admin_url: str
) -> None:
    user, password = account
    conn = _connect_as(mariadb_admin_url, user, password)
    try:
        with pytest.raises(DatabaseError, match=f"cannot create or upgrade the '{tool_db}'"):
            schema.migrate(conn, tool_db)
    finally:
        conn.close()


# -- what the columns accept ---------------------------------------------------------------------


def test_uuids_json_and_digest_lists_are_checked_as_postgresql_types_are(
    admin: MariaDBConnection, tool_db: str
) -> None:
    schema.migrate(admin, tool_db)
    refused = 3819 if server_is_mysql() else 4025  # a CHECK constraint failed
    runs = schema.quote(tool_db, "runs")
    insert = (
        f"INSERT INTO {runs} (run_id, command, host, os_user, pid) VALUES (%s, 'c', 'h', 'u', 1)"
    )
    _run(admin, insert, (str(uuid4()),))
    for not_canonical in (str(uuid4()).upper(), "not-a-uuid", str(uuid4())[:-1]):
        assert _refused(admin, insert, (not_canonical,)) == refused
    audit = schema.quote(tool_db, "audit")
    entry = (
        f"INSERT INTO {audit} (seq, recorded_at, event, actor, outcome, prev_hash, hash, "
        "subject_digests) VALUES (%s, UTC_TIMESTAMP(6), 'e', %s, 'ok', 'p', 'h', %s)"
    )
    assert _refused(admin, entry, (1, "{not json", "[]")) == refused
    assert _refused(admin, entry, (1, "{}", '{"a": 1}')) == refused  # text[]: an array
    _run(admin, entry, (1, "{}", '["ab", "cd"]'))


# -- the append-only trail -------------------------------------------------------------------------


def _entry(conn: MariaDBConnection, db: str, seq: int = 1) -> None:
    _run(
        conn,
        f"INSERT INTO {schema.quote(db, 'audit')} (seq, recorded_at, event, actor, outcome, "
        "prev_hash, hash) VALUES (%s, UTC_TIMESTAMP(6), 'run', '{}', 'ok', %s, %s)",
        (seq, "0" * 64, "1" * 64),
    )


def test_update_and_delete_of_an_audit_entry_are_refused_by_the_triggers(
    admin: MariaDBConnection, tool_db: str
) -> None:
    schema.migrate(admin, tool_db)
    _entry(admin, tool_db)
    audit = schema.quote(tool_db, "audit")

    for what, statement in (
        ("UPDATE", f"UPDATE {audit} SET outcome = 'forged' WHERE seq = 1"),
        ("DELETE", f"DELETE FROM {audit} WHERE seq = 1"),
    ):
        # as PostgreSQL's trigger: insufficient_privilege, the same message
        with pytest.raises(errors.InsufficientPrivilege) as caught:
            admin.execute(statement)
        assert (errno_of(caught.value), caught.value.sqlstate) == (1644, "42501")
        assert str(caught.value) == f"the audit trail is append-only: {what} is not allowed"
    assert _run(admin, f"SELECT seq, outcome FROM {audit}") == [(1, "ok")]


def _hospital(admin: MariaDBConnection) -> str:
    """The admin connection's own database, with two tables."""
    db = admin.info.dbname
    _run(
        admin,
        f"CREATE TABLE {schema.quote(db, 'patients')} (id INT PRIMARY KEY, name TEXT, born DATE)",
    )
    _run(admin, f"CREATE TABLE {schema.quote(db, 'visits')} (id INT PRIMARY KEY, patient INT)")
    _run(admin, f"INSERT INTO {schema.quote(db, 'patients')} VALUES (1, 'x', '1950-01-01')")
    _run(admin, f"INSERT INTO {schema.quote(db, 'visits')} VALUES (1, 1)")
    return db


def _grants_script(admin: MariaDBConnection, hospital: str, tool_db: str, user: str) -> str:
    patients, visits = (hospital, "patients"), (hospital, "visits")
    return grants.grants_sql(
        admin,
        f"{user}@%",
        reads={patients, visits},
        deletes={visits},
        updates={patients: {"name"}},
        schema=tool_db,
    )


def _apply(admin: MariaDBConnection, script: str) -> int:
    statements = [line for line in script.splitlines() if line and not line.startswith("--")]
    for statement in statements:
        _run(admin, statement.split(";  --")[0].rstrip(";"))
    return len(statements)


@pytest.mark.mariadb_only(
    "MySQL shows triggers only to an account with TRIGGER, which the grants never give"
)
def test_the_grants_script_applies_and_leaves_the_trail_append_only(
    admin: MariaDBConnection, tool_db: str, account: tuple[str, str], mariadb_admin_url: str
) -> None:
    user, password = account
    hospital = _hospital(admin)
    schema.migrate(admin, tool_db)
    script = _grants_script(admin, hospital, tool_db, user)

    assert _apply(admin, script) == 2 + 2 + 1 + 1 + len(grants.TOOL_TABLES)

    conn = _connect_as(mariadb_admin_url, user, password, hospital)
    try:
        _entry(conn, tool_db)  # the account appends to the trail
        audit = schema.quote(tool_db, "audit")
        assert _run(conn, f"SELECT count(*) FROM {audit}") == [(1,)]
        for statement in (
            f"TRUNCATE TABLE {audit}",
            f"UPDATE {audit} SET outcome = 'forged'",
            f"DELETE FROM {audit}",
            f"DROP TABLE {audit}",
            f"ALTER TABLE {audit} DROP COLUMN detail",
            f"DROP TRIGGER {schema.quote(tool_db, 'audit_no_delete')}",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(errors.InsufficientPrivilege, match="DROP command denied"):
            conn.execute(f"TRUNCATE TABLE {audit}")
        assert _run(conn, f"SELECT count(*) FROM {audit}") == [(1,)]
        assert schema.append_only_problems(conn, tool_db) == []
        assert schema.migrate(conn, tool_db) == []  # every command's start: nothing to do
        # and the hospital's tables: exactly what the policies need
        _run(conn, "CREATE TEMPORARY TABLE retention_keys (k INT)")
        _run(conn, "UPDATE patients SET name = 'y' WHERE id = 1")
        assert _refused(conn, "UPDATE patients SET born = NULL") == 1143  # column privilege
        assert _refused(conn, "DELETE FROM patients") == 1142
        _run(conn, "DELETE FROM visits WHERE id = 1")
    finally:
        conn.close()


@pytest.mark.mariadb_only(
    "MySQL shows triggers only to an account with TRIGGER, which the grants never give"
)
def test_append_only_problems_name_what_would_let_the_trail_be_rewritten(
    admin: MariaDBConnection, tool_db: str, account: tuple[str, str], mariadb_admin_url: str
) -> None:
    user, password = account
    hospital = _hospital(admin)
    schema.migrate(admin, tool_db)
    _apply(admin, _grants_script(admin, hospital, tool_db, user))
    audit = schema.quote(tool_db, "audit")
    grantee = f"'{user}'@'%'"
    _run(admin, f"GRANT DELETE ON {audit} TO {grantee}")
    _run(admin, f"GRANT UPDATE (outcome) ON {audit} TO {grantee}")
    # a database-level grant names a pattern: `rt\_ms\_%` covers the tool's database
    _run(admin, f"GRANT DROP ON `rt\\_ms\\_%`.* TO {grantee}")
    _run(admin, f"DROP TRIGGER {schema.quote(tool_db, 'audit_no_update')}")
    _run(
        admin,
        f"DROP TRIGGER {schema.quote(tool_db, 'audit_no_delete')}",
    )
    _run(
        admin,
        f"CREATE TRIGGER {schema.quote(tool_db, 'audit_no_delete')} BEFORE DELETE ON {audit} "
        "FOR EACH ROW SET @ignored = 1",
    )

    conn = _connect_as(mariadb_admin_url, user, password)
    try:
        problems = schema.append_only_problems(conn, tool_db)
    finally:
        conn.close()

    # a trigger's body is shown only to accounts with the TRIGGER privilege: the tool's
    # account sees that both triggers exist, an administrator sees what they do
    assert problems == [
        f"the trigger `{tool_db}`.`audit_no_update` that refuses UPDATE on {audit} is missing",
        f"{grantee} has DROP on the database `{tool_db}`: it could rewrite the audit trail "
        "(TRUNCATE needs DROP, and fires no trigger)",
        f"{grantee} has DELETE on {audit}: it could rewrite the audit trail",
        f"{grantee} has UPDATE on columns of {audit}: it could rewrite the audit trail",
    ]
    assert schema.append_only_problems(admin, tool_db)[:2] == [
        f"the trigger `{tool_db}`.`audit_no_update` that refuses UPDATE on {audit} is missing",
        f"the trigger `{tool_db}`.`audit_no_delete` on {audit} was changed: it must refuse "
        f"every DELETE ({schema.trigger_bodies()['DELETE']})",
    ]


@pytest.mark.mariadb_only(
    "MySQL shows triggers only to an account with TRIGGER, which the grants never give"
)
def test_a_role_the_account_can_enable_is_named_when_its_privileges_cannot_be_read(
    admin: MariaDBConnection, tool_db: str, account: tuple[str, str], mariadb_admin_url: str
) -> None:
    user, password = account
    hospital = _hospital(admin)
    schema.migrate(admin, tool_db)
    _apply(admin, _grants_script(admin, hospital, tool_db, user))
    role = f"rt_ms_{secrets.token_hex(6)}"
    _run(admin, f"CREATE ROLE {role}")
    try:
        _run(admin, f"GRANT DELETE ON {schema.quote(tool_db, 'audit')} TO {role}")
        _run(admin, f"GRANT {role} TO '{user}'@'%'")
        conn = _connect_as(mariadb_admin_url, user, password)
        try:
            problems = schema.append_only_problems(conn, tool_db)
        finally:
            conn.close()
    finally:
        _run(admin, f"DROP ROLE {role}")

    assert problems == [
        f"'{user}'@'%' can enable the roles {role} (SET ROLE), whose privileges only an "
        "administrator can read: check them as one, or grant the account its privileges "
        "directly, as `retention grants` does"
    ]


@pytest.mark.mariadb_only("the role syntax of MariaDB (SET DEFAULT ROLE ... FOR)")
def test_privileges_held_through_a_role_are_seen_as_the_accounts_own(
    admin: MariaDBConnection, tool_db: str, account: tuple[str, str], mariadb_admin_url: str
) -> None:
    """The scrub ledger is used when the account may read and write it, however it holds the
    privileges: directly, or through its default role (which information_schema does not
    list); a missing privilege is seen either way."""
    from retention.store.ledger import TABLE

    user, password = account
    schema.migrate(admin, tool_db)
    ledger = schema.quote(tool_db, TABLE)
    catalogue = engine_of(admin).catalogue

    def may(*privileges: str) -> bool | None:
        conn = _connect_as(mariadb_admin_url, user, password)
        try:
            return catalogue.may(conn, tool_db, TABLE, privileges)
        finally:
            conn.close()

    _run(admin, f"GRANT SELECT ON {ledger} TO '{user}'@'%'")
    assert may("SELECT") is True
    assert may("SELECT", "INSERT") is False
    role = f"rt_ms_{secrets.token_hex(6)}"
    _run(admin, f"CREATE ROLE {role}")
    try:
        _run(admin, f"GRANT INSERT ON {ledger} TO {role}")
        _run(admin, f"GRANT {role} TO '{user}'@'%'")
        assert may("SELECT", "INSERT") is False  # granted, not enabled
        _run(admin, f"SET DEFAULT ROLE {role} FOR '{user}'@'%'")
        assert may("SELECT", "INSERT") is True
        assert may("SELECT", "INSERT", "DELETE") is False
        _run(admin, f"REVOKE INSERT ON {ledger} FROM {role}")
        assert may("SELECT", "INSERT") is False
    finally:
        _run(admin, f"DROP ROLE {role}")
    assert catalogue.may(admin, tool_db, "no_such_table", ("SELECT",)) is None


def test_the_grants_script_never_lets_the_trail_be_rewritten() -> None:
    text = grants.script(
        grants.Account.parse("retention@10.0.0.%"),
        database="hospital_db",
        reads={("hospital_db", "patients")},
        deletes={("hospital_db", "patients")},
        updates={("hospital_db", "patients"): {"name", "born"}},
        schema="retention",
        installed={name for name, _ in grants.TOOL_TABLES},
    )
    lines = [line.split("--")[0] for line in text.splitlines() if not line.startswith("--")]
    on_trail = [line for line in lines if "`retention`.`audit`" in line]
    assert on_trail == ["GRANT SELECT, INSERT ON `retention`.`audit` TO 'retention'@'10.0.0.%';"]
    assert not any(p in line for line in lines for p in ("DROP", "ALTER", "TRIGGER", "ALL"))
    assert not any("`retention`.*" in line for line in lines)  # per table, never the database
    assert "GRANT CREATE TEMPORARY TABLES ON `hospital\\_db`.* TO" in text  # `_` literal
    assert "GRANT UPDATE (`born`, `name`) ON `hospital_db`.`patients` TO" in text


@pytest.mark.parametrize("role", ["", "x'y", "a b", "u@h'", "u@", "x" * 81, "u\\@h"])
def test_account_names_that_would_need_escaping_are_refused(role: str) -> None:
    with pytest.raises(UsageError, match="is not a MariaDB account"):
        grants.Account.parse(role)


def test_an_account_without_a_host_is_any_host_said_in_the_script() -> None:
    account = grants.Account.parse("retention")
    assert str(account) == "'retention'@'%'"
    text = grants.script(
        account, database="h", reads=(), deletes=(), updates={}, schema="r", installed=()
    )
    assert "'%' is any host" in text
    assert "not installed yet (schema_version, schema_steps, audit" in text


# -- the same rows as on PostgreSQL ---------------------------------------------------------------

RUN_ID, FILE_ID = uuid4(), uuid4()
AT = datetime(2024, 3, 31, 3, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
JSON_VALUE = {"b": [1, 2.5, None, True], "a": {"é": "ü"}, "n": 0}
DIGEST = bytes(range(32))
# table -> (columns, values): the values as the tool's Python code holds them
ROWS: dict[str, tuple[tuple[str, ...], tuple[Any, ...]]] = {
    "runs": (
        ("run_id", "started_at", "command", "host", "os_user", "pid"),
        (RUN_ID, AT, "run", "h", "u", 42),
    ),
    "audit": (
        (
            "seq",
            "recorded_at",
            "run_id",
            "event",
            "rows",
            "subject_digests",
            "actor",
            "outcome",
            "detail",
            "prev_hash",
            "hash",
            "sig_key",
            "signature",
        ),
        (
            1,
            AT,
            RUN_ID,
            "batch",
            {"t": 3},
            ["0a1b", "ffee"],
            JSON_VALUE,
            "ok",
            {},
            "0" * 64,
            "1" * 64,
            "SHA256:x",
            "c2ln",
        ),
    ),
    "archive_files": (
        (
            "file_id",
            "name",
            "run_id",
            "policy",
            "policy_sha256",
            "phase",
            "created_at",
            "bytes",
            "sha256",
            "recipients",
        ),
        (
            FILE_ID,
            "p/2024/x.v1.tar",
            RUN_ID,
            "p",
            "ab",
            "archive",
            AT,
            2**40,
            "cd",
            ["age1x", "age1y"],
        ),
    ),
    "archive_segments": (
        ("file_id", "grp", "expires_on", "subjects", "rows", "bytes", "sha256"),
        (FILE_ID, "2024-03", date(2044, 3, 31), 2, {"t": 2}, 10, "ef"),
    ),
    "exposure": (("at", "run_id", "figures"), (date(2024, 2, 29), RUN_ID, JSON_VALUE)),
    "scrubbed": (("target", "analyser", "digest"), ("s.t.c", "0123456789abcdef", DIGEST)),
    "holds": (("policy", "subject_key", "reason"), ("p", "k" * 300, "claim")),
}
JSON_COLUMNS = {"rows", "subject_digests", "actor", "detail", "recipients", "figures"}


def _to_mariadb(column: str, value: Any) -> Any:
    """What the engine's connection sends for a value (docs: DATETIME(6) in UTC)."""
    if column in JSON_COLUMNS:
        return json.dumps(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _from_mariadb(column: str, value: Any) -> Any:
    """And what it reads back, as psycopg gives it on PostgreSQL."""
    if column in JSON_COLUMNS:
        return json.loads(value)
    if column in ("run_id", "file_id"):
        return UUID(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return value


SEGMENT_DIGESTS = ["0a1b", "ffee"]  # a text[] on PostgreSQL, rows of their own on MariaDB


def _pg_insert(pg: psycopg.Connection[Any], table: str, columns: Any, values: Any) -> None:
    pg_values = [
        Jsonb(v) if c in JSON_COLUMNS - {"subject_digests", "recipients"} else v
        for c, v in zip(columns, values, strict=True)
    ]
    if table == "archive_segments":
        columns, pg_values = (*columns, "subject_digests"), [*pg_values, SEGMENT_DIGESTS]
    pg.execute(
        pgsql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            pgsql.Identifier("retention", table),
            pgsql.SQL(", ").join(map(pgsql.Identifier, columns)),
            pgsql.SQL(", ").join(pgsql.Placeholder() * len(columns)),
        ),
        pg_values,
    )


def _write_both(pg: psycopg.Connection[Any], admin: MariaDBConnection, tool_db: str) -> None:
    for table, (columns, values) in ROWS.items():
        _pg_insert(pg, table, columns, values)
        names = ", ".join(schema.quote(c) for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        _run(
            admin,
            f"INSERT INTO {schema.quote(tool_db, table)} ({names}) VALUES ({marks})",
            tuple(_to_mariadb(c, v) for c, v in zip(columns, values, strict=True)),
        )
    subjects = schema.quote(tool_db, "archive_segment_subjects")
    for ord_, digest in enumerate(SEGMENT_DIGESTS, 1):
        _run(
            admin,
            f"INSERT INTO {subjects} VALUES (%s, '2024-03', %s, %s)",
            (str(FILE_ID), ord_, digest),
        )


@pytest.mark.mariadb_only("CURRENT_USER() of root over TCP")
def test_the_same_rows_read_back_as_on_postgresql(
    admin: MariaDBConnection, tool_db: str, conn: psycopg.Connection[Any]
) -> None:
    pg_schema.migrate(conn, "retention")
    schema.migrate(admin, tool_db)
    _write_both(conn, admin, tool_db)

    for table, (columns, values) in ROWS.items():
        from_pg = conn.execute(
            pgsql.SQL("SELECT {} FROM {}").format(
                pgsql.SQL(", ").join(map(pgsql.Identifier, columns)),
                pgsql.Identifier("retention", table),
            )
        ).fetchall()
        my_names = ", ".join(schema.quote(c) for c in columns)
        raw = _run(admin, f"SELECT {my_names} FROM {schema.quote(tool_db, table)}")
        from_mariadb = [
            tuple(_from_mariadb(c, v) for c, v in zip(columns, row, strict=True)) for row in raw
        ]
        assert from_mariadb == from_pg == [values], table
    # defaults: now in UTC, the account; text[] of a segment as its own rows, in order
    held_by, held_since = _run(
        admin, f"SELECT held_by, held_since FROM {schema.quote(tool_db, 'holds')}"
    )[0]
    assert held_by == "root@127.0.0.1"
    assert abs(held_since.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(hours=1)
    digests = _run(
        admin,
        "SELECT digest FROM "
        f"{schema.quote(tool_db, 'archive_segment_subjects')} WHERE digest = %s ORDER BY ord",
        ("ffee",),
    )
    assert digests == [("ffee",)]


def test_every_table_has_postgresqls_columns_in_the_same_order(
    admin: MariaDBConnection, tool_db: str, conn: psycopg.Connection[Any]
) -> None:
    pg_schema.migrate(conn, "retention")
    schema.migrate(admin, tool_db)

    def columns(rows: list[Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for table, column in rows:
            out.setdefault(table, []).append(column)
        return out

    on_pg = columns(
        conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'retention' ORDER BY table_name, ordinal_position"
        ).fetchall()
    )
    on_mariadb = columns(
        _run(
            admin,
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (tool_db,),
        )
    )
    # the one difference: a segment's subject digests are rows of their own on MariaDB
    on_pg["archive_segments"].remove("subject_digests")
    assert {t: c for t, c in on_mariadb.items() if t not in MARIADB_ONLY} == on_pg
    assert on_mariadb["archive_segment_subjects"] == ["file_id", "grp", "ord", "digest"]
