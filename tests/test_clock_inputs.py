"""A phase that writes a column a legal clock reads is an error of `check`, whichever policy's
clock it is (retention/policy/checks/clock_inputs.py): generalising a birth date to its year
brings the 28th birthday of R1112-7 forward (destroyed early), erasing it keeps the record
forever. Both engines, through `check_policies` and the real CLI."""

from __future__ import annotations

from pathlib import Path

from retention.demo.schema import create_schema
from retention.policy.check import check_policies
from tests.fix_engines import EngineDB
from tests.test_policy_check import VALID, _write

# VALID's clock: greatest(dernier_sejour + 20 years, naissance + 28 years), dernier_sejour the
# latest sejours.sortie where annule = '0'
COARSE = """\
name: coarse
subject: {table: patients, key: patient_id}
dates:
  vu: {column: created_at}
retain_until: vu + 30 years
phases:
  - name: grossir
    due: vu + 1 year
    action: generalize
    columns: [{column: naissance, to: year}]
"""


def _messages(engine_db: EngineDB, folder: Path) -> list[str]:
    return [p.message for p in check_policies(engine_db.conn, folder).errors]


def test_a_phase_generalising_a_date_another_policy_clock_reads_is_refused(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """The outside review's case: the clock of `p` reads naissance; `coarse` generalises it.
    The error is `coarse`'s, at its phase; `p` alone stays bound."""
    create_schema(engine_db.conn)
    _write(tmp_path, VALID)
    folder = _write(tmp_path, COARSE, "coarse.yaml")
    checked = check_policies(engine_db.conn, folder)
    (problem,) = checked.errors
    assert str(problem.location) == f"{folder / 'coarse.yaml'}:7:5"
    assert problem.message == (
        "phase 'grossir' (generalize) writes patients.naissance, which a legal clock reads "
        "(date 'naissance' of policy 'p'): each row it changes moves that date, so a record "
        "would be destroyed before its legal end or kept past it"
    )
    assert problem.hint is not None and "another column" in problem.hint
    assert [policy.name for policy in checked.bound] == ["p"]


def test_a_phase_erasing_a_column_its_own_clock_reads_is_refused(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """Its own clock, and a column read only in an aggregate's filter (sejours.annule)."""
    create_schema(engine_db.conn)
    own = VALID + (
        "  - name: oubli\n    due: retain_until\n    action: erase\n"
        "    columns: [naissance, sejours.annule]\n"
    )
    messages = _messages(engine_db, _write(tmp_path, own))
    assert [m.split(":")[0] for m in messages] == [
        "phase 'oubli' (erase) writes patients.naissance, which a legal clock reads (date "
        "'naissance' of policy 'p')",
        "phase 'oubli' (erase) writes sejours.annule, which a legal clock reads (date "
        "'dernier_sejour' of policy 'p')",
    ]


def test_columns_no_clock_reads_and_dates_no_clock_uses_may_change(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """A declared date that neither retain_until nor a due date uses is no clock."""
    create_schema(engine_db.conn)
    unused = VALID.replace(
        "retain_until: greatest(dernier_sejour + 20 years, naissance + 28 years)\n",
        "retain_until: dernier_sejour + 20 years\n",
    ) + (
        "  - name: grossir\n    due: retain_until\n    action: generalize\n"
        "    columns: [{column: naissance, to: year}, {column: cp, to: department}]\n"
    )
    assert _messages(engine_db, _write(tmp_path, unused)) == []


def test_check_and_run_stop_on_a_phase_that_moves_a_clock(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """Through the CLI: check exits 2 naming the file and line, and run changes nothing."""
    create_schema(engine_db.conn)
    engine_db.conn.execute(
        "INSERT INTO patients (nom, prenom, naissance, created_at) "
        "VALUES ('Martin', 'Jeanne', '1975-06-21', '2001-01-01')"
    )
    _write(tmp_path, VALID)
    folder = _write(tmp_path, COARSE, "coarse.yaml")
    checked = engine_db.cli("check", policies=folder)
    assert checked.returncode == 2
    assert f"{folder / 'coarse.yaml'}:7:5: error: phase 'grossir' (generalize)" in checked.stderr
    run = engine_db.cli("run", "--yes", "--allow-large", "--reason", "test", policies=folder)
    assert run.returncode == 2, run.stdout + run.stderr
    assert engine_db.count("patients", "naissance = '1975-06-21'") == 1


VISITS = """\
name: dossier
subject: {table: people, key: person_id}
related:
  links:
    - {table: visits, column: person_id}
dates:
  derniere: {latest: day, over: visits}
retain_until: derniere + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""
UNLINK = """\
name: delier
subject: {table: visits, key: visit_id}
dates:
  cree: {column: created}
retain_until: cree + 50 years
phases:
  - name: delier
    due: cree + 5 years
    action: erase
    columns: [person_id]
"""


def test_a_phase_rewriting_the_link_an_aggregate_is_read_through_is_refused(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """A review: on a schema without foreign keys, another policy erasing the column the
    last visit is read through (the record's declared link) passed check; every person's
    last visit would have moved earlier (destroyed early), and those visits left the
    people's records."""
    engine_db.conn.execute("CREATE TABLE people (person_id integer PRIMARY KEY)")
    engine_db.conn.execute(
        "CREATE TABLE visits (visit_id integer PRIMARY KEY, person_id integer, day date, "
        "created date NOT NULL)"
    )
    engine_db.conn.execute("CREATE INDEX visits_person ON visits (person_id)")
    _write(tmp_path, VISITS, "dossier.yaml")
    folder = _write(tmp_path, UNLINK, "delier.yaml")
    checked = check_policies(engine_db.conn, folder)
    assert [p.message.split(":")[0] for p in checked.errors] == [
        "phase 'delier' (erase) writes visits.person_id, which a legal clock reads (date "
        "'derniere' of policy 'dossier')"
    ]
    assert [policy.name for policy in checked.bound] == ["dossier"]


GENERATED = {
    "postgresql": "CREATE TABLE people (person_id integer PRIMARY KEY, born_text varchar(10), "
    "born date GENERATED ALWAYS AS (make_date(substr(born_text, 1, 4)::int, "
    "substr(born_text, 6, 2)::int, substr(born_text, 9, 2)::int)) STORED, tel text)",
    "mariadb": "CREATE TABLE people (person_id integer PRIMARY KEY, born_text varchar(10), "
    "born date AS (str_to_date(born_text, '%Y-%m-%d')) VIRTUAL, tel text)",
}
BY_BIRTH = """\
name: naissance
subject: {table: people, key: person_id}
dates:
  born: {column: born}
retain_until: born + 28 years
phases:
  - name: destruction
    due: retain_until
    action: purge
  - name: PHASE
    due: born + 18 years
    action: erase
    columns: [COLUMN]
"""


def test_a_phase_writing_the_column_a_generated_date_is_computed_from_is_refused(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    """A review: the clock read a generated date computed from a text column; erasing the text
    column passed check (the catalogue knew the date was generated, not from what)."""
    engine_db.conn.execute(GENERATED[engine])
    text = BY_BIRTH.replace("PHASE", "oubli").replace("COLUMN", "born_text")
    messages = [
        p.message.split(":")[0]
        for p in check_policies(engine_db.conn, _write(tmp_path, text)).errors
    ]
    assert messages == [
        "phase 'oubli' (erase) writes people.born_text, which a legal clock reads (date "
        "'born' of policy 'naissance')"
    ]
    other = BY_BIRTH.replace("PHASE", "contact").replace("COLUMN", "tel")
    assert check_policies(engine_db.conn, _write(tmp_path, other)).errors == []
