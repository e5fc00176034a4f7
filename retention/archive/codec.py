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
and read back with `current_setting` (see `SettingParams`).

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
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import Edge, QName, is_link
from retention.rows.records import Records, needed_columns

KEYS_TABLE = "retention_archive_keys"
# Output settings that make the text of every value exact and stable (local to the batch's
# transaction; TimeZone is pinned by the connection and written with each timestamp's offset).
SESSION = {
    "DateStyle": "ISO",
    "IntervalStyle": "iso_8601",
    "bytea_output": "hex",
    "extra_float_digits": "3",
}
CSV_FORMAT = "PostgreSQL COPY (FORMAT csv)"
_END_OF_DATA, _QUOTED_END = b"\\.\n", b'"\\."\n'
_SETTING = "retention."  # prefix of the transaction-local settings carrying COPY's values


def describe_columns(table: Table) -> list[dict[str, Any]]:
    """The columns as the manifest records them, in the order of the CSV fields."""
    return [
        {"name": c.name, "type": c.type, "not_null": c.not_null} for c in table.columns.values()
    ]


def set_session(conn: Connection) -> None:
    require_utf8(conn)
    engine_of(conn).session.transaction_settings(conn, SESSION)


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
    """Each table is still the relation the run read at its start (same oid, a table, no
    inheritance children) with the columns (names, types, order) its statements list. Call it
    after the batch's DELETEs: their locks keep any ALTER TABLE out until the commit, and one
    committed before them (a migration during a long run: a column added, the table renamed
    and replaced by a view...) is seen here; the batch then rolls back rather than delete a
    value it did not write. A child table by inheritance would lose its own columns (DELETE
    on the parent deletes its rows too)."""
    tables = list(policy.graph.tables)
    rows = conn.execute(
        "SELECT n.nspname, c.relname, c.oid, c.relkind, "
        "array(SELECT a.attname::text FROM pg_attribute AS a WHERE a.attrelid = c.oid "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), "
        "array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a "
        "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), "
        "EXISTS (SELECT FROM pg_inherits AS i JOIN pg_class AS k ON k.oid = i.inhrelid "
        "WHERE i.inhparent = c.oid AND NOT k.relispartition) "
        "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([s for s, _ in tables], [t for _, t in tables]),
    ).fetchall()
    live = {
        (s, t): (oid, kind, list(zip(n, ty, strict=True)), inh)
        for s, t, oid, kind, n, ty, inh in rows
    }
    for qname in tables:
        table = policy.table(qname)
        bound = [(c.name, c.type) for c in table.columns.values()]
        found = live.get(qname)
        label = f"{qname[0]}.{qname[1]}"
        if found is not None and found[3]:
            raise ArchiveVerifyError(
                f"{label} has child tables by inheritance: deleting from it deletes their rows "
                "too, without their own columns; nothing of this batch was archived or deleted",
                hint="archive the child tables as tables of their own (or make them partitions)",
            )
        if (
            found is None
            or found[1] not in ("r", "p")
            or found[2] != bound
            or (table.oid and found[0] != table.oid)
        ):
            raise ArchiveVerifyError(
                f"{label}: the table or its columns changed since the run started; nothing of "
                "this batch was archived or deleted",
                hint="run again: the next run archives the table as it is now",
            )
    _check_foreign_keys(conn, policy, [live[q][0] for q in tables if q in live])


