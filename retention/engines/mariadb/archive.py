"""MariaDB's archive rows: read with their group, then deleted by key and compared.

MariaDB's `DELETE ... RETURNING` takes one table only (the multi-table form refuses it,
*verified* on 10.11: error 1064), and a single-table DELETE restricted by `IN (SELECT ...)` is
planned as one probe per row of the whole table (dialect.py). So each table's batch rows are
taken in two steps:

1. their row keys, link columns (`Taking.links`: what makes each a member of the batch's
   records) and group, read (without locks) through the same joins as PostgreSQL's statement:
   usually from a secondary index alone (the link's index holds the primary key), the rows
   themselves being read once, by step 2 (reading every value here too cost 2.5-4.0 ms against
   0.9 ms for 756 stays of 250 patients, cached);
2. in chunks of 1,000 keys, `DELETE FROM t WHERE key IN (...) ORDER BY key LIMIT n RETURNING
   key, <values as text>`, locked and deleted by key only (a locking read through the joins
   could scan the table and lock other batches' rows, and batches run side by side
   deadlocked, measured; the ORDER BY and LIMIT make the optimiser read the key's index where
   it would scan a small table, locking what it meets): the rows written are the rows the
   DELETE returned, with the values it returned; each must be returned with the link columns
   the first step read, every row read must be deleted: a row moved to another subject (or
   another class) or deleted by another transaction in between stops the batch; a row whose
   other values changed in between is archived as it was deleted. Each chunk's rows are read
   whole (a buffered result, at most 1,000 rows): MariaDB Connector/Python 1.1.14 crashed
   the process (SIGSEGV, 3 runs out of 3) on a `DELETE ... RETURNING` read through an
   unbuffered cursor in a run's worker thread. An engine without `DELETE ... RETURNING`
   (MySQL 8, capability `delete_returning`; forced in the tests) selects the rows by key
   `FOR UPDATE`, then deletes them by key: the DELETE's row count must equal the rows read,
   else the batch rolls back.

Each value is written as PostgreSQL writes the same value's text (docs/ARCHIVE.md), so that an
archive reads the same whichever engine wrote it: numbers and dates as `CAST(... AS CHAR)` (a
zero date keeps its text byte for byte: never read raw, docs/ENGINES.md 2.4), fractional
seconds without trailing zeros, TIMESTAMP in UTC with `+00`, floats by their shortest digits,
bytes as `\\x` and hexadecimal, text as it is. The server writes the record's fields of the
values whose text their type bounds (`_record`, `_server_writes`); the others come back as values
and this process writes them. A column of a type with no exact text (spatial types...) stops
the batch before anything is deleted.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, NamedTuple
from uuid import UUID

from retention.engines import sql
from retention.engines.archive import (
    IsLink,
    RowsChangedError,
    TableProblem,
    Taking,
    UnreadableValueError,
    float4_text,
    float8_text,
)
from retention.engines.catalogue import Column, Table
from retention.engines.connection import Connection
from retention.engines.mariadb.bulk import load
from retention.engines.mariadb.dialect import DIALECT, _collated

KEYS_TABLE = "retention_archive_keys"
CHUNK_ROWS = 1_000  # keys per DELETE: an IN list the range optimiser reads by index

_INTEGERS = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
_AS_CAST = _INTEGERS | {"decimal", "numeric", "date", "year", "uuid", "inet4", "inet6"}
_TIMES = frozenset({"datetime", "time"})
_TEXTS = frozenset(
    {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
)
_BYTES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_WIDTH = re.compile(r"\((\d+)\)")
_ZEROFILL = re.compile(r"\bzerofill\b", re.IGNORECASE)  # numbers only (MySQL 8: deprecated)

Format = Callable[[Any], str]


class Values:
    """Plain bound parameters (`%(a1)s`...)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._values: dict[str, object] = {}

    def add(self, value: object, *, binary: bool = False) -> sql.Composable:
        name = f"{self.prefix}{len(self._values) + 1}"
        self._values[name] = value
        return sql.parameter(name, binary=binary)

    @property
    def values(self) -> dict[str, object]:
        return dict(self._values)


