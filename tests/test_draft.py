"""`retention draft`: a policy proposed from the live database. On the demo schema, with and
without its foreign keys, the drafted relation graph reaches every row that belongs to a
patient, with its owner, and nothing else; once the officer writes the dates, retain_until and
phases, the draft passes `check`; it holds no personal value."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.rows import TupleRow

from retention.catalog.introspect import read_catalog
from retention.discovery.inventory import save_scan
from retention.discovery.model import ColumnVerdict, ScanResult
from retention.draft.build import build_draft, subject_and_key
from retention.draft.render import render_draft
from retention.errors import PolicyError, Problem
from retention.plan.compute import compute_plan
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies, check_policies
from retention.policy.expr import Params
from retention.rows.subjects import path_sql
from retention.store.schema import migrate
from tests import cli_zygote
from tests.fix_db import DEMO_TODAY

ROOT = Path(__file__).resolve().parent.parent

# The officer's part, written by hand in real life: a clock that makes every patient due.
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

# Who owns each row of the demo, from what the generator means (retention/demo/generate.py),
# written independently of any policy: (table, its key, the owning patient's key).
_OBJECTS = """
(SELECT 'CPatient' AS c, patient_id AS id, patient_id AS owner FROM patients
 UNION ALL SELECT 'CSejour', sejour_id, patient_id FROM sejours
 UNION ALL SELECT 'CConsultation', consultation_id, patient_id FROM consultations)
"""
OWNERS: dict[str, str] = {
    "patients": "SELECT patient_id, patient_id FROM patients",
    **{
        table: f"SELECT t.{key}, t.patient_id FROM {table} t JOIN patients USING (patient_id)"
        for table, key in (
            ("sejours", "sejour_id"),
            ("consultations", "consultation_id"),
            ("allergies", "allergie_id"),
            ("contacts_urgence", "contact_id"),
            ("ins_patients", "ins_id"),
        )
    },
    **{
        table: f"SELECT t.{key}, o.owner FROM {table} t JOIN {_OBJECTS} o "
        "ON o.c = t.object_class AND o.id = t.object_id"
        for table, key in (
            ("dossiers_medicaux", "dossier_medical_id"),
            ("prescriptions", "prescription_id"),
            ("fichiers", "fichier_id"),
            ("user_log", "user_log_id"),
        )
    },
    "prescription_lignes": "SELECT l.prescription_ligne_id, o.owner FROM prescription_lignes l "
    f"JOIN prescriptions p USING (prescription_id) JOIN {_OBJECTS} o "
    "ON o.c = p.object_class AND o.id = p.object_id",
    "medecins": "SELECT medecin_id, NULL::int FROM medecins WHERE false",
    "plagesconsult": "SELECT plageconsult_id, NULL::int FROM plagesconsult WHERE false",
}


def _drop_foreign_keys(conn: psycopg.Connection[TupleRow]) -> None:
    rows = conn.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f'"
    ).fetchall()
    for table, name in rows:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    assert rows


def _draft(conn: psycopg.Connection[TupleRow], subject: str = "patients") -> str:
    catalog = read_catalog(conn)
    table, key = subject_and_key(catalog, subject, None)
    draft = build_draft(conn, catalog, table, key, schema="retention")
    return render_draft(draft, database="demo", today=DEMO_TODAY)


def _decided(text: str) -> str:
    """The officer's decision on the classes the data did not settle: each mapped to the
    table its name designates (its commented line uncommented)."""
    return re.sub(r"(?m)^( {10})# (\S+: \w+ +# not linked: )", r"\1\2", text)


def _filled(conn: psycopg.Connection[TupleRow], tmp_path: Path, end: str = FILLED) -> BoundPolicy:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "draft.yaml").write_text(_decided(_draft(conn)) + end, encoding="utf-8")
    result = check_policies(conn, folder, read_data=True)  # as `retention check` does
    assert result.errors == []
    (policy,) = result.bound
    return policy


def _owners_found(
    conn: psycopg.Connection[TupleRow], policy: BoundPolicy
) -> set[tuple[str, int, int]]:
    """(table, row key, owner) for every row the policy's graph reaches from a patient."""
    found: set[tuple[str, int, int]] = set()
    for qname in policy.graph.tables:
        key = policy.table(qname).primary_key[0]
        for path in policy.graph.paths_to_subject(qname):
            params = Params("o")
            walk = path_sql(policy, path, "t", params)
            condition = sql.SQL(" AND ").join(
                [
                    sql.SQL("{} IN (SELECT patient_id FROM patients)").format(walk.key),
                    *walk.conditions,
                ]
            )
            query = sql.SQL("SELECT t.{}, {} FROM {} AS t {} WHERE {}").format(
                sql.Identifier(key), walk.key, sql.Identifier(*qname), walk.joins, condition
            )
            found |= {(qname[1], r, o) for r, o in conn.execute(query, params.values)}
    return found


