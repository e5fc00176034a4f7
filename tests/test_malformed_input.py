"""Malformed policy files and settings, through the real command: exit 2, the file, the line,
what is wrong and a hint; never a traceback, in bounded time and memory."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.engine_helpers import cli

POLICY = """\
name: t
subject:
  table: patients
  key: patient_id
dates:
  derniere: {column: derniere}
retain_until: derniere + 20 years
phases:
  - name: purge
    due: derniere + 20 years
    action: purge
"""


def _check(folder: Path, url: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    files_only = () if url else ("--no-database",)
    done = cli(url, "check", *files_only, policies=folder, timeout=60, **env)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _write(tmp_path: Path, content: bytes | str) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    data = content.encode("utf-8") if isinstance(content, str) else content
    (folder / "p.yaml").write_bytes(data)
    return folder


def _error(done: subprocess.CompletedProcess[str], where: str, what: str, hint: str) -> None:
    assert done.returncode == 2, done.stderr
    assert f"p.yaml:{where}: error: {what}" in done.stderr, done.stderr
    assert f"hint: {hint}" in done.stderr, done.stderr


def test_aliases_expanding_without_bound_are_refused_at_once(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    folder = _write(tmp_path, "\n".join(lines) + "\n")  # 9^9 values once expanded
    done = _check(folder)  # (timeout=60: without the bound it grows past 3 GB)
    _error(done, "6:8", "this file expands to more than 100,000 values", "write the values out")


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = POLICY.replace("    due: derniere + 20 years\n", "    due: derniere + 20 years\n" * 2)
    done = _check(_write(tmp_path, text))
    _error(done, "11:5", "duplicate key 'due' (first at line 10)", "a key appears once")


def test_an_expression_cut_at_its_comma_in_a_flow_mapping_gets_the_quoting_hint(
    tmp_path: Path,
) -> None:
    text = POLICY.replace(
        "  derniere: {column: derniere}",
        "  derniere: {latest: coalesce(sortie, today), over: sejours}",
    )
    done = _check(_write(tmp_path, text))
    _error(
        done,
        "6:39",
        "unknown key 'today)'",
        "inside { }, YAML ends an entry at each comma, and this looks like the rest of an "
        "expression cut at one: quote the expression, as in {latest: 'coalesce(sortie, today)', "
        "over: sejours}",
    )


def test_a_control_character_is_an_error_at_its_line(tmp_path: Path) -> None:
    done = _check(_write(tmp_path, POLICY.replace("name: t", 'name: t\ntitle: "a\x00b"')))
    _error(done, "2:10", "character U+0000 is not allowed in a policy file", "remove it")


def test_nesting_ten_thousand_deep_is_an_error_not_a_recursion(tmp_path: Path) -> None:
    done = _check(_write(tmp_path, POLICY + "x: " + "[" * 10_000 + "]" * 10_000 + "\n"))
    _error(done, "12:103", "values nested more than 100 levels deep", "a policy needs a few")


def test_a_latin1_file_gets_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    data = POLICY.replace("name: t\n", "name: t\n# caf\xe9\n").encode("latin-1")
    done = _check(_write(tmp_path, data))
    _error(done, "2:6", "file is not UTF-8 text: byte 0xE9", "save the file as UTF-8")


def test_a_date_over_the_subject_table_itself_is_a_clear_error(
    tmp_path: Path, db_url: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE patients (patient_id int PRIMARY KEY, derniere date)")
    text = POLICY.replace("{column: derniere}", "{latest: derniere, over: patients}")
    done = _check(_write(tmp_path, text), db_url)
    _error(done, "6:38", "patients is the subject table itself", "read the column directly")


@pytest.mark.parametrize("name", ["RETENTION_AUDIT_LOG", "RETENTION_AUDIT_HEAD_FILE"])
def test_an_empty_file_setting_is_a_settings_error(tmp_path: Path, name: str) -> None:
    done = _check(_write(tmp_path, POLICY), **{name: ""})
    assert done.returncode == 2, done.stderr
    setting = name.removeprefix("RETENTION_").lower()
    assert "error: invalid settings:" in done.stderr
    assert f"{setting}: Value error, is empty: name a file" in done.stderr