class ArchiveRows:
    def __init__(self, *, delete_returning: bool = True) -> None:
        self.delete_returning = delete_returning

    def prepare(self, conn: Connection) -> None:
        """TIMESTAMPs read in UTC (the session's pinned zone, set again for the batch)."""
        from retention.engines.mariadb.session import Session

        Session().transaction_settings(conn, {"time_zone": "+00:00"})

    def values(self, prefix: str) -> Values:
        return Values(prefix)

    def keys_table(
        self, conn: Connection, key: Column, groups: Mapping[Any, str]
    ) -> sql.Composable:
        """A temporary table of this session, made anew for each batch (MariaDB keeps a
        temporary table's rows past a commit; emptied by DELETE batch after batch, InnoDB's
        estimate of its rows only grows, see dialect.py's `temporary_table`; dropping a
        temporary table does not end the transaction). A text key is typed in its column's
        collation (another one, implicit too, is error 1267 in the joins)."""
        name = DIALECT.temporary(KEYS_TABLE)
        conn.execute(DIALECT.drop_temporary(KEYS_TABLE))
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {} (k {} NOT NULL PRIMARY KEY, "
                "grp VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL) ENGINE=InnoDB"
            ).format(name, sql.SQL(key.type + _collated(key)))
        )
        load(conn, name, ["k", "grp"], list(groups.items()))
        return name

    def take(self, conn: Connection, table: Table, taking: Taking) -> dict[str, list[bytes]]:
        ids = DIALECT.row_ids(table)
        names = list(table.columns)
        # the columns that make a row a member (all of them if none is named): compared with
        # what the DELETE returns; the other values are read once, by the DELETE, as the
        # record the server writes (`_record`)
        links = [names.index(c) for c in taking.links if c in table.columns] or list(
            range(len(names))
        )
        parts = _record(table)  # a column of a type with no exact text: refused here
        # (the same parts as the DELETE's, `_by_keys`)
        values = _values(table, "r")
        read = [
            *(_key(table.columns[c], sql.Identifier("r", c)) for c in ids),
            *(values[i][0] for i in links),
        ]
        query = sql.SQL("SELECT {read}, {group} FROM {t} AS r, {using} WHERE {where}").format(
            read=sql.SQL(", ").join(read),
            group=taking.group,
            t=sql.Identifier(*table.qname),
            using=taking.using,
            where=taking.where,
        )
        width = len(ids)
        seen = _rows_read(conn, query, taking.params, width)
        if not seen:
            return {}
        found: dict[str, list[bytes]] = {}
        start, end = width + len(links), width + len(links) + len(parts)
        record = _writer(parts)
        deleted = 0
        for rows in self._deleted(conn, table, ids, links, list(seen)):
            for row in rows:
                known = seen.get(tuple(row[:width]))
                if known is None or known[0] != tuple(row[width:start]):
                    raise RowsChangedError(
                        f"{table.label}: rows of the batch changed between their reading and "
                        "their deletion (by another transaction); nothing of this batch was "
                        "archived or deleted",
                        hint="the next run archives them as they are then",
                    )
                deleted += 1
                try:
                    line = record(row[start:end])
                except (ValueError, TypeError, OverflowError):  # never the value itself
                    raise _unwritable(table, parts, row[start:end]) from None
                found.setdefault(known[1], []).append(line)
        if deleted != len(seen):
            raise RowsChangedError(
                f"{table.label}: {deleted} row(s) deleted for {len(seen)} read (changed by "
                "another transaction meanwhile); nothing of this batch was archived or deleted",
                hint="the next run archives them as they are then",
            )
        for records in found.values():
            records.sort()
        return found

    def _deleted(
        self,
        conn: Connection,
        table: Table,
        ids: Sequence[str],
        links: Sequence[int],
        keys: list[tuple[Any, ...]],
    ) -> Iterator[Iterable[Sequence[Any]]]:
        """The deleted rows, keys first, then the link columns' values, then the record's
        parts, chunk by chunk."""
        chunks = iter(keys)
        while chunk := list(islice(chunks, CHUNK_ROWS)):
            size = -(-len(chunk) // CHUNK_STEP) * CHUNK_STEP
            # the last key again up to the chunk's size: `IN` ignores it
            params = [value for key in chunk + chunk[-1:] * (size - len(chunk)) for value in key]
            statements = _by_keys(table, ids, links, size, self.delete_returning)
            if self.delete_returning:
                (delete,) = statements
                yield conn.execute(delete, params).fetchall()
                continue
            read_locked, delete = statements
            read = conn.execute(read_locked, params).fetchall()
            deleted = conn.execute(delete, params).rowcount
            if deleted != len(read) or len(read) != len(chunk):
                raise UnreadableValueError(
                    f"{table.label}: {deleted} row(s) deleted for {len(read)} read by key "
                    f"({len(chunk)} locked); nothing of this batch was archived or deleted"
                )
            yield read

    def check_tables(
        self, conn: Connection, tables: Sequence[Table], is_link: IsLink
    ) -> TableProblem | None:
        """Each table is still a base table with the same columns (names, types, order);
        no foreign key outside the record's links cascades a delete or changes other rows."""
        from retention.engines.postgresql.archive import cascading  # the same words

        if not tables:
            return None
        pairs = sql.SQL(", ").join(sql.SQL("(%s, %s)") for _ in tables)
        names = [part for t in tables for part in t.qname]
        live: dict[tuple[str, str], list[tuple[str, str]]] = {}
        kinds: dict[tuple[str, str], str] = {}
        for schema, name, kind in conn.execute(
            sql.SQL(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                "WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({})"
            ).format(pairs),
            names,
        ):
            kinds[(schema, name)] = kind
        for schema, name, column, column_type in conn.execute(
            sql.SQL(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM "
                "information_schema.COLUMNS WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({}) "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
            ).format(pairs),
            names,
        ):
            live.setdefault((schema, name), []).append((column, column_type))
        for table in tables:
            bound = [(c.name, c.type) for c in table.columns.values()]
            if (
                kinds.get(table.qname) not in ("BASE TABLE", "SYSTEM VERSIONED")
                or live.get(table.qname) != bound
            ):
                return TableProblem(
                    f"{table.label}: the table or its columns changed since the run started",
                    "run again: the next run archives the table as it is now",
                )
        # the cascading keys first, from REFERENTIAL_CONSTRAINTS alone (usually none): joined
        # with KEY_COLUMN_USAGE, filtered by the referenced table, MariaDB opens every table of
        # the server (36 ms against 8 ms here, every archive batch); then each one's columns,
        # by constant schema and table (read from that table only)
        keys: dict[tuple[str, str, str], list[Any]] = {}
        for schema, child, name, p_schema, parent, rule in conn.execute(
            sql.SQL(
                "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, "
                "UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME, DELETE_RULE "
                "FROM information_schema.REFERENTIAL_CONSTRAINTS "
                "WHERE DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') "
                "AND (UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME) IN ({})"
            ).format(pairs),
            names,
        ).fetchall():
            columns = conn.execute(
                "SELECT COLUMN_NAME, REFERENCED_COLUMN_NAME FROM "
                "information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_SCHEMA = %s "
                "AND TABLE_NAME = %s AND CONSTRAINT_NAME = %s "
                "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY ORDINAL_POSITION",
                (schema, child, name),
            ).fetchall()
            keys[(schema, child, name)] = [
                p_schema,
                parent,
                rule,
                [c for c, _ in columns],
                [r for _, r in columns],
            ]
        for (schema, child, name), (p_schema, parent, rule, cols, refs) in keys.items():
            if not is_link((schema, child), (p_schema, parent), cols, refs):
                return cascading(f"{schema}.{child}", parent, name, rule)
        return None

    def insert_file(
        self,
        conn: Connection,
        schema: str,
        file: Mapping[str, Any],
        segments: Sequence[Mapping[str, Any]],
    ) -> None:
        insert_file(conn, schema, file, segments)

    def read_files(
        self,
        conn: Connection,
        schema: str,
        conditions: Sequence[tuple[str, Any]],
        file_ids: Sequence[Any] | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return read_files(conn, schema, conditions, file_ids)

    def latest_file_entries(self, conn: Connection, schema: str) -> dict[str, dict[str, Any]]:
        return latest_file_entries(conn, schema)

    def replace_version(
        self,
        conn: Connection,
        schema: str,
        file_id: Any,
        name: str,
        version: int,
        size: int,
        digest: str,
    ) -> None:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET name = %s, version = %s, bytes = %s, sha256 = %s WHERE file_id = %s"
            ).format(sql.Identifier(schema, "archive_files")),
            (name, version, size, digest, str(file_id)),
        )

    def destroy(
        self, conn: Connection, schema: str, file_id: Any, groups: Sequence[str], whole: bool
    ) -> None:
        """`UTC_TIMESTAMP(6)`: the tool's times are DATETIME(6) in UTC."""
        if groups:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET destroyed_at = UTC_TIMESTAMP(6) WHERE file_id = %s "
                    "AND grp IN ({}) AND destroyed_at IS NULL"
                ).format(
                    sql.Identifier(schema, "archive_segments"),
                    sql.SQL(", ").join(sql.Placeholder() * len(groups)),
                ),
                (str(file_id), *groups),
            )
        if whole:
            conn.execute(
                sql.SQL("UPDATE {} SET destroyed_at = UTC_TIMESTAMP(6) WHERE file_id = %s").format(
                    sql.Identifier(schema, "archive_files")
                ),
                (str(file_id),),
            )

    def segments_of(
        self, conn: Connection, schema: str, policy: str, digest: str
    ) -> list[tuple[Any, str]]:
        """The digest's index on archive_segment_subjects."""
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT s.file_id, s.grp FROM {d} AS d "
                "JOIN {s} AS s ON s.file_id = d.file_id AND s.grp = d.grp "
                "JOIN {f} AS f ON f.file_id = s.file_id "
                "WHERE d.digest = %s AND f.policy = %s AND s.destroyed_at IS NULL"
            ).format(
                d=sql.Identifier(schema, "archive_segment_subjects"),
                s=sql.Identifier(schema, "archive_segments"),
                f=sql.Identifier(schema, "archive_files"),
            ),
            (digest, policy),
        ).fetchall()
        return [(UUID(row[0]), row[1]) for row in rows]

    def pick(
        self, conn: Connection, manifest: dict[str, Any], inner: dict[str, bytes], subject: str
    ) -> dict[str, tuple[bytes, int]]:
        from retention.engines.mariadb import archive_pick

        return archive_pick.pick(conn, manifest, inner, subject)

    def load(self, conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
        from retention.engines.mariadb import archive_pick

        return archive_pick.load(conn, table, names, data)


# A chunk's statements, by its size in steps of `CHUNK_STEP` keys, composed once per table
# (and rendered once, engines/mariadb/render.py): composing and rendering 1,000 placeholders for
# every chunk was a tenth of the Python time of the archive at 189,728 patients.
CHUNK_STEP = 50
_STATEMENTS: OrderedDict[tuple[Any, ...], tuple[sql.Composed, ...]] = OrderedDict()
_STATEMENTS_LOCK = threading.Lock()


def _by_keys(
    table: Table,
    ids: Sequence[str],
    links: Sequence[int],
    size: int,
    delete_returning: bool,
) -> tuple[sql.Composed, ...]:
    """`DELETE ... WHERE <key> IN (<size> keys) ... RETURNING <keys, links' values, the
    record's parts>`; without `DELETE ... RETURNING`, the locked read by the same keys then
    the DELETE."""
    known = (
        table.qname,
        tuple(table.columns.items()),  # the collations too: the record's SQL follows them
        tuple(table.primary_key),
        tuple(ids),
        tuple(links),
        size,
        delete_returning,
    )
    with _STATEMENTS_LOCK:  # batches side by side: one thread at a time in the LRU
        found = _STATEMENTS.get(known)
        if found is not None:
            _STATEMENTS.move_to_end(known)
            return found
    values = _values(table)
    returned = sql.SQL(", ").join(
        [
            *(_key(table.columns[c], sql.Identifier(c)) for c in ids),
            *(values[i][0] for i in links),
            *(part.read for part in _record(table)),
        ]
    )
    target = sql.Identifier(*table.qname)
    where = sql.SQL("{} {}").format(_in_keys(ids, size), _in_key_order(ids, size))
    found = (
        (sql.SQL("DELETE FROM {} WHERE {} RETURNING {}").format(target, where, returned),)
        if delete_returning
        else (
            sql.SQL("SELECT {} FROM {} {} WHERE {} {}").format(
                returned, target, _by_key(table), where, DIALECT.lock()
            ),
            sql.SQL("DELETE FROM {} WHERE {}").format(target, where),
        )
    )
    with _STATEMENTS_LOCK:
        _STATEMENTS[known] = found
        if len(_STATEMENTS) > 256:  # about 37 KB each: the least recently used goes
            _STATEMENTS.popitem(last=False)
    return found


def _unwritable(table: Table, parts: Sequence[Part], values: Sequence[Any]) -> UnreadableValueError:
    """The error for a row one of whose values has no exact text: which column (or which of
    the columns whose fields the server wrote as one text)."""
    failed = ", ".join(parts[0].columns)
    for part, value in zip(parts, values, strict=True):
        if part.write is None and value is None:  # TooLongError
            return UnreadableValueError(
                f"{table.label}.{', '.join(part.columns)}: the server returned no text for a "
                "row's values (longer than its max_allowed_packet); nothing of this batch was "
                "archived or deleted",
                hint="raise max_allowed_packet (server and client)",
            )
        try:
            if part.write is None:
                _server_text(value)
            elif value is not None:
                part.write(value)
        except (ValueError, TypeError, OverflowError):
            failed = ", ".join(part.columns)
            break
    return UnreadableValueError(
        f"{table.label}.{failed}: a value could not be written exactly as text; nothing of "
        "this batch was archived or deleted",
        hint="look at that column's values (e.g. text that is not UTF-8)",
    )


def _rows_read(
    conn: Connection, query: sql.Composed, params: Mapping[str, object], width: int
) -> dict[tuple[Any, ...], tuple[tuple[Any, ...], str]]:
    """Each row's key -> (its link values as the DELETE returns them, its group); a row of
    several subjects: the latest group."""
    found: dict[tuple[Any, ...], tuple[tuple[Any, ...], str]] = {}
    for row in conn.execute(query, dict(params)).fetchall():  # one call, not one per row
        key, group = tuple(row[:width]), str(row[-1])
        known = found.get(key)
        if known is None or known[1] < group:
            found[key] = (tuple(row[width:-1]), group)
    return found


def _values(table: Table, alias: str | None = None) -> list[tuple[sql.Composable, Format | None]]:
    """Each column's value as read (the first read through the joins, `alias`; the DELETE's
    RETURNING, no alias) and, a float, written."""
    return [
        _value(column, sql.Identifier(alias, name) if alias else sql.Identifier(name))
        for name, column in table.columns.items()
    ]


def _by_key(table: Table) -> sql.Composable:
    """`FORCE INDEX (PRIMARY)` when the row key is the primary key: on a small table the
    optimiser may read `pk IN (...)` by scanning a secondary index (covering), and a locking
    read then locks every entry it meets: batches side by side deadlocked (measured on the
    demo's user_log)."""
    if table.primary_key and tuple(table.primary_key) == tuple(DIALECT.row_ids(table)):
        return sql.SQL("FORCE INDEX (PRIMARY)")
    return sql.SQL("")


def _in_key_order(ids: Sequence[str], count: int) -> sql.Composable:
    """`ORDER BY <key> LIMIT <count>` after `_in_keys` (at most `count` rows match anyway):
    without it, on a small table the optimiser deletes `pk IN (...)` by a full scan
    (*verified*: EXPLAIN type ALL for 40 keys of 150 rows; with it, range on PRIMARY), and
    every row it meets stays locked: batches run side by side deadlocked (measured on the
    demo hospital, 150 patients, two workers)."""
    return sql.SQL("ORDER BY {} LIMIT {}").format(
        sql.SQL(", ").join(map(sql.Identifier, ids)), sql.Literal(count)
    )


def _key(column: Column, ref: sql.Composable) -> sql.Composable:
    """A key column as read to find its rows again: as it is (so that `IN (...)` compares in
    the column's type and reads its index: an integer key compared with text parameters made
    InnoDB lock the rows it scanned, and batches side by side deadlocked), but a date as its
    text (a zero date is never read raw; text compares with a date column as a date)."""
    return sql.SQL("CAST({} AS CHAR)").format(ref) if column.is_date else ref


def _in_keys(ids: Sequence[str], count: int) -> sql.Composable:
    """`k IN (?, ...)` or `(a, b) IN ((?, ?), ...)`: read by the key's index."""
    if len(ids) == 1:
        return sql.SQL("{} IN ({})").format(
            sql.Identifier(ids[0]), sql.SQL(", ").join(sql.Placeholder() * count)
        )
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(ids)))
    return sql.SQL("({}) IN ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, ids)), sql.SQL(", ").join([row] * count)
    )


