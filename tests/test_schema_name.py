"""A misspelt `schema_name` never starts a second, empty tool schema beside the real one: plan,
run, hold and the daemon's runs would otherwise go on without the legal holds recorded in the
real one. They stop, naming the schema that holds the tool's tables; `retention init` creates
the new one on purpose."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pytest

from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.engines.mariadb.connection import MariaDBConnection
from retention.settings import Settings
from tests.engine_helpers import cli

COMMANDS = (
    ("plan",),
    ("run", "--yes", "--allow-large", "--reason", "schema name"),
    ("hold", "list"),
    ("exposure",),
    ("audit", "verify"),
    ("audit", "show"),
    ("scan",),  # it stores its inventory in the tool's schema, created on first use
)


def _refused_everywhere(url: str, real: str, typo: str) -> None:
    for command in COMMANDS:
        done = cli(url, *command, RETENTION_SCHEMA_NAME=typo)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert (
            f"error: the tool's schema '{typo}' (setting schema_name) does not exist in this "
            f"database, but '{real}' holds the tool's tables"
        ) in done.stderr, (command, done.stderr)
        assert f"hint: set schema_name to '{real}'" in done.stderr


def test_a_misspelt_schema_name_stops_every_command_on_postgresql(
    demo_db_url: str, demo_conn: psycopg.Connection[Any]
) -> None:
    assert cli(demo_db_url, "init").returncode == 0
    _refused_everywhere(demo_db_url, "retention", "retenion")
    schemas = demo_conn.execute(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'retenion'"
    ).fetchone()
    assert schemas == (0,)
    # on purpose: init creates it, then the commands use it
    assert cli(demo_db_url, "init", RETENTION_SCHEMA_NAME="retenion").returncode == 0
    assert cli(demo_db_url, "plan", RETENTION_SCHEMA_NAME="retenion").returncode == 0


def test_a_misspelt_schema_name_stops_every_command_on_mariadb(
    mariadb_url: str, mariadb_conn: MariaDBConnection
) -> None:
    with connect(Settings(), url=mariadb_url) as conn:
        create_schema(conn)
        generate(conn, patients=60, seed=5)
    real, typo = f"rt_sn_{secrets.token_hex(4)}", f"rt_sn_{secrets.token_hex(4)}"
    old = f"rt_sn_{secrets.token_hex(4)}"  # another application's, of a version before holds
    try:  # named their table
        mariadb_conn.execute(f"CREATE DATABASE `{old}`")
        for table in ("audit (seq int)", "schema_version (version int)", "holds (policy text)"):
            mariadb_conn.execute(f"CREATE TABLE `{old}`.{table}")
        assert cli(mariadb_url, "plan", RETENTION_SCHEMA_NAME=typo).returncode == 0
        assert cli(mariadb_url, "init", RETENTION_SCHEMA_NAME=real).returncode == 0
        # a tool database without holds on this database is another application's: not
        # a reason to stop (one MariaDB server, several hospital databases)
        assert cli(mariadb_url, "plan", RETENTION_SCHEMA_NAME=typo).returncode == 0
        held = cli(
            mariadb_url,
            *("hold", "add", "--table", "patients", "--subject", "3", "--reason", "case 12"),
            RETENTION_SCHEMA_NAME=real,
        )
        assert held.returncode == 0, held.stderr
        _refused_everywhere(mariadb_url, real, typo)
        found = mariadb_conn.execute(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (typo,)
        ).fetchone()
        assert found is not None and found[0] == 0
    finally:
        for name in (real, typo, old):
            mariadb_conn.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_the_audit_commands_say_when_there_is_no_tool_schema_at_all(db_url: str) -> None:
    for command in (("audit", "verify"), ("audit", "show")):
        done = cli(db_url, *command)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.count("error:") == 1, done.stderr  # said once, not logged twice
        assert (
            "error: the tool's schema 'retention' (setting schema_name) does not exist in this "
            "database: there is no audit trail to read\n  hint: run `retention init`"
        ) in done.stderr


def test_a_trail_dropped_from_its_schema_is_said_so(db_url: str) -> None:
    """An auditor's finding: DROP TABLE retention.audit made verify say that the schema did not
    exist (exit 2). The schema is there without its trail: broken (exit 1), said so."""
    assert cli(db_url, "init").returncode == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE retention.audit")
    done = cli(db_url, "audit", "verify")
    assert done.returncode == 1, done.stderr
    assert (
        "error: the audit trail retention.audit is missing while the tool's other tables are "
        "in retention: it was dropped"
    ) in done.stderr


def test_the_trails_triggers_dropped_or_disabled_are_said_and_init_restores_them(
    db_url: str,
) -> None:
    """An auditor's finding: with the append-only trigger disabled and the TRUNCATE one
    dropped, verify, run and check said nothing and init said 'up to date'. They say so, and
    init makes them again."""
    assert cli(db_url, "init").returncode == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE retention.audit DISABLE TRIGGER audit_append_only")
        conn.execute("DROP TRIGGER audit_no_truncate ON retention.audit")
    verified = cli(db_url, "audit", "verify")
    assert verified.returncode == 0  # the chain itself is intact
    assert (
        "WARNING: the trigger audit_append_only on retention.audit is disabled: UPDATE and "
        "DELETE on the trail are not refused"
    ) in verified.stdout
    assert "WARNING: the trigger audit_no_truncate on retention.audit is missing" in (
        verified.stdout
    )
    checked = cli(db_url, "check")
    assert "the trigger audit_append_only on retention.audit is disabled" in checked.stderr
    init = cli(db_url, "init")
    assert init.returncode == 0 and "repaired: the trigger audit_no_truncate" in init.stdout
    assert "WARNING" not in cli(db_url, "audit", "verify").stdout
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute("TRUNCATE retention.audit")
    # a review's finding: the function replaced (the triggers then refuse nothing), or a
    # trigger made again on other events, went unseen
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION retention.audit_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        )
        conn.execute("DROP TRIGGER audit_no_truncate ON retention.audit")
        conn.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE INSERT ON retention.audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION retention.audit_append_only()"
        )
    said = cli(db_url, "audit", "verify").stdout
    assert "WARNING: the function retention.audit_append_only() of the trail's triggers was " in (
        said
    )
    assert "WARNING: the trigger audit_no_truncate on retention.audit was changed" in said
    assert "repaired:" in cli(db_url, "init").stdout
    assert "WARNING" not in cli(db_url, "audit", "verify").stdout


def test_mariadbs_trail_triggers_dropped_are_said_and_init_restores_them(
    mariadb_url: str, mariadb_conn: MariaDBConnection
) -> None:
    tool = f"rt_sn_{secrets.token_hex(4)}"
    try:
        assert cli(mariadb_url, "init", RETENTION_SCHEMA_NAME=tool).returncode == 0
        mariadb_conn.execute(f"DROP TRIGGER `{tool}`.`audit_no_delete`")
        verified = cli(mariadb_url, "audit", "verify", RETENTION_SCHEMA_NAME=tool)
        assert verified.returncode == 0
        assert (
            f"WARNING: the trigger `{tool}`.`audit_no_delete` that refuses DELETE on "
            f"`{tool}`.`audit` is missing"
        ) in verified.stdout
        init = cli(mariadb_url, "init", RETENTION_SCHEMA_NAME=tool)
        assert "repaired: the trigger" in init.stdout, init.stdout + init.stderr
        assert (
            "WARNING" not in cli(mariadb_url, "audit", "verify", RETENTION_SCHEMA_NAME=tool).stdout
        )
    finally:
        mariadb_conn.execute(f"DROP DATABASE IF EXISTS `{tool}`")


def test_a_tool_database_dropped_while_it_is_looked_at_holds_nothing_on_mariadb(
    mariadb_conn: MariaDBConnection,
) -> None:
    """Another tool database listed by information_schema, then dropped before its holds are
    read (seen in the suite: another test's teardown): it keeps nothing for this database, and
    the command goes on, where it stopped on error 1146 ("table doesn't exist")."""
    from retention.engines.mariadb.schema import OwnSchema

    other = f"rt_sn_{secrets.token_hex(4)}"
    mariadb_conn.execute(f"CREATE DATABASE `{other}`")
    mariadb_conn.execute(f"CREATE TABLE `{other}`.holds (subject_table varchar(200))")
    real = mariadb_conn.execute

    def dropped_after_listing(query: Any, params: Any = None) -> Any:
        found = real(query, params)
        if "information_schema.COLUMNS" in str(query):
            real(f"DROP DATABASE `{other}`")  # between the listing and the read
        return found

    try:
        mariadb_conn.execute = dropped_after_listing  # type: ignore[method-assign,assignment]
        assert OwnSchema().serves_this_database(mariadb_conn, other) is False
    finally:
        mariadb_conn.execute = real  # type: ignore[method-assign]
        mariadb_conn.execute(f"DROP DATABASE IF EXISTS `{other}`")
    assert mariadb_conn.execute("SELECT 1").fetchone() == (1,)  # the connection still usable
