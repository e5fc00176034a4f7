"""`retention draft` on MariaDB: the same draft as on PostgreSQL for the same hospital, and a
sensible one on Mediboard's own shapes (a MyISAM table, zero dates, enum columns, class names in
another case, no foreign key at all), with no personal value and no traceback.

The demo hospital is built on both real servers from one seed (as tests/test_plan_mariadb.py),
a scan's verdicts stored in the tool's schema of each; the drafts are compared line by line,
with and without the demo's foreign keys. What may differ is said by the catalogue, not by the
data: the schema's name (a database on MariaDB) and the columns' declared types.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from retention.catalog.introspect import read_catalog
from retention.catalog.references import (
    CandidateReference,
    candidate_references,
    class_rows,
    class_tables,
    distinct_classes,
    match_share,
)
from retention.db import connect
from retention.demo.generate import generate
from retention.demo.mariadb import add_mediboard_tables
from retention.demo.schema import create_schema
from retention.discovery.inventory import save_scan
from retention.discovery.model import ColumnVerdict, ScanResult
from retention.draft import dates
from retention.draft.build import build_draft, subject_and_key
from retention.draft.render import render_draft
from retention.engines import Connection, engine_of, sql
from retention.settings import Settings
from retention.store.schema import migrate
from tests.engine_helpers import cli
from tests.fix_db import temporary_database

TODAY = date(2025, 6, 1)
PATIENTS = 150
SEED = 7

# A stored scan's verdicts (as `retention scan` leaves them), without running Presidio.
PERSONAL = {
    ("patients", "nom"): "PERSON",
    ("patients", "prenom"): "PERSON",
    ("patients", "naissance"): "DATE_OF_BIRTH",
    ("patients", "cp"): "FR_POSTAL_CODE",
    ("patients", "ville"): "FR_POSTAL_CODE",  # city names: a generalisation cannot change them
    ("patients", "tel"): "PHONE_NUMBER",
    ("patients", "email"): "EMAIL_ADDRESS",
    ("patients", "matricule"): "FR_NIR",
    ("patients", "rques"): "FREE_TEXT_PERSONAL",
    ("contacts_urgence", "nom"): "PERSON",
    ("contacts_urgence", "tel"): "PHONE_NUMBER",
    ("user_log", "extra"): "FREE_TEXT_PERSONAL",
    ("medecins", "rpps"): "FR_RPPS",
    ("medecins", "nom"): "PERSON",
}
MEDIBOARD_PERSONAL = {
    ("observations", "text"): "FREE_TEXT_PERSONAL",
    ("operations", "rques"): "FREE_TEXT_PERSONAL",
}

# The officer's part (tests/test_draft.py): a clock that makes every patient due.
FILLED = """
dates:
  derniere_venue:
    latest: entree
    over: sejours
retain_until: date '2000-01-01'
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


@dataclass(frozen=True)
class Hospital:
    url: str
    conn: Connection
    schema: str  # where the demo's tables are: `public`, or the database on MariaDB
    tool: str  # the tool's schema, holding the stored scan