def _format(table: Table, column: Column) -> tuple[sql.Composable, Format | None]:
    try:
        return _value(column, sql.Identifier(column.name))
    except KeyError:
        raise UnreadableValueError(
            f"{table.label}.{column.name} is of type {column.type}, which the archive cannot "
            "write exactly as text; nothing of this batch was archived or deleted",
            hint="leave the table out of the archive's record, or change the column's type",
        ) from None


def _value(column: Column, ref: sql.Composable) -> tuple[sql.Composable, Format | None]:
    """How a column is read (SQL: to compare a link's value, and the text of the column's
    CSV field, `_field`) and, for a float, written by this process (its text as PostgreSQL's
    for that value)."""
    base = column.base_type.lower()
    if base in _AS_CAST or base in _TIMES or base == "timestamp":
        if _ZEROFILL.search(column.type):  # `+ 0`: the value's digits, not the display's
            ref = sql.SQL("({} + 0)").format(ref)  # 42 in int(5) zerofill is 42, not 00042
        return sql.SQL("CAST({} AS CHAR)").format(ref), None
    if base in _TEXTS or base in _BYTES:
        return ref, None
    if base in {"double", "real"}:
        return ref, _double
    if base == "float":
        return ref, _float
    if base == "bit":
        found = _WIDTH.search(column.type)
        width = int(found.group(1)) if found else 1
        return sql.SQL("LPAD(BIN({}), {}, '0')").format(ref, sql.Literal(width)), None
    raise KeyError(base)


