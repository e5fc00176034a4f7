"""MariaDB's SQL for rows, actions and batches (10.6 and later; MySQL 8 noted where it differs).

What differs from PostgreSQL (docs/ENGINES.md 2.2, 2.5-2.7), and why it is written so:

- **No arrays.** A set of keys, or of rows, is one JSON parameter read by `JSON_TABLE`, typed by
  the key column. Measured for batches of 2,000 keys (`python -m bench.key_sets`, 200,000
  subjects): locking them 12 ms against 40-61 ms for an `IN` list of 2,000 placeholders,
  updating them 37-42 ms against 75-94 ms, a related table's rows 17-24 ms against 17-53 ms;
  rendering and preparing 2,000 placeholders alone costs about 28 ms, and the list would meet
  the protocol's limit of 65,535 parameters in a large write.
- **Joins, not `IN (subquery)`, to restrict an UPDATE or DELETE.** MariaDB 10.11 plans a
  single-table UPDATE or DELETE whose condition holds `IN (SELECT ...)` of another table as a
  dependent subquery, one probe per row of the whole table (EXPLAIN: `DEPENDENT SUBQUERY`,
  200,000 rows read for 6 changed); semi-join plans come with 11.1 (MDEV-7487). So a membership
  is a JOIN to a derived table of the member rows' keys (materialised: `SELECT DISTINCT`), a
  DELETE uses the multi-table form (`DELETE r FROM t AS r WHERE ...`), which gets semi-joins,
  and UPDATE ... FROM is `UPDATE ... JOIN`. A SELECT ... FOR UPDATE joined so locks the rows
  of its table, read by primary key from the derived table, rather than every row a scan
  meets.
- **No row address** (PostgreSQL's `ctid`): a row is told apart by its table's `row_key` (the
  primary key, else a unique key of NOT NULL columns); a table with neither is refused.
- **No `UPDATE ... RETURNING`**, no `ON CONFLICT`, no `IS DISTINCT FROM` (`<=>`), no `||` for
  text (a logical OR unless `PIPES_AS_CONCAT`), `REGEXP` instead of `~` (case follows the
  collation: `exact_text` compares bytes).
- **Temporary tables** live in no schema and hide a base table of the same name (names start
  with `retention_`); they are InnoDB (rolled back with the batch) and not emptied at commit:
  their users empty them before each use.
- **Casts** only where a text parameter would not convert by itself: a parameter stays
  coercible to the column's character set and collation (`CAST(? AS CHAR)` is not, and can
  make comparisons with a column of another collation fail).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from retention.engines import sql
from retention.engines.catalogue import Column, ColumnKind, Table
from retention.engines.dialect import (
    Binder,
    Membership,
    RowSet,
    TemporaryTable,
    Typed,
    json_key,
)
from retention.errors import DatabaseError

PREFIX = "retention_"  # every temporary table's name: it hides a base table of the same name
_ENUMS = frozenset({"enum", "set"})  # JSON_TABLE takes neither as a column type
_DATES = {
    ColumnKind.DATE: "DATE",
    ColumnKind.DATETIME: "DATETIME(6)",
    ColumnKind.TIMESTAMP: "DATETIME(6)",  # read in the session's zone (+00:00), as stored
}
_NEUTRAL_TABLE = {"bytes": "LONGBLOB", "text": "LONGTEXT", "boolean": "BOOLEAN"}
# the largest LIMIT: a derived table with a LIMIT is never merged into the query reading it
_UNMERGED = sql.SQL("LIMIT 18446744073709551615")


class NoRowKeyError(DatabaseError):
    """A table whose rows cannot be told apart on MariaDB (no primary or unique key)."""


class MariaDBDialect:
    name = "mariadb"
    prepare_temporary: bool | None = None  # prepared anew each time; False would read as text
    compares_text_exactly = False
    holds_by_table_name = True  # the database's name is no part of whom a hold protects

    # -- sets of keys ------------------------------------------------------------------------
    def key_list(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        return sql.SQL(
            "SELECT DISTINCT k FROM JSON_TABLE({}, '$[*]' COLUMNS (k {} PATH '$')) AS j"
        ).format(params.add(_json(keys)), sql.SQL(_json_type(key)))

    def key_array(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        """The batch's keys as the locked re-check's clock reads them, in the subject's filter
        and in each aggregate's (`k IN (...)`): fenced in a derived table (a LIMIT keeps it
        unmerged), which MariaDB materialises once per statement with an index. Unfenced, the
        aggregates' split materialisation (LATERAL DERIVED, one index lookup per subject) made
        their `IN (JSON_TABLE)` a DEPENDENT SUBQUERY, the JSON parsed again for every child row:
        a batch cost (batch size)^2, 2.4-4.2 s per 2,000 keys at 15,178 patients against
        0.15-0.26 s fenced, the same keys (bench/mariadb_recheck.py, bench/RESULTS.md)."""
        return sql.SQL("SELECT k FROM ({} {}) AS jk").format(
            self.key_list(params, keys, key), _UNMERGED
        )

    def in_keys(
        self, expr: sql.Composable, params: Binder, keys: Sequence[Any], key: Column
    ) -> sql.Composable:
        return sql.SQL("{} IN ({})").format(expr, self.key_list(params, keys, key))

    def key_rows(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        return self.key_list(params, keys, key)

    def quantiles(self, expr: sql.Composable, count: int) -> sql.Composable:
        # in DECIMAL: the width of a BIGINT range can exceed BIGINT
        low = sql.SQL("CAST(MIN({}) AS DECIMAL(65))").format(expr)
        high = sql.SQL("CAST(MAX({}) AS DECIMAL(65))").format(expr)
        return sql.SQL("JSON_ARRAY({})").format(
            sql.SQL(", ").join(
                sql.SQL("CAST(FLOOR({low} + ({high} - {low}) * {i} / {n}) AS CHAR)").format(
                    low=low, high=high, i=sql.Literal(i), n=sql.Literal(count)
                )
                for i in range(1, count)
            )
        )

    def generated_key(self, key: sql.Composable) -> sql.Composable:
        return sql.SQL("{} = LAST_INSERT_ID()").format(key)

    def list_holds(self, column: sql.Composable, value: sql.Composable) -> sql.Composable:
        return sql.SQL("JSON_CONTAINS({}, JSON_QUOTE({}))").format(column, value)

    def in_query(self, expr: sql.Composable, query: sql.Composable) -> sql.Composable:
        return sql.SQL("{} IN ({})").format(expr, query)

    def row_set(
        self,
        params: Binder,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[tuple[str, Typed]],
        alias: str,
    ) -> RowSet:
        paths = sql.SQL(", ").join(
            sql.SQL("{} {} PATH {}").format(
                sql.Identifier(name),
                sql.SQL(_hex_type(rows, i) if typed == "bytes" else _json_type(typed)),
                sql.SQL(f"'$[{i}]'"),
            )
            for i, (name, typed) in enumerate(columns)
        )
        source = sql.SQL("JSON_TABLE({}, '$[*]' COLUMNS ({})) AS {}").format(
            params.add(json.dumps([[_json_value(v) for v in row] for row in rows])),
            paths,
            sql.SQL(alias),
        )
        refs: dict[str, sql.Composable] = {}
        for name, typed in columns:
            ref = sql.SQL("{}.{}").format(sql.SQL(alias), sql.Identifier(name))
            # bytes travel in hexadecimal (_json_value), decoded where they are read
            refs[name] = sql.SQL("UNHEX({})").format(ref) if typed == "bytes" else ref
        return RowSet(source, refs)

    # -- values --------------------------------------------------------------------------------
    def cast(self, value: sql.Composable, column: Column) -> sql.Composable:
        target = _DATES.get(column.kind)
        if target is None:  # text and numbers convert by themselves, and stay coercible
            return value
        return sql.SQL("CAST({} AS {})").format(value, sql.SQL(target))

    def as_text(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("CAST({} AS CHAR CHARACTER SET utf8mb4)").format(expr)

    def text_parameter(self, params: Binder, value: str) -> sql.Composable:
        return params.add(value)

    def exact_text(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("(CAST({} AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin)").format(expr)

    def distinct(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        return sql.SQL("NOT ({} <=> {})").format(left, right)

    def comparable(self, expr: sql.Composable, column: Column) -> sql.Composable:
        return expr  # no domains: every column's values compare as they are

    def matches(
        self,
        expr: sql.Composable,
        pattern: str,
        params: Binder | None = None,
        *,
        negate: bool = False,
    ) -> sql.Composable:
        # PCRE's `$` also matches before a final line feed (PostgreSQL's does not): `\z`
        if pattern.endswith("$") and not pattern.endswith("\\$"):
            pattern = pattern[:-1] + "\\z"
        bound = sql.Literal(pattern) if params is None else params.add(pattern)
        return sql.SQL("{} NOT REGEXP {}" if negate else "{} REGEXP {}").format(expr, bound)

    def concat(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        return sql.SQL("CONCAT({}, {})").format(left, right)

    def digest(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("UNHEX(SHA2({}, 256))").format(self.as_text(expr))

    def truncate_date(
        self, ref: sql.Composable, column: Column, to: Literal["year", "month"], params: Binder
    ) -> sql.Composable:
        day = sql.SQL("MAKEDATE(YEAR({}), 1)").format(ref)
        if to == "month":
            day = sql.SQL("{} + INTERVAL (MONTH({}) - 1) MONTH").format(day, ref)
        if column.kind is not ColumnKind.DATE:
            day = sql.SQL("CAST({} AS DATETIME)").format(day)
        # a zero date or a date with a zero month or day is no calendar date: left as it is
        # (MAKEDATE would make 2000-01-01 of it)
        return sql.SQL(
            "(CASE WHEN MONTH({r}) = 0 OR DAYOFMONTH({r}) = 0 THEN {r} ELSE {d} END)"
        ).format(r=ref, d=day)

    def floor_to(
        self, ref: sql.Composable, width: sql.Composable, column: Column
    ) -> sql.Composable:
        return sql.SQL("({} * {})").format(floor_div(ref, width), width)

    def exists(self, rest: sql.Composable) -> sql.Composable:
        return sql.SQL("EXISTS (SELECT 1 FROM {})").format(rest)

    # -- rows ----------------------------------------------------------------------------------
    def row_address(self, table: Table) -> tuple[str, ...]:
        return self.row_ids(table)

    def row_ids(self, table: Table) -> tuple[str, ...]:
        found = table.row_key
        if not found:
            raise NoRowKeyError(
                f"{table.label} has no primary key nor unique key of NOT NULL columns: on "
                "MariaDB its rows cannot be told apart one by one",
                hint="add a primary key to the table, or leave it out of the policy",
            )
        return found

    def row_ref(self, alias: str, column: str) -> sql.Composable:
        return sql.Identifier(alias, column)

    def membership(
        self, alias: str, ids: Sequence[str], rows: Sequence[sql.Composable]
    ) -> Membership:
        lead = sql.SQL("(SELECT DISTINCT * FROM ({}) AS u) AS m").format(
            sql.SQL(" UNION ALL ").join(rows)
        )
        on = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(alias, c), sql.Identifier("m", c)) for c in ids
        )
        return Membership(sql.SQL(" JOIN {} ON {}").format(lead, on), sql.SQL("TRUE"), lead, on)

    def key_membership(self, alias: str, key: str, keys: sql.Composable) -> Membership:
        # a join, not `IN`: see the module docstring (`keys` is distinct: `key_list`)
        lead = sql.SQL("({}) AS m").format(keys)
        on = sql.SQL("{} = m.k").format(sql.Identifier(alias, key))
        return Membership(sql.SQL(" JOIN {} ON {}").format(lead, on), sql.SQL("TRUE"), lead, on)

    def member_rows(self, table: sql.Composable, alias: str, members: Membership) -> sql.Composable:
        if members.lead is not None and members.on is not None:
            # the member rows first (STRAIGHT_JOIN): see `update`
            return sql.SQL("{} STRAIGHT_JOIN {} AS {} ON {}").format(
                members.lead, table, sql.SQL(alias), members.on
            )
        return sql.SQL("{} AS {}{}").format(table, sql.SQL(alias), members.join)

    def lock(
        self, *, skip_locked: bool = False, no_key: bool = False, of: str | None = None
    ) -> sql.Composable:
        # no weaker row lock than FOR UPDATE, and no OF: the joined derived tables are
        # materialised, their rows not locked
        return sql.SQL("FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE")

    # -- statements ----------------------------------------------------------------------------
    def update(
        self,
        table: sql.Composable,
        alias: str,
        assignments: Sequence[tuple[str, sql.Composable]],
        where: sql.Composable,
        *,
        join: Membership | None = None,
    ) -> sql.Composed:
        if join is not None and join.lead is not None and join.on is not None:
            # read from the member rows first (STRAIGHT_JOIN): joined the other way, a small
            # table is scanned and every row it meets stays locked until the commit, so that
            # another worker's batch finds its own subjects locked (measured, 150 rows)
            return sql.SQL("UPDATE {} STRAIGHT_JOIN {} AS {} ON {} SET {} WHERE {}").format(
                join.lead, table, sql.SQL(alias), join.on, _set(alias, assignments), where
            )
        return sql.SQL("UPDATE {} AS {}{} SET {} WHERE {}").format(
            table,
            sql.SQL(alias),
            join.join if join else sql.SQL(""),
            _set(alias, assignments),
            where,
        )

    def update_from(
        self,
        table: sql.Composable,
        alias: str,
        source: sql.Composable,
        source_alias: str,
        on: sql.Composable,
        assignments: Sequence[tuple[str, sql.Composable]],
    ) -> sql.Composed:
        # read from the source first, as in `update`
        return sql.SQL("UPDATE {} AS {} STRAIGHT_JOIN {} AS {} ON {} SET {}").format(
            source, sql.SQL(source_alias), table, sql.SQL(alias), on, _set(alias, assignments)
        )

    def delete(
        self, table: sql.Composable, alias: str | None, where: sql.Composable
    ) -> sql.Composed:
        # the multi-table form, planned with semi-joins (see the module docstring)
        if alias is None:
            return sql.SQL("DELETE {t} FROM {t} WHERE {w}").format(t=table, w=where)
        return sql.SQL("DELETE {a} FROM {t} AS {a} WHERE {w}").format(
            a=sql.SQL(alias), t=table, w=where
        )

    def select_keys(
        self,
        table: sql.Composable,
        key: Column,
        params: Binder,
        keys: Sequence[Any],
        *,
        skip_locked: bool = False,
    ) -> sql.Composed:
        # read from the keys first (STRAIGHT_JOIN): a semi-join would scan a small table, lock
        # every row it read and leave another worker's subjects locked for the batch's length
        k = sql.Identifier("r", key.name)
        return sql.SQL(
            "SELECT {k} FROM ({keys}) AS m STRAIGHT_JOIN {t} AS r ON {k} = m.k ORDER BY {k} {lock}"
        ).format(
            k=k,
            keys=self.key_list(params, keys, key),
            t=table,
            lock=self.lock(skip_locked=True) if skip_locked else sql.SQL(""),
        )

    def delete_keys(
        self, table: sql.Composable, key: Column, params: Binder, keys: Sequence[Any]
    ) -> sql.Composed:
        # read from the keys first (STRAIGHT_JOIN), as `update`: a semi-join would scan a small
        # table and keep each row it read locked (measured: a second session's DELETE of other
        # keys then waits and times out)
        return sql.SQL("DELETE r FROM ({}) AS m STRAIGHT_JOIN {} AS r ON r.{} = m.k").format(
            self.key_list(params, keys, key), table, sql.Identifier(key.name)
        )

    def delete_linked(
        self,
        table: sql.Composable,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None = None,
    ) -> sql.Composed:
        query = sql.SQL("DELETE {a} FROM {driven}").format(
            a=sql.SQL(alias), driven=_driven(table, alias, columns, source, parent_columns)
        )
        return query if extra is None else sql.SQL("{} WHERE {}").format(query, extra)

    def any_linked(
        self,
        table: sql.Composable,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None = None,
    ) -> sql.Composed:
        # driven from the batch's values, as the DELETE is (an `IN (SELECT ...)` under a
        # LIMIT 1 may be read from the table's side, a whole scan when none is found)
        query = sql.SQL("SELECT 1 FROM {}").format(
            _driven(table, alias, columns, source, parent_columns)
        )
        if extra is not None:
            query = sql.SQL("{} WHERE {}").format(query, extra)
        return sql.SQL("{} LIMIT 1").format(query)

    def insert_missing(
        self, table: sql.Composable, columns: Sequence[str], query: sql.Composable
    ) -> sql.Composed:
        # the existing row left as it is, whichever unique key it holds (INSERT IGNORE would
        # also turn other errors into warnings); qualified: the query may read that name too
        first = sql.SQL("{}.{}").format(table, sql.Identifier(columns[0]))
        return sql.SQL("INSERT INTO {} ({}) {} ON DUPLICATE KEY UPDATE {} = {}").format(
            table, sql.SQL(", ").join(map(sql.Identifier, columns)), query, first, first
        )

    # -- temporary tables ----------------------------------------------------------------------
    def temporary_table(self, name: str, columns: Sequence[tuple[str, Typed]]) -> TemporaryTable:
        table = self.temporary(name)
        create = sql.SQL("CREATE TEMPORARY TABLE {} ({}) ENGINE=InnoDB").format(
            table,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(_table_type(t)))
                for n, t in columns
            ),
        )
        # made anew for each use, not emptied by DELETE: InnoDB's row estimate of a temporary
        # table emptied and refilled batch after batch only grows (49,272 rows estimated for
        # 6,221 in a batch's link values after 18 batches at 189,728 patients), until the
        # optimizer reads the child table's whole index range and probes the link values
        # instead of the other way round: 0.92 s and 412,427 rows examined for a batch's
        # prescriptions instead of 0.03 s and 30,130; more batches at a larger scale, worse.
        # Dropping a temporary table does not end the transaction.
        return TemporaryTable((self.drop_temporary(name), create), table)

    def materialized(self, name: sql.Composable, query: sql.Composable) -> sql.Composable:
        return sql.SQL("{} AS ({})").format(name, query)

    def temporary(self, name: str) -> sql.Composable:
        if not name.startswith(PREFIX):
            raise ValueError(f"a temporary table's name starts with {PREFIX!r}: {name!r}")
        return sql.Identifier(name)

    # -- a run's due tables ---------------------------------------------------------------------
    def drop_temporary(self, name: str) -> sql.Composed:
        return sql.SQL("DROP TEMPORARY TABLE IF EXISTS {}").format(self.temporary(name))

    def index_temporary(self, name: str, columns: Sequence[str]) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ADD INDEX ({})").format(
            self.temporary(name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )

    def after(
        self, columns: Sequence[sql.Composable], values: Sequence[sql.Composable]
    ) -> sql.Composable:
        # spelt out: MariaDB reads no index range from a row comparison `(a, b) > (x, y)`, and
        # a batch's next keys were then a scan and a sort of the whole due table, every batch
        # (74,569 rows read for 2,000 at 189,728 patients; 290,000 due at 758,912)
        first, *rest = zip(columns, values, strict=True)
        if not rest:
            return sql.SQL("{} > {}").format(*first)
        return sql.SQL("({c} > {v} OR {c} = {v} AND {r})").format(
            c=first[0],
            v=first[1],
            r=self.after([c for c, _ in rest], [v for _, v in rest]),
        )

    def bool_or(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("MAX({})").format(expr)

    def int_div(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        return sql.SQL("({}) DIV ({})").format(left, right)

    def day_number(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("DATEDIFF({}, DATE '1970-01-01')").format(expr)

    # -- the report's statements ---------------------------------------------------------------
    def temporary_as(
        self, name: str, query: sql.Composable, *, unique: str | None = None
    ) -> sql.Composed:
        # a unique index (not a plain one): a TEXT column gets MariaDB's hashed unique key
        # instead of error 1170 (a plain index on TEXT needs a prefix length)
        index = sql.SQL("(UNIQUE ({})) ").format(sql.Identifier(unique)) if unique else sql.SQL("")
        return sql.SQL("CREATE TEMPORARY TABLE {} {}ENGINE=InnoDB AS {}").format(
            self.temporary(name), index, query
        )

    def json_text(self, document: sql.Composable, key: str) -> sql.Composable:
        # the path written in the text (MySQL's JSON_VALUE takes no parameter there): a name
        # `json_key` allows, letters, digits and `_`, cannot end the string literal
        path = sql.SQL(f"'$.{json_key(key)}'")
        return sql.SQL("JSON_VALUE({}, {})").format(document, path)

    def json_counts(self, document: sql.Composable, alias: str) -> RowSet:
        # no JSON_TABLE over an object's members: its keys' array (JSON_KEYS) and its values'
        # (`$.*`), both in the document's order, matched by position. Not by name: a path
        # `$."séjours"` does not find a key stored escaped (`s\u00e9jours`, as render.py's
        # json.dumps writes it)
        source = sql.SQL(
            "JSON_TABLE(JSON_KEYS({}), '$[*]' COLUMNS (n FOR ORDINALITY, {} VARCHAR(255) PATH "
            "'$')) AS {}"
        ).format(document, sql.Identifier("key"), sql.Identifier(alias))
        # JSON_EXTRACT: MySQL's JSON_VALUE takes only a literal path
        count = sql.SQL(
            "CAST(JSON_EXTRACT(JSON_EXTRACT({}, '$.*'), CONCAT('$[', {} - 1, ']')) AS SIGNED)"
        ).format(document, sql.Identifier(alias, "n"))
        return RowSet(source, {"key": sql.Identifier(alias, "key"), "count": count})

    def count_distinct(
        self, columns: Sequence[sql.Composable], rest: sql.Composable
    ) -> sql.Composed:
        # COUNT(DISTINCT ...) keeps its rows in a tree in memory; a DISTINCT subquery fills an
        # internal temporary table with a unique index, five times slower (the docstring)
        return sql.SQL("SELECT COUNT(DISTINCT {}) {}").format(sql.SQL(", ").join(columns), rest)

    def segment_digests(self, schema: str, segment: str, alias: str) -> sql.Composable:
        return sql.SQL("JOIN {} AS {a} ON {a}.file_id = {s}.file_id AND {a}.grp = {s}.grp").format(
            sql.Identifier(schema, "archive_segment_subjects"),
            a=sql.Identifier(alias),
            s=sql.Identifier(segment),
        )

    # -- the tool's own tables (holds) ---------------------------------------------------------
    def same_text(self, expr: sql.Composable, value: sql.Composable) -> sql.Composable:
        # binary strings compare byte for byte, trailing spaces included (collations pad)
        return sql.SQL("CAST({} AS BINARY) = CAST({} AS BINARY)").format(self.as_text(expr), value)

    # -- writing many rows ---------------------------------------------------------------------


def _set(alias: str, assignments: Sequence[tuple[str, sql.Composable]]) -> sql.Composable:
    """Assignments with the target's columns qualified: a joined table may hold the same
    names (assignments that read only their own column, as here, need no order)."""
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(alias, column), value)
        for column, value in assignments
    )


def _json_type(typed: Typed) -> str:
    """A column type JSON_TABLE accepts for values of `typed` (text in the column's collation:
    compared with it, a value of the session's would be error 1267, an illegal mix)."""
    if isinstance(typed, str):
        return {"bytes": "LONGTEXT", "text": "LONGTEXT", "boolean": "INT"}[typed]
    if typed.base_type in _ENUMS:
        return "VARCHAR(255)" + _collated(typed)  # an enum value has at most 255 characters
    if typed.kind is ColumnKind.JSON:
        return "LONGTEXT"
    return typed.type + _collated(typed)


_COLLATION = re.compile(r"[a-z0-9]+_[a-z0-9_]+")


def _collated(typed: Column) -> str:
    """` CHARACTER SET cs COLLATE collation` for a text column whose collation is known."""
    if typed.kind is not ColumnKind.TEXT or typed.collation is None:
        return ""
    if not _COLLATION.fullmatch(typed.collation):  # not a name of the server's: none written
        return ""
    charset = typed.collation.split("_", 1)[0]
    return f" CHARACTER SET {charset} COLLATE {typed.collation}"


def _hex_type(rows: Sequence[Sequence[Any]], i: int) -> str:
    """The JSON_TABLE column of bytes in hexadecimal: as long as the longest. Not LONGTEXT:
    MariaDB 10.11 gives '' for `SELECT DISTINCT UNHEX(c)` of a LONGTEXT column of JSON_TABLE
    (the scrub ledger's INSERT ... SELECT DISTINCT would record empty digests)."""
    width = max((2 * len(row[i]) for row in rows if row[i] is not None), default=2)
    if width > 16_000:
        raise ValueError("bytes longer than 8,000 in a MariaDB row set")
    return f"VARCHAR({width}) CHARACTER SET ascii"


def _table_type(typed: Typed) -> str:
    return _NEUTRAL_TABLE[typed] if isinstance(typed, str) else typed.type + _collated(typed)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal | date | datetime | time | timedelta):
        return str(value)
    raise TypeError(f"cannot send a value of type {type(value).__name__} in a MariaDB row set")


