"""`retention check` on MariaDB: what a schema of the MySQL family does to a policy's guarantees,
on the real server (tests/fix_mariadb.py: a database of its own per test).

Tables without transactions (MyISAM, Aria) that a phase changes are refused unless the phase
accepts them; tables without a key cannot be archived or rewritten row by row (no row address);
system-versioned tables keep what a phase removes; a clock date read from an `ON UPDATE`
column moves when the tool updates its row. Every problem has file, line and hint, and names
tables and columns, never a value.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.catalog.introspect import read_catalog
from retention.cli.run import render_report
from retention.daemon.metrics import Metrics
from retention.engine.gates import PhaseGates
from retention.engine.outcome import PhaseResult, RunReport
from retention.engine.record import RunRecord
from retention.engines import Connection, engine_of
from retention.errors import Problem
from retention.policy.check import check_policies
from retention.policy.checks.cascades import phase_writes
from retention.policy.checks.transactions import unaccepted
from retention.report.history import read_history
from retention.store.schema import migrate
from tests.engine_helpers import cli, settings, trail
from tests.fix_mariadb import server_is_mysql

SCHEMA = (
    """CREATE TABLE patients (
        patient_id int unsigned NOT NULL PRIMARY KEY,
        nom varchar(80),
        tel varchar(20),
        naissance date,
        modifie timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()
    ) ENGINE=InnoDB""",
    # Mediboard's older tables: MyISAM, and no foreign key
    """CREATE TABLE sejour (
        sejour_id int unsigned NOT NULL PRIMARY KEY,
        patient_id int unsigned NOT NULL,
        sortie datetime,
        annule enum('0','1') NOT NULL DEFAULT '0',
        libelle varchar(80),
        KEY patient_id (patient_id)
    ) ENGINE=MyISAM""",
    """CREATE TABLE consultation (
        consultation_id int unsigned NOT NULL PRIMARY KEY,
        patient_id int unsigned NOT NULL,
        motif varchar(80),
        KEY patient_id (patient_id)
    ) ENGINE=Aria""",
    # no primary key, no unique key of NOT NULL columns
    """CREATE TABLE notes (
        patient_id int unsigned NOT NULL,
        texte text,
        KEY patient_id (patient_id)
    ) ENGINE=InnoDB""",
    # a history of every change, kept by the server
    """CREATE TABLE contacts (
        contact_id int unsigned NOT NULL PRIMARY KEY,
        patient_id int unsigned NOT NULL,
        tel varchar(20),
        KEY patient_id (patient_id)
    ) ENGINE=InnoDB WITH SYSTEM VERSIONING""",
    "INSERT INTO patients (patient_id, nom, tel, naissance) VALUES (1, 'Dupont', '0611', "
    "'1950-01-01')",
)

HEAD = """\
name: p
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
LINKS
dates:
  naissance: {column: naissance}
  derniere_sortie: {latest: sortie, over: sejour, where: "annule = '0'"}
retain_until: |
  if derniere_sortie is null then null
  else greatest(derniere_sortie + 20 years, naissance + 28 years)
phases:
"""
SEJOUR = "    - {table: sejour, column: patient_id}"
CONSULTATION = "    - {table: consultation, column: patient_id}"
NOTES = "    - {table: notes, column: patient_id}"
CONTACTS = "    - {table: contacts, column: patient_id}"


@pytest.fixture
def maria(mariadb_conn: Connection) -> Connection:
    for statement in SCHEMA:
        if server_is_mysql():  # MySQL has no Aria and no system versioning: MyISAM, InnoDB
            mysql = statement.replace("ENGINE=Aria", "ENGINE=MyISAM")
            mariadb_conn.execute(mysql.replace(" WITH SYSTEM VERSIONING", ""))
        else:
            mariadb_conn.execute(statement)
    return mariadb_conn


def _policy(links: list[str], phases: str, dates: str = "") -> str:
    head = HEAD.replace("LINKS", "\n".join(links))
    if dates:
        head = head.replace("retain_until:", f"{dates}\nretain_until:")
    return head + textwrap.dedent(phases)


def _check(conn: Connection, tmp_path: Path, text: str) -> list[Problem]:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    return check_policies(conn, folder).problems


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


PURGE = """\
  - name: destruction
    due: retain_until
    action: purge
