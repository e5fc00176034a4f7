"""The demo hospital on MariaDB: the same tables, columns, keys and rows as on PostgreSQL.

Both engines are real servers (tests/fix_db.py, tests/fix_mariadb.py). Rows are compared table
by table, in key order, as text: dates and times in ISO form, the instant `created_at` in UTC,
JSON by its content (PostgreSQL's jsonb reorders keys). A difference is reported by table, key
and column name, never by value.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from retention.cli.demo import due_by_clock
from retention.db import connect
from retention.demo.generate import DemoStats, generate
from retention.demo.mariadb import (
    MARIADB_INDEXES,
    MEDIBOARD_TABLES,
    add_mediboard_tables,
)
from retention.demo.schema import create_schema
from retention.demo.tables import COLUMNS, FOREIGN_KEYS, JSON_COLUMNS, TABLES, index_name, key_of
from retention.engines import Connection, sql
from retention.engines.mariadb.session import database_url
from retention.errors import DatabaseError
from retention.policy.bound import BoundPolicy
from retention.policy.check import check_policies
from retention.settings import Settings
from tests import cli_zygote
from tests.fix_db import temporary_database

TODAY = date(2025, 6, 1)
PATIENTS = 150
SEED = 7
ROOT = Path(__file__).resolve().parent.parent

_names = itertools.count(1)


def _database_name(kind: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"rt_demo{kind}{worker}_{os.getpid()}_{next(_names)}"


def _drop(admin_url: str, name: str) -> None:
    with connect(Settings(), url=admin_url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def maria_demo(mariadb_admin_url: str) -> Iterator[tuple[Connection, DemoStats]]:
    """A small demo on MariaDB, read-only for the tests of this module."""
    name = _database_name("m")
    with connect(Settings(), url=mariadb_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with connect(Settings(), url=database_url(mariadb_admin_url, name)) as conn:
            create_schema(conn)
            stats = generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
            yield conn, stats
    finally:
        _drop(mariadb_admin_url, name)


@pytest.fixture(scope="module")
def pg_demo(pg_admin_url: str) -> Iterator[tuple[Connection, DemoStats]]:
    """The same demo on PostgreSQL."""
    with temporary_database(pg_admin_url) as url, connect(Settings(), url=url) as conn:
        create_schema(conn)
        stats = generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
        yield conn, stats


# -- reading rows as text -----------------------------------------------------------------------


def as_text(value: Any, *, is_json: bool) -> str:
    """One value as text: ISO dates and times, instants in UTC, JSON by content, NULL as \\N."""
    if value is None:
        return "\\N"
    if is_json:
        content = json.loads(value) if isinstance(value, str) else value
        return json.dumps(content, sort_keys=True, ensure_ascii=False)
    if isinstance(value, datetime):
        wall: datetime = value if value.tzinfo is None else value.astimezone(UTC)
        return wall.replace(tzinfo=None).isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):  # MariaDB's TIME
        seconds = int(value.total_seconds())
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return str(value)


def rows_as_text(conn: Connection, table: str) -> list[tuple[str, ...]]:
    columns = COLUMNS[table]
    json_columns = set(JSON_COLUMNS.get(table, ()))
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(table),
        sql.Identifier(key_of(table)),
    )
    return [
        tuple(as_text(v, is_json=c in json_columns) for c, v in zip(columns, row, strict=True))
        for row in conn.execute(query).fetchall()
    ]


def digest(rows: list[tuple[str, ...]]) -> str:
    sha = hashlib.sha256()
    for row in rows:
        sha.update(("\t".join(row) + "\n").encode())
    return sha.hexdigest()


def first_difference(table: str, pg: list[tuple[str, ...]], maria: list[tuple[str, ...]]) -> str:
    """Where two tables differ, by key and column name (no value)."""
    for a, b in zip(pg, maria, strict=False):
        if a != b:
            differing = [c for c, x, y in zip(COLUMNS[table], a, b, strict=True) if x != y]
            return f"{table}: row {key_of(table)}={a[0]} differs in {differing}"
    return f"{table}: {len(pg)} rows on PostgreSQL, {len(maria)} on MariaDB"


# -- the same hospital on both engines ----------------------------------------------------------


def test_same_seed_gives_the_same_rows_on_mariadb_and_postgresql(
    maria_demo: tuple[Connection, DemoStats], pg_demo: tuple[Connection, DemoStats]
) -> None:
    differences = []
    for table in TABLES:
        pg_rows = rows_as_text(pg_demo[0], table)
        maria_rows = rows_as_text(maria_demo[0], table)
        assert pg_rows, f"{table} is empty: the comparison would prove nothing"
        if len(pg_rows) != len(maria_rows) or digest(pg_rows) != digest(maria_rows):
            differences.append(first_difference(table, pg_rows, maria_rows))
    assert not differences
    assert maria_demo[1] == pg_demo[1]


def test_the_rows_compared_include_every_kind_of_value(
    maria_demo: tuple[Connection, DemoStats],
) -> None:
    """Text with accents, NULLs, dates, times, datetimes, instants and JSON all take part."""
    patients = rows_as_text(maria_demo[0], "patients")
    assert any("\\N" in row for row in patients)
    assert any(any(ord(ch) > 127 for ch in "".join(row)) for row in patients)
    logs = rows_as_text(maria_demo[0], "user_log")
    assert any(row[-1].startswith("{") for row in logs)
    plages = rows_as_text(maria_demo[0], "plagesconsult")
    assert all(len(row[3]) == 8 and row[3][2] == ":" for row in plages)


def _columns(conn: Connection, query: str, table: str) -> list[str]:
    return [str(row[0]) for row in conn.execute(query, [table]).fetchall()]


def test_both_engines_have_the_same_tables_and_columns_in_order(
    maria_demo: tuple[Connection, DemoStats], pg_demo: tuple[Connection, DemoStats]
) -> None:
    maria_query = (
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"
    )
    pg_query = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position"
    )
    for table in TABLES:
        assert _columns(maria_demo[0], maria_query, table) == list(COLUMNS[table])
        assert _columns(pg_demo[0], pg_query, table) == list(COLUMNS[table])
    tables = (
        maria_demo[0]
        .execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        .fetchall()
    )
    assert {row[0] for row in tables} == set(TABLES)  # no Mediboard table unless asked


def _graph(policy: BoundPolicy) -> tuple[list[str], list[tuple[str, ...]]]:
    """A bound policy's tables and edges, by table name (the schema differs by engine)."""
    tables = [name for _, name in policy.graph.tables]
    edges = sorted(
        (
            e.child[1], e.parent[1], e.kind, *e.child_columns, "->", *e.parent_columns,
            e.class_column or "", e.class_value or "",
        )
        for e in policy.graph.edges
    )  # fmt: skip
    return tables, edges


