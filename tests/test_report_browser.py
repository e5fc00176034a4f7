"""The demo database's report in a real browser: Debian's headless Chromium renders it without a
console message (no script error, no blocked resource), every section is on the page, and a
screenshot is saved in the test's temporary folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from retention.report.html import render_html
from tests.test_report_support import Prepared, prepared, write

__all__ = ["prepared"]

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed ('make tools' installs it as root)",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console(stderr: str) -> list[str]:
    """What the page logged to the console (Chromium prints it as `...:CONSOLE...] "..."`)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_console_messages_are_caught(tmp_path: Path) -> None:
    """The check below can fail: a page that logs an error, or loads something the report's
    policy forbids, is seen."""
    page = write(
        tmp_path / "bad.html",
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'\"></head><body><img src='data:,x'>"
        "<script>console.error('boom')</script></body></html>",
    )
    seen = _console(_chromium(page, tmp_path / "profile", "--dump-dom").stderr)
    assert seen, "Chromium printed no console line for a page that must produce one"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_demo_report_renders_in_chromium(prepared: Prepared, tmp_path: Path, lang: str) -> None:
    page = write(tmp_path / f"report-{lang}.html", render_html(prepared.report, lang))
    shot = tmp_path / f"report-{lang}.png"
    rendered = _chromium(page, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1280,2400")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert _console(rendered.stderr) == []
    assert shot.stat().st_size > 50_000  # a real page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = _chromium(page, tmp_path / "p2", "--dump-dom")
    assert dom.returncode == 0 and _console(dom.stderr) == []
    for section in ("exposure", "inventory", "forecast", "history"):
        assert f'id="{section}"' in dom.stdout
    assert dom.stdout.count("<svg") >= 4  # the trend and one chart per phase
