"""PostgreSQL's catalogue through the engine seam: `read_catalog` asks the connection's engine,
and columns carry a neutral kind; tables say which columns identify a row."""

from __future__ import annotations

from typing import Any

import psycopg

from retention.catalog.introspect import ColumnKind, read_catalog
from retention.engines import engine_of
from retention.engines.postgresql.catalogue import Catalogue

SCHEMA = """
CREATE DOMAIN day AS date;
CREATE TYPE sex AS ENUM ('m', 'f');
CREATE TABLE patients (
    id bigint PRIMARY KEY, born date, seen timestamp, died timestamptz, visit day,
    name text, code varchar(12), initials char(2), doc jsonb, meta json, weight numeric(5, 1),
    height real, deceased boolean, sex sex, picture bytea
);
CREATE TABLE import_lines (line text, loaded timestamp);
CREATE TABLE codes (code text UNIQUE, label text);
CREATE TABLE aliases (alias text NOT NULL UNIQUE, label text);
CREATE TABLE visits (id serial PRIMARY KEY, patient_id bigint REFERENCES patients);
"""


def test_read_catalog_asks_the_connections_engine(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA)
    engine = engine_of(conn)
    assert isinstance(engine.catalogue, Catalogue)
    assert read_catalog(conn) == engine.catalogue.read(conn, tool_schema="retention")


def test_columns_carry_the_kind_of_their_type(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA)
    columns = read_catalog(conn).tables[("public", "patients")].columns
    kinds = {name: column.kind for name, column in columns.items()}
    assert kinds == {
        "id": ColumnKind.NUMBER,
        "born": ColumnKind.DATE,
        "seen": ColumnKind.DATETIME,
        "died": ColumnKind.TIMESTAMP,
        "visit": ColumnKind.DATE,  # a domain counts as its base type
        "name": ColumnKind.TEXT,
        "code": ColumnKind.TEXT,
        "initials": ColumnKind.TEXT,
        "doc": ColumnKind.JSON,
        "meta": ColumnKind.JSON,
        "weight": ColumnKind.NUMBER,
        "height": ColumnKind.NUMBER,
        "deceased": ColumnKind.BOOLEAN,
        "sex": ColumnKind.OTHER,  # a PostgreSQL enum is not text (compared by its own order)
        "picture": ColumnKind.OTHER,
    }
    assert [name for name, c in columns.items() if c.is_date] == ["born", "seen", "died", "visit"]
    assert columns["code"].max_length == 12 and columns["code"].base_type == "character varying"
    assert not any(c.unsigned or c.on_update for c in columns.values())
    # an enum's labels, in their order: a filter reads it as their text (test_enum_columns.py)
    assert {n: c.enum_values for n, c in columns.items() if c.enum_values} == {"sex": ("m", "f")}


def test_tables_say_which_columns_identify_a_row(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA)
    tables = read_catalog(conn).tables
    keys = {name: table.row_key for (_, name), table in tables.items()}
    # a unique key of a nullable column identifies no row: NULLs may repeat
    assert keys == {
        "patients": ("id",),
        "import_lines": (),
        "codes": (),
        "aliases": ("alias",),
        "visits": ("id",),
    }
    assert all(t.transactional and t.storage is None for t in tables.values())
    assert not any(t.system_versioned for t in tables.values())
    # a ctid addresses a row without a key: archiving import_lines needs none
    assert read_catalog(conn).row_address
    assert engine_of(conn).catalogue.transactional(conn, list(tables)) == dict.fromkeys(
        tables, True
    )


def test_table_exists_names_tables_exactly(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        'CREATE SCHEMA "Tool"; CREATE TABLE "Tool".audit (id int); CREATE VIEW v AS SELECT 1'
    )
    catalogue = engine_of(conn).catalogue
    assert catalogue.table_exists(conn, "Tool", "audit")
    assert catalogue.table_exists(conn, "public", "v")
    assert not catalogue.table_exists(conn, "tool", "audit")
    assert not catalogue.table_exists(conn, "Tool", "Audit")
    assert not catalogue.table_exists(conn, "nowhere", "audit")
