"""kill -9 at random instants, then a rerun: the same final state as a run never interrupted,
nothing lost, nothing done twice, and an intact audit trail."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import psycopg

from tests.engine_helpers import cli_env
from tests.fix_db import DemoTemplate, temporary_database

TABLES_SQL = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"


def _env(url: str) -> dict[str, str]:
    return cli_env(url, RETENTION_BATCH_SIZE="3", RETENTION_LOCK_WAIT_SECONDS="30")


def _start(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "retention.cli.main",
            "run",
            "--yes",
            "--allow-large",
            "--reason",
            "crash test",
        ],
        env=_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fingerprint(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(TABLES_SQL)]
        out = {}
        for table in tables:
            row = conn.execute(
                f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                f"FROM {table} x"
            ).fetchone()
            out[table] = str(row[0] if row else "")
        return out


def _batches(url: str) -> tuple[Counter[tuple[str, str]], list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT policy, phase, subject_digests FROM retention.audit WHERE event = 'batch'"
        ).fetchall()
    subjects: Counter[tuple[str, str]] = Counter()
    digests: list[str] = []
    for policy, phase, found in rows:
        subjects[(policy, phase)] += len(found)
        digests += [f"{policy}/{d}" for d in found]
    return subjects, digests


def _count(conn: psycopg.Connection[Any]) -> int:
    """Batch entries committed so far (0 before the tool's schema exists)."""
    exists = conn.execute("SELECT to_regclass('retention.audit') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        return 0
    row = conn.execute("SELECT count(*) FROM retention.audit WHERE event = 'batch'").fetchone()
    return int(row[0]) if row else 0


def test_kill_9_at_random_points_then_rerun(pg_admin_url: str, demo_template: DemoTemplate) -> None:
    rng = random.Random(20261128)
    with (
        temporary_database(pg_admin_url, demo_template.dbname) as clean,
        temporary_database(pg_admin_url, demo_template.dbname) as killed,
        psycopg.connect(killed, autocommit=True) as watch,
    ):
        reference = _start(clean)
        _, err = reference.communicate(timeout=300)
        assert reference.returncode == 0, err
        total = len(_batches(clean)[1])
        kills = 0
        for _ in range(4):
            process = _start(killed)
            # Wait until a random number of further batches has committed, then kill at once or
            # a few milliseconds later: anywhere inside a batch or between two.
            target = _count(watch) + rng.randint(1, 25)
            while process.poll() is None and _count(watch) < target:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.02))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.communicate(timeout=60)
        assert kills >= 2, "the run finished before it could be killed"
        assert 0 < _count(watch) < total
        final = _start(killed)
        _, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
        assert _fingerprint(killed) == _fingerprint(clean)
        done_clean, _ = _batches(clean)
        done_killed, digests_killed = _batches(killed)
        assert done_killed == done_clean  # nothing lost, nothing done twice
        assert len(digests_killed) == len(set(digests_killed))
        verify = subprocess.run(
            [sys.executable, "-m", "retention.cli.main", "audit", "verify"],
            env=_env(killed),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verify.returncode == 0, verify.stdout
        outcomes = Counter(r[0] for r in watch.execute("SELECT outcome FROM retention.runs"))
        assert outcomes["abandoned"] == kills  # each killed run was found and closed
        assert outcomes["running"] == 0
