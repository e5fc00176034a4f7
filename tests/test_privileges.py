"""`retention grants`: a role with exactly those privileges runs plan, run and audit verify,
and cannot rewrite the audit trail or touch what no policy needs."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.engine_helpers import cli, write_policy

_names = itertools.count()


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(url, *args)


@pytest.fixture
def role(demo_conn: psycopg.Connection[Any], demo_db_url: str) -> Iterator[str]:
    name = f"rt_daemon_{os.getpid()}_{next(_names)}"
    assert _cli(demo_db_url, "init").returncode == 0
    yield name
    demo_conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    demo_conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_least_privilege_role_runs_and_cannot_rewrite_the_audit_trail(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, role: str
) -> None:
    printed = _cli(demo_db_url, "grants", "--role", role)
    assert printed.returncode == 0, printed.stderr
    script = printed.stdout
    assert "GRANT UPDATE (" in script and "GRANT DELETE ON" in script
    assert 'UPDATE ON "retention"."audit"' not in script
    demo_conn.execute(script)
    as_role = make_conninfo(demo_db_url, user=role)
    for command in (
        ["scan"],
        ["plan"],
        ["run", "--yes", "--allow-large", "--reason", "least privilege"],
        ["audit", "verify"],
    ):
        result = _cli(as_role, *command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert "superuser" not in result.stderr
    scans = demo_conn.execute("SELECT count(*) FROM retention.scans").fetchone()
    assert scans == (1,)  # the role stored its inventory
    entries = demo_conn.execute(
        "SELECT count(*), min(actor->>'db_user') FROM retention.audit WHERE event = 'batch'"
    ).fetchone()
    assert entries is not None and entries[0] > 0 and entries[1] == role
    with psycopg.connect(as_role, autocommit=True) as conn:
        for statement in (
            "UPDATE retention.audit SET outcome = 'x'",
            "DELETE FROM retention.audit",
            "UPDATE patients SET nom = 'x'",
            "DELETE FROM medecins",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


SCRUB_POLICY = """\
name: remarques
subject: {table: patients, key: patient_id}
dates:
  naissance: {column: naissance, format: YYYY-MM-DD}
retain_until: naissance + 18 years
phases:
  - name: remarques
    due: naissance + 18 years
    action: scrub
    columns: [rques]
