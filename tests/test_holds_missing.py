"""The tool's schema there without a holds table this account sees: every command that would
plan, run or report without the legal holds stops (store/schema.py `holds_table`), on both
engines. An outside review dropped the table (and, on MariaDB, revoked the account's SELECT
on it): `plan`, `run --dry-run`, `exposure` and `report` showed the held patient due and
exited 0."""

from __future__ import annotations

import pytest

from retention.engines import sql
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