def test_the_same_policies_bind_the_same_graphs_and_find_the_same_subjects_due(
    maria_demo: tuple[Connection, DemoStats], pg_demo: tuple[Connection, DemoStats]
) -> None:
    """The policies that ship apply to both engines: the same relation graphs (foreign keys and
    declared links), and each phase's compiled clock finds the same subjects due and
    undeterminable, at the generation day and ten years later."""
    policies = ROOT / "policies"
    checked = [
        check_policies(c, policies, tool_schema="retention") for c, _ in (maria_demo, pg_demo)
    ]
    assert not checked[0].errors and not checked[1].errors
    maria, pg = ({p.name: p for p in result.bound} for result in checked)
    assert (
        set(maria) == set(pg) == {"contacts-patients", "dossier-medical", "journal-modifications"}
    )
    for name in pg:
        assert _graph(maria[name]) == _graph(pg[name]), name
    for at in (TODAY, date(2035, 6, 1)):
        on_maria = due_by_clock(maria_demo[0], list(maria.values()), at)
        on_pg = due_by_clock(pg_demo[0], list(pg.values()), at)
        assert on_maria == on_pg
        if at == TODAY:  # the comparison means something: some subjects due, not all
            assert all(0 < d.due < d.subjects for d in on_pg)
            assert any(d.undeterminable > 0 for d in on_pg)


