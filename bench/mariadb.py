"""The purge, minimisation and archive benchmark on MariaDB (issue 20): `python -m bench.run
--engine mariadb [--scale 0.25[,1.0]] [--only purge,pseudo,archive] [--server
mariadb://root@127.0.0.1:3306/]`.

The same measurements as on PostgreSQL (`bench/run.py`), with MariaDB's own pieces:

- **Template**: `rt_bench_tpl_<patients>`, the demo hospital built by the tool's own loader
  (`retention.demo.schema.create_schema` + `retention.demo.generate.generate`, MariaDB's DDL and
  bulk load) from the same seed as PostgreSQL's template, so the same rows. What it holds is
  kept in the database's COMMENT (patients, seed, day, counts) and checked before reuse.
- **Clone** (untimed): no `CREATE DATABASE ... TEMPLATE` on MariaDB. Per table `CREATE TABLE
  LIKE` (columns, keys, secondary indexes; not the foreign keys), the secondary indexes dropped,
  `INSERT ... SELECT` into the empty table, then the demo loader's own `add_constraints` (each
  table's indexes built sorted in one ALTER, the foreign keys added in place, every one checked)
  and `ANALYZE TABLE`. The copy's `SHOW CREATE TABLE` must equal the template's. Each copy is
  made just before the work that uses it, and the dirty pages it left are flushed first
  (`_settle`), so that neither side starts with the other's copy in the buffer pool.
- **Hand-written SQL**: `bench/sql/mariadb/*.sql`, the same work as `bench/sql/*.sql`, on one
  connection in one transaction (READ COMMITTED, as the tool's sessions), each statement timed.
  As on PostgreSQL, the hand side is one script on one connection, whatever `retention`'s
  `workers` (its batches run side by side on MariaDB too since `disjoint_batch_locks` became
  True there).
- **retention run**: the real command as a subprocess on the other copy, the tool's own tables
  in a database of their own (`RETENTION_SCHEMA_NAME=<copy>_tool`). The purge and the archive
  are signed beforehand by their approvers (`retention approve`, untimed), as on PostgreSQL:
  the run checks their signatures and walks the chain to them.
- **Transactions**: MariaDB has no `pg_stat_activity.xact_start`, and performance_schema is off
  on these servers. `MariaDBMonitor` polls `information_schema.INNODB_TRX` (the threads whose
  PROCESSLIST database is the copy) from a thread every 150 ms: InnoDB refreshes that table's
  cache only when it was not read for 100 ms (polled every 20 ms, as pg_stat_activity is, it
  showed one transaction for the whole run). A transaction is seen from a poll to a poll: its
  length is the span between its first and last sightings, a lower bound; that span plus two
  polling intervals (and a poll's latency) is an upper bound. A transaction is classified by
  the statements INNODB_TRX shows it running (`trx_query`). The audit entries' times
  (`recorded_at`, taken as each batch writes its entry, its last statement before COMMIT) give
  a second reading: the time from the previous batch's entry (or the pass's start) to a batch's
  entry bounds that batch's transaction up to its entry, its COMMIT (an fsync) not included
  (`_batch_spacing`), when batches run one after the other (`RETENTION_WORKERS=1`); with
  several workers their entries interleave and INNODB_TRX's reading is the one to use.
- **Same result**: every table's row count and `CHECKSUM TABLE`, and the digest of the patient
  ids left (purge); the same patients pseudonymised, the same contacts erased, the other
  patients' names and contacts untouched (minimisation).
- **Archive** (`--only archive`, issue 20: at most 2x), bench/archive.py's measurement on
  MariaDB. The floor: `purge.sql` on one connection in one transaction, where just before its
  DELETEs the rows each of them removes (`SELECT ... FROM <the DELETE's joins>`) are made into
  lines of COPY's text format by the server (each column `CAST` to text, tab-separated,
  `\\N` for NULL, the separators escaped), read through an unbuffered cursor and written by this
  process to a plain, unencrypted file, flushed to disk; then the DELETEs. This client-side
  stream is the equivalent of the PostgreSQL floor's `COPY (...) TO STDOUT`: the server writes
  the text, the rows cross the protocol into a file of the client, as the tool's archive's do.
  Not `SELECT ... INTO OUTFILE`: it writes on the server's host (the same machine here, not in
  general), as the server's system user, only into `secure_file_priv`'s folder, and needs the
  FILE privilege, which the tool never asks for; a floor that skips the protocol and the client
  does less than any archive written where the tool runs. The text is made by the server
  because Python is slower at it: the driver's values turned into text here took 3 to 4 times
  as long (prescription_lignes at 15,178 patients: 1.3 s against 0.35 s, the fetch alone
  0.12-0.16 s; the same bytes). The copy's own seconds are reported apart.
  `retention run` archives on the other copy with bench/archive.py's `archive_setup`
  (`dossier-medical` whose phase is `archive`, encrypted to a throw-away age key, each file
  verified before its batch commits), its tables in their own database as for the purge; both
  copies must end as `compare_purge` says.
- **InnoDB's purge** (`purge_lag`): a DELETE or UPDATE leaves delete-marked records and old
  row versions that InnoDB's background threads remove from every index after the COMMIT.
  The hand script's single transaction leaves all of it for after its end; the tool's
  batches commit all along and their purge runs during the run, in its measured time. After
  each side the bench waits until `Innodb_history_list_length` is 0 and reports each side's
  time with it too (measured at 189,728 patients: the hand purge 14.9 s, then 9.5 s of the
  server's purge writing 28,500 more pages; `retention run` 21.2 s, then none). The main table
  keeps the times without it.
- **Redo**, the analogue of PostgreSQL's WAL (binlog is off on these servers, `log_bin` 0):
  for each side, the delta of `Innodb_lsn_current` (the redo generated) and of
  `Innodb_os_log_written` (the bytes written to the log file), the server's whole: another
  client's writes in the meantime count too (`redo_use`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import checks
from bench.archive import MARIADB_ARCHIVE_TARGET, ArchiveSetup, archive_setup
from bench.engine import (
    PSEUDONYM_KEY,
    ROOT,
    EngineJob,
    EngineRun,
    Event,
    _bytecode,
    _log_events,
    _spawn_and_wait,
    approve,
    init,
)
from bench.handwritten import ScriptRun, Statement, statements
from bench.monitor import BATCH, EXPOSURE, OTHER, PLAN, SNAPSHOT, XactStats
from bench.report import Result, code_state, machine, render
from bench.run import MEASUREMENTS, PURGE_APPROVERS, Measurement, result_of, wait_for_quiet
from retention.demo.tables import LOAD_ORDER, TABLES
from retention.engines.mariadb.session import database_url
from retention.engines.mariadb.target import parse_url

SEED_PATIENTS = 758_912
SEED = 42  # bench/db.py's: the same rows as PostgreSQL's template
DEFAULT_SERVER = "mariadb://root@127.0.0.1:3306/"
PREFIX = "rt_bench_"
SQL_DIR = Path(__file__).resolve().parent / "sql" / "mariadb"
DATA = Path(__file__).resolve().parent / "data"
_NAME = re.compile(r"[a-z0-9_]{1,64}")


# -- connections ------------------------------------------------------------------------------


def _driver() -> Any:
    import mariadb

    return mariadb


def raw_connect(url: str, *, autocommit: bool = True) -> Any:
    """A plain driver connection (no layer of the tool in the measured path): utf8mb4, UTC, the
    tool's sql_mode is not needed by these scripts; affected rows count matched rows, as the
    tool's sessions do (CLIENT.FOUND_ROWS)."""
    from mariadb.constants import CLIENT

    conn = _driver().connect(
        **parse_url(url).driver_kwargs(),
        autocommit=autocommit,
        client_flag=CLIENT.FOUND_ROWS,
        local_infile=False,
    )
    cur = conn.cursor()
    cur.execute("SET NAMES utf8mb4")
    cur.execute("SET SESSION time_zone = '+00:00'")
    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cur.close()
    return conn


