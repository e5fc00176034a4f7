"""PostgreSQL picks one subject's rows of a version 2 archive segment (`retention archive
restore`): each table's CSV is loaded into a temporary table of text columns, in a transaction
rolled back at once, and each link compared in the types the manifest records, as this server
resolves their names (without modifier: `1.00` matches `1`, `'P1      '` matches `'P1'`, a key
is never truncated into another); a type this server does not know compares as text on both
sides. Nothing read from the archive is pasted into SQL (names are quoted identifiers, values
bound parameters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loguru import logger

from retention.engines import errors, sql
from retention.engines.archive import ManifestError, collation_exact
from retention.engines.connection import Connection


def pick(
    conn: Connection, manifest: dict[str, Any], inner: dict[str, bytes], subject: str
) -> dict[str, tuple[bytes, int]]:
    """The subject's rows per table (CSV with its header line, how many), parents first."""
    picker = _Picker(manifest, _archived_types(conn, manifest))
    subject_table = manifest["subject"]["table"]
    _say_collations(manifest)
    with conn.transaction(force_rollback=True):
        for table in manifest["tables"]:
            picker.load(conn, table["name"], inner[table["member"]])
        key = picker.column(subject_table, manifest["subject"]["key"], "r")
        picker.choose(
            conn,
            subject_table,
            sql.SQL("{}::{} = %s::{}").format(key.field, key.type, key.type),
            [subject],
        )
        chosen = {subject_table}
        for table in manifest["tables"]:
            name = table["name"]
            if name in chosen:
                continue
            linked, values = picker.linked(name, manifest["relations"], chosen)
            picker.choose(conn, name, linked, values)
            chosen.add(name)
        return {t["name"]: picker.dump(conn, t["name"]) for t in manifest["tables"]}


def _say_collations(manifest: dict[str, Any]) -> None:
    """Warn when a link column of an archive written on MariaDB/MySQL was compared there under a
    collation that is not exact (`utf8mb4_unicode_ci`: `CPatient` = `cpatient`; PAD SPACE, even
    `utf8mb4_bin`: trailing spaces ignored): compared exactly here, a row linked only that way
    stays in the archive."""
    collations = {
        (t["name"], str(c["name"])): str(c["collation"])
        for t in manifest["tables"]
        for c in t["columns"]
        if c.get("collation")
    }
    links = {(manifest["subject"]["table"], manifest["subject"]["key"])}
    for edge in manifest["relations"]:
        links.update((edge["child"], c) for c in edge["child_columns"])
        links.update((edge["parent"], c) for c in edge["parent_columns"])
        if edge["class_column"] is not None:
            links.add((edge["child"], edge["class_column"]))
    loose = sorted(
        f"{table}.{column} ({collations[(table, column)]})"
        for table, column in links
        if (table, column) in collations and not collation_exact(collations[(table, column)])
    )
    if loose:
        logger.warning(
            "this archive was written on MariaDB/MySQL, whose collation compared these link "
            "columns without regard to case, accents or trailing spaces: {}; PostgreSQL compares "
            "them exactly, so a row linked there only in another case stays in the archive "
            "(restore on MariaDB/MySQL to follow those links)",
            ", ".join(loose),
        )


def _archived_types(conn: Connection, manifest: dict[str, Any]) -> dict[str, sql.Composable]:
    """The manifest's type names this server knows, as (schema, name) identifiers it gave.
    Each name is resolved on its own (a bound parameter; a malformed one is only unknown)."""
    resolved: dict[str, sql.Composable] = {}
    for name in sorted({str(c["type"]) for t in manifest["tables"] for c in t["columns"]}):
        try:
            row = conn.execute(
                "SELECT n.nspname, t.typname FROM pg_type AS t "
                "JOIN pg_namespace AS n ON n.oid = t.typnamespace WHERE t.oid = to_regtype(%s)",
                (name,),
            ).fetchone()
        except (errors.ProgrammingError, errors.DataError):
            continue
        if row is not None:
            resolved[name] = sql.Identifier(row[0], row[1])
    return resolved


@dataclass(frozen=True)
class _Field:
    field: sql.Composable
    type: sql.Composable  # the archived type, or text
    typed: bool


