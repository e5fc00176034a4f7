"""The rows of a batch's records, found once per batch, top-down, through the values of links.

A record is the subject row and every row reachable from it through the policy's relation graph
(foreign keys, plain-column links, polymorphic links). Rather than walking from the subject to
each table again (four or five joins per table, every table reached anew), the batch walks the
graph once, parents first: for every table that other tables point to, the values those links
compare with (e.g. `sejours.sejour_id`) of the rows reached so far are kept in a temporary table
of this session (emptied at every commit). Each child table is then reached with one indexed
condition per link, `col = ANY(ARRAY(SELECT ... FROM <temporary table>))`, as the hand-written
SQL a DBA would write. The values never travel to this process and back.

A row is a member when one of its links matches a member row of the parent, which by induction
over the graph (parents before children) is the same set as "reachable through some path".

The kept rows are not locked (that would need UPDATE on every parent table). Instead, a table
whose rows were kept must lose exactly that many rows: a row moved meanwhile to another subject
(e.g. a stay re-attached to a merged patient), whose children were deleted through its old link,
makes the batch roll back (`RecordsChangedError`), and the next run does it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from retention.engines import Connection, engine_of, sql
from retention.engines.catalogue import Column
from retention.engines.dialect import Binder, Dialect, TemporaryTable
from retention.errors import RetentionError
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import Edge, QName
from retention.rows.subjects import class_filter


@dataclass(frozen=True)
class Records:
    """The batch's subjects and, per parent table, the temporary table of its member rows'
    link values (filled for the current transaction)."""

    policy: BoundPolicy
    keys: Sequence[Any]
    sources: dict[QName, sql.Composable]
    dialect: Dialect
    grouped: bool = False  # each source also holds `grp`, its rows' archive group
    counted: dict[QName, int] = field(default_factory=dict)  # rows kept, where checkable
    # MySQL reads a temporary table once per statement (error 1137, "Can't reopen table"):
    # there each link after a parent's first reads a copy of the parent's table of its own
    copies: dict[Edge, sql.Composable] = field(default_factory=dict)
    reopens: bool = True  # a statement may read a temporary table twice (not on MySQL)

    def source(self, edge: Edge) -> sql.Composable:
        """The temporary table of `edge.parent`'s member rows that statements about `edge`
        read."""
        return self.copies.get(edge, self.sources[edge.parent])

    def check_deleted(self, table: QName, deleted: int) -> None:
        """The rows a table lost must be the rows whose link values were kept: if one was
        moved to another subject (or removed) by someone else since, its children were
        deleted through a value that is no longer true: the batch must roll back."""
        expected = self.counted.get(table)
        if expected is not None and deleted != expected:
            raise RecordsChangedError(
                f"{table[0]}.{table[1]}: {deleted} row(s) deleted for {expected} read at the "
                "start of the batch (changed meanwhile by another transaction)"
            )

    def linked(
        self, edge: Edge, alias: str, params: Binder
    ) -> tuple[sql.Composable, sql.Composable]:
        """(join, condition) giving each row of `edge.child` (aliased `alias`) linked through
        `edge` the `grp` of its parent row, as `p.grp`."""
        join = sql.SQL("JOIN {} AS p ON {}").format(
            self.source(edge), self.parent_match(edge, alias)
        )
        return join, self.joined(edge, alias, params)

    def joined(self, edge: Edge, alias: str, params: Binder) -> sql.Composable:
        """`condition`, beside a join of the parent's member rows as `p` on `parent_match`
        (which implies its test of the link values, spelt again for the planner where a
        statement may read a temporary table twice; MySQL cannot)."""
        if self.reopens:
            return self.condition(edge, alias, params)
        if edge.class_column is None:
            return sql.SQL("TRUE")
        return class_filter(edge, alias, params, dialect=self.dialect)

    def parent_match(self, edge: Edge, alias: str) -> sql.Composable:
        """The row aliased `alias` is the child, through `edge`, of the kept row aliased `p`."""
        return sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(alias, c), sql.Identifier("p", pc))
            for c, pc in zip(edge.child_columns, edge.parent_columns, strict=True)
        )

    def delete_linked(self, edge: Edge, alias: str, params: Params) -> sql.Composed:
        """Delete the rows of `edge.child` (aliased `alias`) linked through `edge` to a member
        row of `edge.parent` (the same rows as `condition`)."""
        return self._linked(self.dialect.delete_linked, edge, alias, params)

    def any_linked(self, edge: Edge, alias: str, params: Params) -> sql.Composed:
        """`SELECT 1 ... LIMIT 1` of a row `delete_linked` would delete now."""
        return self._linked(self.dialect.any_linked, edge, alias, params)

    def _linked(
        self, statement: Callable[..., sql.Composed], edge: Edge, alias: str, params: Params
    ) -> sql.Composed:
        extra = (
            None
            if edge.class_column is None
            else class_filter(edge, alias, params, dialect=self.dialect)
        )
        return statement(
            sql.Identifier(*edge.child),
            alias,
            edge.child_columns,
            self.source(edge),
            edge.parent_columns,
            extra,
        )

    def condition(self, edge: Edge, alias: str, params: Binder) -> sql.Composable:
        """Rows of `edge.child` (aliased `alias`) linked through `edge` to a member row of
        `edge.parent`."""
        source = self.source(edge)
        if len(edge.child_columns) == 1:
            # computed once, each value one index probe (PostgreSQL: `= ANY(ARRAY(...))`, an
            # InitPlan). No cast: the values compare as the columns do (a cast to the child's
            # type could truncate a longer parent value into another subject's, or overflow).
            found = self.dialect.in_query(
                sql.Identifier(alias, edge.child_columns[0]),
                sql.SQL("SELECT {} FROM {}").format(sql.Identifier(edge.parent_columns[0]), source),
            )
        else:
            found = sql.SQL("({}) IN (SELECT {} FROM {})").format(
                sql.SQL(", ").join(sql.Identifier(alias, c) for c in edge.child_columns),
                sql.SQL(", ").join(map(sql.Identifier, edge.parent_columns)),
                source,
            )
        if edge.class_column is None:
            return found
        return sql.SQL("{} AND {}").format(
            class_filter(edge, alias, params, dialect=self.dialect), found
        )


def needed_columns(policy: BoundPolicy) -> dict[QName, list[str]]:
    """Per parent table, the columns its children's links compare with."""
    needed: dict[QName, list[str]] = {}
    for edge in policy.graph.edges:
        wanted = needed.setdefault(edge.parent, [])
        wanted += [c for c in edge.parent_columns if c not in wanted]
    return needed


