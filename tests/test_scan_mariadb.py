"""`scan` on MariaDB: the same verdicts as on PostgreSQL for the same data, and MariaDB's sample
(random key ranges, the first rows of small or keyless tables, zero dates unreadable, lock
limits). Both engines are real servers (tests/fix_db.py, tests/fix_mariadb.py)."""

from __future__ import annotations

import psycopg
import pytest

from retention.catalog.introspect import Table, read_catalog
from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.discovery.coverage import current_gaps
from retention.discovery.engine import get_analyzer
from retention.discovery.inventory import (
    diff,
    installed,
    last_scan_id,
    latest_inventory,
    save_scan,
    scan_time,
)
from retention.discovery.model import ScanResult
from retention.discovery.sample import MAX_ROWS, TableSample, sample_table
from retention.discovery.scan import scan
from retention.engines import Connection, sql
from retention.engines.mariadb.flavour import parse
from retention.settings import Settings
from retention.store.schema import migrate
from tests.fix_db import DemoTemplate, temporary_database
from tests.test_run_mariadb import general_log
from tests.test_scan import DEMO_PERSONAL


def _verdicts(result: ScanResult) -> dict[str, str | None]:
    return {f"{c.table}.{c.column}": c.entity for c in result.columns}


@pytest.fixture(scope="module")
def both_scans(
    pg_admin_url: str, demo_template: DemoTemplate, mariadb_admin_url: str
) -> tuple[ScanResult, ScanResult]:
    """The demo hospital (same patients, seed and date) scanned on PostgreSQL and on MariaDB."""
    from tests.fix_mariadb import _admin, _new_name, with_database

    get_analyzer()
    with (
        temporary_database(pg_admin_url, template=demo_template.dbname) as url,
        psycopg.connect(url, autocommit=True) as pg,
    ):
        on_pg = scan(pg)
    name = _new_name()
    admin = _admin(mariadb_admin_url)
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}`")
        with connect(Settings(), url=with_database(mariadb_admin_url, name)) as maria:
            create_schema(maria)
            generate(
                maria,
                patients=demo_template.patients,
                seed=demo_template.seed,
                today=demo_template.today,
            )
            on_maria = scan(
                maria,
                workers=2,
                connect=lambda: connect(Settings(), url=with_database(mariadb_admin_url, name)),
            )
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
    return on_pg, on_maria


def test_the_demo_gets_the_same_verdicts_on_mariadb_and_postgresql(
    both_scans: tuple[ScanResult, ScanResult],
) -> None:
    on_pg, on_maria = both_scans
    assert _verdicts(on_maria) == _verdicts(on_pg)
    found = {k: v for k, v in _verdicts(on_maria).items() if v is not None}
    assert found == DEMO_PERSONAL
    assert {c.schema for c in on_maria.columns} == {on_maria.columns[0].schema}  # the database


@pytest.fixture
def maria(mariadb_conn: Connection) -> Connection:
    return mariadb_conn


def _table(conn: Connection, name: str) -> Table:
    return next(t for t in read_catalog(conn).tables.values() if t.name == name)


def _fill(conn: Connection, ddl: str, insert: str) -> None:
    conn.execute(ddl)
    conn.execute(insert)
    conn.execute("ANALYZE TABLE " + ddl.split()[2])


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_a_large_table_is_read_in_random_key_ranges(maria: Connection) -> None:
    _fill(
        maria,
        "CREATE TABLE big (id INT UNSIGNED PRIMARY KEY, label VARCHAR(40), sparse VARCHAR(40))",
        "INSERT INTO big SELECT seq, CONCAT('value ', seq), IF(seq % 10 = 0, CONCAT('s', seq), "
        "NULL) FROM seq_1_to_60000",
    )
    big = _table(maria, "big")
    got = sample_table(maria, big, [big.columns["label"], big.columns["sparse"]], values=200)
    assert got.method == "key ranges"
    assert got.rows <= MAX_ROWS
    # the sparse column (one row in ten) made it read more rows, as PostgreSQL's null_frac does
    assert got.rows >= 1500 and got.columns["sparse"].non_null >= 150
    numbers = sorted(int(v.split()[1]) for v in got.columns["label"].values)
    # not the table's first rows: the values kept are the first 200 read, from the first four
    # ranges, whose starts are drawn from a generator seeded by the table's qualified name (the
    # test's database is new each time): all four under 30,000 one run in sixteen (seen in CI),
    # all under 2,000 about one in a million
    assert numbers[-1] > 2_000
    again = sample_table(maria, big, [big.columns["label"], big.columns["sparse"]], values=200)
    assert again.columns == got.columns  # the same rows: verdicts do not flicker


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_small_and_keyless_tables_are_read_from_their_start(maria: Connection) -> None:
    _fill(
        maria,
        "CREATE TABLE keyless (code VARCHAR(20) PRIMARY KEY, label VARCHAR(40))",
        "INSERT INTO keyless SELECT CONCAT('c', seq), CONCAT('value ', seq) FROM seq_1_to_5000",
    )
    _fill(
        maria,
        "CREATE TABLE small (id INT PRIMARY KEY, label VARCHAR(40))",
        "INSERT INTO small SELECT seq, CONCAT('value ', seq) FROM seq_1_to_300",
    )
    keyless, small = _table(maria, "keyless"), _table(maria, "small")
    got = sample_table(maria, keyless, [keyless.columns["label"]], values=200)
    assert got.method == "scan" and got.rows == 400
    got = sample_table(maria, small, [small.columns["label"]], values=200)
    assert got.method == "scan" and got.rows == 300
    assert len(got.columns["label"].values) == 200


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_zero_dates_are_unreadable_values_never_read_raw(maria: Connection) -> None:
    maria.execute(
        "CREATE TABLE visits (id INT PRIMARY KEY, seen DATE NOT NULL DEFAULT '0000-00-00', "
        "at DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00', note VARCHAR(20))"
    )
    maria.execute(
        "INSERT INTO visits SELECT seq, IF(seq % 2 = 0, '0000-00-00', '2020-05-01'), "
        "IF(seq % 3 = 0, '2020-05-00 10:00:00', '2020-05-01 10:00:00'), 'x' FROM seq_1_to_30"
    )
    visits = _table(maria, "visits")
    got = sample_table(maria, visits, [visits.columns["seen"], visits.columns["at"]])
    assert got.columns["seen"].values == ("2020-05-01",)
    assert got.columns["seen"].non_null == 15
    assert got.columns["at"].values == ("2020-05-01 10:00:00",)
    assert got.columns["at"].non_null == 20
    verdicts = {c.column: c.entity for c in scan(maria).columns}
    assert verdicts == {"id": None, "seen": None, "at": None, "note": None}


def test_a_locked_table_times_out_and_is_judged_by_its_names(
    maria: Connection, mariadb_url: str
) -> None:
    maria.execute("CREATE TABLE annuaire (id INT PRIMARY KEY, nom TEXT, email TEXT)")
    maria.execute("INSERT INTO annuaire VALUES (1, 'DUPONT', 'a.dupont@orange.fr')")
    with connect(Settings(), url=mariadb_url) as locker:
        locker.execute("LOCK TABLES annuaire WRITE")
        try:
            result = scan(maria, lock_timeout_ms=1000)
        finally:
            locker.execute("UNLOCK TABLES")
    verdicts = {c.column: c for c in result.columns}
    assert verdicts["nom"].entity == "PERSON"
    assert "timed out" in verdicts["email"].evidence["sample"]["error"]


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_the_inventory_is_stored_and_diffed_on_mariadb(maria: Connection) -> None:
    """The tool's own database holds the scans; a dropped column leaves the inventory, a new
    personal one shows in the diff."""
    tool = f"{maria.info.dbname}_tool"
    maria.execute(
        "CREATE TABLE annuaire (id INT PRIMARY KEY, nom VARCHAR(40), email VARCHAR(80), "
        "info VARCHAR(20))"
    )
    maria.execute(
        "INSERT INTO annuaire SELECT seq, ELT(1 + seq % 5, 'DUPONT', 'MARTIN', 'NGUYEN', "
        "'LEROY', 'MOREAU'), CONCAT('user', seq, '@orange.fr'), 'RAS' FROM seq_1_to_40"
    )
    try:
        migrate(maria, tool)
        assert installed(maria, tool)
        first_id = save_scan(maria, scan(maria, tool_schema=tool), schema=tool)
        maria.execute("ALTER TABLE annuaire DROP COLUMN info, ADD COLUMN tel VARCHAR(20)")
        maria.execute("UPDATE annuaire SET tel = CONCAT('06 12 34 56 ', LPAD(id, 2, '0'))")
        second = scan(maria, tool_schema=tool)
        before = latest_inventory(maria, schema=tool)
        assert {v.column: v.entity for v in before if v.column != "nom"} == {
            "id": None,
            "email": "EMAIL_ADDRESS",
        }  # `info` no longer exists
        changes = diff(before, second.columns)
        assert [(c.column, c.kind, c.after) for c in changes] == [("tel", "became", "PHONE_NUMBER")]
        second_id = save_scan(maria, second, schema=tool)
        assert last_scan_id(maria, schema=tool) == second_id > first_id
        assert scan_time(maria, first_id, schema=tool).tzinfo is not None
        assert {v.column for v in latest_inventory(maria, schema=tool)} == {
            "id",
            "nom",
            "email",
            "tel",
        }
        assert latest_inventory(maria, schema=tool)[0].evidence["type"] == "text"
        gaps = current_gaps(maria, tool, [])  # check --coverage: no policy covers anything
        assert gaps is not None and {"email", "tel"} <= {g.column for g in gaps}
    finally:
        maria.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(tool)))


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_on_mysql_each_sample_statement_carries_its_limits_as_hints(
    maria: Connection, mariadb_admin_url: str
) -> None:
    """MySQL 8 has no `SET STATEMENT`: a connection to a MySQL server (its answer faked here,
    on MariaDB, which reads the hints as comments) bounds every statement of the sample by
    `MAX_EXECUTION_TIME` and `SET_VAR(lock_wait_timeout)` after its first SELECT, and reads
    the same rows."""
    _fill(
        maria,
        "CREATE TABLE big (id INT UNSIGNED PRIMARY KEY, label VARCHAR(40))",
        "INSERT INTO big SELECT seq, CONCAT('value ', seq) FROM seq_1_to_60000",
    )
    _fill(
        maria,
        "CREATE TABLE keyless (code VARCHAR(20) PRIMARY KEY, label VARCHAR(40))",
        "INSERT INTO keyless SELECT CONCAT('c', seq), CONCAT('value ', seq) FROM seq_1_to_5000",
    )
    big, keyless = _table(maria, "big"), _table(maria, "keyless")

    def both() -> list[TableSample]:
        return [
            sample_table(maria, big, [big.columns["label"]], values=200),
            sample_table(maria, keyless, [keyless.columns["label"]], values=200),
        ]

    own = both()
    maria.flavour = parse("8.0.36", "MySQL Community Server - GPL")  # type: ignore[attr-defined]
    got, logged = general_log(mariadb_admin_url, both)

    assert [(g.method, g.rows, g.columns) for g in got] == [
        (o.method, o.rows, o.columns) for o in own
    ]
    assert [g.method for g in got] == ["key ranges", "scan"]
    read = [
        text
        for _, kind, text in logged
        if kind in ("Query", "Execute") and ("`big`" in text or "`keyless`" in text)
    ]
    assert len(read) >= 3  # the key's bounds, the ranges, the keyless table's first rows
    for text in read:
        assert "SET STATEMENT" not in text
        assert text.startswith("SELECT /*+ MAX_EXECUTION_TIME(")
        assert "SET_VAR(lock_wait_timeout=" in text
