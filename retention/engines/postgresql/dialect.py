"""PostgreSQL's SQL for rows, actions and batches: the statements the tool was built with.

Keys travel as one array parameter in binary (`= ANY(%(p)b::t[])`, `unnest`), cast to the key
column's type (sent in binary, strings arrive as text[], and char(n) = text ignores padding); a
row without a primary key is told apart by its partition and place (`tableoid`, `ctid`);
temporary tables live in `pg_temp` and are emptied at each commit; bulk writes are COPY.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from retention.engines import sql
from retention.engines.catalogue import Column, Table
from retention.engines.dialect import (
    Binder,
    Membership,
    RowSet,
    TemporaryTable,
    Typed,
    json_key,
)

# A row without a primary key: its partition (or table) and its place there.
ROW_ADDRESS = ("tableoid", "ctid")

_NEUTRAL = {"bytes": "bytea", "text": "text", "boolean": "boolean"}


def type_name(typed: Typed) -> str:
    """The SQL type of a column's values (as the catalogue declares it) or of a neutral type."""
    return _NEUTRAL[typed] if isinstance(typed, str) else typed.type


class PostgreSQLDialect:
    name = "postgresql"
    prepare_temporary: bool | None = False  # a prepared statement keeps the table's row type
    compares_text_exactly = True
    holds_by_table_name = False  # schema.table: two schemas may hold tables of one name

    # -- sets of keys ------------------------------------------------------------------------
    def key_list(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        return sql.SQL("SELECT unnest({})").format(self.key_array(params, keys, key))

    def key_array(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        return sql.SQL("{}::{}[]").format(params.add(list(keys), binary=True), sql.SQL(key.type))

    def in_keys(
        self, expr: sql.Composable, params: Binder, keys: Sequence[Any], key: Column
    ) -> sql.Composable:
        return sql.SQL("{} = ANY({})").format(expr, self.key_array(params, keys, key))

    def key_rows(self, params: Binder, keys: Sequence[Any], key: Column) -> sql.Composable:
        return self.key_list(params, keys, key)

    def quantiles(self, expr: sql.Composable, count: int) -> sql.Composable:
        fractions = sql.SQL(", ").join(sql.Literal(i / count) for i in range(1, count))
        return sql.SQL("percentile_disc(ARRAY[{}]::float8[]) WITHIN GROUP (ORDER BY {})").format(
            fractions, expr
        )

    def generated_key(self, key: sql.Composable) -> sql.Composable:
        return sql.SQL("{} = lastval()").format(key)

    def list_holds(self, column: sql.Composable, value: sql.Composable) -> sql.Composable:
        return sql.SQL("{} = ANY({})").format(value, column)

    def in_query(self, expr: sql.Composable, query: sql.Composable) -> sql.Composable:
        # ARRAY(...) is computed once (an InitPlan); each value is one index probe
        return sql.SQL("{} = ANY(ARRAY({}))").format(expr, query)

    def row_set(
        self,
        params: Binder,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[tuple[str, Typed]],
        alias: str,
    ) -> RowSet:
        arrays = [
            sql.SQL("{}::{}[]").format(
                params.add([row[i] for row in rows], binary=True), sql.SQL(type_name(typed))
            )
            for i, (_, typed) in enumerate(columns)
        ]
        source = sql.SQL("unnest({}) AS {}({})").format(
            sql.SQL(", ").join(arrays),
            sql.SQL(alias),
            sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns),
        )
        return RowSet(source, {name: _qualified(alias, name) for name, _ in columns})

    # -- values --------------------------------------------------------------------------------
    def cast(self, value: sql.Composable, column: Column) -> sql.Composable:
        return sql.SQL("{}::{}").format(value, sql.SQL(column.type))

    def as_text(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("{}::text").format(expr)

    def text_parameter(self, params: Binder, value: str) -> sql.Composable:
        return sql.SQL("{}::text").format(params.add(value))

    def exact_text(self, expr: sql.Composable) -> sql.Composable:
        # pattern matching refuses nondeterministic collations; the patterns are ASCII
        return sql.SQL('({}::text COLLATE "C")').format(expr)

    def distinct(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        return sql.SQL("{} IS DISTINCT FROM {}").format(left, right)

    def comparable(self, expr: sql.Composable, column: Column) -> sql.Composable:
        if column.is_enum_domain:  # no `=` of its own: its values compare as the enum's
            return sql.SQL("({})::{}").format(expr, sql.SQL(column.base_type))
        return expr

    def matches(
        self,
        expr: sql.Composable,
        pattern: str,
        params: Binder | None = None,
        *,
        negate: bool = False,
    ) -> sql.Composable:
        bound = sql.Literal(pattern) if params is None else params.add(pattern)
        return sql.SQL("{} !~ {}" if negate else "{} ~ {}").format(expr, bound)

    def concat(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        return sql.SQL("{} || {}").format(left, right)

    def digest(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("sha256(convert_to({}::text, 'UTF8'))").format(expr)

    def truncate_date(
        self, ref: sql.Composable, column: Column, to: Literal["year", "month"], params: Binder
    ) -> sql.Composable:
        return sql.SQL("date_trunc({}, {})::{}").format(params.add(to), ref, sql.SQL(column.type))

    def floor_to(
        self, ref: sql.Composable, width: sql.Composable, column: Column
    ) -> sql.Composable:
        return sql.SQL("(floor({r} / {w}::numeric) * {w})::{t}").format(
            r=ref, w=width, t=sql.SQL(column.type)
        )

    def exists(self, rest: sql.Composable) -> sql.Composable:
        return sql.SQL("EXISTS (SELECT FROM {})").format(rest)

    # -- rows ----------------------------------------------------------------------------------
    def row_ids(self, table: Table) -> tuple[str, ...]:
        # a ctid is unique within one partition only
        return table.primary_key or ROW_ADDRESS

    def row_address(self, table: Table) -> tuple[str, ...]:
        return ROW_ADDRESS

    def row_ref(self, alias: str, column: str) -> sql.Composable:
        if column in ROW_ADDRESS:
            return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.SQL(column))
        return sql.Identifier(alias, column)

    def membership(
        self, alias: str, ids: Sequence[str], rows: Sequence[sql.Composable]
    ) -> Membership:
        # an IN of the ids, not an OR of IN subqueries (which would scan the whole table)
        condition = sql.SQL("({}) IN ({})").format(
            sql.SQL(", ").join(self.row_ref(alias, c) for c in ids),
            sql.SQL(" UNION ALL ").join(rows),
        )
        return Membership(sql.SQL(""), condition)

    def key_membership(self, alias: str, key: str, keys: sql.Composable) -> Membership:
        return Membership(
            sql.SQL(""), sql.SQL("{} IN ({})").format(sql.Identifier(alias, key), keys)
        )

    def member_rows(self, table: sql.Composable, alias: str, members: Membership) -> sql.Composable:
        return sql.SQL("{} AS {}{}").format(table, sql.SQL(alias), members.join)

    def lock(
        self, *, skip_locked: bool = False, no_key: bool = False, of: str | None = None
    ) -> sql.Composable:
        clause = "FOR NO KEY UPDATE" if no_key else "FOR UPDATE"
        of_alias = sql.SQL(" OF {}").format(sql.SQL(of)) if of is not None else sql.SQL("")
        skip = sql.SQL(" SKIP LOCKED" if skip_locked else "")
        return sql.Composed([sql.SQL(clause), of_alias, skip])

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
        if join is not None and join.join.as_string(None):
            raise ValueError("PostgreSQL's memberships are conditions, never joins")
        return sql.SQL("UPDATE {} AS {} SET {} WHERE {}").format(
            table, sql.SQL(alias), _set(assignments), where
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
        return sql.SQL("UPDATE {} AS {} SET {} FROM {} AS {} WHERE {}").format(
            table, sql.SQL(alias), _set(assignments), source, sql.SQL(source_alias), on
        )

    def delete(
        self, table: sql.Composable, alias: str | None, where: sql.Composable
    ) -> sql.Composed:
        if alias is None:
            return sql.SQL("DELETE FROM {} WHERE {}").format(table, where)
        return sql.SQL("DELETE FROM {} AS {} WHERE {}").format(table, sql.SQL(alias), where)

    def select_keys(
        self,
        table: sql.Composable,
        key: Column,
        params: Binder,
        keys: Sequence[Any],
        *,
        skip_locked: bool = False,
    ) -> sql.Composed:
        k = sql.Identifier(key.name)
        return sql.SQL("SELECT {k} FROM {t} WHERE {keys} ORDER BY {k} {lock}").format(
            k=k,
            t=table,
            keys=self.in_keys(k, params, keys, key),
            lock=self.lock(skip_locked=True) if skip_locked else sql.SQL(""),
        )

    def delete_keys(
        self, table: sql.Composable, key: Column, params: Binder, keys: Sequence[Any]
    ) -> sql.Composed:
        return self.delete(table, None, self.in_keys(sql.Identifier(key.name), params, keys, key))

    def delete_linked(
        self,
        table: sql.Composable,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None = None,
    ) -> sql.Composed:
        where = self._linked(alias, columns, source, parent_columns, extra)
        return self.delete(table, alias, where)

    def any_linked(
        self,
        table: sql.Composable,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None = None,
    ) -> sql.Composed:
        where = self._linked(alias, columns, source, parent_columns, extra)
        return sql.SQL("SELECT 1 FROM {} AS {} WHERE {} LIMIT 1").format(
            table, sql.SQL(alias), where
        )

    def _linked(
        self,
        alias: str,
        columns: Sequence[str],
        source: sql.Composable,
        parent_columns: Sequence[str],
        extra: sql.Composable | None,
    ) -> sql.Composable:
        """The rows (aliased `alias`) whose `columns` equal the `parent_columns` of a row of
        `source`, and that meet `extra`."""
        parents = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, parent_columns)), source
        )
        if len(columns) == 1:
            found = self.in_query(sql.Identifier(alias, columns[0]), parents)
        else:
            found = sql.SQL("({}) IN ({})").format(
                sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns), parents
            )
        return found if extra is None else sql.SQL("{} AND {}").format(extra, found)

    def insert_missing(
        self, table: sql.Composable, columns: Sequence[str], query: sql.Composable
    ) -> sql.Composed:
        return sql.SQL("INSERT INTO {} ({}) {} ON CONFLICT DO NOTHING").format(
            table, sql.SQL(", ").join(map(sql.Identifier, columns)), query
        )

    # -- temporary tables ----------------------------------------------------------------------
    def temporary_table(self, name: str, columns: Sequence[tuple[str, Typed]]) -> TemporaryTable:
        create = sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS"
        ).format(
            sql.Identifier(name),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(type_name(t)))
                for n, t in columns
            ),
        )
        table = self.temporary(name)
        # kept by the session (creating and dropping one per batch would churn the system
        # catalogues), emptied at each commit and here (another phase's rows, same batch)
        return TemporaryTable((create, sql.SQL("DELETE FROM {}").format(table)), table)

    def materialized(self, name: sql.Composable, query: sql.Composable) -> sql.Composable:
        return sql.SQL("{} AS MATERIALIZED ({})").format(name, query)

    def temporary(self, name: str) -> sql.Composable:
        return sql.Identifier("pg_temp", name)

    # -- a run's due tables ---------------------------------------------------------------------
    def drop_temporary(self, name: str) -> sql.Composed:
        return sql.SQL("DROP TABLE IF EXISTS {}").format(self.temporary(name))

    def index_temporary(self, name: str, columns: Sequence[str]) -> sql.Composed:
        return sql.SQL("CREATE INDEX ON {} ({})").format(
            self.temporary(name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )

    def after(
        self, columns: Sequence[sql.Composable], values: Sequence[sql.Composable]
    ) -> sql.Composable:
        return sql.SQL("({}) > ({})").format(
            sql.SQL(", ").join(columns), sql.SQL(", ").join(values)
        )

    def bool_or(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("bool_or({})").format(expr)

    def int_div(self, left: sql.Composable, right: sql.Composable) -> sql.Composable:
        return sql.SQL("({}) / ({})").format(left, right)

    def day_number(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("CASE WHEN isfinite({e}) THEN {e} - DATE '1970-01-01' END").format(e=expr)

    # -- the report's statements ---------------------------------------------------------------
    def temporary_as(
        self, name: str, query: sql.Composable, *, unique: str | None = None
    ) -> sql.Composed:
        return sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS {}").format(
            sql.Identifier(name), query
        )

    def json_text(self, document: sql.Composable, key: str) -> sql.Composable:
        return sql.SQL("{}->>{}").format(document, sql.Literal(json_key(key)))

    def json_counts(self, document: sql.Composable, alias: str) -> RowSet:
        source = sql.SQL("jsonb_each_text({}) AS {}").format(document, sql.Identifier(alias))
        return RowSet(
            source,
            {
                "key": sql.Identifier(alias, "key"),
                "count": sql.SQL("{}::bigint").format(sql.Identifier(alias, "value")),
            },
        )

    def count_distinct(
        self, columns: Sequence[sql.Composable], rest: sql.Composable
    ) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM (SELECT DISTINCT {} {}) AS distinct_rows").format(
            sql.SQL(", ").join(columns), rest
        )

    def segment_digests(self, schema: str, segment: str, alias: str) -> sql.Composable:
        return sql.SQL("CROSS JOIN unnest({}) AS {} (digest)").format(
            sql.Identifier(segment, "subject_digests"), sql.Identifier(alias)
        )

    # -- the tool's own tables (holds) ---------------------------------------------------------
    def same_text(self, expr: sql.Composable, value: sql.Composable) -> sql.Composable:
        return sql.SQL("{}::text = {}").format(expr, value)

    # -- writing many rows ---------------------------------------------------------------------


def _qualified(alias: str, name: str) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.SQL(alias), sql.Identifier(name))


def _set(assignments: Sequence[tuple[str, sql.Composable]]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), value) for column, value in assignments
    )


DIALECT = PostgreSQLDialect()
