"""The tests' way of running `retention` (tests/cli_zygote.py) gives what a new process gives:
the same output, errors and exit codes, the environment and folder asked for, and nothing left
over from one command to the next."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import cli_zygote

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    return {**env, **extra}


def _subprocess(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retention.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["rnu"],  # argparse's error: exit 2
        ["plan", "--at", "2020-13-01"],
        ["schema"],
        ["check"],  # no database configured: the tool's own error
    ],
    ids=" ".join,
)
def test_a_command_ends_as_in_a_new_process(args: list[str], tmp_path: Path) -> None:
    env = _env(RETENTION_POLICIES_DIR=str(tmp_path))
    forked = cli_zygote.run(args, env, cwd=tmp_path, timeout=120)
    assert cli_zygote._zygote() is not None  # forked, not a fallback to a subprocess
    alone = _subprocess(args, env, tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        alone.returncode,
        alone.stdout,
        alone.stderr,
    )


def test_the_environment_and_folder_are_the_commands_own(tmp_path: Path) -> None:
    """A setting given to one command is not seen by the next; the folder is the one asked."""
    out = tmp_path / "schema.json"
    first = cli_zygote.run(["schema", "--out", "schema.json"], _env(), cwd=tmp_path)
    assert first.returncode == 0 and out.is_file()
    bad = cli_zygote.run(["schema"], _env(RETENTION_BATCH_SIZE="-3"), cwd=tmp_path)
    assert bad.returncode == 2 and "batch_size" in bad.stderr
    again = cli_zygote.run(["schema"], _env(), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == out.read_text(encoding="utf-8")


def test_a_command_past_its_time_is_killed(tmp_path: Path) -> None:
    """`timeout` as subprocess.run has it: the command is stopped and TimeoutExpired raised
    (here, a server that accepts the connection and never answers)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=60"
        with pytest.raises(subprocess.TimeoutExpired):
            cli_zygote.run(["check"], _env(RETENTION_DATABASE_URL=url), cwd=tmp_path, timeout=2)
    assert cli_zygote.run(["--version"], _env(), cwd=tmp_path).returncode == 0
