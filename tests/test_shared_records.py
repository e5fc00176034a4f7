"""A row that two records reach through two links is never acted on for one of them alone.

An outside review on an OpenMRS-like schema (staff are persons; `patient.creator` references
`users`, whose `person_id` references `person`): purging a staff member's record deleted the
patients that member had created, one of them under a legal hold; and an encounter of one
patient attached to another patient's visit (as patient merges leave them) was deleted with the
other's record. The batch now keeps every due subject whose record shares a row with a record
outside the batch's due subjects, and records how many in its audit entry.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from retention.engines import sql
from tests.engine_helpers import run, write_policy
from tests.fix_engines import EngineDB, run_script

TODAY = date(2026, 12, 6)

SCHEMA = """
CREATE TABLE person (person_id integer PRIMARY KEY);
CREATE TABLE users (user_id integer PRIMARY KEY, person_id integer NOT NULL,
    FOREIGN KEY (person_id) REFERENCES person (person_id));
CREATE TABLE patient (patient_id integer PRIMARY KEY, creator integer NULL, tel varchar(20),
    FOREIGN KEY (patient_id) REFERENCES person (person_id),
    FOREIGN KEY (creator) REFERENCES users (user_id));
CREATE TABLE visit (visit_id integer PRIMARY KEY, patient_id integer NOT NULL, jour date NOT NULL,
    FOREIGN KEY (patient_id) REFERENCES patient (patient_id));
CREATE TABLE encounter (encounter_id integer PRIMARY KEY, patient_id integer NOT NULL,
    visit_id integer NULL,
    FOREIGN KEY (patient_id) REFERENCES patient (patient_id),
    FOREIGN KEY (visit_id) REFERENCES visit (visit_id));
"""

# persons: 5 is a staff member (user 5) and a patient seen in 1990, who created patient 13 (no
# visit: undeterminable, kept); 6 seen in 1990, shares nothing; 7 and 8 seen in 1990, an
# encounter of 7 on a visit of 8 (both due: one batch, both go); 25 seen in 2020 (kept), an
# encounter of 25 on the 1990 visit of 500 (due, but its record reaches 25's encounter)
DATA = """
INSERT INTO person (person_id) VALUES (5), (6), (7), (8), (13), (25), (500);
INSERT INTO users (user_id, person_id) VALUES (5, 5);
INSERT INTO patient (patient_id, creator, tel) VALUES (5, NULL, 't5'), (6, NULL, 't6'),
    (7, NULL, 't7'), (8, NULL, 't8'), (13, 5, 't13'), (25, NULL, 't25'), (500, NULL, 't500');
INSERT INTO visit (visit_id, patient_id, jour) VALUES (1, 5, '1990-01-01'), (2, 6, '1990-01-01'),
    (3, 7, '1990-01-01'), (4, 8, '1990-01-01'), (5, 25, '2020-01-01'), (9000, 500, '1990-01-01');
INSERT INTO encounter (encounter_id, patient_id, visit_id) VALUES (7001, 7, 4), (9001, 25, 9000);
"""

POLICY = """
name: dossier
subject: {table: person, key: person_id}
dates:
  derniere_venue: {latest: jour, over: visit}
retain_until: derniere_venue + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


@pytest.fixture
def shared(engine_db: EngineDB, tmp_path: Path) -> Path:
    run_script(engine_db.conn, SCHEMA)
    run_script(engine_db.conn, DATA)
    folder = tmp_path / "policies"
    write_policy(folder, POLICY)
    return folder


def _left(db: EngineDB, table: str, key: str) -> list[int]:
    rows = db.conn.execute(
        sql.SQL("SELECT {} FROM {} ORDER BY 1").format(sql.Identifier(key), sql.Identifier(table))
    ).fetchall()
    return [int(r[0]) for r in rows]