def _check_foreign_keys(conn: Connection, policy: BoundPolicy, oids: list[int]) -> None:
    """No live foreign key that is not a link of the record carries the delete further
    (CASCADE) or changes the referencing rows (SET NULL, SET DEFAULT): `check` refuses those it
    sees (retention.policy.checks.deletes), this also sees the keys of partitions and those a
    migration added since."""
    rows = conn.execute(
        "SELECT cn.nspname, c.relname, pn.nspname, p.relname, con.conname, con.confdeltype, "
        "array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(n, o) "
        "JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), "
        "array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(n, o) "
        "JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_constraint AS con "
        "JOIN pg_class AS c ON c.oid = coalesce(pg_partition_root(con.conrelid), con.conrelid) "
        "JOIN pg_namespace AS cn ON cn.oid = c.relnamespace "
        "JOIN pg_class AS p ON p.oid = coalesce(pg_partition_root(con.confrelid), con.confrelid) "
        "JOIN pg_namespace AS pn ON pn.oid = p.relnamespace "
        "WHERE con.contype = 'f' AND con.confdeltype IN ('c', 'n', 'd') AND p.oid = ANY(%s)",
        (oids,),
    ).fetchall()
    for child_schema, child, parent_schema, parent, name, action, columns, referenced in rows:
        if is_link(
            policy.graph, (child_schema, child), (parent_schema, parent), columns, referenced
        ):
            continue
        how = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}[action]
        raise ArchiveVerifyError(
            f"{child_schema}.{child} references {parent} through {name} ON DELETE {how}, which "
            "is not a link of the record: archiving would delete or change rows that no "
            "archive holds; nothing of this batch was archived or deleted",
            hint="make that foreign key ON DELETE RESTRICT or NO ACTION",
        )


class SettingParams(Params):
    """Values for a statement that cannot take bound parameters (COPY): the statement reads
    each with `current_setting(name)`; `bind_settings` sets them first, as bound parameters of
    `set_config(name, value, true)` (local to the transaction)."""

    def add(self, value: object, *, binary: bool = False) -> sql.Composable:
        if binary or isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"a setting carries text or an integer, not {type(value).__name__}")
        super().add(value)
        name = f"{_SETTING}{self.prefix}{len(self.values)}"
        return sql.SQL("current_setting({})").format(sql.Literal(name))


def bind_settings(conn: Connection, values: dict[str, object]) -> None:
    """Set the values a `SettingParams` statement reads (inside the caller's transaction)."""
    engine_of(conn).session.transaction_settings(
        conn, {_SETTING + name: str(value) for name, value in values.items()}
    )


def keys_table() -> sql.Identifier:
    """The batch's subjects and their group (made by `create_keys_table`)."""
    return sql.Identifier("pg_temp", KEYS_TABLE)


def create_keys_table(conn: Connection, policy: BoundPolicy, groups: dict[Any, str]) -> None:
    """`pg_temp.retention_archive_keys (k, grp)`: the batch's subjects and their group."""
    keys_table = sql.Identifier(KEYS_TABLE)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(keys_table))
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} (k {} PRIMARY KEY, grp text NOT NULL) ON COMMIT DROP"
        ).format(keys_table, sql.SQL(policy.key.type))
    )
    conn.execute(
        sql.SQL("INSERT INTO pg_temp.{} SELECT unnest(%s::{}[]), unnest(%s::text[])").format(
            keys_table, sql.SQL(policy.key.type)
        ),
        (list(groups), list(groups.values())),
    )
    conn.execute(sql.SQL("ANALYZE pg_temp.{}").format(keys_table))


