"""PostgreSQL's archive rows: `COPY (DELETE ... RETURNING ...) TO STDOUT (FORMAT csv)`.

The statements are those the archive was built and benchmarked with (bench/RESULTS.md): one
statement per link deletes the rows and writes them, with no window between reading and
deleting. COPY takes no bound parameters: the few values a statement needs (the class of a
polymorphic link) are set first with `set_config` as bound parameters, local to the batch's
transaction, and read back with `current_setting` (`SettingValues`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from retention.engines import sql
from retention.engines.archive import TEXT_SETTINGS, IsLink, TableProblem, Taking
from retention.engines.catalogue import Column, Table
from retention.engines.connection import Connection
from retention.engines.postgresql.session import Session

KEYS_TABLE = "retention_archive_keys"
_SETTING = "retention."  # prefix of the transaction-local settings carrying COPY's values
_END_OF_DATA, _QUOTED_END = b"\\.\n", b'"\\."\n'
_SESSION = Session()


class SettingValues:
    """Values for a statement that cannot take bound parameters (COPY): the statement reads
    each with `current_setting(name)`; `take` sets them first, as bound parameters of
    `set_config(name, value, true)` (local to the transaction)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._values: dict[str, object] = {}

    def add(self, value: object, *, binary: bool = False) -> sql.Composable:
        if binary or isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"a setting carries text or an integer, not {type(value).__name__}")
        name = f"{self.prefix}{len(self._values) + 1}"
        self._values[name] = value
        return sql.SQL("current_setting({})").format(sql.Literal(f"{_SETTING}{name}"))

    @property
    def values(self) -> dict[str, object]:
        return dict(self._values)


class ArchiveRows:
    def prepare(self, conn: Connection) -> None:
        _SESSION.transaction_settings(conn, TEXT_SETTINGS)

    def values(self, prefix: str) -> SettingValues:
        return SettingValues(prefix)

    def keys_table(
        self, conn: Connection, key: Column, groups: Mapping[Any, str]
    ) -> sql.Composable:
        """`pg_temp.retention_archive_keys (k, grp)`, dropped at commit."""
        keys_table = sql.Identifier(KEYS_TABLE)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(keys_table))
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {} (k {} PRIMARY KEY, grp text NOT NULL) ON COMMIT DROP"
            ).format(keys_table, sql.SQL(key.type))
        )
        conn.execute(
            sql.SQL("INSERT INTO pg_temp.{} SELECT unnest(%s::{}[]), unnest(%s::text[])").format(
                keys_table, sql.SQL(key.type)
            ),
            (list(groups), list(groups.values())),
        )
        conn.execute(sql.SQL("ANALYZE pg_temp.{}").format(keys_table))
        return sql.Identifier("pg_temp", KEYS_TABLE)

    def take(self, conn: Connection, table: Table, taking: Taking) -> dict[str, list[bytes]]:
        """The records are grouped without parsing them: the protocol sends each row as one
        message, and the group, first, is a label that CSV never quotes. A record that is
        `\\.` alone (a one-column table holding that value) is quoted, as PostgreSQL quotes it
        when it writes one column: unquoted, `COPY ... FROM` would read it as the end of the
        data."""
        if taking.params:
            _SESSION.transaction_settings(
                conn, {_SETTING + name: str(value) for name, value in taking.params.items()}
            )
        columns = sql.SQL(", ").join(sql.Identifier("r", c) for c in table.columns)
        statement = sql.SQL(
            "DELETE FROM {t} AS r USING {using} WHERE {where} RETURNING {group}, {columns}"
        ).format(
            t=sql.Identifier(*table.qname),
            using=taking.using,
            where=taking.where,
            group=taking.group,
            columns=columns,
        )
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

    def check_tables(
        self, conn: Connection, tables: Sequence[Table], is_link: IsLink
    ) -> TableProblem | None:
        """Each table is still the relation the run read at its start (same oid, a table, no
        inheritance children: DELETE on the parent deletes their rows too, without their own
        columns) with the same columns, names, types and order."""
        names = [t.qname for t in tables]
        rows = conn.execute(
            "SELECT n.nspname, c.relname, c.oid, c.relkind, "
            "array(SELECT a.attname::text FROM pg_attribute AS a WHERE a.attrelid = c.oid "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), "
            "array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a "
            "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum), "
            "EXISTS (SELECT FROM pg_inherits AS i JOIN pg_class AS k ON k.oid = i.inhrelid "
            "WHERE i.inhparent = c.oid AND NOT k.relispartition) "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([s for s, _ in names], [t for _, t in names]),
        ).fetchall()
        live = {
            (s, t): (oid, kind, list(zip(n, ty, strict=True)), inh)
            for s, t, oid, kind, n, ty, inh in rows
        }
        for table in tables:
            bound = [(c.name, c.type) for c in table.columns.values()]
            found = live.get(table.qname)
            if found is not None and found[3]:
                return TableProblem(
                    f"{table.label} has child tables by inheritance: deleting from it deletes "
                    "their rows too, without their own columns",
                    "archive the child tables as tables of their own (or make them partitions)",
                )
            if (
                found is None
                or found[1] not in ("r", "p")
                or found[2] != bound
                or (table.oid and found[0] != table.oid)
            ):
                return _changed(table)
        return _foreign_keys(conn, [live[t.qname][0] for t in tables if t.qname in live], is_link)

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
            (name, version, size, digest, file_id),
        )

    def destroy(
        self, conn: Connection, schema: str, file_id: Any, groups: Sequence[str], whole: bool
    ) -> None:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET destroyed_at = now() WHERE file_id = %s AND grp = ANY(%s) "
                "AND destroyed_at IS NULL"
            ).format(sql.Identifier(schema, "archive_segments")),
            (file_id, list(groups)),
        )
        if whole:
            conn.execute(
                sql.SQL("UPDATE {} SET destroyed_at = now() WHERE file_id = %s").format(
                    sql.Identifier(schema, "archive_files")
                ),
                (file_id,),
            )

    def segments_of(
        self, conn: Connection, schema: str, policy: str, digest: str
    ) -> list[tuple[Any, str]]:
        """The digests' GIN index (`@>`)."""
        rows = conn.execute(
            sql.SQL(
                "SELECT s.file_id, s.grp FROM {s} AS s JOIN {f} AS f USING (file_id) "
                "WHERE f.policy = %s AND s.destroyed_at IS NULL AND s.subject_digests @> %s"
            ).format(
                s=sql.Identifier(schema, "archive_segments"),
                f=sql.Identifier(schema, "archive_files"),
            ),
            (policy, [digest]),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def pick(
        self, conn: Connection, manifest: dict[str, Any], inner: dict[str, bytes], subject: str
    ) -> dict[str, tuple[bytes, int]]:
        from retention.engines.postgresql.archive_pick import pick

        return pick(conn, manifest, inner, subject)

    def load(self, conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
        """`COPY ... FROM STDIN (FORMAT csv, HEADER true)`; identity columns keep their
        archived values."""
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


def _changed(table: Table) -> TableProblem:
    return TableProblem(
        f"{table.label}: the table or its columns changed since the run started",
        "run again: the next run archives the table as it is now",
    )


def _foreign_keys(conn: Connection, oids: list[int], is_link: IsLink) -> TableProblem | None:
    """Partitions' own keys included, and those a migration added since `check` ran."""
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
        if is_link((child_schema, child), (parent_schema, parent), columns, referenced):
            continue
        how = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}[action]
        return cascading(f"{child_schema}.{child}", parent, name, how)
    return None


def cascading(child: str, parent: str, name: str, how: str) -> TableProblem:
    return TableProblem(
        f"{child} references {parent} through {name} ON DELETE {how}, which is not a link of "
        "the record: archiving would delete or change rows that no archive holds",
        "make that foreign key ON DELETE RESTRICT or NO ACTION",
    )


_SEGMENT_COLUMNS = (
    "file_id",
    "grp",
    "expires_on",
    "subjects",
    "subject_digests",
    "rows",
    "bytes",
    "sha256",
)
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


def insert_file(
    conn: Connection, schema: str, file: Mapping[str, Any], segments: Sequence[Mapping[str, Any]]
) -> None:
    from retention.engines.params import Json
    from retention.engines.postgresql.bulk import Bulk

    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(schema, "archive_files"),
            sql.SQL(", ").join(map(sql.Identifier, _FILE_COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(_FILE_COLUMNS)),
        ),
        [list(file[c]) if c == "recipients" else file[c] for c in _FILE_COLUMNS],
    )
    Bulk().load(
        conn,
        sql.Identifier(schema, "archive_segments"),
        _SEGMENT_COLUMNS,
        (
            [
                Json(s[c]) if c == "rows" else list(s[c]) if c == "subject_digests" else s[c]
                for c in _SEGMENT_COLUMNS
            ]
            for s in segments
        ),
    )