# The server writes each row's CSV record itself (`_record`), as PostgreSQL's COPY does: the
# driver then turns one text per row into a Python object where it turned every value, and
# this process writes no field (at 189,728 patients the values' objects and fields were about
# 15 s of the archive's 29 s of CPU, under the GIL that the batches side by side share). Text
# is tested and quoted in utf8mb4 under `utf8mb4_bin`, whatever its column's collation (10.11
# found no fullwidth comma or quote under utf8mb4_unicode_ci either; byte for byte, no
# collation's equalities can matter); a double quote and the line breaks as CHAR codes
# (the driver's scanner of placeholders toggles on any quote character; no backslash escape).
_UTF8 = sql.SQL("utf8mb4")
_EMPTY = sql.SQL("''")
_DQUOTE = sql.SQL("CHAR(34 USING utf8mb4)")
_NEEDS_QUOTING = (44, 34, 10, 13)  # `,` `"` LF CR
_FRACTION = re.compile(r"\((\d+)\)")


class Part(NamedTuple):
    """A part of a row's CSV record as the DELETE returns it: `read` its SQL; `write` None
    when the server wrote the part (the fields of `columns`, quoted, joined by commas), else
    how this process writes the field of its one column from the value."""

    read: sql.Composable
    columns: tuple[str, ...]
    write: Format | None = None


