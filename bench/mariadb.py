"""The purge and minimisation benchmark on MariaDB (issue 20): `python -m bench.run --engine
mariadb [--scale 0.25[,1.0]] [--only purge,pseudo] [--server mariadb://root@127.0.0.1:3306/]`.

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
  in a database of their own (`RETENTION_SCHEMA_NAME=<copy>_tool`). Approvals are off
  (`RETENTION_REQUIRED_APPROVALS=0`): `retention approve` does not run on MariaDB yet, so the
  purge is not signed beforehand as on PostgreSQL (there the run checks two signatures: a few
  milliseconds of its time).
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
- **Archive**: not measured on MariaDB yet (archives on MariaDB are being built):
  `measure_archive` is the hook; `--only archive` says so and stops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import checks
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
from bench.run import MEASUREMENTS, Measurement, result_of, wait_for_quiet
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


def run_script(url: str, name: str, params: dict[str, Any]) -> ScriptRun:
    """Run `bench/sql/mariadb/<name>.sql` in one transaction on one connection, timed."""
    script = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    done: list[Statement] = []
    conn = raw_connect(url, autocommit=False)
    try:
        cur = conn.cursor()
        started = time.perf_counter()
        cur.execute("START TRANSACTION")
        for text in statements(script):
            used = {k: v for k, v in params.items() if f"%({k})s" in text}
            t0 = time.perf_counter()
            cur.execute(text, used) if used else cur.execute(text)
            done.append(Statement(text, time.perf_counter() - t0, int(cur.rowcount)))
        conn.commit()
        total = time.perf_counter() - started
        cur.close()
    finally:
        conn.close()
    return ScriptRun(name, total, tuple(done))


# -- transactions, from INNODB_TRX ------------------------------------------------------------

_MARKERS: tuple[tuple[str, str], ...] = (  # first match wins; statement prefixes as seen
    (OTHER, "`runs` SET"),
    (EXPOSURE, "retention_exposure"),  # the exposure snapshot after the run (report trend)
    (SNAPSHOT, "retention_due"),  # the due set, autocommit (CREATE TEMPORARY TABLE ... AS)
    (BATCH, "would_be_due"),  # the locked re-check
    (BATCH, "FOR UPDATE"),
    (BATCH, "retention_records"),  # a batch's rows, found once through their links
    (BATCH, "JSON_TABLE("),  # a batch's keys
    (BATCH, "DELETE "),
    (BATCH, "UPDATE `"),
    (BATCH, "retention_pseudonyms"),
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
        if (
            kind == OTHER
            and not trx.wrote
            and query.lstrip().upper().startswith(("SELECT", "WITH"))
        ):
            kind = PLAN  # a read-only snapshot reading the clock
        if _PRIORITY[kind] > _PRIORITY[trx.kind]:
            trx.kind = kind

    def summary(self) -> dict[str, XactStats]:
        kinds = (PLAN, SNAPSHOT, BATCH, EXPOSURE, OTHER)
        return {k: XactStats.of([t.seconds for t in self.trxs if t.kind == k]) for k in kinds}

    def listing(self) -> list[tuple[str, float, bool, list[str]]]:
        return [(t.kind, round(t.seconds, 3), t.wrote, t.queries) for t in self.trxs]


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


_COMPARE = {"purge": compare_purge, "pseudo": compare_minimise}


# -- a measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    server: str
    batch_size: int | None
    keep: bool
    quiet_wait: float


def measure_archive(template: Template, options: Options) -> Result:
    """The hook for the archive on MariaDB (issue 20: archive <= 2x): bench/archive.py's
    measurement, once `retention run` archives on MariaDB. Not yet."""
    raise SystemExit(
        "archive on MariaDB: not measured yet (archives on MariaDB are being built); "
        "bench/mariadb.py measure_archive is the hook"
    )


def _names(template: Template, m: Measurement) -> tuple[str, str, str]:
    base = f"{PREFIX}{template.patients}_{m.name}"
    return f"{base}_sql", f"{base}_engine", f"{base}_engine_tool"


def _measure(template: Template, m: Measurement, options: Options) -> tuple[Result, dict[str, Any]]:
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
        hand = run_script(hand_url, m.script, params)
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
            (),  # `retention approve` does not run on MariaDB yet: approvals off instead
            url=engine_url,
            environment=(("RETENTION_SCHEMA_NAME", tool_db), ("RETENTION_REQUIRED_APPROVALS", "0")),
        )
        print(f"  {m.name}: retention run ...", flush=True)
        loads.append(wait_for_quiet(options.quiet_wait))
        engine = run_engine(job, tool_db)
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
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run --engine mariadb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--engine", choices=["mariadb"], default="mariadb")
    parser.add_argument("--scale", default="1.0", help="scale factor(s), comma-separated")
    parser.add_argument("--only", default="purge,pseudo", help="purge,pseudo (archive: not yet)")
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
            scale_results = []
            for name in args.only.split(","):
                if name == "archive":
                    measure_archive(template, options)
                result, extra = _measure(template, MEASUREMENTS[name], options)
                scale_results.append(result)
                extras.append(extra)
            path = DATA / f"mariadb-results-{patients}.json"
            content = {
                "machine": facts,
                "template": asdict(template),
                "results": [asdict(r) for r in scale_results],
            }
            path.write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")
            results += scale_results
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