def _owners_known(conn: psycopg.Connection[TupleRow]) -> set[tuple[str, int, int]]:
    return {(t, r, o) for t, q in OWNERS.items() for r, o in conn.execute(q)}


@pytest.mark.parametrize("foreign_keys", [True, False], ids=["with-fks", "fks-dropped"])
def test_the_drafted_graph_reaches_every_row_of_a_patient_and_nothing_else(
    demo_conn: psycopg.Connection[TupleRow], tmp_path: Path, foreign_keys: bool
) -> None:
    if not foreign_keys:
        _drop_foreign_keys(demo_conn)
    policy = _filled(demo_conn, tmp_path)
    known = _owners_known(demo_conn)
    assert _owners_found(demo_conn, policy) == known
    # the plan of a purge due for everyone counts exactly the rows that have an owner
    (plan,) = compute_plan(demo_conn, [policy], DEMO_TODAY).policies
    (phase,) = plan.phases
    per_table: dict[str, int] = {}
    for table, _, _ in known:
        per_table[f"public.{table}"] = per_table.get(f"public.{table}", 0) + 1
    assert {t: n for t, n in phase.rows.items() if n} == per_table
    assert "public.medecins" not in phase.rows and "public.plagesconsult" not in phase.rows


def test_a_change_log_row_about_a_deleted_stay_is_left_to_a_human(
    demo_conn: psycopg.Connection[TupleRow], tmp_path: Path
) -> None:
    orphans = demo_conn.execute(
        "SELECT count(*) FROM user_log u WHERE object_class = 'CSejour' "
        "AND NOT EXISTS (SELECT FROM sejours s WHERE s.sejour_id = u.object_id)"
    ).fetchone()
    assert orphans is not None and orphans[0] > 0
    text = _draft(demo_conn)
    assert (
        f"          # CSejour: sejours            # not linked: {orphans[0]} rows; "
        f"0 of {orphans[0]} ids (0.0 %, every value) match sejours.sejour_id\n" in text
    )
    assert '        #   CSejour: "<why its rows are not part of the record>"' in text
    # undecided, the class makes check refuse a purge (decided, it passes: see above)
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "draft.yaml").write_text(text + FILLED, encoding="utf-8")
    errors = check_policies(demo_conn, folder, read_data=True).errors
    assert errors and all("CSejour" in e.message for e in errors)


