"""`retention run` on MariaDB: the same end state as on PostgreSQL, crash-safe, key kept here.

The demo hospital is built on both real servers from one seed (tests/test_demo_mariadb.py shows
their rows are equal). The shipped policies, and one that pseudonymises, generalises and
scrubs, are then run on both through the real command line: every table must end with the same
rows on both engines, the run's summary must say the same, the audit trail must verify, and a
second run must find nothing left to do. A run killed (SIGKILL) at random instants on MariaDB
and run again ends in the state of a run never interrupted, nothing done twice. The general
query log shows what reaches the server: never the pseudonymisation key.
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest

from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.demo.tables import TABLES
from retention.engines import Connection, sql
from retention.engines.mariadb.session import database_url
from retention.settings import Settings
from tests import cli_zygote
from tests.engine_helpers import PSEUDONYM_KEY, cli_env
from tests.fix_db import temporary_database
from tests.test_demo_mariadb import first_difference, rows_as_text

TODAY = date(2025, 6, 1)
PATIENTS = 150
SEED = 7
ROOT = Path(__file__).resolve().parent.parent
RUN = ("run", "--yes", "--allow-large", "--reason", "engine test")
_names = itertools.count()
T = TypeVar("T")

# a policy on the patients' identity, beside the shipped ones: every column action (not on
# naissance: dossier-medical's clock reads it, and check refuses that, policy/checks/clock_inputs)
IDENTITY = """
phases:
  - name: identite
    due: derniere_venue + 2 years
    action: pseudonymize
    columns: [nom, prenom]
  - name: localisation
    due: derniere_venue + 2 years
    action: generalize
    columns: [{column: cp, to: department}]
  - name: remarques
    due: derniere_venue + 2 years
    action: scrub
    columns: [{column: rques, replace_with: pseudonym}]
"""


def _name(kind: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"rt_run{kind}{worker}_{os.getpid()}_{next(_names)}"


def _drop(admin_url: str, *names: str) -> None:
    with connect(Settings(), url=admin_url) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _policies(folder: Path) -> Path:
    """The shipped policies, and `identite-patients` (contacts-patients' clock)."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in (ROOT / "policies").glob("*.yaml"):
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    text = (ROOT / "policies" / "contacts-patients.yaml").read_text(encoding="utf-8")
    text = text.replace("name: contacts-patients", "name: identite-patients")
    text = text[: text.index("phases:")] + IDENTITY.lstrip("\n")
    (folder / "identite-patients.yaml").write_text(text, encoding="utf-8")
    return folder


def _hospital(conn: Connection) -> None:
    create_schema(conn)
    generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)


@pytest.fixture
def maria(mariadb_admin_url: str) -> Iterator[tuple[str, str]]:
    """The demo hospital on MariaDB, with a database of its own for the tool's tables: the
    hospital's URL and the tool's database name."""
    hospital, tool = _name("h"), _name("t")
    _drop(mariadb_admin_url, hospital, tool)
    with connect(Settings(), url=mariadb_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(hospital)))
    url = database_url(mariadb_admin_url, hospital)
    try:
        with connect(Settings(), url=url) as conn:
            _hospital(conn)
        yield url, tool
    finally:
        _drop(mariadb_admin_url, hospital, tool)