"""


@pytest.mark.mariadb_only("an Aria table in its schema")
def test_a_purge_reaching_tables_without_transactions_is_refused_naming_each(
    maria: Connection, tmp_path: Path
) -> None:
    text = _policy([SEJOUR, CONSULTATION], PURGE)
    problems = _check(maria, tmp_path, text)
    assert [p.severity for p in problems] == ["error"]
    (error,) = problems
    assert error.location.line == _line(text, "action: purge")
    assert (
        ".consultation (Aria), " in error.message and ".sejour (MyISAM) have no " in error.message
    )
    assert "patients" not in error.message  # InnoDB
    assert "its audit entry included, is rolled back" in error.message
    assert error.hint is not None
    assert "ALTER TABLE consultation ENGINE=InnoDB" in error.hint
    assert '\'accept_non_transactional: ["consultation", "sejour"]\'' in error.hint
    assert "Dupont" not in error.render() and "0611" not in error.render()


@pytest.mark.mariadb_only("an Aria table in its schema")
def test_a_table_the_phase_accepts_is_no_longer_refused(maria: Connection, tmp_path: Path) -> None:
    text = _policy(
        [SEJOUR, CONSULTATION],
        PURGE + "    accept_non_transactional: [sejour]\n",
    )
    problems = _check(maria, tmp_path, text)
    assert [p.severity for p in problems] == ["error"]
    assert ".consultation (Aria) has no transactions" in problems[0].message
    assert "sejour" not in problems[0].message
    # the hint keeps what is accepted already
    assert 'accept_non_transactional: ["sejour", "consultation"]' in str(problems[0].hint)


def test_a_phase_accepting_every_such_table_binds_and_remembers_them(
    maria: Connection, tmp_path: Path
) -> None:
    text = _policy(
        [SEJOUR, CONSULTATION],
        PURGE + "    accept_non_transactional: [sejour, consultation]\n",
    )
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    result = check_policies(maria, folder)
    assert result.problems == []
    (policy,) = result.bound
    db = policy.subject.schema
    assert policy.phases[0].accepted_non_transactional == {(db, "sejour"), (db, "consultation")}


def test_accepted_names_are_checked(maria: Connection, tmp_path: Path) -> None:
    text = _policy(
        [SEJOUR, CONSULTATION],
        """\
  - name: contacts
    due: naissance + 100 years
    action: erase
    columns: [sejour.libelle]
    accept_non_transactional: [sejour, sejur, patients, consultation]
""",
    )
    problems = _check(maria, tmp_path, text)
    found = {(p.severity, p.location.line, p.location.column): p for p in problems}
    line = _line(text, "accept_non_transactional")
    column = text.splitlines()[line - 1].index("sejur,") + 1
    unknown = found[("error", line, column)]
    assert unknown.message == "unknown table 'sejur'" and unknown.hint == "did you mean 'sejour'?"
    patients = next(p for p in problems if "patients has transactions" in p.message)
    assert patients.severity == "warning" and "(InnoDB)" in patients.message
    unchanged = next(p for p in problems if "does not change" in p.message)
    assert unchanged.severity == "warning" and ".consultation" in unchanged.message
    assert "phase 'contacts' (erase)" in unchanged.message
    assert len(problems) == 3


def test_a_column_action_on_a_table_without_transactions_is_refused(
    maria: Connection, tmp_path: Path
) -> None:
    text = _policy(
        [SEJOUR],
        """\
  - name: libelles
    due: derniere_sortie + 3 years
    action: erase
    columns: [sejour.libelle, nom]
