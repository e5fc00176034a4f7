"""kill -9 during archive batches on MariaDB, then a rerun: each batch is wholly done or not,
and the archive files and the database agree (as tests/test_archive_crash.py on PostgreSQL).

`retention run` does not run on MariaDB yet: a child process does what a run's archive phase
does (reconcile the files no committed batch owns, then whole batches through `run_batch`, three
subjects each) and is killed while a file is being written or just after it was renamed.
"""

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

from retention.archive import catalog, restore
from retention.archive.storage import LocalStorage
from retention.archive.verify import verify
from retention.audit.trail import verify as audit_verify
from retention.engines import Connection, sql
from tests.archive_helpers import KeyPair, key_pair
from tests.engine_helpers import write_policy
from tests.test_actions_mariadb import SUBJECTS, _populate
from tests.test_archive_mariadb import POLICY, _extras

TABLES = ("people", "visits", "acts", "mails", "notes", "extras", "docs")
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from pathlib import Path
from uuid import uuid4

from retention.archive.reconcile import reconcile
from retention.archive.storage import LocalStorage
from retention.db import connect
from retention.settings import Settings
from tests.archive_helpers import KeyPair
from tests.test_archive_mariadb import _archive, _trail

url, schema, policy, folder, recipient = sys.argv[1:6]
with connect(Settings(), url=url) as conn:
    reconcile(conn, LocalStorage.open(Path(folder)), _trail(schema), schema, uuid4())
    _archive(conn, schema, Path(policy), Path(folder), KeyPair(None, recipient, Path()), batch=3)
"""


def _ids(conn: Connection) -> dict[str, set[int]]:
    return {t: {int(r[0]) for r in conn.execute(f"SELECT id FROM {t}")} for t in TABLES}


def _archived(
    conn: Connection, schema: str, folder: Path, keys: KeyPair
) -> Counter[tuple[str, int]]:
    """(table, id) of every row in a live archive segment, with multiplicity."""
    storage = LocalStorage(folder)
    found: Counter[tuple[str, int]] = Counter()
    for item in catalog.files(conn, schema):
        for segment in item.live_segments():
            manifest, inner = restore.open_segment(
                storage, restore.Found(item, segment), [keys.identity]
            )
            for table in manifest["tables"]:
                text = io.StringIO(inner[table["member"]].decode("utf-8"), newline="")
                for row in csv.DictReader(text):
                    found[(table["name"].split(".", 1)[1], int(row["id"]))] += 1
    return found


def _new_file(folder: Path, seen: set[str], want_temp: bool) -> bool:
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    fresh = names - seen
    seen |= names
    return any(n.endswith(".tmp") == want_temp for n in fresh)


def test_kill_9_during_archive_batches_then_rerun_on_mariadb(
    mariadb_conn: Connection, mariadb_url: str, tmp_path: Path
) -> None:
    from retention.store.schema import migrate

    rng = random.Random(20261205)
    _populate(mariadb_conn)
    _extras(mariadb_conn)
    schema = str(mariadb_conn.execute("SELECT DATABASE()").fetchone()[0]) + "_rt"
    migrate(mariadb_conn, schema)
    try:
        keys = key_pair(tmp_path / "keys")
        policy = write_policy(tmp_path / "policy", POLICY)
        folder = tmp_path / "archive"
        folder.mkdir()
        args = [mariadb_url, schema, str(policy), str(folder), keys.recipient]
        command = [sys.executable, "-c", CHILD, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
        original = _ids(mariadb_conn)
        kills = 0
        for attempt in range(5):
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            seen = {p.name for p in folder.rglob("*") if p.is_file()}
            skip = rng.randint(0, 2)
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
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert final.returncode == 0, final.stderr[-2000:]
        live = _ids(mariadb_conn)
        archived = _archived(mariadb_conn, schema, folder, keys)
        assert max(archived.values()) == 1, "a row is in two archives"
        for table, before in original.items():
            in_archive = {k for (t, k) in archived if t == table}
            assert not live[table] & in_archive, f"{table}: rows both live and archived"
            assert live[table] | in_archive == before, f"{table}: rows lost"
        assert {k for (t, k) in archived if t == "people"} == set(range(1, SUBJECTS + 1, 2))
        discarded = mariadb_conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE event = 'archive_reconciled' "
                "AND outcome = 'discarded'"
            ).format(sql.Identifier(schema, "audit"))
        ).fetchone()
        assert discarded is not None and discarded[0] >= 1
        report = verify(mariadb_conn, LocalStorage(folder), schema, [keys.identity])
        assert not report.problems, [p.what for p in report.problems]
        assert audit_verify(mariadb_conn, schema).intact
    finally:
        mariadb_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(schema)))