def _cli(
    url: str, tool: str, policies: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = cli_env(url, policies, RETENTION_SCHEMA_NAME=tool, **extra)
    return cli_zygote.run(list(args), env, cwd=ROOT)


def _tables(url: str) -> dict[str, list[tuple[str, ...]]]:
    with connect(Settings(), url=url) as conn:
        return {table: rows_as_text(conn, table) for table in TABLES}


def _summary(stdout: str, schema: str) -> list[str]:
    """The run's summary lines, without its id and its tables' schema."""
    start = stdout.index("\nrun ")
    lines = stdout[start:].replace(f"{schema}.", "").splitlines()
    return [re.sub(r"run [0-9a-f-]{36}", "run <id>", line) for line in lines if line.strip()]


def test_a_run_on_mariadb_ends_as_on_postgresql(
    maria: tuple[str, str], pg_admin_url: str, tmp_path: Path
) -> None:
    policies = _policies(tmp_path / "policies")
    maria_url, tool = maria
    with (
        temporary_database(pg_admin_url) as pg_url,
        connect(Settings(), url=pg_url) as pg_conn,
    ):
        _hospital(pg_conn)
        before = _tables(pg_url)
        engines = {
            "mariadb": (maria_url, tool, maria_url.rsplit("/", 1)[1]),
            "postgresql": (pg_url, "retention", "public"),
        }
        first, second, verified = {}, {}, {}
        for name, (url, schema_name, schema) in engines.items():
            run = _cli(url, schema_name, policies, *RUN)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            assert "Traceback" not in run.stderr
            first[name] = _summary(run.stdout, schema)
            again = _cli(url, schema_name, policies, *RUN)
            assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
            second[name] = _summary(again.stdout, schema)
            verified[name] = _cli(url, schema_name, policies, "audit", "verify")
        after_pg, after_maria = _tables(pg_url), _tables(maria_url)
    assert first["mariadb"] == first["postgresql"]
    assert second["mariadb"] == second["postgresql"]
    for done in verified.values():
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    differences = [
        first_difference(table, after_pg[table], after_maria[table])
        for table in TABLES
        if after_pg[table] != after_maria[table]
    ]
    assert not differences
    # the comparison means something: every action acted, rows were removed, values changed
    acted = [line for line in first["mariadb"] if line.startswith("  ") and "[" in line]
    assert len(acted) == 6 and not [line for line in acted if ": 0 of " in line], acted
    assert len(after_pg["patients"]) < len(before["patients"])
    kept = {row[0]: row for row in after_pg["patients"]}
    assert [row for row in before["patients"] if row[0] in kept and kept[row[0]] != row]


# tables of the demo hospital that no foreign key involves, made MyISAM below: the purges of
# dossier-medical and journal-modifications delete their rows
MYISAM = ("dossiers_medicaux", "fichiers", "user_log")


def _accepting(folder: Path) -> None:
    """The purges that reach `MYISAM` accept them (`accept_non_transactional`)."""
    for name, tables in (
        ("dossier-medical", list(MYISAM)),
        ("journal-modifications", ["user_log"]),
    ):
        path = folder / f"{name}.yaml"
        text = path.read_text(encoding="utf-8")
        assert text.count("    action: purge\n") == 1
        text = text.replace(
            "    action: purge\n",
            f"    action: purge\n    accept_non_transactional: [{', '.join(tables)}]\n",
        )
        path.write_text(text, encoding="utf-8")


def test_purges_reaching_myisam_tables_end_as_on_postgresql(
    maria: tuple[str, str], pg_admin_url: str, tmp_path: Path
) -> None:
    """Three tables of the records made MyISAM (accepted by the policies): their rows are
    deleted outside the batches' transactions, on a connection of their own, each statement
    committed by itself, so that a MySQL server enforcing GTID consistency (as the tests' MySQL
    server does) accepts them; the end state is PostgreSQL's, every intent is deleted and the
    trail verifies."""
    policies = _policies(tmp_path / "policies")
    maria_url, tool = maria
    with connect(Settings(), url=maria_url) as conn:
        for table in MYISAM:
            conn.execute(sql.SQL("ALTER TABLE {} ENGINE=MyISAM").format(sql.Identifier(table)))
    refused = _cli(maria_url, tool, policies, *RUN)
    assert refused.returncode != 0 and "have no transactions" in refused.stderr + refused.stdout
    _accepting(policies)
    with (
        temporary_database(pg_admin_url) as pg_url,
        connect(Settings(), url=pg_url) as pg_conn,
    ):
        _hospital(pg_conn)
        before = _tables(pg_url)
        pg = _cli(pg_url, "retention", policies, *RUN)
        assert pg.returncode == 0, pg.stdout[-3000:] + pg.stderr[-3000:]
        run = _cli(maria_url, tool, policies, *RUN, RETENTION_BATCH_SIZE="7")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        after_pg, after_maria = _tables(pg_url), _tables(maria_url)
    differences = [
        first_difference(table, after_pg[table], after_maria[table])
        for table in TABLES
        if after_pg[table] != after_maria[table]
    ]
    assert not differences
    for table in MYISAM:  # the comparison means something: rows went from each
        assert len(after_maria[table]) < len(before[table]), table
    with connect(Settings(), url=maria_url) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(tool, "intents"))
        ).fetchone()
        assert row is not None and row[0] == 0
        engines = conn.execute(
            "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (%s, %s, %s)",
            MYISAM,
        ).fetchall()
    assert sorted(e for _, e in engines) == ["MyISAM"] * 3
    verify = _cli(maria_url, tool, policies, "audit", "verify")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]