_RECORDS: dict[tuple[Any, ...], tuple[Part, ...]] = {}


def _record(table: Table) -> tuple[Part, ...]:
    """`_parts`, composed once per table and shape (each batch's take asks for them: composed
    anew every time they were 0.56 s of the archive's 21 s under the GIL at 189,728
    patients). Two batches side by side may compose the same parts: either is kept."""
    known = (table.qname, tuple(table.columns.items()))
    found = _RECORDS.get(known)
    if found is None:
        if len(_RECORDS) >= 256:
            _RECORDS.clear()
        found = _RECORDS[known] = tuple(_parts(table))
    return found


def _parts(table: Table) -> list[Part]:
    """The parts of a row's CSV record, in the columns' order: a run of columns the server
    writes is one text; a float column is its value, written here (PostgreSQL's shortest
    digits, `float8_text`, which no MariaDB function writes)."""
    single = len(table.columns) == 1
    parts: list[Part] = []
    run: list[tuple[str, sql.Composable]] = []
    for name, column in table.columns.items():
        if _server_writes(column):
            run.append((name, _field(table, column, sql.Identifier(name), single)))
            continue
        if run:
            parts.append(_joined(run))
            run = []
        read, write = _format(table, column)
        parts.append(Part(read, (name,), _in_process(write, column, single)))
    if run:
        parts.append(_joined(run))
    return parts