# -- MariaDB's own style ------------------------------------------------------------------------


def test_mariadb_tables_are_innodb_utf8mb4(maria_demo: tuple[Connection, DemoStats]) -> None:
    rows = (
        maria_demo[0]
        .execute(
            "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE()"
        )
        .fetchall()
    )
    assert {(t, e, c) for t, e, c in rows} == {(t, "InnoDB", "utf8mb4_unicode_ci") for t in TABLES}


def test_mariadb_has_the_same_foreign_keys_and_an_index_for_each(
    maria_demo: tuple[Connection, DemoStats],
) -> None:
    conn = maria_demo[0]
    foreign_keys = conn.execute(
        "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME"
        " FROM information_schema.KEY_COLUMN_USAGE AS k"
        " WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL"
    ).fetchall()
    assert {tuple(row) for row in foreign_keys} == {
        (table, column, target, key_of(target)) for table, column, target in FOREIGN_KEYS
    }
    indexes = conn.execute(
        "SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS"
        " WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME <> 'PRIMARY'"
    ).fetchall()
    assert {tuple(row) for row in indexes} == {
        (table, index_name(table, columns)) for table, columns in MARIADB_INDEXES
    }
    fk_columns = {(table, column) for table, column, _ in FOREIGN_KEYS}
    assert fk_columns <= {(table, columns[0]) for table, columns in MARIADB_INDEXES}


