"""The shipped systemd units: `systemd-analyze verify` clean, security exposure 2.0 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _installed_copy(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this checkout's `retention` (verify checks it)."""
    executable = Path(sys.executable).parent / "retention"
    assert executable.exists()
    for unit in UNITS.glob("retention*"):
        text = unit.read_text().replace("/opt/retention/bin/retention", str(executable))
        (tmp_path / unit.name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("unit", ["retention.service", "retention-run.service"])
def test_security_exposure_is_two_or_lower(unit: str) -> None:
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(UNITS / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0


def test_units_verify_clean(tmp_path: Path) -> None:
    assert ANALYZE is not None
    folder = _installed_copy(tmp_path)
    names = ["retention.service", "retention-run.service", "retention-run.timer"]
    result = subprocess.run(
        [ANALYZE, "verify", *(str(folder / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
