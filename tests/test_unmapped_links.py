"""Where the schema is silent, `check` and `run` fail closed: polymorphic classes the policy
does not map, columns that look like links without a foreign key, and a foreign key from a table
left out of the record, on a Mediboard-like schema (no foreign keys, object_class/object_id)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from retention.cli.run import render_report
from retention.daemon.metrics import Metrics
from retention.demo.schema import FOREIGN_KEYS
from retention.errors import PolicyError, Problem
from retention.policy.check import bound_policies, check_policies
from retention.policy.data_checks import unmapped_classes
from retention.policy.load import load_policies
from retention.report.history import read_history
from tests.clock_helpers import POLICIES, policy, statuses
from tests.engine_helpers import cli, run, settings, write_policy
from tests.fix_db import DEMO_TODAY

SCHEMA = """
CREATE TABLE patients (patient_id serial PRIMARY KEY, nom text, venue date NOT NULL);
CREATE TABLE sejour (sejour_id serial PRIMARY KEY, patient_id int NOT NULL, entree date);
CREATE INDEX ON sejour (patient_id);
CREATE TABLE medecins (medecin_id serial PRIMARY KEY, nom text);
CREATE TABLE user_log (
    user_log_id serial PRIMARY KEY, object_class varchar(40) NOT NULL, object_id int NOT NULL,
    fields text
);
CREATE INDEX ON user_log (object_class, object_id);
-- plain columns that look like links to patients, followed by no policy
CREATE TABLE transferts (transfert_id serial PRIMARY KEY, ancien_patient_id int);
CREATE TABLE stats (jour date, patient_id int);
"""

POLICY = """\
name: dossier
subject: {table: patients, key: patient_id}
related:
  links:
    - {table: sejour, column: patient_id}
    - table: user_log
      polymorphic:
        class_column: object_class
        id_column: object_id
        classes: {CPatient: patients, CSejour: sejour}
UNRELATED
dates:
  venue: {column: venue}
retain_until: venue + 1 year
phases:
  - name: destruction
    due: retain_until
    action: ACTION