def test_classes_that_name_no_table_of_the_record_are_listed_with_their_rows(
    demo_conn: psycopg.Connection[TupleRow],
) -> None:
    demo_conn.execute(
        "INSERT INTO user_log (object_class, object_id, date) "
        "SELECT 'CMedecin', medecin_id, now() FROM medecins UNION ALL "
        "SELECT 'CFactureExterne', g, now() FROM generate_series(1, 3) AS g"
    )
    medecins = demo_conn.execute("SELECT count(*) FROM medecins").fetchone()
    assert medecins is not None
    text = _draft(demo_conn)
    assert re.search(
        rf"\n {{10}}# CMedecin: <table> +# {medecins[0]} rows; names medecins, which is not "
        r"part of this record\n",
        text,
    )
    assert re.search(
        r"\n {10}# CFactureExterne: <table> +# 3 rows; no table is named like this class\n", text
    )
    assert '#   CMedecin: "<why its rows are not part of the record>"' in text
    assert "          CMedecin: medecins" not in text


def test_a_table_reached_only_by_a_nullable_foreign_key_is_excluded(
    demo_conn: psycopg.Connection[TupleRow], tmp_path: Path
) -> None:
    """A patient's family doctor, a stay's practitioner: the patient and the stay refer to a
    doctor without belonging to them; a doctor's planning slots (chir_id NOT NULL) do."""
    text = _draft(demo_conn, "medecins")
    assert "  exclude:" in text
    assert "    - patients " in text and "    - sejours " in text
    folder = tmp_path / "policies"
    folder.mkdir()
    end = (
        "retain_until: date '2000-01-01'\n"
        "phases: [{name: p, due: retain_until, action: erase, columns: [tel]}]\n"
    )
    (folder / "draft.yaml").write_text(text + end, encoding="utf-8")
    (policy,) = bound_policies(demo_conn, folder)
    tables = {t[1] for t in policy.graph.tables}
    assert "plagesconsult" in tables
    assert not tables & {"patients", "sejours", "allergies"}


def _scan(
    conn: psycopg.Connection[TupleRow], also: dict[tuple[str, str], str] | None = None
) -> None:
    """A stored scan, as `retention scan` leaves it (verdicts only), without running Presidio."""
    migrate(conn, "retention")
    personal = {
        **(also or {}),
        ("patients", "nom"): "PERSON",
        ("patients", "prenom"): "PERSON",
        ("patients", "naissance"): "DATE_OF_BIRTH",
        ("patients", "cp"): "FR_POSTAL_CODE",
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
    columns = (
        *(ColumnVerdict("public", t, c, e, 0.95, {"name": c}) for (t, c), e in personal.items()),
        ColumnVerdict("public", "sejours", "type", None, 0.0, {}),
    )
    save_scan(conn, ScanResult(datetime(2025, 5, 1, tzinfo=UTC), columns), schema="retention")


def _uncommented_phases(text: str) -> str:
    """The draft's commented `phases:` block, as the officer uncomments it."""
    lines = text.splitlines()
    start = lines.index("# phases:")
    block = []
    for line in lines[start:]:
        if not line.startswith("# ") or line.startswith("# ("):
            break
        block.append(line[2:])
    return "\n".join(block) + "\n"


def test_the_filled_draft_with_its_suggested_phases_passes_check(
    demo_conn: psycopg.Connection[TupleRow], tmp_path: Path
) -> None:
    _scan(demo_conn)
    text = _draft(demo_conn)
    phases = _uncommented_phases(text)
    assert "action: pseudonymize" in phases and "- nom " in phases
    assert "{column: naissance, to: year}" in phases
    assert "DATE_OF_BIRTH 0.95, e.g. " in text and "not if a clock reads it" in text
    assert "{column: cp, to: department}" in phases
    assert "- contacts_urgence.tel" in phases and "- user_log.extra" in phases
    assert "# keep:\n#   - {column: medecins.rpps" not in text  # outside the record
    assert "#   medecins.rpps: FR_RPPS 0.95" in text
    end = FILLED[: FILLED.index("phases:")] + phases
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "draft.yaml").write_text(_decided(text) + end, encoding="utf-8")
    result = check_policies(demo_conn, folder, read_data=True)
    assert result.errors == []
    (policy,) = result.bound
    assert {p.action for p in policy.phases} == {
        "purge",
        "pseudonymize",
        "erase",
        "generalize",
        "scrub",
    }