""",
    )
    (error,) = _check(maria, tmp_path, text)
    assert error.message.startswith("erase: ") and ".sejour (MyISAM) has no" in error.message
    assert error.location.line == _line(text, "action: erase")


def test_the_run_rereads_the_storage_engines_before_a_phase(
    maria: Connection, tmp_path: Path
) -> None:
    """A table converted after the policies were bound: the run's live read finds it."""
    maria.execute("ALTER TABLE sejour ENGINE=InnoDB")
    maria.execute("ALTER TABLE consultation ENGINE=InnoDB")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(_policy([SEJOUR, CONSULTATION], PURGE), encoding="utf-8")
    (policy,) = check_policies(maria, folder).bound
    phase = policy.phases[0]
    changed = phase_writes(policy.catalog, policy.graph, phase).tables
    live = engine_of(maria).catalogue
    assert unaccepted(phase, changed, live.transactional(maria, changed)) == []
    maria.execute("ALTER TABLE consultation ENGINE=MyISAM")
    db = policy.subject.schema
    assert live.transactional(maria, changed)[(db, "consultation")] is False
    assert unaccepted(phase, changed, live.transactional(maria, changed)) == [(db, "consultation")]
    # a table that disappeared counts as without transactions: refused, never run blind
    maria.execute("DROP TABLE consultation")
    assert (db, "consultation") not in live.transactional(maria, changed)
    assert unaccepted(phase, changed, live.transactional(maria, changed)) == [(db, "consultation")]


def test_the_run_refuses_the_phase_and_audits_why(
    maria: Connection,
    mariadb_url: str,
    conn: psycopg.Connection[Any],
    db_url: str,
    tmp_path: Path,
) -> None:
    """The run's gate before a phase's first batch, on MariaDB; its audit entry is written
    where the run's record is (here a PostgreSQL database: the tool's own schema is not on
    MariaDB yet)."""
    maria.execute("ALTER TABLE sejour ENGINE=InnoDB")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(_policy([SEJOUR], PURGE), encoding="utf-8")
    (policy,) = check_policies(maria, folder).bound
    config = settings(mariadb_url, folder)
    migrate(conn, config.schema_name)
    gates = PhaseGates(maria, config, RunRecord(conn, config, trail(conn, config)))
    phase = policy.phases[0]
    run_id = uuid.uuid4()
    admitted = PhaseResult(policy.name, phase.name, phase.action, 1)
    assert gates.admit(policy, phase, admitted, run_id) and admitted.refused is None
    maria.execute("ALTER TABLE sejour ENGINE=MyISAM")  # converted since the policies were bound
    result = PhaseResult(policy.name, phase.name, phase.action, 1)
    assert not gates.admit(policy, phase, result, run_id)
    db = policy.subject.schema
    assert result.refusal == "non_transactional"
    assert result.refused is not None and f"purge: {db}.sejour has no transactions" in (
        result.refused
    )
    rendered = render_report(RunReport(run_id, phases=[result]))
    assert "not run, nothing changed: purge: " in rendered
    assert "accept them under 'accept_non_transactional'" in rendered
    ((detail,),) = conn.execute(
        "SELECT detail FROM retention.audit WHERE event = 'phase_refused'"
    ).fetchall()
    assert detail["reason"] == "non_transactional" and detail["tables"] == [f"{db}.sejour"]
    assert "Dupont" not in json.dumps(detail)
    (incident,) = read_history(conn, "retention", [policy]).incidents
    assert (incident.event, incident.message) == ("phase_refused", f"{db}.sejour: no transactions")
    metrics = Metrics()
    metrics.run_ended(RunReport(run_id, phases=[result]), metrics.run_started(), None)
    refused = metrics.registry.get_sample_value(
        "retention_phases_refused_total",
        {"policy": "p", "phase": "destruction", "reason": "non_transactional"},
    )
    assert refused == 1


def test_archiving_a_table_without_a_row_key_is_refused(maria: Connection, tmp_path: Path) -> None:
    maria.execute("ALTER TABLE sejour ENGINE=InnoDB")
    text = _policy(
        [SEJOUR, NOTES],
        """\
  - name: archivage
    due: derniere_sortie + 5 years
    action: archive
""",
    )
    (error,) = _check(maria, tmp_path, text)
    assert error.location.line == _line(text, "action: archive")
    assert ".notes has no primary key nor unique key of NOT NULL columns" in error.message
    assert "no row address" in error.message
    assert error.hint == (
        "add a primary key to notes (or a unique key whose columns are all NOT NULL)"
    )
    # a unique key over NOT NULL columns is a row key
    maria.execute("ALTER TABLE notes ADD COLUMN note_id int unsigned NOT NULL")
    maria.execute("ALTER TABLE notes ADD UNIQUE KEY (note_id)")
    assert _check(maria, tmp_path, text) == []


