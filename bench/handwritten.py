"""The hand-written set-based SQL baselines: one script, one transaction, each statement timed."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.db import connect

SQL_DIR = Path(__file__).resolve().parent / "sql"


@dataclass(frozen=True)
class Statement:
    """One statement of a script, as run."""

    text: str
    seconds: float
    rowcount: int

    @property
    def label(self) -> str:
        """The statement without comments, on one line, shortened."""
        lines = [ln for ln in self.text.splitlines() if not ln.strip().startswith("--")]
        words = " ".join(" ".join(lines).split())
        return words if len(words) <= 70 else words[:67] + "..."


@dataclass(frozen=True)
class ScriptRun:
    """A script run in one transaction: wall time from BEGIN to COMMIT, per statement."""

    name: str
    seconds: float
    statements: tuple[Statement, ...]


def statements(script: str) -> list[str]:
    """The statements of a script (each ends with ';' at the end of a line), without the
    comment lines before them, so that each starts with its SQL keyword."""
    chunks = re.split(r";[ \t]*$", script, flags=re.MULTILINE)
    return [_code(c) for c in chunks if _code(c)]


def _code(chunk: str) -> str:
    lines = chunk.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def run_script(url: str, name: str, params: dict[str, Any]) -> ScriptRun:
    """Run `bench/sql/<name>.sql` in one transaction and time it."""
    script = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    done: list[Statement] = []
    with connect(url) as conn:
        started = time.perf_counter()
        with conn.transaction():
            for text in statements(script):
                t0 = time.perf_counter()
                cur = conn.execute(text, params)
                done.append(Statement(text, time.perf_counter() - t0, cur.rowcount))
        total = time.perf_counter() - started
    return ScriptRun(name, total, tuple(done))


def prepare_minimise(url: str) -> None:
    """pgcrypto for the server-side HMAC (setup, not timed)."""
    with connect(url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
