"""The SQL that differs between engines in the statements that find, change and delete rows.

The row builders (`retention.rows`), the actions (`retention.actions`) and a batch's lock
(`retention.engine.batch`) write what every engine reads alike and ask a :class:`Dialect` for the
rest: a set of keys bound as parameters (PostgreSQL: one array, `k = ANY(%s)`), casts, a row's
address, temporary tables, UPDATE and DELETE joined to other rows, lists of rows bound as
parameters, the lock clause, and writing many rows into a table. Each engine implements it in
its folder (`postgresql/dialect.py`, `mariadb/dialect.py`); callers reach it as
`engine_of(conn).dialect`, and the pure SQL builders take it as their `dialect` argument.

PostgreSQL's produces the statements the tool was built with. MariaDB's differences are in
docs/ENGINES.md (2.2, 2.5-2.7), and in each method's docstring here where they matter to a
caller (e.g. a temporary table that is not emptied at commit).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from retention.engines import sql
from retention.engines.catalogue import Column, Table

# a value type that is no column's: the digest of a text, a text, a flag
Neutral = Literal["bytes", "text", "boolean"]
Typed = Column | Neutral


class Cursors(Protocol):
    """What writing rows needs of a connection (`retention.engines.Connection` has it)."""

    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...


class Binder(Protocol):
    """Where values go as parameters (`retention.policy.expr.Params`)."""

    def add(self, value: object, *, binary: bool = False) -> sql.Composable: ...


@dataclass(frozen=True)
class RowSet:
    """Rows bound as parameters, usable as a FROM item (`source`, aliased); `columns` gives
    each column's value by name, as a statement reads it (e.g. a digest decoded)."""

    source: sql.Composable
    columns: Mapping[str, sql.Composable]


@dataclass(frozen=True)
class TemporaryTable:
    """A temporary table of this session: `renew` makes it exist and empty, whatever an earlier
    use (another phase of the batch, another batch) left there: run its statements before each
    use. `name` is how statements name it."""

    renew: tuple[sql.Composed, ...]
    name: sql.Composable


@dataclass(frozen=True)
class Membership:
    """Rows of a statement's table (aliased) restricted to a set of rows: `join` goes right
    after the table's alias (empty, or a JOIN clause with its leading space) and `condition`
    into the WHERE clause."""

    join: sql.Composable
    condition: sql.Composable
    # where the engine can drive a statement from the member rows (MariaDB: an UPDATE read
    # from them first, so that a small table is not scanned with every row left locked):
    # those rows as a FROM item with its alias, and how they meet the table's rows
    lead: sql.Composable | None = None
    on: sql.Composable | None = None


