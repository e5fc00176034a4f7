"""The `retention` command as a user runs it: exit codes, clear messages, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.demo.schema import create_schema
from tests import cli_zygote
from tests.fix_engines import EngineDB

ROOT = Path(__file__).resolve().parent.parent
RETENTION = [sys.executable, "-m", "retention.cli.main"]


def _run(*args: str, url: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    environ.update(env)
    if url is not None:
        environ["RETENTION_DATABASE_URL"] = url
    environ["RETENTION_POLICIES_DIR"] = env.get("RETENTION_POLICIES_DIR", str(ROOT / "policies"))
    return cli_zygote.run(list(args), environ, cwd=ROOT, timeout=120)


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


@pytest.fixture(scope="module")
def hospital(engine_db_module: EngineDB) -> EngineDB:
    """The demo's tables, empty, on each engine, shared by this module's tests (they only read)."""
    create_schema(engine_db_module.conn)
    return engine_db_module


def _on(hospital: EngineDB, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`retention ARGS` on the hospital's database and the tool's schema of the test."""
    return _run(*args, url=hospital.url, RETENTION_SCHEMA_NAME=hospital.tool_schema, **env)


def test_check_valid_policies_exits_0(hospital: EngineDB) -> None:
    result = _on(hospital, "check")
    assert result.returncode == 0, result.stderr
    assert "3 policy file(s) valid" in result.stdout


def test_check_invalid_policy_exits_2_with_position(hospital: EngineDB, tmp_path: Path) -> None:
    text = (ROOT / "policies" / "contacts-patients.yaml").read_text()
    (tmp_path / "c.yaml").write_text(text.replace("- tel_portable", "- tel_portabel"))
    result = _on(hospital, "check", "--policies", str(tmp_path))
    _no_traceback(result)
    assert result.returncode == 2
    assert "c.yaml:" in result.stderr
    assert "unknown column 'tel_portabel' in table patients" in result.stderr
    assert "did you mean 'tel_portable'?" in result.stderr


def test_plan_json_has_the_stable_shape(hospital: EngineDB) -> None:
    result = _on(hospital, "plan", "--format", "json", "--at", "2030-01-01")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["at"] == "2030-01-01"
    names = {p["name"] for p in data["policies"]}
    assert names == {"dossier-medical", "contacts-patients", "journal-modifications"}
    phase = data["policies"][0]["phases"][0]
    assert set(phase) == {
        "name",
        "action",
        "due_subjects",
        "held_subjects",
        "undeterminable_reasons",
        "undeterminable_subjects",
        "rows",
    }


def test_plan_unknown_policy_is_a_usage_error(hospital: EngineDB) -> None:
    result = _on(hospital, "plan", "--policy", "nope")
    _no_traceback(result)
    assert result.returncode == 2
    assert "no policy named 'nope'" in result.stderr


def test_plan_of_one_phase_shows_what_run_phase_would_do(hospital: EngineDB) -> None:
    result = _on(hospital, "plan", "--phase", "coordonnees", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    shown = [(p["name"], f["name"]) for p in data["policies"] for f in p["phases"]]
    assert shown == [("contacts-patients", "coordonnees")]
    unknown = _on(hospital, "plan", "--phase", "nope")
    _no_traceback(unknown)
    assert unknown.returncode == 2
    assert "no phase named 'nope'" in unknown.stderr
    assert "hint: phases: coordonnees, destruction, purge" in unknown.stderr


def test_bad_date_argument_exits_2() -> None:
    result = _run("plan", "--at", "2024-02-30")
    _no_traceback(result)
    assert result.returncode == 2
    assert "is not a date" in result.stderr


def test_reason_without_allow_large_exits_2() -> None:
    """An outside review: `run --reason '...'` alone was ignored, the limits held and the operator
    believed them overridden. It is refused before the database is reached."""
    result = _run("run", "--yes", "--reason", "ticket 42")
    _no_traceback(result)
    assert result.returncode == 2
    assert "--reason is read only with --allow-large" in result.stderr


def test_a_date_past_what_a_clock_can_reach_exits_2_and_the_last_one_plans(
    engine_demo: EngineDB,
) -> None:
    """An outside review: `--at 9990-01-01` made MariaDB refuse the plan with a bare
    'DatetimeFieldOverflow'. The range is checked first; its last day plans on both engines."""
    late = _run("plan", "--at", "9990-01-01")
    _no_traceback(late)
    assert late.returncode == 2
    assert "out of range: give a date from 1900-01-01 to 8999-12-31" in late.stderr
    last = engine_demo.cli("plan", "--format", "json", "--at", "8999-12-31")
    assert last.returncode == 0, last.stdout + last.stderr
    assert '"due_subjects": 0' not in last.stdout  # the demo's patients are all due by then


def test_unreachable_database_is_a_clear_error() -> None:
    result = _run("check", url="postgresql://nobody:pw-not-shown@127.0.0.1:1/none")
    _no_traceback(result)
    assert result.returncode == 4
    assert "cannot connect to the database" in result.stderr
    assert "pw-not-shown" not in result.stderr


def test_invalid_settings_exit_2() -> None:
    result = _run("check", RETENTION_BATCH_SIZE="many", RETENTION_LOG_LEVEL="LOUD")
    _no_traceback(result)
    assert result.returncode == 2
    assert "batch_size" in result.stderr and "log_level" in result.stderr


def test_missing_policy_folder(hospital: EngineDB, tmp_path: Path) -> None:
    result = _on(hospital, "check", "--policies", str(tmp_path / "none"))
    _no_traceback(result)
    assert result.returncode == 2
    assert "policy folder does not exist" in result.stderr
    a_file = tmp_path / "p.yaml"  # an outside review: a file was said not to exist
    a_file.write_text("name: p\n", encoding="utf-8")
    named = _on(hospital, "check", "--policies", str(a_file))
    assert named.returncode == 2 and "policy folder is a file, not a folder" in named.stderr


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    done = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"retention {version('retention')}\n")


def test_a_privilege_error_raised_by_a_function_shows_no_value(conn: Any) -> None:
    """A review of the privilege hint: it printed the server's text for every SQLSTATE 42501,
    and a function's or trigger's RAISE may use that code with a row's values in its text."""
    from retention.cli.main import _database_error

    with pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'patient Jeanne MARTIN is protected' "
            "USING ERRCODE = '42501'; END $$"
        )
    message, code = _database_error(caught.value)
    assert "MARTIN" not in message and "message is not shown" in message
    assert "retention grants --role" in message and code == 4
    conn.rollback()
    role = f"rt_denied_{os.getpid()}"
    conn.execute("CREATE TABLE guarded (x int)")
    conn.execute(f"CREATE ROLE {role}")
    conn.commit()
    try:
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as denied:
            conn.execute("SELECT x FROM guarded")
        message, _ = _database_error(denied.value)  # the server's own refusal: shown
        assert "permission denied for table guarded" in message
        assert "retention grants --role" in message
    finally:
        conn.rollback()
        conn.execute("RESET ROLE")
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.commit()
