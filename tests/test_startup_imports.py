"""A command loads only what it uses: the text analyser (Presidio, spaCy), the archive encryption
(pyrage), the progress bars (rich), the report, the daemon's metrics and Faker are loaded by the
commands and phases that need them, not by every start of `retention`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.engine_helpers import ROOT, cli

HEAVY = (
    "presidio_analyzer",
    "spacy",
    "pyrage",
    "rich",
    "prometheus_client",
    "faker",
    "retention.report.build",
    "retention.report.html",
    "retention.daemon.loop",
    "retention.archive.session",
)


def _loaded(stderr: str) -> set[str]:
    """Module names in the import log of PYTHONPROFILEIMPORTTIME (`-X importtime`)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def test_the_command_line_loads_no_heavy_module() -> None:
    """Building every command's arguments (`retention --help`) loads none of them."""
    code = (
        "import sys, retention.cli.main as m; m._parser(); "
        f"print(','.join(n for n in {HEAVY!r} if n in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""


def test_check_plan_and_a_minimisation_run_load_no_heavy_module(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    """`check`, `plan` and a run of an erasure (no archive configured, no terminal) do not load
    the analyser, the encryption, the bars, the report's pages, the daemon or Faker."""
    for args in (
        ("check",),
        ("plan",),
        ("run", "--yes", "--allow-large", "--reason", "t", "--policy", "contacts-patients"),
    ):
        done = cli(demo_db_url, *args, PYTHONPROFILEIMPORTTIME="1")
        assert done.returncode == 0, done.stderr[-2000:]
        loaded = _loaded(done.stderr)
        assert "retention.policy.bind" in loaded  # the import log is read
        assert sorted(loaded & set(HEAVY)) == [], args