def test_a_record_sharing_a_row_with_another_is_kept_and_counted(
    engine_db: EngineDB, shared: Path
) -> None:
    config = engine_db.settings(shared)
    report = run(engine_db.conn, config, at=TODAY)
    # 6, 7 and 8 went; 5 (whose record reached patient 13 through `creator`) and 500 (whose
    # visit holds 25's encounter) are kept, and so is everything of 13 and 25
    assert _left(engine_db, "person", "person_id") == [5, 13, 25, 500]
    assert _left(engine_db, "patient", "patient_id") == [5, 13, 25, 500]
    assert _left(engine_db, "encounter", "encounter_id") == [9001]
    assert _left(engine_db, "visit", "visit_id") == [1, 5, 9000]
    phase = report.phases[0]
    assert (phase.proposed, phase.acted) == (5, 3)
    details = engine_db.conn.execute(
        sql.SQL("SELECT detail FROM {} WHERE event = 'batch'").format(engine_db.tool("audit"))
    ).fetchall()
    kept = sum(int(str(_json(d[0]).get("shared_with_another_record", 0))) for d in details)
    assert kept == 2


def test_a_subject_left_out_makes_the_rows_it_shares_shared_in_turn(
    engine_db: EngineDB, shared: Path
) -> None:
    """500 is kept (its visit holds 25's encounter); 600, due, has an encounter on 500's visit:
    once 500 is left out of the batch, that encounter is another record's, so 600 is kept too."""
    run_script(
        engine_db.conn,
        "INSERT INTO person (person_id) VALUES (600);"
        "INSERT INTO patient (patient_id, creator) VALUES (600, NULL);"
        "INSERT INTO visit (visit_id, patient_id, jour) VALUES (6000, 600, '1990-01-01');"
        "INSERT INTO encounter (encounter_id, patient_id, visit_id) VALUES (6001, 600, 9000);",
    )
    run(engine_db.conn, engine_db.settings(shared), at=TODAY)
    assert _left(engine_db, "person", "person_id") == [5, 13, 25, 500, 600]
    assert _left(engine_db, "encounter", "encounter_id") == [6001, 9001]


def test_a_minimisation_never_changes_a_row_another_record_holds(
    engine_db: EngineDB, shared: Path
) -> None:
    """The same guard for column actions: erasing the phones of the records due would have
    erased the phone of patient 13 (not due) through staff member 5's `creator` link."""
    write_policy(
        shared,
        POLICY.replace("action: purge", "action: erase\n    columns: [patient.tel]"),
    )
    run(engine_db.conn, engine_db.settings(shared), at=TODAY)
    rows = engine_db.conn.execute(
        sql.SQL("SELECT patient_id, tel FROM {} ORDER BY 1").format(sql.Identifier("patient"))
    ).fetchall()
    phones = {int(k): v for k, v in rows}
    assert phones == {5: "t5", 6: None, 7: None, 8: None, 13: "t13", 25: "t25", 500: "t500"}


def _json(value: object) -> dict[str, object]:
    if isinstance(value, dict):
        return value
    return dict(json.loads(str(value)))


def test_check_names_the_tables_whose_rows_can_belong_to_two_records(
    engine_db: EngineDB, shared: Path
) -> None:
    done = engine_db.cli("check", policies=shared)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "patient can belong to two records, through patient_id -> person" in out
    assert "creator -> users" in out
    assert "encounter can belong to two records, through patient_id -> patient" in out
    assert "visit_id -> visit" in out
    assert "visit can belong" not in out  # one link only


def test_the_plan_counts_the_due_subjects_a_run_keeps_for_sharing(
    engine_db: EngineDB, shared: Path
) -> None:
    """5 and 500 are due but share a row with a record that is not (13's, 25's): the plan
    says so before the run keeps them."""
    done = engine_db.cli("plan", "--at", TODAY.isoformat(), "--format", "json", policies=shared)
    assert done.returncode == 0, done.stderr
    (phase,) = json.loads(done.stdout)["policies"][0]["phases"]
    assert (phase["due_subjects"], phase["shared_subjects"]) == (5, 2)
    text = engine_db.cli("plan", "--at", TODAY.isoformat(), policies=shared).stdout
    assert "of which kept: 2, whose record shares a row with a record that is not due" in text
    report = run(engine_db.conn, engine_db.settings(shared), at=TODAY)
    assert report.phases[0].acted == 5 - 2


