"""Archiving the stale patients vs the floor: `COPY ... TO` a plain file plus the hand-written
DELETE, on two clones of the same template, in the same run (`python -m bench.archive`),
with the WAL each wrote (the server's, between the start and the end of each).

The floor (one transaction): the stale set of `bench/sql/purge.sql`, then for each of its
DELETE statements the same rows copied to a plain (unencrypted) file, then the DELETEs. The
engine: `retention run` with `dossier-medical` whose phase is `archive` at `retain_until` (the
same subjects), in short batches, encrypted to a throw-away age key, each file verified before
its batch commits. Both copies must end with the same rows (`measure`).

On MariaDB: `python -m bench.run --engine mariadb --only archive` (bench/mariadb.py), with this
module's policy and archive folder (`archive_setup`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyrage

from bench import checks
from bench.db import (
    DEFAULT_SERVER,
    SEED_PATIENTS,
    Template,
    checkpoint,
    clone,
    connect,
    drop_database,
    ensure_template,
)
from bench.engine import ROOT, EngineJob, run_engine
from bench.handwritten import SQL_DIR, statements
from retention.demo.keys import APPROVERS as DEMO_APPROVERS

_DELETE = re.compile(
    r"^DELETE\s+FROM\s+(\S+)\s+AS\s+(\S+)\s+USING\s+(.+?)\s+WHERE\s+(.+)$", re.DOTALL
)
_PHASES = re.compile(r"^phases:.*", re.MULTILINE | re.DOTALL)
# at retain_until, to archive the purge's subjects: `check` warns (such copies expire at the
# next run), as it should for a hospital's policy; the bench measures the archive's cost only
_ARCHIVE = """phases:
  - name: archivage
    due: retain_until
    action: archive
