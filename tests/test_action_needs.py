"""Every action's needs are met by `run` and the daemon as a user starts them: the keys its spec
says it needs are loaded (and only those), and a missing one is a clear error before any change.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from retention.engines import sql
from retention.policy.actions import SPECS
from tests import cli_zygote
from tests.archive_helpers import archive_policies, key_pair
from tests.engine_helpers import cli_env
from tests.fix_engines import EngineDB

DUE = "derniere_venue + 5 years"
# One phase per action, on the demo schema (dossier-medical's subject, links and dates).
PHASES = {
    "erase": "action: erase\n    columns: [tel]",
    "pseudonymize": "action: pseudonymize\n    columns: [nom]",
    "generalize": "action: generalize\n    columns: [{column: cp, to: department}]",
    "scrub": "action: scrub\n    columns: [{column: rques, replace_with: pseudonym}]",
    "archive": "action: archive",
    "purge": "action: purge",
}
SCRUB_WITH_PSEUDONYMS = PHASES["scrub"]
RUN = ("run", "--yes", "--allow-large", "--reason", "test")


def scrub_policies(folder: Path) -> Path:
    """A policy whose only phase scrubs free text into pseudonyms."""
    return _policies(folder, SCRUB_WITH_PSEUDONYMS)


def _policies(folder: Path, phase: str) -> Path:
    return archive_policies(folder, f"phases:\n  - name: step\n    due: {DUE}\n    {phase}\n")


def _env(db: EngineDB, folder: Path, policies: Path, *, pseudonym_key: bool) -> dict[str, str]:
    archives = folder / "archives"
    archives.mkdir(exist_ok=True)
    env = cli_env(
        db.url,
        policies,
        RETENTION_ARCHIVE_DIR=str(archives),
        RETENTION_ARCHIVE_RECIPIENTS=key_pair(folder / "keys").recipient,
        **db.env(),
    )
    if not pseudonym_key:
        del env["RETENTION_PSEUDONYM_KEY"]
    return env


def _remarks(db: EngineDB) -> list[tuple[Any, ...]]:
    rows = db.conn.execute("SELECT patient_id, rques FROM patients ORDER BY patient_id")
    return [tuple(row) for row in rows.fetchall()]


def _run(env: dict[str, str], args: tuple[str, ...] = RUN) -> subprocess.CompletedProcess[str]:
    return cli_zygote.run(list(args), env)


def test_every_action_has_a_case_here() -> None:
    assert set(PHASES) == set(SPECS)


@pytest.mark.parametrize("action", list(PHASES))
def test_run_loads_what_each_action_needs_and_nothing_else(
    action: str, engine_demo: EngineDB, tmp_path: Path
) -> None:
    """An action that needs no pseudonymisation key runs without one configured; one that
    needs it (pseudonymize, scrub with replace_with: pseudonym) runs with it."""
    needs = SPECS[action].pseudonym_key != "never"
    policies = _policies(tmp_path / "policies", PHASES[action])
    done = _run(_env(engine_demo, tmp_path, policies, pseudonym_key=needs))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"dossier-medical/step [{action}]: " in done.stdout
    assert ": completed" in done.stdout
    assert "error:" not in done.stdout
    batches = engine_demo.conn.execute(
        sql.SQL(
            "SELECT count(*), count(key_id) FROM {} "
            "WHERE event = 'batch' AND phase = 'step' AND subjects > 0"
        ).format(engine_demo.tool("audit"))
    ).fetchone()
    assert batches is not None and batches[0] > 0
    assert batches[1] == (batches[0] if needs else 0)  # the key's id: recorded when it is used


def test_run_of_a_scrub_with_pseudonyms_needs_the_key(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    """The key is loaded for a policy whose only phase is a scrub with pseudonyms (it used to be
    loaded for pseudonymize phases only, and every batch failed); without it, a clear error
    before anything changes."""
    policies = _policies(tmp_path / "policies", SCRUB_WITH_PSEUDONYMS)
    remarks = _remarks(engine_demo)
    without = _env(engine_demo, tmp_path, policies, pseudonym_key=False)
    # check (the daemon unit's ExecStartPre) says so before the daemon stops on it
    checked = _run(without, ("check",))
    assert checked.returncode == 0, checked.stderr
    assert "warning: " in checked.stderr and "/step need(s) the pseudonym key, and " in (
        checked.stderr
    )
    assert "pseudonym_key is not set" in checked.stderr
    refused = _run(without)
    assert refused.returncode == 2
    assert "pseudonym_key is not set" in refused.stderr
    assert _remarks(engine_demo) == remarks
    done = _run(_env(engine_demo, tmp_path, policies, pseudonym_key=True))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error:" not in done.stdout
    pseudonym = re.compile("PSN-[A-Z2-7]{8,}")
    assert [k for k, text in _remarks(engine_demo) if text and pseudonym.search(text)]
