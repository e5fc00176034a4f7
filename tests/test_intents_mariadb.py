"""The intent journal on MariaDB: a purge whose subject and parent tables are MyISAM (accepted by
the policy), cut short between its changes to them and its commit, is completed by the next run.

The schema is Mediboard's worst case: `patients` and `sejour` without transactions, `actes`
(below `sejour`) and `notes` (below `patients`) with. A purge deletes children first, so a
batch cut short after its `sejour` delete has lost those rows for good while the deletes of
their `actes` rolled back: without the intent's link values, nothing would reach those `actes`
again. Every test runs the real command line and compares with a run never interrupted: the
same rows left, no orphan, each purged subject audited once, `audit verify` passing.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retention.db import connect
from retention.engines import Connection, sql
from retention.engines.mariadb.session import database_url
from retention.settings import Settings
from tests import cli_zygote
from tests.engine_helpers import cli_env

ROOT = Path(__file__).resolve().parent.parent
RUN = ("run", "--yes", "--allow-large", "--reason", "intent test")
PATIENTS = 40
DUE = 30  # patients 1..30 last came in 1990: their 20 years are over
_names = itertools.count()

SCHEMA = (
    """CREATE TABLE patients (
        patient_id int unsigned NOT NULL PRIMARY KEY,
        nom varchar(80),
        derniere_venue date NOT NULL
    ) ENGINE=MyISAM""",
    """CREATE TABLE sejour (
        sejour_id int unsigned NOT NULL PRIMARY KEY,
        patient_id int unsigned NOT NULL,
        KEY patient_id (patient_id)
    ) ENGINE=MyISAM""",
    """CREATE TABLE actes (
        acte_id int unsigned NOT NULL PRIMARY KEY,
        sejour_id int unsigned NOT NULL,
        code varchar(10),
        KEY sejour_id (sejour_id)
    ) ENGINE=InnoDB""",
    """CREATE TABLE notes (
        note_id int unsigned NOT NULL PRIMARY KEY,
        patient_id int unsigned NOT NULL,
        texte varchar(80),
        KEY patient_id (patient_id)
    ) ENGINE=InnoDB""",
)

POLICY = """\
name: mediboard
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
    - {table: sejour, column: patient_id}
    - {table: actes, column: sejour_id, references: sejour}
    - {table: notes, column: patient_id}
dates:
  derniere: {column: derniere_venue}
retain_until: derniere + 20 years
phases:
  - name: purge
    due: retain_until
    action: purge
    accept_non_transactional: [patients, sejour]
