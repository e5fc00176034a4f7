"""An action on a column it cannot change is refused by `check` (and by every command that binds
policies), with file, line and a hint, and never counts as covering that column."""

from __future__ import annotations

import shutil
from pathlib import Path

from retention.demo.schema import create_schema
from retention.engines import Connection
from retention.policy.check import check_policies
from tests.engine_helpers import ROOT
from tests.fix_engines import EngineDB
from tests.test_policy_check import VALID, _write

# the clock reads no column the phase generalises (tests/test_clock_inputs.py: that is an error)
GENERALIZE = VALID.replace(
    "retain_until: greatest(dernier_sejour + 20 years, naissance + 28 years)\n",
    "retain_until: dernier_sejour + 20 years\n",
).replace(
    "    action: purge\n",
    "    action: purge\n  - name: coarse\n    due: retain_until\n    action: generalize\n"
    "    columns:\n      - {column: naissance, to: year}\n      - {column: cp, to: department}\n",
)


def _with(column: str, to: str) -> str:
    width = ", width: 5" if to == "range" else ""
    return GENERALIZE + f"      - {{column: {column}, to: {to}{width}}}\n"


def _patient(conn: Connection, **values: str) -> None:
    conn.execute(
        "INSERT INTO patients (nom, prenom, naissance, cp) VALUES (%s, %s, %s, %s)",
        (values.get("nom", "Martin"), "Jeanne", values.get("naissance"), values.get("cp")),
    )