# -- kill -9 -----------------------------------------------------------------------------------


def _start(url: str, tool: str, policies: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retention.cli.main", *RUN],
        env=cli_env(
            url,
            policies,
            RETENTION_SCHEMA_NAME=tool,
            RETENTION_BATCH_SIZE="3",
            RETENTION_LOCK_WAIT_SECONDS="30",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _batches(conn: Connection, tool: str) -> tuple[Counter[tuple[str, str]], list[str]]:
    import json

    rows = conn.execute(
        sql.SQL("SELECT policy, phase, subject_digests FROM {} WHERE event = 'batch'").format(
            sql.Identifier(tool, "audit")
        )
    ).fetchall()
    subjects: Counter[tuple[str, str]] = Counter()
    digests: list[str] = []
    for policy, phase, found in rows:
        keys = json.loads(found) if isinstance(found, str) else found
        subjects[(policy, phase)] += len(keys)
        digests += [f"{policy}/{phase}/{d}" for d in keys]
    return subjects, digests


def _count(conn: Connection, tool: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = 'audit'",
        (tool,),
    ).fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE event = 'batch'").format(
            sql.Identifier(tool, "audit")
        )
    ).fetchone()
    return int(found[0]) if found else 0


def test_kill_9_at_random_instants_on_mariadb_then_rerun(
    mariadb_admin_url: str, tmp_path: Path
) -> None:
    """Batches of 3 subjects; each killed run is found abandoned by the next; the final state,
    the subjects acted on and their count equal those of a run never interrupted."""
    rng = random.Random(20261205)
    policies = _policies(tmp_path / "policies")
    clean, clean_tool, killed, killed_tool = (_name(k) for k in ("c", "ct", "k", "kt"))
    _drop(mariadb_admin_url, clean, clean_tool, killed, killed_tool)
    try:
        urls = {}
        for name in (clean, killed):
            with connect(Settings(), url=mariadb_admin_url) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            urls[name] = database_url(mariadb_admin_url, name)
            with connect(Settings(), url=urls[name]) as conn:
                _hospital(conn)
        reference = _start(urls[clean], clean_tool, policies)
        out, err = reference.communicate(timeout=300)
        assert reference.returncode == 0, err[-3000:]
        assert "locked by the application" not in out and "skipped" not in out, out[-3000:]
        with connect(Settings(), url=urls[clean]) as conn:
            done_clean, _ = _batches(conn, clean_tool)
        total = sum(done_clean.values())
        kills = 0
        with connect(Settings(), url=urls[killed]) as watch:
            for _ in range(4):
                process = _start(urls[killed], killed_tool, policies)
                target = _count(watch, killed_tool) + rng.randint(1, 20)
                while process.poll() is None and _count(watch, killed_tool) < target:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.02))
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGKILL)
                    kills += 1
                process.communicate(timeout=60)
            assert kills >= 2, "the run finished before it could be killed"
            assert 0 < sum(_batches(watch, killed_tool)[0].values()) < total
            final = _start(urls[killed], killed_tool, policies)
            _, err = final.communicate(timeout=300)
            assert final.returncode == 0, err[-3000:]
            done_killed, digests = _batches(watch, killed_tool)
            outcomes = Counter(
                str(r[0])
                for r in watch.execute(
                    sql.SQL("SELECT outcome FROM {}").format(sql.Identifier(killed_tool, "runs"))
                )
            )
        assert _tables(urls[killed]) == _tables(urls[clean])
        assert len(digests) == len(set(digests))
        assert done_killed == done_clean  # nothing lost, nothing done twice
        assert outcomes["abandoned"] == kills and outcomes["running"] == 0
        verify = _cli(urls[killed], killed_tool, policies, "audit", "verify")
        assert verify.returncode == 0, verify.stdout[-3000:]
    finally:
        _drop(mariadb_admin_url, clean, clean_tool, killed, killed_tool)