"""
APPROVERS = tuple(principal for principal, _ in DEMO_APPROVERS)  # the DIM physician, the director


ARCHIVE_TARGET = 1.5  # issue 17: the archive on PostgreSQL at most 1.5 times its floor
MARIADB_ARCHIVE_TARGET = 2.0  # issue 20: on MariaDB, at most twice its floor


@dataclass(frozen=True)
class ArchiveSetup:
    """What `retention run` needs to archive, in a throw-away folder: `dossier-medical` with its
    phase turned into `archive` at `retain_until` (the purge's subjects), the folder its files
    go to, and the public half of an age key whose private half is never kept."""

    policies: Path
    folder: Path
    recipient: str

    def environment(self) -> tuple[tuple[str, str], ...]:
        """The settings of the run (EngineJob.environment)."""
        return (
            ("RETENTION_ARCHIVE_DIR", str(self.folder)),
            ("RETENTION_ARCHIVE_RECIPIENTS", self.recipient),
        )

    def files(self) -> tuple[int, int]:
        """The archive files written, and their bytes."""
        found = list(self.folder.rglob("*.tar"))
        return len(found), sum(p.stat().st_size for p in found)


def archive_setup(work: Path) -> ArchiveSetup:
    """The policy and the archive folder under `work` (an empty folder of the caller's)."""
    policies = work / "policies"
    policies.mkdir()
    text = (ROOT / "policies" / "dossier-medical.yaml").read_text(encoding="utf-8")
    (policies / "dossier-medical.yaml").write_text(_PHASES.sub(_ARCHIVE, text), encoding="utf-8")
    folder = work / "archive"
    folder.mkdir()
    recipient = str(pyrage.x25519.Identity.generate().to_public())  # private key thrown away
    return ArchiveSetup(policies, folder, recipient)


@dataclass(frozen=True)
class WalUse:
    """What a measurement wrote to the server's WAL (the whole server's, nothing else runs)."""

    wal_bytes: int
    full_page_images: int | None  # pg_stat_wal, PostgreSQL 14 and later
    checkpoints: int | None  # requested and timed


def _wal_counters(server: str) -> tuple[str, int | None, int | None]:
    """(current WAL position, full-page images so far, checkpoints so far); None: not kept by
    this server's version."""

    def first(conn: psycopg.Connection[Any], *queries: str) -> Any:
        for query in queries:
            try:
                row = conn.execute(query).fetchone()
            except psycopg.Error:
                continue
            return row[0] if row else None
        return None

    with connect(server) as conn:
        lsn = first(conn, "SELECT pg_current_wal_lsn()::text")
        fpi = first(conn, "SELECT wal_fpi FROM pg_stat_wal")  # PostgreSQL 14 and later
        checkpoints = first(
            conn,
            "SELECT num_timed + num_requested FROM pg_stat_checkpointer",  # 17 and later
            "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
        )
    return str(lsn), fpi, checkpoints


@contextmanager
def wal_use(server: str) -> Iterator[list[WalUse]]:
    """The WAL written while the block runs, appended to the yielded list at its end."""
    found: list[WalUse] = []
    before = _wal_counters(server)
    yield found
    after = _wal_counters(server)
    with connect(server) as conn:
        row = conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (after[0], before[0])).fetchone()
    found.append(
        WalUse(
            int(row[0]) if row else 0,
            None if after[1] is None or before[1] is None else after[1] - before[1],
            None if after[2] is None or before[2] is None else after[2] - before[2],
        )
    )


@dataclass(frozen=True)
class ArchiveResult:
    patients: int
    subjects: int
    floor_seconds: float  # COPY to a plain file + hand-written DELETE, one transaction
    floor_copy_seconds: float
    floor_copy_bytes: int
    engine_seconds: float
    engine_exit: int
    archive_files: int
    archive_bytes: int
    rows: int
    same_result: bool
    floor_wal: WalUse
    engine_wal: WalUse

    @property
    def ratio(self) -> float:
        return self.engine_seconds / self.floor_seconds if self.floor_seconds else float("inf")


def floor(url: str, today: Any, out: Path) -> tuple[float, float, int]:
    """(total seconds, copy seconds, bytes copied) of COPY to a file + DELETE."""
    script = statements((SQL_DIR / "purge.sql").read_text(encoding="utf-8"))
    setup = [s for s in script if not s.startswith("DELETE")]
    deletes = [s for s in script if s.startswith("DELETE")]
    params = {"today": today}
    with connect(url) as conn, out.open("wb") as sink:
        started = time.perf_counter()
        with conn.transaction():
            for text in setup:
                conn.execute(text, params)
            copy_started = time.perf_counter()
            for text in deletes:
                found = _DELETE.match(text)
                assert found, text
                table, alias, using, where = found.groups()
                select = f"SELECT {alias}.* FROM {table} AS {alias}, {using} WHERE {where}"
                with conn.cursor().copy(f"COPY ({select}) TO STDOUT") as copy:
                    for chunk in copy:
                        sink.write(chunk)
            sink.flush()
            os.fsync(sink.fileno())
            copy_seconds = time.perf_counter() - copy_started
            for text in deletes:
                conn.execute(text, params)
        total = time.perf_counter() - started
    return total, copy_seconds, out.stat().st_size


def measure(
    server: str, template: Template, batch_size: int | None = None, keep: bool = False
) -> ArchiveResult:
    """The floor and `retention run` (archive) on two clones of `template`."""
    today = checks.legal_today()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    hand_db, engine_db = f"{template.name}_archive_sql", f"{template.name}_archive_engine"
    hand_url, engine_url = clone(server, template, hand_db), clone(server, template, engine_db)
    try:
        print("  archive: COPY to a file + hand-written DELETE ...", flush=True)
        with wal_use(server) as floor_wal:
            total, copy_seconds, copied = floor(hand_url, today, work / "copy.out")
        print(f"  archive: floor {total:.1f} s (COPY {copy_seconds:.1f} s); retention run ...")
        checkpoint(server)  # the floor's WAL is not the run's checkpoint to pay
        with wal_use(server) as engine_wal:
            engine, files, size = _engine(server, engine_db, work, batch_size)
        print(f"  archive: retention run {engine.seconds:.1f} s (exit {engine.returncode})")
        checks.warn_if_the_day_changed(today)
        same = checks.compare_purge(hand_url, engine_url)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not keep:
            with connect(server) as admin:
                drop_database(admin, hand_db)
                drop_database(admin, engine_db)
    return ArchiveResult(
        patients=template.patients,
        subjects=engine.subjects,
        floor_seconds=total,
        floor_copy_seconds=copy_seconds,
        floor_copy_bytes=copied,
        engine_seconds=engine.seconds,
        engine_exit=engine.returncode,
        archive_files=files,
        archive_bytes=size,
        rows=sum(engine.rows.values()),
        same_result=same.same,
        floor_wal=floor_wal[0],
        engine_wal=engine_wal[0],
    )


def _engine(server: str, dbname: str, work: Path, batch_size: int | None) -> tuple[Any, int, int]:
    setup = archive_setup(work)
    job = EngineJob(
        server, dbname, setup.policies, "dossier-medical", batch_size,
        work / "engine-archive.log", APPROVERS, environment=setup.environment(),
    )  # fmt: skip
    result = run_engine(job)
    return result, *setup.files()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure N times, each on fresh copies, and give every ratio and their median (a "
        "machine of two shared cores varies by 15-25%% from one run to the next)",
    )
    args = parser.parse_args(argv)
    patients = round(SEED_PATIENTS * args.scale)
    today = checks.legal_today()
    template = ensure_template(args.server, patients, today)
    results = []
    for index in range(max(1, args.repeat)):
        if args.repeat > 1:
            print(f"run {index + 1} of {args.repeat}", flush=True)
        result = measure(args.server, template, args.batch_size)
        _print(result)
        results.append(result)
    if len(results) > 1:
        ratios = [r.ratio for r in results]
        print(
            f"ratios: {', '.join(f'{r:.2f}' for r in ratios)}; median "
            f"{statistics.median(ratios):.2f} (target at most {ARCHIVE_TARGET})"
        )
    return 0 if all(r.same_result and r.engine_exit == 0 for r in results) else 1


def _print(result: ArchiveResult) -> None:
    for key, value in asdict(result).items():
        print(f"  {key}: {value}")
    print(f"  ratio (retention / floor): {result.ratio:.2f} (target at most {ARCHIVE_TARGET})")
    for label, wal in (("floor", result.floor_wal), ("retention", result.engine_wal)):
        print(
            f"  WAL written, {label}: {wal.wal_bytes / 1e6:,.0f} MB, full-page images "
            f"{wal.full_page_images if wal.full_page_images is not None else '?'}, "
            f"checkpoints {wal.checkpoints if wal.checkpoints is not None else '?'}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
