"""The labelled schemas on MariaDB: each filled on PostgreSQL as always, then copied as they are
to a MariaDB database of its own, where ``retention scan`` runs too (``python -m eval.run
--engine mariadb``).

The copy keeps every table, column, primary and unique key and foreign key, in MariaDB's
nearest types: ``integer``/``bigint``/``smallint`` as such, ``numeric(p,s)`` as ``DECIMAL(p,s)``
(without precision: ``DOUBLE``, whose text has no trailing zeros), ``text`` as ``MEDIUMTEXT``,
``varchar(n)``/``char(n)`` as such, ``boolean`` as ``TINYINT(1)`` (MariaDB's BOOLEAN),
``timestamp``/``timestamptz`` as ``DATETIME(6)`` (instants in UTC), ``json``/``jsonb`` as
``JSON`` (LONGTEXT with a ``json_valid`` check), ``uuid`` as ``CHAR(36)``, ``inet`` as
``VARCHAR(45)``, anything else as ``LONGTEXT`` holding PostgreSQL's text. A MariaDB schema is a
database: every table lands in the one database (the labelled schemas have no two tables of the
same name), so a truth key ``schema.table.column`` becomes ``database.table.column``. The
values are the same rows: only the engine differs, which is what the comparison is about.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from retention.catalog.introspect import Catalog, Column, Table, read_catalog
from retention.db import connect
from retention.engines import Connection, sql
from retention.engines.mariadb.bulk import load
from retention.settings import Settings

LOCAL_URL = "mariadb://root@127.0.0.1:3306/"

_TYPES = {
    "integer": "INT",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "text": "MEDIUMTEXT",
    "citext": "MEDIUMTEXT",
    "boolean": "TINYINT(1)",
    "date": "DATE",
    "timestamp without time zone": "DATETIME(6)",
    "timestamp with time zone": "DATETIME(6)",
    "time without time zone": "TIME(6)",
    "json": "JSON",
    "jsonb": "JSON",
    "uuid": "CHAR(36)",  # MariaDB 10.11's UUID refuses some (variant bits); Mediboard: char(36)
    "inet": "VARCHAR(45)",
    "bytea": "LONGBLOB",
}
_SIZED = re.compile(r"^(character varying|character|numeric)\((\d+)(?:,(\d+))?\)$")


def mariadb_type(column: Column) -> str:
    """MariaDB's type for a PostgreSQL column (module docstring)."""
    sized = _SIZED.match(column.type)
    if sized:
        kind, size, scale = sized.groups()
        if kind == "numeric":
            return f"DECIMAL({size},{scale or 0})"
        return f"{'VARCHAR' if kind == 'character varying' else 'CHAR'}({size})"
    if column.type == "numeric":
        return "DOUBLE"
    if column.type == "character varying":
        return "MEDIUMTEXT"
    return _TYPES.get(column.type, "LONGTEXT")


def _value(value: Any, column: Column) -> Any:
    if value is None:
        return None
    if column.is_json:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, str | int | float | bytes | Decimal | date | time | timedelta):
        return value
    return str(value)  # inet's addresses, arrays: PostgreSQL's text


def database_url(admin_url: str, name: str) -> str:
    head, _, query = admin_url.partition("?")
    scheme, rest = head.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@contextmanager
def copied(pg: psycopg.Connection[Any], admin_url: str, name: str, keep: bool) -> Iterator[str]:
    """A MariaDB database ``name`` holding a copy of every user table of ``pg``; its URL.
    Dropped at the end unless ``keep``."""
    settings = Settings()
    with connect(settings, url=admin_url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci").format(
                sql.Identifier(name)
            )
        )
    url = database_url(admin_url, name)
    try:
        with connect(settings, url=url) as maria:
            copy_catalog(pg, maria, read_catalog(pg))
        yield url
    finally:
        if not keep:
            with connect(settings, url=admin_url) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def copy_catalog(pg: psycopg.Connection[Any], maria: Connection, catalog: Catalog) -> None:
    """Every table: created, filled, then the foreign keys, then ANALYZE (the row estimates
    the sample uses)."""
    names = [table.name for table in catalog.tables.values()]
    if len(set(names)) != len(names):
        raise ValueError("two tables of the same name in different schemas")
    keyed = {(t.name, c) for t in catalog.tables.values() for k in (t.primary_key, *t.unique_keys)
             for c in k}  # fmt: skip
    keyed |= {(fk.table[1], c) for fk in catalog.foreign_keys for c in fk.columns}
    keyed |= {(fk.ref_table[1], c) for fk in catalog.foreign_keys for c in fk.ref_columns}
    for table in catalog.tables.values():
        maria.execute(_create(table, {c for t, c in keyed if t == table.name}))
        columns = list(table.columns.values())
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            sql.Identifier(table.schema, table.name),
        )
        rows = (
            [_value(v, c) for v, c in zip(row, columns, strict=True)] for row in pg.execute(query)
        )
        with maria.transaction():
            load(maria, sql.Identifier(table.name), [c.name for c in columns], rows)
    maria.execute("SET SESSION foreign_key_checks = 0")
    for fk in catalog.foreign_keys:
        maria.execute(
            sql.SQL("ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {} ({})").format(
                sql.Identifier(fk.table[1]),
                _names(fk.columns),
                sql.Identifier(fk.ref_table[1]),
                _names(fk.ref_columns),
            )
        )
    maria.execute("SET SESSION foreign_key_checks = 1")
    for table in catalog.tables.values():
        maria.execute(sql.SQL("ANALYZE TABLE {}").format(sql.Identifier(table.name))).fetchall()


def _names(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _create(table: Table, keyed: set[str]) -> sql.Composed:
    """The table; a key's unbounded text column is VARCHAR(255) (MariaDB indexes no TEXT)."""
    parts = []
    for c in table.columns.values():
        kind = mariadb_type(c)
        if c.name in keyed and kind in ("MEDIUMTEXT", "LONGTEXT"):
            kind = "VARCHAR(255)"
        parts.append(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name), sql.SQL(kind), sql.SQL(" NOT NULL" if c.not_null else "")
            )
        )
    if table.primary_key:
        parts.append(sql.SQL("PRIMARY KEY ({})").format(_names(table.primary_key)))
    for key in table.unique_keys:
        if key != table.primary_key:
            parts.append(sql.SQL("UNIQUE ({})").format(_names(key)))
    return sql.SQL("CREATE TABLE {} ({}) ENGINE=InnoDB").format(
        sql.Identifier(table.name), sql.SQL(", ").join(parts)
    )


def relabel(truth: dict[str, tuple[str, ...]], database: str) -> dict[str, tuple[str, ...]]:
    """``schema.table.column`` -> ``database.table.column`` (module docstring)."""
    return {f"{database}.{key.split('.', 1)[1]}": value for key, value in truth.items()}