def test_two_due_records_sharing_a_row_go_together_whatever_the_batches(
    engine_db: EngineDB, shared: Path
) -> None:
    """7 and 8 (both due) share an encounter; with one subject per batch, 8 is locked,
    re-checked and acted on in 7's batch; the batch the plan gave it then skips it (counted
    once, in the trail too)."""
    config = engine_db.settings(shared, batch_size=1, batch_seconds=0, workers=1)
    report = run(engine_db.conn, config, at=TODAY)
    assert _left(engine_db, "person", "person_id") == [5, 13, 25, 500]
    assert _left(engine_db, "encounter", "encounter_id") == [9001]
    phase = report.phases[0]
    assert (phase.acted, phase.shared, phase.gone) == (3, 2, 0)
    subjects = engine_db.conn.execute(
        sql.SQL("SELECT sum(subjects) FROM {} WHERE event = 'batch'").format(
            engine_db.tool("audit")
        )
    ).fetchone()
    assert subjects is not None and int(subjects[0]) == 3


TEXT_KEYS = {
    # a char(5) key comes back padded ('A    '), its varchar link not ('A')
    "postgresql": ("char(5)", "varchar(5)", "A"),
    # a case-insensitive collation matches the link 'a' with the key 'A'
    "mariadb": ("varchar(5)", "varchar(5)", "a"),
}