"""


def _name(kind: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"rt_int{kind}{worker}_{os.getpid()}_{next(_names)}"


def _populate(conn: Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    for p in range(1, PATIENTS + 1):
        venue = "1990-03-01" if p <= DUE else "2024-03-01"
        conn.execute("INSERT INTO patients VALUES (%s, %s, %s)", (p, f"Patient {p}", venue))
        conn.execute("INSERT INTO notes VALUES (%s, %s, 'note')", (p, p))
        for s in (1, 2):
            sejour = p * 10 + s
            conn.execute("INSERT INTO sejour VALUES (%s, %s)", (sejour, p))
            for a in (1, 2):
                conn.execute("INSERT INTO actes VALUES (%s, %s, 'X')", (sejour * 10 + a, sejour))


@pytest.fixture
def hospitals(mariadb_admin_url: str) -> Iterator[Any]:
    """Hospitals built alike, each with a database of its own for the tool: `make(kind)`
    gives (url, tool database)."""
    made: list[str] = []

    def make(kind: str) -> tuple[str, str]:
        hospital, tool = _name(kind), _name(kind + "t")
        made.extend((hospital, tool))
        with connect(Settings(), url=mariadb_admin_url) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(hospital)))
        url = database_url(mariadb_admin_url, hospital)
        with connect(Settings(), url=url) as conn:
            _populate(conn)
        return url, tool

    try:
        yield make
    finally:
        with connect(Settings(), url=mariadb_admin_url) as admin:
            for name in made:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "mediboard.yaml").write_text(POLICY, encoding="utf-8")
    return folder


def _env(url: str, tool: str, policies: Path, **extra: str) -> dict[str, str]:
    return cli_env(
        url,
        policies,
        RETENTION_SCHEMA_NAME=tool,
        RETENTION_LOCK_WAIT_SECONDS="30",
        RETENTION_TIMEZONE="UTC",
        **extra,
    )


def _cli(
    url: str, tool: str, policies: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return cli_zygote.run(list(args), _env(url, tool, policies, **extra), cwd=ROOT)


def _start(url: str, tool: str, policies: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retention.cli.main", *RUN],
        env=_env(url, tool, policies, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with connect(Settings(), url=url) as conn:
        return {
            table: [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("patients", "sejour", "actes", "notes")
        }


def _orphans(url: str) -> int:
    with connect(Settings(), url=url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM actes a WHERE NOT EXISTS "
            "(SELECT 1 FROM sejour s WHERE s.sejour_id = a.sejour_id)) + "
            "(SELECT count(*) FROM notes n WHERE NOT EXISTS "
            "(SELECT 1 FROM patients p WHERE p.patient_id = n.patient_id)) + "
            "(SELECT count(*) FROM sejour s WHERE NOT EXISTS "
            "(SELECT 1 FROM patients p WHERE p.patient_id = s.patient_id))"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _purged(url: str, tool: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The digests of every purge batch entry, and their details."""
    with connect(Settings(), url=url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT subject_digests, detail FROM {} WHERE event = 'batch' ORDER BY seq"
            ).format(sql.Identifier(tool, "audit"))
        ).fetchall()
    digests: list[str] = []
    details = []
    for found, detail in rows:
        digests += json.loads(found) if isinstance(found, str) else found
        details.append(json.loads(detail) if isinstance(detail, str) else detail)
    return digests, details