def test_generalizing_a_text_column_whose_values_it_cannot_change_is_refused(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    conn = engine_db.conn
    create_schema(conn)
    _patient(conn, naissance="1975-06-21", cp="75012")
    folder = _write(tmp_path, _with("nom", "year"))
    (problem,) = check_policies(conn, folder).errors
    assert str(problem.location) == f"{folder / 'p.yaml'}:22:9"
    assert problem.message == (
        "generalize to year cannot change patients.nom: none of its first 1 value(s) has the "
        "shape it changes (a date written YYYY-MM-DD)"
    )
    assert problem.hint == "act on another column, or use another action (erase, pseudonymize)"
    (postal,) = check_policies(conn, _write(tmp_path, _with("prenom", "department"))).errors
    assert "cannot change patients.prenom" in postal.message
    assert "(a postal code of 5 digits)" in postal.message
    # the text dates and postal codes it can change pass, as do partial dates already coarse
    _patient(conn, naissance="1980-00-00", cp="2A004")
    assert check_policies(conn, _write(tmp_path, GENERALIZE)).errors == []


def test_an_empty_text_column_is_accepted_until_it_holds_values(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """Nothing to change yet: accepted; the same policy is refused once names arrive."""
    conn = engine_db.conn
    create_schema(conn)
    folder = _write(tmp_path, _with("nom", "month"))
    assert check_policies(conn, folder).errors == []
    _patient(conn, naissance="1975-06-21")
    assert [p.message.split(":")[0] for p in check_policies(conn, folder).errors] == [
        "generalize to month cannot change patients.nom"
    ]


def test_an_action_on_a_type_it_cannot_change_is_refused(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    conn = engine_db.conn
    create_schema(conn)
    text = {"postgresql": "text", "mariadb": "varchar(255)"}[engine]  # the demo's column type
    refused = {
        ("deces", "department"): "'deces' (date) is not a postal code stored as text",
        ("patient_id", "range"): "'patient_id' is a key or a link of patients",
        ("prenom", "range"): f"'prenom' ({text}) is not a number; cannot generalize to a range",
    }
    for (column, to), message in refused.items():
        (problem,) = check_policies(conn, _write(tmp_path, _with(column, to))).errors
        assert problem.message.startswith(message), problem.message


def test_check_coverage_refuses_a_phase_that_cannot_change_its_column(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    """`generalize {column: nom, to: year}` does not make patients.nom covered: check refuses
    the policy (exit 2) instead of reporting the column as minimised."""
    policies = tmp_path / "policies"
    policies.mkdir()
    contacts = ROOT / "policies" / "contacts-patients.yaml"
    shutil.copy(contacts, policies)
    scanned = engine_demo.cli("scan", policies=policies)
    assert scanned.returncode == 0, scanned.stderr
    before = engine_demo.cli("check", "--coverage", policies=policies)
    assert before.returncode == 3
    assert f"{engine_demo.table('patients.nom')}: PERSON" in before.stdout
    text = contacts.read_text(encoding="utf-8") + (
        "  - name: noms\n    due: derniere_venue + 3 years\n    action: generalize\n"
        "    columns: [{column: nom, to: year}]\n"
    )
    (policies / "contacts-patients.yaml").write_text(text, encoding="utf-8")
    line = len(text.splitlines())  # the last one, at its first column item
    after = engine_demo.cli("check", "--coverage", policies=policies)
    assert after.returncode == 2
    refused = f"contacts-patients.yaml:{line}:15: error: generalize to year cannot change"
    assert f"{refused} patients.nom" in after.stderr
    assert "covered" not in after.stdout


def test_values_a_generalisation_leaves_as_they_are_are_counted_in_a_warning(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """An outside review: a third of the postcodes were British; generalising to the
    department left them whole, and nothing said so (the exposure counted none)."""
    conn = engine_db.conn
    create_schema(conn)
    for cp in ("75012", "SW1A", "69003"):  # cp is varchar(5)
        _patient(conn, naissance="1975-06-21", cp=cp)
    checked = check_policies(conn, _write(tmp_path, GENERALIZE))
    assert checked.errors == []
    assert (
        "generalize to department leaves 1 of the first 3 value(s) of patients.cp as they "
        "are: they are not a postal code of 5 digits"
    ) in [p.message for p in checked.warnings]
    assert [policy.name for policy in checked.bound] == ["p"]  # a warning unbinds nothing


def test_values_the_generalisation_already_wrote_are_done_not_left_as_they_are(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """An outside review: after the first run had generalised some postcodes, `check` counted
    the departments it wrote ('75', '974') as values it could not change, and the warning
    unbound the whole policy: every command then left it out, its erase phases included, and
    exited 0. A column generalised whole would even have been refused as unchangeable."""
    conn = engine_db.conn
    create_schema(conn)
    for cp in ("75", "974", "2A"):  # what the generalisation writes
        _patient(conn, naissance="1975-00-00", cp=cp)
    checked = check_policies(conn, _write(tmp_path, GENERALIZE))
    assert checked.errors == []
    assert [p.message for p in checked.problems if "patients.cp" in p.message] == []
    assert [policy.name for policy in checked.bound] == ["p"]
    for cp in ("69003", "SW1A"):
        _patient(conn, naissance="1975-06-21", cp=cp)
    checked = check_policies(conn, _write(tmp_path, GENERALIZE))
    assert checked.errors == []
    assert [p.message for p in checked.warnings if "patients.cp" in p.message] == [
        "generalize to department leaves 1 of the first 5 value(s) of patients.cp as they "
        "are: they are not a postal code of 5 digits"
    ]
    assert [policy.name for policy in checked.bound] == ["p"]


MINIMISE = """\
name: contacts
subject: {table: patients, key: patient_id}
dates:
  vu: {column: vu}
retain_until: vu + 3 years
phases:
  - name: coordonnees
    due: vu + 3 years
    action: erase
    columns: [tel]
  - name: localisation
    due: vu + 3 years
    action: generalize
    columns: [{column: cp, to: department}]
"""


def test_a_policy_stays_bound_after_its_generalisation_ran(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """Through the real CLI (the outside review's reproduction): the first run generalises
    the due postcodes; a patient due later still has its phone number erased by the next
    run, and `check` still lists the policy."""
    conn = engine_db.conn
    conn.execute(
        "CREATE TABLE patients (patient_id integer PRIMARY KEY, cp varchar(10), "
        "tel varchar(20), vu date)"
    )
    rows = [(1, "75012", "0102030405", "2010-01-01"), (2, "97411", "0102030406", "2010-01-01")]
    rows += [(3, "13001", "0102030407", "2025-01-01"), (4, "B-1000", "0102030408", "2025-01-01")]
    for row in rows:
        conn.execute("INSERT INTO patients VALUES (%s, %s, %s, %s)", row)
    policies = _write(tmp_path, MINIMISE, "contacts.yaml")
    first = engine_db.cli("run", "--yes", "--allow-large", "--reason", "test", policies=policies)
    assert first.returncode == 0, first.stderr
    assert engine_db.count("patients", "tel IS NULL") == 2
    assert engine_db.count("patients", "cp IN ('75', '974')") == 2
    checked = engine_db.cli("check", policies=policies)
    assert checked.returncode == 0, checked.stderr
    assert "1 policy file(s) valid" in checked.stdout + checked.stderr
    conn.execute("UPDATE patients SET vu = '2010-01-01' WHERE patient_id = 3")
    second = engine_db.cli("run", "--yes", "--allow-large", "--reason", "test", policies=policies)
    assert second.returncode == 0, second.stderr
    assert engine_db.count("patients", "tel IS NULL") == 3
    assert engine_db.count("patients", "cp = '13'") == 1