def _drop(admin_url: str, name: str) -> None:
    with connect(Settings(), url=admin_url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _scan(hospital: Hospital, personal: dict[tuple[str, str], str]) -> None:
    migrate(hospital.conn, hospital.tool)
    verdicts = tuple(
        ColumnVerdict(hospital.schema, t, c, e, 0.95, {"name": c}) for (t, c), e in personal.items()
    )
    verdicts += (ColumnVerdict(hospital.schema, "sejours", "type", None, 0.0, {}),)
    scan = ScanResult(datetime(2025, 5, 1, tzinfo=UTC), verdicts)
    save_scan(hospital.conn, scan, schema=hospital.tool)


@pytest.fixture
def maria(mariadb_url: str, mariadb_conn: Connection) -> Iterator[Hospital]:
    """The demo hospital in a new MariaDB database, its tool's schema a database beside it."""
    create_schema(mariadb_conn)
    generate(mariadb_conn, patients=PATIENTS, seed=SEED, today=TODAY)
    database = mariadb_conn.info.dbname
    tool = f"{database}_tool"
    try:
        yield Hospital(mariadb_url, mariadb_conn, database, tool)
    finally:
        _drop(mariadb_url, tool)


@pytest.fixture
def pg(pg_admin_url: str) -> Iterator[Hospital]:
    """The same hospital on PostgreSQL."""
    with temporary_database(pg_admin_url) as url, connect(Settings(), url=url) as conn:
        create_schema(conn)
        generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
        yield Hospital(url, conn, "public", "retention")


def _drop_foreign_keys(hospital: Hospital) -> None:
    conn = hospital.conn
    found = conn.execute(
        "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS "
        "WHERE CONSTRAINT_TYPE = 'FOREIGN KEY' AND TABLE_SCHEMA = %s",
        (hospital.schema,),
    ).fetchall()
    clause = "DROP FOREIGN KEY {}" if engine_of(conn).name == "mariadb" else "DROP CONSTRAINT {}"
    for table, name in found:
        conn.execute(
            sql.SQL("ALTER TABLE {} " + clause).format(
                sql.Identifier(hospital.schema, table), sql.Identifier(name)
            )
        )
    assert found


def _draft(hospital: Hospital, subject: str = "patients") -> str:
    catalog = read_catalog(hospital.conn, tool_schema=hospital.tool)
    table, key = subject_and_key(catalog, subject, None)
    with engine_of(hospital.conn).snapshots.transaction(hospital.conn, read_only=True):
        draft = build_draft(hospital.conn, catalog, table, key, schema=hospital.tool)
    return render_draft(draft, database="demo", today=TODAY)


def _engine_neutral(text: str, hospital: Hospital) -> str:
    """The draft without what the catalogue names differently: the schema, and the declared
    type of each candidate date (`datetime` / `timestamp without time zone`)."""
    text = text.replace(f"{hospital.schema}.", "<schema>.")
    return re.sub(r"(?m)^(#     \w+) \(.*?( read as \S+)?\): ", r"\1 (<type>\2): ", text)


@pytest.mark.parametrize("foreign_keys", [True, False], ids=["with-fks", "fks-dropped"])
def test_the_draft_on_mariadb_is_the_draft_on_postgresql(
    maria: Hospital, pg: Hospital, foreign_keys: bool
) -> None:
    for hospital in (maria, pg):
        _scan(hospital, PERSONAL)
        if not foreign_keys:
            _drop_foreign_keys(hospital)
    on_maria = _engine_neutral(_draft(maria), maria)
    on_pg = _engine_neutral(_draft(pg), pg)
    diff = "".join(difflib.unified_diff(on_pg.splitlines(True), on_maria.splitlines(True)))
    assert on_maria == on_pg, diff
    # the comparison means something: links, classes, dates and personal columns were drafted
    assert "polymorphic:" in on_pg
    assert "CSejour: sejours" in on_pg and "# TO DECIDE" in on_pg
    assert "entree (<type>): years 1985 .. " in on_pg
    assert "{column: naissance, to: year}" in on_pg and "e.g. " in on_pg
    assert "- ville " in on_pg  # erased: its values are no postal codes, on both engines
    if not foreign_keys:
        assert "    - table: sejours " in on_pg and "column: patient_id" in on_pg


@pytest.fixture
def mediboard(maria: Hospital) -> Hospital:
    """The demo hospital with Mediboard's own shapes, and no foreign key at all."""
    add_mediboard_tables(maria.conn)
    _drop_foreign_keys(maria)
    return maria


def _decided(text: str) -> str:
    """The officer's decision on the classes the data did not settle (tests/test_draft.py)."""
    return re.sub(r"(?m)^( {10})# (\S+: \w+ +# not linked: )", r"\1\2", text)


def _count(conn: Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.mariadb_only("MySQL 8 writes integer types without display width")
def test_the_draft_of_mediboard_shapes_is_sensible_and_passes_check_once_filled(
    mediboard: Hospital, tmp_path: Path
) -> None:
    conn = mediboard.conn
    out = tmp_path / "patients.yaml"
    done = cli(mediboard.url, "draft", "--subject", "patients", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "link(s) to declare" in done.stderr
    text = out.read_text(encoding="utf-8")
    # a MyISAM table without foreign key, its unsigned `sejour_id` matching the stays' keys
    operations = _count(conn, "SELECT COUNT(*) FROM operations")
    assert (
        f"    - table: operations                 # {operations:,} of {operations:,} values "
        "(100.0 %, every value) match sejours.sejour_id" in text
    )
    # the classes of observations, read exactly: 'csejour' apart from 'CSejour' (which the
    # case-insensitive collation would merge), each mapped to the stays by the ids it holds
    lower = _count(conn, "SELECT COUNT(*) FROM observations WHERE BINARY object_class = 'csejour'")
    upper = _count(conn, "SELECT COUNT(*) FROM observations WHERE BINARY object_class = 'CSejour'")
    assert lower and upper
    for spelling, rows in (("CSejour", upper), ("csejour", lower)):
        assert re.search(
            rf"\n {{10}}{spelling}: sejours +# {rows:,} rows; {rows:,} of {rows:,} ids \(100.0 %",
            text,
        ), spelling
    # zero dates: unreadable, their share said, never a crash
    for table in ("operations", "observations"):
        zero, rows = conn.execute(
            sql.SQL("SELECT SUM(MONTH(`date`) = 0), COUNT(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        assert zero > 0
        assert re.search(
            rf"#   {table}:\n(#     .*\n)*#     date \(datetime\): years 1985 \.\. "
            rf"\d{{4}}; null 0\.0 %, unreadable {100 * zero / rows:.1f} %\n",
            text,
        ), table
    # enum columns (`cote`, `degre`, `annulee`) are no dates
    assert "cote (" not in text and "degre (" not in text
    folder = tmp_path / "policies"
    folder.mkdir()
    filled = _decided(text) + FILLED + "    accept_non_transactional: [operations]\n"
    (folder / "draft.yaml").write_text(filled, encoding="utf-8")
    checked = cli(mediboard.url, "check", policies=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok  patients: subject " in checked.stdout and "Traceback" not in checked.stderr
    # a link left out: check names the column that looks like it, with its values' share
    allergies = _count(conn, "SELECT COUNT(*) FROM allergies")
    link = re.search(r"    - table: allergies .*\n      column: patient_id\n", filled)
    assert link is not None
    (folder / "draft.yaml").write_text(filled.replace(link.group(0), ""), encoding="utf-8")
    warned = cli(mediboard.url, "check", policies=folder)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert (
        f"{mediboard.schema}.allergies.patient_id (int(10) unsigned) looks like a reference to "
        f"patients.patient_id (the key's name) without a foreign key, and this policy neither "
        f"follows nor excludes it: {allergies:,} of {allergies:,} values read (100%) match a key "
        "of patients (every value, each looked up in the key's index)"
    ) in warned.stdout + warned.stderr
    assert "Traceback" not in warned.stderr


def test_the_mediboard_draft_holds_no_personal_value(mediboard: Hospital) -> None:
    """Names, phones, e-mails, NIRs, remarks, observations: none in the draft, whose examples
    are masked (tests/test_draft.py shows the same on PostgreSQL)."""
    _scan(mediboard, {**PERSONAL, **MEDIBOARD_PERSONAL})
    text = _draft(mediboard)
    queries = [
        f"SELECT {c} FROM patients"
        for c in ("nom", "prenom", "tel", "tel_portable", "email", "matricule", "adresse", "rques")
    ]
    queries += [
        "SELECT nom FROM contacts_urgence",
        "SELECT tel FROM contacts_urgence",
        "SELECT extra FROM user_log",
        "SELECT `text` FROM observations",
        "SELECT rques FROM operations",
    ]
    values = {
        str(v)
        for query in queries
        for (v,) in mediboard.conn.execute(query)
        if v is not None and len(str(v)) >= 5
    }
    assert len(values) > 500
    assert [v for v in values if v in text] == []
    assert "e.g. " in text  # masked examples are there
    assert "observations.`text`" not in text and "- observations.text " in text


def test_a_large_table_is_read_in_ranges_of_its_key_the_same_each_time(maria: Hospital) -> None:
    """MariaDB has no TABLESAMPLE: a table estimated above the limit is read in ranges of its
    numeric key from random starts drawn from its name, so two drafts agree."""
    catalog = read_catalog(maria.conn)
    reference = CandidateReference(
        (maria.schema, "prescription_lignes"),
        "prescription_id",
        (maria.schema, "prescriptions"),
        "prescription_id",
        "key name",
    )
    assert catalog.tables[reference.table].estimated_rows > 200
    first = match_share(maria.conn, catalog, reference, limit=100)
    assert first.sampled and (first.values, first.matching) == (100, 100)
    assert first.method == "4 ranges of 50 keys from random starts, at most 100 values"
    assert match_share(maria.conn, catalog, reference, limit=100) == first


def test_a_table_without_a_numeric_key_is_read_from_its_first_rows(maria: Hospital) -> None:
    maria.conn.execute(
        "CREATE TABLE badges (code varchar(20) NOT NULL PRIMARY KEY, patient_id int unsigned)"
    )
    maria.conn.execute(
        "INSERT INTO badges SELECT CONCAT('b-', patient_id), patient_id FROM patients"
    )
    maria.conn.execute("ANALYZE TABLE badges").fetchall()
    catalog = read_catalog(maria.conn)
    reference = CandidateReference(
        (maria.schema, "badges"), "patient_id", (maria.schema, "patients"), "patient_id", "key name"
    )
    share = match_share(maria.conn, catalog, reference, limit=30)
    assert share.sampled and (share.values, share.matching) == (30, 30)
    assert share.method == "the first 60 rows (no numeric unique key), at most 30 values"
    # a table of at most four times the values wanted is read whole, as ranges would overlap
    whole = match_share(maria.conn, catalog, reference, limit=60)
    assert whole.sampled and (whole.values, whole.matching) == (60, 60)
    assert re.fullmatch(r"every row \(about 1\d\d\), at most 60 values", whole.method)


def test_sampled_dates_keep_zero_dates_unreadable(
    mediboard: Hospital, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dates, "SAMPLE_ROWS", 100)
    # InnoDB's row estimate, which decides whether to sample, refreshed in the background
    # after the fixture's inserts: read before that (a loaded machine), the table seemed
    # small, was read whole and the test failed once
    mediboard.conn.execute("ANALYZE TABLE observations").fetchall()
    table = read_catalog(mediboard.conn).tables[(mediboard.schema, "observations")]
    (found,) = dates.date_candidates(mediboard.conn, table)
    assert found.sampled and found.column.name == "date"
    # four ranges of 50 keys from random starts (seeded by the table's database name, another
    # each run): they may overlap or run past the last key, so fewer than 200 rows (71 seen);
    # a zero date every 9th key puts some in any range
    assert 0 < found.rows <= 200 and found.nulls == 0 and 0 < found.unreadable < found.rows
    assert found.first is not None and found.first.year >= 1985


def test_classes_are_read_exactly_with_and_without_an_index(mediboard: Hospital) -> None:
    """Each spelling a class of its own, whatever the column's collation, as check reads them
    (README, 'MariaDB and MySQL'); a class named in lower case still designates its table."""
    conn = mediboard.conn
    for indexed in (True, False):
        if not indexed:
            conn.execute("ALTER TABLE observations DROP INDEX `object`")
        table = read_catalog(conn).tables[(mediboard.schema, "observations")]
        assert table.is_indexed(["object_class"]) is indexed
        found = distinct_classes(conn, table, "object_class")
        assert (found.values, found.complete) == (("CConsultation", "CSejour", "csejour"), True)
        rows = {c.value: c.rows for c in class_rows(conn, table, "object_class", found.values)}
        assert sum(rows.values()) == _count(conn, "SELECT COUNT(*) FROM observations")
    catalog = read_catalog(conn)
    assert (
        class_tables(catalog, "csejour")
        == class_tables(catalog, "CSejour")
        == [(mediboard.schema, "sejours")]
    )


def test_a_key_numbered_by_the_server_is_no_reference_one_copied_is(maria: Hospital) -> None:
    """AUTO_INCREMENT, as PostgreSQL's serial: the table's own key, not a copy of another's."""
    maria.conn.execute(
        "CREATE TABLE patient_notes (patient_id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY)"
    )
    maria.conn.execute("CREATE TABLE patient_ins (patient_id int unsigned NOT NULL PRIMARY KEY)")
    found = {
        c.table[1]
        for c in candidate_references(read_catalog(maria.conn))
        if c.target[1] == "patients" and c.column == "patient_id"
    }
    assert "patient_ins" in found and "patient_notes" not in found