# The server's text functions return NULL (warning 1301, not an error) for a result longer
# than `max_allowed_packet` (16 MiB by default on MariaDB, 64 MiB on MySQL 8): the server
# writes the fields of values whose text their type bounds (`_server_writes`); the others
# (bytes, whose hexadecimal doubles them; long texts, below; floats) are returned as they are
# and written here, as they all were before. The fields are joined by CONCAT, so a record
# past the server's limit (a table of thousands of such columns) is NULL as a whole, and the
# batch stops (`TooLongError`), never writing a record one field short.
#
# Texts the server quotes: at most this many characters. Its REPLACE (and REGEXP_REPLACE)
# take a time quadratic in the quotes a value holds (10.11: 65,535 quotes 1.5 s, 16,000 0.11
# s, 4,000 0.01 s; 9 MB of quotes did not end in 30 minutes, and KILL did not stop it): a
# TEXT of JSON would cost a batch seconds, a long one the server's CPU for hours.
_SERVER_TEXT_CHARS = 1024
_SHORT_TEXT_TYPES = frozenset({"tinytext", "enum"})  # 255 bytes; a label of 255 characters


def _server_writes(column: Column) -> bool:
    """Whether the server writes the column's field: numbers, dates, times, bits, addresses,
    and texts of at most `_SERVER_TEXT_CHARS` characters in a character set it converts."""
    base = column.base_type.lower()
    if base in {"double", "real", "float"} or base in _BYTES:
        return False
    if base in _TEXTS:
        if (column.collation or "binary") == "binary":
            return False  # bytes the server would not convert to utf8mb4: decoded here
        if column.max_length:
            return column.max_length <= _SERVER_TEXT_CHARS
        return base in _SHORT_TEXT_TYPES  # not TEXT, MEDIUMTEXT, LONGTEXT, SET or JSON
    return True


def _in_process(write: Format | None, column: Column, single: bool) -> Format:
    """How this process writes a column's field from its value (`_value`'s writer for a
    float; bytes as `\\x` and hexadecimal; text quoted where it must be)."""
    if write is not None:
        return write  # a float: digits, a sign, a point, an exponent: never quoted
    if column.base_type.lower() in _BYTES:
        return _bytes
    return lambda value: _quoted_text(_text(value), single)


_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def _quoted_text(text: str, single: bool) -> str:
    """A text field as `_quoted` writes it on the server."""
    if text == "" or _NEEDS_QUOTES.search(text) or (single and text == "\\."):
        return '"' + text.replace('"', '""') + '"'
    return text


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")  # UnicodeDecodeError: the batch rolls back
    return str(value)


def _bytes(value: Any) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return "\\x" + data.hex()


def _writer(parts: Sequence[Part]) -> Callable[[Sequence[Any]], bytes]:
    """A row's record from its parts as the DELETE returned them."""
    if len(parts) == 1 and parts[0].write is None:  # the server wrote the whole record
        return lambda returned: _line(returned[0])
    writes = [part.write for part in parts]

    def record(returned: Sequence[Any]) -> bytes:
        return _line(
            ",".join(
                [
                    _server_text(value) if write is None else "" if value is None else write(value)
                    for write, value in zip(writes, returned, strict=True)
                ]
            )
        )

    return record