"""


def _policy(unrelated: str = "", action: str = "purge") -> str:
    line = f"        unrelated_classes: {unrelated}" if unrelated else ""
    text = POLICY.replace("UNRELATED\n", f"{line}\n" if line else "")
    if action == "erase":
        return text.replace("action: ACTION", "action: erase\n    columns: [nom]")
    return text.replace("ACTION", action)


def _populate(conn: psycopg.Connection[Any]) -> None:
    """10 patients (the odd ones seen in 2001, due), a stay each, their change log, and log
    rows of two classes the policy does not map: doctors (3) and files (2)."""
    conn.execute(SCHEMA)
    conn.execute(
        "INSERT INTO patients (nom, venue) SELECT 'Dupont', CASE WHEN i % 2 = 1 "
        "THEN date '2001-01-01' ELSE current_date END FROM generate_series(1, 10) AS i"
    )
    conn.execute("INSERT INTO sejour (patient_id, entree) SELECT patient_id, venue FROM patients")
    conn.execute("INSERT INTO medecins (nom) VALUES ('a'), ('b'), ('c')")
    conn.execute(
        "INSERT INTO user_log (object_class, object_id, fields) "
        "SELECT 'CPatient', patient_id, 'nom=Dupont' FROM patients UNION ALL "
        "SELECT 'CSejour', sejour_id, 'entree' FROM sejour UNION ALL "
        "SELECT 'CMedecin', medecin_id, 'nom' FROM medecins UNION ALL "
        "SELECT 'CFile', i, 'file' FROM generate_series(1, 2) AS i"
    )
    conn.execute(  # 4 of 6 transfers name an existing patient
        "INSERT INTO transferts (ancien_patient_id) VALUES (1), (2), (3), (4), (900), (901)"
    )
    conn.execute("INSERT INTO stats SELECT current_date, patient_id FROM patients")


def _problems(
    conn: psycopg.Connection[Any], tmp_path: Path, text: str, severity: str
) -> list[Problem]:
    result = check_policies(conn, write_policy(tmp_path / "policies", text), read_data=True)
    return [p for p in result.problems if p.severity == severity]


def _classes(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if "object_class" in p.message]


def _unmapped(conn: psycopg.Connection[Any], tmp_path: Path, values: str) -> list[str]:
    """The unmapped classes check lists, once `values` are inserted in user_log."""
    conn.execute(f"INSERT INTO user_log (object_class, object_id) VALUES {values}")
    errors = _classes(_problems(conn, tmp_path, _policy(), "error"))
    return [p.message.split(": ", 1)[1].split(";")[0] for p in errors]


# -- polymorphic classes the policy does not map --------------------------------------------
def test_check_reports_each_unmapped_class_with_its_rows(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _populate(conn)
    errors = _classes(_problems(conn, tmp_path, _policy(), "error"))
    assert [p.message for p in errors] == [
        "public.user_log.object_class holds 2 class(es) that this policy neither maps nor "
        "declares unrelated: CFile (2 rows), CMedecin (3 rows); their rows belong to no "
        "record, so a purge or archive would leave the rows of purged subjects behind"
    ]
    assert errors[0].location.line == 10  # classes: {CPatient: ..., CSejour: ...}
    assert errors[0].hint is not None and "unrelated_classes" in errors[0].hint


def test_plan_says_a_run_would_refuse_the_purge_for_unmapped_classes(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """What will happen, before it happens: check refuses the policy and a run refuses its
    purge; the plan said nothing of it (a compliance officer's review)."""
    _populate(conn)
    folder = write_policy(tmp_path / "policies", _policy())
    said = (
        "a run would refuse its purge and archive phases: classes neither mapped nor declared "
        "unrelated: public.user_log.object_class CFile (2 rows), CMedecin (3 rows) (retention "
        "check says where)"
    )
    text = cli(db_url, "plan", policies=folder)
    assert text.returncode == 0, text.stderr
    assert f"  REFUSED: {said}\n" in text.stdout
    shown = json.loads(cli(db_url, "plan", "--format", "json", policies=folder).stdout)
    assert [p.get("refused") for p in shown["policies"]] == [said]
    both = _policy("{CMedecin: doctors directory, CFile: 'file metadata, kept by its own policy'}")
    folder = write_policy(tmp_path / "both", both)
    shown = json.loads(cli(db_url, "plan", "--format", "json", policies=folder).stdout)
    assert [p.get("refused") for p in shown["policies"]] == [None]


def test_a_class_declared_unrelated_with_a_reason_passes(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _populate(conn)
    one = _policy("{CMedecin: 'changes to the doctors directory: no patient data'}")
    errors = _classes(_problems(conn, tmp_path, one, "error"))
    assert [p.message.split(": ", 1)[1].split(";")[0] for p in errors] == ["CFile (2 rows)"]
    both = _policy("{CMedecin: doctors directory, CFile: 'file metadata, kept by its own policy'}")
    assert _classes(_problems(conn, tmp_path, both, "error")) == []


def test_unmapped_classes_only_warn_a_policy_that_removes_no_record(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _populate(conn)
    text = _policy(action="erase")
    assert _classes(_problems(conn, tmp_path, text, "error")) == []
    warnings = _classes(_problems(conn, tmp_path, text, "warning"))
    assert len(warnings) == 1 and "the phases do not reach them" in warnings[0].message


def test_a_padded_char_class_column_compares_as_the_links_do(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """char(12) pads 'CPatient' with spaces; the links compare it as text, without the padding,
    so it is mapped. A class written with a trailing space in a varchar column is another."""
    conn.execute(SCHEMA.replace("object_class varchar(40)", "object_class char(12)"))
    conn.execute("INSERT INTO patients (nom, venue) VALUES ('x', current_date)")
    listed = _unmapped(conn, tmp_path, "('CPatient', 1), ('CSejour ', 1), ('CFile', 1)")
    assert listed == ["CFile (1 rows)"]
    conn.execute("ALTER TABLE user_log ALTER object_class TYPE varchar(40)")
    conn.execute("DELETE FROM user_log WHERE object_class = 'CFile'")
    assert _unmapped(conn, tmp_path, "('CPatient ', 1)") == [
        "<a value not shaped like a class name, 9 characters> (1 rows)"
    ]


@pytest.mark.parametrize("index", [True, False], ids=["indexed", "not-indexed"])
def test_a_citext_class_column_lists_the_classes_the_links_tell_apart(
    conn: psycopg.Connection[Any], tmp_path: Path, index: bool
) -> None:
    """citext calls 'cpatient' equal to 'CPatient', but a link compares the class as text
    (object_class = 'CPatient'::text) and does not reach 'cpatient' rows: read as citext, the
    class passed for mapped and a purge would have left those rows behind."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
    conn.execute(SCHEMA.replace("object_class varchar(40)", "object_class citext"))
    if not index:
        conn.execute("DROP INDEX user_log_object_class_object_id_idx")
    listed = _unmapped(conn, tmp_path, "('CPatient', 1), ('cpatient', 2), ('cpatient', 3)")
    assert listed == ["cpatient (2 rows)"]


def test_a_class_column_of_free_text_names_none_of_its_values(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Over a thousand distinct values are no classes (a class_column naming a column of
    surnames, say): check and the audit entry of a refused run count them, naming none."""
    conn.execute(SCHEMA)
    conn.execute(
        "INSERT INTO user_log (object_class, object_id) "
        "SELECT 'Dupont' || i, i FROM generate_series(1, 1500) AS i"
    )
    (error,) = _classes(_problems(conn, tmp_path, _policy(), "error"))
    assert "object_class holds values that this policy neither maps" in error.message
    assert "over 1,000 distinct values, not shown (1,000 read, 1,000 rows)" in error.message
    assert "Dupont" not in error.message
    (found,) = unmapped_classes(
        conn, bound_policies(conn, write_policy(tmp_path / "p", _policy()))[0]
    )
    assert found.to_json()["classes"] == {} and "Dupont" not in json.dumps(found.to_json())


def test_values_not_shaped_like_classes_are_counted_together(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn.execute(SCHEMA)
    conn.execute(
        "INSERT INTO user_log (object_class, object_id) "
        "VALUES ('Jean Dupont', 1), ('Anne Martin', 2), ('Anne Martin', 3), ('CFile', 4)"
    )
    (found,) = unmapped_classes(
        conn, bound_policies(conn, write_policy(tmp_path / "p", _policy()))[0]
    )
    assert found.to_json()["classes"] == {
        "<a value not shaped like a class name, 11 characters>": 3,
        "CFile": 1,
    }


@pytest.mark.parametrize(
    ("unrelated", "message"),
    [
        ("{CPatient: patients again}", "both mapped in 'classes' and listed in"),
        ("{CFile: ''}", "needs the reason why the rows of class 'CFile'"),
    ],
)
def test_unrelated_classes_are_validated(tmp_path: Path, unrelated: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policies(write_policy(tmp_path / "policies", _policy(unrelated)))
    problem = caught.value.problems[0]
    assert message in problem.message and problem.location.line is not None


def test_a_run_refuses_a_purge_when_a_new_class_appeared(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Checked clean, then the application starts logging a new class: the purge is refused
    before its first batch (audited, counted, said), the column action of the run goes on."""
    _populate(conn)
    known = "{CMedecin: doctors directory, CFile: file metadata}"
    text = _policy(known).replace(
        "phases:\n",
        "phases:\n  - name: identite\n    due: retain_until\n    action: erase\n"
        "    columns: [nom]\n",
    )
    folder = write_policy(tmp_path / "policies", text)
    assert check_policies(conn, folder, read_data=True).errors == []
    conn.execute(
        "INSERT INTO user_log (object_class, object_id, fields) "
        "VALUES ('CConsultation', 1, 'nom=Dupont'), ('CConsultation', 2, 'nom=Dupont')"
    )
    before = conn.execute("SELECT count(*) FROM patients").fetchone()

    report = run(conn, settings(db_url, folder), only="dossier")

    purge = next(p for p in report.phases if p.phase == "destruction")
    erase = next(p for p in report.phases if p.phase == "identite")
    assert report.outcome == "failed"
    assert purge.acted == 0 and purge.batches == 0
    assert purge.refused is not None and "CConsultation (2 rows)" in purge.refused
    assert erase.acted == 5  # the column action of the same run is not refused
    assert conn.execute("SELECT count(*) FROM patients").fetchone() == before
    assert "not run, nothing changed: classes neither mapped" in render_report(report)
    rows = conn.execute("SELECT detail FROM retention.audit WHERE event = 'phase_refused'")
    ((detail,),) = rows.fetchall()
    assert detail["reason"] == "unmapped_classes" and detail["phase"] == "destruction"
    assert detail["columns"] == [
        {
            "table": "public.user_log",
            "column": "object_class",
            "classes": {"CConsultation": 2},
            "complete": True,
        }
    ]
    assert "Dupont" not in json.dumps(detail)
    history = read_history(conn, "retention", bound_policies(conn, folder))
    (incident,) = [i for i in history.incidents if i.event == "phase_refused"]
    assert (incident.policy, incident.phase, incident.message) == (
        "dossier",
        "destruction",
        "public.user_log.object_class: CConsultation",
    )
    metrics = Metrics()
    metrics.run_ended(report, metrics.run_started(), None)
    refused = metrics.registry.get_sample_value(
        "retention_phases_refused_total",
        {"policy": "dossier", "phase": "destruction", "reason": "unmapped_classes"},
    )
    assert refused == 1


# -- links without a foreign key ------------------------------------------------------------
def test_check_warns_about_columns_that_look_like_links(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _populate(conn)
    known = "{CMedecin: doctors directory, CFile: file metadata}"
    warnings = [
        p.message
        for p in _problems(conn, tmp_path, _policy(known), "warning")
        if "looks" in p.message
    ]
    assert warnings == [
        "public.stats.patient_id (integer) looks like a reference to patients.patient_id (the "
        "key's name) without a foreign key, and this policy neither follows nor excludes it: "
        "10 of 10 values read (100%) match a key of patients (every value, each looked up in "
        "the key's index)",
        "public.transferts.ancien_patient_id (integer) looks like a reference to "
        "patients.patient_id (a name ending with the key's) without a foreign key, and this "
        "policy neither follows nor excludes it: 4 of 6 values read (67%) match a key of "
        "patients (every value, each looked up in the key's index)",
    ]
    excluded = _policy(known).replace("related:\n", "related:\n  exclude: [stats, transferts]\n")
    assert not [p for p in _problems(conn, tmp_path, excluded, "warning") if "looks" in p.message]


def test_the_check_command_prints_classes_and_links(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    _populate(conn)
    done = cli(db_url, "check", policies=write_policy(tmp_path / "policies", _policy()))
    assert done.returncode == 2
    assert "error: public.user_log.object_class holds 2 class(es)" in done.stderr
    assert "warning: public.transferts.ancien_patient_id (integer) looks like" in done.stderr
    assert "Dupont" not in done.stderr + done.stdout


# -- a foreign key from a table left out of the record --------------------------------------
EXPORTS = "CREATE TABLE exports (id serial PRIMARY KEY, patient_id int REFERENCES patients{})"


@pytest.mark.parametrize(
    ("related", "fix"),
    [
        ("related:\n  exclude: [exports]\n", "remove it from related.exclude"),
        (
            "related:\n  follow_foreign_keys: false\n",
            "declare the link {table: exports, column: patient_id}",
        ),
    ],
    ids=["excluded", "not-followed"],
)
@pytest.mark.parametrize("action", ["purge", "archive"])
def test_a_key_from_a_table_left_out_fails_every_batch(
    conn: psycopg.Connection[Any], tmp_path: Path, related: str, fix: str, action: str
) -> None:
    conn.execute(SCHEMA + EXPORTS.format(""))
    text = _policy(action=action).replace("related:\n  links:\n", related + "  links:\n")
    errors = [
        p
        for p in check_policies(conn, write_policy(tmp_path / "policies", text)).errors
        if "exports_patient_id_fkey" in p.message
    ]
    assert [p.message for p in errors] == [
        f"{action}: public.exports references patients through the foreign key "
        f"exports_patient_id_fkey (ON DELETE NO ACTION), but "
        + (
            "exports is excluded from the record (related.exclude)"
            if "exclude" in related
            else "foreign keys are not followed (follow_foreign_keys: false) and no link "
            "brings exports into the record"
        )
        + ": every batch deleting a referenced row would fail (SQLSTATE 23503) and keep "
        "everything"
    ]
    assert errors[0].hint is not None and fix in errors[0].hint
    assert errors[0].location.line == 18  # the phase's action


def test_a_key_that_clears_itself_does_not_block_a_purge(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn.execute(SCHEMA + EXPORTS.format(" ON DELETE SET NULL"))
    text = _policy().replace("related:\n", "related:\n  exclude: [exports]\n")
    assert check_policies(conn, write_policy(tmp_path / "policies", text)).errors == []


ACTES = """
CREATE TABLE patients (patient_id serial PRIMARY KEY, venue date NOT NULL);
CREATE TABLE sejour (sejour_id serial PRIMARY KEY, patient_id int NOT NULL);
CREATE TABLE actes (acte_id serial PRIMARY KEY, patient_id int NOT NULL,
                    sejour_id int REFERENCES sejour);
"""
ACTES_POLICY = """\
name: dossier
subject: {table: patients, key: patient_id}
phases: [{name: destruction, due: retain_until, action: purge}]
retain_until: venue + 1 year
dates: {venue: {column: venue}}
related:
  follow_foreign_keys: false
  links: [{table: sejour, column: patient_id}, {table: actes, column: patient_id}LINK]
"""


def test_a_key_between_tables_of_the_record_deleted_out_of_order_fails_every_batch(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Foreign keys not followed, both tables linked to the patient: the stays are deleted
    before the acts that reference them (23503 at every batch). check says so; declaring
    the link puts the acts first, and the purge goes through."""
    conn.execute(ACTES)
    conn.execute("INSERT INTO patients (venue) VALUES ('2001-01-01')")
    conn.execute("INSERT INTO sejour (patient_id) VALUES (1)")
    conn.execute("INSERT INTO actes (patient_id, sejour_id) VALUES (1, 1)")
    folder = write_policy(tmp_path / "a", ACTES_POLICY.replace("LINK", ""))
    (error,) = check_policies(conn, folder).errors
    assert error.message == (
        "purge: public.actes references sejour through the foreign key actes_sejour_id_fkey "
        "(ON DELETE NO ACTION), but foreign keys are not followed (follow_foreign_keys: false) "
        "and no link says so, so sejour's rows are deleted before actes's: every batch deleting "
        "a referenced row would fail (SQLSTATE 23503) and keep everything"
    )
    link = "{table: actes, column: sejour_id, references: sejour}"
    assert error.hint is not None and f"declare the link {link}" in error.hint
    folder = write_policy(tmp_path / "b", ACTES_POLICY.replace("LINK", f", {link}"))
    assert check_policies(conn, folder).errors == []
    report = run(conn, settings(db_url, folder))
    assert report.outcome == "completed" and report.phases[0].acted == 1
    assert conn.execute("SELECT count(*) FROM actes").fetchone() == (0,)


# -- declared links serve the joins of dates -------------------------------------------------
JOINED = """
    - table: sejours
      column: patient_id
    - table: contacts_urgence
      column: patient_id
"""
SLOT = """    - table: consultations        # the consultation's date is in its planning slot
      column: plageconsult_id
      references: plagesconsult
"""


def test_a_date_joined_through_a_declared_link_without_foreign_keys(
    demo_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """contacts-patients reads the last consultation's date in plagesconsult, joined by the
    foreign key consultations.plageconsult_id. With every foreign key dropped (as in
    Mediboard), the declared links give the same clock, patient by patient."""
    with_keys = statuses(demo_conn, policy(demo_conn, "contacts-patients"), DEMO_TODAY)
    for table, column, _ in FOREIGN_KEYS:
        demo_conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(f"{table}_{column}_fkey")
            )
        )
    shipped = (POLICIES / "contacts-patients.yaml").read_text(encoding="utf-8")
    links = "      column: patient_id\n"
    assert shipped.count(links) == 1
    without_slot = write_policy(tmp_path / "a", shipped.replace(links, links + JOINED))
    with pytest.raises(PolicyError, match=r"unknown name 'plagesconsult\.date'"):
        policy(demo_conn, "contacts-patients", without_slot)

    folder = write_policy(tmp_path / "b", shipped.replace(links, links + JOINED + SLOT))
    bound = policy(demo_conn, "contacts-patients", folder)

    assert ("public", "plagesconsult") not in bound.graph.tables  # a join, not the record
    (join,) = bound.dates["derniere_consultation"].joins
    assert join.origin.startswith("declared link") and join.columns == ("plageconsult_id",)
    assert statuses(demo_conn, bound, DEMO_TODAY) == with_keys
    assert sum(s.is_due for s in with_keys.values()) > 0


SLOTS = """
CREATE TABLE patients (patient_id serial PRIMARY KEY, nom text);
CREATE TABLE plages (plage_id serial PRIMARY KEY, jour date NOT NULL);
CREATE TABLE consults (consult_id serial PRIMARY KEY, patient_id int NOT NULL, plage_id int);
"""
SLOTS_POLICY = """\
name: dossier
subject: {table: patients, key: patient_id}
dates:
  derniere: {latest: plages.jour, over: consults}
related:
  links: [{table: consults, column: patient_id},
          {table: consults, column: plage_id, references: plages}]
retain_until: derniere + 1 year
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


def test_a_declared_link_to_a_row_that_is_gone_makes_the_date_unknown(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Patient 1 came in 2001 and in 2025; the 2025 slot row is deleted (nothing enforces a
    declared link): that visit's date is unknown, not absent, so the patient is kept as
    undeterminable rather than judged on 2001. A consultation without a slot (NULL) has no
    date either: patient 2 is kept too, unless the date says `if_missing: "null"` (such rows
    left out), which never excuses a slot that is gone."""
    conn.execute(SLOTS)
    conn.execute("INSERT INTO patients (nom) VALUES ('a'), ('b')")
    conn.execute("INSERT INTO plages (jour) VALUES ('2001-01-01'), ('2025-01-01')")
    conn.execute(
        "INSERT INTO consults (patient_id, plage_id) VALUES (1, 1), (1, 2), (2, 1), (2, NULL)"
    )
    bound = policy(conn, "dossier", write_policy(tmp_path / "p", SLOTS_POLICY))
    assert not statuses(conn, bound, DEMO_TODAY)[1].is_due
    conn.execute("DELETE FROM plages WHERE plage_id = 2")
    after = statuses(conn, bound, DEMO_TODAY)
    assert after[1].undeterminable and not after[1].is_due
    assert after[2].undeterminable and not after[2].is_due
    text = SLOTS_POLICY.replace("over: consults}", 'over: consults, if_missing: "null"}')
    left_out = statuses(
        conn, policy(conn, "dossier", write_policy(tmp_path / "q", text)), DEMO_TODAY
    )
    assert left_out[1].undeterminable and not left_out[1].is_due
    assert left_out[2].is_due and not left_out[2].undeterminable
