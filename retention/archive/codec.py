"""Rows out as CSV and back: what `archive` deletes is exactly what it writes.

Each table's rows leave the database through one statement,
`COPY (DELETE ... RETURNING <group>, r.<column>, ...) TO STDOUT (FORMAT csv)`: the rows written
to the archive are the rows deleted, nothing read before or after, and each value is written by
PostgreSQL in its own text form (as `pg_dump` writes it): numbers with every digit, dates and
timestamps in ISO 8601 (timestamps with time zone with their offset), bytea in hex, arrays,
json and ranges as their literal. CSV is RFC 4180 as PostgreSQL writes it: a NULL is an empty
unquoted field, an empty string is `""`, a value holding a comma, a quote or a line break is
quoted (so a record may span lines). Restoring is `COPY ... FROM` into the live table: every
value takes its column's type again, every constraint applies.

COPY takes no bound parameters: the few values a statement needs (the class of a polymorphic
link) are set first with `set_config` as bound parameters, local to the batch's transaction,
and read back with `current_setting` (engines/postgresql/archive.py). Another engine deletes
the same rows its own way and writes each value as PostgreSQL would (engines/archive.py).

Version 1 archives (JSON Lines, `row_to_json`) are still read: `restore_rows`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from retention.archive.errors import ArchiveConfigError, ArchiveError, ArchiveVerifyError
from retention.catalog.introspect import Table
from retention.engines import Connection, engine_of, sql
from retention.engines.archive import TEXT_SETTINGS, Taking
from retention.policy.bound import BoundPolicy
from retention.policy.relations import Edge, QName, is_link
from retention.rows.records import Records, needed_columns

# Output settings that make the text of every value exact and stable (PostgreSQL: local to the
# batch's transaction; TimeZone is pinned by the connection and written with each timestamp's
# offset). Another engine writes each value as PostgreSQL would under them (engines/archive.py).
SESSION = TEXT_SETTINGS
CSV_FORMAT = "PostgreSQL COPY (FORMAT csv)"


def describe_columns(table: Table) -> list[dict[str, Any]]:
    """The columns as the manifest records them, in the order of the CSV fields; a text
    column's collation where the engine has one per column (MariaDB/MySQL: how a restore
    compares its values, engines/mariadb/archive_pick.py)."""
    return [
        {"name": c.name, "type": c.type, "not_null": c.not_null}
        | ({"collation": c.collation} if c.collation is not None else {})
        for c in table.columns.values()
    ]


def set_session(conn: Connection) -> None:
    require_utf8(conn)
    engine_of(conn).archive.prepare(conn)


def require_utf8(conn: Connection) -> None:
    """Archives hold the bytes COPY sends and say they are UTF-8: the connection must be
    (retention's connections are, whatever the database's encoding)."""
    if conn.info.encoding != "utf-8":
        raise ArchiveConfigError(
            f"the connection's client_encoding is {conn.info.encoding}, archives are UTF-8; "
            "nothing was changed",
            hint="connect with client_encoding=UTF8 (retention's own connections do)",
        )
    if conn.info.parameter_status("server_encoding") == "SQL_ASCII":
        raise ArchiveConfigError(
            "the database's encoding is SQL_ASCII: its text has no known encoding, so an "
            "archive could not say how to read it; nothing was changed",
            hint="convert the database to UTF8 (dump, then restore into a UTF8 database)",
        )


def check_tables(conn: Connection, policy: BoundPolicy) -> None:
    """Each table is still the relation the run read at its start (a table, no inheritance
    children) with the columns (names, types, order) its statements list, and no live foreign
    key that is not one of the record's links carries the delete further (CASCADE) or changes
    the referencing rows (SET NULL, SET DEFAULT). Call it after the batch's DELETEs: their
    locks keep any ALTER TABLE out until the commit, and one committed before them (a
    migration during a long run: a column added, the table renamed and replaced by a view...)
    is seen here; the batch then rolls back rather than delete a value it did not write.
    `check` refuses the foreign keys it sees (retention.policy.checks.deletes); this also sees
    the keys of partitions and those a migration added since."""
    problem = engine_of(conn).archive.check_tables(
        conn,
        [policy.table(q) for q in policy.graph.tables],
        lambda child, parent, columns, referenced: is_link(
            policy.graph, child, parent, list(columns), list(referenced)
        ),
    )
    if problem is not None:
        raise ArchiveVerifyError(
            f"{problem.message}; nothing of this batch was archived or deleted", hint=problem.hint
        )


def create_keys_table(
    conn: Connection, policy: BoundPolicy, groups: dict[Any, str]
) -> sql.Composable:
    """A temporary table `(k, grp)`: the batch's subjects and their group; its name."""
    return engine_of(conn).archive.keys_table(conn, policy.key, groups)