def _column_type(conn: Connection, table: str, column: str) -> tuple[str, str]:
    row = conn.execute(
        "SELECT COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
        [table, column],
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


@pytest.mark.mariadb_only("MySQL 8 writes integer types without display width")
def test_mariadb_uses_its_own_types(maria_demo: tuple[Connection, DemoStats]) -> None:
    conn = maria_demo[0]
    for table in TABLES:
        column_type, extra = _column_type(conn, table, key_of(table))
        assert column_type.endswith("unsigned") and "auto_increment" in extra
    assert _column_type(conn, "sejours", "patient_id")[0] == "int(10) unsigned"
    assert _column_type(conn, "sejours", "entree")[0] == "datetime"
    assert _column_type(conn, "patients", "created_at")[0] == "datetime"
    assert _column_type(conn, "patients", "deces")[0] == "date"
    assert _column_type(conn, "plagesconsult", "debut")[0] == "time"
    assert _column_type(conn, "sejours", "annule")[0] == "enum('0','1')"
    assert _column_type(conn, "user_log", "extra")[0] == "longtext"
    check = conn.execute(
        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
        " WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'user_log'"
    ).fetchall()
    assert [row[0] for row in check] == ["json_valid(`extra`)"]


def test_auto_increment_continues_after_the_generated_ids(
    maria_demo: tuple[Connection, DemoStats],
) -> None:
    conn = maria_demo[0]
    with conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO patients (nom, prenom) VALUES ('X', 'Y')")
        new_id = conn.execute("SELECT LAST_INSERT_ID()").fetchone()[0]
    assert new_id == PATIENTS + 1


# -- refusals, as on PostgreSQL -----------------------------------------------------------------


def test_generating_without_the_schema_is_refused_on_mariadb(mariadb_conn: Connection) -> None:
    with pytest.raises(DatabaseError, match="do not exist"):
        generate(mariadb_conn, patients=5, today=TODAY)


def test_generating_into_a_non_empty_schema_is_refused_on_mariadb(
    mariadb_conn: Connection,
) -> None:
    create_schema(mariadb_conn)
    generate(mariadb_conn, patients=5, seed=3, today=TODAY)
    with pytest.raises(DatabaseError, match="already holds rows"):
        generate(mariadb_conn, patients=5, today=TODAY)
    with pytest.raises(DatabaseError, match="already exist"):
        create_schema(mariadb_conn)


def test_zero_patients_loads_only_the_physicians_on_mariadb(mariadb_conn: Connection) -> None:
    create_schema(mariadb_conn)
    stats = generate(mariadb_conn, patients=0, today=TODAY)
    assert stats.medecins > 0
    assert sum(stats.counts().values()) == stats.medecins


# -- Mediboard's own shapes (--mediboard) -------------------------------------------------------


def test_mediboard_tables_hold_myisam_zero_dates_and_case_variants(
    mariadb_conn: Connection,
) -> None:
    create_schema(mariadb_conn)
    generate(mariadb_conn, patients=60, seed=SEED, today=TODAY)
    found = add_mediboard_tables(mariadb_conn)
    assert set(found) == set(MEDIBOARD_TABLES)
    assert found["operations"][2] == "MyISAM"
    assert found["observations"][2] == "InnoDB"
    assert all(rows > zero_dates > 0 for rows, zero_dates, _ in found.values())
    # zero dates, read as text (the driver cannot read them as dates)
    zero = mariadb_conn.execute(
        "SELECT COUNT(*) FROM operations WHERE CAST(`date` AS CHAR) = '0000-00-00 00:00:00'"
    ).fetchone()[0]
    assert zero == found["operations"][1]
    default = mariadb_conn.execute(
        "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = 'operations' AND COLUMN_NAME = 'date'"
    ).fetchone()[0]
    assert "0000-00-00 00:00:00" in default
    # class names in another case: equal under the table's collation, not byte for byte
    exact, folded = mariadb_conn.execute(
        "SELECT SUM(object_class = BINARY 'CSejour'), SUM(object_class = 'CSejour')"
        " FROM observations"
    ).fetchone()
    assert 0 < exact < folded
    # every observation points at a stay or consultation of the demo (no foreign key)
    dangling = mariadb_conn.execute(
        "SELECT COUNT(*) FROM observations o WHERE NOT EXISTS"
        " (SELECT 1 FROM sejours s WHERE o.object_class = 'CSejour' AND s.sejour_id ="
        " o.object_id) AND NOT EXISTS (SELECT 1 FROM consultations c WHERE o.object_class ="
        " 'CConsultation' AND c.consultation_id = o.object_id)"
    ).fetchone()[0]
    assert dangling == 0


# -- the command --------------------------------------------------------------------------------


def _demo(
    *args: str, url: str | None, cwd: Path = ROOT, policies: bool = True
) -> subprocess.CompletedProcess[str]:
    """`retention demo`; with `policies`, RETENTION_POLICIES_DIR names the repository's."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    if url is not None:
        environ["RETENTION_DATABASE_URL"] = url
    if policies:
        environ["RETENTION_POLICIES_DIR"] = str(ROOT / "policies")
    return cli_zygote.run(["demo", *args], environ, cwd=cwd)


def _personal_values(conn: Connection) -> set[str]:
    rows = conn.execute(
        "SELECT nom, prenom, matricule, tel, tel_portable, email, adresse FROM patients"
    ).fetchall()
    return {str(value) for row in rows for value in row if value is not None and len(value) > 3}


def test_demo_with_a_mariadb_url_runs_every_step_as_on_postgresql(
    mariadb_admin_url: str, tmp_path: Path
) -> None:
    """The same steps as on the embedded PostgreSQL: check, scan, holds, plan, approvals, the
    run, the audit trail verified, archiving and a restore, exposure before and after, the
    report; the tool's tables in a database of the demo's own."""
    name = _database_name("c")
    try:
        result = _demo(
            "--patients",
            "40",
            "--demo-database",
            name,
            "--datadir",
            str(tmp_path / "pgdata"),  # its keys and report beside it
            url=mariadb_admin_url,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Traceback" not in output
        assert f"demo database: {name}" in output
        assert "patients 40" in output
        for policy in ("contacts-patients", "dossier-medical", "journal-modifications"):
            assert f"ok  {policy}:" in output
            assert f"\n{policy}  (" in output  # its plan
        assert "== retention plan" in output
        assert "    due: " in output
        assert "28 personal column(s) of 98 in 13 table(s)" in output  # retention scan
        assert "23 of 28 personal column(s) covered, 5 gap(s)" in output  # as on PostgreSQL
        for step in (
            "== retention hold add --policy dossier-medical: 2 patient(s) put on hold",
            "== retention approve --key",
            ": completed",
            "audit trail intact",
            "== retention archive list",
            "the subject is live again",
            "== retention exposure: before and after the run",
            "report written to",
        ):
            assert step in output, step
        assert "not available on MariaDB" not in output
        with connect(Settings(), url=database_url(mariadb_admin_url, name)) as conn:
            left = conn.execute("SELECT COUNT(*) FROM patients").fetchone()[0]
            assert 0 < left < 40  # built, then the purge ran
            personal = _personal_values(conn)
        assert personal
        assert not [value for value in personal if value in output]
        # the demo's holds as `hold add --policy` records them (not the format of holds
        # recorded before they had a scope, which `hold list` says they are)
        with connect(Settings(), url=database_url(mariadb_admin_url, name)) as conn:
            holds = conn.execute(
                f"SELECT policy, subject_table, subject_column FROM `{name}_retention`.holds"
            ).fetchall()
        assert [tuple(h) for h in holds] == [
            ("dossier-medical", f"{name}.patients", "patient_id")
        ] * 2
    finally:
        _drop(mariadb_admin_url, name)
        _drop(mariadb_admin_url, f"{name}_retention")


def test_demo_mediboard_with_a_mariadb_url_adds_its_tables(
    mariadb_admin_url: str, tmp_path: Path
) -> None:
    """Run from a folder without `policies/` and no policy folder chosen: the demo takes the
    example policies installed with the package (an installed `retention` used to stop at
    "policy folder does not exist")."""
    name = _database_name("c")
    try:
        result = _demo(
            "--patients",
            "20",
            "--demo-database",
            name,
            "--mediboard",
            "--datadir",
            str(tmp_path / "pgdata"),
            url=mariadb_admin_url,
            cwd=tmp_path,
            policies=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "policies: the examples installed with retention" in result.stdout
        for policy in ("contacts-patients", "dossier-medical", "journal-modifications"):
            assert f"ok  {policy}:" in result.stdout
        assert "operations" in result.stdout and "MyISAM" in result.stdout
        assert "zero date(s)" in result.stdout
    finally:
        _drop(mariadb_admin_url, name)
        _drop(mariadb_admin_url, f"{name}_retention")


def test_demo_mediboard_needs_a_mariadb_url() -> None:
    result = _demo("--patients", "20", "--mediboard", url=None)
    assert result.returncode == 2
    assert "--mediboard needs a MariaDB/MySQL database_url" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_refuses_a_bad_database_name() -> None:
    result = _demo("--demo-database", "x`; DROP", url="mariadb://root@127.0.0.1:1/")
    assert result.returncode == 2
    assert "--demo-database must be" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_the_demo_database_is_made_when_the_url_names_it_before_it_exists(
    mariadb_admin_url: str,
) -> None:
    """`RETENTION_DATABASE_URL=mariadb://.../retention_demo retention demo` on a server
    without that database: the demo reaches the server without a default database and
    makes it (a connection to the URL as given would have been refused: unknown database)."""
    from retention.engines import engine_for

    name = _database_name("u")
    url = database_url(mariadb_admin_url, name)
    with pytest.raises(DatabaseError, match="Unknown database"):
        connect(Settings(), url=url).close()
    try:
        made = engine_for(url).session.fresh_database(url, name)
        with connect(Settings(), url=made) as conn:
            assert conn.execute("SELECT DATABASE()").fetchone() == (name,)
    finally:
        _drop(mariadb_admin_url, name)
