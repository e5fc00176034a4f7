"""Records that share a row: a row that two subjects' records both reach, through two links.

A row belongs to a subject's record when one of its links names a member row of that record. A
row with two links towards the subject can name rows of two different records: an encounter
whose patient is one person and whose visit is another's (common after patient merges), or, on
a schema where staff are persons too, a patient row and the user who created it (`creator`
followed as a foreign key). Acting on one of the two records would delete or change a row the
other still needs: a record destroyed before its clock is over, a legal hold crossed.

So a batch that changes such tables makes its subjects a closed set first. For every due
subject whose record shares a row with a subject outside the batch, that other subject is
locked and re-checked in the batch's transaction: due, it joins the batch (the two records go
together); not due, held, or locked by the application, the batch's subject is kept instead:
never acted on, counted and reported (`shared_with_another_record` in the batch's audit
entry). Keeping one can make a row of another shared in turn: the search goes on until nothing
changes. Two links that no row can follow both (polymorphic links on one class column, for
different classes) are not checked: the common case costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from retention.engines import Connection, engine_of, sql
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName, two_owner_links
from retention.rows.members import affected_tables
from retention.rows.subjects import class_filter, path_sql


def shareable_tables(policy: BoundPolicy) -> frozenset[QName]:
    """Tables whose rows may belong to two records: those with two links a row can follow
    both, and every table below one of them."""
    shared = {one.child for one, _ in two_owner_links(policy.graph, unique=_unique(policy))}
    graph = policy.graph
    return frozenset(
        table
        for table in graph.tables
        if table in shared
        or any(edge.parent in shared for path in graph.paths_to_subject(table) for edge in path)
    )


def _unique(policy: BoundPolicy) -> Callable[[QName, tuple[str, ...]], bool]:
    """Whether columns of a table of the record name one row at most."""
    return lambda table, columns: policy.table(table).is_unique(columns)


def needs_guard(policy: BoundPolicy, phases: Iterable[BoundPhase]) -> bool:
    """Whether a batch of these phases changes a table whose rows may belong to two records."""
    shareable = shareable_tables(policy)
    return bool(shareable) and any(
        shareable.intersection(affected_tables(policy, phase)) for phase in phases
    )


def lock_named_rows(conn: Connection, policy: BoundPolicy, keys: Sequence[Any]) -> None:
    """Lock `FOR UPDATE` the rows of `keys`' records that a second link can name (the parent
    rows of every link that pairs with another). Until the batch commits, the application
    cannot attach a new row of another record to them through a foreign key (its check takes
    a key-share lock on the parent row): the search for shared rows then sees every such row
    the batch will act on. (Without a foreign key nothing locks anything: such a row written
    meanwhile is the same race as a new visit written after the locked re-check.)"""
    dialect = engine_of(conn).dialect
    graph = policy.graph
    parents = {other.parent for _, other in two_owner_links(graph, unique=_unique(policy))}
    for parent in sorted(parents):
        if parent == policy.subject.qname:
            continue  # the batch's subjects are locked already
        for path in graph.paths_to_subject(parent):
            params = Params(prefix="l")
            walk = path_sql(policy, path, "q", params, dialect=dialect)
            conditions = [dialect.in_keys(walk.key, params, keys, policy.key), *walk.conditions]
            conn.execute(
                sql.SQL("SELECT 1 FROM {} AS q {} WHERE {} {}").format(
                    sql.Identifier(*parent),
                    walk.joins,
                    sql.SQL(" AND ").join(conditions),
                    dialect.lock(of="q"),
                ),
                params.values,
            ).fetchall()


def outside_owners(
    conn: Connection, policy: BoundPolicy, keys: Sequence[Any]
) -> set[tuple[Any, Any]]:
    """(k, o) for every subject k of `keys` whose record holds a row that the record of o, a
    subject not in `keys`, holds too: the row is reached from k through one of its links and
    names, through another, a row of o's record (which exists). In the caller's transaction."""
    dialect = engine_of(conn).dialect
    graph = policy.graph
    found: set[tuple[Any, Any]] = set()
    for one, other in two_owner_links(graph, unique=_unique(policy)):
        for mine in graph.paths_to_subject(one.parent):
            for theirs in graph.paths_to_subject(other.parent):
                params = Params(prefix="s")
                walk = path_sql(policy, (one, *mine), "t", params, dialect=dialect)
                # the row `other` names (aliased q), then up to its own subject
                named = path_sql(policy, theirs, "q", params, dialect=dialect)
                if not theirs:  # `other` names a subject row: its key
                    named_key: sql.Composable = sql.Identifier("q", policy.key.name)
                else:
                    named_key = named.key
                join = sql.SQL(" AND ").join(
                    [
                        *(
                            sql.SQL("{} = {}").format(
                                sql.Identifier("q", p), sql.Identifier("t", c)
                            )
                            for c, p in zip(other.child_columns, other.parent_columns, strict=True)
                        ),
                        *(
                            [class_filter(other, "t", params, dialect=dialect)]
                            if other.class_column is not None
                            else []
                        ),
                    ]
                )
                # both keys as the subject table holds them (a link column may hold 'a' for
                # 'A' under a case-insensitive collation, 'A' for char(5) 'A    '): the batch
                # compares them with its own; a link naming no subject names nobody's record
                subject = sql.Identifier(*policy.subject.qname)
                key = policy.key.name
                mine_key, their_key = sql.Identifier("sa", key), sql.Identifier("sb", key)
                conditions = [
                    dialect.in_keys(mine_key, params, keys, policy.key),
                    *walk.conditions,
                    *named.conditions,
                    sql.SQL("NOT ({})").format(
                        dialect.in_keys(their_key, params, keys, policy.key)
                    ),
                ]
                query = sql.SQL(
                    "SELECT DISTINCT {mk}, {tk} FROM {t} AS t {wj} JOIN {s} AS sa ON {mk} = {wk} "
                    "JOIN {p} AS q ON {on} {nj} JOIN {s} AS sb ON {tk} = {nk} WHERE {w}"
                ).format(
                    mk=mine_key,
                    tk=their_key,
                    t=sql.Identifier(*one.child),
                    wj=walk.joins,
                    s=subject,
                    wk=walk.key,
                    p=sql.Identifier(*other.parent),
                    on=join,
                    nj=named.joins,
                    nk=named_key,
                    w=sql.SQL(" AND ").join(conditions),
                )
                found.update(
                    (row[0], row[1]) for row in conn.execute(query, params.values).fetchall()
                )
    return found


def kept_for_sharing(conn: Connection, policy: BoundPolicy, due: Sequence[Any]) -> int:
    """Of the `due` subjects, how many a run keeps because their record shares a row with a
    record that is not due (nor kept in turn), as if they were one batch. A run's batches
    search up to `batch_size` subjects around theirs and keep a subject whose other record
    is locked by the application too: it may keep more, never fewer."""
    remaining = set(due)
    kept = 0
    while remaining:
        leaving = {k for k, _ in outside_owners(conn, policy, sorted(remaining, key=repr))}
        if not leaving:
            break
        remaining -= leaving
        kept += len(leaving)
    return kept
