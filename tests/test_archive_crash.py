"""kill -9 between writing an archive and committing its delete, then a rerun: no row lost,
no row both live and archived or archived twice, files reconciled and audited."""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pyrage
from psycopg import sql

from retention.archive import catalog, restore
from retention.archive.storage import LocalStorage
from retention.demo.schema import TABLES
from tests.archive_helpers import archive_policies, key_pair
from tests.engine_helpers import AUDIT_KEY, PSEUDONYM_KEY
from tests.fix_db import DemoTemplate, temporary_database
from tests.key_helpers import AUDIT_SIGNING_KEY


def _env(url: str, policies: Path, folder: Path, recipient: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env.update(
        RETENTION_DATABASE_URL=url,
        RETENTION_AUDIT_KEY=AUDIT_KEY,
        RETENTION_AUDIT_SIGNING_KEY=AUDIT_SIGNING_KEY,
        RETENTION_PSEUDONYM_KEY=PSEUDONYM_KEY,
        RETENTION_POLICIES_DIR=str(policies),
        RETENTION_ARCHIVE_DIR=str(folder),
        RETENTION_ARCHIVE_RECIPIENTS=recipient,
        RETENTION_BATCH_SIZE="3",
        RETENTION_LOCK_WAIT_SECONDS="30",
        RETENTION_REQUIRED_APPROVALS="0",
    )
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "retention.cli.main", *args]


def _keys(conn: psycopg.Connection[Any]) -> dict[str, set[int]]:
    """Primary keys of every demo table (each has a serial key as its first column)."""
    out = {}
    for table in TABLES:
        column = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (table,),
        ).fetchone()
        assert column is not None
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.Identifier(column[0]), sql.Identifier(table)
        )
        out[f"public.{table}"] = {r[0] for r in conn.execute(query)}
    return out


def _archived_keys(
    conn: psycopg.Connection[Any], folder: Path, identity: pyrage.x25519.Identity
) -> Counter[tuple[str, int]]:
    """(table, primary key) of every row in a live archive segment, with multiplicity."""
    storage = LocalStorage(folder)
    found: Counter[tuple[str, int]] = Counter()
    for item in catalog.files(conn, "retention"):
        for segment in item.live_segments():
            manifest, inner = restore.open_segment(
                storage, restore.Found(item, segment), [identity]
            )
            for table in manifest["tables"]:
                pk = table["primary_key"][0]
                text = io.StringIO(inner[table["member"]].decode("utf-8"), newline="")
                for row in csv.DictReader(text):
                    found[(table["name"], int(row[pk]))] += 1
    return found


def _new_file(folder: Path, seen: set[str], want_temp: bool) -> bool:
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    fresh = names - seen
    seen |= names
    return any(n.endswith(".tmp") == want_temp for n in fresh)


def test_kill_9_between_write_and_delete_then_rerun(
    pg_admin_url: str, demo_template: DemoTemplate, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    keys = key_pair(tmp_path / "keys")
    # no group expires during the test: every row is either live or in an archive
    policies = archive_policies(tmp_path / "policies", retain_until="derniere_venue + 100 years")
    folder = tmp_path / "archive"
    folder.mkdir()
    with (
        temporary_database(pg_admin_url, demo_template.dbname) as url,
        psycopg.connect(url, autocommit=True) as watch,
    ):
        env = _env(url, policies, folder, keys.recipient)
        original = _keys(watch)
        kills = 0
        for attempt in range(5):
            process = subprocess.Popen(
                _command("run", "--yes", "--allow-large", "--reason", "crash test"),
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            seen = {p.name for p in folder.rglob("*") if p.is_file()}
            # Wait for the writing of a file (even attempts) or its rename (odd attempts), a
            # random number of files into the run, then kill at once or a moment later.
            skip = rng.randint(0, 6)
            while process.poll() is None:
                if _new_file(folder, seen, want_temp=attempt % 2 == 0):
                    if skip == 0:
                        break
                    skip -= 1
                time.sleep(0.0005)
            time.sleep(rng.choice([0, 0, rng.uniform(0, 0.01)]))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.communicate(timeout=120)
        assert kills >= 3, "the runs finished before they could be killed"
        final = subprocess.run(
            _command("run", "--yes", "--allow-large", "--reason", "crash test"),
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert final.returncode == 0, final.stderr[-2000:]
        live = _keys(watch)
        archived = _archived_keys(watch, folder, keys.identity)
        assert max(archived.values()) == 1, "a row is in two archives"
        for table, before in original.items():
            in_archive = {k for (t, k) in archived if t == table}
            assert not live[table] & in_archive, f"{table}: rows both live and archived"
            assert live[table] | in_archive == before, f"{table}: rows lost"
        assert sum(1 for t, _ in archived if t == "public.patients") > 100
        discarded = watch.execute(
            "SELECT count(*) FROM retention.audit WHERE event = 'archive_reconciled' "
            "AND outcome = 'discarded'"
        ).fetchone()
        assert discarded is not None and discarded[0] >= 1
        for check in (["audit", "verify"], ["archive", "verify"]):
            done = subprocess.run(
                _command(*check), env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, done.stdout + done.stderr