def test_a_purge_needs_no_row_key_but_a_column_action_on_its_table_does(
    maria: Connection, tmp_path: Path
) -> None:
    maria.execute("ALTER TABLE sejour ENGINE=InnoDB")
    purge = _policy([SEJOUR, NOTES], PURGE)
    assert _check(maria, tmp_path, purge) == []
    text = _policy(
        [SEJOUR, NOTES],
        """\
  - name: notes
    due: derniere_sortie + 3 years
    action: erase
    columns: [nom, notes.texte]
""",
    )
    (error,) = _check(maria, tmp_path, text)
    assert error.location.line == _line(text, "columns: [nom, notes.texte]")
    assert error.message.startswith("erase: ") and "erase rewrites cannot be told apart" in (
        error.message
    )


@pytest.mark.mariadb_only("system-versioned tables")
def test_a_phase_changing_a_system_versioned_table_is_refused(
    maria: Connection, tmp_path: Path
) -> None:
    maria.execute("ALTER TABLE sejour ENGINE=InnoDB")
    catalog = read_catalog(maria)
    assert [t.name for t in catalog.tables.values() if t.system_versioned] == ["contacts"]
    text = _policy([SEJOUR, CONTACTS], PURGE)
    (error,) = _check(maria, tmp_path, text)
    assert error.location.line == _line(text, "action: purge")
    assert ".contacts is system-versioned: the phase deletes rows there" in error.message
    assert "FOR SYSTEM_TIME ALL" in error.message
    assert error.hint is not None
    assert "ALTER TABLE contacts DROP SYSTEM VERSIONING" in error.hint
    assert "DELETE HISTORY FROM contacts BEFORE SYSTEM_TIME" in error.hint
    erase = _policy(
        [SEJOUR, CONTACTS],
        """\
  - name: telephones
    due: derniere_sortie + 3 years
    action: erase
    columns: [contacts.tel]
""",
    )
    (error,) = _check(maria, tmp_path, erase)
    assert "the phase rewrites rows there" in error.message


@pytest.mark.mariadb_only("system-versioned tables")
def test_a_versioned_table_reached_by_a_cascade_is_refused_too(
    maria: Connection, tmp_path: Path
) -> None:
    """Not a link of the record: a foreign key ON DELETE CASCADE the purge's deletes set off."""
    maria.execute("ALTER TABLE sejour ENGINE=InnoDB")
    maria.execute(
        "ALTER TABLE contacts ADD CONSTRAINT contacts_patient FOREIGN KEY (patient_id) "
        "REFERENCES patients (patient_id) ON DELETE CASCADE"
    )
    problems = _check(maria, tmp_path, _policy([SEJOUR], PURGE))
    (error,) = [p for p in problems if p.severity == "error"]
    assert ".contacts is system-versioned: the phase deletes rows there" in error.message


@pytest.mark.mariadb_only("system-versioned tables")
def test_the_history_really_keeps_what_a_delete_removes(maria: Connection) -> None:
    """What the refusal is about, on this server."""
    maria.execute("INSERT INTO contacts VALUES (1, 1, '0611')")
    maria.execute("DELETE FROM contacts WHERE contact_id = 1")
    assert maria.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    kept = maria.execute("SELECT count(*) FROM contacts FOR SYSTEM_TIME ALL").fetchone()
    assert kept[0] == 1


MODIFIED = "  derniere_modif: {column: modifie}"
ON_MODIFIED = """\
  - name: destruction
    due: derniere_modif + 20 years
    action: purge
    accept_non_transactional: [sejour]
"""


@pytest.mark.mariadb_only("MariaDB writes ON UPDATE current_timestamp()")
def test_a_date_the_server_rewrites_is_refused_when_the_policy_updates_its_table(
    maria: Connection, tmp_path: Path
) -> None:
    text = _policy(
        [SEJOUR],
        ON_MODIFIED
        + """\
  - name: telephones
    due: derniere_modif + 3 years
    action: erase
    columns: [tel]
""",
        dates=MODIFIED,
    )
    (error,) = _check(maria, tmp_path, text)
    assert error.severity == "error"
    assert error.location.line == _line(text, "derniere_modif: {column")
    assert "reads patients.modifie, which the server sets to the time of every update" in (
        error.message
    )
    assert "ON UPDATE current_timestamp()" in error.message
    assert "phase 'telephones' updates patients" in error.message
    assert "postpones what is due after it" in error.message