def test_the_draft_proposes_no_generalisation_that_the_values_refuse(
    demo_conn: psycopg.Connection[TupleRow],
) -> None:
    """A column of city names taken for postal codes (its type, text, fits a generalisation to
    the department) is erased instead: `check` refuses a generalisation none of whose values
    it can change."""
    _scan(demo_conn, {("patients", "ville"): "FR_POSTAL_CODE"})
    text = _draft(demo_conn)
    phases = _uncommented_phases(text)
    assert "{column: cp, to: department}" in phases
    assert "{column: ville, to: department}" not in phases
    assert re.search(r"(?m)^ +- ville +# FR_POSTAL_CODE", phases)  # erased


def test_the_draft_as_written_is_refused_until_the_officer_decides(
    demo_conn: psycopg.Connection[TupleRow], tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "draft.yaml").write_text(_draft(demo_conn), encoding="utf-8")
    messages = [p.message for p in check_policies_errors(demo_conn, folder)]
    assert any("retain_until" in m for m in messages)
    assert any("phases" in m for m in messages)


def check_policies_errors(conn: psycopg.Connection[TupleRow], folder: Path) -> list[Problem]:
    with pytest.raises(PolicyError) as refused:
        check_policies(conn, folder)
    return list(refused.value.problems)


def test_the_draft_holds_no_personal_value(demo_conn: psycopg.Connection[TupleRow]) -> None:
    """Names, phones, e-mails, NIRs, addresses, remarks, change-log values: none in the draft;
    and no day at all: the ranges of dates are shown as years (the first day of a column is one
    person's day, e.g. the oldest birth in a joined parent table)."""
    _scan(demo_conn)
    text = _draft(demo_conn)
    values = {
        str(v)
        for query in (
            "SELECT unnest(array[nom, prenom, tel, tel_portable, email, matricule, adresse, "
            "rques]) FROM patients",
            "SELECT unnest(array[nom, tel]) FROM contacts_urgence",
            "SELECT extra::text FROM user_log",
        )
        for (v,) in demo_conn.execute(query)
        if v is not None and len(str(v)) >= 5
    }
    assert len(values) > 1000
    assert [v for v in values if v in text] == []
    assert "e.g. " in text  # masked examples are there
    assert "naissance (character varying(10) read as YYYY-MM-DD): years " in text
    assert re.search(r"\): \d{4}-\d{2}-\d{2}", text) is None  # (the header's own date aside)


def test_a_value_on_several_lines_leaves_the_draft_readable(
    demo_conn: psycopg.Connection[TupleRow],
) -> None:
    """An outside review: an address written on two lines put its masked example's second
    line at column 0, inside the commented phases, and the draft no longer parsed."""
    demo_conn.execute("UPDATE patients SET adresse = concat(adresse, E'\\r\\n', cp)")
    _scan(demo_conn, {("patients", "adresse"): "ADDRESS"})
    text = _draft(demo_conn)
    assert "↵" in text
    stray = [line for line in text.splitlines() if line[:1] not in ("", "#", " ")]
    assert [line for line in stray if ":" not in line] == []
    yaml.safe_load(text)  # raises on the broken draft


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    environ["RETENTION_DATABASE_URL"] = url
    return cli_zygote.run(["draft", *args], environ, timeout=120)


def test_the_command_writes_a_new_file_and_never_overwrites(
    demo_conn: psycopg.Connection[TupleRow], demo_db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "patients.yaml"
    first = _cli(demo_db_url, "--subject", "patients", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "link(s) to declare" in first.stderr
    assert out.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=")
    again = _cli(demo_db_url, "--subject", "patients", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    wrong = _cli(demo_db_url, "--subject", "patient")
    assert wrong.returncode == 2 and "did you mean 'patients'?" in wrong.stderr
    assert "Traceback" not in wrong.stderr + again.stderr