class Dialect(Protocol):
    """What differs between engines in the SQL of rows, actions and batches."""

    @property
    def name(self) -> str: ...

    @property
    def compares_text_exactly(self) -> bool:
        """Whether `=` and `>` on a text column compare its characters exactly (PostgreSQL,
        deterministic collations) rather than under a collation that folds case or accents
        (MariaDB's usual `_ci` collations): what an index on the column can answer exactly."""
        ...

    @property
    def holds_by_table_name(self) -> bool:
        """Whether a legal hold on a person names its table by the table's name alone, whatever
        the schema part it was recorded with (retention.store.holds). MariaDB/MySQL: the tool
        serves the connection's one database, whose name is that part, and a dump restored
        under another name keeps its holds (an outside review: they were ignored there)."""
        ...

    # -- sets of keys, bound as parameters ----------------------------------------------------
    def key_list(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        """The keys as the inside of `x IN (...)` (PostgreSQL `SELECT unnest(%(p)s::t[])`)."""
        ...

    def key_array(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        """The keys as what the clock's `key_in` takes: PostgreSQL an array (`%(p)s::t[]`),
        elsewhere the inside of `IN (...)`, as `key_list`."""
        ...

    def in_keys(
        self, expr: sql.Composable, params: Binder, keys: Sequence[Any], key: Column
    ) -> sql.Composable:
        """`expr` is one of `keys` (PostgreSQL `expr = ANY(%(p)s::t[])`)."""
        ...

    def key_rows(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        """A query of one column yielding the keys, to INSERT ... its rows."""
        ...

    def quantiles(self, expr: sql.Composable, count: int) -> sql.Composable:
        """An aggregate of the integer `expr`: the `count - 1` bounds that cut its values into
        `count` slices, as one array or a JSON array's text (retention.plan.slices reads
        either). PostgreSQL: `percentile_disc` at i/count of its order (slices of as many
        rows); MariaDB: i/count of the way from its least to its greatest value (slices of as
        wide a range: reading two ends of an index instead of sorting every key)."""
        ...

    def generated_key(self, key: sql.Composable) -> sql.Composable:
        """`key` is the value the session's last INSERT generated for it (an identity or
        AUTO_INCREMENT column): how a row is read back without RETURNING."""
        ...

    def list_holds(self, column: sql.Composable, value: sql.Composable) -> sql.Composable:
        """The list `column` (a text array, or a JSON array where there are no arrays) holds
        the text `value`."""
        ...

    def in_query(self, expr: sql.Composable, query: sql.Composable) -> sql.Composable:
        """`expr` is one of the values of the one-column `query`, computed once (PostgreSQL
        `expr = ANY(ARRAY(query))`: one index probe per value)."""
        ...

    def row_set(
        self,
        params: Binder,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[tuple[str, Typed]],
        alias: str,
    ) -> RowSet:
        """`rows` (one value per column of `columns`, each typed by its column or a neutral
        type) bound as parameters, as a FROM item aliased `alias`."""
        ...

    # -- values ---------------------------------------------------------------------------------
    def cast(self, value: sql.Composable, column: Column) -> sql.Composable:
        """`value` (a parameter) as a value of `column`'s type, for assignments and
        comparisons."""
        ...

    def as_text(self, expr: sql.Composable) -> sql.Composable:
        """`expr`'s value as text, as this process reads it."""
        ...

    def text_parameter(self, params: Binder, value: str) -> sql.Composable:
        """A text parameter compared with a text column."""
        ...

    def exact_text(self, expr: sql.Composable) -> sql.Composable:
        """`expr` as text compared byte for byte (case-sensitive patterns), in parentheses."""
        ...

    def distinct(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        """True when the values differ, a NULL differing from any value but NULL."""
        ...

    def comparable(self, expr: sql.Composable, column: Column) -> sql.Composable:
        """`expr`, a value of `column`'s type, as `distinct` and `=` can compare it."""
        ...

    def matches(
        self,
        expr: sql.Composable,
        pattern: str,
        params: Binder | None = None,
        *,
        negate: bool = False,
    ) -> sql.Composable:
        """`expr` matches the regular expression `pattern` (or does not, with `negate`), whose
        `$` ends the text as in PostgreSQL (MariaDB's `$` also matches before a final line
        feed); the pattern bound in `params`, or written in the statement without them."""
        ...

    def concat(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        """Two texts one after the other."""
        ...

    def digest(self, expr: sql.Composable) -> sql.Composable:
        """The SHA-256 (32 bytes) of `expr`'s text in UTF-8, as `hashlib.sha256` of the text
        `as_text` reads (the scrub ledger's digest)."""
        ...

    def truncate_date(
        self, ref: sql.Composable, column: Column, to: Literal["year", "month"], params: Binder
    ) -> sql.Composable:
        """A date column's value on the first day of its year or month (midnight), of the
        column's type; a value that is no calendar date stays as it is."""
        ...

    def floor_to(
        self, ref: sql.Composable, width: sql.Composable, column: Column
    ) -> sql.Composable:
        """A number column's value down to a multiple of `width`, of the column's type."""
        ...

    def exists(self, rest: sql.Composable) -> sql.Composable:
        """`EXISTS (SELECT ... FROM <rest>)`: whether `rest` (FROM items and WHERE) has a row."""
        ...

    # -- rows -----------------------------------------------------------------------------------
    def row_ids(self, table: Table) -> tuple[str, ...]:
        """The columns that tell one row of `table` from the others across statements, for
        `row_ref`: the primary key, else the engine's row address (PostgreSQL `tableoid`,
        `ctid`); MariaDB has none and takes the table's `row_key`. A table without one is
        refused (a clear error)."""
        ...

    def row_address(self, table: Table) -> tuple[str, ...]:
        """The cheapest columns that tell rows apart within one statement, for `row_ref`
        (PostgreSQL `tableoid`, `ctid`; MariaDB the table's `row_key`, as `row_ids`)."""
        ...

    def row_ref(self, alias: str, column: str) -> sql.Composable:
        """`alias.column` of a name from `row_ids` or `row_address` (PostgreSQL's system
        columns unquoted)."""
        ...

    def membership(
        self, alias: str, ids: Sequence[str], rows: Sequence[sql.Composable]
    ) -> Membership:
        """Rows (aliased `alias`) whose `ids` (names from `row_ids`) are among those the
        queries `rows` yield (each a SELECT of the ids, possibly overlapping)."""
        ...

    def key_membership(self, alias: str, key: str, keys: sql.Composable) -> Membership:
        """Rows (aliased `alias`) whose column `key` is among `keys` (a `key_list`)."""
        ...

    def member_rows(self, table: sql.Composable, alias: str, members: Membership) -> sql.Composable:
        """The FROM item of a statement reading (and locking) the rows of `table` (aliased
        `alias`) that `members` restricts: `table AS alias` then the membership's join, or
        where the engine can, read from the member rows first."""
        ...

    def lock(
        self, *, skip_locked: bool = False, no_key: bool = False, of: str | None = None
    ) -> sql.Composable:
        """The clause locking the rows a SELECT reads until the transaction ends: `no_key`, a
        lock that does not block inserts referencing them where the engine has one;
        `skip_locked`, rows locked by another transaction are left out; `of`, only the rows
        of that alias where the engine can say so."""
        ...

    # -- statements -----------------------------------------------------------------------------
    def update(
        self,
        table: sql.Composable,
        alias: str,
        assignments: Sequence[tuple[str, sql.Composable]],
        where: sql.Composable,
        *,
        join: Membership | None = None,
    ) -> sql.Composed:
        """`UPDATE table AS alias [join] SET column = value, ... WHERE where`. `join`: the
        `Membership` whose `join` (empty on an engine whose memberships are conditions)
        restricts the rows."""
        ...

    def update_from(
        self,
        table: sql.Composable,
        alias: str,
        source: sql.Composable,
        source_alias: str,
        on: sql.Composable,
        assignments: Sequence[tuple[str, sql.Composable]],
    ) -> sql.Composed:
        """Each row of `table` matching (`on`) a row of `source` updated from it
        (PostgreSQL `UPDATE ... FROM ... WHERE on`; MariaDB `UPDATE ... JOIN ... ON on`)."""
        ...

    def delete(
        self, table: sql.Composable, alias: str | None, where: sql.Composable
    ) -> sql.Composed:
        """`DELETE FROM table [AS alias] WHERE where`, in a form the engine plans with
        indexes."""
        ...

    def select_keys(
        self,
        table: sql.Composable,
        key: Column,
        params: Binder,
        keys: Sequence[Any],
        *,
        skip_locked: bool = False,
    ) -> sql.Composed:
        """The `key` of the rows of `table` whose key is one of `keys`, in key order; with
        `skip_locked`, locked `FOR UPDATE SKIP LOCKED` (a batch's subjects)."""
        ...

    def delete_keys(
        self, table: sql.Composable, key: Column, params: Binder, keys: Sequence[Any]
    ) -> sql.Composed:
        """Delete the rows of `table` whose `key` is one of `keys` (bound in `params`)."""
        ...

    def delete_linked(
        self,
        table: sql.Composable,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None = None,
    ) -> sql.Composed:
        """Delete the rows of `table` (aliased `alias`) whose `columns` equal the
        `parent_columns` of a row of `source` (a table), and that meet `extra`."""
        ...

    def any_linked(
        self,
        table: sql.Composable,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None = None,
    ) -> sql.Composed:
        """`SELECT 1 ... LIMIT 1`: whether a row of `table` is one `delete_linked` with the
        same arguments would delete, read the way it reads them (retention.rows.records)."""
        ...

    def insert_missing(
        self, table: sql.Composable, columns: Sequence[str], query: sql.Composable
    ) -> sql.Composed:
        """`INSERT INTO table (columns) query`, rows whose unique key exists already skipped."""
        ...

    # -- temporary tables -----------------------------------------------------------------------
    def temporary_table(self, name: str, columns: Sequence[tuple[str, Typed]]) -> TemporaryTable:
        """A temporary table of this session named `name` (which starts with `retention_`:
        on MariaDB a temporary table hides a table of the same name), its rows rolled back
        with the transaction."""
        ...

    def materialized(self, name: sql.Composable, query: sql.Composable) -> sql.Composable:
        """A common table expression computed once however often the statement reads it
        (PostgreSQL `name AS MATERIALIZED (query)`; MariaDB has no such keyword: `name AS
        (query)`, which its optimiser may merge into each reader, with the same results)."""
        ...

    def temporary(self, name: str) -> sql.Composable:
        """How statements name the temporary table `name` (PostgreSQL `pg_temp.name`)."""
        ...

    @property
    def prepare_temporary(self) -> bool | None:
        """The `prepare` argument for statements reading a temporary table that is created
        again per run: PostgreSQL False (a prepared statement keeps the table's row type);
        MariaDB None (it prepares each statement; False would read dates as text)."""
        ...

    # -- a run's due tables (retention.plan.compute) --------------------------------------------
    def drop_temporary(self, name: str) -> sql.Composed:
        """Drop this session's temporary table `name` if it exists, and nothing else (MariaDB:
        `DROP TEMPORARY TABLE`, since a plain `DROP TABLE` of a name no temporary table holds
        would drop the permanent table of that name)."""
        ...

    def index_temporary(self, name: str, columns: Sequence[str]) -> sql.Composed:
        """Index this session's temporary table `name` on `columns`, in this order."""
        ...

    def after(
        self, columns: Sequence[sql.Composable], values: Sequence[sql.Composable]
    ) -> sql.Composable:
        """`columns` come after `values` in lexicographic order (the row comparison `>`), as a
        condition that an index on `columns`, in this order, reads as one range."""
        ...

    def bool_or(self, expr: sql.Composable) -> sql.Composable:
        """The aggregate true when any of a group's flags is (MariaDB: flags are integers)."""
        ...

    def int_div(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        """Integer division, rounded towards zero, of two integers."""
        ...

    def day_number(self, expr: sql.Composable) -> sql.Composable:
        """A date as its number of days since 1970-01-01; NULL for NULL and, on PostgreSQL,
        for an infinite date."""
        ...

    # -- the report's statements (retention.report) --------------------------------------------
    def temporary_as(
        self, name: str, query: sql.Composable, *, unique: str | None = None
    ) -> sql.Composed:
        """`CREATE TEMPORARY TABLE name AS query` in a transaction, which it does not end:
        PostgreSQL drops the table at commit, MariaDB keeps it for the session (its users
        drop it: `drop_temporary`). `name` starts with `retention_`. `unique`: a column of
        distinct values that other statements join on; MariaDB gives it a unique index (it
        has no hash join by default: a join of two unindexed tables is a nested loop),
        PostgreSQL needs none."""
        ...

    def json_text(self, document: sql.Composable, key: str) -> sql.Composable:
        """The text of the member `key` (letters, digits, `_`) of a JSON object column; NULL
        when it is missing or null (PostgreSQL `document->>'key'`)."""
        ...

    def json_counts(self, document: sql.Composable, alias: str) -> RowSet:
        """A JSON object of integers (an audit entry's rows per table) as a FROM item joined
        after its row, aliased `alias`: one row per member, with `key` and `count`."""
        ...

    def count_distinct(
        self, columns: Sequence[sql.Composable], rest: sql.Composable
    ) -> sql.Composed:
        """A statement giving the number of distinct rows of `columns` (none NULL) over `rest`
        (`FROM ... WHERE ...`), as this engine counts them fastest (72,382 archived subjects:
        PostgreSQL's `SELECT DISTINCT` in a subquery 45 ms, its `count(DISTINCT (a, b))` 200 ms;
        MariaDB's `COUNT(DISTINCT a, b)` 80 ms, its `SELECT DISTINCT` 400 ms)."""
        ...

    def segment_digests(self, schema: str, segment: str, alias: str) -> sql.Composable:
        """The subject digests of the archive segment aliased `segment`, as a join after it
        aliased `alias` with one column `digest` (PostgreSQL: the segment's text[];
        MariaDB: its rows of `archive_segment_subjects`)."""
        ...

    # -- the tool's own tables (holds) ------------------------------------------------------------
    def same_text(self, expr: sql.Composable, value: sql.Composable) -> sql.Composable:
        """`expr`'s text equals `value` (a text parameter) character for character: case,
        accents and trailing spaces count (PostgreSQL `expr::text = value`; MariaDB compares
        the UTF-8 bytes, as every collation of its own, `_bin` included, ignores trailing
        spaces). No index serves it on MariaDB."""
        ...


_JSON_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_key(key: str) -> str:
    """`key` when it can be written in a statement as a JSON member's name (`json_text`)."""
    if not _JSON_KEY.fullmatch(key):
        raise ValueError(f"not a JSON member name that a statement can hold: {key!r}")
    return key


def or_postgresql(dialect: Dialect | None) -> Dialect:
    """`dialect`, or PostgreSQL's when None: the SQL builders' default, for callers that do
    not pass the engine's yet (the plan's and the report's, see docs/ENGINES.md)."""
    if dialect is not None:
        return dialect
    postgresql: Dialect = importlib.import_module("retention.engines.postgresql.dialect").DIALECT
    return postgresql