def _line(text: Any) -> bytes:
    return (_server_text(text) + "\n").encode("utf-8")


def _server_text(text: Any) -> str:
    """The server's text as the driver returns it: a `str` (a result in utf8mb4), else bytes
    that must be UTF-8 (UnicodeDecodeError, a ValueError: the batch rolls back). None: the
    server wrote no text (every field is written non-NULL; `CONCAT` gives NULL past
    `max_allowed_packet`): `TooLongError`, the batch rolls back."""
    if text.__class__ is str:
        return str(text)
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8")
    if text is None:
        raise TooLongError
    raise TypeError(type(text).__name__)


class TooLongError(ValueError):
    """The server returned no record for a row: longer than its `max_allowed_packet`."""


def _joined(fields: Sequence[tuple[str, sql.Composable]]) -> Part:
    names = tuple(name for name, _ in fields)
    if len(fields) == 1:
        return Part(fields[0][1], names)
    # CONCAT, not CONCAT_WS: a NULL (a result past max_allowed_packet) makes the whole
    # record NULL, never a record one field short
    return Part(
        sql.SQL("CONCAT({})").format(sql.SQL(", ',', ").join(field for _, field in fields)),
        names,
    )


def _field(table: Table, column: Column, ref: sql.Composable, single: bool) -> sql.Composable:
    """A column's CSV field as the server writes it, as PostgreSQL's COPY (FORMAT csv) writes
    the same value's text (docs/ARCHIVE.md): a NULL the empty field, text quoted where it
    must be (`_quoted`). Only for the columns `_server_writes` names."""
    base = column.base_type.lower()
    text, _ = _format(table, column)  # a type with no exact text: UnreadableValueError
    if base in _TEXTS:
        if (column.collation or "").startswith("utf8mb4_"):
            return _quoted(sql.SQL("({} COLLATE utf8mb4_bin)").format(ref), single)
        return _quoted(
            sql.SQL("(CONVERT({} USING {}) COLLATE utf8mb4_bin)").format(ref, _UTF8), single
        )
    if base in _TIMES or base == "timestamp":
        found = _FRACTION.search(column.type)
        if found and int(found.group(1)) > 0:  # fractional seconds without trailing zeros
            text = sql.SQL("TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {}))").format(text)
        if base == "timestamp":  # UTC, but a zero date as it is
            text = sql.SQL("IF(LEFT({t}, 10) = '0000-00-00', {t}, CONCAT({t}, '+00'))").format(
                t=text
            )
    # numbers, dates, times, bits, addresses (text in the connection's utf8mb4):
    # never empty, never a comma, a quote or a line break
    return sql.SQL("IFNULL({}, {})").format(text, _EMPTY)


def _quoted(text: sql.Composable, single: bool) -> sql.Composable:
    """A text field: NULL empty; empty, holding `,` `"` CR or LF (or `\\.` alone in a
    one-column record) quoted, its quotes doubled. `OCTET_LENGTH`, not `= ''`: utf8mb4_bin
    pads with spaces (`' ' = ''` is true). One REGEXP (its pattern constant, compiled once),
    not a LOCATE per character: over 1.15 M rows of two text columns, 0.86 s against 2.5 s
    (0.31 s without quoting), measured on 10.11; `^$|` in the pattern took 1.85 s."""
    special = sql.SQL(" OR ").join(
        [
            sql.SQL("OCTET_LENGTH({}) = 0").format(text),
            sql.SQL("{} REGEXP CONCAT('[', CHAR({} USING utf8mb4), ']')").format(
                text, sql.SQL(", ").join(map(sql.Literal, _NEEDS_QUOTING))
            ),
            *([sql.SQL("HEX({}) = '5C2E'").format(text)] if single else []),
        ]
    )
    return sql.SQL(
        "CASE WHEN {t} IS NULL THEN '' WHEN {special} "
        "THEN CONCAT({q}, REPLACE({t}, {q}, CHAR(34, 34 USING utf8mb4)), {q}) ELSE {t} END"
    ).format(t=text, special=special, q=_DQUOTE)


def _double(value: Any) -> str:
    return float8_text(float(value))


def _float(value: Any) -> str:
    return float4_text(float(value))


# -- the archive catalogue (mariadb/migrations/004_archive.sql) -----------------------------------

_FILE_COLUMNS = (
    "file_id",
    "name",
    "version",
    "run_id",
    "policy",
    "policy_sha256",
    "phase",
    "created_at",
    "bytes",
    "sha256",
    "recipients",
)
_SEGMENT_COLUMNS = ("file_id", "grp", "expires_on", "subjects", "rows", "bytes", "sha256")