def _count(conn: Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _intents(conn: Connection, tool: str) -> int:
    exists = _count(
        conn,
        "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"'{tool}' AND TABLE_NAME = 'intents'",
    )
    return _count(conn, f"SELECT count(*) FROM `{tool}`.intents") if exists else 0


def _reference(hospitals: Any, policies: Path) -> dict[str, list[tuple[Any, ...]]]:
    url, tool = hospitals("c")
    done = _cli(url, tool, policies, *RUN)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    state = _state(url)
    assert len(state["patients"]) == PATIENTS - DUE and _orphans(url) == 0
    return state


def _assert_completed(
    url: str, tool: str, policies: Path, reference: dict[str, list[tuple[Any, ...]]]
) -> list[dict[str, Any]]:
    assert _state(url) == reference
    assert _orphans(url) == 0
    digests, details = _purged(url, tool)
    assert len(digests) == len(set(digests)) == DUE  # every subject audited once
    verify = _cli(url, tool, policies, "audit", "verify")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    with connect(Settings(), url=url) as conn:
        assert _intents(conn, tool) == 0
    return details


def test_a_purge_cut_short_between_its_myisam_deletes_and_its_commit_is_completed(
    hospitals: Any, policies: Path
) -> None:
    """The test holds the audit trail's lock: the run's next batch blocks in its audit append,
    after every delete of its batch and before its commit, and is killed there (SIGKILL): its
    MyISAM deletes stay, its InnoDB deletes roll back, the intent is left. The next run
    completes it first."""
    reference = _reference(hospitals, policies)
    url, tool = hospitals("k")
    process = _start(url, tool, policies, RETENTION_BATCH_SIZE="1", RETENTION_WORKERS="1")
    with connect(Settings(), url=url) as watch:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:  # a first batch committed
            if _intents(watch, tool) or _batches(watch, tool):
                break
            time.sleep(0.005)
        with watch.transaction():
            watch.execute(
                sql.SQL("SELECT name FROM {} WHERE name = 'audit chain' FOR UPDATE").format(
                    sql.Identifier(tool, "locks")
                )
            ).fetchall()
            committed = _batches(watch, tool)
            # the next batch: its intent written, its MyISAM rows deleted, blocked on the lock
            while process.poll() is None and time.monotonic() < deadline:
                gone = PATIENTS - _count(watch, "SELECT count(*) FROM patients")
                if _intents(watch, tool) and gone > committed:
                    break
                time.sleep(0.005)
            assert process.poll() is None, "the run ended before it could be cut short"
            os.kill(process.pid, signal.SIGKILL)
            process.communicate(timeout=60)
        # the half-done batch, as the next run finds it
        assert _intents(watch, tool) == 1
        gone = PATIENTS - _count(watch, "SELECT count(*) FROM patients")
        assert gone == committed + 1
    assert _orphans(url) > 0, "the killed batch left no half-done record: the test proves nothing"
    again = _cli(url, tool, policies, *RUN, RETENTION_BATCH_SIZE="2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "completing intent" in again.stderr
    details = _assert_completed(url, tool, policies, reference)
    completing = [d for d in details if "completes" in d]
    assert len(completing) == 1 and completing[0]["no_longer_due"] == 0


def _batches(conn: Connection, tool: str) -> int:
    exists = _count(
        conn,
        "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"'{tool}' AND TABLE_NAME = 'audit'",
    )
    if not exists:
        return 0
    return _count(conn, f"SELECT count(*) FROM `{tool}`.audit WHERE event = 'batch'")


def test_kill_9_at_random_instants_then_rerun_ends_as_a_run_never_interrupted(
    hospitals: Any, policies: Path
) -> None:
    rng = random.Random(20261205)
    reference = _reference(hospitals, policies)
    url, tool = hospitals("r")
    kills = 0
    with connect(Settings(), url=url) as watch:
        for _ in range(5):
            size = str(rng.randint(1, 3))
            process = _start(url, tool, policies, RETENTION_BATCH_SIZE=size)
            target = _batches(watch, tool) + rng.randint(1, 6)
            while process.poll() is None and _batches(watch, tool) < target:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.communicate(timeout=60)
    assert kills >= 2, "the runs finished before they could be killed"
    final = _cli(url, tool, policies, *RUN, RETENTION_BATCH_SIZE="3")
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    _assert_completed(url, tool, policies, reference)


def _half_done(url: str, tool: str, policies: Path) -> None:
    """A trigger refuses the subject's delete, the last statement of the purge: the first batch
    (patients 1-3) rolls back after its `sejour` rows are gone; the run reports the failure and
    leaves the intent."""
    with connect(Settings(), url=url) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON patients FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'"
        )
    failed = _cli(url, tool, policies, *RUN, RETENTION_BATCH_SIZE="3", RETENTION_WORKERS="1")
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    with connect(Settings(), url=url) as conn:
        conn.execute("DROP TRIGGER refuse")
        assert _intents(conn, tool) == 1
        assert _count(conn, "SELECT count(*) FROM patients") == PATIENTS
        assert _count(conn, "SELECT count(*) FROM sejour WHERE patient_id <= 3") == 0
    assert _orphans(url) > 0


def test_a_batch_rolled_back_after_its_myisam_deletes_is_completed_by_the_next_run(
    hospitals: Any, policies: Path
) -> None:
    """No kill: the batch rolls back after its MyISAM deletes. A run with the policy changed
    since is refused, naming the intent; the run with the policy that decided the batch
    completes it."""
    reference = _reference(hospitals, policies)
    url, tool = hospitals("t")
    _half_done(url, tool, policies)
    original = (policies / "mediboard.yaml").read_text(encoding="utf-8")
    (policies / "mediboard.yaml").write_text(original + "# edited\n", encoding="utf-8")
    refused = _cli(url, tool, policies, *RUN)
    assert refused.returncode == 5, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "policy mediboard was changed since" in refused.stderr
    assert "intent 1 of run" in refused.stderr and "Traceback" not in refused.stderr
    assert "retention intents release --intent 1" in refused.stderr
    (policies / "mediboard.yaml").write_text(original, encoding="utf-8")
    done = _cli(url, tool, policies, *RUN, RETENTION_BATCH_SIZE="3")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    details = _assert_completed(url, tool, policies, reference)
    assert [d["completes"]["intent"] for d in details if "completes" in d] == [1]


def test_a_subject_held_since_stays_half_done_until_released_then_is_completed(
    hospitals: Any, policies: Path
) -> None:
    """A legal hold placed after the half-done purge preserves what is left of the record:
    the intent is completed for the other subjects and narrowed to the held one, which the
    run after the release completes."""
    reference = _reference(hospitals, policies)
    url, tool = hospitals("h")
    _half_done(url, tool, policies)
    hold = _cli(url, tool, policies, "hold", "add", "--subject", "2", "--reason", "claim 7")
    assert hold.returncode == 0, hold.stdout[-3000:] + hold.stderr[-3000:]
    held = _cli(url, tool, policies, *RUN)
    assert held.returncode == 0, held.stdout[-3000:] + held.stderr[-3000:]
    assert "1 kept under a legal hold" in held.stderr
    with connect(Settings(), url=url) as conn:
        assert _intents(conn, tool) == 1
        assert _count(conn, "SELECT count(*) FROM patients WHERE patient_id = 2") == 1
        assert _count(conn, "SELECT count(*) FROM notes WHERE patient_id = 2") == 1
        assert _count(conn, "SELECT count(*) FROM actes WHERE sejour_id IN (21, 22)") == 4
    released = _cli(url, tool, policies, "hold", "release", "--subject", "2")
    assert released.returncode == 0, released.stdout[-3000:] + released.stderr[-3000:]
    done = _cli(url, tool, policies, *RUN)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _assert_completed(url, tool, policies, reference)


def test_an_intent_released_by_the_operator_is_audited_and_no_longer_blocks_runs(
    hospitals: Any, policies: Path
) -> None:
    url, tool = hospitals("l")
    _half_done(url, tool, policies)
    # what a run would complete first is in the plan it shows, as in `plan` and `--dry-run`
    shown = "intent 1 of run"
    plan = _cli(url, tool, policies, "plan")
    assert plan.returncode == 0 and "Left by batches cut short" in plan.stdout, plan.stderr
    assert shown in plan.stdout and "policy mediboard, phase purge, 3 subject(s)" in plan.stdout
    as_json = _cli(url, tool, policies, "plan", "--format", "json")
    left = json.loads(as_json.stdout)["intents"]
    assert [(i["intent"], i["policy"], i["phases"], i["subjects"]) for i in left] == [
        (1, "mediboard", ["purge"], 3)
    ]
    dry = _cli(url, tool, policies, "run", "--dry-run")
    assert dry.returncode == 0 and shown in dry.stdout, dry.stderr
    (policies / "mediboard.yaml").write_text(POLICY + "# edited\n", encoding="utf-8")
    listed = _cli(url, tool, policies, "intents", "list")
    assert listed.returncode == 0 and "intent 1 of run" in listed.stdout, listed.stderr
    assert "policy mediboard, phase purge, 3 subject(s)" in listed.stdout
    released = _cli(
        url, tool, policies, "intents", "release", "--intent", "1", "--reason", "ticket 42"
    )
    assert released.returncode == 0, released.stdout[-3000:] + released.stderr[-3000:]
    again = _cli(url, tool, policies, "intents", "release", "--intent", "1", "--reason", "x")
    assert again.returncode == 2 and "no intent 1 is left" in again.stderr
    done = _cli(url, tool, policies, *RUN)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = _cli(url, tool, policies, "plan", "--format", "json")
    assert "intents" not in json.loads(after.stdout)
    with connect(Settings(), url=url) as conn:
        row = conn.execute(
            sql.SQL("SELECT subjects, detail FROM {} WHERE event = 'intent_released'").format(
                sql.Identifier(tool, "audit")
            )
        ).fetchone()
    assert row is not None and row[0] == 3
    assert json.loads(row[1])["reason"] == "ticket 42"
    # released, not completed: what the batch cut short had deleted stays lost, its children
    # orphaned (the reason to complete intents rather than release them)
    assert _orphans(url) > 0
    verify = _cli(url, tool, policies, "audit", "verify")
    assert verify.returncode == 0, verify.stdout[-3000:]


def test_an_archive_phase_cannot_accept_tables_without_transactions(
    hospitals: Any, policies: Path
) -> None:
    """An interrupted archive batch writes a file that no intent completes: `check` refuses
    the phase even with the tables accepted (the run's gate refuses it too)."""
    url, tool = hospitals("a")
    (policies / "mediboard.yaml").write_text(
        POLICY.replace("action: purge", "action: archive"), encoding="utf-8"
    )
    checked = _cli(url, tool, policies, "check")
    assert checked.returncode == 2, checked.stdout[-3000:] + checked.stderr[-3000:]
    said = checked.stdout + checked.stderr
    assert "an archive batch cut short there could not be completed" in said
    assert "ENGINE=InnoDB" in said


ERASE = POLICY.replace(
    """  - name: purge
    due: retain_until
    action: purge
    accept_non_transactional: [patients, sejour]
""",
    """  - name: effacement
    due: retain_until
    action: erase
    columns: [nom, notes.texte]
    accept_non_transactional: [patients]
""",
)


def test_a_column_phase_rolled_back_after_its_myisam_update_is_completed_and_audited_once(
    hospitals: Any, policies: Path
) -> None:
    """An erase of a MyISAM column and an InnoDB one: a trigger refuses the InnoDB update, so
    the batch rolls back with its MyISAM names erased and no audit entry. The next run
    completes its intent first (re-checked, as any column batch), audited: the same rows as a
    run never interrupted, every subject audited once."""
    (policies / "mediboard.yaml").write_text(ERASE, encoding="utf-8")
    reference = _reference_erase(hospitals, policies)
    url, tool = hospitals("e")
    with connect(Settings(), url=url) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON notes FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'"
        )
    failed = _cli(url, tool, policies, *RUN, RETENTION_BATCH_SIZE="3", RETENTION_WORKERS="1")
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    with connect(Settings(), url=url) as conn:
        conn.execute("DROP TRIGGER refuse")
        assert _intents(conn, tool) == 1
        assert _count(conn, "SELECT count(*) FROM patients WHERE nom IS NULL") == 3
        assert _count(conn, "SELECT count(*) FROM notes WHERE texte IS NULL") == 0
    done = _cli(url, tool, policies, *RUN, RETENTION_BATCH_SIZE="3")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _state(url) == reference
    digests, details = _purged(url, tool)
    assert len(digests) == len(set(digests)) == DUE
    assert [d["completes"]["intent"] for d in details if "completes" in d] == [1]
    with connect(Settings(), url=url) as conn:
        assert _intents(conn, tool) == 0
    verify = _cli(url, tool, policies, "audit", "verify")
    assert verify.returncode == 0, verify.stdout[-3000:]