def test_an_aggregate_over_a_column_the_server_rewrites_is_refused_too(
    maria: Connection, tmp_path: Path
) -> None:
    maria.execute(
        "ALTER TABLE sejour ADD COLUMN maj datetime NOT NULL DEFAULT current_timestamp() "
        "ON UPDATE current_timestamp()"
    )
    text = _policy(
        [SEJOUR],
        """\
  - name: libelles
    due: derniere_maj + 3 years
    action: erase
    columns: [sejour.libelle]
    accept_non_transactional: [sejour]
""",
        dates='  derniere_maj: {latest: "greatest(sortie, sejour.maj)", over: sejour}',
    )
    (error,) = _check(maria, tmp_path, text)
    assert error.location.line == _line(text, "derniere_maj: {latest")
    assert "reads sejour.maj" in error.message and "phase 'libelles' updates sejour" in (
        error.message
    )


def test_a_date_the_server_rewrites_is_a_warning_otherwise(
    maria: Connection, tmp_path: Path
) -> None:
    text = _policy([SEJOUR], ON_MODIFIED, dates=MODIFIED)
    (warning,) = _check(maria, tmp_path, text)
    assert warning.severity == "warning"
    assert "an update by the application or a maintenance script moves this date" in (
        warning.message
    )


def test_the_on_update_really_moves_with_an_update_of_another_column(maria: Connection) -> None:
    maria.execute("UPDATE patients SET modifie = '2001-01-01 00:00:00' WHERE patient_id = 1")
    maria.execute("UPDATE patients SET tel = NULL WHERE patient_id = 1")
    row = maria.execute("SELECT year(modifie) FROM patients").fetchone()
    assert row[0] > 2001


@pytest.mark.mariadb_only("MySQL's binary log is on by default: check prints its note")
def test_check_runs_on_a_mariadb_url_and_says_what_is_not_supported_yet(
    maria: Connection, mariadb_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        _policy([SEJOUR], PURGE + "    accept_non_transactional: [sejour]\n"), encoding="utf-8"
    )
    done = cli(mariadb_url, "check", policies=folder)
    assert done.returncode == 0, done.stderr
    assert "ok  p: subject " in done.stdout and "phases: destruction (purge)" in done.stdout
    assert "binary log" not in done.stdout  # log_bin is off on this server
    covered = cli(mariadb_url, "check", "--coverage", policies=folder)
    assert "not supported on mariadb" not in covered.stderr, covered.stderr
    assert "Traceback" not in covered.stderr
    explained = cli(mariadb_url, "check", "--explain", policies=folder)
    assert explained.returncode == 0, explained.stderr
    assert "row(s)" in explained.stdout and "Traceback" not in explained.stderr


