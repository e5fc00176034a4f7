"""MariaDB's restore of archived CSV: one subject's rows picked in this process, and loaded.

PostgreSQL picks a subject's rows on the server, each link compared in the types the manifest
records (engines/postgresql/archive_pick.py). MariaDB has no such casts by type name: the rows
are picked here, each value compared as the types compare (numbers as decimals, so `1.00`
matches `1`; text without trailing spaces, as `char(n)` and MariaDB's PAD SPACE collations
compare; anything else as its exact text; NULL matches nothing). A case-insensitive collation
would also have matched `'ABC'` with `'abc'`: such a link is not followed here (docs/ARCHIVE.md).

Loading sends each archived text as a parameter of its column (the server converts it, under
the session's strict `sql_mode`), but for what MariaDB reads differently from PostgreSQL's
text: bytes (`\\x` and hexadecimal), instants with a UTC offset (TIMESTAMP is read in the
session's zone, UTC), booleans (`t`/`f`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from retention.engines import sql
from retention.engines.archive import ManifestError
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
    manifest: dict[str, Any], inner: dict[str, bytes], subject: str
) -> dict[str, tuple[bytes, int]]:
    tables = {str(t["name"]): t for t in manifest["tables"]}
    names = {n: [str(c["name"]) for c in t["columns"]] for n, t in tables.items()}
    types = {n: [_compared(str(c["type"])) for c in t["columns"]] for n, t in tables.items()}

    def column(table: str, name: str) -> int:
        if table not in names or name not in names[table]:
            raise ManifestError(f"the manifest names an unknown column {table}.{name}")
        return names[table].index(name)

    def value(table: str, index: int, text: str | None) -> Any:
        return None if text is None else types[table][index](text)

    parsed = {n: list(records(_body(inner[t["member"]]))) for n, t in tables.items()}
    subject_table = str(manifest["subject"]["table"])
    key = column(subject_table, str(manifest["subject"]["key"]))
    wanted = types[subject_table][key](subject)
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
                (column(table, c), column(parent, p))
                for c, p in zip(edge["child_columns"], edge["parent_columns"], strict=True)
            ]
            keys = {tuple(value(parent, p, r[1][p]) for _, p in pairs) for r in chosen[parent]}
            keys = {k for k in keys if None not in k}
            cls = None
            if edge["class_column"] is not None:
                cls = (column(table, str(edge["class_column"])), str(edge["class_value"]))
            tests.append((pairs, keys, cls))
        chosen[table] = [
            r
            for r in parsed[table]
            if any(
                (cls is None or r[1][cls[0]] == cls[1])
                and tuple(value(table, c, r[1][c]) for c, _ in pairs) in keys
                for pairs, keys, cls in tests
            )
        ]
    out = {}
    for name, t in tables.items():
        header = inner[t["member"]].partition(b"\n")[0] + b"\n"
        rows = chosen.get(name, [])
        out[name] = (header + b"".join(raw for raw, _ in rows), len(rows))
    return out


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
