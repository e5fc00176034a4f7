"""`check --no-database` checks every expression's syntax, and the types of those over dates
(retention/policy/offline.py): an outside review found broken expressions called valid there,
which the database check then refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.policy.load import load_policies
from retention.policy.offline import expression_problems
from tests.engine_helpers import ROOT, cli

SHIPPED = (ROOT / "policies" / "contacts-patients.yaml").read_text(encoding="utf-8")
RETAIN = "retain_until: derniere_venue + 3 years"


@pytest.mark.parametrize(
    ("retain_until", "said"),
    [
        ("derniere_venue + 3 yeers", "unexpected 'yeers'"),
        ("+ + 3 years", "unexpected '+'"),
        ("greatest()", "greatest() needs at least one argument"),
        ("derniere_venue + derniere_venue", "cannot add a date to a date"),
        ("retain_until + 1 year", "unknown name 'retain_until'"),
        ("3 years", "this expression gives a duration, a date is needed"),
    ],
)
def test_a_broken_expression_is_found_without_the_database(
    tmp_path: Path, retain_until: str, said: str
) -> None:
    assert RETAIN in SHIPPED
    (tmp_path / "c.yaml").write_text(
        SHIPPED.replace(RETAIN, f"retain_until: {retain_until}"), encoding="utf-8"
    )
    (loaded,) = load_policies(tmp_path)
    (problem,) = expression_problems(loaded)
    assert said in problem.message
    assert str(problem.location).startswith(f"{tmp_path / 'c.yaml'}:")


def test_an_aggregate_filter_is_parsed_and_the_shipped_policies_pass(tmp_path: Path) -> None:
    for loaded in load_policies(ROOT / "policies"):
        assert expression_problems(loaded) == [], loaded.name
    text = SHIPPED.replace("where: annule = '0'", "where: annule = = '0'")
    assert text != SHIPPED
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    (problem,) = expression_problems(load_policies(tmp_path)[0])
    assert "unexpected '='" in problem.message


def test_the_command_exits_2_with_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        SHIPPED.replace(RETAIN, "retain_until: derniere_venue + 3 yeers"), encoding="utf-8"
    )
    checked = cli(None, "check", "--no-database", policies=tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert f"{tmp_path / 'c.yaml'}:" in checked.stderr and "unexpected 'yeers'" in checked.stderr
    assert "valid" not in checked.stdout