# -- the pseudonymisation key never reaches the server -------------------------------------------


def _text(value: object) -> str:
    return (
        bytes(value).decode("utf-8", "replace")
        if isinstance(value, bytes | bytearray)
        else str(value)
    )


def general_log(admin_url: str, work: Callable[[], T]) -> tuple[T, list[tuple[int, str, str]]]:
    """`work`'s result, and every statement the server received meanwhile, as its general
    query log (a table, for the duration) recorded them: (thread, command type, text). The log
    is the server's: tests using it in other pytest-xdist workers wait for each other (a named
    lock), else one truncates or switches off the log while another's work runs."""
    with connect(Settings(), url=admin_url) as admin:
        got = admin.execute("SELECT GET_LOCK('retention_tests_general_log', 600)").fetchone()
        assert got is not None and got[0] == 1
        saved = admin.execute("SELECT @@general_log, @@log_output").fetchone()
        assert saved is not None
        admin.execute("SET GLOBAL log_output = 'TABLE'")
        admin.execute("TRUNCATE TABLE mysql.general_log")
        admin.execute("SET GLOBAL general_log = 1")
        try:
            result = work()
        finally:
            admin.execute("SET GLOBAL general_log = %s", (int(saved[0]),))
            admin.execute("SET GLOBAL log_output = %s", (str(saved[1]),))
        logged = [
            (int(r[0]), str(r[1]), _text(r[2]))
            for r in admin.execute(
                "SELECT thread_id, command_type, argument FROM mysql.general_log"
            ).fetchall()
        ]
        admin.execute("TRUNCATE TABLE mysql.general_log")
        admin.execute("SELECT RELEASE_LOCK('retention_tests_general_log')")
    return result, logged


def _key_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode()]


def test_the_pseudonym_key_never_reaches_mariadb(
    maria: tuple[str, str], mariadb_admin_url: str, tmp_path: Path
) -> None:
    """Every statement the server receives during a pseudonymising run is in its general
    query log (a table, for the test's duration): the key appears in none, in any form; the
    pseudonyms computed here do."""
    url, tool = maria
    policies = _policies(tmp_path / "policies")
    for other in ("contacts-patients", "dossier-medical", "journal-modifications"):
        (policies / f"{other}.yaml").unlink()
    run, logged = general_log(mariadb_admin_url, lambda: _cli(url, tool, policies, *RUN))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # the run's sessions: those that connected to the test's database (the log is the server's:
    # other sessions, e.g. a benchmark's hand-written SQL, may run at the same time)
    database = url.rsplit("/", 1)[1]
    threads = {t for t, kind, text in logged if kind == "Connect" and f" on {database} " in text}
    statements = [text for t, kind, text in logged if t in threads]
    assert threads and len(statements) > 20, "the log recorded the run's statements"
    assert any("PSN-" in text or "?" in text for text in statements)
    for form in _key_forms(PSEUDONYM_KEY):
        assert not any(form in text for text in statements), "the key reached the server"
    with connect(Settings(), url=url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM patients WHERE nom LIKE 'PSN-%' OR rques LIKE '%PSN-%'"
        ).fetchone()
    assert row is not None and row[0] > 0, "the run pseudonymised nothing: the test proves nothing"