@contextmanager
def connect(url: str) -> Iterator[Any]:
    conn = raw_connect(url)
    try:
        yield conn
    finally:
        conn.close()


def _rows(conn: Any, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(query, params) if params is not None else cur.execute(query)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def _run(conn: Any, query: str, params: Any = None) -> int:
    cur = conn.cursor()
    try:
        cur.execute(query, params) if params is not None else cur.execute(query)
        if cur.description:
            cur.fetchall()
        return int(cur.rowcount)
    finally:
        cur.close()


def _q(name: str) -> str:
    """A benchmark database or table name, quoted (our own names: checked, never a value)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"unexpected name {name!r}")
    return f"`{name}`"


def drop_database(admin: Any, name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a benchmark database")
    _run(admin, f"DROP DATABASE IF EXISTS {_q(name)}")


# -- the template and its copies --------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A generated database and what it holds (bench/db.py's, on MariaDB)."""

    name: str
    patients: int
    counts: dict[str, int]
    generated_on: date
    size_bytes: int
    built_seconds: float | None  # None when reused


def table_counts(conn: Any, database: str) -> dict[str, int]:
    return {
        t: int(_rows(conn, f"SELECT COUNT(*) FROM {_q(database)}.{_q(t)}")[0][0]) for t in TABLES
    }


def _size(admin: Any, name: str) -> int:
    row = _rows(
        admin,
        "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = ?",
        (name,),
    )
    return int(row[0][0])


def _meta(admin: Any, name: str) -> dict[str, Any] | None:
    found = _rows(
        admin,
        "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        (name,),
    )
    if not found or not found[0][0]:
        return None
    try:
        meta = json.loads(found[0][0])
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


def _reusable(server: str, name: str, patients: int) -> Template | None:
    with connect(server) as admin:
        meta = _meta(admin, name)
        if meta is None or meta.get("patients") != patients or meta.get("seed") != SEED:
            return None
        try:
            counts = table_counts(admin, name)
        except _driver().Error:
            return None
        size = _size(admin, name)
    if counts != meta.get("counts"):
        return None
    return Template(name, patients, counts, date.fromisoformat(str(meta["today"])), size, None)


def _build(server: str, name: str, patients: int, today: date) -> Template:
    """The demo hospital by the tool's own MariaDB loader, from bench/db.py's seed."""
    from retention.db import connect as tool_connect
    from retention.demo.generate import generate
    from retention.demo.schema import create_schema
    from retention.settings import Settings

    started = time.monotonic()
    with connect(server) as admin:
        drop_database(admin, name)
        _run(admin, f"CREATE DATABASE {_q(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    with tool_connect(Settings(), url=database_url(server, name)) as conn:
        create_schema(conn)
        stats = generate(conn, patients=patients, seed=SEED, today=today)
    with connect(server) as admin:
        counts = table_counts(admin, name)
        if counts != stats.counts():
            raise RuntimeError(f"generated counts {stats.counts()} differ from table rows {counts}")
        meta = {"patients": patients, "seed": SEED, "today": today.isoformat(), "counts": counts}
        _run(admin, f"ALTER DATABASE {_q(name)} COMMENT = ?", (json.dumps(meta),))
        size = _size(admin, name)
    return Template(name, patients, counts, today, size, time.monotonic() - started)


def ensure_template(server: str, patients: int, today: date) -> Template:
    """`rt_bench_tpl_<patients>`, reused when intact, generated otherwise."""
    name = f"{PREFIX}tpl_{patients}"
    return _reusable(server, name, patients) or _build(server, name, patients, today)


def _create_table(conn: Any, database: str, table: str) -> str:
    text = str(_rows(conn, f"SHOW CREATE TABLE {_q(database)}.{_q(table)}")[0][1])
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)


def clone(server: str, template: Template, name: str) -> tuple[str, float]:
    """A fresh copy of the template (module docstring); its URL and the seconds it took."""
    from retention.db import connect as tool_connect
    from retention.demo.mariadb import add_constraints, drop_constraints
    from retention.settings import Settings

    started = time.monotonic()
    tpl = template.name
    with connect(server) as admin:
        drop_database(admin, name)
        _run(admin, f"CREATE DATABASE {_q(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        for table in TABLES:
            _run(admin, f"CREATE TABLE {_q(name)}.{_q(table)} LIKE {_q(tpl)}.{_q(table)}")
    url = database_url(server, name)
    with tool_connect(Settings(), url=url) as conn:
        drop_constraints(conn)  # secondary indexes: built sorted, once, after the rows
    with connect(url) as conn:
        _run(conn, "SET SESSION foreign_key_checks = 0, SESSION unique_checks = 0")
        for table in LOAD_ORDER:
            _run(conn, f"INSERT INTO {_q(table)} SELECT * FROM {_q(tpl)}.{_q(table)}")
    with tool_connect(Settings(), url=url) as conn:
        add_constraints(conn)  # the template's indexes and foreign keys, each checked
    with connect(url) as conn:
        _rows(conn, "ANALYZE TABLE " + ", ".join(_q(t) for t in TABLES))
        for table in TABLES:
            if _create_table(conn, name, table) != _create_table(conn, tpl, table):
                raise RuntimeError(f"the copy of {table} differs from the template's")
    _settle(url)
    return url, time.monotonic() - started


def _settle(url: str) -> None:
    """The copy's dirty pages written to disk, as bench/db.py's CHECKPOINT does on PostgreSQL,
    so that the copy's writes are not charged to the measurement: `FLUSH TABLES ... FOR EXPORT`
    flushes the named tables' pages (the server's other databases are not waited for)."""
    with connect(url) as conn:
        _run(conn, "FLUSH TABLES " + ", ".join(_q(t) for t in TABLES) + " FOR EXPORT")
        _run(conn, "UNLOCK TABLES")


# -- the hand-written side --------------------------------------------------------------------


def _hmac_pads(key_hex: str) -> dict[str, str]:
    """HMAC-SHA-256's inner and outer padded keys (hex) for the server-side HMAC."""
    key = bytes.fromhex(key_hex)
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return {
        "ikey": bytes(b ^ 0x36 for b in key).hex(),
        "okey": bytes(b ^ 0x5C for b in key).hex(),
    }


def run_script(
    url: str, name: str, params: dict[str, Any], copy_to: Path | None = None
) -> ScriptRun:
    """Run `bench/sql/mariadb/<name>.sql` in one transaction on one connection, timed. With
    `copy_to` (the archive's floor), the rows its DELETEs remove are first written to that
    file, in the same transaction, just before the first DELETE (`_copy_rows`)."""
    script = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    texts = statements(script)
    done: list[Statement] = []
    conn = raw_connect(url, autocommit=False)
    try:
        cur = conn.cursor()
        started = time.perf_counter()
        cur.execute("START TRANSACTION")
        for text in texts:
            used = {k: v for k, v in params.items() if f"%({k})s" in text}
            if copy_to is not None and text.startswith("DELETE"):
                done += _copy_rows(conn, [t for t in texts if t.startswith("DELETE")], copy_to)
                copy_to = None
            t0 = time.perf_counter()
            cur.execute(text, used) if used else cur.execute(text)
            done.append(Statement(text, time.perf_counter() - t0, int(cur.rowcount)))
        conn.commit()
        total = time.perf_counter() - started
        cur.close()
    finally:
        conn.close()
    return ScriptRun(name, total, tuple(done))


_DELETE = re.compile(r"^DELETE\s+(\w+)\s+FROM\s+(\w+)\s+AS\s+(\w+)\s+(.+)$", re.DOTALL)
COPY_SYNC = "fsync of the copy"  # the label of the floor's last copy step
_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_COLUMNS = (
    "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS"
    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
)


def _char(code: int) -> str:
    """One character in SQL, whatever `sql_mode` says of backslashes."""
    return f"CHAR({code} USING utf8mb4)"


def _as_text(alias: str, column: str, data_type: str) -> str:
    """A column's value as COPY's text format writes it, made by the server: NULL as `\\N`,
    bytes as `\\\\x` and hexadecimal, backslash, tab, newline and carriage return escaped."""
    bs = _char(92)
    name = f"{_q(alias)}.{_q(column)}"
    if data_type in _BINARY:
        value = f"CONCAT({bs}, {bs}, 'x', LOWER(HEX({name})))"
    else:
        value = f"CAST({name} AS CHAR)"
        for code, escaped in ((92, bs), (9, "'t'"), (10, "'n'"), (13, "'r'")):
            value = f"REPLACE({value}, {_char(code)}, CONCAT({bs}, {escaped}))"
    return f"COALESCE({value}, CONCAT({bs}, 'N'))"


def _copy_rows(conn: Any, deletes: list[str], path: Path) -> list[Statement]:
    """The floor's copy (module docstring): for each `DELETE <alias> FROM <table> AS <alias>
    <joins>`, the rows of `SELECT <each column as text, tab-separated> FROM <table> AS <alias>
    <joins>` read through an unbuffered cursor and written to `path`, one line each; then the
    file flushed to disk. Each step timed as a statement (the column list read included)."""
    done: list[Statement] = []
    with path.open("wb") as sink:
        for text in deletes:
            found = _DELETE.match(text)
            if found is None or found[1] != found[3]:
                raise ValueError(f"not a DELETE <alias> FROM <table> AS <alias>: {text[:60]!r}")
            alias, table, _, joins = found.groups()
            t0 = time.perf_counter()
            columns = ", ".join(_as_text(alias, c, t) for c, t in _rows(conn, _COLUMNS, (table,)))
            select = f"SELECT CONCAT_WS({_char(9)}, {columns}) FROM {_q(table)} AS {alias} {joins}"
            cur = conn.cursor(buffered=False)
            try:
                cur.execute(select)
                count = 0
                while rows := cur.fetchmany(10_000):
                    sink.write("".join(f"{row[0]}\n" for row in rows).encode())
                    count += len(rows)
            finally:
                cur.close()
            label = f"SELECT {alias}.* FROM {table} AS {alias} {joins}"  # what it reads
            done.append(Statement(label, time.perf_counter() - t0, count))
        t0 = time.perf_counter()
        sink.flush()
        os.fsync(sink.fileno())
        done.append(Statement(COPY_SYNC, time.perf_counter() - t0, 0))
    return done


# -- the redo log, the analogue of the WAL ----------------------------------------------------


@dataclass(frozen=True)
class RedoUse:
    """What InnoDB's redo log took while a side ran: the whole server's (other clients'
    writes count too), binlog off on these servers (`log_bin` 0)."""

    lsn_bytes: int  # Innodb_lsn_current's delta: the redo generated
    written_bytes: int  # Innodb_os_log_written's delta: the bytes written to the log file


_REDO = (
    "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
    " WHERE VARIABLE_NAME IN ('INNODB_LSN_CURRENT', 'INNODB_OS_LOG_WRITTEN')"
)


def _redo_counters(server: str) -> tuple[int, int]:
    with connect(server) as admin:
        found = {str(k).upper(): int(v) for k, v in _rows(admin, _REDO)}
    return found["INNODB_LSN_CURRENT"], found["INNODB_OS_LOG_WRITTEN"]


@contextmanager
def redo_use(server: str) -> Iterator[list[RedoUse]]:
    """The redo written while the block runs, appended to the yielded list at its end
    (bench/archive.py's wal_use on MariaDB)."""
    found: list[RedoUse] = []
    lsn, written = _redo_counters(server)
    yield found
    lsn_after, written_after = _redo_counters(server)
    found.append(RedoUse(lsn_after - lsn, written_after - written))


def purge_lag(server: str, timeout: float = 900.0) -> float:
    """Seconds until InnoDB has purged every committed change (`Innodb_history_list_length`
    back to 0), polled every 0.2 s: the old row versions and delete-marked records a side left
    behind, which background threads remove from every index after its COMMIT. The hand
    script's one transaction leaves all of it for after its end (1.41 M records at 189,728
    patients: 9.5 s more, 28,500 pages written), the tool's batches commit all along and
    their purge runs during the run: both sides' ends are measured with it too."""
    started = time.perf_counter()
    with connect(server) as conn:
        while time.perf_counter() - started < timeout:
            row = _rows(conn, "SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")
            if row and int(row[0][1]) == 0:
                break
            time.sleep(0.2)
    return time.perf_counter() - started


# -- transactions, from INNODB_TRX ------------------------------------------------------------

_MARKERS: tuple[tuple[str, str], ...] = (  # first match wins; statement prefixes as seen
    (OTHER, "`runs` SET"),
    (EXPOSURE, "retention_exposure"),  # the exposure snapshot after the run (report trend)
    (SNAPSHOT, "retention_due"),  # the due set, autocommit (CREATE TEMPORARY TABLE ... AS)
    (BATCH, "would_be_due"),  # the locked re-check
    (BATCH, "FOR UPDATE"),
    (BATCH, "retention_records"),  # a batch's rows, found once through their links
    (BATCH, "retention_archive_keys"),  # an archive batch's row keys
    (BATCH, "JSON_TABLE("),  # a batch's keys
    (BATCH, "DELETE "),
    (BATCH, "UPDATE `"),
    (BATCH, "retention_pseudonyms"),
    # a batch seen only while it waits for the trail's lock, writes its entry or stages values
    # (batches side by side: the other worker holds the lock until its commit)
    (BATCH, "GET_LOCK("),
    (BATCH, "`audit`"),
    (BATCH, "retention_writeback"),
    (BATCH, "archive_segment"),
    (BATCH, "archive_files"),
)
_PRIORITY = {EXPOSURE: 4, PLAN: 3, SNAPSHOT: 2, BATCH: 1, OTHER: 0}
# Two queries, matched here: joined in SQL, INNODB_TRX and PROCESSLIST gave no row (10.11.19).
_THREADS = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?"
_TRX = """
SELECT trx_mysql_thread_id, trx_id, trx_started, trx_rows_modified, trx_is_read_only,
       COALESCE(trx_query, ''), UNIX_TIMESTAMP(NOW(6))
FROM information_schema.INNODB_TRX
"""


def classify(query: str) -> str:
    for kind, marker in _MARKERS:
        if marker in query:
            return kind
    return OTHER


@dataclass
class Trx:
    """One InnoDB transaction seen open."""

    thread: int
    trx_id: int
    started: datetime  # whole seconds (INNODB_TRX)
    first_seen: float  # server epoch
    last_seen: float
    last_poll: int
    kind: str = OTHER
    wrote: bool = False
    queries: list[str] = field(default_factory=list)
    marked: bool = False  # a statement of a known kind seen (OTHER's own marker included)

    @property
    def seconds(self) -> float:
        return self.last_seen - self.first_seen


@dataclass
class MariaDBMonitor:
    """Polls INNODB_TRX for the copy's connections until stopped (module docstring)."""

    server: str
    dbname: str
    interval: float = 0.15  # > 0.1 s: INNODB_TRX's cache is refreshed only after 0.1 s unread
    trxs: list[Trx] = field(default_factory=list)
    polls: int = 0
    _open: dict[int, Trx] = field(default_factory=dict)  # by thread: its latest transaction
    _batchers: set[int] = field(default_factory=set)  # threads seen running a batch
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self, ready: threading.Event) -> None:
        with connect(self.server) as conn:
            ready.set()
            while not self._stop.is_set():
                threads = {int(row[0]) for row in _rows(conn, _THREADS, (self.dbname,))}
                rows = _rows(conn, _TRX) if threads else []
                self.polls += 1
                for thread, trx_id, started, modified, read_only, query, now in rows:
                    if int(thread) not in threads:
                        continue
                    self._observe(
                        int(thread),
                        int(trx_id),
                        started,
                        float(now),
                        bool(modified) or not read_only,
                        str(query),
                    )
                time.sleep(self.interval)

    def _observe(
        self, thread: int, trx_id: int, started: datetime, now: float, wrote: bool, query: str
    ) -> None:
        trx = self._open.get(thread)
        if trx is None:
            continues = False
        elif trx_id and trx.trx_id == trx_id:
            continues = trx.started == started  # a read-write transaction's id is unique
        else:
            # a read-only transaction shows 0 (the session's next one too) until it writes or
            # locks and gets an id: the same one only if seen at the previous poll, same start
            continues = (
                0 in (trx_id, trx.trx_id)
                and trx.started == started
                and trx.last_poll == self.polls - 1
            )
        if trx is None or not continues:
            trx = Trx(thread, trx_id, started, now, now, self.polls)
            self._open[thread] = trx
            self.trxs.append(trx)
        trx.trx_id = trx_id or trx.trx_id
        trx.last_seen, trx.last_poll = now, self.polls
        trx.wrote = trx.wrote or wrote
        short = " ".join(query.split())[:120]
        if short and short not in trx.queries:
            trx.queries.append(short)
        kind = classify(query)
        trx.marked = trx.marked or any(marker in query for _, marker in _MARKERS)
        if kind == BATCH:
            self._batchers.add(thread)
        if (
            kind == OTHER
            and not trx.wrote
            and query.lstrip().upper().startswith(("SELECT", "WITH"))
        ):
            kind = PLAN  # a read-only snapshot reading the clock
        if _PRIORITY[kind] > _PRIORITY[trx.kind]:
            trx.kind = kind

    def _kind(self, trx: Trx) -> str:
        """A writing transaction of a thread that ran batches, never seen running a statement
        of a known kind, is a batch seen only between its statements or in its last ones (an
        archive batch writing and checking its file, its catalogue rows, its audit entry):
        with batches of a few tenths of a second, polled every 0.15 s, most of them were
        (596 'other' transactions for 2,329 batches at 189,728 patients)."""
        if trx.kind == OTHER and trx.wrote and not trx.marked and trx.thread in self._batchers:
            return BATCH
        return trx.kind

    def summary(self) -> dict[str, XactStats]:
        kinds = (PLAN, SNAPSHOT, BATCH, EXPOSURE, OTHER)
        return {
            k: XactStats.of([t.seconds for t in self.trxs if self._kind(t) == k]) for k in kinds
        }

    def listing(self) -> list[tuple[str, float, bool, list[str]]]:
        return [(self._kind(t), round(t.seconds, 3), t.wrote, t.queries) for t in self.trxs]


# -- retention run ----------------------------------------------------------------------------


def _audit(url: str, tool_db: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        found = _rows(
            conn,
            f"SELECT event, recorded_at, phase, subjects, `rows` FROM {_q(tool_db)}.audit"
            " ORDER BY seq",
        )
    return [
        {
            "event": e,
            "at": at.replace(tzinfo=UTC),
            "phase": ph,
            "subjects": s,
            "rows": json.loads(r) if r else {},
        }
        for e, at, ph, s, r in found
    ]


def _batch_spacing(
    entries: list[dict[str, Any]], events: list[Event], epoch: float
) -> tuple[float, ...]:
    """Seconds between a batch's audit entry and the one before it, whatever its phase (a
    batch of a pass of several phases writes one entry per phase, milliseconds apart), or the
    start of its pass: each batch's transaction, up to its entry, lasted at most that long."""
    starts = sorted(e.at for e in events if "to process" in e.what)
    periods: list[float] = []
    previous: float | None = None
    for entry in entries:
        if entry["event"] != "batch":
            continue
        at = entry["at"].timestamp() - epoch
        began = max((s for s in starts if s <= at), default=None)
        since = max(x for x in (previous, began) if x is not None) if (previous or began) else None
        if since is not None:
            periods.append(at - since)
        previous = at
    return tuple(periods)


def run_engine(job: EngineJob, tool_db: str) -> EngineRun:
    """bench/engine.py's run_engine on MariaDB: INNODB_TRX instead of pg_stat_activity, the
    audit trail read from the tool's own database."""
    _bytecode()
    init(job)
    approve(job)
    monitor = MariaDBMonitor(job.server, job.dbname)
    monitor.start()
    try:
        process = _spawn_and_wait(job)
    finally:
        monitor.stop()
    epoch = process.started_epoch
    events = _log_events(job.log, epoch)
    entries = _audit(database_url(job.server, job.dbname), tool_db)
    events += [
        Event(e["at"].timestamp() - epoch, e["event"]) for e in entries if e["event"] != "batch"
    ]
    rows: dict[str, int] = {}
    for entry in entries:
        if entry["event"] == "batch":
            for table, n in entry["rows"].items():
                rows[table] = rows.get(table, 0) + int(n)
    return EngineRun(
        seconds=process.seconds,
        peak_rss_mb=process.peak_rss_mb,
        rss_samples=process.rss,
        returncode=process.returncode,
        xacts=monitor.summary(),
        xact_list=monitor.listing(),
        events=tuple(sorted(events, key=lambda e: e.at)),
        batch_periods=_batch_spacing(entries, events, epoch),
        subjects=sum(int(e["subjects"]) for e in entries if e["event"] == "batch"),
        rows=rows,
        polls=monitor.polls,
        log=job.log,
    )


# -- same end state ---------------------------------------------------------------------------


def _digest(url: str, query: str) -> tuple[str, int]:
    """sha256 of the rows a query returns (in its order), and their number."""
    digest, count = hashlib.sha256(), 0
    with connect(url) as conn:
        cur = conn.cursor()
        cur.execute(query)
        while batch := cur.fetchmany(10_000):
            for row in batch:
                digest.update(repr(tuple(row)).encode())
                count += 1
        cur.close()
    return digest.hexdigest()[:16], count


def _checksums(url: str) -> dict[str, int]:
    with connect(url) as conn:
        found = _rows(conn, "CHECKSUM TABLE " + ", ".join(_q(t) for t in TABLES) + " EXTENDED")
    return {str(name).rsplit(".", 1)[-1]: int(value) for name, value in found}


def compare_purge(hand_url: str, engine_url: str) -> checks.Comparison:
    """Same rows left in every table (count and CHECKSUM TABLE), same patient ids left."""
    hand_db, engine_db = parse_url(hand_url).database, parse_url(engine_url).database
    with connect(hand_url) as conn:
        hand = table_counts(conn, hand_db)
    with connect(engine_url) as conn:
        engine = table_counts(conn, engine_db)
    details: dict[str, tuple[object, object]] = {t: (hand[t], engine[t]) for t in TABLES}
    hand_sums, engine_sums = _checksums(hand_url), _checksums(engine_url)
    details |= {f"checksum {t}": (hand_sums[t], engine_sums[t]) for t in TABLES}
    ids = "SELECT patient_id FROM patients ORDER BY patient_id"
    details["patient ids"] = (_digest(hand_url, ids), _digest(engine_url, ids))
    return checks.Comparison(all(a == b for a, b in details.values()), details)


_ERASED = "tel IS NULL AND tel_portable IS NULL AND email IS NULL AND adresse IS NULL"
_KEPT = (
    "SELECT patient_id, nom, prenom, nom_jeune_fille, tel, tel_portable, email, adresse"
    " FROM patients WHERE {} ORDER BY patient_id"
)


def compare_minimise(hand_url: str, engine_url: str) -> checks.Comparison:
    """Same patients pseudonymised (PSH- by hand, PSN- by retention), same contacts erased, the
    other patients' names and contacts as they were."""
    ids = "SELECT patient_id FROM patients WHERE {} ORDER BY patient_id"
    details: dict[str, tuple[object, object]] = {
        "pseudonymised": (
            _digest(hand_url, ids.format("nom LIKE BINARY 'PSH-%'")),
            _digest(
                engine_url, ids.format("nom LIKE BINARY 'PSN-%' AND prenom LIKE BINARY 'PSN-%'")
            ),
        ),
        "contacts erased": (
            _digest(hand_url, ids.format(_ERASED)),
            _digest(engine_url, ids.format(_ERASED)),
        ),
        "others untouched": (
            _digest(hand_url, _KEPT.format("nom NOT LIKE BINARY 'PSH-%'")),
            _digest(engine_url, _KEPT.format("nom NOT LIKE BINARY 'PSN-%'")),
        ),
    }
    return checks.Comparison(all(a == b for a, b in details.values()), details)


_COMPARE = {"purge": compare_purge, "pseudo": compare_minimise, "archive": compare_purge}


# -- a measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    server: str
    batch_size: int | None
    keep: bool
    quiet_wait: float


def measure_archive(template: Template, options: Options) -> tuple[Result, dict[str, Any]]:
    """The archive against its floor (module docstring), with bench/archive.py's policy and
    throw-away key, in a folder removed at the end."""
    work = Path(tempfile.mkdtemp(prefix="bench-mariadb-archive-"))
    try:
        setup = archive_setup(work)
        m = Measurement(
            "archive", "purge", setup.policies, "dossier-medical", MARIADB_ARCHIVE_TARGET, -1,
            checks.compare_purge, approvers=PURGE_APPROVERS,
        )  # fmt: skip
        result, extra = _measure(template, m, options, setup)
        extra["archive_files"], extra["archive_bytes"] = setup.files()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result, extra


def _names(template: Template, m: Measurement) -> tuple[str, str, str]:
    base = f"{PREFIX}{template.patients}_{m.name}"
    return f"{base}_sql", f"{base}_engine", f"{base}_engine_tool"


def _measure(
    template: Template, m: Measurement, options: Options, archive: ArchiveSetup | None = None
) -> tuple[Result, dict[str, Any]]:
    """The hand-written SQL, then `retention run`, each on its own copy. With `archive`, the
    floor's copy of the rows is written next to the archive's folder."""
    server = options.server
    today = checks.legal_today()
    hand_db, engine_db, tool_db = _names(template, m)
    extra: dict[str, Any] = {}
    try:
        hand_url, extra["clone_seconds_hand"] = clone(server, template, hand_db)
        print(
            f"  {m.name}: copy made in {extra['clone_seconds_hand']:.1f} s; hand-written SQL ...",
            flush=True,
        )
        loads = [wait_for_quiet(options.quiet_wait)]
        params = {"today": today.isoformat(), **_hmac_pads(PSEUDONYM_KEY)}
        copy_to = archive.folder.parent / "floor.out" if archive is not None else None
        with redo_use(server) as hand_redo:
            hand = run_script(hand_url, m.script, params, copy_to)
        extra["purge_lag_hand"] = purge_lag(server)
        if copy_to is not None:
            extra["copy_bytes"] = copy_to.stat().st_size
        print(f"  {m.name}: hand-written SQL {hand.seconds:.1f} s", flush=True)
        engine_url, extra["clone_seconds_engine"] = clone(server, template, engine_db)
        with connect(server) as admin:
            drop_database(admin, tool_db)
        job = EngineJob(
            server,
            engine_db,
            m.policies_dir,
            m.policy,
            options.batch_size,
            DATA / f"mariadb-engine-{template.patients}-{m.name}.log",
            m.approvers,  # signed before the run, untimed, as on PostgreSQL
            url=engine_url,
            environment=(
                ("RETENTION_SCHEMA_NAME", tool_db),
                *(archive.environment() if archive is not None else ()),
            ),
        )
        print(f"  {m.name}: retention run ...", flush=True)
        loads.append(wait_for_quiet(options.quiet_wait))
        with redo_use(server) as engine_redo:
            engine = run_engine(job, tool_db)
        extra["purge_lag_engine"] = purge_lag(server)
        extra["redo_hand"], extra["redo_engine"] = asdict(hand_redo[0]), asdict(engine_redo[0])
        print(f"  {m.name}: retention run {engine.seconds:.1f} s (exit {engine.returncode})")
        checks.warn_if_the_day_changed(today)
        comparison = _COMPARE[m.name](hand_url, engine_url)
    finally:
        if not options.keep:
            with connect(server) as admin:
                for name in (hand_db, engine_db, tool_db):
                    drop_database(admin, name)
    result = result_of(template.patients, m, hand, engine, comparison, loads)
    return result, extra


def server_facts(server: str) -> dict[str, str]:
    names = (
        "version",
        "innodb_buffer_pool_size",
        "innodb_log_file_size",
        "innodb_flush_log_at_trx_commit",
        "log_bin",
        "tmp_table_size",
        "max_heap_table_size",
        "innodb_lock_wait_timeout",
    )
    with connect(server) as admin:
        found = _rows(admin, "SELECT " + ", ".join(f"@@GLOBAL.{n}" for n in names))[0]
    facts = {"engine": "mariadb", **{n: str(v) for n, v in zip(names, found, strict=True)}}
    return facts


def _memory_line(r: Result) -> str:
    """Peak RSS, and whether memory stayed flat over the batches: the RSS once the first
    phase starts (Python, the policy, the plan) against its maximum after."""
    starts = [at for at, what in r.events if "to process" in what]
    if not starts or not r.rss_samples:
        return f"peak {r.peak_rss_mb:.0f} MB"
    before = [mb for t, mb in r.rss_samples if t <= starts[0]]
    after = [mb for t, mb in r.rss_samples if t > starts[0]]
    if not before or len(after) < 5:
        return f"peak {r.peak_rss_mb:.0f} MB ({len(after)} samples over the batches: too few)"
    start, top = before[-1], max(after)
    return (
        f"peak {r.peak_rss_mb:.0f} MB; RSS {start:.0f} MB when the batches start, at most "
        f"{top:.0f} MB after ({top - start:+.0f} MB over {len(after)} samples)"
    )


def mariadb_lines(results: list[Result], extras: list[dict[str, Any]]) -> str:
    lines = ["", "MariaDB transactions and memory:"]
    pad = 2 * MariaDBMonitor.interval
    for r, extra in zip(results, extras, strict=True):
        periods = r.batch_periods
        audit = f"{max(periods):.2f} s" if periods else "none"
        longest = r.xact("batch")
        over = sum(1 for t in r.xact_list if t[0] == BATCH and t[1] > 1.0)
        lines.append(
            f"- {r.patients:,} {r.measurement}: batch transactions seen in INNODB_TRX: "
            f"{int(r.xact('batch', 'count'))}, longest {longest:.2f}-{longest + pad:.2f} s "
            f"(median {r.xact('batch', 'median'):.2f} s), {over} over 1 s; spacing of the "
            f"batch audit entries (COMMIT not included) max {audit} over {len(periods)} "
            "batches; "
            f"plan/due-set transactions {r.xact('plan'):.2f} s / {r.xact('snapshot'):.2f} s; "
            f"{_memory_line(r)}; copies made in {extra['clone_seconds_hand']:.1f} s and "
            f"{extra['clone_seconds_engine']:.1f} s (untimed)"
        )
        lines.append(f"  {_purge_line(r, extra)}")
        lines.append(f"  {_redo_line(extra)}")
        if r.measurement == "archive":
            lines.append(f"  {_archive_line(r, extra)}")
    return "\n".join(lines)


def _purge_line(r: Result, extra: dict[str, Any]) -> str:
    """Each side's time with InnoDB's purge of what it changed (`purge_lag`)."""
    hand = r.hand_seconds + extra["purge_lag_hand"]
    engine = r.engine_seconds + extra["purge_lag_engine"]
    return (
        f"InnoDB purge after each side's end: hand {extra['purge_lag_hand']:.1f} s, retention "
        f"{extra['purge_lag_engine']:.1f} s; with it, hand {hand:.1f} s, retention "
        f"{engine:.1f} s: {engine / hand:.2f}x"
    )


def _redo_line(extra: dict[str, Any]) -> str:
    """The redo of each side (RedoUse), the analogue of the WAL on PostgreSQL."""
    hand, engine = extra["redo_hand"], extra["redo_engine"]
    return (
        f"InnoDB redo generated (server-wide LSN advance): hand {hand['lsn_bytes'] / 1e6:,.1f} MB, "
        f"retention {engine['lsn_bytes'] / 1e6:,.1f} MB; written to the log file "
        f"{hand['written_bytes'] / 1e6:,.1f} MB / {engine['written_bytes'] / 1e6:,.1f} MB"
    )


def _archive_line(r: Result, extra: dict[str, Any]) -> str:
    """The floor's plain copy against the archive's encrypted files."""
    copy = sum(
        sec
        for label, sec, _ in r.hand_statements
        if label.startswith("SELECT") or label == COPY_SYNC
    )
    return (
        f"archive: the floor's plain copy {extra['copy_bytes'] / 1e6:,.1f} MB written in "
        f"{copy:.2f} s (fsync included) of its {r.hand_seconds:.1f} s; retention wrote "
        f"{extra['archive_files']} encrypted file(s), {extra['archive_bytes'] / 1e6:,.1f} MB, "
        f"{r.engine_rows:,} rows"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run --engine mariadb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--engine", choices=["mariadb"], default="mariadb")
    parser.add_argument("--scale", default="1.0", help="scale factor(s), comma-separated")
    parser.add_argument("--only", default="purge,pseudo", help="purge,pseudo,archive")
    parser.add_argument("--batch-size", type=int, default=None, help="RETENTION_BATCH_SIZE")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="admin URL of the server")
    parser.add_argument("--keep", action="store_true", help="keep the copies for inspection")
    parser.add_argument(
        "--drop-template",
        action="store_true",
        help="drop the template at the end (default: kept for the next run)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait at most, before each run, for the load average to drop under 1",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - {*MEASUREMENTS, "archive"}
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    DATA.mkdir(exist_ok=True)
    facts: dict[str, Any] = {
        **machine(),
        **server_facts(args.server),
        **code_state(ROOT),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    results: list[Result] = []
    extras: list[dict[str, Any]] = []
    options = Options(args.server, args.batch_size, args.keep, args.quiet_wait)
    for scale in (float(s) for s in args.scale.split(",")):
        patients = round(SEED_PATIENTS * scale)
        print(f"scale {scale}: {patients:,} patients (MariaDB)", flush=True)
        template = ensure_template(args.server, patients, checks.legal_today())
        how = (
            "reused"
            if template.built_seconds is None
            else f"built in {template.built_seconds:.0f} s"
        )
        print(f"  template {template.name} ({template.size_bytes / 2**20:,.0f} MB) {how}")
        try:
            scale_results, scale_extras = [], []
            for name in args.only.split(","):
                if name == "archive":
                    result, extra = measure_archive(template, options)
                else:
                    result, extra = _measure(template, MEASUREMENTS[name], options)
                scale_results.append(result)
                scale_extras.append(extra)
            path = DATA / f"mariadb-results-{patients}.json"
            content = {
                "machine": facts,
                "template": asdict(template),
                "results": [asdict(r) for r in scale_results],
                "extras": scale_extras,
            }
            path.write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")
            results += scale_results
            extras += scale_extras
        finally:
            if args.drop_template:
                with connect(args.server) as admin:
                    drop_database(admin, template.name)
    facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    after = code_state(ROOT)
    if after != {k: facts[k] for k in after}:
        print("WARNING: retention/ changed while the benchmark ran; results mix code versions")
    print()
    print(render(results, facts))
    print(mariadb_lines(results, extras))
    return 0 if all(r.same_result and r.engine_exit == 0 for r in results) else 1