def read_files(
    conn: Connection,
    schema: str,
    conditions: Sequence[tuple[str, Any]],
    file_ids: Sequence[Any] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from retention.engines.rows import dict_row

    where: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for name, value in conditions:
        if name == "destroyed":
            where.append(sql.SQL("f.destroyed_at IS NULL"))
        elif name == "policy":
            where.append(sql.SQL("f.policy = %s"))
            params.append(value)
    if file_ids is not None:
        where.append(sql.SQL("f.file_id = ANY(%s)"))
        params.append(list(file_ids))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT f.* FROM {} AS f WHERE {} ORDER BY f.created_at, f.file_id").format(
                sql.Identifier(schema, "archive_files"), sql.SQL(" AND ").join(where)
            ),
            params,
        )
        found: list[dict[str, Any]] = cur.fetchall()
        cur.execute(
            sql.SQL("SELECT * FROM {} WHERE file_id = ANY(%s) ORDER BY file_id, grp").format(
                sql.Identifier(schema, "archive_segments")
            ),
            ([row["file_id"] for row in found],),
        )
        segments: list[dict[str, Any]] = cur.fetchall()
    return found, segments


def latest_file_entries(conn: Connection, schema: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT ON (fid) fid, d FROM (SELECT seq, CASE WHEN event = 'batch' "
            "THEN detail->'archive' ELSE detail END AS d FROM {} WHERE event IN ('batch', "
            "'archive_expired')) AS x CROSS JOIN LATERAL (SELECT d->>'file_id' AS fid) AS y "
            "WHERE fid IS NOT NULL ORDER BY fid, seq DESC"
        ).format(sql.Identifier(schema, "audit"))
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def _copy_through(conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
    """`load` for a table with generated columns: the CSV goes to a temporary table with the
    table's own column types (so COPY checks every value as it would on the table), then the
    other columns into the table."""
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
