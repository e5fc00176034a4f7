"""A command loads only what it uses: the text analyser (Presidio, spaCy), the archive encryption
(pyrage), the progress bars (rich), the report, the daemon's metrics and Faker are loaded by the
commands and phases that need them, not by every start of `retention`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

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
    "croniter",  # the daemon's: a schedule set by hand is checked by every command
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


def test_a_command_loads_its_own_module_of_the_command_line_only() -> None:
    """`retention grants ...` imports retention.cli.grants and none of the other commands'
    modules (each brings what it uses: policies, the audit trail, the report...)."""
    code = (
        "import sys, retention.cli.main as m; m._parser(['grants', '--role', 'r']); "
        "print(' '.join(sorted(n for n in sys.modules if n.startswith('retention.cli.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(done.stdout.split()) - {"retention.cli.options", "retention.cli.common"}
    assert loaded == {"retention.cli.main", "retention.cli.grants"}


def test_every_command_is_listed_and_built_by_its_own_module() -> None:
    """The command table of `retention` and the modules agree: built alone, each command has
    its own arguments (not the name-only entry of a command not asked for); built all
    together, the same commands in the same order, each with its line of help."""
    from retention.cli import main

    everything = main._parser([])
    listed = _subcommands(everything)
    assert list(listed) == list(main._COMMANDS)
    for name, (module, help_text) in main._COMMANDS.items():
        assert listed[name].help == help_text
        alone = _subcommands(main._parser(["--config", "x.toml", name]))
        built = {n for n, choice in alone.items() if _built(choice.parser)}
        assert built == {n for n, (m, _) in main._COMMANDS.items() if m == module}, name


def _built(parser: Any) -> bool:
    """Whether a command's parser was built by its module: it runs a handler, or has actions
    of its own (the name-only entry has neither)."""
    import argparse

    nested = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    return nested or parser.get_default("handler") is not None


def _subcommands(parser: Any) -> dict[str, Any]:
    """The subcommands of `parser`: name -> (choice action, with .help and .parser)."""
    import argparse

    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    return {
        name: type("Choice", (), {"help": helps[name], "parser": p})
        for name, p in sub.choices.items()
    }


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["--config", "plan", "schema"], "schema"),
        (["--conf", "plan", "schema"], "schema"),  # argparse takes a beginning of the name
        (["--c", "run", "grants", "--role", "r"], "grants"),
        (["--config=plan", "run"], "run"),
        (["--version"], None),
        (["rnu"], None),
        ([], None),
    ],
)
def test_the_command_is_the_one_argparse_reads(argv: list[str], command: str | None) -> None:
    """The command built in full is the one argparse parses, whatever the options before it."""
    from retention.cli import main

    assert main._command(argv) == command
    if command is not None:
        args = main._parser(argv).parse_args(argv)
        assert args.handler is not None