def _source(
    policy: BoundPolicy,
    table: QName,
    columns: list[str],
    grouped: bool,
    dialect: Dialect,
    *,
    copy: int = 0,
) -> TemporaryTable:
    """The temporary table holding `columns` of `table`'s members (and their archive group
    when `grouped`); `copy`: the number of a copy of it (`Records.copies`)."""
    typed: list[tuple[str, Column | Literal["text"]]] = [
        (c, policy.table(table).columns[c]) for c in columns
    ]
    if grouped:
        typed.append(("grp", "text"))
    types = [t if isinstance(t, str) else t.type for _, t in typed]
    names = [n for n, _ in typed]
    digest = hashlib.sha256(repr((policy.name, table, names, types, copy)).encode()).hexdigest()
    return dialect.temporary_table(f"retention_records_{digest[:16]}", typed)


def collect(
    conn: Connection,
    policy: BoundPolicy,
    keys: Sequence[Any],
    *,
    groups: sql.Composable | None = None,
    kept: Mapping[QName, Sequence[Sequence[Any]]] | None = None,
) -> Records:
    """Keep, parents first, the link values of every member row that another table points to
    (inside the caller's transaction: they are gone at its commit). `groups`: a table (k, grp)
    giving each subject its archive group; each kept row then also carries the latest group
    of the subjects it belongs to. `kept`: link values kept earlier, per table (its columns
    in the order of `needed_columns`), added to what the table holds now: the rows a batch cut
    short deleted from a table without transactions (retention.engine.intents)."""
    graph = policy.graph
    dialect = engine_of(conn).dialect
    needed = needed_columns(policy)
    sources: dict[QName, sql.Composable] = {}
    reopens = engine_of(conn).capabilities.reopen_temporary_table
    records = Records(policy, keys, sources, dialect, groups is not None, reopens=reopens)
    for table in graph.tables:
        columns = needed.get(table)
        if not columns:
            continue
        temporary = _source(policy, table, columns, groups is not None, dialect)
        for statement in temporary.renew:
            conn.execute(statement)
        sources[table] = temporary.name
        earlier = (kept or {}).get(table)
        if earlier:
            _keep(conn, temporary.name, columns, earlier)
        params = Params(prefix="v")
        targets: list[sql.Composable] = [sql.Identifier(c) for c in columns]
        names = sql.SQL(", ").join(sql.Identifier("t", c) for c in columns)
        if groups is not None:
            members: sql.Composable = _grouped_members(records, table, columns, groups, params)
            targets.append(sql.Identifier("grp"))
        elif table == graph.subject and columns == [graph.key]:  # the keys themselves
            members = dialect.key_rows(params, keys, policy.key)
        elif table == graph.subject:
            members = sql.SQL("SELECT {} FROM {} AS t WHERE {}").format(
                names,
                sql.Identifier(*table),
                dialect.in_keys(sql.Identifier("t", graph.key), params, keys, policy.key),
            )
        else:
            members = sql.SQL(" UNION ").join(
                sql.SQL("SELECT {} FROM {} AS t WHERE {}").format(
                    names, sql.Identifier(*table), records.condition(edge, "t", params)
                )
                for edge in graph.parents_of(table)
            )
        found = conn.execute(
            sql.SQL("INSERT INTO {} ({}) {}").format(
                sources[table], sql.SQL(", ").join(targets), members
            ),
            params.values,
        ).rowcount
        if not earlier:  # rows already deleted cannot be counted again
            _count(records, table, columns, found)
        if not reopens:
            _copy(conn, records, table, columns)
    return records