def _json(values: Sequence[Any]) -> str:
    return json.dumps([_json_value(v) for v in values])


def _driven(
    table: sql.Composable,
    alias: str,
    columns: Sequence[str],
    source: sql.Composable,
    parent_columns: Sequence[str],
) -> sql.Composed:
    """The distinct values of `source`, then the rows of `table` (aliased `alias`) whose
    `columns` equal them, in that order (`STRAIGHT_JOIN`)."""
    lead = sql.SQL("(SELECT DISTINCT {} FROM {}) AS m").format(
        sql.SQL(", ").join(map(sql.Identifier, parent_columns)), source
    )
    on = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(alias, c), sql.Identifier("m", pc))
        for c, pc in zip(columns, parent_columns, strict=True)
    )
    return sql.SQL("{lead} STRAIGHT_JOIN {t} AS {a} ON {on}").format(
        lead=lead, t=table, a=sql.SQL(alias), on=on
    )


def floor_div(x: sql.Composable, d: sql.Composable) -> sql.Composable:
    """The floor of `x / d` (`d` > 0), exact on both servers. Not FLOOR(x / d): MySQL rounds the
    quotient to div_precision_increment (4) decimals first, so that the last 4 seconds of a
    day read as the next day; not MOD: MariaDB's decimal MOD gives -0.0, which is `<> 0`."""
    return sql.SQL("(({x}) DIV ({d}) - (({x}) < (({x}) DIV ({d})) * ({d})))").format(x=x, d=d)


DIALECT = MariaDBDialect()
