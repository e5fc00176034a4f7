"""Which policies `retention demo` uses: the folder chosen (settings, environment, --policies)
even when it is missing, else `./policies`, else the examples installed with the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.cli.demo import EXAMPLE_POLICIES, _with_policies
from retention.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_examples_installed_are_the_repositorys_policies() -> None:
    installed = sorted(p.name for p in EXAMPLE_POLICIES.iterdir())
    assert installed == sorted(p.name for p in (ROOT / "policies").iterdir())
    assert "dossier-medical.yaml" in installed
    for name in installed:
        assert (EXAMPLE_POLICIES / name).read_bytes() == (ROOT / "policies" / name).read_bytes()


def test_without_a_policies_folder_here_the_demo_takes_the_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RETENTION_POLICIES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = _with_policies(load_settings())
    assert settings.policies_dir == EXAMPLE_POLICIES
    assert "the examples installed with retention" in capsys.readouterr().out


def test_a_policies_folder_here_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETENTION_POLICIES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    assert _with_policies(load_settings()).policies_dir == Path("policies")


@pytest.mark.parametrize("how", ["environment", "option"])
def test_a_chosen_folder_stays_even_when_missing(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.chdir(tmp_path)
    if how == "environment":
        monkeypatch.setenv("RETENTION_POLICIES_DIR", str(missing))
        settings = load_settings()
    else:
        monkeypatch.delenv("RETENTION_POLICIES_DIR", raising=False)
        settings = load_settings(policies_dir=missing)  # what --policies DIR gives
    assert _with_policies(settings).policies_dir == missing  # its own error says it is missing