def delete_returning(records: Records, qname: QName) -> list[tuple[sql.Composed, dict[str, Any]]]:
    """`DELETE ... RETURNING grp, <every column>` statements emptying one table of the batch's
    rows, children first, found through the link values the batch collected
    (retention.rows.records); their values are `SettingParams` (see `deleted_rows`).

    Each row is attributed to the group of its subject; a row reached from several subjects
    goes to the latest group (it is kept as long as any of them needs it). When no row can be
    reached twice (one link, or polymorphic links of distinct classes, each to a parent row
    unique in the batch), each link is one direct DELETE joined to its parent's group;
    otherwise the rows' groups are gathered first (a GROUP BY, then one probe per row)."""
    policy = records.policy
    table = policy.table(qname)
    keys = keys_table()
    columns = sql.SQL(", ").join(sql.Identifier("r", c) for c in table.columns)
    if qname == policy.subject.qname:
        query = sql.SQL(
            # ANY(...): an index probe per key (a merge join would read the table's index from
            # its start in every batch)
            "DELETE FROM {t} AS r USING {keys} AS g WHERE r.{k} = g.k "
            "AND r.{k} = ANY(ARRAY(SELECT k FROM {keys})) RETURNING g.grp, {columns}"
        ).format(
            t=sql.Identifier(*qname), keys=keys, k=sql.Identifier(policy.key.name), columns=columns
        )
        return [(query, {})]
    edges = policy.graph.parents_of(qname)
    if _reached_once(policy, edges):
        statements = []
        for edge in edges:
            params = SettingParams(prefix="a")
            on, condition = records.parent_match(edge, "r"), records.condition(edge, "r", params)
            statements.append(
                (
                    sql.SQL(
                        "DELETE FROM {t} AS r USING {src} AS p WHERE {on} AND {cond} "
                        "RETURNING p.grp, {columns}"
                    ).format(
                        t=sql.Identifier(*qname),
                        src=records.sources[edge.parent],
                        on=on,
                        cond=condition,
                        columns=columns,
                    ),
                    params.values,
                )
            )
        return statements
    params = SettingParams(prefix="a")
    dialect = records.dialect
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
    query = sql.SQL(
        "DELETE FROM {t} AS r USING ({m}) AS x WHERE {on} RETURNING x.grp, {columns}"
    ).format(
        t=sql.Identifier(*qname),
        m=members,
        on=sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(r, sql.Identifier("x", n))
            for r, n in zip(target, names, strict=True)
        ),
        columns=columns,
    )
    return [(query, params.values)]


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


def deleted_rows(
    conn: Connection, statement: sql.Composed, params: dict[str, Any]
) -> dict[str, list[bytes]]:
    """Run `COPY (<DELETE ... RETURNING grp, columns>) TO STDOUT (FORMAT csv)` and return the
    CSV records (each ending with a line break) per group, sorted bytewise, so that the same
    rows always give the same bytes. The protocol sends each row as one message: records are
    grouped without parsing them (the group, first, is a label that CSV never quotes).

    A record that is `\\.` alone (a one-column table holding that value) is quoted, as
    PostgreSQL quotes it when it writes one column: unquoted, `COPY ... FROM` would read it as
    the end of the data."""
    bind_settings(conn, params)
    query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(statement)
    found: dict[bytes, list[bytes]] = {}
    with conn.cursor().copy(query) as copy:
        for data in copy:
            group, _, record = bytes(data).partition(b",")
            if record == _END_OF_DATA:
                record = _QUOTED_END
            rows = found.get(group)
            if rows is None:
                rows = found[group] = []
            rows.append(record)
    groups: dict[str, list[bytes]] = {}
    for group, rows in found.items():
        rows.sort()
        groups[group.decode("ascii")] = rows
    return groups


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
    if any(table.columns[n].generated for n in names):
        return _copy_through(conn, table, names, data)
    query = sql.SQL("COPY {t} ({cols}) FROM STDIN (FORMAT csv, HEADER true)").format(
        t=sql.Identifier(*table.qname), cols=sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor() as cur:
        with cur.copy(query) as copy:
            copy.write(data)
        loaded: int = cur.rowcount
        return loaded


def _copy_through(conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
    """`copy_into` for a table with generated columns: the CSV goes to a temporary table with
    the table's own column types (so COPY checks every value as it would on the table), then
    the other columns into the table."""
    staged = sql.Identifier("pg_temp", "retention_restore_staged")
    columns = sql.SQL(", ").join(map(sql.Identifier, names))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged))
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(staged, columns, sql.Identifier(*table.qname))
    )
    load = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true)").format(staged, columns)
    with conn.cursor().copy(load) as copy:
        copy.write(data)
    kept = sql.SQL(", ").join(sql.Identifier(n) for n in names if not table.columns[n].generated)
    return conn.execute(
        sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
            sql.Identifier(*table.qname), kept, kept, staged
        )
    ).rowcount