def _copy(conn: Connection, records: Records, table: QName, columns: list[str]) -> None:
    """A copy of `table`'s member rows for each link from it after the first (`copies`)."""
    edges = [e for e in records.policy.graph.edges if e.parent == table]
    for number, edge in enumerate(edges[1:], start=1):
        copy = _source(
            records.policy, table, columns, records.grouped, records.dialect, copy=number
        )
        for statement in copy.renew:
            conn.execute(statement)
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {}").format(copy.name, records.sources[table])
        )
        records.copies[edge] = copy.name


def _keep(
    conn: Connection, source: sql.Composable, columns: list[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Link values kept earlier, added to a table's source."""
    engine_of(conn).bulk.load(conn, source, columns, rows)


def _count(records: Records, table: QName, columns: list[str], kept: int) -> None:
    """Remember how many rows were kept when each is one row of the table (the kept columns
    are its primary key), so that the delete can be checked against it."""
    primary = list(records.policy.table(table).primary_key)
    if table != records.policy.subject.qname and primary and sorted(columns) == sorted(primary):
        records.counted[table] = kept


class RecordsChangedError(RetentionError):
    """A row of the batch's records changed subject while the batch ran; nothing is kept of
    the batch (it rolls back) and the next run does it again."""


def _grouped_members(
    records: Records,
    table: QName,
    columns: list[str],
    groups: sql.Composable,
    params: Params,
) -> sql.Composable:
    """`SELECT <columns>, grp` of the member rows of `table`, each with its latest group."""
    policy = records.policy
    names = sql.SQL(", ").join(sql.Identifier("t", c) for c in columns)
    if table == policy.subject.qname:
        return sql.SQL("SELECT {}, g.grp FROM {} AS t JOIN {} AS g ON {} = g.k").format(
            names, sql.Identifier(*table), groups, sql.Identifier("t", policy.key.name)
        )
    branches = []
    for edge in policy.graph.parents_of(table):
        join, condition = records.linked(edge, "t", params)
        branches.append(
            sql.SQL("SELECT {}, p.grp FROM {} AS t {} WHERE {}").format(
                names, sql.Identifier(*table), join, condition
            )
        )
    return sql.SQL("SELECT {c}, max(grp) FROM ({u}) AS m GROUP BY {c}").format(
        c=sql.SQL(", ").join(map(sql.Identifier, columns)), u=sql.SQL(" UNION ALL ").join(branches)
    )


def delete(
    conn: Connection, records: Records, tables: Callable[[QName], bool] | None = None
) -> dict[str, int]:
    """Delete the records, children first; rows deleted per table ("schema.table").
    `tables`: only those it says yes to, and no check for late rows (the caller's)."""
    policy, dialect = records.policy, records.dialect
    rows: dict[str, int] = {}
    for table in policy.graph.deletion_order():
        if tables is not None and not tables(table):
            continue
        label = f"{table[0]}.{table[1]}"
        if table == policy.subject.qname:
            params = Params(prefix="d")
            query = dialect.delete_keys(sql.Identifier(*table), policy.key, params, records.keys)
            rows[label] = conn.execute(query, params.values).rowcount
            continue
        rows[label] = 0
        for edge in policy.graph.parents_of(table):
            params = Params(prefix="d")
            query = records.delete_linked(edge, "r", params)
            rows[label] += conn.execute(query, params.values).rowcount
        records.check_deleted(table, rows[label])
    if tables is None:
        no_late_rows(conn, records)
    return rows


def no_late_rows(conn: Connection, records: Records) -> None:
    """No row of a table the clock reads is linked any more to the batch's records through a
    link without a foreign key. Such a row was committed by the application after its table's
    DELETE began and before this check (the batch reads committed rows): a visit recorded
    while the batch ran, which may restart the clock. The batch must not commit the
    destruction of that record: it rolls back, and the next run checks the subject again (an
    outside review: a consultation committed while the batch waited on another row's lock
    survived its patient, purged with the rest). A foreign key needs no check: its insert
    waits for the subject's lock, then fails. Other tables are not looked at (each probe costs
    about what its DELETE's did: every link, 25 % more time for a purge at 189,728 patients):
    a row added there meanwhile changes no clock, and is left without its record."""
    policy = records.policy
    for edge in clock_edges(policy):
        params = Params(prefix="z")
        query = records.any_linked(edge, "r", params)
        if conn.execute(query, params.values).fetchone() is not None:
            child = f"{edge.child[0]}.{edge.child[1]}"
            raise RecordsChangedError(
                f"{child}: a row linked to the batch's records appeared while the batch "
                "deleted them (a link without a foreign key, a table the clock reads): nothing "
                "is deleted, the next run checks these subjects again"
            )


def clock_edges(policy: BoundPolicy) -> list[Edge]:
    """The links without a foreign key on the way from a table the policy's dates aggregate
    over up to the subject, each once, in the graph's order."""
    found: set[Edge] = set()
    for date in policy.dates.values():
        if date.kind == "aggregate" and date.over is not None:
            for path in policy.graph.paths_to_subject(date.over.qname):
                found.update(edge for edge in path if edge.kind != "foreign key")
    return [edge for edge in policy.graph.edges if edge in found]