"""


def test_least_privilege_role_scrubs_and_records_the_ledger(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, role: str, tmp_path: Path
) -> None:
    folder = write_policy(tmp_path / "policies", SCRUB_POLICY)
    printed = cli(demo_db_url, "grants", "--role", role, policies=folder)
    assert printed.returncode == 0, printed.stderr
    demo_conn.execute(printed.stdout)
    as_role = make_conninfo(demo_db_url, user=role)
    for _ in range(3):
        result = cli(as_role, "run", "--yes", "--allow-large", "--reason", "test", policies=folder)
        assert result.returncode == 0, (result.stdout, result.stderr)
    recorded = demo_conn.execute("SELECT count(*) FROM retention.scrubbed").fetchone()
    assert recorded is not None and recorded[0] > 0
    # the second run analysed once more the texts the first changed; the third found every due
    # text in the ledger and had no batch to run
    runs = demo_conn.execute(
        "SELECT count(DISTINCT run_id) FROM retention.audit WHERE event = 'batch' "
        "AND policy = 'remarques'"
    ).fetchone()
    assert runs == (2,)
    assert demo_conn.execute("SELECT count(*) FROM retention.runs").fetchone() == (3,)


def test_a_role_granted_before_the_ledger_existed_still_runs(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, role: str, tmp_path: Path
) -> None:
    # grants printed before migration 007 had no line for the ledger: the same as revoking it
    folder = write_policy(tmp_path / "policies", SCRUB_POLICY)
    printed = cli(demo_db_url, "grants", "--role", role, policies=folder)
    demo_conn.execute(printed.stdout)
    demo_conn.execute(
        sql.SQL("REVOKE ALL ON retention.scrubbed FROM {}").format(sql.Identifier(role))
    )
    as_role = make_conninfo(demo_db_url, user=role)
    for command in (["plan"], ["run", "--yes", "--allow-large", "--reason", "test"]):
        result = cli(as_role, *command, policies=folder)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert "may not read and write it" in result.stderr
    assert demo_conn.execute("SELECT count(*) FROM retention.scrubbed").fetchone() == (0,)


def test_check_says_which_privilege_a_run_would_miss(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, role: str
) -> None:
    """`check` (the unit's ExecStartPre) said ok for a role that could not delete what its
    purge reaches, nor write the trail: the run then stopped on it. It warns, by table."""
    demo_conn.execute(_cli(demo_db_url, "grants", "--role", role).stdout)
    as_role = make_conninfo(demo_db_url, user=role)
    assert "this account cannot" not in _cli(as_role, "check").stderr
    demo_conn.execute(sql.SQL("REVOKE DELETE ON sejours FROM {}").format(sql.Identifier(role)))
    demo_conn.execute(
        sql.SQL("REVOKE INSERT ON retention.audit FROM {}").format(sql.Identifier(role))
    )
    checked = _cli(as_role, "check")
    assert checked.returncode == 0, checked.stderr
    assert (
        "warning: this account cannot DELETE from public.sejours: the phase 'destruction' "
        "would stop at its first batch (rolled back)"
    ) in checked.stderr
    assert "warning: this account cannot INSERT into retention.audit" in checked.stderr


def test_check_says_which_column_or_row_lock_a_run_would_miss(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, role: str
) -> None:
    """The columns a phase changes and the subjects' row locks are privileges too: a role
    without UPDATE on one erased column, or on any column of a purged table, stopped at its
    first batch after `check` said nothing."""
    demo_conn.execute(_cli(demo_db_url, "grants", "--role", role).stdout)
    as_role = make_conninfo(demo_db_url, user=role)
    quiet = _cli(as_role, "check")
    assert quiet.returncode == 0 and "this account cannot" not in quiet.stderr, quiet.stderr
    ident = sql.Identifier(role)
    demo_conn.execute(sql.SQL("REVOKE UPDATE (email) ON patients FROM {}").format(ident))
    demo_conn.execute(sql.SQL("REVOKE UPDATE ON user_log FROM {}").format(ident))
    checked = _cli(as_role, "check")
    assert checked.returncode == 0, checked.stderr  # warnings: the files are valid
    assert (
        "warning: this account cannot UPDATE email of public.patients: the phase "
        "'coordonnees' would stop at its first batch (rolled back)"
    ) in checked.stderr
    assert "contacts-patients.yaml:37:" in checked.stderr  # the column in the phase
    assert (
        "warning: this account cannot lock rows of public.user_log (SELECT ... FOR UPDATE "
        "wants UPDATE on one of its columns at least): every phase of "
        "'journal-modifications' would stop at its first batch (rolled back)"
    ) in checked.stderr
    # what check announced is what a run meets
    ran = _cli(as_role, "run", "--yes", "--allow-large", "--reason", "test", "--policy",
               "contacts-patients")  # fmt: skip
    assert ran.returncode != 0
    assert "permission denied" in (ran.stdout + ran.stderr)


def test_the_row_lock_of_a_purge_only_policy_is_granted_on_no_key_column(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """An outside review (OpenMRS): the UPDATE privilege a row lock needs went to `uuid`, a
    UNIQUE key other systems synchronise on; a column that is no key is chosen first."""
    conn.execute(
        "CREATE TABLE person (person_id int PRIMARY KEY, uuid char(38) NOT NULL UNIQUE, "
        "gender text, seen date)"
    )
    folder = tmp_path / "policies"
    write_policy(
        folder,
        "name: p\nsubject: {table: person, key: person_id}\ndates:\n  seen: {column: seen}\n"
        "retain_until: seen + 20 years\nphases:\n  - name: destruction\n"
        "    due: retain_until\n    action: purge\n",
    )
    printed = cli(db_url, "grants", "--role", "rt_nobody", policies=folder)
    assert printed.returncode == 0, printed.stderr
    assert 'GRANT UPDATE ("gender") ON' in printed.stdout, printed.stdout
    assert '"uuid") ON' not in printed.stdout
