"""MariaDB's restore of archived CSV: one subject's rows picked in this process, and loaded.

PostgreSQL picks a subject's rows on the server, each link compared in the types the manifest
records (engines/postgresql/archive_pick.py). MariaDB has no such casts by type name: the rows
are picked here, each value compared as the types compare (numbers as decimals, so `1.00`
matches `1`; text without trailing spaces, as `char(n)` and MariaDB's PAD SPACE collations
compare; anything else as its exact text; NULL matches nothing).

Text compares as its column's collation compared it when the rows were archived: the manifest
records each text column's collation, and the server that restores gives each value's weight
under it (`WEIGHT_STRING`, the values sent as one JSON parameter), so that a class name
`cperson` links to `CPerson` under a case-insensitive collation (`'é'` to `'E'` under most),
as the batch that archived them found. Trailing spaces are dropped first, but under a NO PAD
collation (MariaDB's `_nopad_`, MySQL's `_0900_`). A link between two columns of different
collations compares under the parent's. An archive written before its manifest recorded
collations, or one whose collation this server does not know, compares text as above.

Loading sends each archived text as a parameter of its column (the server converts it, under
the session's strict `sql_mode`), but for what MariaDB reads differently from PostgreSQL's
text: bytes (`\\x` and hexadecimal), instants with a UTC offset (TIMESTAMP is read in the
session's zone, UTC), booleans (`t`/`f`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from loguru import logger

from retention.engines import sql
from retention.engines.archive import ManifestError, collation_no_pad
from retention.engines.catalogue import Table
from retention.engines.connection import Connection

_NUMBERS = re.compile(
    r"^(tiny|small|medium|big)?int(eger)?\b|^(decimal|numeric|float|double|real|smallint|"
    r"bigint|integer|double precision)\b"
)
_TEXTS = re.compile(r"^(char|varchar|character|bpchar|text|tinytext|mediumtext|longtext|name)\b")
_BYTES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
# one field and what follows it: a quoted value (quotes doubled inside, line breaks kept) or a
# plain one (an empty plain field is NULL)
_FIELD = re.compile(r'"((?:[^"]|"")*)"([,\n])|([^,\n"]*)([,\n])')
_OFFSET = re.compile(r"^(.*\d)([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$")

Record = tuple[bytes, list[str | None]]


def records(data: bytes) -> Iterator[Record]:
    """Each CSV record as PostgreSQL writes it: its bytes (line break included) and its fields
    (None for an empty unquoted field, NULL; `""` is the empty string)."""
    text = data.decode("utf-8")
    fields: list[str | None] = []
    start = position = 0
    while position < len(text):
        found = _FIELD.match(text, position)
        if found is None:
            raise ManifestError("an archived table's CSV is not written as COPY writes it")
        quoted, after_quoted, plain, after_plain = found.groups()
        if quoted is not None:
            fields.append(quoted.replace('""', '"'))
            separator = after_quoted
        else:
            fields.append(plain or None)
            separator = after_plain
        position = found.end()
        if separator == "\n":
            yield text[start:position].encode("utf-8"), fields
            fields, start = [], position
    if fields:
        raise ManifestError("an archived table's CSV ends inside a record")


def _compared(type_name: str) -> Any:
    """How values of an archived column type compare (see the module docstring)."""
    name = type_name.lower().strip()
    if _NUMBERS.match(name):
        return _number
    if _TEXTS.match(name):
        return _padded
    return _exact


def _number(text: str) -> Any:
    try:
        return ("n", Decimal(text))
    except InvalidOperation:
        return ("t", text)


def _padded(text: str) -> Any:
    return ("t", text.rstrip(" "))


def _exact(text: str) -> Any:
    return ("t", text)


def pick(
    conn: Connection, manifest: dict[str, Any], inner: dict[str, bytes], subject: str
) -> dict[str, tuple[bytes, int]]:
    tables = {str(t["name"]): t for t in manifest["tables"]}
    names = {n: [str(c["name"]) for c in t["columns"]] for n, t in tables.items()}
    types = {n: [_compared(str(c["type"])) for c in t["columns"]] for n, t in tables.items()}
    collations = {n: [_collation(c) for c in t["columns"]] for n, t in tables.items()}

    def column(table: str, name: str) -> int:
        if table not in names or name not in names[table]:
            raise ManifestError(f"the manifest names an unknown column {table}.{name}")
        return names[table].index(name)

    parsed = {n: list(records(_body(inner[t["member"]]))) for n, t in tables.items()}
    subject_table = str(manifest["subject"]["table"])
    key = column(subject_table, str(manifest["subject"]["key"]))
    weights = _Weights(conn)

    def value(table: str, index: int, text: str | None, collation: str | None = None) -> Any:
        """`text` as it compares: under `collation` (the column's, when not given)."""
        if text is None:
            return None
        return weights.of(collation or collations[table][index], text) or types[table][index](text)

    def texts(table: str, index: int) -> Iterator[str]:
        for _, fields in parsed[table]:
            text = fields[index]
            if text is not None:
                yield text

    compared = [(collations[subject_table][key], [subject, *texts(subject_table, key)])]
    for edge in manifest["relations"]:
        child, parent = str(edge["child"]), str(edge["parent"])
        for c, p in zip(edge["child_columns"], edge["parent_columns"], strict=True):
            ci, pi = column(child, c), column(parent, p)
            among = [*texts(child, ci), *texts(parent, pi)]
            compared.append((collations[parent][pi] or collations[child][ci], among))
        if edge["class_column"] is not None:
            ci = column(child, str(edge["class_column"]))
            compared.append((collations[child][ci], [str(edge["class_value"]), *texts(child, ci)]))
    weights.compute(compared)
    wanted = value(subject_table, key, subject)
    chosen: dict[str, list[Record]] = {
        subject_table: [
            r for r in parsed[subject_table] if value(subject_table, key, r[1][key]) == wanted
        ]
    }
    for table in tables:
        if table in chosen:
            continue
        tests = []
        for edge in manifest["relations"]:
            if edge["child"] != table or edge["parent"] not in chosen:
                continue
            parent = str(edge["parent"])
            pairs = [
                (ci, pi, collations[parent][pi] or collations[table][ci])
                for ci, pi in (
                    (column(table, c), column(parent, p))
                    for c, p in zip(edge["child_columns"], edge["parent_columns"], strict=True)
                )
            ]
            keys = {
                tuple(value(parent, p, r[1][p], how) for _, p, how in pairs) for r in chosen[parent]
            }
            keys = {k for k in keys if None not in k}
            cls = None
            if edge["class_column"] is not None:
                at = column(table, str(edge["class_column"]))
                cls = (at, value(table, at, str(edge["class_value"])))
            tests.append((pairs, keys, cls))
        chosen[table] = [
            r
            for r in parsed[table]
            if any(
                (cls is None or value(table, cls[0], r[1][cls[0]]) == cls[1])
                and tuple(value(table, c, r[1][c], how) for c, _, how in pairs) in keys
                for pairs, keys, cls in tests
            )
        ]
    out = {}
    for name, t in tables.items():
        header = inner[t["member"]].partition(b"\n")[0] + b"\n"
        rows = chosen.get(name, [])
        out[name] = (header + b"".join(raw for raw, _ in rows), len(rows))
    return out


_COLLATION = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9_]+")


