"""The tool's tables changed by hand (a column dropped or renamed), on both engines.

A review of bad inputs: with a column of `runs` dropped, `init` said the schema was up to date,
and `run` and `report` stopped on "database error 42703: column r.outcome does not exist",
which names neither the table nor what to do (store/schema.py `altered_tables`)."""

from __future__ import annotations

from retention.daemon.loop import _ensure_schema
from retention.engines import engine_of, sql
from retention.store.schema import SchemaAlteredError, altered_tables, migrate
from tests.fix_engines import EngineDB


def _columns(db: EngineDB) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table, column in db.conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        (db.tool_schema,),
    ).fetchall():
        found.setdefault(str(table), set()).add(str(column))
    return found


def test_the_columns_the_tool_expects_are_those_its_migrations_make(engine_db: EngineDB) -> None:
    """The expected columns cannot drift from the migrations: a migration adding a column
    fails this test until `OwnSchema.columns` has it."""
    migrate(engine_db.conn, engine_db.tool_schema)
    expected = engine_of(engine_db.conn).own_schema.columns()
    assert _columns(engine_db) == {t: set(c) for t, c in expected.items()}
    assert altered_tables(engine_db.conn, engine_db.tool_schema) == []


def test_a_column_dropped_by_hand_is_named_by_init_the_commands_and_the_daemon(
    engine_demo: EngineDB,
) -> None:
    db = engine_demo
    assert db.cli("init").returncode == 0
    large = ("--allow-large", "--reason", "test")
    ran = db.cli("run", "--yes", "--policy", "contacts-patients", *large)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    db.conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN outcome").format(db.tool("runs")))
    named = f"the tool's schema '{db.tool_schema}' was changed by hand"
    lacking = f"{db.tool_schema}.runs lacks the column outcome"

    init = db.cli("init")
    assert init.returncode == 4, init.stdout + init.stderr
    assert named in init.stderr and lacking in init.stderr, init.stderr
    assert "up to date" not in init.stdout
    for command in (("run", "--yes", *large), ("report", "--format", "json")):
        stopped = db.cli(*command)
        assert stopped.returncode == 4, stopped.stdout + stopped.stderr
        assert named in stopped.stderr and lacking in stopped.stderr, stopped.stderr
        assert "hint: restore those tables from a backup" in stopped.stderr
        # and the database's own words (a column's name), should the cause be elsewhere
        assert "(the database said: " in stopped.stderr and "outcome" in stopped.stderr
        assert "Traceback" not in stopped.stderr
    # the daemon says it at every fire, before a batch meets the missing column
    try:
        _ensure_schema(db.conn, db.settings())
    except SchemaAlteredError as exc:
        assert lacking in exc.message
    else:
        raise AssertionError("the daemon did not see the altered table")


def test_a_schema_not_upgraded_yet_is_told_to_run_init_not_to_restore_a_backup(
    engine_demo: EngineDB,
) -> None:
    """A review: after an upgrade of the tool whose `init` has not run (the daemon's role
    cannot migrate), the columns of the newer migrations are missing too; that is no change
    by hand, and restoring the trail from a backup would be the wrong advice."""
    db = engine_demo
    assert db.cli("init").returncode == 0
    # the schema as the tool left it before migrations 009 and 010 (MariaDB also records
    # each step of a migration)
    steps = ("schema_version", "schema_steps") if db.engine == "mariadb" else ("schema_version",)
    for table in steps:
        db.conn.execute(sql.SQL("DELETE FROM {} WHERE version IN (9, 10)").format(db.tool(table)))
    db.conn.execute(
        sql.SQL("ALTER TABLE {} DROP COLUMN sig_key, DROP COLUMN signature").format(
            db.tool("audit")
        )
    )
    db.conn.execute(sql.SQL("DROP TABLE {}").format(db.tool("intents")))
    verify = db.cli("audit", "verify")
    assert verify.returncode == 4, verify.stdout + verify.stderr
    assert "is older than this version of retention" in verify.stderr, verify.stderr
    assert "009_audit_signatures.sql, 010_intents.sql" in verify.stderr
    assert "run `retention init` once as the owner" in verify.stderr
    assert "changed by hand" not in verify.stderr and "Traceback" not in verify.stderr
    assert db.cli("init").returncode == 0  # then it is up to date again
    again = db.cli("init")
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stderr