class _Picker:
    """A version 2 segment's tables loaded as temporary tables of text columns (`c0`, `c1`...,
    and `n`, the record's place), and the subject's rows chosen from them."""

    def __init__(self, manifest: dict[str, Any], types: dict[str, sql.Composable]) -> None:
        self.names = {t["name"]: [str(c["name"]) for c in t["columns"]] for t in manifest["tables"]}
        self.types = {
            (t["name"], str(c["name"])): types.get(str(c["type"]))
            for t in manifest["tables"]
            for c in t["columns"]
        }
        self.position = {t["name"]: i for i, t in enumerate(manifest["tables"])}

    def temp(self, kind: str, table: str) -> sql.Identifier:
        return sql.Identifier("pg_temp", f"retention_restore_{kind}_{self.position[table]}")

    def column(self, table: str, name: str, alias: str) -> _Field:
        if table not in self.names or name not in self.names[table]:
            raise ManifestError(f"the manifest names an unknown column {table}.{name}")
        field = sql.Identifier(alias, f"c{self.names[table].index(name)}")
        archived = self.types[(table, name)]
        if archived is None:
            return _Field(field, sql.SQL("text"), False)
        return _Field(field, archived, True)

    def load(self, conn: Connection, table: str, data: bytes) -> None:
        fields = sql.SQL(", ").join(sql.Identifier(f"c{i}") for i in range(len(self.names[table])))
        conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} (n bigserial, {}) ON COMMIT DROP").format(
                self.temp("all", table),
                sql.SQL(", ").join(
                    sql.SQL("{} text").format(sql.Identifier(f"c{i}"))
                    for i in range(len(self.names[table]))
                ),
            )
        )
        load = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true)").format(
            self.temp("all", table), fields
        )
        with conn.cursor().copy(load) as copy:
            copy.write(data)

    def linked(
        self, table: str, relations: list[dict[str, Any]], chosen: set[str]
    ) -> tuple[sql.Composable, list[str]]:
        """The condition choosing `table`'s rows linked to a chosen parent row, its values."""
        linked: list[sql.Composable] = []
        values: list[str] = []
        for edge in relations:
            if edge["child"] != table or edge["parent"] not in chosen:
                continue
            match = []
            for c, pc in zip(edge["child_columns"], edge["parent_columns"], strict=True):
                child, parent = self.column(table, c, "r"), self.column(edge["parent"], pc, "p")
                if child.typed and parent.typed:
                    match.append(
                        sql.SQL("{}::{} = {}::{}").format(
                            child.field, child.type, parent.field, parent.type
                        )
                    )
                else:  # a type unknown here: both as archived text
                    match.append(sql.SQL("{} = {}").format(child.field, parent.field))
            if edge["class_column"] is not None:
                class_column = self.column(table, edge["class_column"], "r").field
                match.append(sql.SQL("{} = %s").format(class_column))
                values.append(str(edge["class_value"]))
            linked.append(
                sql.SQL("EXISTS (SELECT FROM {} AS p WHERE {})").format(
                    self.temp("chosen", edge["parent"]), sql.SQL(" AND ").join(match)
                )
            )
        return (sql.SQL(" OR ").join(linked) if linked else sql.SQL("false")), values

    def choose(
        self,
        conn: Connection,
        table: str,
        condition: sql.Composable,
        values: list[str],
    ) -> None:
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT * FROM {} AS r WHERE {}"
            ).format(self.temp("chosen", table), self.temp("all", table), condition),
            values,
        )

    def dump(self, conn: Connection, table: str) -> tuple[bytes, int]:
        """The chosen rows as CSV (header first, archive order) and how many."""
        select = sql.SQL("SELECT {} FROM {} ORDER BY n").format(
            sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(sql.Identifier(f"c{i}"), sql.Identifier(n))
                for i, n in enumerate(self.names[table])
            ),
            self.temp("chosen", table),
        )
        data = bytearray()
        records = -1  # the header
        copy_out = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(select)
        with conn.cursor().copy(copy_out) as copy:
            for chunk in copy:
                data += chunk
                records += 1
        return bytes(data), records