def _reference_erase(hospitals: Any, policies: Path) -> dict[str, list[tuple[Any, ...]]]:
    url, tool = hospitals("ce")
    done = _cli(url, tool, policies, *RUN)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    state = _state(url)
    erased = [row for row in state["patients"] if row[1] is None]
    assert len(erased) == DUE
    return state


COLUMNS = """\
name: identite
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
    - {table: contacts, column: patient_id}
dates:
  derniere: {column: derniere_venue}
retain_until: derniere + 20 years
phases:
  - name: noms
    due: retain_until
    action: pseudonymize
    columns: [nom, contacts.nom_contact]
  - name: prenoms
    due: retain_until
    action: erase
    columns: [prenom]
  - name: telephones
    due: retain_until + 1 day
    action: erase
    columns: [contacts.telephone]
  - name: remarques
    due: retain_until
    action: scrub
    columns: [{column: rques, replace_with: pseudonym}]
"""

# the storage engines of (patients, contacts): both without transactions, the subject with
# and its child without (the child's rows reached through the locked subject's), both with
VARIANTS = {"mm": ("MyISAM", "MyISAM"), "im": ("InnoDB", "MyISAM"), "ii": ("InnoDB", "InnoDB")}


def _identities(url: str, engines: tuple[str, str]) -> None:
    with connect(Settings(), url=url) as conn:
        conn.execute(
            "CREATE TABLE patients (patient_id int unsigned NOT NULL PRIMARY KEY, "
            "nom varchar(80), prenom varchar(80), rques text, derniere_venue date NOT NULL) "
            f"ENGINE={engines[0]}"
        )
        conn.execute(
            "CREATE TABLE contacts (contact_id int unsigned NOT NULL PRIMARY KEY, "
            "patient_id int unsigned NOT NULL, nom_contact varchar(80), telephone varchar(20), "
            f"KEY (patient_id)) ENGINE={engines[1]}"
        )
        for p in range(1, PATIENTS + 1):
            conn.execute(
                "INSERT INTO patients VALUES (%s, %s, %s, %s, %s)",
                (
                    p,
                    f"Nom{p}",
                    f"Prenom{p}",
                    f"Rappeler Madame Martine Lefebvre au 06 12 34 56 {p:02d}.",
                    "1990-03-01" if p <= DUE else "2024-03-01",
                ),
            )
            conn.execute(
                "INSERT INTO contacts VALUES (%s, %s, %s, %s)",
                (p, p, f"Contact{p}", f"06000000{p:02d}"),
            )


