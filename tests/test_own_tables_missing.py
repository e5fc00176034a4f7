"""The tool's schema there without one of its tables this account sees, on both engines.

Legal holds: every command that would plan, run or report without them stops
(store/schema.py `holds_table`). An outside review dropped the table (and, on MariaDB,
revoked the account's SELECT on it): `plan`, `run --dry-run`, `exposure` and `report` showed
the held patient due and exited 0. The intents journal: `intents list` said every batch had
committed, and a misspelt schema name did the same (engine/intents.py `pending`)."""

from __future__ import annotations

import pytest

from retention.engines import sql
from tests.engine_helpers import cli
from tests.fix_engines import EngineDB


@pytest.mark.parametrize("command", [("plan",), ("run", "--dry-run"), ("exposure",), ("report",)])
def test_a_command_without_the_legal_holds_stops(
    engine_demo: EngineDB, command: tuple[str, ...]
) -> None:
    init = engine_demo.cli("init")
    assert init.returncode == 0, init.stderr
    held = engine_demo.cli("hold", "add", "--policy", "dossier-medical", "--subject", "1",
                           "--reason", "contentieux")  # fmt: skip
    assert held.returncode == 0, held.stderr
    engine_demo.conn.execute(sql.SQL("DROP TABLE {}").format(engine_demo.tool("holds")))
    stopped = engine_demo.cli(*command)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert f"the legal holds table {engine_demo.tool_schema}.holds is missing" in stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_intents_list_without_the_journal_or_the_schema_stops(engine_demo: EngineDB) -> None:
    init = engine_demo.cli("init")
    assert init.returncode == 0, init.stderr
    listed = engine_demo.cli("intents", "list")
    assert listed.returncode == 0 and "no intent left" in listed.stdout, listed.stderr
    misspelt = cli(engine_demo.url, "intents", "list", RETENTION_SCHEMA_NAME="retenton")
    assert misspelt.returncode == 2, misspelt.stdout + misspelt.stderr
    assert "no intent left" not in misspelt.stdout
    assert "does not exist" in misspelt.stderr
    engine_demo.conn.execute(sql.SQL("DROP TABLE {}").format(engine_demo.tool("intents")))
    dropped = engine_demo.cli("intents", "list")
    assert dropped.returncode == 5, dropped.stdout + dropped.stderr
    assert f"the intents journal {engine_demo.tool_schema}.intents is missing" in dropped.stderr
    run = engine_demo.cli("run", "--dry-run")
    assert run.returncode == 5 and "intents journal" in run.stderr, run.stdout + run.stderr


def test_the_report_of_a_schema_whose_trail_was_dropped_says_so(engine_demo: EngineDB) -> None:
    """An outside review: with the audit trail dropped, `report` exited 0 saying the tool's
    schema was not installed ('installed': false, 'aucune exécution')."""
    init = engine_demo.cli("init")
    assert init.returncode == 0, init.stderr
    engine_demo.conn.execute(sql.SQL("DROP TABLE {}").format(engine_demo.tool("audit")))
    report = engine_demo.cli("report", "--format", "json")
    assert report.returncode == 1, report.stdout + report.stderr
    assert f"the audit trail {engine_demo.tool_schema}.audit is missing" in report.stderr
    assert '"installed": false' not in report.stdout


def test_init_names_a_table_of_the_schema_that_was_dropped(engine_demo: EngineDB) -> None:
    """A review of bad inputs: with the holds table dropped, `init` said the schema was up
    to date; making it again, empty, would hide that legal holds were lost."""
    assert engine_demo.cli("init").returncode == 0
    again = engine_demo.cli("init")
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stderr
    engine_demo.conn.execute(sql.SQL("DROP TABLE {}").format(engine_demo.tool("holds")))
    dropped = engine_demo.cli("init")
    assert dropped.returncode == 1, dropped.stdout + dropped.stderr
    assert f"is missing {engine_demo.tool_schema}.holds, which its migrations created" in (
        dropped.stderr
    )
    assert "up to date" not in dropped.stdout