def _collation(column: dict[str, Any]) -> str | None:
    """The collation the manifest records for a text column (None: none recorded)."""
    name = column.get("collation")
    return name if isinstance(name, str) and _COLLATION.fullmatch(name) else None


class _Weights:
    """Each value's weight under a collation, as the server gives it (`WEIGHT_STRING`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.known: dict[tuple[str, str], Any] = {}
        self.unknown: set[str] = set()

    def of(self, collation: str | None, text: str) -> Any:
        if collation is None or collation in self.unknown:
            return None
        return self.known.get((collation, _padded_as(collation, text)))

    def compute(self, compared: Iterable[tuple[str | None, Iterable[str]]]) -> None:
        wanted: dict[str, set[str]] = {}
        for collation, values in compared:
            if collation is not None:
                wanted.setdefault(collation, set()).update(_padded_as(collation, v) for v in values)
        for collation, values in wanted.items():
            self._compute(collation, sorted(values))

    def _compute(self, collation: str, values: list[str]) -> None:
        found = self.conn.execute(
            "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS "
            "WHERE COLLATION_NAME = %s",
            (collation,),
        ).fetchone()
        if found is None or found[0] is None:
            logger.warning(
                "the archive's collation {} is unknown to this server: its text compares "
                "exactly (trailing spaces aside)",
                collation,
            )
            self.unknown.add(collation)
            return
        rows = self.conn.execute(
            sql.SQL(
                "SELECT j.i, WEIGHT_STRING(CONVERT(j.v USING {}) COLLATE {}) FROM JSON_TABLE("
                "%s, '$[*]' COLUMNS (i FOR ORDINALITY, v LONGTEXT PATH '$')) AS j"
            ).format(sql.Identifier(str(found[0])), sql.Identifier(collation)),
            (json.dumps(values),),
        ).fetchall()
        for i, weight in rows:
            if weight is not None:
                self.known[(collation, values[int(i) - 1])] = ("w", bytes(weight))


def _padded_as(collation: str, text: str) -> str:
    return text if collation_no_pad(collation) else text.rstrip(" ")


def _body(data: bytes) -> bytes:
    """The records after the header line (the header's names are quoted, never broken)."""
    return data.partition(b"\n")[2]


def load(conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
    from retention.engines.mariadb.bulk import load as bulk_load

    kept = [i for i, n in enumerate(names) if not table.columns[n].generated]
    columns = [table.columns[names[i]] for i in kept]
    rows = []
    for _, fields in records(_body(data)):
        if len(fields) != len(names):
            raise ManifestError(
                f"a record of {table.label} has {len(fields)} fields for {len(names)} columns"
            )
        rows.append(
            [
                _converted(c.base_type.lower(), c.type.lower(), fields[i])
                for i, c in zip(kept, columns, strict=True)
            ]
        )
    return bulk_load(conn, sql.Identifier(*table.qname), [names[i] for i in kept], rows)


def _converted(base: str, full: str, text: str | None) -> Any:
    if text is None:
        return None
    if base in _BYTES:
        if not text.startswith("\\x"):
            raise ManifestError("an archived bytes value is not written as \\x and hexadecimal")
        return bytes.fromhex(text[2:])
    if base == "timestamp" and not text.startswith("0000-00-00"):
        found = _OFFSET.match(text)
        if found is not None:
            moment, sign, hours, minutes, seconds = found.groups()
            offset = f"{sign}{hours}:{minutes or '00'}" + (f":{seconds}" if seconds else "")
            instant = datetime.fromisoformat(moment.replace(" ", "T") + offset)
            return instant.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if full.startswith("tinyint(1)") and text in ("t", "f"):
        return "1" if text == "t" else "0"
    return text