def _policy(folder: Path, engines: tuple[str, str]) -> None:
    accepted = [t for t, e in zip(("patients", "contacts"), engines, strict=True) if e == "MyISAM"]
    text = COLUMNS
    if accepted:
        text = text.replace(
            "    columns: [",
            f"    accept_non_transactional: [{', '.join(accepted)}]\n    columns: [",
        )
    folder.mkdir()
    (folder / "identite.yaml").write_text(text, encoding="utf-8")


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with connect(Settings(), url=url) as conn:
        return {
            t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1")]
            for t in ("patients", "contacts")
        }


def test_column_phases_on_myisam_tables_end_as_on_innodb(
    mariadb_admin_url: str, tmp_path: Path
) -> None:
    """Pseudonymise, erase (the two in one rewrite of each row; then alone, in one UPDATE
    joined to the subjects) and scrub MyISAM tables, the subject's and a child's, their
    changes made aside in autocommit (a MySQL server enforcing GTID consistency accepts them),
    the child's also below an InnoDB subject that the batch holds locked meanwhile: the same
    rows as the same policy on InnoDB, every subject audited once per phase, no intent left."""
    names = {v: (_name("m" + v), _name("t" + v)) for v in VARIANTS}
    states = {}
    try:
        for variant, (hospital, tool) in names.items():
            with connect(Settings(), url=mariadb_admin_url) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(hospital)))
            url = database_url(mariadb_admin_url, hospital)
            _identities(url, VARIANTS[variant])
            _policy(tmp_path / variant, VARIANTS[variant])
            done = _cli(url, tool, tmp_path / variant, *RUN, RETENTION_BATCH_SIZE="7")
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            states[variant] = _rows(url)
            with connect(Settings(), url=url) as conn:
                assert _intents(conn, tool) == 0
            digests, _ = _purged(url, tool)
            assert len(digests) == 4 * DUE and len(set(digests)) == DUE  # once a phase
            verify = _cli(url, tool, tmp_path / variant, "audit", "verify")
            assert verify.returncode == 0, verify.stdout[-3000:]
    finally:
        with connect(Settings(), url=mariadb_admin_url) as admin:
            for name in (n for pair in names.values() for n in pair):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    assert states["mm"] == states["ii"] and states["im"] == states["ii"]
    patients, contacts = states["ii"]["patients"], states["ii"]["contacts"]
    assert all(
        r[1] != f"Nom{r[0]}" and r[2] is None and "Martine" not in r[3] for r in patients[:DUE]
    )
    assert all(r[1] == f"Nom{r[0]}" and "Martine" in r[3] for r in patients[DUE:])
    assert all(r[2] != f"Contact{r[0]}" and r[3] is None for r in contacts[:DUE])
    assert all(r[2] == f"Contact{r[0]}" and r[3] is not None for r in contacts[DUE:])
