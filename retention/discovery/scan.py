"""`scan`: for every column of every user table, whether it holds personal data, which kind.

1. read the catalogue; describe each column by its type and name (:mod:`.decide`);
2. sample each table once, at a cost that does not grow with it (:mod:`.sample`), tables
   side by side on up to ``workers`` connections; meanwhile the analyzer is built on a
   thread of its own (:mod:`.preload`): the reading mostly waits on the server;
3. build a recognizer of the database's own names from the columns named as names, so that a
   name inside a file name or a JSON change log is found too (:mod:`.verdict`);
4. run Presidio over each column's distinct values (:mod:`.analyze`), with the column's and
   table's names as context;
5. decide each column (:mod:`.decide`), keep the evidence, mask the examples (:mod:`.mask`).

This module imports neither Presidio nor spaCy (steps 1 and 2 do not need them); steps 3 to 5
are :mod:`.verdict`'s. Values stay in memory; the result holds verdicts, shares and masked
examples only.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loguru import logger

from retention.catalog.introspect import Catalog, Table, read_catalog
from retention.discovery import preload
from retention.discovery.decide import describe
from retention.discovery.model import DEFAULT_SAMPLE, ScanResult, TableTime
from retention.discovery.sample import TableSample, sample_table
from retention.engines import Connection, engine_of, errors
from retention.errors import DatabaseError, UsageError

if TYPE_CHECKING:
    from retention.discovery.engine import Analyzer


def scan(
    conn: Connection,
    *,
    schemas: Iterable[str] = (),
    tables: Iterable[str] = (),
    sample: int = DEFAULT_SAMPLE,
    examples: bool = False,
    tool_schema: str = "retention",
    statement_timeout_ms: int = 30_000,
    lock_timeout_ms: int = 2_000,
    analyzer: Analyzer | None = None,
    workers: int = 1,
    connect: Callable[[], Connection] | None = None,
) -> ScanResult:
    """Scan every column of every user table (or only ``schemas`` / ``tables``).

    ``tables`` are ``name`` or ``schema.name``. ``examples`` keeps up to three *masked*
    examples per personal column. Reads a fixed-size sample of each table; writes nothing.
    With ``workers`` > 1 and ``connect`` (opens another connection), tables are sampled side
    by side on ``conn`` and ``workers - 1`` more connections.
    """
    started = time.monotonic()
    scanned_at = datetime.now(UTC)
    building = preload.start() if analyzer is None else None
    catalog = _catalog(conn, tool_schema, lock_timeout_ms)
    chosen = _select(catalog, tuple(schemas), tuple(tables))
    columns = [
        describe(catalog, table, column) for table in chosen for column in table.columns.values()
    ]
    wanted = {
        table.qname: [c.column for c in columns if c.table is table and c.sampled]
        for table in chosen
    }

    def read(db: Connection, table: Table) -> tuple[TableSample, float]:
        begun = time.monotonic()
        got = sample_table(
            db,
            table,
            wanted[table.qname],
            values=sample,
            timeout_ms=statement_timeout_ms,
            lock_timeout_ms=lock_timeout_ms,
        )
        logger.debug("sampled {}: {} rows ({})", table.label, got.rows, got.method)
        return got, time.monotonic() - begun

    read_times = _side_by_side(conn, connect, workers if connect else 1, chosen, read)
    samples = {qname: got for qname, (got, _) in read_times.items()}
    for got in samples.values():
        if got.error is not None:  # its columns are judged by their names alone
            logger.warning(
                "{}: not read, {}: judged by column names only", got.table.label, got.error
            )
    if building is not None:
        analyzer = building.wait()
    assert analyzer is not None
    from retention.discovery.verdict import known_names, verdict  # imported with the analyzer

    known = known_names(analyzer, columns, samples)
    verdicts = []
    analysed: dict[tuple[str, str], float] = dict.fromkeys(samples, 0.0)
    for item in columns:
        begun = time.monotonic()
        verdicts.append(verdict(analyzer, item, samples[item.table.qname], known, examples))
        analysed[item.table.qname] += time.monotonic() - begun
    times = tuple(
        TableTime(
            table.schema,
            table.name,
            samples[table.qname].rows,
            samples[table.qname].method,
            read_times[table.qname][1],
            analysed[table.qname],
        )
        for table in chosen
    )
    seconds = time.monotonic() - started
    personal = sum(1 for v in verdicts if v.personal)
    logger.info(
        "scanned {} columns of {} tables in {:.1f} s: {} personal",
        len(verdicts),
        len(chosen),
        seconds,
        personal,
    )
    return ScanResult(scanned_at, tuple(verdicts), seconds, times)


def _side_by_side(
    conn: Connection,
    connect: Callable[[], Connection] | None,
    workers: int,
    tables: list[Table],
    read: Callable[[Connection, Table], tuple[TableSample, float]],
) -> dict[tuple[str, str], tuple[TableSample, float]]:
    """``read`` every table, on ``conn`` alone or on up to ``workers`` connections at once
    (``conn`` and more opened with ``connect``, closed at the end)."""
    if workers <= 1 or connect is None or len(tables) <= 1:
        return {table.qname: read(conn, table) for table in tables}
    free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
    free.put(conn)
    opened: list[Connection] = []

    def on_a_free_connection(table: Table) -> tuple[TableSample, float]:
        db = free.get()
        try:
            return read(db, table)
        finally:
            free.put(db)

    try:
        for _ in range(min(workers, len(tables)) - 1):
            opened.append(connect())
            free.put(opened[-1])
        with ThreadPoolExecutor(max_workers=len(opened) + 1) as pool:
            results = list(pool.map(on_a_free_connection, tables))
    finally:
        for db in opened:
            db.close()
    return {table.qname: got for table, got in zip(tables, results, strict=True)}


def _catalog(conn: Connection, tool_schema: str, lock_timeout_ms: int) -> Catalog:
    """The catalogue, without waiting behind a lock (column defaults are read with locks)."""
    try:
        with conn.transaction():
            engine_of(conn).session.lock_timeout(conn, lock_timeout_ms)
            return read_catalog(conn, tool_schema=tool_schema)
    except errors.LockNotAvailable:
        raise DatabaseError(
            "a table is locked (ALTER TABLE, VACUUM FULL...): cannot read the catalogue",
            hint="run the scan again once the maintenance is over",
        ) from None


def _select(catalog: Catalog, schemas: tuple[str, ...], tables: tuple[str, ...]) -> list[Table]:
    known = {t.schema for t in catalog.tables.values()}
    for schema in schemas:
        if schema not in known:
            raise UsageError(
                f"no table to scan in schema '{schema}'",
                hint=f"schemas with tables: {', '.join(sorted(known)) or 'none'}",
            )
    chosen = [t for t in catalog.tables.values() if not schemas or t.schema in schemas]
    if tables:
        wanted = []
        for name in tables:
            found = catalog.find(name)
            if found is None or (schemas and found.schema not in schemas):
                close = catalog.suggest_table(name)
                raise UsageError(
                    f"unknown table '{name}'", hint=f"did you mean '{close}'?" if close else None
                )
            wanted.append(found)
        chosen = wanted
    return sorted(chosen, key=lambda t: t.qname)