def _db_value(name: str, value: Any) -> Any:
    """Ids as their text (CHAR(36)), lists and documents as JSON text, times in UTC without
    zone (DATETIME(6))."""
    if value is None:
        return None
    if isinstance(value, UUID):
        return str(value)
    if name in ("recipients", "rows"):
        return json.dumps(list(value) if name == "recipients" else value, sort_keys=True)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def insert_file(
    conn: Connection, schema: str, file: Mapping[str, Any], segments: Sequence[Mapping[str, Any]]
) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(schema, "archive_files"),
            sql.SQL(", ").join(map(sql.Identifier, _FILE_COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(_FILE_COLUMNS)),
        ),
        [_db_value(c, file[c]) for c in _FILE_COLUMNS],
    )
    load(
        conn,
        sql.Identifier(schema, "archive_segments"),
        _SEGMENT_COLUMNS,
        [[_db_value(c, s[c]) for c in _SEGMENT_COLUMNS] for s in segments],
    )
    load(
        conn,
        sql.Identifier(schema, "archive_segment_subjects"),
        ("file_id", "grp", "ord", "digest"),
        [
            (str(s["file_id"]), s["grp"], i, digest)
            for s in segments
            for i, digest in enumerate(s["subject_digests"], 1)
        ],
    )


def read_files(
    conn: Connection,
    schema: str,
    conditions: Sequence[tuple[str, Any]],
    file_ids: Sequence[Any] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from retention.engines.rows import dict_row

    where: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    for name, value in conditions:
        if name == "destroyed":
            where.append(sql.SQL("f.destroyed_at IS NULL"))
        elif name == "policy":
            where.append(sql.SQL("f.policy = %s"))
            params.append(value)
    if file_ids is not None:
        ids = [str(i) for i in file_ids]
        if not ids:
            return [], []
        where.append(
            sql.SQL("f.file_id IN ({})").format(sql.SQL(", ").join(sql.Placeholder() * len(ids)))
        )
        params += ids
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT f.* FROM {} AS f WHERE {} ORDER BY f.created_at, f.file_id").format(
                sql.Identifier(schema, "archive_files"), sql.SQL(" AND ").join(where)
            ),
            params,
        )
        found: list[dict[str, Any]] = [_file_row(row) for row in cur.fetchall()]
        if not found:
            return [], []
        ids = [str(row["file_id"]) for row in found]
        listed = sql.SQL(", ").join(sql.Placeholder() * len(ids))
        cur.execute(
            sql.SQL("SELECT * FROM {} WHERE file_id IN ({}) ORDER BY file_id, grp").format(
                sql.Identifier(schema, "archive_segments"), listed
            ),
            ids,
        )
        segments: list[dict[str, Any]] = cur.fetchall()
        cur.execute(
            sql.SQL(
                "SELECT file_id, grp, digest FROM {} WHERE file_id IN ({}) "
                "ORDER BY file_id, grp, ord"
            ).format(sql.Identifier(schema, "archive_segment_subjects"), listed),
            ids,
        )
        digests: dict[tuple[str, str], list[str]] = {}
        for row in cur.fetchall():
            digests.setdefault((row["file_id"], row["grp"]), []).append(row["digest"])
    for segment in segments:
        segment["subject_digests"] = digests.get((segment["file_id"], segment["grp"]), [])
        segment["file_id"] = UUID(segment["file_id"])
        segment["rows"] = json.loads(segment["rows"])
        segment["destroyed_at"] = _aware(segment["destroyed_at"])
    return found, segments


def _file_row(row: dict[str, Any]) -> dict[str, Any]:
    row["file_id"] = UUID(row["file_id"])
    row["run_id"] = UUID(row["run_id"]) if row["run_id"] else None
    row["recipients"] = json.loads(row["recipients"])
    row["created_at"] = _aware(row["created_at"])
    row["destroyed_at"] = _aware(row["destroyed_at"])
    return row


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def latest_file_entries(conn: Connection, schema: str) -> dict[str, dict[str, Any]]:
    """The trail's `detail` is JSON text: each file's latest entry is found here."""
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    query = sql.SQL(
        "SELECT seq, event, detail FROM {} WHERE event IN ('batch', 'archive_expired') "
        "AND detail LIKE '%%file_id%%'"
    ).format(sql.Identifier(schema, "audit"))
    for seq, event, detail in conn.execute(query):
        document = json.loads(detail)
        entry = document.get("archive") if event == "batch" else document
        if not isinstance(entry, dict) or not isinstance(entry.get("file_id"), str):
            continue
        known = latest.get(entry["file_id"])
        if known is None or known[0] < int(seq):
            latest[entry["file_id"]] = (int(seq), entry)
    return {fid: entry for fid, (_, entry) in latest.items()}