def test_data_checks_read_the_values_on_mariadb_exactly(maria: Connection, tmp_path: Path) -> None:
    """A generalisation that cannot change its column is an error with its location; the
    classes of a polymorphic column are read exactly, whatever the column's collation (a
    case-insensitive one would make 'cpatient' pass for 'CPatient'): unmapped ones are an
    error for a purge, with their rows counted apart."""
    maria.execute(
        "CREATE TABLE user_log (user_log_id int unsigned NOT NULL PRIMARY KEY, "
        "object_class varchar(80) COLLATE utf8mb4_general_ci NOT NULL, "
        "object_id int unsigned NOT NULL, KEY object (object_class, object_id)) ENGINE=InnoDB"
    )
    maria.execute(
        "INSERT INTO user_log VALUES (1, 'CPatient', 1), (2, 'CPatient', 2), (3, 'cpatient', 1), "
        "(4, 'CSejour', 1), (5, 'CSejour', 2), (6, 'CSejour', 3)"
    )
    maria.execute("ALTER TABLE patients ADD COLUMN cp varchar(5)")
    maria.execute("UPDATE patients SET cp = 'ab'")
    log = """\
    - table: user_log
      polymorphic:
        class_column: object_class
        id_column: object_id
        classes: {CPatient: patients}"""
    text = _policy(
        [SEJOUR, log],
        PURGE
        + """\
    accept_non_transactional: [sejour]
  - name: codes
    due: derniere_sortie + 3 years
    action: generalize
    columns: [{column: cp, to: department}]
""",
    )
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    problems = check_policies(maria, folder, read_data=True).problems
    errors = [p for p in problems if p.severity == "error"]
    (codes,) = [p for p in errors if "patients.cp" in p.message]
    assert codes.location.line == _line(text, "columns: [{column: cp")
    assert "cannot change" in codes.message and "postal code" in codes.message
    assert [p.severity for p in problems] == ["error"]  # the policy is not bound further
    # without the generalisation, the classes are read
    (folder / "p.yaml").write_text(text.split("- name: codes")[0], encoding="utf-8")
    found = check_policies(maria, folder, read_data=True).problems
    (classes,) = [p for p in found if p.severity == "error"]  # it guards a purge
    assert classes.location.line == _line(text, "classes: {CPatient")
    assert "CSejour" in classes.message and "cpatient" in classes.message
    assert "3 row" in classes.message and "1 row" in classes.message
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    # with postal codes in the column, the generalisation is accepted
    maria.execute("UPDATE patients SET cp = '75011'")
    again = check_policies(maria, folder, read_data=True).problems
    assert not [p for p in again if "patients.cp" in p.message]


def test_a_class_mapped_in_two_spellings_is_one_link_on_mariadb(
    maria: Connection, tmp_path: Path
) -> None:
    """An outside review: 'CPatient' and 'cpatient' both mapped to patients, as the README
    says to, under a case-insensitive collation: check warned that a row of user_log 'can
    belong to two records' through the two spellings of the same link (the run acted on
    every subject: no row was shared). A row following both names the same patient."""
    maria.execute(
        "CREATE TABLE user_log (user_log_id int unsigned NOT NULL PRIMARY KEY, "
        "object_class varchar(80) COLLATE utf8mb4_general_ci NOT NULL, "
        "object_id int unsigned NOT NULL, KEY object (object_class, object_id)) ENGINE=InnoDB"
    )
    maria.execute("INSERT INTO user_log VALUES (1, 'CPatient', 1), (2, 'cpatient', 2)")
    log = """\
    - table: user_log
      polymorphic:
        class_column: object_class
        id_column: object_id
        classes: {CPatient: patients, cpatient: patients}"""
    folder = tmp_path / "policies"
    folder.mkdir()
    text = _policy([SEJOUR, log], PURGE + "    accept_non_transactional: [sejour]\n")
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    found = check_policies(maria, folder, read_data=True).problems
    assert [p for p in found if p.severity == "error"] == []
    assert not [p.message for p in found if "two records" in p.message]


@pytest.mark.mariadb_only("MySQL 8 writes integer types without display width")
def test_columns_that_look_like_links_are_measured_on_mariadb(
    maria: Connection, tmp_path: Path
) -> None:
    """A column named like a key of the record that the policy neither follows nor excludes:
    a warning with the share of its values that match a key, read on MariaDB too."""
    maria.execute("INSERT INTO consultation VALUES (1, 1, NULL), (2, 99, NULL)")
    folder = tmp_path / "policies"
    folder.mkdir()
    text = _policy([SEJOUR], PURGE + "    accept_non_transactional: [sejour]\n")
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    found = check_policies(maria, folder, read_data=True).problems
    unfollowed = {p.message.split(" (")[0].rsplit(".", 2)[-2]: p for p in found}
    assert set(unfollowed) == {"consultation", "contacts", "notes"}
    assert all(p.severity == "warning" for p in found)
    consultation = unfollowed["consultation"]
    assert consultation.location.line == _line(text, "- {table: sejour")  # the links
    assert (
        "consultation.patient_id (int(10) unsigned) looks like a reference to "
        "patients.patient_id (the key's name) without a foreign key, and this policy neither "
        "follows nor excludes it: 1 of 2 values read (50%) match a key of patients (every "
        "value, each looked up in the key's index)"
    ) in consultation.message
    assert "it holds no value yet" in unfollowed["notes"].message