def takings(conn: Connection, records: Records, qname: QName, keys: sql.Composable) -> list[Taking]:
    """Which rows of one table the batch deletes, each with its group (`keys`: the table
    made by `create_keys_table`); one `Taking` per statement, children first, found through
    the link values the batch collected (retention.rows.records). PostgreSQL deletes each
    with `COPY (DELETE FROM t AS r USING ... RETURNING grp, r.<column>...) TO STDOUT`.

    Each row is attributed to the group of its subject; a row reached from several subjects
    goes to the latest group (it is kept as long as any of them needs it). When no row can be
    reached twice (one link, or polymorphic links of distinct classes, each to a parent row
    unique in the batch), each link is one direct statement joined to its parent's group;
    otherwise the rows' groups are gathered first (a GROUP BY, then one probe per row)."""
    policy = records.policy
    table = policy.table(qname)
    dialect = records.dialect
    rows = engine_of(conn).archive
    if qname == policy.subject.qname:
        key = sql.SQL("r.{}").format(sql.Identifier(policy.key.name))  # as it was written
        # in_query: an index probe per key (a merge join would read the table's index from
        # its start in every batch)
        where = sql.SQL("{k} = g.k AND {found}").format(
            k=key,
            found=dialect.in_query(key, sql.SQL("SELECT k FROM {}").format(keys))
            if records.reopens
            else sql.SQL("TRUE"),  # MySQL reads a temporary table once per statement
        )
        return [
            Taking(sql.SQL("{} AS g").format(keys), where, sql.SQL("g.grp"), {}, (policy.key.name,))
        ]
    edges = policy.graph.parents_of(qname)
    if _reached_once(policy, edges):
        statements = []
        for edge in edges:
            params = rows.values("a")
            on, condition = records.parent_match(edge, "r"), records.joined(edge, "r", params)
            statements.append(
                Taking(
                    sql.SQL("{} AS p").format(records.source(edge)),
                    sql.SQL("{} AND {}").format(on, condition),
                    sql.SQL("p.grp"),
                    params.values,
                    _links([edge]),
                )
            )
        return statements
    params = rows.values("a")
    ids = dialect.row_ids(table)  # PostgreSQL without a primary key: tableoid and ctid
    refs = [dialect.row_ref("t", c) for c in ids]
    names = [f"id{i}" for i in range(len(ids))]
    branches = []
    for edge in edges:
        join, condition = records.linked(edge, "t", params)
        branches.append(
            sql.SQL("SELECT {ids}, p.grp FROM {t} AS t {join} WHERE {where}").format(
                ids=sql.SQL(", ").join(
                    sql.SQL("{} AS {}").format(r, sql.Identifier(n))
                    for r, n in zip(refs, names, strict=True)
                ),
                t=sql.Identifier(*qname),
                join=join,
                where=condition,
            )
        )
    grouped = sql.SQL(", ").join(sql.Identifier("m", n) for n in names)
    members = sql.SQL("SELECT {c}, max(m.grp) AS grp FROM ({u}) AS m GROUP BY {c}").format(
        c=grouped, u=sql.SQL(" UNION ALL ").join(branches)
    )
    target = [dialect.row_ref("r", c) for c in ids]
    return [
        Taking(
            sql.SQL("({}) AS x").format(members),
            sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(r, sql.Identifier("x", n))
                for r, n in zip(target, names, strict=True)
            ),
            sql.SQL("x.grp"),
            params.values,
            _links(edges),
        )
    ]