def test_a_link_value_written_otherwise_than_the_key_still_ends_the_search(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    """A review of the guard: the other record's key came back in the link's form, matched no
    subject of the batch, and the search looped for ever holding its locks. The keys are now
    read from the subject table, and a pass that changes nothing ends the search."""
    key, link, written = TEXT_KEYS[engine]
    run_script(
        engine_db.conn,
        f"CREATE TABLE person (pid {key} PRIMARY KEY);"
        f"CREATE TABLE visit (visit_id integer PRIMARY KEY, pid {link} NOT NULL, "
        "jour date NOT NULL, FOREIGN KEY (pid) REFERENCES person (pid));"
        f"CREATE TABLE encounter (encounter_id integer PRIMARY KEY, pid {link} NOT NULL, "
        "visit_id integer NULL, FOREIGN KEY (pid) REFERENCES person (pid), "
        "FOREIGN KEY (visit_id) REFERENCES visit (visit_id));"
        "INSERT INTO person (pid) VALUES ('A'), ('B');"
        "INSERT INTO visit (visit_id, pid, jour) VALUES (1, 'A', '1990-01-01'), "
        "(2, 'B', '2020-01-01');"
        f"INSERT INTO encounter (encounter_id, pid, visit_id) VALUES (10, '{written}', 2)",
    )
    folder = tmp_path / "policies"
    write_policy(folder, POLICY.replace("person_id", "pid"))
    report = run(engine_db.conn, engine_db.settings(folder), at=TODAY)
    # A is due, but its encounter is on B's visit (B seen in 2020): A is kept
    assert (report.phases[0].acted, report.phases[0].shared) == (0, 1)
    assert _left(engine_db, "encounter", "encounter_id") == [10]


@pytest.mark.parametrize("engine", ["mariadb"], indirect=True)  # PostgreSQL: unique keys only
@pytest.mark.mariadb_only(
    "MySQL 8.4+ refuses a foreign key to columns that are no key", params=["mariadb"]
)
def test_a_foreign_key_to_columns_that_are_no_key_can_name_two_records(
    engine_db: EngineDB, shared: Path
) -> None:
    """A review of the guard: MariaDB accepts a foreign key to any indexed column; one note on
    the code of the visits of 6 (due) and 25 (not due) belongs to both records."""
    run_script(
        engine_db.conn,
        "ALTER TABLE visit ADD COLUMN code varchar(10) NULL;"
        "UPDATE visit SET code = 'X' WHERE visit_id IN (2, 5);"
        "CREATE INDEX visit_code ON visit (code);"
        "CREATE TABLE notes (note_id integer PRIMARY KEY, code varchar(10) NOT NULL, "
        "FOREIGN KEY (code) REFERENCES visit (code));"
        "INSERT INTO notes (note_id, code) VALUES (1, 'X')",
    )
    run(engine_db.conn, engine_db.settings(shared), at=TODAY)
    assert 6 in _left(engine_db, "person", "person_id")  # kept: its note is 25's too
    assert _left(engine_db, "notes", "note_id") == [1]


def test_a_row_attached_to_the_batchs_records_meanwhile_waits_for_the_batch(
    engine_db: EngineDB, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A review of the guard: the application attached, between the search and the deletes, a
    new encounter of 25 (not due) to a visit of 6 (due), and the purge deleted it. The visits
    of the batch's records are now locked before the search: the application's foreign key
    check waits for the batch (here it gives up after its lock timeout)."""
    import retention.engine.batch as batch
    from retention.db import connect
    from retention.engines import errors

    timeout = {
        "postgresql": "SET lock_timeout = '300ms'",
        "mariadb": "SET SESSION innodb_lock_wait_timeout = 1",
    }[engine_db.engine]
    from retention.rows.shared import outside_owners as search

    refused: list[BaseException] = []

    def attach_meanwhile(conn: object, policy: object, keys: list[object]) -> object:
        if 6 in keys and not refused:
            with connect(engine_db.settings(shared)) as app:
                app.execute(timeout)
                try:
                    app.execute(
                        "INSERT INTO encounter (encounter_id, patient_id, visit_id) "
                        "VALUES (6002, 25, 2)"
                    )
                except errors.Error as exc:  # the visit is locked by the batch
                    refused.append(exc)
        return search(conn, policy, keys)  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "outside_owners", attach_meanwhile)
    run(engine_db.conn, engine_db.settings(shared), at=TODAY)
    assert refused, "the application's row was written while the batch held the visit"
    assert 6 not in _left(engine_db, "person", "person_id")
    assert 6002 not in _left(engine_db, "encounter", "encounter_id")


def test_a_pass_of_several_phases_takes_in_the_records_it_shares_with_too(
    engine_db: EngineDB, shared: Path
) -> None:
    """A review of the guard: the batches of a pass of several phases kept their subjects on
    every run whenever a record they share a row with fell in another batch."""
    run_script(
        engine_db.conn,
        "ALTER TABLE patient ADD COLUMN email varchar(40) NULL; UPDATE patient SET email = 'e'",
    )
    two = POLICY.replace(
        "  - name: destruction\n    due: retain_until\n    action: purge\n",
        "  - name: telephone\n    due: retain_until\n    action: erase\n"
        "    columns: [patient.tel]\n"
        "  - name: courriel\n    due: retain_until\n    action: erase\n"
        "    columns: [patient.email]\n",
    )
    write_policy(shared, two)
    config = engine_db.settings(shared, batch_size=1, batch_seconds=0, workers=1)
    report = run(engine_db.conn, config, at=TODAY)
    acted = {p.phase: (p.acted, p.shared) for p in report.phases}
    assert acted == {"telephone": (3, 2), "courriel": (3, 2)}  # 6, 7 and 8; 5 and 500 kept
    rows = engine_db.conn.execute(
        sql.SQL("SELECT patient_id FROM {} WHERE tel IS NULL ORDER BY 1").format(
            sql.Identifier("patient")
        )
    ).fetchall()
    assert [int(r[0]) for r in rows] == [6, 7, 8]