def _links(edges: Sequence[Edge]) -> tuple[str, ...]:
    """The child's columns that make a row a member through `edges` (Taking.links)."""
    found: dict[str, None] = {}
    for edge in edges:
        found.update(dict.fromkeys(edge.child_columns))
        if edge.class_column is not None:
            found[edge.class_column] = None
    return tuple(found)


def _reached_once(policy: BoundPolicy, edges: Sequence[Edge]) -> bool:
    """No row can match two parent rows: its links are exclusive (one link, or polymorphic
    links on one class column with distinct classes) and each parent row is unique in the
    batch's collected values (they are unique on the full set of link columns kept)."""
    needed = needed_columns(policy)
    for edge in edges:
        kept = needed.get(edge.parent, [])
        if set(edge.parent_columns) != set(kept):
            return False
        if edge.parent == policy.subject.qname and kept != [policy.key.name]:
            return False
    if len(edges) == 1:
        return True
    classes = [(e.class_column, e.class_value) for e in edges]
    return (
        all(c is not None for c, _ in classes)
        and len({c for c, _ in classes}) == 1
        and len({v for _, v in classes}) == len(classes)
    )


def deleted_rows(conn: Connection, table: Table, taking: Taking) -> dict[str, list[bytes]]:
    """Delete the rows of `taking`; their CSV records (each ending with a line break) per
    group, sorted bytewise, so that the same rows always give the same bytes (see
    engines/archive.py: the engine writes what its DELETE removed)."""
    return engine_of(conn).archive.take(conn, table, taking)


def csv_header(names: Sequence[str]) -> bytes:
    """The first line of a table's CSV: its column names, each quoted."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(names)
    return out.getvalue().encode("utf-8")


_QUOTED = re.compile(rb'"[^"]*"')


def csv_records(data: bytes) -> int:
    """Records (lines, header included) in CSV as PostgreSQL writes it: line breaks outside
    quoted values. A quote only opens or closes a value (one inside a value is doubled, which
    closes and reopens it), so `_QUOTED` finds exactly the insides of quoted values."""
    return data.count(b"\n") - b"".join(_QUOTED.findall(data)).count(b"\n")


def restore_rows(
    conn: Connection, table: Table, columns: Sequence[dict[str, Any]], lines: list[str]
) -> int:
    """Insert version 1 archived rows (JSON lines) into `table`; every value takes its
    column's type."""
    missing = [c["name"] for c in columns if c["name"] not in table.columns]
    if missing:
        raise ArchiveError(
            f"{table.label} has no column {', '.join(missing)} any more",
            hint="restore with --to DIR and load the rows by hand",
        )
    # Types come from the live catalogue, never from the file: anyone holding the public key
    # can write an archive, so nothing read from one is pasted into SQL.
    columns = [c for c in columns if not table.columns[c["name"]].generated]
    names = [str(c["name"]) for c in columns]
    values = sql.SQL(", ").join(
        sql.SQL("(e.value ->> {})::{}").format(sql.Literal(n), sql.SQL(table.columns[n].type))
        if c["encoding"] == "text"
        else sql.Identifier("p", n)
        for n, c in zip(names, columns, strict=True)
    )
    query = sql.SQL(
        "INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE SELECT {values} "
        "FROM json_array_elements(%s::json) AS e, LATERAL json_populate_record(NULL::{t}, e.value) "
        "AS p"
    ).format(
        t=sql.Identifier(*table.qname),
        cols=sql.SQL(", ").join(map(sql.Identifier, names)),
        values=values,
    )
    return conn.execute(query, ("[" + ",".join(lines) + "]",)).rowcount


def copy_into(conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
    """Load archived CSV (its header first) into the live `table`: every value takes its
    column's type, every constraint applies, identity columns keep their archived values;
    generated columns are computed again (their archived values are not loaded)."""
    require_utf8(conn)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ArchiveError(
            f"{table.label} has no column {', '.join(missing)} any more",
            hint="restore with --to DIR and load the rows by hand",
        )
    return engine_of(conn).archive.load(conn, table, names, data)
